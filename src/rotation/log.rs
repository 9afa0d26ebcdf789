//! The decision log: one JSON line per rotation decision ([`Record`]), appended to the
//! store's size-rotated log ([`crate::state::Store::append_decision`]). A record names
//! accounts, strategies and reasons; it never holds a credential (accounts carry none,
//! and reasons are built from moonauth's own words and redacted failure reasons).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::decide::Decision;

/// The schema name of a decision record.
pub const SCHEMA: &str = "moonauth.decision.v1";

/// One decision as logged.
#[derive(Debug, Clone, Serialize)]
pub struct Record<'a> {
    pub schema: &'static str,
    /// When it was decided (RFC 3339).
    pub time: String,
    /// The `moonauth run` it was for; `None` for `accounts pick`.
    pub run_id: Option<&'a str>,
    /// Who decided: `accounts pick`, `run`, `dashboard`.
    pub by: &'a str,
    #[serde(flatten)]
    pub decision: &'a Decision,
}

impl<'a> Record<'a> {
    pub fn new(decision: &'a Decision, at: SystemTime, run_id: Option<&'a str>, by: &'a str) -> Record<'a> {
        Record {
            schema: SCHEMA,
            time: crate::time::format_time(at),
            run_id,
            by,
            decision,
        }
    }

    /// The record as one line of JSON (no newline).
    pub fn line(&self) -> String {
        // A record is plain strings, numbers and lists: it serializes.
        serde_json::to_string(self).expect("a decision record serializes")
    }
}

/// A logged line as read back: the fields `accounts log` shows, and the rest as it was.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Logged {
    #[serde(default)]
    pub time: String,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub runtime: String,
    #[serde(default)]
    pub strategy: String,
    #[serde(default)]
    pub chosen: Option<String>,
    #[serde(default)]
    pub fallback: Option<String>,
    #[serde(default)]
    pub force: Option<Value>,
    #[serde(default)]
    pub candidates: Vec<Value>,
}

impl Logged {
    /// Parses a line; `None` for a line that is not a decision record.
    pub fn parse(line: &str) -> Option<Logged> {
        serde_json::from_str(line).ok()
    }
}

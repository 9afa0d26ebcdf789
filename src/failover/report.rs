//! What `moonauth run` reports: each attempt, the accounts that were out, which
//! credential finished the work (schema `moonauth.run.v1`, docs/failover.md), and the
//! GitHub Actions summary of it.

use std::path::Path;

use serde::Serialize;

use crate::agents::Runtime;
use crate::rotation::PassedOver;
use crate::state::accounts::AccountKind;

/// One attempt, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub account: String,
    pub kind: AccountKind,
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Whether this attempt resumed the previous attempt's session.
    pub resumed: bool,
    pub exit_code: Option<i32>,
    pub started_at: String,
    pub duration_ms: u64,
    /// Time from the previous child's exit to this child's start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switch_ms: Option<f64>,
    /// What moonauth's own refresh did before the start (`fresh`, `refreshed`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewal: Option<String>,
}

/// An account that could not be used, for the exhaustion listing.
#[derive(Debug, Clone, Serialize)]
pub struct Unavailable {
    pub account: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The report of one `moonauth run` (schema in docs/failover.md).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub schema: &'static str,
    pub runtime: Runtime,
    pub ok: bool,
    pub exit_code: i32,
    /// The account whose credential finished the work.
    pub finished_by: Option<String>,
    pub api_billing_used: bool,
    /// Every credential was out: the run ends with exit 10.
    pub exhausted: bool,
    pub attempts: Vec<Attempt>,
    /// Accounts that were out, with why (filled when every credential is exhausted).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<Unavailable>,
    /// This run's id (in the decision log and on the usage snapshots it captured).
    pub run_id: String,
    /// What each attempt's output said about its account's usage windows.
    pub usage_windows: Vec<UsageCapture>,
}

/// The usage windows one attempt captured, or why it captured none.
#[derive(Debug, Clone, Serialize)]
pub struct UsageCapture {
    pub account: String,
    /// `captured`, `none` (the output carried no windows: never invented) or `error`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<crate::state::usage::Window>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Unavailable {
    /// An account rotation passed over before the run started.
    pub(crate) fn passed_over(p: &PassedOver) -> Unavailable {
        Unavailable {
            account: p.alias.clone(),
            reason: p.reason.clone(),
            until: p.until.map(rfc3339),
            fix: p.fix.clone(),
        }
    }
}

impl RunReport {
    /// The report before the first attempt: not finished, exit 1.
    pub(crate) fn new(runtime: Runtime) -> RunReport {
        RunReport {
            schema: "moonauth.run.v1",
            runtime,
            ok: false,
            exit_code: 1,
            finished_by: None,
            api_billing_used: false,
            exhausted: false,
            attempts: Vec::new(),
            unavailable: Vec::new(),
            run_id: String::new(),
            usage_windows: Vec::new(),
        }
    }
}

pub(crate) use crate::time::rfc3339;

/// Writes the GitHub Actions job summary table and an annotation for a finished run.
pub fn github_summary(report: &RunReport, summary_file: Option<&Path>) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(path) = summary_file {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        writeln!(f, "### moonauth run ({})\n", report.runtime)?;
        writeln!(f, "| # | account | kind | outcome | reason | resets at | session |")?;
        writeln!(f, "|---|---|---|---|---|---|---|")?;
        for (i, a) in report.attempts.iter().enumerate() {
            writeln!(
                f,
                "| {} | {} | {} | {} | {} | {} | {} |",
                i + 1,
                a.account,
                a.kind.as_str(),
                a.outcome,
                a.reason.as_deref().unwrap_or("").replace('|', "\\|"),
                a.resets_at.as_deref().unwrap_or(""),
                a.session_id.as_deref().unwrap_or("")
            )?;
        }
        let paid = match (&report.finished_by, report.api_billing_used) {
            (Some(a), true) => format!("finished on **{a}** (API key billing)"),
            (Some(a), false) => format!("finished on **{a}** (subscription)"),
            (None, _) => "did not finish".into(),
        };
        writeln!(f, "\n{paid}\n")?;
    }
    let line = match (&report.finished_by, report.api_billing_used, report.attempts.len()) {
        (Some(a), true, _) => format!(
            "::warning title=moonauth::{} run finished on API key {a} (API billing)",
            report.runtime
        ),
        (Some(a), false, 1) => format!(
            "::notice title=moonauth::{} run finished on account {a}",
            report.runtime
        ),
        (Some(a), false, n) => format!(
            "::notice title=moonauth::{} run failed over and finished on account {a} after {n} attempts",
            report.runtime
        ),
        (None, _, _) => format!(
            "::warning title=moonauth::{} run did not finish (exit {})",
            report.runtime, report.exit_code
        ),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
}

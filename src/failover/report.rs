//! What `moonauth run` reports: each attempt, the accounts that were out, which
//! credential finished the work and on what kind of credential (schema `moonauth.run.v1`,
//! docs/failover.md). Its GitHub Actions renderings are `github`'s.

use serde::{Deserialize, Serialize};

use crate::agents::Runtime;
use crate::rotation::PassedOver;
use crate::state::accounts::AccountKind;

/// One attempt, as reported (and carried between jobs by `run --save-state`).
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Made by an earlier job of the same work (`run --resume-from`), not by this run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub carried: bool,
}

/// What kind of credential finished the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    /// A subscription login in a login directory.
    OauthLogin,
    /// A subscription's OAuth token from the environment (`CLAUDE_CODE_OAUTH_TOKEN`).
    OauthToken,
    /// An API key (API billing).
    ApiKey,
}

impl std::fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CredentialKind::OauthLogin => "oauth-login",
            CredentialKind::OauthToken => "oauth-token",
            CredentialKind::ApiKey => "api-key",
        })
    }
}

/// Why a run that ran out of credentials did not use an API key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyNotUsedReport {
    /// `fallback-off`, `auth-failure` or `no-api-key`.
    pub code: &'static str,
    pub message: String,
}

/// An account that could not be used, for the exhaustion listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// What kind of credential finished the work.
    pub credential_kind: Option<CredentialKind>,
    /// Why the run fell back to an API key (`usage-limit`), when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// Why no API key was tried, when every credential was out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_not_used: Option<KeyNotUsedReport>,
    /// Every credential was out: the run ends with exit 10.
    pub exhausted: bool,
    pub attempts: Vec<Attempt>,
    /// Accounts that were out, with why (filled when every credential is exhausted).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<Unavailable>,
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
            credential_kind: None,
            fallback_reason: None,
            api_key_not_used: None,
            exhausted: false,
            attempts: Vec::new(),
            unavailable: Vec::new(),
        }
    }
}

pub(crate) use crate::time::rfc3339;

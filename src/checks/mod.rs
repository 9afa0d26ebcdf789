//! One list of checks: what was checked, how it ended, what was found and what fixes it.
//! [`Check`] is the one type that says "what is wrong and how to fix it": [`preflight`]
//! (the container entrypoint) builds a list of them, [`account`] judges a stored account
//! for `accounts`, and `status` judges a volume with one (`docker::status`, which may
//! import this; this never imports `docker`). Rendering is `output`'s.

pub mod ci;
pub mod fleet;
pub mod preflight;

use serde::Serialize;

use crate::agents::Runtime;
use crate::credentials::LoginReport;
use crate::exit::Exit;
use crate::state::accounts::Availability;
use crate::state::report::AccountRow;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    /// Passes, but something deserves a look (a competing credential, an expired token).
    Warn,
    Fail,
}

/// One check: what was checked, how it ended, and what fixes it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The runtime the check is about (absent for checks about the whole worker).
    pub runtime: Option<Runtime>,
    /// What was checked: preflight's `cli`, `login-dir`, `login`, `env-credentials`,
    /// `cli-status`; `volume` for `status`, `account` for `accounts`.
    pub check: &'static str,
    pub status: CheckStatus,
    /// What was found; never a credential.
    pub detail: String,
    /// The command or change that fixes a failure or warning.
    pub fix: Option<String>,
    /// The login verdict, on preflight's `login` checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<LoginReport>,
    /// The exit status a failure of this check maps to.
    #[serde(skip)]
    pub exit: Exit,
}

impl Check {
    /// A check about `runtime` that ended with `status`.
    pub fn new(runtime: Runtime, check: &'static str, status: CheckStatus, detail: String) -> Self {
        Check {
            runtime: Some(runtime),
            ..Check::general(check, status, detail)
        }
    }

    /// A check about the whole setup or worker (no runtime) that ended with `status`.
    pub fn general(check: &'static str, status: CheckStatus, detail: String) -> Self {
        Check {
            runtime: None,
            check,
            status,
            detail,
            fix: None,
            login: None,
            exit: Exit::Ok,
        }
    }

    /// Fails the check: a failure maps to `exit`, and `fix` says what to do.
    pub fn fail(mut self, exit: Exit, fix: impl Into<String>) -> Self {
        self.status = CheckStatus::Fail;
        self.exit = exit;
        self.fix = Some(fix.into());
        self
    }

    /// Passes with a warning that `fix` addresses.
    pub fn warn(mut self, fix: impl Into<String>) -> Self {
        self.status = CheckStatus::Warn;
        self.fix = Some(fix.into());
        self
    }

    /// Whether the check failed.
    pub fn failed(&self) -> bool {
        self.status == CheckStatus::Fail
    }
}

/// What is wrong with a stored account and how to fix it, as an `account` check: ok when
/// it can be picked, a warning while it cools down (time fixes it), a failure when it is
/// disabled, needs a new login, or its credential is not usable here (a row's problem). The detail is [`AccountRow::why_not`], the fix the
/// row's `fix`.
pub fn account(row: &AccountRow) -> Check {
    let status = match row.availability() {
        // Not usable in this environment, whatever the record says.
        _ if row.problem.is_some() => CheckStatus::Fail,
        Availability::Ready => CheckStatus::Ok,
        Availability::CoolingDown(_) => CheckStatus::Warn,
        Availability::Disabled | Availability::NeedsRelogin => CheckStatus::Fail,
    };
    let mut check = Check::new(row.account.runtime, "account", status, row.why_not());
    check.fix = row.fix.clone();
    if status == CheckStatus::Fail {
        check.exit = Exit::LoginUnusable;
    }
    check
}

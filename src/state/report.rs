//! What `accounts` reports about the store: one [`AccountRow`] per account (the record
//! and what it means now), and the reports of `ls`, `pick` and the changes. Library
//! types; `output` renders them, as text or as their `Serialize` form.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::agents::Runtime;
use crate::credentials::{self, LoginClass};
use crate::exit::Exit;
use crate::source::Env;
use crate::state::accounts::{self, Account, AccountKind, Availability};
use crate::state::usage::{freshness_of, Freshness, History};

/// What this environment says is wrong with an account's credential, beyond its
/// record: a login directory that is not here, holds no login or an unusable one, a key
/// variable that is not set, a key file that is not here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `no-login-dir`, `needs-login`, `login-unusable`, `key-unset` or `no-key-file`.
    pub status: &'static str,
    /// What was found; never a credential.
    pub detail: String,
    /// What fixes it.
    pub fix: String,
}

/// Looks at an account's credential as this environment sees it (the login directory
/// through the CLI's own parser at `now`, the key variable in `env`); `None` when
/// nothing is wrong. It reads files, so `ls` and `add` call it, not `pick`.
pub fn probe(account: &Account, env: &Env, now: SystemTime) -> Option<Problem> {
    let alias = &account.alias;
    let runtime = account.runtime;
    let login_cmd = crate::agents::login_command(runtime, Some(alias));
    let problem = |status, detail: String, fix: String| Some(Problem { status, detail, fix });
    match account.kind {
        AccountKind::Oauth if account.is_oauth_token() => match (&account.oauth_token_env, &account.oauth_token_file) {
            (Some(var), _) if env.get(var).is_none_or(str::is_empty) => problem(
                "token-unset",
                format!("{var} is not set in this environment"),
                format!("set {var} where moonauth runs (a `claude setup-token` token)"),
            ),
            (None, Some(path)) if !path.is_file() => problem(
                "no-token-file",
                format!("token file {} does not exist here", path.display()),
                format!("put a `claude setup-token` token in {}", path.display()),
            ),
            _ => None,
        },
        AccountKind::Oauth => {
            let dir = account.login_dir.as_ref()?;
            if !dir.is_dir() {
                let fix = match &account.volume {
                    Some(volume) => format!(
                        "run `moonauth accounts ls` where volume {volume} is mounted at {}, or `{login_cmd}`",
                        dir.display()
                    ),
                    None => format!(
                        "create it with `{login_cmd}`, or correct the path: `moonauth accounts rm {alias}` and add it again"
                    ),
                };
                return problem(
                    "no-login-dir",
                    format!("login directory {} does not exist here", dir.display()),
                    fix,
                );
            }
            let login = runtime.login()?;
            // The lead does not matter here: an expiring login is still usable.
            let report = credentials::inspect_dir(login, dir, now, Duration::ZERO);
            match report.inspection.class {
                _ if report.usable => None,
                LoginClass::Missing => problem(
                    "needs-login",
                    format!("no login in {} yet", dir.display()),
                    format!("`{login_cmd}`"),
                ),
                class => problem(
                    "login-unusable",
                    format!("{}: {}", class.as_str(), report.inspection.detail),
                    format!("`{login_cmd}`"),
                ),
            }
        }
        AccountKind::ApiKey => match (&account.api_key_env, &account.api_key_file) {
            (Some(var), _) if env.get(var).is_none_or(str::is_empty) => problem(
                "key-unset",
                format!("{var} is not set in this environment"),
                format!("set {var} where moonauth runs (the worker's environment)"),
            ),
            (None, Some(path)) if !path.is_file() => problem(
                "no-key-file",
                format!("key file {} does not exist here", path.display()),
                format!("put the key in {}", path.display()),
            ),
            _ => None,
        },
    }
}

/// The login problems this environment finds with the accounts of `runtime` that keep
/// them from being chosen, by alias: a login directory here whose login is unusable
/// (malformed, expired without a refresh token). A directory that is not here, or holds
/// no login yet, is not one: the orchestrator may pick on a host where the worker's
/// volume is not mounted, or before `moonauth login` filled it.
pub fn login_problems(
    state: &accounts::State,
    runtime: Runtime,
    env: &Env,
    now: SystemTime,
) -> std::collections::BTreeMap<String, String> {
    state
        .accounts
        .iter()
        .filter(|a| a.runtime == runtime && a.kind == AccountKind::Oauth)
        .filter(|a| accounts::availability(a, now) == Availability::Ready)
        .filter_map(|a| {
            probe(a, env, now)
                .filter(|p| p.status == "login-unusable")
                .map(|p| (a.alias.clone(), p.detail))
        })
        .collect()
}

/// One usage window as reported: unknown numbers are `null`, never 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowView {
    pub name: String,
    /// Percent used; `null` when unknown (too old, or the window has reset since).
    pub used_percent: Option<f64>,
    /// Percent left; `null` when unknown.
    pub remaining_percent: Option<f64>,
    pub resets_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_minutes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// An account's usage windows as reported: the newest snapshot with its freshness and
/// source, and the recent history of each window's percent used (oldest first).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageView {
    /// `fresh`, `stale`, `error` or `unknown`.
    pub freshness: Freshness,
    /// When the newest snapshot was captured, by which run, and how that run ended.
    pub captured_at: Option<String>,
    pub run_id: Option<String>,
    pub outcome: Option<String>,
    pub windows: Vec<WindowView>,
    /// Why the last capture failed (freshness `error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Percent used per window over the kept snapshots, oldest first (for a chart).
    pub history: std::collections::BTreeMap<String, Vec<HistoryPoint>>,
}

/// One point of a window's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPoint {
    pub at: String,
    pub used_percent: f64,
}

impl UsageView {
    /// The view of `history` (none captured: unknown) at `now`.
    pub fn new(history: Option<&History>, now: SystemTime) -> UsageView {
        let empty = History::default();
        let h = history.unwrap_or(&empty);
        let freshness = h.freshness(now);
        let latest = h.latest();
        let known = latest.is_some_and(|s| freshness_of(s.source.at, now) != Freshness::Unknown);
        let windows = latest
            .map(|s| {
                s.windows
                    .iter()
                    .map(|w| {
                        let holds = known && !w.has_reset(now);
                        WindowView {
                            name: w.name.clone(),
                            used_percent: holds.then_some(w.used_percent),
                            remaining_percent: holds.then(|| w.remaining_percent()),
                            resets_at: w.resets_at.map(rfc3339_seconds),
                            window_minutes: w.window_minutes,
                            status: w.status.clone(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut series: std::collections::BTreeMap<String, Vec<HistoryPoint>> = Default::default();
        for snap in &h.snapshots {
            for w in &snap.windows {
                series.entry(w.name.clone()).or_default().push(HistoryPoint {
                    at: rfc3339_seconds(snap.source.at),
                    used_percent: w.used_percent,
                });
            }
        }
        UsageView {
            freshness,
            captured_at: latest.map(|s| rfc3339_seconds(s.source.at)),
            run_id: latest.map(|s| s.source.run_id.clone()),
            outcome: latest.map(|s| s.source.outcome.clone()),
            windows,
            error: h.last_error.as_ref().map(|e| e.reason.clone()),
            history: series,
        }
    }

    /// The windows in one line for people: `five_hour 25% used (resets …), seven_day unknown`.
    pub fn summary(&self) -> String {
        if self.windows.is_empty() {
            return match self.freshness {
                Freshness::Error => format!("error: {}", self.error.as_deref().unwrap_or("capture failed")),
                _ => "unknown".into(),
            };
        }
        let parts: Vec<String> = self
            .windows
            .iter()
            .map(|w| match w.used_percent {
                Some(p) => format!("{} {p:.0}% used", w.name),
                None => format!("{} unknown", w.name),
            })
            .collect();
        format!("{} ({})", parts.join(", "), self.freshness.as_str())
    }
}

/// One account as reported: the stored record plus what it means now.
#[derive(Debug, Clone, Serialize)]
pub struct AccountRow {
    #[serde(flatten)]
    pub account: Account,
    /// Where the credential is: the login directory, `env:VAR` or `file:PATH`.
    pub login: String,
    /// `ready`, `disabled`, `needs-relogin` or `cooling-down`.
    pub status: &'static str,
    /// The command that makes the account usable again, when it needs one (also the
    /// fix of its [`crate::checks::account`] check).
    pub fix: Option<String>,
    /// What this environment says is wrong with the credential (`ls` and `add` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
    /// Its usage windows with their freshness (when the report read them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_windows: Option<UsageView>,
    #[serde(skip)]
    availability: Availability,
}

impl AccountRow {
    pub fn new(account: &Account, now: SystemTime) -> AccountRow {
        let availability = accounts::availability(account, now);
        AccountRow {
            login: account.location(),
            status: availability.as_str(),
            fix: account.fix(now),
            availability,
            problem: None,
            usage_windows: None,
            account: account.clone(),
        }
    }

    /// The row with the account's usage windows from `state` at `now`.
    pub fn with_usage(mut self, state: &accounts::State, now: SystemTime) -> AccountRow {
        self.usage_windows = Some(UsageView::new(state.usage_of(&self.account.alias), now));
        self
    }

    /// The row with what this environment says about the credential ([`probe`]): an
    /// account the record calls ready or cooling down but whose credential is not usable
    /// here shows the problem as its status, with its fix.
    pub fn probed(account: &Account, env: &Env, now: SystemTime) -> AccountRow {
        let mut row = AccountRow::new(account, now);
        if matches!(row.availability, Availability::Ready | Availability::CoolingDown(_)) {
            if let Some(problem) = probe(account, env, now) {
                row.status = problem.status;
                row.fix = Some(problem.fix.clone());
                row.problem = Some(problem);
            }
        }
        row
    }

    /// Whether the account can be picked now, and when not, why.
    pub fn availability(&self) -> Availability {
        self.availability
    }

    /// Why the account cannot be picked, in words (empty when it can).
    pub fn why_not(&self) -> String {
        let failure = self
            .account
            .last_failure
            .as_ref()
            .map(|f| format!(" ({})", f.reason))
            .unwrap_or_default();
        if let Some(problem) = &self.problem {
            return problem.detail.clone();
        }
        match self.availability {
            Availability::Ready => String::new(),
            Availability::Disabled => "disabled".into(),
            Availability::NeedsRelogin => format!("needs a re-login{failure}"),
            Availability::CoolingDown(until) => format!("cooling down until {}{failure}", rfc3339_seconds(until)),
        }
    }
}

/// A time as the account reports print it (RFC 3339, whole seconds).
pub use crate::time::rfc3339 as rfc3339_seconds;

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Added,
    Enabled,
    Disabled,
    Removed,
}

/// The report of `add`, `enable`, `disable` and `rm`: the account after the change
/// (for `rm`, the record that was removed). It exists only for a change that was made,
/// so it always says `ok` (a refused change is an error, not a report).
#[derive(Debug, Serialize)]
pub struct ChangeReport {
    pub schema: &'static str,
    pub ok: bool,
    pub exit_code: u8,
    pub action: Action,
    pub account: AccountRow,
}

impl ChangeReport {
    pub fn new(action: Action, account: AccountRow) -> ChangeReport {
        ChangeReport {
            schema: "moonauth.accounts-change.v1",
            ok: true,
            exit_code: Exit::Ok.code(),
            action,
            account,
        }
    }
}

/// The report of `accounts ls`. Listing succeeds whatever the accounts' state (their
/// problems are rows' `status`, not the command's), so it always says `ok`.
#[derive(Debug, Serialize)]
pub struct AccountsReport {
    pub schema: &'static str,
    pub ok: bool,
    pub exit_code: u8,
    pub state_dir: PathBuf,
    /// The store's revision (number of writes) when it was read.
    pub revision: u64,
    pub accounts: Vec<AccountRow>,
    /// Records in the store that break a rule and are not used (kept in the file as they are).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set_aside: Vec<accounts::SetAside>,
    /// Force mode, while it holds (docs/rotation.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force: Option<crate::state::steering::Force>,
}

impl AccountsReport {
    pub fn new(
        state_dir: PathBuf,
        revision: u64,
        accounts: Vec<AccountRow>,
        set_aside: Vec<accounts::SetAside>,
        force: Option<crate::state::steering::Force>,
    ) -> AccountsReport {
        AccountsReport {
            schema: "moonauth.accounts.v1",
            ok: true,
            exit_code: Exit::Ok.code(),
            state_dir,
            revision,
            accounts,
            set_aside,
            force,
        }
    }
}

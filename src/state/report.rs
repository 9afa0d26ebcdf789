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
            account: account.clone(),
        }
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
}

impl AccountsReport {
    pub fn new(
        state_dir: PathBuf,
        revision: u64,
        accounts: Vec<AccountRow>,
        set_aside: Vec<accounts::SetAside>,
    ) -> AccountsReport {
        AccountsReport {
            schema: "moonauth.accounts.v1",
            ok: true,
            exit_code: Exit::Ok.code(),
            state_dir,
            revision,
            accounts,
            set_aside,
        }
    }
}

/// The report of `accounts pick`.
#[derive(Debug, Serialize)]
pub struct PickReport {
    pub schema: &'static str,
    /// Whether an account was picked (`exit_code` 0, else 10).
    pub ok: bool,
    pub exit_code: u8,
    pub runtime: Runtime,
    /// The account a new task should use; `null` when none can be used (exit 10).
    pub picked: Option<AccountRow>,
    /// Whether the pick was recorded as the account's last use (not with `--peek`).
    pub marked_used: bool,
    /// Every account of the runtime: the usable ones in pick order, then the others with why.
    pub accounts: Vec<AccountRow>,
}

impl PickReport {
    pub fn new(
        runtime: Runtime,
        picked: Option<AccountRow>,
        marked_used: bool,
        accounts: Vec<AccountRow>,
    ) -> PickReport {
        let exit = Self::exit_of(picked.is_some());
        PickReport {
            schema: "moonauth.accounts-pick.v1",
            ok: exit == Exit::Ok,
            exit_code: exit.code(),
            runtime,
            picked,
            marked_used,
            accounts,
        }
    }

    fn exit_of(picked: bool) -> Exit {
        if picked {
            Exit::Ok
        } else {
            Exit::AccountsExhausted
        }
    }

    /// 0 when an account was picked, else 10 (no account can be used now).
    pub fn exit(&self) -> Exit {
        Self::exit_of(self.picked.is_some())
    }
}

//! What `accounts` reports about the store: one [`AccountRow`] per account (the record
//! and what it means now), and the reports of `ls`, `pick` and the changes. Library
//! types; `output` renders them, as text or as their `Serialize` form.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::Serialize;

use crate::agents::Runtime;
use crate::exit::Exit;
use crate::state::accounts::{self, Account, Availability};

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
            account: account.clone(),
        }
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
/// (for `rm`, the record that was removed).
#[derive(Debug, Serialize)]
pub struct ChangeReport {
    pub schema: &'static str,
    pub action: Action,
    pub account: AccountRow,
}

/// The report of `accounts ls`.
#[derive(Debug, Serialize)]
pub struct AccountsReport {
    pub schema: &'static str,
    pub state_dir: PathBuf,
    /// The store's revision (number of writes) when it was read.
    pub revision: u64,
    pub accounts: Vec<AccountRow>,
    /// Records in the store that break a rule and are not used (kept in the file as they are).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set_aside: Vec<accounts::SetAside>,
}

/// The report of `accounts pick`.
#[derive(Debug, Serialize)]
pub struct PickReport {
    pub schema: &'static str,
    pub runtime: Runtime,
    /// The account a new task should use; `null` when none can be used (exit 10).
    pub picked: Option<AccountRow>,
    /// Whether the pick was recorded as the account's last use (not with `--peek`).
    pub marked_used: bool,
    /// Every account of the runtime: the usable ones in pick order, then the others with why.
    pub accounts: Vec<AccountRow>,
}

impl PickReport {
    pub fn exit(&self) -> Exit {
        if self.picked.is_some() {
            Exit::Ok
        } else {
            Exit::AccountsExhausted
        }
    }
}

//! `moonauth accounts add|ls|enable|disable|rm|pick`: the account records in the state
//! store. Changes go through the store's lock; `ls` and `pick --peek` read without it.
//! Each subcommand builds one report; `--json` prints the same struct.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::agents::{self, Runtime};
use crate::cli::{AccountAddArgs, AccountArgs, AccountLsArgs, AccountPickArgs, AccountsCommand};
use crate::config::{self, Config, Overrides};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::output::{self, Render};
use crate::rotation;
use crate::source::Env;
use crate::state::accounts::{self, Account, Availability, Credential};
use crate::state::store::{Store, DEFAULT_LOCK_TIMEOUT};

pub fn run(cmd: AccountsCommand, env: &Env) -> Result<Exit> {
    let config = Config::resolve(env, &Overrides::default())?;
    let store = crate::state::open(&config)?;
    // One reading of the command's clock, so every row of a report agrees on now.
    let now = super::clock(env)?.now();
    match cmd {
        AccountsCommand::Add(args) => add(&store, args, now),
        AccountsCommand::Ls(args) => ls(&store, args, now),
        AccountsCommand::Enable(args) => change(&store, args, Action::Enabled, now),
        AccountsCommand::Disable(args) => change(&store, args, Action::Disabled, now),
        AccountsCommand::Rm(args) => change(&store, args, Action::Removed, now),
        AccountsCommand::Pick(args) => pick(&store, args, now),
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
    /// The command that makes the account usable again, when it needs one.
    pub fix: Option<String>,
    #[serde(skip)]
    availability: Availability,
}

impl AccountRow {
    fn new(account: &Account, now: SystemTime) -> AccountRow {
        let availability = accounts::availability(account, now);
        AccountRow {
            login: account.location(),
            status: availability.as_str(),
            fix: account.fix(now),
            availability,
            account: account.clone(),
        }
    }

    /// Why the account cannot be picked, in words (empty when it can).
    fn why_not(&self) -> String {
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
            Availability::CoolingDown(until) => format!("cooling down until {}{failure}", time(until)),
        }
    }
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn parse_runtime(flag: &'static str, value: &str) -> Result<Runtime> {
    agents::parse_login_runtime(value).map_err(|reason| Error::InvalidFlag {
        flag,
        value: value.to_string(),
        reason,
    })
}

/// The credential of `accounts add`, validated.
fn credential(args: &AccountAddArgs) -> Result<Credential> {
    fn absolute(flag: &'static str, path: &Path) -> Result<PathBuf> {
        if path.is_absolute() {
            Ok(path.to_path_buf())
        } else {
            Err(Error::InvalidFlag {
                flag,
                value: path.display().to_string(),
                reason: "must be an absolute path (as the worker sees it)".into(),
            })
        }
    }
    if let Some(dir) = &args.dir {
        if let Some(volume) = args.volume.as_deref().filter(|v| !config::is_volume_name(v)) {
            return Err(Error::InvalidFlag {
                flag: "--volume",
                value: volume.to_string(),
                reason: config::VOLUME_NAME_RULE.into(),
            });
        }
        return Ok(Credential::Login {
            dir: absolute("--dir", dir)?,
            volume: args.volume.clone(),
        });
    }
    if let Some(var) = &args.api_key_env {
        if !accounts::is_variable_name(var) {
            return Err(Error::InvalidFlag {
                flag: "--api-key-env",
                // Not echoed: what was given may be the key itself.
                value: crate::redact::REDACTED.into(),
                reason: "give the name of the variable (letters, digits, _), not the key".into(),
            });
        }
        return Ok(Credential::ApiKeyEnv(var.clone()));
    }
    match &args.api_key_file {
        Some(path) => Ok(Credential::ApiKeyFile(absolute("--api-key-file", path)?)),
        // clap requires one of the three.
        None => Err(Error::InvalidFlag {
            flag: "--dir",
            value: String::new(),
            reason: "give --dir, --api-key-env or --api-key-file".into(),
        }),
    }
}

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

impl Render for ChangeReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        let a = &self.account.account;
        let action = match self.action {
            Action::Added => "added",
            Action::Enabled => "enabled",
            Action::Disabled => "disabled",
            Action::Removed => "removed",
        };
        write!(
            w,
            "{action} {} account {} ({}, {}, priority {})",
            a.runtime,
            a.alias,
            a.kind.as_str(),
            self.account.login,
            a.priority
        )?;
        match self.action {
            Action::Removed => writeln!(w, "; the login itself is untouched"),
            _ => writeln!(w, ": {}", self.account.status),
        }
    }
}

fn add(store: &Store, args: AccountAddArgs, now: SystemTime) -> Result<Exit> {
    accounts::validate_alias(&args.alias)?;
    let runtime = parse_runtime("--runtime", &args.runtime)?;
    let account = Account::new(&args.alias, runtime, credential(&args)?, args.priority);
    let mut guard = store.lock(DEFAULT_LOCK_TIMEOUT)?;
    guard.state_mut().add(account.clone())?;
    guard.commit()?;
    let report = ChangeReport {
        schema: "moonauth.accounts-change.v1",
        action: Action::Added,
        account: AccountRow::new(&account, now),
    };
    super::written(output::emit(&report, args.json))?;
    Ok(Exit::Ok)
}

/// `enable`, `disable` or `rm` (`action` is one of those three).
fn change(store: &Store, args: AccountArgs, action: Action, now: SystemTime) -> Result<Exit> {
    let mut guard = store.lock(DEFAULT_LOCK_TIMEOUT)?;
    let state = guard.state_mut();
    let account = if action == Action::Removed {
        state.remove(&args.alias)?
    } else {
        state.set_enabled(&args.alias, action == Action::Enabled)?;
        state.account_mut(&args.alias)?.clone()
    };
    guard.commit()?;
    let report = ChangeReport {
        schema: "moonauth.accounts-change.v1",
        action,
        account: AccountRow::new(&account, now),
    };
    super::written(output::emit(&report, args.json))?;
    Ok(Exit::Ok)
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

impl Render for AccountsReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        // Set-aside records first: a person looking for an account should see why it is missing.
        for aside in &self.set_aside {
            writeln!(w, "warning: {aside}")?;
        }
        if self.accounts.is_empty() {
            return writeln!(
                w,
                "no accounts in {}; add one with `moonauth accounts add ALIAS --runtime claude --dir DIR`",
                self.state_dir.display()
            );
        }
        let header = [
            "ALIAS",
            "RUNTIME",
            "KIND",
            "PRIO",
            "ENABLED",
            "STATUS",
            "COOLDOWN UNTIL",
            "LAST FAILURE",
            "LAST USED",
            "LOGIN",
        ];
        let rows: Vec<Vec<String>> = self
            .accounts
            .iter()
            .map(|row| {
                let a = &row.account;
                let login = match &a.volume {
                    Some(v) => format!("{} (volume {v})", row.login),
                    None => row.login.clone(),
                };
                vec![
                    a.alias.clone(),
                    a.runtime.to_string(),
                    a.kind.as_str().to_string(),
                    a.priority.to_string(),
                    if a.enabled { "yes" } else { "no" }.to_string(),
                    row.status.to_string(),
                    match row.availability {
                        Availability::CoolingDown(until) => time(until),
                        _ => "-".into(),
                    },
                    a.last_failure.as_ref().map_or("-".into(), |f| f.reason.clone()),
                    a.last_used.map_or("never".into(), time),
                    login,
                ]
            })
            .collect();
        table(w, &header, &rows)?;
        for row in self.accounts.iter().filter(|r| r.fix.is_some()) {
            let fix = row.fix.as_deref().unwrap_or_default();
            writeln!(w, "{}: {}; fix: {fix}", row.account.alias, row.why_not())?;
        }
        Ok(())
    }
}

/// Writes left-aligned columns as wide as their widest cell.
fn table(w: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |w: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        let text: Vec<String> = cells.zip(&widths).map(|(c, width)| format!("{c:<width$}")).collect();
        writeln!(w, "{}", text.join("  ").trim_end())
    };
    line(w, &mut header.iter().copied())?;
    for row in rows {
        line(w, &mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

fn ls(store: &Store, args: AccountLsArgs, now: SystemTime) -> Result<Exit> {
    let only = args
        .runtime
        .as_deref()
        .map(|r| parse_runtime("--runtime", r))
        .transpose()?;
    let state = store.read_unlocked()?;
    let report = AccountsReport {
        schema: "moonauth.accounts.v1",
        state_dir: store.dir().to_path_buf(),
        revision: state.revision,
        accounts: state
            .accounts
            .iter()
            .filter(|a| only.is_none_or(|r| a.runtime == r))
            .map(|a| AccountRow::new(a, now))
            .collect(),
        set_aside: state.set_aside.clone(),
    };
    super::written(output::emit(&report, args.json))?;
    Ok(Exit::Ok)
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

impl Render for PickReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        if let Some(row) = &self.picked {
            // One line, two fields, for `read alias login < <(moonauth accounts pick claude)`.
            return writeln!(w, "{} {}", row.account.alias, row.login);
        }
        if self.accounts.is_empty() {
            return writeln!(
                w,
                "no {rt} accounts; add one with `moonauth accounts add ALIAS --runtime {rt} --dir DIR`",
                rt = self.runtime
            );
        }
        writeln!(w, "no {} account can be used now:", self.runtime)?;
        let width = self.accounts.iter().map(|r| r.account.alias.len()).max().unwrap_or(0);
        for row in &self.accounts {
            write!(w, "  {:<width$}  {}", row.account.alias, row.why_not())?;
            match &row.fix {
                Some(fix) => writeln!(w, "; fix: {fix}")?,
                None => writeln!(w)?,
            }
        }
        Ok(())
    }
}

fn pick(store: &Store, args: AccountPickArgs, now: SystemTime) -> Result<Exit> {
    let runtime = parse_runtime("RUNTIME", &args.runtime)?;
    let (state, picked) = if args.peek {
        let state = store.read_unlocked()?;
        let picked = rotation::next(&state, runtime, now).next.map(|a| a.alias.clone());
        (state, picked)
    } else {
        // Pick and mark under one lock, so two orchestrators picking at once spread
        // over accounts of equal priority instead of both taking the same one.
        let mut guard = store.lock(DEFAULT_LOCK_TIMEOUT)?;
        let picked = rotation::next(guard.state(), runtime, now)
            .next
            .map(|a| a.alias.clone());
        match &picked {
            Some(alias) => {
                guard.state_mut().mark_used(alias, now)?;
                let state = guard.state().clone();
                guard.commit()?;
                (state, picked)
            }
            None => (guard.state().clone(), None),
        }
    };
    // Listed as the state is now (after the mark): the usable ones in pick order, then
    // the others soonest back first.
    let ranked = rotation::next(&state, runtime, now).ranked;
    let report = PickReport {
        schema: "moonauth.accounts-pick.v1",
        runtime,
        picked: picked
            .as_deref()
            .and_then(|alias| state.account(alias))
            .map(|a| AccountRow::new(a, now)),
        marked_used: picked.is_some() && !args.peek,
        accounts: ranked.iter().map(|c| AccountRow::new(c.account, now)).collect(),
    };
    super::written(output::emit(&report, args.json))?;
    Ok(report.exit())
}

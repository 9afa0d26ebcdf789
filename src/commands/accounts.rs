//! `moonauth accounts add|ls|enable|disable|rm|pick`: the account records in the state
//! store. Changes go through the store's lock; `ls` and `pick --peek` read without it.
//! Each subcommand builds one report ([`crate::state::report`]); `--json` prints the
//! same struct.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::agents::{self, Runtime};
use crate::cli::{AccountAddArgs, AccountArgs, AccountLsArgs, AccountPickArgs, AccountsCommand};
use crate::config::{self, Config, Overrides};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::output;
use crate::rotation;
use crate::source::Env;
use crate::state::accounts::{self, Account, Credential};
use crate::state::report::{AccountRow, AccountsReport, Action, ChangeReport, PickReport};
use crate::state::store::{Store, DEFAULT_LOCK_TIMEOUT};

pub fn run(cmd: AccountsCommand, env: &Env) -> Result<Exit> {
    let config = Config::resolve(env, &Overrides::default())?;
    let store = crate::state::open(&config)?;
    // One reading of the command's clock, so every row of a report agrees on now.
    let now = super::clock(env)?.now();
    match cmd {
        AccountsCommand::Add(args) => add(&store, args, env, now),
        AccountsCommand::Ls(args) => ls(&store, args, env, now),
        AccountsCommand::Enable(args) => change(&store, args, Action::Enabled, now),
        AccountsCommand::Disable(args) => change(&store, args, Action::Disabled, now),
        AccountsCommand::Rm(args) => change(&store, args, Action::Removed, now),
        AccountsCommand::Pick(args) => pick(&store, args, now),
    }
}

fn parse_runtime(flag: &'static str, value: &str) -> Result<Runtime> {
    agents::parse_login_runtime(value).map_err(|reason| Error::InvalidFlag {
        flag,
        value: value.to_string(),
        reason,
    })
}

/// `path`, when it is absolute (as the worker sees it).
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

/// The credential of `accounts add`, validated.
fn credential(args: &AccountAddArgs, env: &Env) -> Result<Credential> {
    if let Some(dir) = &args.dir {
        if let Some(volume) = args.volume.as_deref().filter(|v| !config::is_volume_name(v)) {
            return Err(Error::InvalidFlag {
                flag: "--volume",
                value: volume.to_string(),
                reason: config::VOLUME_NAME_RULE.into(),
            });
        }
        let dir = absolute("--dir", dir)?;
        // A directory in a volume is checked where the volume is mounted, not here.
        if args.volume.is_none() && !dir.is_dir() {
            return Err(Error::InvalidFlag {
                flag: "--dir",
                value: dir.display().to_string(),
                reason: format!(
                    "no such directory here; create it (`moonauth login {} --account {}` does), or give --volume when it lives in a Docker volume",
                    args.runtime, args.alias
                ),
            });
        }
        return Ok(Credential::Login {
            dir,
            volume: args.volume.clone(),
        });
    }
    if let Some(credential) = oauth_token(args, env)? {
        return Ok(credential);
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
        if !args.allow_unset && env.get(var).is_none_or(str::is_empty) {
            return Err(Error::InvalidFlag {
                flag: "--api-key-env",
                value: var.clone(),
                reason: "is not set in this environment; set it, or pass --allow-unset when it is set only where the worker runs".into(),
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

/// `--oauth-token-env VAR` / `--oauth-token-file PATH`: a Claude setup-token account.
fn oauth_token(args: &AccountAddArgs, env: &Env) -> Result<Option<Credential>> {
    let flag = match (&args.oauth_token_env, &args.oauth_token_file) {
        (Some(_), _) => "--oauth-token-env",
        (None, Some(_)) => "--oauth-token-file",
        (None, None) => return Ok(None),
    };
    if parse_runtime("--runtime", &args.runtime)? != crate::agents::Runtime::Claude {
        return Err(Error::InvalidFlag {
            flag,
            value: args.runtime.clone(),
            reason: "an OAuth token (claude setup-token) is a Claude credential; codex has none".into(),
        });
    }
    if let Some(var) = &args.oauth_token_env {
        if !accounts::is_variable_name(var) {
            return Err(Error::InvalidFlag {
                flag,
                // Not echoed: what was given may be the token itself.
                value: crate::redact::REDACTED.into(),
                reason: "give the name of the variable (letters, digits, _), not the token".into(),
            });
        }
        if !args.allow_unset && env.get(var).is_none_or(str::is_empty) {
            return Err(Error::InvalidFlag {
                flag,
                value: var.clone(),
                reason: "is not set in this environment; set it, or pass --allow-unset when it is set only where the worker runs".into(),
            });
        }
        return Ok(Some(Credential::OauthTokenEnv(var.clone())));
    }
    let path = args.oauth_token_file.as_ref().expect("matched above");
    Ok(Some(Credential::OauthTokenFile(absolute(flag, path)?)))
}

/// Adds an account. A login directory that is not here, or a key variable that is not set,
/// is refused (exit 2); a directory that holds no login yet, or an unusable one, is added
/// with a warning, since `moonauth login RUNTIME --account ALIAS` fills it afterwards.
fn add(store: &Store, args: AccountAddArgs, env: &Env, now: SystemTime) -> Result<Exit> {
    accounts::validate_alias(&args.alias)?;
    let runtime = parse_runtime("--runtime", &args.runtime)?;
    let account = Account::new(&args.alias, runtime, credential(&args, env)?, args.priority);
    let mut guard = store.lock(DEFAULT_LOCK_TIMEOUT)?;
    guard.state_mut().add(account.clone())?;
    guard.commit()?;
    let row = AccountRow::probed(&account, env, now);
    if let Some(problem) = &row.problem {
        tracing::warn!(
            "account {} added, but it cannot be used yet: {}; fix: {}",
            account.alias,
            problem.detail,
            problem.fix
        );
    }
    let report = ChangeReport::new(Action::Added, row);
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
    let report = ChangeReport::new(action, AccountRow::new(&account, now));
    super::written(output::emit(&report, args.json))?;
    Ok(Exit::Ok)
}

/// Lists the accounts, each probed in this environment: never `ready` when its login
/// directory or key is not usable here.
fn ls(store: &Store, args: AccountLsArgs, env: &Env, now: SystemTime) -> Result<Exit> {
    let only = args
        .runtime
        .as_deref()
        .map(|r| parse_runtime("--runtime", r))
        .transpose()?;
    let state = store.read_unlocked()?;
    let report = AccountsReport::new(
        store.dir().to_path_buf(),
        state.revision,
        state
            .accounts
            .iter()
            .filter(|a| only.is_none_or(|r| a.runtime == r))
            .map(|a| AccountRow::probed(a, env, now))
            .collect(),
        state.set_aside.clone(),
    );
    super::written(output::emit(&report, args.json))?;
    Ok(Exit::Ok)
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
    let report = PickReport::new(
        runtime,
        picked
            .as_deref()
            .and_then(|alias| state.account(alias))
            .map(|a| AccountRow::new(a, now)),
        picked.is_some() && !args.peek,
        ranked.iter().map(|c| AccountRow::new(c.account, now)).collect(),
    );
    super::written(output::emit(&report, args.json))?;
    Ok(report.exit())
}

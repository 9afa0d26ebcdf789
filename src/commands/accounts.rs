//! `moonauth accounts add|ls|enable|disable|rm|pick|force|log`: the account records in
//! the state store, rotation's decisions and force mode. Changes go through the store's lock; `ls` and `pick --peek` read without it.
//! Each subcommand builds one report ([`crate::state::report`]); `--json` prints the
//! same struct.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::agents::{self, Runtime};
use crate::cli::{
    AccountAddArgs, AccountArgs, AccountForceArgs, AccountLogArgs, AccountLsArgs, AccountPickArgs, AccountsCommand,
};
use crate::config::{self, Config, Overrides};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::output;
use crate::rotation::log::{Logged, Record};
use crate::rotation::report::{ForceReport, LogReport, PickReport};
use crate::rotation::{self, settings, Settings};
use crate::source::Env;
use crate::state::accounts::{self, Account, Credential, State};
use crate::state::report::{AccountRow, AccountsReport, Action, ChangeReport};
use crate::state::steering::ForceEnd;
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
        AccountsCommand::Pick(args) => pick(&store, args, env, now),
        AccountsCommand::Force(args) => force(&store, args, env, now),
        AccountsCommand::Log(args) => log(&store, args),
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
            .map(|a| AccountRow::probed(a, env, now).with_usage(&state, now))
            .collect(),
        state.set_aside.clone(),
        state.force.clone().filter(|f| f.active(now)),
    );
    super::written(output::emit(&report, args.json))?;
    Ok(Exit::Ok)
}

/// The settings in effect (store < environment < `flags`) for a command over `state`.
pub(crate) fn settings_of(state: &State, env: &Env, flags: &settings::Flags) -> Result<Settings> {
    Ok(settings::resolve(&state.settings, env, flags)?)
}

/// Picks the next account. Without `--peek` the decision is recorded under the store's
/// lock (the account marked used, so round-robin moves on; force mode cleared when the
/// decision ended it) and logged.
fn pick(store: &Store, args: AccountPickArgs, env: &Env, now: SystemTime) -> Result<Exit> {
    let runtime = parse_runtime("RUNTIME", &args.runtime)?;
    let flags = settings::Flags {
        strategy: args
            .strategy
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: crate::state::steering::SettingError| e.at("flag --strategy"))?,
    };
    let (state, decision, settings) = if args.peek {
        let state = store.read_unlocked()?;
        let settings = settings_of(&state, env, &flags)?;
        let decision = rotation::decide_here(&state, runtime, &settings, env, now, &mut fastrand::Rng::new());
        (state, decision, settings)
    } else {
        // Decide and record under one lock, so two orchestrators picking at once take
        // turns instead of both taking the same account.
        let mut guard = store.lock(DEFAULT_LOCK_TIMEOUT)?;
        let settings = settings_of(guard.state(), env, &flags)?;
        let decision = rotation::decide_here(guard.state(), runtime, &settings, env, now, &mut fastrand::Rng::new());
        rotation::force::record(guard.state_mut(), &decision, now)?;
        let state = guard.state().clone();
        guard.commit()?;
        store.append_decision(&Record::new(&decision, now, None, "accounts pick").line())?;
        (state, decision, settings)
    };
    let report = PickReport::new(&state, &decision, &settings, !args.peek, now);
    super::written(output::emit(&report, args.json))?;
    Ok(report.exit())
}

/// `accounts force ALIAS [--for D]` and `accounts force --clear`.
fn force(store: &Store, args: AccountForceArgs, env: &Env, now: SystemTime) -> Result<Exit> {
    let mut guard = store.lock(DEFAULT_LOCK_TIMEOUT)?;
    let settings = settings_of(guard.state(), env, &settings::Flags::default())?;
    let (action, ended) = match &args.alias {
        None => {
            let was = guard.state().force.clone();
            let action = rotation::force::clear(guard.state_mut());
            let strategy =
                rotation::force::strategy_after(was.as_ref().filter(|f| f.active(now)), settings.strategy.value);
            guard.commit()?;
            let state = store.read_unlocked()?;
            let ended = was.map(|_| ForceEnd::Cleared);
            let report = ForceReport::new(action, &state, strategy, ended, now);
            super::written(output::emit(&report, args.json))?;
            return Ok(Exit::Ok);
        }
        Some(alias) => {
            let duration =
                rotation::steer::parse_force_duration(&args.duration).map_err(|reason| Error::InvalidFlag {
                    flag: "--for",
                    value: args.duration.clone(),
                    reason,
                })?;
            let by = forced_by(env);
            let action = rotation::steer::force(guard.state_mut(), alias, duration, &by, env, now)?.map_err(|why| {
                Error::InvalidFlag {
                    flag: "ALIAS",
                    value: alias.clone(),
                    reason: format!("cannot be forced now: {why}"),
                }
            })?;
            (action, None)
        }
    };
    guard.commit()?;
    let state = store.read_unlocked()?;
    let report = ForceReport::new(action, &state, settings.strategy.value, ended, now);
    super::written(output::emit(&report, args.json))?;
    Ok(Exit::Ok)
}

/// Who forces: `user@host` from this environment.
fn forced_by(env: &Env) -> String {
    let user = env
        .non_blank("USER")
        .or_else(|| env.non_blank("LOGNAME"))
        .unwrap_or("unknown");
    let host = crate::fsx::read_file(Path::new("/proc/sys/kernel/hostname"), 256)
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    crate::redact::printable(&format!("{user}@{host}"), 120)
}

/// `accounts log`: the last decisions, and with `--follow` each new one as it is logged.
fn log(store: &Store, args: AccountLogArgs) -> Result<Exit> {
    let lines = store.decisions(args.limit)?;
    if !args.follow {
        let report = LogReport::new(&lines);
        super::written(output::emit(&report, args.json))?;
        return Ok(Exit::Ok);
    }
    let mut last = lines.last().cloned();
    let print = |batch: &[String]| -> Result<()> {
        for line in batch {
            if let Some(logged) = Logged::parse(line) {
                if args.json {
                    super::written(output::emit_line(&logged))?;
                } else {
                    super::written(output::emit(&LogReport::new(std::slice::from_ref(line)), false))?;
                }
            }
        }
        Ok(())
    };
    print(&lines)?;
    // Polls the log: each round reads the newest lines and prints those after the last
    // one printed. Ends when stdout closes (a broken pipe) or on a signal.
    loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let now = store.decisions(200)?;
        let fresh: Vec<String> = match last.as_ref().and_then(|l| now.iter().rposition(|x| x == l)) {
            Some(i) => now[i + 1..].to_vec(),
            None => now.clone(),
        };
        if !fresh.is_empty() {
            print(&fresh)?;
            last = fresh.last().cloned();
        }
    }
}

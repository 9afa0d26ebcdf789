//! `moonauth settings get|set|reset`: the rotation settings kept in the state store.
//! A value is checked before anything is written: an invalid one changes nothing and
//! exits 11, naming the field and its rule.

use std::time::SystemTime;

use crate::cli::{SettingsCommand, SettingsGetArgs, SettingsResetArgs, SettingsSetArgs};
use crate::config::{Config, Overrides};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::output;
use crate::rotation::report::SettingsReport;
use crate::rotation::settings::{self, Flags};
use crate::source::Env;
use crate::state::accounts::State;
use crate::state::steering::{self, SettingError, StoredSettings};
use crate::state::store::{Store, DEFAULT_LOCK_TIMEOUT};

pub fn run(cmd: SettingsCommand, env: &Env) -> Result<Exit> {
    let config = Config::resolve(env, &Overrides::default())?;
    let store = crate::state::open(&config)?;
    let now = super::clock(env)?.now();
    match cmd {
        SettingsCommand::Get(args) => get(&store, args, env, now),
        SettingsCommand::Set(args) => set(&store, args, env, now),
        SettingsCommand::Reset(args) => reset(&store, args, env, now),
    }
}

fn invalid(error: SettingError) -> Error {
    error.at("settings set")
}

fn emit(
    action: &'static str,
    state: &State,
    env: &Env,
    only: Option<&str>,
    json: bool,
    now: SystemTime,
) -> Result<Exit> {
    let resolved = settings::resolve(&state.settings, env, &Flags::default())?;
    let report = SettingsReport::new(action, &resolved, state, only, now);
    super::written(output::emit(&report, json))?;
    Ok(Exit::Ok)
}

fn check_key(key: &str) -> Result<()> {
    let weight_alias = key.strip_prefix("weight.");
    if settings::KEYS.contains(&key) || weight_alias.is_some_and(|a| crate::state::accounts::validate_alias(a).is_ok())
    {
        Ok(())
    } else {
        Err(invalid(SettingError::new(
            "key",
            key,
            "one of strategy, preset, weight.ALIAS, threshold.critical, threshold.low",
        )))
    }
}

fn get(store: &Store, args: SettingsGetArgs, env: &Env, now: SystemTime) -> Result<Exit> {
    if let Some(key) = &args.key {
        check_key(key)?;
    }
    let state = store.read_unlocked()?;
    emit("get", &state, env, args.key.as_deref(), args.json, now)
}

/// Applies `key = value` to the stored settings, checking the value and the thresholds
/// as they will be in effect.
fn apply(stored: &mut StoredSettings, key: &str, value: &str) -> std::result::Result<(), SettingError> {
    match key {
        "strategy" => stored.strategy = Some(value.parse()?),
        "preset" => stored.preset = Some(value.parse()?),
        "threshold.critical" => stored.critical = Some(steering::parse_threshold(key, value)?),
        "threshold.low" => stored.low = Some(steering::parse_threshold(key, value)?),
        _ => {
            let alias = key.strip_prefix("weight.").unwrap_or(key);
            stored
                .weights
                .insert(alias.to_string(), steering::parse_weight(key, value)?);
        }
    }
    Ok(())
}

fn set(store: &Store, args: SettingsSetArgs, env: &Env, now: SystemTime) -> Result<Exit> {
    check_key(&args.key)?;
    let mut guard = store.lock(DEFAULT_LOCK_TIMEOUT)?;
    let mut stored = guard.state().settings.clone();
    apply(&mut stored, &args.key, &args.value).map_err(invalid)?;
    // The thresholds as stored must keep critical < low with the preset's defaults.
    let preset = stored.preset.unwrap_or_default();
    let (critical, low) = preset.thresholds();
    let (critical, low) = (stored.critical.unwrap_or(critical), stored.low.unwrap_or(low));
    if critical >= low {
        let field = if args.key == "threshold.low" {
            SettingError::new(
                "threshold.low",
                &low.to_string(),
                &format!("above threshold.critical ({critical})"),
            )
        } else {
            SettingError::new(
                "threshold.critical",
                &critical.to_string(),
                &format!("below threshold.low ({low})"),
            )
        };
        return Err(invalid(field));
    }
    if let Some(alias) = args.key.strip_prefix("weight.") {
        if guard.state().account(alias).is_none() {
            return Err(Error::UnknownAccount {
                alias: alias.to_string(),
            });
        }
    }
    // A strategy set while an account is forced is the one in effect when the force ends.
    if let (Some(strategy), Some(force)) = (stored.strategy, guard.state_mut().force.as_mut()) {
        if args.key == "strategy" {
            force.replaced = strategy;
        }
    }
    guard.state_mut().settings = stored;
    let state = guard.state().clone();
    guard.commit()?;
    emit("set", &state, env, None, args.json, now)
}

fn reset(store: &Store, args: SettingsResetArgs, env: &Env, now: SystemTime) -> Result<Exit> {
    let mut guard = store.lock(DEFAULT_LOCK_TIMEOUT)?;
    guard.state_mut().settings = StoredSettings::default();
    let state = guard.state().clone();
    guard.commit()?;
    emit("reset", &state, env, None, args.json, now)
}

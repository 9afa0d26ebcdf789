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

fn get(store: &Store, args: SettingsGetArgs, env: &Env, now: SystemTime) -> Result<Exit> {
    if let Some(key) = &args.key {
        steering::check_key(key).map_err(invalid)?;
    }
    let state = store.read_unlocked()?;
    emit("get", &state, env, args.key.as_deref(), args.json, now)
}

fn set(store: &Store, args: SettingsSetArgs, env: &Env, now: SystemTime) -> Result<Exit> {
    let mut guard = store.lock(DEFAULT_LOCK_TIMEOUT)?;
    let mut stored = guard.state().settings.clone();
    stored.set(&args.key, &args.value).map_err(invalid)?;
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

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
use crate::rotation::steer;
use crate::source::Env;
use crate::state::accounts::State;
use crate::state::steering::SettingError;
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
    steer::check_key(key).map_err(invalid)
}

fn get(store: &Store, args: SettingsGetArgs, env: &Env, now: SystemTime) -> Result<Exit> {
    if let Some(key) = &args.key {
        check_key(key)?;
    }
    let state = store.read_unlocked()?;
    emit("get", &state, env, args.key.as_deref(), args.json, now)
}

fn set(store: &Store, args: SettingsSetArgs, env: &Env, now: SystemTime) -> Result<Exit> {
    check_key(&args.key)?;
    let mut guard = store.lock(DEFAULT_LOCK_TIMEOUT)?;
    steer::set_settings(guard.state_mut(), &[(args.key, args.value)], "settings set")?;
    let state = guard.state().clone();
    guard.commit()?;
    emit("set", &state, env, None, args.json, now)
}

fn reset(store: &Store, args: SettingsResetArgs, env: &Env, now: SystemTime) -> Result<Exit> {
    let mut guard = store.lock(DEFAULT_LOCK_TIMEOUT)?;
    steer::reset_settings(guard.state_mut());
    let state = guard.state().clone();
    guard.commit()?;
    emit("reset", &state, env, None, args.json, now)
}

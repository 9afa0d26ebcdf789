//! Steering the rotation: the changes `settings set|reset` and `accounts force` make to
//! the state, each checked before anything changes, so the CLI and the dashboard refuse
//! the same values with the same words. The caller holds the store's lock and commits.

use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::source::Env;
use crate::state::accounts::State;
use crate::state::report::login_problems;
use crate::state::steering::{self, SettingError, StoredSettings};

use super::report::ForceAction;
use super::settings::{self, Flags, KEYS};
use super::{eligibility, Eligibility, Inputs};

/// The rule of a settings key.
pub const KEY_RULE: &str = "one of strategy, preset, weight.ALIAS, threshold.critical, threshold.low";

/// Checks that `key` is a settings key (`weight.ALIAS` with a valid alias included).
pub fn check_key(key: &str) -> std::result::Result<(), SettingError> {
    let weight_alias = key.strip_prefix("weight.");
    if KEYS.contains(&key) || weight_alias.is_some_and(|a| crate::state::accounts::validate_alias(a).is_ok()) {
        Ok(())
    } else {
        Err(SettingError::new("key", key, KEY_RULE))
    }
}

/// Applies `key = value` to stored settings, checking the value's own rule.
fn apply(stored: &mut StoredSettings, key: &str, value: &str) -> std::result::Result<(), SettingError> {
    check_key(key)?;
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

/// Sets every `(key, value)` of `pairs` in the stored settings, all or none: each value
/// keeps its rule, the thresholds as they will be in effect keep critical < low, a
/// weight names an account. `origin` names where the values came from in errors
/// (`settings set`, `dashboard`). A strategy set while an account is forced is the one
/// in effect when the force ends.
pub fn set_settings(state: &mut State, pairs: &[(String, String)], origin: &str) -> Result<()> {
    let invalid = |e: SettingError| e.at(origin);
    let mut stored = state.settings.clone();
    for (key, value) in pairs {
        apply(&mut stored, key, value).map_err(invalid)?;
    }
    let preset = stored.preset.unwrap_or_default();
    let (critical, low) = preset.thresholds();
    let (critical, low) = (stored.critical.unwrap_or(critical), stored.low.unwrap_or(low));
    if critical >= low {
        let low_was_set = pairs.iter().any(|(k, _)| k == "threshold.low");
        let critical_was_set = pairs.iter().any(|(k, _)| k == "threshold.critical");
        let error = if low_was_set && !critical_was_set {
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
        return Err(invalid(error));
    }
    for (key, _) in pairs {
        if let Some(alias) = key.strip_prefix("weight.") {
            if state.account(alias).is_none() {
                return Err(Error::UnknownAccount {
                    alias: alias.to_string(),
                });
            }
        }
    }
    if pairs.iter().any(|(k, _)| k == "strategy") {
        if let (Some(strategy), Some(force)) = (stored.strategy, state.force.as_mut()) {
            force.replaced = strategy;
        }
    }
    state.settings = stored;
    Ok(())
}

/// Forgets the stored settings: the defaults (and the environment) are in effect again.
pub fn reset_settings(state: &mut State) {
    state.settings = StoredSettings::default();
}

/// Forces `alias` for `duration` from `now`, by `by`, when it exists and is eligible
/// now (its login checked in this environment). `Ok(Err(why))` when it cannot be
/// forced now; forcing the alias already forced keeps its time.
pub fn force(
    state: &mut State,
    alias: &str,
    duration: Duration,
    by: &str,
    env: &Env,
    now: SystemTime,
) -> Result<std::result::Result<ForceAction, String>> {
    let settings = settings::resolve(&state.settings, env, &Flags::default())?;
    let account = state
        .account(alias)
        .ok_or_else(|| Error::UnknownAccount { alias: alias.into() })?;
    let problems = login_problems(state, account.runtime, env, now);
    let inputs = Inputs {
        now,
        settings: &settings,
        login_problems: &problems,
    };
    if let Eligibility::Out { why, .. } = eligibility(state, account, &inputs) {
        return Ok(Err(why));
    }
    Ok(Ok(super::force::force(
        state,
        alias,
        duration,
        by,
        settings.strategy.value,
        now,
    )))
}

/// Parses a force duration (`30m`, `24h`, `1d`): more than zero.
pub fn parse_force_duration(value: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(value.trim())
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "expected a duration such as 30m, 2h or 1d".to_string())
}

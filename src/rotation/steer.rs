//! Steering the rotation: the changes `settings set|reset` and `accounts force` make to
//! the state, each checked before anything changes, so the CLI and the dashboard refuse
//! the same values with the same words. The caller holds the store's lock and commits.

use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::source::Env;
use crate::state::accounts::State;
use crate::state::report::login_problems;
use crate::state::steering::{SettingError, StoredSettings};

use super::report::ForceAction;
use super::settings::{self, Flags};
use super::{eligibility, Eligibility, Inputs};

/// Sets every `(key, value)` of `pairs` in the stored settings, all or none, each by
/// [`StoredSettings::set`] (the rules of `settings set`): the thresholds are applied in
/// the order that keeps critical < low on the way when the pair given keeps it at the
/// end; a weight must name an account. `origin` names where the values came from in
/// errors (`dashboard`). A strategy set while an account is forced is the one in
/// effect when the force ends.
pub fn set_settings(state: &mut State, pairs: &[(String, String)], origin: &str) -> Result<()> {
    let invalid = |e: SettingError| e.at(origin);
    let mut stored = state.settings.clone();
    let is_threshold = |k: &str| k.starts_with("threshold.");
    for (key, value) in pairs.iter().filter(|(k, _)| !is_threshold(k)) {
        stored.set(key, value).map_err(invalid)?;
    }
    let mut thresholds: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| is_threshold(k)).collect();
    if thresholds.len() == 2 {
        // Low first when the current critical stays under the new low; else critical first.
        let (critical_now, _) = stored.preset.unwrap_or_default().thresholds();
        let critical_now = stored.critical.unwrap_or(critical_now);
        let new_low = thresholds
            .iter()
            .find(|(k, _)| k == "threshold.low")
            .and_then(|(_, v)| v.trim().parse::<u8>().ok());
        let low_first = new_low.is_some_and(|low| critical_now < low);
        thresholds.sort_by_key(|(k, _)| (k == "threshold.low") != low_first);
    }
    for (key, value) in thresholds {
        stored.set(key, value).map_err(invalid)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn thresholds_given_together_are_checked_as_they_end_up() {
        let mut state = State::default();
        // From the defaults 10 / 30: critical 40 alone would break critical < low.
        set_settings(
            &mut state,
            &pairs(&[("threshold.critical", "40"), ("threshold.low", "60")]),
            "t",
        )
        .unwrap();
        assert_eq!((state.settings.critical, state.settings.low), (Some(40), Some(60)));
        // And back down: low 20 alone would break it the other way.
        set_settings(
            &mut state,
            &pairs(&[("threshold.low", "20"), ("threshold.critical", "5")]),
            "t",
        )
        .unwrap();
        assert_eq!((state.settings.critical, state.settings.low), (Some(5), Some(20)));
        // A pair that ends wrong changes nothing.
        let before = state.settings.clone();
        let err = set_settings(
            &mut state,
            &pairs(&[("threshold.critical", "50"), ("threshold.low", "40")]),
            "t",
        );
        assert!(err.is_err());
        assert_eq!(state.settings, before);
    }

    #[test]
    fn one_bad_value_refuses_all_and_a_weight_names_an_account() {
        let mut state = State::default();
        let err = set_settings(&mut state, &pairs(&[("strategy", "priority"), ("preset", "x")]), "t").unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::InvalidSetting);
        assert_eq!(state.settings, StoredSettings::default());
        let err = set_settings(&mut state, &pairs(&[("weight.nobody", "0.5")]), "t").unwrap_err();
        assert!(matches!(err, Error::UnknownAccount { .. }), "{err}");
    }
}

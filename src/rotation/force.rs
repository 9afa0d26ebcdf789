//! Force mode and recording a decision: the state changes rotation asks for, applied
//! to a [`State`] the caller holds under the store's lock. Force-mode rules (issue 14):
//! an eligible forced account is always chosen; expiry, disabling, removal or
//! ineligibility clears it at once and the strategy it replaced is in effect again;
//! forcing the same alias again does not extend its time; it is kept in the store, so
//! it survives restarts.

use std::time::{Duration, SystemTime};

use crate::error::Result;
use crate::state::accounts::State;
use crate::state::steering::{Force, Strategy};

use super::decide::Decision;
use super::report::ForceAction;

/// How long `accounts force` holds without `--for`.
pub const DEFAULT_FORCE_FOR: Duration = Duration::from_secs(24 * 3600);

/// Records `decision` in `state`: the chosen account was used at `now`, and a force
/// mode the decision ended is cleared (its replaced strategy is in effect again).
pub fn record(state: &mut State, decision: &Decision, now: SystemTime) -> Result<()> {
    if let Some(end) = decision
        .force
        .as_ref()
        .and_then(|f| f.ended.map(|e| (f.force.alias.clone(), e)))
    {
        // Only the force the decision saw: another process may have forced anew since.
        if state.force.as_ref().is_some_and(|f| f.alias == end.0) {
            state.end_force_of(&end.0, end.1);
        }
    }
    if let Some(alias) = &decision.chosen {
        state.mark_used(alias, now)?;
    }
    Ok(())
}

/// Forces `alias` for `duration` from `now`, by `by`; `strategy` is the one in effect
/// (the one force mode replaces). Forcing the alias already forced keeps its time.
/// The caller has checked that the account exists and is eligible.
pub fn force(
    state: &mut State,
    alias: &str,
    duration: Duration,
    by: &str,
    strategy: Strategy,
    now: SystemTime,
) -> ForceAction {
    match &state.force {
        Some(f) if f.alias == alias && f.active(now) => ForceAction::AlreadyForced,
        current => {
            // Replacing another forced account keeps the strategy the first one replaced.
            let replaced = current
                .as_ref()
                .filter(|f| f.active(now))
                .map_or(strategy, |f| f.replaced);
            state.force = Some(Force {
                alias: alias.to_string(),
                until: now + duration,
                replaced,
                forced_by: by.to_string(),
                since: now,
            });
            ForceAction::Forced
        }
    }
}

/// Clears force mode; returns what it did.
pub fn clear(state: &mut State) -> ForceAction {
    match state.force.take() {
        Some(f) => {
            tracing::info!("force mode on {} cleared", f.alias);
            ForceAction::Cleared
        }
        None => ForceAction::NotForced,
    }
}

/// The strategy in effect after force mode: the one it replaced (when it held),
/// else `configured`.
pub fn strategy_after(ended: Option<&Force>, configured: Strategy) -> Strategy {
    ended.map_or(configured, |f| f.replaced)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::agents::Runtime;
    use crate::state::accounts::{Account, Credential};
    use crate::time::parse_time;

    const MIN: Duration = Duration::from_secs(60);

    fn t0() -> SystemTime {
        parse_time("2026-11-24T12:00:00Z").unwrap()
    }

    fn state() -> State {
        let a = |alias: &str| {
            Account::new(
                alias,
                Runtime::Claude,
                Credential::Login {
                    dir: PathBuf::from("/l"),
                    volume: None,
                },
                0,
            )
        };
        State {
            accounts: vec![a("a"), a("b")],
            ..State::default()
        }
    }

    #[test]
    fn forcing_the_same_alias_again_does_not_extend_its_time() {
        let mut s = state();
        assert_eq!(
            force(&mut s, "a", 60 * MIN, "ops@h", Strategy::Priority, t0()),
            ForceAction::Forced
        );
        let until = s.force.as_ref().unwrap().until;
        assert_eq!(
            force(&mut s, "a", 600 * MIN, "ops@h", Strategy::RoundRobin, t0() + 30 * MIN),
            ForceAction::AlreadyForced
        );
        assert_eq!(s.force.as_ref().unwrap().until, until);
        // Another alias replaces it but keeps the strategy to restore.
        assert_eq!(
            force(&mut s, "b", 5 * MIN, "dashboard", Strategy::RoundRobin, t0() + MIN),
            ForceAction::Forced
        );
        let f = s.force.clone().unwrap();
        assert_eq!(
            (f.alias.as_str(), f.replaced, f.forced_by.as_str()),
            ("b", Strategy::Priority, "dashboard")
        );
        // After expiry, forcing again starts a new period.
        assert_eq!(
            force(&mut s, "b", 5 * MIN, "x", Strategy::RoundRobin, t0() + 10 * MIN),
            ForceAction::Forced
        );
        assert_eq!(s.force.as_ref().unwrap().replaced, Strategy::RoundRobin);
        assert_eq!(clear(&mut s), ForceAction::Cleared);
        assert_eq!(clear(&mut s), ForceAction::NotForced);
        assert!(s.force.is_none());
    }
}

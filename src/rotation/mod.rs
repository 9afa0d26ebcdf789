//! Rotation: the one place that decides which credential a task uses next — the pick
//! order of `accounts pick`, and for `moonauth run` the order of its attempts and when an
//! API key may follow the subscriptions ([`plan`]). Everything here is pure: it takes the
//! state and the clock's `now` and returns decisions. No randomness: the order is total,
//! and concurrent pickers spread because `accounts pick` marks its pick under the lock.
//! What an account is and how its history is recorded is [`crate::state::accounts`]'s.

pub mod plan;

use std::cmp::Ordering;
use std::time::SystemTime;

use crate::agents::Runtime;
use crate::state::accounts::{availability, Account, AccountKind, Availability, State};

pub use plan::{Choice, EnvCredentials, KeyNotUsed, KeySource, PassedOver, Plan};

/// The order accounts are tried in: OAuth before API keys, lower priority first, then
/// the least recently used (never used first), then by alias so the order is total.
pub fn pick_order(a: &Account, b: &Account) -> Ordering {
    (a.kind == AccountKind::ApiKey)
        .cmp(&(b.kind == AccountKind::ApiKey))
        .then(a.priority.cmp(&b.priority))
        .then(a.last_used.cmp(&b.last_used))
        .then_with(|| a.alias.cmp(&b.alias))
}

/// The accounts of `runtime` that can be picked at `now`, best first.
pub fn eligible(state: &State, runtime: Runtime, now: SystemTime) -> Vec<&Account> {
    let mut ready: Vec<&Account> = state
        .accounts
        .iter()
        .filter(|a| a.runtime == runtime && availability(a, now) == Availability::Ready)
        .collect();
    ready.sort_by(|a, b| pick_order(a, b));
    ready
}

/// The account a new task of `runtime` should use at `now`, if any: the first of
/// [`eligible`], without ranking the others (the store benchmark's hot path).
pub fn pick(state: &State, runtime: Runtime, now: SystemTime) -> Option<&Account> {
    eligible(state, runtime, now).into_iter().next()
}

/// An account of the runtime as the decision saw it.
#[derive(Debug, Clone, Copy)]
pub struct Considered<'a> {
    pub account: &'a Account,
    /// `Ready`, or why it was not chosen.
    pub availability: Availability,
}

/// What [`next`] decided: the account to use, and every account of the runtime with
/// whether it could be used.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    /// The account a new task should use; `None` when none can be used now.
    pub next: Option<&'a Account>,
    /// The usable accounts in pick order, then the others soonest back first: cooling
    /// down (by reset time), needing a re-login, disabled (each in pick order).
    pub ranked: Vec<Considered<'a>>,
}

/// Decides the account a new task of `runtime` uses at `now`, with the reason each
/// other account was not chosen.
pub fn next(state: &State, runtime: Runtime, now: SystemTime) -> Decision<'_> {
    let mut ranked: Vec<Considered> = state
        .accounts
        .iter()
        .filter(|a| a.runtime == runtime)
        .map(|account| Considered {
            account,
            availability: availability(account, now),
        })
        .collect();
    let rank = |c: &Considered| match c.availability {
        Availability::Ready => (0, None),
        Availability::CoolingDown(until) => (1, Some(until)),
        Availability::NeedsRelogin => (2, None),
        Availability::Disabled => (3, None),
    };
    ranked.sort_by(|a, b| rank(a).cmp(&rank(b)).then(pick_order(a.account, b.account)));
    let next = ranked
        .first()
        .filter(|c| c.availability == Availability::Ready)
        .map(|c| c.account);
    Decision { next, ranked }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::state::accounts::Credential;
    use crate::time::parse_time;

    const MIN: Duration = Duration::from_secs(60);

    fn t0() -> SystemTime {
        parse_time("2026-11-24T12:00:00Z").unwrap()
    }

    fn oauth(alias: &str, priority: i32) -> Account {
        Account::new(
            alias,
            Runtime::Claude,
            Credential::Login {
                dir: PathBuf::from(format!("/home/app/.claude-{alias}")),
                volume: None,
            },
            priority,
        )
    }

    fn state(accounts: Vec<Account>) -> State {
        State {
            accounts,
            ..State::default()
        }
    }

    fn aliases(list: Vec<&Account>) -> Vec<&str> {
        list.into_iter().map(|a| a.alias.as_str()).collect()
    }

    #[test]
    fn disabled_accounts_are_never_picked() {
        let mut s = state(vec![oauth("a", 0), oauth("b", 5)]);
        s.set_enabled("a", false).unwrap();
        assert_eq!(pick(&s, Runtime::Claude, t0()).unwrap().alias, "b");
        s.set_enabled("b", false).unwrap();
        assert!(pick(&s, Runtime::Claude, t0()).is_none());
        // Even a disabled account that is otherwise perfect: best priority, never used, no cooldown.
        assert!(eligible(&s, Runtime::Claude, t0() + Duration::from_secs(86400 * 365)).is_empty());
    }

    #[test]
    fn needs_relogin_is_never_picked_until_enabled_again() {
        let mut s = state(vec![oauth("a", 0), oauth("b", 1)]);
        s.record_auth_failure("a", "401 token expired", t0()).unwrap();
        assert_eq!(pick(&s, Runtime::Claude, t0()).unwrap().alias, "b");
        assert_eq!(availability(s.account("a").unwrap(), t0()), Availability::NeedsRelogin);
        assert!(s
            .account("a")
            .unwrap()
            .fix(t0())
            .unwrap()
            .contains("moonauth login claude --account a"));
        s.set_enabled("a", true).unwrap();
        assert_eq!(pick(&s, Runtime::Claude, t0()).unwrap().alias, "a");
    }

    #[test]
    fn oauth_before_api_key_then_priority_then_least_recently_used() {
        let key = Account::new(
            "key",
            Runtime::Claude,
            Credential::ApiKeyEnv("ANTHROPIC_API_KEY".into()),
            -100,
        );
        let mut s = state(vec![key, oauth("c", 1), oauth("b", 1), oauth("a", 2)]);
        // b and c tie on priority and have never been used: alias decides.
        assert_eq!(aliases(eligible(&s, Runtime::Claude, t0())), ["b", "c", "a", "key"]);
        s.mark_used("b", t0()).unwrap();
        assert_eq!(aliases(eligible(&s, Runtime::Claude, t0())), ["c", "b", "a", "key"]);
        s.mark_used("c", t0() + MIN).unwrap();
        assert_eq!(aliases(eligible(&s, Runtime::Claude, t0())), ["b", "c", "a", "key"]);
        // Another runtime's accounts are not candidates.
        assert!(pick(&s, Runtime::Codex, t0()).is_none());
    }

    #[test]
    fn a_cooling_account_returns_when_its_cooldown_ends() {
        let mut s = state(vec![oauth("a", 0), oauth("b", 1)]);
        let reset = t0() + 30 * MIN;
        assert_eq!(s.record_quota("a", Some(reset), t0()).unwrap(), reset);
        assert_eq!(aliases(eligible(&s, Runtime::Claude, t0())), ["b"]);
        assert_eq!(aliases(eligible(&s, Runtime::Claude, reset - MIN)), ["b"]);
        // At the reset time exactly the account is back, and first again by priority.
        assert_eq!(aliases(eligible(&s, Runtime::Claude, reset)), ["a", "b"]);
        s.record_quota("b", None, t0()).unwrap();
        assert_eq!(aliases(eligible(&s, Runtime::Claude, t0() + 5 * MIN)), ["b"]);
        assert_eq!(aliases(eligible(&s, Runtime::Claude, t0() + 29 * MIN)), ["b"]);
        assert!(eligible(&s, Runtime::Claude, t0() + 4 * MIN).is_empty());
    }

    #[test]
    fn next_picks_the_first_eligible_and_ranks_the_others_soonest_back_first() {
        let mut s = state(vec![
            oauth("off", 0),
            oauth("relogin", 0),
            oauth("cool", 9),
            oauth("ok", 5),
        ]);
        s.set_enabled("off", false).unwrap();
        s.record_auth_failure("relogin", "401", t0()).unwrap();
        s.record_quota("cool", Some(t0() + MIN), t0()).unwrap();
        let d = next(&s, Runtime::Claude, t0());
        assert_eq!(d.next.map(|a| a.alias.as_str()), Some("ok"));
        assert_eq!(
            d.next.map(|a| &a.alias),
            pick(&s, Runtime::Claude, t0()).map(|a| &a.alias)
        );
        let ranked: Vec<(&str, &str)> = d
            .ranked
            .iter()
            .map(|c| (c.account.alias.as_str(), c.availability.as_str()))
            .collect();
        assert_eq!(
            ranked,
            [
                ("ok", "ready"),
                ("cool", "cooling-down"),
                ("relogin", "needs-relogin"),
                ("off", "disabled")
            ]
        );
        s.set_enabled("ok", false).unwrap();
        assert!(next(&s, Runtime::Claude, t0()).next.is_none());
    }
}

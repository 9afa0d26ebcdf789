//! Rotation: the one place that decides which credential a task uses next — the
//! strategy, the tiers and force mode ([`decide`]), the settings in effect and where
//! each came from ([`settings`]), force mode and recording a decision ([`force`]), the
//! reports ([`report`]), the decision log's records ([`log`]), and for
//! `moonauth run` the order of its attempts and when an API key may follow the
//! subscriptions ([`plan`]). Everything here is pure: it takes the state, the settings,
//! the clock's `now` and a seeded random generator and returns decisions. What an
//! account is and how its history is recorded is [`crate::state`]'s.

pub mod decide;
pub mod force;
pub mod log;
pub mod plan;
pub mod report;
pub mod settings;
pub mod steer;

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::agents::Runtime;
use crate::state::accounts::{Account, State};

pub use decide::{decide, eligibility, Candidate, Decision, Eligibility, ForceState, Inputs, Tier};
pub use plan::{Choice, EnvCredentials, KeyNotUsed, KeySource, PassedOver, Plan};
pub use settings::Settings;

/// Decides the next account of `runtime` over `state` as this environment sees it: the
/// logins `env` finds unusable here are out ([`crate::state::report::login_problems`]).
/// What `accounts pick`, `run` and the dashboard call.
pub fn decide_here(
    state: &State,
    runtime: Runtime,
    settings: &Settings,
    env: &crate::source::Env,
    now: SystemTime,
    rng: &mut fastrand::Rng,
) -> Decision {
    let problems = crate::state::report::login_problems(state, runtime, env, now);
    let inputs = Inputs {
        now,
        settings,
        login_problems: &problems,
    };
    decide(state, runtime, &inputs, rng)
}

/// Every account of every runtime as rotation sees it now (each runtime's decision,
/// peeked: nothing is recorded): the dashboard's `GET /api/accounts`.
pub fn fleet(state: &State, settings: &Settings, env: &crate::source::Env, now: SystemTime) -> report::FleetReport {
    let mut rng = fastrand::Rng::new();
    let mut runtimes: Vec<Runtime> = state.accounts.iter().map(|a| a.runtime).collect();
    runtimes.sort_by_key(|r| r.as_str());
    runtimes.dedup();
    let decisions: Vec<Decision> = runtimes
        .into_iter()
        .map(|r| decide_here(state, r, settings, env, now, &mut rng))
        .collect();
    report::FleetReport::new(state, &decisions, settings, now)
}

/// The account a new task of `runtime` should use at `now` under `settings`, if any
/// (no login problems known): the store benchmark's hot path.
pub fn pick<'s>(
    state: &'s State,
    runtime: Runtime,
    settings: &Settings,
    now: SystemTime,
    rng: &mut fastrand::Rng,
) -> Option<&'s Account> {
    let none = BTreeMap::new();
    let inputs = Inputs {
        now,
        settings,
        login_problems: &none,
    };
    decide(state, runtime, &inputs, rng)
        .chosen
        .and_then(|alias| state.account(&alias))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::source::{Source, Sourced};
    use crate::state::accounts::Credential;
    use crate::state::steering::{Force, ForceEnd, Strategy};
    use crate::state::usage::{Capture, Snapshot, Window};
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

    fn with(strategy: Strategy) -> Settings {
        Settings {
            strategy: Sourced::new(strategy, Source::Default),
            ..Settings::default()
        }
    }

    fn run(s: &State, settings: &Settings, now: SystemTime) -> Decision {
        let none = BTreeMap::new();
        let inputs = Inputs {
            now,
            settings,
            login_problems: &none,
        };
        decide(s, Runtime::Claude, &inputs, &mut fastrand::Rng::with_seed(7))
    }

    fn order(d: &Decision) -> Vec<&str> {
        d.order().map(|c| c.alias.as_str()).collect()
    }

    fn reason<'d>(d: &'d Decision, alias: &str) -> &'d str {
        &d.candidates.iter().find(|c| c.alias == alias).unwrap().reason
    }

    fn used(s: &mut State, alias: &str, left: f64, at: SystemTime) {
        s.usage_windows.entry(alias.into()).or_default().record(Snapshot {
            source: Capture {
                run_id: "r".into(),
                at,
                outcome: "success".into(),
            },
            windows: vec![Window {
                name: "five_hour".into(),
                used_percent: 100.0 - left,
                resets_at: Some(at + 200 * MIN),
                window_minutes: None,
                status: None,
            }],
        });
    }

    #[test]
    fn priority_keeps_todays_order_oauth_before_keys_then_priority_then_lru() {
        let key = Account::new(
            "key",
            Runtime::Claude,
            Credential::ApiKeyEnv("ANTHROPIC_API_KEY".into()),
            -100,
        );
        let mut s = state(vec![key, oauth("c", 1), oauth("b", 1), oauth("a", 2)]);
        let p = with(Strategy::Priority);
        assert_eq!(order(&run(&s, &p, t0())), ["b", "c", "a", "key"]);
        s.mark_used("b", t0()).unwrap();
        assert_eq!(order(&run(&s, &p, t0())), ["c", "b", "a", "key"]);
        let d = run(&s, &p, t0());
        assert!(reason(&d, "key").contains("API keys go after OAuth"), "{d:#?}");
        // Another runtime's accounts are not candidates.
        let none = BTreeMap::new();
        let inputs = Inputs {
            now: t0(),
            settings: &p,
            login_problems: &none,
        };
        assert!(decide(&s, Runtime::Codex, &inputs, &mut fastrand::Rng::with_seed(1))
            .chosen
            .is_none());
    }

    #[test]
    fn round_robin_is_the_default_and_takes_turns() {
        let mut s = state(vec![oauth("a", 0), oauth("b", 5), oauth("c", 9)]);
        let rr = Settings::default();
        assert_eq!(rr.strategy.value, Strategy::RoundRobin);
        let mut seen = Vec::new();
        for i in 0..6u32 {
            let now = t0() + i * MIN;
            let d = run(&s, &rr, now);
            let chosen = d.chosen.clone().unwrap();
            s.mark_used(&chosen, now).unwrap();
            seen.push(chosen);
        }
        assert_eq!(seen, ["a", "b", "c", "a", "b", "c"]);
    }

    #[test]
    fn out_accounts_are_never_chosen_and_each_says_why() {
        let mut s = state(vec![
            oauth("off", 0),
            oauth("relogin", 0),
            oauth("cool", 9),
            oauth("ok", 5),
            oauth("broken", 1),
        ]);
        s.set_enabled("off", false).unwrap();
        s.record_auth_failure("relogin", "401", t0()).unwrap();
        s.record_quota("cool", Some(t0() + MIN), t0()).unwrap();
        let problems: BTreeMap<String, String> = [("broken".to_string(), "expired-no-refresh".to_string())].into();
        let settings = Settings::default();
        let inputs = Inputs {
            now: t0(),
            settings: &settings,
            login_problems: &problems,
        };
        let d = decide(&s, Runtime::Claude, &inputs, &mut fastrand::Rng::with_seed(1));
        assert_eq!(d.chosen.as_deref(), Some("ok"));
        let listed: Vec<(&str, &str)> = d
            .candidates
            .iter()
            .map(|c| (c.alias.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(listed[0].0, "ok");
        assert!(listed[0].1.starts_with("chosen by round-robin"), "{listed:?}");
        assert_eq!(listed[1].0, "cool");
        assert!(
            listed[1].1.starts_with("cooling down until 2026-11-24T12:01:00Z"),
            "{listed:?}"
        );
        assert_eq!(listed[2], ("relogin", "needs a re-login (auth-failure)"));
        assert_eq!(listed[3], ("broken", "login unusable here: expired-no-refresh"));
        assert_eq!(listed[4], ("off", "disabled"));
        s.set_enabled("ok", false).unwrap();
        let d = decide(&s, Runtime::Claude, &inputs, &mut fastrand::Rng::with_seed(1));
        assert!(d.chosen.is_none());
        assert_eq!(d.fallback.as_deref(), Some("no account of the runtime is eligible"));
    }

    #[test]
    fn low_goes_after_the_others_and_critical_only_when_nothing_else_is_eligible() {
        let mut s = state(vec![
            oauth("crit", 0),
            oauth("low", 1),
            oauth("fine", 2),
            oauth("unknown", 3),
        ]);
        used(&mut s, "crit", 5.0, t0());
        used(&mut s, "low", 20.0, t0());
        used(&mut s, "fine", 80.0, t0());
        let p = with(Strategy::Priority);
        let d = run(&s, &p, t0() + MIN);
        // An account with no known windows is not low: unknown is not 0 %.
        assert_eq!(order(&d), ["fine", "unknown", "low", "crit"]);
        assert!(reason(&d, "crit").contains("critical: 5% left"), "{d:#?}");
        s.set_enabled("fine", false).unwrap();
        s.set_enabled("unknown", false).unwrap();
        let d = run(&s, &p, t0() + MIN);
        assert_eq!(d.chosen.as_deref(), Some("low"));
        assert!(d.fallback.unwrap().contains("low threshold"));
        s.set_enabled("low", false).unwrap();
        let d = run(&s, &p, t0() + MIN);
        assert_eq!(d.chosen.as_deref(), Some("crit"));
        assert!(d.fallback.unwrap().contains("critical"));
        // An hour later the windows are unknown again: no tier, no judgement.
        let d = run(&s, &p, t0() + 61 * MIN);
        assert!(d.fallback.is_none(), "{d:#?}");
    }

    #[test]
    fn an_account_back_from_a_cooldown_is_on_probation_for_a_while() {
        let mut s = state(vec![oauth("a", 0), oauth("b", 1)]);
        s.record_quota("a", Some(t0() + 30 * MIN), t0()).unwrap();
        let p = with(Strategy::Priority);
        assert_eq!(order(&run(&s, &p, t0() + 29 * MIN)), ["b"]);
        let d = run(&s, &p, t0() + 31 * MIN);
        assert_eq!(order(&d), ["b", "a"]);
        assert!(reason(&d, "a").contains("probation"), "{d:#?}");
        assert_eq!(order(&run(&s, &p, t0() + 41 * MIN)), ["a", "b"]);
    }

    #[test]
    fn drain_soonest_takes_the_window_that_resets_first() {
        let mut s = state(vec![oauth("a", 0), oauth("b", 0), oauth("c", 0)]);
        used(&mut s, "a", 60.0, t0());
        used(&mut s, "b", 60.0, t0() - 30 * MIN);
        let d = run(&s, &with(Strategy::DrainSoonest), t0());
        assert_eq!(order(&d), ["b", "a", "c"]);
        assert!(reason(&d, "b").contains("resets first"), "{d:#?}");
    }

    fn force(alias: &str, until: SystemTime) -> Force {
        Force {
            alias: alias.into(),
            until,
            replaced: Strategy::RoundRobin,
            forced_by: "ops@host".into(),
            since: t0(),
        }
    }

    #[test]
    fn force_lifecycle_chosen_then_ended_by_expiry_disable_removal_or_ineligibility() {
        let mut s = state(vec![oauth("a", 0), oauth("b", 1)]);
        s.mark_used("a", t0()).unwrap();
        s.force = Some(force("a", t0() + 60 * MIN));
        let rr = Settings::default();
        let d = run(&s, &rr, t0() + MIN);
        assert_eq!(d.chosen.as_deref(), Some("a"));
        assert!(reason(&d, "a").contains("forced by ops@host"), "{d:#?}");
        assert!(reason(&d, "b").contains("force mode chose another"));
        // Expired: the strategy is back and the decision says the force ended.
        let d = run(&s, &rr, t0() + 60 * MIN);
        assert_eq!(d.chosen.as_deref(), Some("b"));
        assert_eq!(d.force.as_ref().unwrap().ended, Some(ForceEnd::Expired));
        assert!(d.fallback.unwrap().contains("back to round-robin"));
        // Ineligible (cooling down): ended at once.
        let mut cooled = s.clone();
        cooled.record_quota("a", None, t0()).unwrap();
        let d = run(&cooled, &rr, t0() + MIN);
        assert_eq!(d.force.unwrap().ended, Some(ForceEnd::Ineligible));
        // Disabling or removing clears it in the store at once.
        let mut off = s.clone();
        off.set_enabled("a", false).unwrap();
        assert!(off.force.is_none());
        let mut gone = s.clone();
        gone.remove("a").unwrap();
        assert!(gone.force.is_none());
        // Disabling another account leaves it.
        s.set_enabled("b", false).unwrap();
        assert!(s.force.is_some());
    }

    #[test]
    fn ten_thousand_weighted_picks_match_the_weights_within_two_points() {
        let s = state(vec![oauth("a", 0), oauth("b", 0), oauth("c", 0)]);
        let mut settings = with(Strategy::WeightedRoundRobin);
        for (alias, w) in [("a", 1.0), ("b", 0.5), ("c", 0.25)] {
            settings.weights.insert(alias.into(), Sourced::new(w, Source::Store));
        }
        let none = BTreeMap::new();
        let inputs = Inputs {
            now: t0(),
            settings: &settings,
            login_problems: &none,
        };
        let mut rng = fastrand::Rng::with_seed(42);
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        for _ in 0..10_000 {
            let d = decide(&s, Runtime::Claude, &inputs, &mut rng);
            *counts.entry(d.chosen.unwrap()).or_default() += 1;
        }
        let total = 1.75;
        for (alias, w) in [("a", 1.0), ("b", 0.5), ("c", 0.25)] {
            let share = f64::from(counts[alias]) / 100.0;
            let want = w / total * 100.0;
            assert!(
                (share - want).abs() <= 2.0,
                "{alias}: {share:.1}% vs {want:.1}% ({counts:?})"
            );
        }
    }

    #[test]
    fn the_fleet_lists_every_account_of_every_runtime_with_why() {
        let mut codex = oauth("cx", 0);
        codex.runtime = Runtime::Codex;
        let mut s = state(vec![oauth("a", 0), oauth("b", 0), codex]);
        s.set_enabled("b", false).unwrap();
        s.force = Some(force("a", t0() + 60 * MIN));
        let fleet = fleet(&s, &Settings::default(), &crate::source::Env::default(), t0());
        let rows: Vec<(&str, bool, &str, bool)> = fleet
            .accounts
            .iter()
            .map(|v| (v.row.account.alias.as_str(), v.eligible, v.why.as_str(), v.forced))
            .collect();
        assert_eq!(
            rows,
            [
                ("a", true, "chosen: forced by ops@host", true),
                ("b", false, "disabled", false),
                ("cx", true, "chosen by round-robin (never used)", false),
            ]
        );
        assert_eq!(fleet.force.unwrap().seconds_left, 3600);
        let json = serde_json::to_value(&fleet.accounts[0]).unwrap();
        assert_eq!(json["usage_windows"]["freshness"], "unknown");
        assert_eq!(json["tier"], "normal");
    }

    fn arb_strategy() -> impl proptest::strategy::Strategy<Value = Strategy> {
        prop_oneof![
            Just(Strategy::RoundRobin),
            Just(Strategy::Priority),
            Just(Strategy::WeightedRoundRobin),
            Just(Strategy::DrainSoonest),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the strategy, weights or priorities: the chosen account is eligible,
        /// every out account says why, and when each pick is recorded as a use (as
        /// `accounts pick` does), every eligible account is chosen within a bounded
        /// number of picks — none is starved.
        #[test]
        fn no_eligible_account_is_starved(
            strategy in arb_strategy(),
            priorities in proptest::collection::vec(-3i32..3, 1..6),
            weights in proptest::collection::vec(0.01f64..=1.0, 6),
            disabled in proptest::collection::vec(any::<bool>(), 6),
            seed in any::<u64>(),
        ) {
            let mut s = state(priorities.iter().enumerate().map(|(i, p)| oauth(&format!("a{i}"), *p)).collect());
            for (i, off) in disabled.iter().enumerate().take(priorities.len()) {
                if *off { s.set_enabled(&format!("a{i}"), false).unwrap(); }
            }
            let mut settings = with(strategy);
            for (i, w) in weights.iter().enumerate() {
                settings.weights.insert(format!("a{i}"), Sourced::new(*w, Source::Store));
            }
            let none = BTreeMap::new();
            let mut rng = fastrand::Rng::with_seed(seed);
            let eligible: Vec<String> = s.accounts.iter().filter(|a| a.enabled).map(|a| a.alias.clone()).collect();
            let mut chosen_ever = std::collections::BTreeSet::new();
            // Weighted picks are random: the minimum weight (0.1 of at most 6 × 1) gives
            // each account at least 1/51 per pick, so it is missed in all 2,000 picks with
            // probability under 1e-16: the test does not flake.
            for i in 0..2000u32 {
                let now = t0() + i * MIN;
                let inputs = Inputs { now, settings: &settings, login_problems: &none };
                let d = decide(&s, Runtime::Claude, &inputs, &mut rng);
                for c in &d.candidates {
                    prop_assert!(!c.reason.is_empty());
                }
                match d.chosen {
                    Some(alias) => {
                        prop_assert!(eligible.contains(&alias));
                        s.mark_used(&alias, now).unwrap();
                        chosen_ever.insert(alias);
                    }
                    None => prop_assert!(eligible.is_empty()),
                }
            }
            if strategy == Strategy::Priority {
                // Priority never rotates past a better priority: only the best are chosen.
                let best = s.accounts.iter().filter(|a| a.enabled).map(|a| a.priority).min();
                for alias in &chosen_ever {
                    prop_assert_eq!(Some(s.account(alias).unwrap().priority), best);
                }
            } else {
                prop_assert_eq!(chosen_ever.len(), eligible.len());
            }
        }

        /// Forcing an account that is eligible always chooses it until the force ends.
        #[test]
        fn an_eligible_forced_account_is_always_chosen(
            strategy in arb_strategy(),
            n in 2usize..6,
            target in 0usize..6,
            seed in any::<u64>(),
        ) {
            let target = target % n;
            let mut s = state((0..n).map(|i| oauth(&format!("a{i}"), i as i32)).collect());
            s.force = Some(force(&format!("a{target}"), t0() + 60 * MIN));
            let settings = with(strategy);
            let none = BTreeMap::new();
            let mut rng = fastrand::Rng::with_seed(seed);
            for i in 0..20u32 {
                let now = t0() + i * MIN;
                let inputs = Inputs { now, settings: &settings, login_problems: &none };
                let d = decide(&s, Runtime::Claude, &inputs, &mut rng);
                let chosen = d.chosen.unwrap();
                prop_assert_eq!(&chosen, &format!("a{target}"));
                s.mark_used(&chosen, now).unwrap();
            }
        }
    }
}

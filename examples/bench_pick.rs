//! Benchmark of one rotation decision over a large fleet (docs/benchmarks.md, "Pick"):
//! 1,000 Claude accounts, each with a usage history of 100 snapshots, some cooling
//! down, some disabled, one forced or not; every strategy. Measures `rotation::decide`
//! (what `accounts pick`, `run` and the dashboard call), not the store's file I/O.
//!
//! ```sh
//! cargo run --release --example bench_pick [-- ACCOUNTS ROUNDS]
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use moonauth::agents::Runtime;
use moonauth::rotation::{self, Inputs, Settings};
use moonauth::source::{Source, Sourced};
use moonauth::state::accounts::{Account, Credential, State};
use moonauth::state::steering::{Force, Strategy};
use moonauth::state::usage::{Capture, Snapshot, Window};

fn fleet(n: usize, now: SystemTime, rng: &mut fastrand::Rng) -> State {
    let mut state = State::default();
    for i in 0..n {
        let alias = format!("acct-{i:04}");
        let mut a = Account::new(
            &alias,
            Runtime::Claude,
            Credential::Login {
                dir: PathBuf::from(format!("/home/app/.claude-{alias}")),
                volume: None,
            },
            rng.i32(0..5),
        );
        a.last_used = Some(now - Duration::from_secs(rng.u64(0..86_400)));
        match i % 20 {
            0 => a.enabled = false,
            1 => a.cooldown_until = Some(now + Duration::from_secs(600)),
            _ => {}
        }
        let history = state.usage_windows.entry(alias.clone()).or_default();
        for k in 0..100u64 {
            let at = now - Duration::from_secs(60 * (100 - k));
            history.record(Snapshot {
                source: Capture {
                    run_id: format!("run-{k}"),
                    at,
                    outcome: "success".into(),
                },
                windows: vec![
                    Window {
                        name: "five_hour".into(),
                        used_percent: rng.f64() * 100.0,
                        resets_at: Some(now + Duration::from_secs(rng.u64(60..18_000))),
                        window_minutes: None,
                        status: Some("allowed".into()),
                    },
                    Window {
                        name: "seven_day".into(),
                        used_percent: rng.f64() * 100.0,
                        resets_at: Some(now + Duration::from_secs(rng.u64(3600..604_800))),
                        window_minutes: None,
                        status: Some("allowed".into()),
                    },
                ],
            });
        }
        state.accounts.push(a);
    }
    state
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(1000);
    let rounds = args.get(1).copied().unwrap_or(2000);
    let now = SystemTime::now();
    let mut rng = fastrand::Rng::with_seed(14);
    let mut state = fleet(n, now, &mut rng);
    let none = BTreeMap::new();
    println!("accounts={n} rounds={rounds} (usage history 100 snapshots x 2 windows each)");
    println!(
        "{:<22} {:>7} {:>10} {:>10} {:>10}",
        "strategy", "force", "median_us", "p99_us", "max_us"
    );
    for forced in [false, true] {
        state.force = forced.then(|| Force {
            alias: "acct-0500".into(),
            until: now + Duration::from_secs(3600),
            replaced: Strategy::RoundRobin,
            forced_by: "bench@host".into(),
            since: now,
        });
        for strategy in Strategy::ALL {
            let mut settings = Settings {
                strategy: Sourced::new(strategy, Source::Default),
                ..Settings::default()
            };
            for a in state.accounts.iter().step_by(3) {
                settings
                    .weights
                    .insert(a.alias.clone(), Sourced::new(0.5, Source::Store));
            }
            let inputs = Inputs {
                now,
                settings: &settings,
                login_problems: &none,
            };
            let mut times = Vec::with_capacity(rounds);
            let mut chosen = 0usize;
            for _ in 0..rounds {
                let start = Instant::now();
                let d = rotation::decide(&state, Runtime::Claude, &inputs, &mut rng);
                times.push(start.elapsed());
                chosen += usize::from(d.chosen.is_some());
            }
            assert_eq!(chosen, rounds, "every decision chose an account");
            if strategy == Strategy::RoundRobin && !forced {
                let d = rotation::decide(&state, Runtime::Claude, &inputs, &mut rng);
                let line = rotation::log::Record::new(&d, now, Some("run-bench"), "bench").line();
                println!("(one decision-log line over {n} accounts: {} bytes)", line.len());
            }
            times.sort();
            let us = |d: Duration| d.as_secs_f64() * 1e6;
            println!(
                "{:<22} {:>7} {:>10.1} {:>10.1} {:>10.1}",
                strategy.as_str(),
                if forced { "yes" } else { "no" },
                us(times[rounds / 2]),
                us(times[rounds * 99 / 100]),
                us(times[rounds - 1])
            );
        }
    }
}

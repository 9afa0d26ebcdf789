//! Rotation through the built binary (issue 14): `accounts pick` records its decision
//! (round-robin moves on, `--peek` does not), the decision log, force mode's lifecycle,
//! `settings get|set|reset` with sources and refusals, and usage windows with their
//! freshness over a pinned clock.

use std::path::PathBuf;
use std::time::Duration;

use moonauth::state::usage::{Capture, Snapshot, Window};
use moonauth::state::{store, Store};
use moonauth::time::parse_time;
use serde_json::Value;

use crate::support::sandbox::*;

const NOW: &str = "2026-11-24T12:00:00Z";

/// A sandbox with a state directory and three Claude accounts a, b, c whose logins are
/// usable here.
struct Fleet {
    sb: Sandbox,
    state: PathBuf,
}

impl Fleet {
    fn new() -> Fleet {
        let sb = Sandbox::new();
        let state = sb.empty_dir("state");
        let f = Fleet { sb, state };
        for alias in ["a", "b", "c"] {
            let dir = f.sb.login_named(&format!("login-{alias}"), "claude", "valid-max");
            let out = f.run(&[
                "accounts",
                "add",
                alias,
                "--runtime",
                "claude",
                "--dir",
                dir.to_str().unwrap(),
            ]);
            assert_eq!(code(&out), 0, "{}", stderr(&out));
        }
        f
    }

    fn cmd(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = self.sb.moonauth();
        cmd.env("MOONAUTH_STATE_DIR", &self.state)
            .env("MOONAUTH_NOW", NOW)
            .env("USER", "ops")
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd(args).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        let j = json(&out);
        // The JSON convention: schema, and ok/exit_code that match the real exit.
        assert!(j["schema"].as_str().unwrap().starts_with("moonauth."), "{j:#}");
        assert_eq!(j["exit_code"].as_i64(), Some(i64::from(code(&out))), "{j:#}");
        assert_eq!(j["ok"].as_bool(), Some(code(&out) == 0), "{j:#}");
        j
    }

    fn pick(&self, now: &str) -> String {
        let out = self
            .cmd(&["accounts", "pick", "claude"])
            .env("MOONAUTH_NOW", now)
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out).split_whitespace().next().unwrap().to_string()
    }

    fn store(&self) -> Store {
        Store::open(&self.state).unwrap()
    }
}

fn at(minutes: u64) -> String {
    let t = parse_time(NOW).unwrap() + Duration::from_secs(60 * minutes);
    moonauth::time::rfc3339(t)
}

#[test]
fn pick_takes_turns_by_default_logs_each_decision_and_peek_records_nothing() {
    let f = Fleet::new();
    let picks: Vec<String> = (0..4).map(|i| f.pick(&at(i))).collect();
    assert_eq!(picks, ["a", "b", "c", "a"]);
    let log = f.json(&["accounts", "log"]);
    let decisions = log["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 4);
    let last = &decisions[3];
    assert_eq!(
        (last["chosen"].as_str(), last["strategy"].as_str()),
        (Some("a"), Some("round-robin"))
    );
    assert_eq!(last["by"], "accounts pick");
    let reasons: Vec<&str> = last["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reason"].as_str().unwrap())
        .collect();
    assert!(reasons[0].starts_with("chosen by round-robin"), "{reasons:?}");
    assert!(
        reasons[1].starts_with("eligible; later in round-robin order"),
        "{reasons:?}"
    );

    let peek = f.json(&["accounts", "pick", "claude", "--peek"]);
    assert_eq!(peek["picked"]["alias"], "b");
    assert_eq!(peek["marked_used"], false);
    assert_eq!(
        peek["strategy"],
        serde_json::json!({"value": "round-robin", "source": "default"})
    );
    assert_eq!(
        f.json(&["accounts", "pick", "claude", "--peek"])["picked"]["alias"],
        "b"
    );
    assert_eq!(f.store().decisions(100).unwrap().len(), 4, "--peek logged a decision");
    // The human log names each candidate with why.
    let text = stdout(&f.run(&["accounts", "log", "--limit", "1"]));
    assert!(text.contains("accounts pick claude: round-robin chose a"), "{text}");
    assert!(text.contains("  b: eligible; later in round-robin order"), "{text}");
}

#[test]
fn the_strategy_flag_wins_over_the_environment_and_the_store() {
    let f = Fleet::new();
    let out = f.run(&["settings", "set", "strategy", "drain-soonest"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let peek = f.json(&["accounts", "pick", "claude", "--peek"]);
    assert_eq!(peek["strategy"]["source"], "store");
    let peek: Value = serde_json::from_slice(
        &f.cmd(&["accounts", "pick", "claude", "--peek", "--json"])
            .env("MOONAUTH_ROTATION_STRATEGY", "priority")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        peek["strategy"],
        serde_json::json!({"value": "priority", "source": "env MOONAUTH_ROTATION_STRATEGY"})
    );
    let peek: Value = serde_json::from_slice(
        &f.cmd(&[
            "accounts",
            "pick",
            "claude",
            "--peek",
            "--json",
            "--strategy",
            "weighted-round-robin",
        ])
        .env("MOONAUTH_ROTATION_STRATEGY", "priority")
        .output()
        .unwrap()
        .stdout,
    )
    .unwrap();
    assert_eq!(peek["strategy"]["source"], "flag --strategy");
    let out = f.run(&["accounts", "pick", "claude", "--strategy", "fastest"]);
    assert_eq!(code(&out), 11, "{}", stderr(&out));
    assert!(stderr(&out).contains("strategy"), "{}", stderr(&out));
}

#[test]
fn settings_report_each_value_with_its_source_and_refuse_invalid_values_changing_nothing() {
    let f = Fleet::new();
    let get = f.json(&["settings", "get"]);
    let by_key = |j: &Value, key: &str| -> (Value, String) {
        let s = j["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap()
            .clone();
        (s["value"].clone(), s["source"].as_str().unwrap().to_string())
    };
    assert_eq!(by_key(&get, "strategy"), (Value::from("round-robin"), "default".into()));
    assert_eq!(by_key(&get, "threshold.low"), (Value::from(30), "default".into()));

    for (key, value) in [
        ("strategy", "weighted-round-robin"),
        ("preset", "conservative"),
        ("weight.a", "0.5"),
        ("threshold.low", "60"),
    ] {
        let out = f.run(&["settings", "set", key, value]);
        assert_eq!(code(&out), 0, "{key}: {}", stderr(&out));
    }
    let get = f.json(&["settings", "get"]);
    assert_eq!(
        by_key(&get, "strategy"),
        (Value::from("weighted-round-robin"), "store".into())
    );
    assert_eq!(by_key(&get, "preset"), (Value::from("conservative"), "store".into()));
    // The preset's default where nothing is stored.
    assert_eq!(by_key(&get, "threshold.critical"), (Value::from(20), "default".into()));
    assert_eq!(by_key(&get, "weight.a"), (Value::from(0.5), "store".into()));
    assert_eq!(get["min_weight"], 0.2);
    let one = f.json(&["settings", "get", "weight.b"]);
    assert_eq!(
        one["settings"],
        serde_json::json!([{"key": "weight.b", "value": 1.0, "source": "default"}])
    );

    // The environment wins over the store.
    let out = f
        .cmd(&["settings", "get", "threshold.low", "--json"])
        .env("MOONAUTH_THRESHOLD_LOW", "40")
        .output()
        .unwrap();
    assert_eq!(
        json(&out)["settings"][0],
        serde_json::json!({"key": "threshold.low", "value": 40, "source": "env MOONAUTH_THRESHOLD_LOW"})
    );

    let before = std::fs::read(f.state.join("state.json")).unwrap();
    for (args, field, rule) in [
        (
            ["settings", "set", "weight.a", "0"],
            "weight.a",
            "greater than 0 and at most 1",
        ),
        (
            ["settings", "set", "weight.a", "1.5"],
            "weight.a",
            "greater than 0 and at most 1",
        ),
        (
            ["settings", "set", "threshold.critical", "70"],
            "threshold.critical",
            "below threshold.low (60)",
        ),
        (
            ["settings", "set", "threshold.low", "101"],
            "threshold.low",
            "a whole percent from 0 to 100",
        ),
        (
            ["settings", "set", "strategy", "random"],
            "strategy",
            "one of round-robin",
        ),
        (["settings", "set", "colour", "blue"], "key", "one of strategy, preset"),
    ] {
        let out = f.run(&args);
        assert_eq!(code(&out), 11, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(field) && err.contains(rule), "{args:?}: {err}");
    }
    assert_eq!(
        std::fs::read(f.state.join("state.json")).unwrap(),
        before,
        "a refused value changed the store"
    );
    let out = f.run(&["settings", "set", "weight.nobody", "0.5"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    // An invalid environment value is refused where it is read.
    let out = f
        .cmd(&["accounts", "pick", "claude"])
        .env("MOONAUTH_ROTATION_WEIGHTS", "a=7")
        .output()
        .unwrap();
    assert_eq!(code(&out), 11, "{}", stderr(&out));
    assert!(stderr(&out).contains("MOONAUTH_ROTATION_WEIGHTS"), "{}", stderr(&out));

    let reset = f.json(&["settings", "reset"]);
    assert_eq!(
        by_key(&reset, "strategy"),
        (Value::from("round-robin"), "default".into())
    );
}

#[test]
fn force_mode_holds_until_it_ends_and_never_extends_itself() {
    let f = Fleet::new();
    let forced = f.json(&["accounts", "force", "c", "--for", "2h"]);
    assert_eq!(forced["action"], "forced");
    assert_eq!(forced["force"]["alias"], "c");
    assert_eq!(forced["force"]["until"], at(120));
    assert_eq!(
        forced["force"]["forced_by"].as_str().unwrap().split('@').next(),
        Some("ops")
    );
    assert_eq!(forced["force"]["replaced"], "round-robin");
    // Always chosen while it holds.
    for i in 0..3 {
        assert_eq!(f.pick(&at(i)), "c");
    }
    // Forcing again does not extend it.
    let again = f
        .cmd(&["accounts", "force", "c", "--for", "10h", "--json"])
        .env("MOONAUTH_NOW", at(60))
        .output()
        .unwrap();
    assert_eq!(json(&again)["action"], "already-forced");
    assert_eq!(json(&again)["force"]["until"], at(120));
    // It shows in every report.
    assert_eq!(f.json(&["settings", "get"])["force"]["alias"], "c");
    // (`accounts ls` does not carry ok/exit_code yet: read it as is.)
    assert_eq!(json(&f.run(&["accounts", "ls", "--json"]))["force"]["alias"], "c");
    let ls = stdout(&f.run(&["accounts", "ls"]));
    assert!(
        ls.contains("force mode: c is picked whenever eligible until 2026-11-24T14:00:00Z (by ops@"),
        "{ls}"
    );
    let peek = f.json(&["accounts", "pick", "claude", "--peek"]);
    assert_eq!(peek["force"]["alias"], "c");
    let c = peek["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alias"] == "c")
        .unwrap();
    assert_eq!(c["forced"], true);
    // Expired: the decision ends it and the round-robin turn resumes.
    let after = f.pick(&at(121));
    assert_ne!(after, "c");
    let log = f.store().decisions(1).unwrap();
    let last: Value = serde_json::from_str(&log[0]).unwrap();
    assert_eq!(last["force"]["ended"], "expired");
    assert!(f.store().read_unlocked().unwrap().force.is_none());

    // Disabling the forced account clears force mode at once.
    f.json(&["accounts", "force", "a"]);
    assert!(f.store().read_unlocked().unwrap().force.is_some());
    assert_eq!(code(&f.run(&["accounts", "disable", "a"])), 0);
    assert!(f.store().read_unlocked().unwrap().force.is_none());
    // Removing it does too.
    f.json(&["accounts", "force", "b"]);
    assert_eq!(code(&f.run(&["accounts", "rm", "b"])), 0);
    assert!(f.store().read_unlocked().unwrap().force.is_none());
    // A disabled account cannot be forced; --clear ends force mode.
    let out = f.run(&["accounts", "force", "a"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("disabled"), "{}", stderr(&out));
    f.json(&["accounts", "force", "c"]);
    let cleared = f.json(&["accounts", "force", "--clear"]);
    assert_eq!(
        (cleared["action"].as_str(), &cleared["force"]),
        (Some("cleared"), &Value::Null)
    );
}

#[test]
fn force_mode_ends_when_its_account_stops_being_eligible() {
    let f = Fleet::new();
    f.json(&["accounts", "force", "a"]);
    f.store()
        .update(store::DEFAULT_LOCK_TIMEOUT, |s| {
            s.record_quota("a", None, parse_time(NOW).unwrap()).map(|_| ())
        })
        .unwrap()
        .unwrap();
    assert_ne!(f.pick(NOW), "a");
    let last: Value = serde_json::from_str(&f.store().decisions(1).unwrap()[0]).unwrap();
    assert_eq!(last["force"]["ended"], "ineligible");
    assert!(
        last["fallback"].as_str().unwrap().contains("back to round-robin"),
        "{last:#}"
    );
    assert!(f.store().read_unlocked().unwrap().force.is_none());
}

#[test]
fn usage_windows_show_freshness_over_the_pinned_clock_and_unknown_is_never_zero() {
    let f = Fleet::new();
    let t0 = parse_time(NOW).unwrap();
    f.store()
        .update(store::DEFAULT_LOCK_TIMEOUT, |s| {
            s.usage_windows.entry("a".into()).or_default().record(Snapshot {
                source: Capture {
                    run_id: "run-1".into(),
                    at: t0,
                    outcome: "success".into(),
                },
                windows: vec![Window {
                    name: "five_hour".into(),
                    used_percent: 95.0,
                    resets_at: Some(t0 + Duration::from_secs(4 * 3600)),
                    window_minutes: None,
                    status: Some("allowed".into()),
                }],
            })
        })
        .unwrap();
    let view = |now: &str| -> Value {
        let out = f
            .cmd(&["accounts", "pick", "claude", "--peek", "--json"])
            .env("MOONAUTH_NOW", now)
            .output()
            .unwrap();
        let j = json(&out);
        j["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["alias"] == "a")
            .unwrap()
            .clone()
    };
    let fresh = view(&at(4));
    assert_eq!(fresh["usage_windows"]["freshness"], "fresh");
    assert_eq!(fresh["usage_windows"]["windows"][0]["used_percent"], 95.0);
    assert_eq!(fresh["usage_windows"]["run_id"], "run-1");
    // 5 % left is critical: last, and it says why.
    assert_eq!(fresh["tier"], "critical");
    assert!(
        fresh["why"].as_str().unwrap().contains("critical: 5% left"),
        "{fresh:#}"
    );
    assert_eq!(view(&at(30))["usage_windows"]["freshness"], "stale");
    let old = view(&at(61));
    assert_eq!(old["usage_windows"]["freshness"], "unknown");
    assert_eq!(old["usage_windows"]["windows"][0]["used_percent"], Value::Null);
    assert_eq!(old["tier"], "normal");
    let ls = stdout(&f.cmd(&["accounts", "ls"]).env("MOONAUTH_NOW", at(61)).output().unwrap());
    assert!(ls.contains("five_hour unknown"), "{ls}");
    assert!(!ls.contains("0%"), "{ls}");
}

#[test]
fn log_follow_prints_each_new_decision_as_one_json_line() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let f = Fleet::new();
    f.pick(NOW);
    let mut child =
        f.sb.std_moonauth()
            .env("MOONAUTH_STATE_DIR", &f.state)
            .env("MOONAUTH_NOW", NOW)
            .args(["accounts", "log", "--follow", "--json", "--limit", "1"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["chosen"], "a");
    // A decision made after --follow started shows up next (the reader blocks at most
    // until it does; the child is killed below whatever happens).
    let picked = f.pick(&at(1));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(lines.next().map(|l| l.unwrap()));
    });
    let next = rx.recv_timeout(Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
    let next: Value = serde_json::from_str(&next.expect("a new line within 20 s").unwrap()).unwrap();
    assert_eq!(next["chosen"], picked.as_str());
    assert_eq!(next["time"], "2026-11-24T12:01:00.000Z");
}

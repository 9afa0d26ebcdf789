//! `moonauth accounts` through the built binary: a state directory per test, the
//! clock pinned with `MOONAUTH_NOW`, and a cleared environment. States a CLI cannot
//! produce on its own (a cooldown, an auth failure) are written with the library, as
//! `moonauth run` will.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use assert_cmd::Command;
use moonauth::state::store::{self, Store};
use moonauth::time::parse_time;
use predicates::str::contains;
use serde_json::Value;

const NOW: &str = "2026-11-24T12:00:00Z";

/// A temp directory with the state directory inside it.
struct Fleet {
    dir: tempfile::TempDir,
}

impl Fleet {
    fn new() -> Fleet {
        Fleet {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("moonauth").unwrap();
        cmd.env_clear()
            .env("MOONAUTH_STATE_DIR", self.state_dir())
            .env("MOONAUTH_NOW", NOW)
            // The key of mixed_fleet's API-key account, set as a worker would have it.
            .env("ANTHROPIC_API_KEY", "sk-ant-test-not-a-key")
            .current_dir(self.dir.path())
            .arg("accounts")
            .args(args);
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).assert().success().get_output().stdout.clone();
        String::from_utf8(out).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.cmd(&all).assert().get_output().stdout.clone();
        serde_json::from_slice(&out).unwrap()
    }

    fn store(&self) -> Store {
        Store::open(&self.state_dir()).unwrap()
    }

    /// Paths as a worker would see them: the state directory named, the temp root dropped.
    fn redact(&self, text: &str) -> String {
        text.replace(&self.state_dir().display().to_string(), "[STATE_DIR]")
            .replace(&self.dir.path().display().to_string(), "")
    }

    /// `path` made a real, empty directory under the temp root, as `--dir` takes it.
    fn dir_at(&self, path: &str) -> String {
        let real = self.dir.path().join(path.trim_start_matches('/'));
        fs::create_dir_all(&real).unwrap();
        real.display().to_string()
    }

    /// Like [`Fleet::dir_at`], holding a usable (expired but refreshable) login of `runtime`.
    fn login_at(&self, runtime: &str, path: &str) -> String {
        let dir = self.dir_at(path);
        let (case, file) = match runtime {
            "claude" => ("claude/expired-refreshable", ".credentials.json"),
            _ => ("codex/chatgpt-expired-refreshable", "auth.json"),
        };
        let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(case)
            .join(file);
        fs::copy(fixture, PathBuf::from(&dir).join(file)).unwrap();
        dir
    }
}

fn at(offset_minutes: u64) -> std::time::SystemTime {
    parse_time(NOW).unwrap() + Duration::from_secs(offset_minutes * 60)
}

/// Four Claude accounts, one in each condition, and a Codex one.
fn mixed_fleet() -> Fleet {
    let f = Fleet::new();
    f.ok(&[
        "add",
        "work",
        "--runtime",
        "claude",
        "--dir",
        &f.login_at("claude", "/home/app/.claude-work"),
        "--volume",
        "claude_auth_work",
    ]);
    f.ok(&[
        "add",
        "personal",
        "--runtime",
        "claude",
        "--dir",
        &f.login_at("claude", "/home/app/.claude-personal"),
        "--priority",
        "1",
    ]);
    f.ok(&[
        "add",
        "old",
        "--runtime",
        "claude",
        "--dir",
        &f.dir_at("/home/app/.claude-old"),
    ]);
    f.ok(&[
        "add",
        "spare",
        "--runtime",
        "claude",
        "--dir",
        &f.dir_at("/home/app/.claude-spare"),
    ]);
    f.ok(&[
        "add",
        "key",
        "--runtime",
        "claude",
        "--api-key-env",
        "ANTHROPIC_API_KEY",
        "--priority",
        "-5",
    ]);
    let secrets = f.dir_at("/run/secrets");
    fs::write(PathBuf::from(&secrets).join("openai"), "sk-test-not-a-key").unwrap();
    f.ok(&[
        "add",
        "cx",
        "--runtime",
        "codex",
        "--api-key-file",
        &format!("{secrets}/openai"),
    ]);
    f.ok(&["disable", "spare"]);
    f.store()
        .update(store::DEFAULT_LOCK_TIMEOUT, |s| {
            s.record_quota("work", Some(at(90)), at(0))?;
            s.record_auth_failure("old", "401 Unauthorized: OAuth token has expired", at(0))?;
            s.record_success("personal", at(0) - Duration::from_secs(3600))
        })
        .unwrap()
        .unwrap();
    f
}

#[test]
fn ls_shows_every_account_with_its_state_and_fix() {
    let f = mixed_fleet();
    insta::assert_snapshot!("ls_human", f.redact(&f.ok(&["ls"])));
    let json = f.json(&["ls"]);
    insta::assert_snapshot!("ls_json", f.redact(&serde_json::to_string_pretty(&json).unwrap()));
    let codex = f.json(&["ls", "--runtime", "codex"]);
    assert_eq!(codex["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(
        f.redact(codex["accounts"][0]["login"].as_str().unwrap()),
        "file:/run/secrets/openai"
    );
}

#[test]
fn pick_skips_disabled_cooling_and_relogin_accounts_then_prefers_oauth() {
    let f = mixed_fleet();
    // work cools down, old needs a re-login, spare is disabled: personal is the only OAuth one.
    assert_eq!(
        f.redact(&f.ok(&["pick", "claude"])),
        "personal /home/app/.claude-personal\n"
    );
    f.ok(&["disable", "personal"]);
    // Only then the API key, although its priority number is the lowest.
    let json = f.json(&["pick", "claude"]);
    assert_eq!(json["picked"]["alias"], "key");
    assert_eq!(json["picked"]["kind"], "api-key");
    assert_eq!(json["picked"]["login"], "env:ANTHROPIC_API_KEY");
}

#[test]
fn pick_with_nothing_eligible_exits_10_and_says_why_for_each() {
    let f = mixed_fleet();
    f.ok(&["disable", "personal"]);
    f.ok(&["disable", "key"]);
    let out = f.cmd(&["pick", "claude"]).assert().code(10).get_output().stdout.clone();
    insta::assert_snapshot!("pick_exhausted", String::from_utf8(out).unwrap());
    let out = f
        .cmd(&["pick", "claude", "--json"])
        .assert()
        .code(10)
        .get_output()
        .stdout
        .clone();
    let json: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["picked"], Value::Null);
    // Soonest back first: the cooldown, then the re-login, then the disabled in pick order.
    let statuses: Vec<(&str, &str)> = json["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["alias"].as_str().unwrap(), a["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("work", "cooling-down"),
            ("old", "needs-relogin"),
            ("spare", "disabled"),
            ("personal", "disabled"),
            ("key", "disabled"),
        ]
    );
    // Once the cooldown is over, work is back.
    f.cmd(&["pick", "claude"])
        .env("MOONAUTH_NOW", "2026-11-24T13:30:00Z")
        .assert()
        .success()
        .stdout(predicates::str::ends_with("/home/app/.claude-work\n"));
}

#[test]
fn pick_with_no_accounts_of_the_runtime_exits_10() {
    let f = Fleet::new();
    f.cmd(&["pick", "codex"])
        .assert()
        .code(10)
        .stdout(contains("no codex accounts; add one with `moonauth accounts add"));
}

#[test]
fn pick_marks_the_account_used_so_equal_priorities_take_turns() {
    let f = Fleet::new();
    for alias in ["a", "b"] {
        f.ok(&[
            "add",
            alias,
            "--runtime",
            "codex",
            "--dir",
            &f.dir_at(&format!("/home/app/.codex-{alias}")),
        ]);
    }
    let pick = |now: &str| {
        let out = f.cmd(&["pick", "codex"]).env("MOONAUTH_NOW", now).assert().success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    assert!(pick("2026-11-24T12:00:00Z").starts_with("a "));
    assert!(pick("2026-11-24T12:00:01Z").starts_with("b "));
    assert!(pick("2026-11-24T12:00:02Z").starts_with("a "));
    // --peek shows the next pick without taking it.
    let peek = f.json(&["pick", "codex", "--peek"]);
    assert_eq!(
        (peek["picked"]["alias"].as_str(), &peek["marked_used"]),
        (Some("b"), &Value::Bool(false))
    );
    assert_eq!(f.json(&["pick", "codex", "--peek"])["picked"]["alias"], "b");
}

#[test]
fn disable_enable_and_rm_change_only_the_record() {
    let f = Fleet::new();
    let login = PathBuf::from(f.login_at("claude", "/home/app/login"));
    f.ok(&["add", "work", "--runtime", "claude", "--dir", login.to_str().unwrap()]);
    assert!(f.ok(&["disable", "work"]).starts_with("disabled claude account work"));
    f.cmd(&["pick", "claude"]).assert().code(10);
    assert_eq!(f.json(&["enable", "work"])["account"]["status"], "ready");
    f.cmd(&["pick", "claude"]).assert().success();
    assert!(f.ok(&["rm", "work"]).contains("the login itself is untouched"));
    assert!(login.join(".credentials.json").exists());
    assert_eq!(f.json(&["ls"])["accounts"], Value::Array(vec![]));
}

#[test]
fn enable_clears_a_relogin_mark() {
    let f = mixed_fleet();
    assert_eq!(f.json(&["enable", "old"])["account"]["needs_relogin"], false);
    // Just back from an auth failure: eligible, but on probation after the others.
    let peek = f.json(&["pick", "claude", "--peek"]);
    assert_eq!(peek["picked"]["alias"], "personal");
    let old = peek["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alias"] == "old")
        .unwrap();
    assert_eq!(
        (old["eligible"].as_bool(), old["tier"].as_str()),
        (Some(true), Some("probation"))
    );
    f.ok(&["disable", "personal"]);
    assert_eq!(f.json(&["pick", "claude", "--peek"])["picked"]["alias"], "old");
}

#[test]
fn mistakes_are_usage_errors_that_name_the_input() {
    let f = Fleet::new();
    f.ok(&["add", "work", "--runtime", "claude", "--dir", &f.dir_at("/a")]);
    for (args, needle) in [
        (
            &["add", "work", "--runtime", "codex", "--dir", &f.dir_at("/b")][..],
            "an account \"work\" exists already",
        ),
        (
            &["add", "Work", "--runtime", "codex", "--dir", &f.dir_at("/b")],
            "ALIAS \"Work\"",
        ),
        (
            &["add", "w2", "--runtime", "gemini", "--dir", &f.dir_at("/b")],
            "--runtime \"gemini\"",
        ),
        (
            &["add", "w2", "--runtime", "codex", "--dir", "rel"],
            "must be an absolute path",
        ),
        (
            &["add", "w2", "--runtime", "codex", "--dir", "/b", "--volume", "/x"],
            "--volume \"/x\"",
        ),
        (&["rm", "nope"], "there is no account \"nope\""),
        (&["enable", "nope"], "there is no account \"nope\""),
        (&["pick", "universal"], "RUNTIME \"universal\""),
    ] {
        f.cmd(args).assert().code(2).stderr(contains(needle));
    }
    // clap's own errors share the usage code.
    f.cmd(&["add", "w3", "--runtime", "codex"]).assert().code(2);
    f.cmd(&["add", "w3", "--runtime", "codex", "--dir", "/a", "--api-key-env", "K"])
        .assert()
        .code(2);
    assert_eq!(f.json(&["ls"])["accounts"].as_array().unwrap().len(), 1);
}

#[test]
fn a_key_given_where_a_variable_name_belongs_is_not_echoed() {
    let f = Fleet::new();
    let key = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789";
    let out = f
        .cmd(&["add", "k", "--runtime", "claude", "--api-key-env", key])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(key) && !all.contains("abcdefghijklmnop"), "{all}");
    assert!(all.contains("--api-key-env"));
}

#[test]
fn a_missing_state_directory_is_created_private() {
    let f = Fleet::new();
    let nested = f.dir.path().join("a/b/state");
    f.cmd(&["ls", "--json"])
        .env("MOONAUTH_STATE_DIR", &nested)
        .assert()
        .success();
    assert_eq!(fs::metadata(&nested).unwrap().permissions().mode() & 0o777, 0o700);
}

#[test]
fn the_state_dir_defaults_under_xdg_state_home_and_needs_some_home() {
    let f = Fleet::new();
    let xdg = f.dir.path().join("xdg");
    f.cmd(&["add", "a", "--runtime", "codex", "--dir", &f.dir_at("/a")])
        .env_remove("MOONAUTH_STATE_DIR")
        .env("XDG_STATE_HOME", &xdg)
        .assert()
        .success();
    assert!(xdg.join("moonauth").join(store::STATE_FILE).is_file());
    f.cmd(&["ls"])
        .env_remove("MOONAUTH_STATE_DIR")
        .assert()
        .code(2)
        .stderr(contains("MOONAUTH_STATE_DIR"));
}

#[test]
fn a_garbage_state_file_is_restored_from_last_known_good_with_a_warning() {
    let f = Fleet::new();
    f.ok(&["add", "a", "--runtime", "codex", "--dir", &f.dir_at("/a")]);
    f.ok(&["add", "b", "--runtime", "codex", "--dir", &f.dir_at("/b")]);
    fs::write(f.state_dir().join(store::STATE_FILE), "\0\0garbage").unwrap();
    let out = f.cmd(&["ls", "--json"]).assert().success().get_output().clone();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["accounts"][0]["alias"], "a");
    assert_eq!(
        json["accounts"].as_array().unwrap().len(),
        1,
        "the state before the last write"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("restored it from state.json.good"), "{stderr}");
    let kept = fs::read_dir(f.state_dir())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_str().unwrap().starts_with(store::BROKEN_PREFIX)
        })
        .count();
    assert_eq!(kept, 1);
    // Writing goes on from the restored state.
    f.ok(&["add", "c", "--runtime", "codex", "--dir", &f.dir_at("/c")]);
    assert_eq!(f.json(&["ls"])["accounts"].as_array().unwrap().len(), 2);
}

#[test]
fn a_version_1_store_is_read_and_written_back_as_version_2() {
    let f = Fleet::new();
    fs::create_dir_all(f.state_dir()).unwrap();
    let v1 = r#"{"version": 1, "accounts": {
        "first": {"runtime": "claude", "login_dir": "/home/app/.claude-first", "volume": "claude_auth_first"},
        "second": {"runtime": "claude", "login_dir": "/home/app/.claude-second", "disabled": true}
    }}"#;
    fs::write(f.state_dir().join(store::STATE_FILE), v1).unwrap();
    let json = f.json(&["ls"]);
    let rows: Vec<(&str, &str, i64, bool)> = json["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["alias"].as_str().unwrap(),
                a["kind"].as_str().unwrap(),
                a["priority"].as_i64().unwrap(),
                a["enabled"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [("first", "oauth", 0, true), ("second", "oauth", 1, false)]);
    f.ok(&["enable", "second"]);
    let written: Value = serde_json::from_slice(&fs::read(f.state_dir().join(store::STATE_FILE)).unwrap()).unwrap();
    assert_eq!(written["version"], 2);
    assert_eq!(written["accounts"][1]["enabled"], true);
    assert_eq!(f.ok(&["pick", "claude"]), "first /home/app/.claude-first\n");
}

#[test]
fn a_stuck_lock_holder_makes_writers_fail_with_a_hint_but_ls_still_reads() {
    let f = Fleet::new();
    f.ok(&["add", "a", "--runtime", "codex", "--dir", &f.dir_at("/a")]);
    let store = f.store();
    let _held = store.lock(Duration::ZERO).unwrap();
    // The CLI waits DEFAULT_LOCK_TIMEOUT (10 s); a library caller picks its own wait,
    // and gets an error instead of hanging behind the holder.
    let err = store.lock(Duration::from_millis(100)).unwrap_err();
    assert!(err.hint().unwrap().contains("fuser"), "{err}");
    assert_eq!(f.json(&["ls"])["accounts"][0]["alias"], "a");
    assert_eq!(err.exit().code(), 1);
}

#[test]
fn exit_10_is_in_the_table() {
    let exit = moonauth::exit::Exit::AccountsExhausted;
    assert_eq!(exit.code(), 10);
    assert!(moonauth::exit::Exit::ALL.contains(&exit));
    assert!(exit.meaning().contains("no account"));
}

/// Appends raw records to the store file, as a person editing it by hand would.
fn hand_edit(f: &Fleet, records: &[Value]) {
    let path = f.state_dir().join(store::STATE_FILE);
    let mut file: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    for r in records {
        file["accounts"].as_array_mut().unwrap().push(r.clone());
    }
    fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
}

#[test]
fn hand_edited_records_that_break_the_add_rules_are_set_aside_named_and_never_printed_raw() {
    let f = Fleet::new();
    f.ok(&[
        "add",
        "good",
        "--runtime",
        "claude",
        "--dir",
        &f.dir_at("/home/app/.claude-good"),
    ]);
    let rec = |alias: &str, extra: Value| {
        let mut r =
            serde_json::json!({"alias": alias, "runtime": "claude", "kind": "oauth", "login_dir": "/home/app/x"});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    };
    let bad = [
        rec("\u{1b}[31mevil\u{7}", serde_json::json!({})),
        rec("../../etc", serde_json::json!({})),
        rec("rel", serde_json::json!({"login_dir": "relative/dir"})),
        rec("vol", serde_json::json!({"volume": "../volumes/x"})),
        rec(
            "envname",
            serde_json::json!({"kind": "api-key", "login_dir": null, "api_key_env": "A B"}),
        ),
        rec("good", serde_json::json!({})),
    ];
    hand_edit(&f, &bad);

    let out = f.cmd(&["ls"]).assert().success().get_output().clone();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    for text in [&stdout, &stderr] {
        // (The log's own colour codes may be there; the alias's escape must not.)
        assert!(
            !text.contains("\u{1b}[31m") && !text.contains('\u{7}'),
            "a raw control character: {text:?}"
        );
        for (n, rule) in [
            (2, "alias rule"),
            (3, "alias rule"),
            (4, "login_dir must be an absolute path"),
            (5, "volume breaks Docker's rule"),
            (6, "api_key_env must be the name of a variable"),
            (7, "an earlier record has the same alias"),
        ] {
            assert!(
                text.lines()
                    .any(|l| l.contains(&format!("account record {n} ")) && l.contains(rule)),
                "record {n} / {rule} not named in {text}"
            );
        }
    }
    assert!(
        stdout.contains(r#"\u{1b}[31mevil\u{7}"#),
        "escaped, not dropped: {stdout}"
    );
    // Only the good record is an account: listed, picked.
    let json = f.json(&["ls"]);
    assert_eq!(json["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(json["set_aside"].as_array().unwrap().len(), 6);
    assert_eq!(
        f.redact(&f.ok(&["pick", "claude", "--peek"])),
        "good /home/app/.claude-good\n"
    );
    // Nothing is lost: a write keeps every set-aside record as it was.
    f.ok(&[
        "add",
        "other",
        "--runtime",
        "codex",
        "--dir",
        &f.dir_at("/home/app/.codex"),
    ]);
    let written: Value = serde_json::from_slice(&fs::read(f.state_dir().join(store::STATE_FILE)).unwrap()).unwrap();
    let kept: Vec<&Value> = written["accounts"].as_array().unwrap().iter().collect();
    for r in &bad {
        assert!(kept.contains(&r), "{r} was dropped");
    }
    // A set-aside alias stays taken.
    f.cmd(&["add", "rel", "--runtime", "claude", "--dir", &f.dir_at("/x")])
        .assert()
        .code(2);
}

#[test]
fn a_store_that_does_not_parse_is_named_with_file_position_and_kind_never_its_content() {
    let secret = "sk-ant-api03-CANARY-store-echo-0123456789abcdefghij";
    let short = "CANARYabcdefghijklmnopqrstu";
    let cases: Vec<(String, &str)> = vec![
        (format!(r#"{{"version":"{secret}"}}"#), "version"),
        (
            format!(r#"{{"version":2,"revision":"{short}","accounts":[]}}"#),
            "wrong type",
        ),
        (
            format!("{{\"version\": 2,\n \"accounts\": [{{\"alias\": \"{short}\" {secret}}}]}}"),
            "line 2 column",
        ),
        (
            format!(r#"{{"version":2,"accounts":[{{"runtime":"{secret}"}}]}}"#),
            "account record 1",
        ),
        (
            format!(r#"{{"accounts":{{"a":{{"runtime":"claude","last_used":"{short}"}}}}}}"#),
            "version 1",
        ),
        (format!(r#"{{"accounts":{{"a":{{"runtime":"{short}"}}}}}}"#), "runtime"),
        (
            format!(r#"{{"version":2,"accounts":[{{"alias":"a","runtime":"claude","kind":"{short}"}}]}}"#),
            "",
        ),
    ];
    for (text, expected) in cases {
        let f = Fleet::new();
        fs::create_dir_all(f.state_dir()).unwrap();
        fs::write(f.state_dir().join(store::STATE_FILE), &text).unwrap();
        let out = f.cmd(&["ls"]).output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("CANARY"), "{text}: the content was echoed:\n{all}");
        assert!(all.contains(expected), "{text}: {expected:?} not in\n{all}");
        if out.status.code() != Some(0) {
            // A file that does not parse at all: named, with what is wrong.
            assert_eq!(out.status.code(), Some(1), "{all}");
            assert!(all.contains("state.json"), "{all}");
        }
    }
}

#[test]
fn add_refuses_a_login_directory_that_is_not_here_and_a_key_variable_that_is_not_set() {
    let f = Fleet::new();
    let gone = f.dir.path().join("gone");
    f.cmd(&["add", "a", "--runtime", "claude", "--dir", gone.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains(format!("--dir \"{}\"", gone.display())))
        .stderr(contains("no such directory"));
    f.cmd(&["add", "k", "--runtime", "codex", "--api-key-env", "OPENAI_API_KEY"])
        .assert()
        .code(2)
        .stderr(contains("OPENAI_API_KEY"))
        .stderr(contains("--allow-unset"));
    assert_eq!(f.json(&["ls"])["accounts"], Value::Array(vec![]));
    // A directory in a volume is checked where the volume is mounted.
    f.ok(&[
        "add",
        "v",
        "--runtime",
        "claude",
        "--dir",
        "/home/app/.claude-v",
        "--volume",
        "claude_auth_v",
    ]);
    // Set only where the worker runs: accepted when said so, and not ready here.
    let added = f.json(&[
        "add",
        "k",
        "--runtime",
        "codex",
        "--api-key-env",
        "OPENAI_API_KEY",
        "--allow-unset",
    ]);
    assert_eq!(added["account"]["status"], "key-unset");
}

#[test]
fn an_empty_login_directory_is_added_with_a_warning_and_listed_as_needing_a_login() {
    let f = Fleet::new();
    let dir = f.dir_at("/home/app/.claude-new");
    let out = f
        .cmd(&["add", "new", "--runtime", "claude", "--dir", &dir])
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot be used yet") && stderr.contains("moonauth login claude --account new"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": needs-login\n"));
    let ls = f.ok(&["ls"]);
    assert!(ls.contains("needs-login"), "{ls}");
    assert!(ls.contains("new: no login in"), "{ls}");
    assert!(ls.contains("fix: `moonauth login claude --account new`"), "{ls}");
}

#[test]
fn ls_never_says_ready_when_the_login_is_gone_unusable_or_its_key_unset_here() {
    let f = Fleet::new();
    let gone = f.login_at("claude", "/home/app/.claude-gone");
    let bad = f.login_at("codex", "/home/app/.codex-bad");
    f.ok(&["add", "gone", "--runtime", "claude", "--dir", &gone]);
    f.ok(&["add", "bad", "--runtime", "codex", "--dir", &bad]);
    f.ok(&[
        "add",
        "key",
        "--runtime",
        "claude",
        "--api-key-env",
        "ANTHROPIC_API_KEY",
    ]);
    let statuses = |json: &Value| -> Vec<(String, String)> {
        json["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["alias"].as_str().unwrap().to_string(),
                    a["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let ready = |s: &[(&str, &str)]| {
        s.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        statuses(&f.json(&["ls"])),
        ready(&[("gone", "ready"), ("bad", "ready"), ("key", "ready")])
    );
    fs::remove_dir_all(&gone).unwrap();
    fs::write(PathBuf::from(&bad).join("auth.json"), "{not json").unwrap();
    let json: Value = {
        let out = f
            .cmd(&["ls", "--json"])
            .env_remove("ANTHROPIC_API_KEY")
            .assert()
            .success();
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    };
    assert_eq!(
        statuses(&json),
        ready(&[
            ("gone", "no-login-dir"),
            ("bad", "login-unusable"),
            ("key", "key-unset")
        ])
    );
    for a in json["accounts"].as_array().unwrap() {
        assert!(a["fix"].as_str().is_some_and(|f| !f.is_empty()), "{a}");
        assert!(a["problem"]["detail"].as_str().is_some(), "{a}");
    }
    let human = String::from_utf8(
        f.cmd(&["ls"])
            .env_remove("ANTHROPIC_API_KEY")
            .assert()
            .success()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    assert!(
        human.contains(&format!("gone: login directory {gone} does not exist here; fix:")),
        "{human}"
    );
    assert!(
        human.contains("key: ANTHROPIC_API_KEY is not set in this environment; fix:"),
        "{human}"
    );
}

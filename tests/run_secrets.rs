//! `moonauth run` with a stand-in CLI that prints credential values and dumps its
//! environment: no value reaches the store, the report or moonauth's own output, and no
//! account's key variable reaches another account's attempt.

use std::fs;
use std::path::Path;

use crate::support::sandbox::*;
use serde_json::Value;

/// Account a's access token: the shape rule alone misses it (it has a `/`).
const TOKEN_A: &str = "CANARY-tok-abc/def+ghi=";
/// The key in WORK_KEY_2: letters only, shorter than the long-run rule.
const WORK_KEY: &str = "CANARYabcdefghijklmnopqrstu";

/// A Claude login (the valid-max fixture, far from expiry) with `token` as its access token.
fn login(sb: &Sandbox, name: &str, token: &str) -> String {
    let dir = sb.empty_dir(name);
    let mut creds: Value = serde_json::from_slice(&fixture_login_file("claude", "valid-max")).unwrap();
    creds["claudeAiOauth"]["accessToken"] = token.into();
    creds["claudeAiOauth"]["refreshToken"] = format!("{token}-refresh").into();
    fs::write(dir.join(".credentials.json"), serde_json::to_vec(&creds).unwrap()).unwrap();
    dir.display().to_string()
}

fn text_of_dir(dir: &Path) -> String {
    let mut all = String::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.push_str(&String::from_utf8_lossy(&fs::read(&path).unwrap()));
        }
    }
    all
}

/// What one failing run left behind.
struct Ran {
    sb: Sandbox,
    state: std::path::PathBuf,
    dumps: std::path::PathBuf,
    report: std::path::PathBuf,
    out: std::process::Output,
    /// The lines the stand-in printed (passed through as they are).
    cli_lines: [String; 2],
}

/// Accounts a and b (OAuth) and work2 (key in WORK_KEY_2); a stand-in claude that dumps
/// its environment and fails authentication printing a's token and the key; one run.
fn failing_run() -> Ran {
    let sb = Sandbox::new();
    let state = sb.root().join("state");
    let dumps = sb.empty_dir("dumps");
    let dir_a = login(&sb, "claude-a", TOKEN_A);
    let dir_b = login(&sb, "claude-b", "sk-ant-oat01-CANARY-b-0123456789abcdef");
    // a's line puts its token across the classifier's 300-character cut: a shape rule
    // applied after the cut would see only a prefix of it.
    let padding = "pad ".repeat(58);
    let line_a = format!("Failed to authenticate. API Error: 401 OAuth token revoked {padding}{TOKEN_A}");
    let line_b = format!("Failed to authenticate. API Error: 401 OAuth token revoked {TOKEN_A} token={WORK_KEY}");
    sb.stand_in(
        "claude",
        &format!(
            "env > \"$MOONAUTH_TEST_DUMPS/$(basename \"$CLAUDE_CONFIG_DIR\").env\"\n\
             case \"$CLAUDE_CONFIG_DIR\" in\n\
             *claude-a) echo '{line_a}' >&2 ;;\n\
             *) echo '{line_b}' >&2 ;;\n\
             esac\n\
             exit 1"
        ),
    );
    let add = |args: &[&str]| {
        sb.moonauth()
            .env("MOONAUTH_STATE_DIR", &state)
            .args(["accounts", "add"])
            .args(args)
            .assert()
            .success();
    };
    add(&["a", "--runtime", "claude", "--dir", &dir_a, "--priority", "1"]);
    add(&["b", "--runtime", "claude", "--dir", &dir_b, "--priority", "2"]);
    // The key is set only in the run's environment below.
    add(&[
        "work2",
        "--runtime",
        "claude",
        "--api-key-env",
        "WORK_KEY_2",
        "--allow-unset",
    ]);

    let report = sb.root().join("report.json");
    let out = sb
        .moonauth()
        .env("MOONAUTH_STATE_DIR", &state)
        .env("MOONAUTH_TEST_DUMPS", &dumps)
        .env("WORK_KEY_2", WORK_KEY)
        .env("ANTHROPIC_API_KEY", "sk-ant-api03-CANARY-env-key")
        .env("MOONAUTH_API_FALLBACK", "1")
        .env("MOONAUTH_THROTTLE_RETRIES", "0")
        .args(["run", "claude", "--report"])
        .arg(&report)
        .args(["--", "-p", "hi"])
        .output()
        .unwrap();
    // Both logins were refused: no API-key fallback after an auth failure.
    assert_eq!(code(&out), 10, "{}\n{}", stdout(&out), stderr(&out));
    Ran {
        sb,
        state,
        dumps,
        report,
        out,
        cli_lines: [line_a, line_b],
    }
}

#[test]
fn a_key_variable_an_account_names_reaches_no_other_accounts_attempt() {
    let Ran { sb: _sb, dumps, .. } = failing_run();

    // The environment of each attempt: no account's key variable, no competing key.
    for attempt in ["claude-a", "claude-b"] {
        let env = fs::read_to_string(dumps.join(format!("{attempt}.env"))).unwrap();
        for var in ["WORK_KEY_2=", "ANTHROPIC_API_KEY="] {
            assert!(!env.lines().any(|l| l.starts_with(var)), "{attempt} got {var}:\n{env}");
        }
    }
}

#[test]
fn known_credential_values_reach_neither_the_store_nor_the_report_nor_moonauths_output() {
    let Ran {
        sb: _sb,
        state,
        report,
        out,
        cli_lines: [line_a, line_b],
        ..
    } = failing_run();
    // The store (every file in it), the report, and moonauth's own lines: no canary.
    let stored = text_of_dir(&state);
    assert!(!stored.contains("CANARY"), "a credential reached the store:\n{stored}");
    let report_text = fs::read_to_string(&report).unwrap();
    assert!(
        !report_text.contains("CANARY"),
        "a credential reached the report:\n{report_text}"
    );
    // The CLI's own output passes through byte for byte (docs/failover.md); every other
    // line is moonauth's.
    for stream in [stdout(&out), stderr(&out)] {
        for line in stream.lines().filter(|l| *l != line_a && *l != line_b) {
            assert!(!line.contains("CANARY"), "moonauth printed a credential: {line}");
        }
    }

    // What is kept: the classified reason and a short redacted excerpt.
    let file: Value = serde_json::from_str(&fs::read_to_string(state.join("state.json")).unwrap()).unwrap();
    for account in file["accounts"].as_array().unwrap().iter().take(2) {
        let failure = &account["last_failure"];
        assert_eq!(failure["reason"], "auth-failure", "{account}");
        let detail = failure["detail"].as_str().unwrap();
        assert!(detail.chars().count() <= 160, "{detail}");
        assert!(detail.starts_with("Failed to authenticate"), "{detail}");
    }
    let report: Value = serde_json::from_str(&report_text).unwrap();
    let reasons: Vec<&str> = report["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["reason"].as_str())
        .collect();
    assert_eq!(reasons.len(), 2, "{report}");
    assert!(reasons.iter().all(|r| r.contains("[redact")), "{reasons:?}");
}

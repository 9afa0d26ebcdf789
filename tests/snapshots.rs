//! Snapshot tests (insta) of the human and JSON output, at a fixed MOONAUTH_NOW, with
//! the temp directory filtered out. The JSON snapshots pin the documented schema
//! (docs/preflight.md): a change to a field shows up here first.

use crate::support::sandbox::*;

/// Escapes a literal for use in an insta filter (a regex).
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

macro_rules! snapshot {
    ($sb:expr, $name:expr, $text:expr) => {{
        let root = literal(&$sb.root().display().to_string());
        insta::with_settings!({
            filters => vec![
                (root.as_str(), "[SANDBOX]"),
                (r"chown -R \d+:\d+", "chown -R [UID]:[GID]"),
                (r"uid \d+", "uid [UID]"),
            ],
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!($name, $text);
        });
    }};
}

struct Worker {
    sb: Sandbox,
}

impl Worker {
    fn new(codex_case: &str, claude_case: &str) -> (Self, assert_cmd::Command) {
        let sb = Sandbox::new();
        sb.stand_ins(&["codex", "claude", "gemini"]);
        let codex = sb.login("codex", codex_case);
        let claude = sb.login("claude", claude_case);
        let mut cmd = sb.moonauth();
        cmd.args(["preflight", "--mode", "universal"])
            .env("CODEX_HOME", codex)
            .env("CLAUDE_HOME", claude);
        (Worker { sb }, cmd)
    }
}

#[test]
fn snapshot_preflight_json_when_ready() {
    let (w, mut cmd) = Worker::new("chatgpt-valid", "expired-refreshable");
    let out = cmd.arg("--json").env("ANTHROPIC_API_KEY", "k").output().unwrap();
    assert_eq!(code(&out), 0);
    snapshot!(w.sb, "preflight_json_ready", stdout(&out));
}

#[test]
fn snapshot_preflight_json_when_not_ready() {
    let (w, mut cmd) = Worker::new("malformed", "expired-no-refresh");
    let out = cmd.arg("--json").output().unwrap();
    assert_eq!(code(&out), 4);
    snapshot!(w.sb, "preflight_json_not_ready", stdout(&out));
}

#[test]
fn snapshot_preflight_human_when_ready() {
    let (w, mut cmd) = Worker::new("chatgpt-valid", "valid-max");
    let out = cmd.env("OPENAI_API_KEY", "k").output().unwrap();
    assert_eq!(code(&out), 0);
    snapshot!(w.sb, "preflight_human_ready", stdout(&out));
}

#[test]
fn snapshot_preflight_human_when_not_ready() {
    let (w, mut cmd) = Worker::new("missing", "malformed");
    std::fs::remove_file(w.sb.bin().join("claude")).unwrap();
    let out = cmd.output().unwrap();
    assert_eq!(code(&out), 4);
    snapshot!(w.sb, "preflight_human_not_ready", stdout(&out));
}

#[test]
fn snapshot_inspect_human_for_each_runtime() {
    let sb = Sandbox::new();
    for (runtime, case) in [
        ("claude", "valid-max"),
        ("codex", "chatgpt-valid"),
        ("codex", "api-key"),
    ] {
        let dir = sb.login(runtime, case);
        let out = sb
            .moonauth()
            .args(["inspect", runtime, "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert_eq!(code(&out), 0);
        snapshot!(sb, format!("inspect_human_{runtime}_{case}"), stdout(&out));
    }
}

#[test]
fn snapshot_inspect_json() {
    let sb = Sandbox::new();
    let dir = sb.login("claude", "expired-no-refresh");
    let out = sb
        .moonauth()
        .args(["inspect", "claude", "--json", "--dir"])
        .arg(&dir)
        .env("OPENAI_API_KEY", "k")
        .output()
        .unwrap();
    assert_eq!(code(&out), 4);
    snapshot!(sb, "inspect_json_claude_expired_no_refresh", stdout(&out));
}

#[test]
fn snapshot_runtime_resolve_payload() {
    let sb = Sandbox::new();
    let out = sb
        .moonauth()
        .args(["runtime", "resolve", "--payload", "-"])
        .write_stdin(
            r#"{"targetRuntime":" Claude ","requiredCapabilities":["GIT"],"task":{"instructions":"x","skill":{"id":"s","requiredCapabilities":["qdrant"]},"container":{"enabled":true}}}"#,
        )
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    snapshot!(sb, "runtime_resolve_payload", stdout(&out));
}

/// `ci check` in a fake workflow step: an event outside the App's allow-list, both
/// credentials set, no id-token permission (every warning and its fix).
#[test]
fn snapshot_ci_check_human_and_json() {
    let sb = Sandbox::new();
    let step = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_REPOSITORY", "octo/demo"),
        ("RUNNER_OS", "Linux"),
        ("RUNNER_NAME", "runner-1"),
        ("RUNNER_ENVIRONMENT", "github-hosted"),
        ("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-snapshot"),
        ("ANTHROPIC_API_KEY", "sk-ant-api03-snapshot"),
    ];
    let out = sb.moonauth().args(["ci", "check"]).envs(step).output().unwrap();
    assert_eq!(code(&out), 0);
    snapshot!(sb, "ci_check_human", stdout(&out));
    let out = sb
        .moonauth()
        .args(["ci", "check", "--json"])
        .envs(step)
        .output()
        .unwrap();
    snapshot!(sb, "ci_check_json", stdout(&out));
}

//! `moonauth doctor`: every check collected, then printed (text and JSON), exit code of
//! the first failure. Against the real engine when one answers (skipped otherwise, a
//! failure with MOONAUTH_REQUIRE_DOCKER=1), and against an unreachable one. `--network`
//! is only ever pointed at a loopback server.

use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use crate::support::http::{Request, Response, Server};
use crate::support::sandbox::{code, json, stdout, Sandbox};

const UNREACHABLE: &str = "unix:///nonexistent";

/// True when an engine answers; a failure instead of a skip under MOONAUTH_REQUIRE_DOCKER=1.
fn docker_ready() -> bool {
    let up = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !up {
        if std::env::var("MOONAUTH_REQUIRE_DOCKER").as_deref() == Ok("1") {
            panic!("MOONAUTH_REQUIRE_DOCKER=1 but no Docker engine answers (run scripts/docker-up.sh)");
        }
        eprintln!("SKIP: no Docker engine (set MOONAUTH_REQUIRE_DOCKER=1 to make this a failure)");
    }
    up
}

fn doctor(sb: &Sandbox, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = sb.std_moonauth();
    cmd.env("MOONAUTH_STATE_DIR", sb.root().join("state"));
    cmd.envs(vars.iter().copied());
    cmd.arg("doctor").args(args);
    cmd.output().expect("run moonauth doctor")
}

fn find<'a>(report: &'a serde_json::Value, name: &str) -> Vec<&'a serde_json::Value> {
    report["checks"]
        .as_array()
        .expect("checks is an array")
        .iter()
        .filter(|c| c["check"] == name)
        .collect()
}

fn one<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    match find(report, name).as_slice() {
        [c] => c,
        other => panic!("expected one {name} check, found {}: {report:#}", other.len()),
    }
}

/// A volume name no other test or deployment uses.
fn unique_volume(test: &str) -> String {
    format!("mt-doctor-{test}-{}", std::process::id())
}

#[test]
fn an_unreachable_engine_fails_the_engine_check_with_a_fix_lists_the_rest_and_exits_6() {
    let sb = Sandbox::new();
    let out = doctor(&sb, &[("DOCKER_HOST", UNREACHABLE)], &[]);
    assert_eq!(code(&out), 6, "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("✗ engine:") && text.contains("/nonexistent"), "{text}");
    assert!(text.contains("fix: start the engine"), "{text}");
    for name in ["clock", "empty-image", "worker-image", "volumes"] {
        assert!(
            text.contains(&format!("! {name}: not checked: the Docker engine is unreachable")),
            "{name} not listed:\n{text}"
        );
    }
    assert!(text.contains("✓ account-store:"), "{text}");
    assert!(text.contains("token-endpoint: not checked (off by default)"), "{text}");
    assert!(text.contains("(exit 6:"), "{text}");
}

#[test]
fn the_json_report_has_schema_ok_exit_code_and_every_check_with_its_fix() {
    let sb = Sandbox::new();
    let out = doctor(&sb, &[("DOCKER_HOST", UNREACHABLE)], &["--json"]);
    assert_eq!(code(&out), 6);
    let report = json(&out);
    assert_eq!(report["schema"], "moonauth.doctor.v1");
    assert_eq!(report["ok"], false);
    assert_eq!(report["exit_code"], 6);
    assert_eq!(report["network"], false);
    let engine = one(&report, "engine");
    assert_eq!(engine["status"], "fail");
    assert!(
        engine["fix"].as_str().is_some_and(|f| f.contains("DOCKER_HOST")),
        "{engine:#}"
    );
    for name in ["clock", "empty-image", "worker-image", "volumes"] {
        assert_eq!(one(&report, name)["status"], "warn", "{name}");
    }
    assert_eq!(one(&report, "account-store")["status"], "ok");
    assert!(
        find(&report, "token-endpoint").is_empty(),
        "contacted without --network: {report:#}"
    );
}

#[test]
fn the_account_store_check_counts_the_accounts_it_reads() {
    let sb = Sandbox::new();
    let login = sb.login("claude", "valid-max");
    let state = sb.root().join("state");
    let add = sb
        .std_moonauth()
        .env("MOONAUTH_STATE_DIR", &state)
        .args(["accounts", "add", "work", "--runtime", "claude", "--dir"])
        .arg(&login)
        .output()
        .unwrap();
    assert_eq!(code(&add), 0, "{add:?}");
    let report = json(&doctor(&sb, &[("DOCKER_HOST", UNREACHABLE)], &["--json"]));
    let store = one(&report, "account-store");
    assert_eq!(store["status"], "ok");
    assert!(
        store["detail"].as_str().unwrap().starts_with("1 account(s) in"),
        "{store:#}"
    );
}

/// A loopback server that records what it was sent.
fn recording_server() -> (Server, Arc<Mutex<Vec<Request>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let server = Server::start(Arc::new(move |req: &Request| {
        log.lock().unwrap().push(req.clone());
        Response::new(404, "text/plain", "")
    }));
    (server, seen)
}

#[test]
fn network_is_off_by_default_and_nothing_is_contacted() {
    let sb = Sandbox::new();
    let (server, seen) = recording_server();
    let url = format!("{}/v1/oauth/token", server.base_url());
    let vars = [
        ("DOCKER_HOST", UNREACHABLE),
        ("MOONAUTH_CLAUDE_TOKEN_URL", url.as_str()),
        ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", url.as_str()),
    ];
    let out = doctor(&sb, &vars, &[]);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "token-endpoint: not checked (off by default); --network sends a HEAD to {}",
            server.base_url()
        )),
        "{text}"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "doctor contacted the token host without --network"
    );
}

#[test]
fn network_reaches_each_token_host_once_with_a_bare_head_and_nothing_secret() {
    let sb = Sandbox::new();
    let (server, seen) = recording_server();
    let claude = format!("{}/v1/oauth/token?client=x", server.base_url());
    let codex = format!("{}/oauth/token", server.base_url());
    let vars = [
        ("DOCKER_HOST", UNREACHABLE),
        ("MOONAUTH_CLAUDE_TOKEN_URL", claude.as_str()),
        ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", codex.as_str()),
    ];
    let report = json(&doctor(&sb, &vars, &["--json", "--network"]));
    assert_eq!(report["network"], true);
    let check = one(&report, "token-endpoint");
    assert_eq!(check["status"], "ok", "{check:#}");
    assert!(
        check["detail"].as_str().unwrap().contains("answered HTTP 404"),
        "{check:#}"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "one request per distinct host: {seen:?}");
    let req = &seen[0];
    assert_eq!((req.method.as_str(), req.target.as_str()), ("HEAD", "/"));
    assert!(req.body.is_empty());
    assert!(req.credential().is_none(), "{req:?}");
    assert!(req.header("cookie").is_none());
}

#[test]
fn an_unreachable_token_host_fails_with_a_fix() {
    let sb = Sandbox::new();
    // A port that was just free: nothing listens on it now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/oauth/token");
    let vars = [
        ("DOCKER_HOST", UNREACHABLE),
        ("MOONAUTH_CLAUDE_TOKEN_URL", url.as_str()),
        ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", url.as_str()),
    ];
    let out = doctor(&sb, &vars, &["--json", "--network"]);
    assert_eq!(code(&out), 6, "the engine's failure comes first");
    let report = json(&out);
    let check = one(&report, "token-endpoint");
    assert_eq!(check["status"], "fail", "{check:#}");
    assert!(
        check["detail"].as_str().unwrap().contains("cannot be reached"),
        "{check:#}"
    );
    assert!(check["fix"].as_str().is_some_and(|f| f.contains("proxy")), "{check:#}");
}

#[test]
fn against_the_real_engine_reports_the_api_version_clock_images_and_each_volume() {
    if !docker_ready() {
        return;
    }
    let sb = Sandbox::new();
    let volume = unique_volume("missing");
    let vars = [
        ("MOONMIND_WORKER_RUNTIME", "codex"),
        ("CODEX_VOLUME_NAME", volume.as_str()),
        // Present on any engine moonauth has used: the empty image itself.
        ("MOONAUTH_IMAGE", "moonauth-empty:1"),
    ];
    // The empty image is imported on first use; `status` uses it.
    let _ = doctor(&sb, &vars, &[]);
    let out = doctor(&sb, &vars, &["--json"]);
    let report = json(&out);
    let engine = one(&report, "engine");
    assert_eq!(engine["status"], "ok", "{engine:#}");
    assert!(engine["detail"].as_str().unwrap().contains("API 1."), "{engine:#}");
    assert_eq!(one(&report, "clock")["status"], "ok", "{report:#}");
    assert_eq!(one(&report, "empty-image")["status"], "ok");
    assert_eq!(one(&report, "worker-image")["status"], "ok", "{report:#}");
    let volumes = find(&report, "volume");
    let v = volumes
        .iter()
        .find(|c| c["detail"].as_str().unwrap().starts_with(&volume))
        .unwrap_or_else(|| panic!("no check of {volume}: {report:#}"));
    assert_eq!(v["status"], "fail");
    assert_eq!(v["fix"], "moonauth login codex");
    assert_eq!(code(&out), 4, "a missing volume is an unusable login");
    assert_eq!(report["exit_code"], 4);
}

#[test]
fn an_existing_volume_without_a_login_says_what_it_holds() {
    if !docker_ready() {
        return;
    }
    let sb = Sandbox::new();
    let volume = unique_volume("empty");
    let created = Command::new("docker")
        .args(["volume", "create", &volume])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let vars = [
        ("MOONMIND_WORKER_RUNTIME", "codex"),
        ("CODEX_VOLUME_NAME", volume.as_str()),
    ];
    let out = doctor(&sb, &vars, &["--json"]);
    let _ = Command::new("docker").args(["volume", "rm", "-f", &volume]).output();
    let report = json(&out);
    let v = one(&report, "volume");
    assert_eq!(v["status"], "fail", "{v:#}");
    assert!(v["detail"].as_str().unwrap().contains("missing"), "{v:#}");
    // Unset MOONAUTH_IMAGE is a warning, not a failure: only `login` needs it.
    assert_eq!(one(&report, "worker-image")["status"], "warn");
    assert_eq!(code(&out), 4);
}

#[test]
fn a_missing_worker_image_fails_with_exit_7_and_says_how_to_build_one() {
    if !docker_ready() {
        return;
    }
    let sb = Sandbox::new();
    let out = doctor(&sb, &[("MOONAUTH_IMAGE", "moonauth-no-such-image:never")], &[]);
    assert_eq!(code(&out), 7, "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("✗ worker-image:") && text.contains("moonauth-no-such-image:never"),
        "{text}"
    );
    assert!(text.contains("fix: build the worker image"), "{text}");
}

/// Escapes a literal for an insta filter (a regex).
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

/// Pins the text and the JSON schema (docs/doctor.md) where nothing depends on the host:
/// an unreachable engine and an empty state directory.
#[test]
fn snapshot_doctor_text_and_json_with_an_unreachable_engine() {
    let sb = Sandbox::new();
    let text = stdout(&doctor(&sb, &[("DOCKER_HOST", UNREACHABLE)], &[]));
    let json = stdout(&doctor(&sb, &[("DOCKER_HOST", UNREACHABLE)], &["--json"]));
    let root = literal(&sb.root().display().to_string());
    insta::with_settings!({
        filters => vec![(root.as_str(), "[SANDBOX]")],
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!("doctor_text_unreachable", text);
        insta::assert_snapshot!("doctor_json_unreachable", json);
    });
}

//! `moonauth renew` through the binary, against a loopback token service whose refresh
//! tokens rotate and whose grants are revoked on reuse (tests/support/renew.rs). Network
//! only on 127.0.0.1; every run has a hard timeout.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use crate::support::renew::*;
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

fn renew(service: &TokenService, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let url = service.token_url();
    let mut vars = vec![
        ("MOONAUTH_CLAUDE_TOKEN_URL", url.as_str()),
        ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", url.as_str()),
    ];
    vars.extend_from_slice(extra);
    let out = run(moonauth_cmd(&vars).arg("renew").args(args), T);
    assert!(!out.timed_out, "moonauth renew timed out: {}", out.text());
    assert_no_tokens(&out.text(), service);
    out
}

fn renew_json(service: &TokenService, args: &[&str]) -> (Output, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = renew(service, &all, &[]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.text()));
    (out, v)
}

fn status_of(v: &Value) -> &str {
    v["logins"][0]["status"].as_str().unwrap()
}

fn in_secs(s: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(s)
}

fn ago(s: u64) -> SystemTime {
    SystemTime::now() - Duration::from_secs(s)
}

#[test]
fn codex_login_inside_the_lead_is_refreshed_keeping_every_other_key() {
    let svc = TokenService::start(Flavor::Codex);
    let root = temp_root("renew-");
    let dir = subdir(root.path(), "codex");
    let issued = svc.login(in_secs(600));
    write_codex_login(&dir, &issued, ago(3600));
    fs::set_permissions(dir.join("auth.json"), fs::Permissions::from_mode(0o640)).unwrap();

    let (out, v) = renew_json(&svc, &["codex", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_eq!(status_of(&v), "refreshed", "{v}");
    assert_eq!(v["schema"], "moonauth.renew.v1");
    assert_eq!(v["logins"][0]["attempts"], 1);
    assert!(v["logins"][0]["expires_at"].is_string());
    assert_eq!(svc.refreshes(), 1);

    let auth = read_json(&dir.join("auth.json"));
    let access = auth["tokens"]["access_token"].as_str().unwrap();
    assert_ne!(access, issued.access_token);
    assert!(svc.accepts(access), "the new access token works");
    assert_eq!(
        auth["tokens"]["refresh_token"].as_str().unwrap(),
        svc.current_refresh(issued.grant)
    );
    assert_eq!(auth["tokens"]["account_id"], format!("acct-g{}", issued.grant));
    assert_eq!(auth["x_moonauth_test_keep"]["kept"], true);
    assert!(auth["OPENAI_API_KEY"].is_null());
    let mode = fs::metadata(dir.join("auth.json")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the mode is kept");
    let body = &svc.bodies()[0];
    assert_eq!(body["client_id"], "app_EMoamEEZ73f0CkXaXp7hrann");
    assert_eq!(body["grant_type"], "refresh_token");
    assert_eq!(body["scope"], "openid profile email");

    // Now outside the lead: nothing to do, nothing sent.
    let (out, v) = renew_json(&svc, &["codex", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(0));
    assert_eq!(status_of(&v), "fresh");
    assert_eq!(svc.token_requests(), 1);
}

#[test]
fn claude_login_is_refreshed_in_claudes_format_and_its_locks_released() {
    let svc = TokenService::start(Flavor::Claude);
    let root = temp_root("renew-");
    let dir = subdir(root.path(), "claude");
    let issued = svc.login(ago(60));
    write_claude_login(&dir, &issued);

    let out = renew(&svc, &["claude", "--dir", dir.to_str().unwrap()], &[]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert!(out.stdout.contains("refreshed"), "{}", out.stdout);
    let creds = read_json(&dir.join(".credentials.json"));
    let o = &creds["claudeAiOauth"];
    assert!(svc.accepts(o["accessToken"].as_str().unwrap()));
    assert_eq!(o["refreshToken"].as_str().unwrap(), svc.current_refresh(issued.grant));
    let exp = o["expiresAt"].as_u64().unwrap();
    let want = epoch_secs(in_secs(8 * 3600)) * 1000;
    assert!(exp.abs_diff(want) < 60_000, "expiresAt {exp} vs {want}");
    assert_eq!(o["subscriptionType"], "max");
    assert_eq!(o["subscriptionTypeSource"], "profile");
    assert_eq!(o["x_moonauth_test_keep"], 42);
    assert_eq!(creds["x_top_level_keep"], "yes");
    let body = &svc.bodies()[0];
    assert_eq!(body["client_id"], "9d1c250a-e61b-44d9-88ed-5944d1962f5e");
    assert_eq!(body["scope"], "user:inference user:profile user:sessions:claude_code");
    for lock in [".oauth_refresh.lock", ".storage-write.lock"] {
        assert!(!dir.join(lock).exists(), "{lock} released");
    }
    assert!(!root.path().join("claude.lock").exists(), "the sibling lock released");
    let mode = fs::metadata(dir.join(".credentials.json"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn a_fresh_login_is_left_alone_without_taking_a_lock() {
    let svc = TokenService::start(Flavor::Codex);
    let root = temp_root("renew-");
    let dir = subdir(root.path(), "codex");
    write_codex_login(&dir, &svc.login(in_secs(3 * 3600)), ago(60));
    let before = fs::read(dir.join("auth.json")).unwrap();
    let out = renew(&svc, &["--dir", dir.to_str().unwrap()], &[]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert!(out.stdout.contains("fresh"), "{}", out.stdout);
    assert_eq!(svc.token_requests(), 0);
    assert_eq!(fs::read(dir.join("auth.json")).unwrap(), before);
    assert!(
        !dir.join(".moonauth-refresh.lock").exists(),
        "the fast path takes no lock"
    );
    // A longer lead puts the same login inside it.
    let out = renew(&svc, &["--dir", dir.to_str().unwrap(), "--lead", "4h"], &[]);
    assert!(out.stdout.contains("refreshed"), "{}", out.stdout);
    assert_eq!(svc.refreshes(), 1);
}

/// Eight renewals at the same moment on one login: exactly one refresh, no reuse.
fn eight_at_once(flavor: Flavor) {
    let svc = TokenService::start(flavor);
    svc.set_delay(Duration::from_millis(300));
    let root = temp_root("renew-");
    let dir = subdir(root.path(), "login");
    let issued = svc.login(ago(30));
    let runtime = match flavor {
        Flavor::Codex => {
            write_codex_login(&dir, &issued, ago(30 * 86_400));
            "codex"
        }
        Flavor::Claude => {
            write_claude_login(&dir, &issued);
            "claude"
        }
    };
    let url = svc.token_url();
    let children: Vec<_> = (0..8)
        .map(|_| {
            moonauth_cmd(&[
                ("MOONAUTH_CLAUDE_TOKEN_URL", url.as_str()),
                ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", url.as_str()),
            ])
            .args(["renew", runtime, "--dir", dir.to_str().unwrap(), "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut statuses = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_no_tokens(&text, &svc);
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_str(&text).unwrap();
        statuses.push(v["logins"][0]["status"].as_str().unwrap().to_string());
    }
    assert_eq!(svc.refreshes(), 1, "{statuses:?}");
    assert_eq!(svc.reuses(), 0);
    assert!(!svc.revoked(issued.grant));
    assert_eq!(statuses.iter().filter(|s| *s == "refreshed").count(), 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| s == "refreshed" || s == "refreshed-elsewhere" || s == "fresh"),
        "{statuses:?}"
    );
}

#[test]
fn eight_concurrent_codex_renewals_refresh_once() {
    eight_at_once(Flavor::Codex);
}

#[test]
fn eight_concurrent_claude_renewals_refresh_once() {
    eight_at_once(Flavor::Claude);
}

#[test]
fn a_reused_refresh_token_is_dead_after_one_attempt_and_the_file_is_unchanged() {
    let svc = TokenService::start(Flavor::Codex);
    let root = temp_root("renew-");
    let a = subdir(root.path(), "a");
    let b = subdir(root.path(), "b");
    // Two copies of one login: the second to refresh reuses a spent refresh token.
    let issued = svc.login(ago(10));
    write_codex_login(&a, &issued, ago(3600));
    write_codex_login(&b, &issued, ago(3600));
    let out = renew(&svc, &["codex", "--dir", a.to_str().unwrap()], &[]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    let before = fs::read(b.join("auth.json")).unwrap();

    let (out, v) = renew_json(&svc, &["codex", "--dir", b.to_str().unwrap()]);
    assert_eq!(out.code, Some(4), "dead logins exit 4 (login unusable): {}", out.text());
    assert_eq!(status_of(&v), "dead");
    assert_eq!(
        v["logins"][0]["attempts"], 1,
        "a refused refresh token is never retried"
    );
    assert_eq!(v["logins"][0]["fix"], "moonauth login codex");
    assert!(
        v["logins"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("refresh_token_reused"),
        "{v}"
    );
    assert_eq!(svc.token_requests(), 2);
    assert_eq!(svc.reuses(), 1);
    assert_eq!(fs::read(b.join("auth.json")).unwrap(), before, "byte for byte");
    let state = read_json(&b.join(".moonauth-renew.json"));
    assert_eq!(state["dead"], true);
    // preflight says the login needs a new login, though its access token still works.
    let bin = subdir(root.path(), "bin");
    fs::write(bin.join("codex"), "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(bin.join("codex"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = run(
        moonauth_cmd(&[("PATH", bin.to_str().unwrap()), ("CODEX_HOME", b.to_str().unwrap())]).args([
            "preflight",
            "--mode",
            "codex",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(4), "{}", out.text());
    assert!(
        out.stdout.contains("needs a new login") && out.stdout.contains("moonauth login codex"),
        "{}",
        out.text()
    );

    // Not tried again until the file changes …
    let (out, v) = renew_json(&svc, &["codex", "--dir", b.to_str().unwrap()]);
    assert_eq!(out.code, Some(4));
    assert_eq!(status_of(&v), "blocked");
    assert_eq!(svc.token_requests(), 2, "no request for a login known dead");
    // … and a new login clears it.
    write_codex_login(&b, &svc.login(ago(10)), ago(3600));
    let (out, v) = renew_json(&svc, &["codex", "--dir", b.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_eq!(status_of(&v), "refreshed");
    assert!(!b.join(".moonauth-renew.json").exists());
}

#[test]
fn claude_invalid_grant_is_dead() {
    let svc = TokenService::start(Flavor::Claude);
    let root = temp_root("renew-");
    let dir = subdir(root.path(), "claude");
    let mut issued = svc.login(ago(10));
    issued.refresh_token = "sk-ant-ort01-CANARY-never-issued".into();
    write_claude_login(&dir, &issued);
    let before = fs::read(dir.join(".credentials.json")).unwrap();
    let (out, v) = renew_json(&svc, &["claude", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(4), "{}", out.text());
    assert_eq!(status_of(&v), "dead");
    assert!(v["logins"][0]["detail"].as_str().unwrap().contains("invalid_grant"));
    assert_eq!(fs::read(dir.join(".credentials.json")).unwrap(), before);
    assert!(!dir.join(".oauth_refresh.lock").exists());
}

#[test]
fn server_errors_are_retried_three_times_then_left_alone_until_forced() {
    let svc = TokenService::start(Flavor::Codex);
    svc.fail_next(1000);
    let root = temp_root("renew-");
    let dir = subdir(root.path(), "codex");
    write_codex_login(&dir, &svc.login(ago(10)), ago(3600));
    let before = fs::read(dir.join("auth.json")).unwrap();
    let d = dir.to_str().unwrap();

    for round in 1..=3 {
        let (out, v) = renew_json(&svc, &["codex", "--dir", d]);
        assert_eq!(out.code, Some(1), "a passing failure exits 1: {}", out.text());
        assert_eq!(status_of(&v), "failed");
        assert_eq!(v["logins"][0]["attempts"], 3);
        assert!(
            v["logins"][0]["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("{round} failed renewal(s) in a row")),
            "{v}"
        );
        assert_eq!(svc.failures(), 3 * round);
        assert_eq!(fs::read(dir.join("auth.json")).unwrap(), before, "byte for byte");
    }
    let (out, v) = renew_json(&svc, &["codex", "--dir", d]);
    assert_eq!(out.code, Some(4), "{}", out.text());
    assert_eq!(status_of(&v), "blocked");
    assert!(v["logins"][0]["fix"].as_str().unwrap().contains("--force"));
    assert_eq!(svc.token_requests(), 9, "a blocked login sends nothing");

    // The service recovers; --force tries again.
    svc.fail_next(0);
    let (out, v) = renew_json(&svc, &["codex", "--dir", d, "--force"]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_eq!(status_of(&v), "refreshed");
    assert_eq!(svc.refreshes(), 1);
}

#[test]
fn a_transient_failure_is_retried_within_one_renewal() {
    let svc = TokenService::start(Flavor::Claude);
    svc.fail_next(2);
    let root = temp_root("renew-");
    let dir = subdir(root.path(), "claude");
    write_claude_login(&dir, &svc.login(ago(10)));
    let (out, v) = renew_json(&svc, &["claude", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_eq!(status_of(&v), "refreshed");
    assert_eq!(v["logins"][0]["attempts"], 3);
}

#[test]
fn an_unreachable_token_service_is_a_passing_failure() {
    let root = temp_root("renew-");
    let dir = subdir(root.path(), "codex");
    let svc = TokenService::start(Flavor::Codex);
    write_codex_login(&dir, &svc.login(ago(10)), ago(3600));
    let before = fs::read(dir.join("auth.json")).unwrap();
    // A port nothing listens on.
    let out = run(
        moonauth_cmd(&[("CODEX_REFRESH_TOKEN_URL_OVERRIDE", "http://127.0.0.1:9/oauth/token")]).args([
            "renew",
            "codex",
            "--dir",
            dir.to_str().unwrap(),
        ]),
        T,
    );
    assert_eq!(out.code, Some(1), "{}", out.text());
    assert!(
        out.stdout.contains("failed") && out.stdout.contains("cannot reach"),
        "{}",
        out.stdout
    );
    assert_eq!(fs::read(dir.join("auth.json")).unwrap(), before);
}

#[test]
fn a_refresh_names_the_token_service_it_contacts_and_a_failure_names_it_too() {
    let root = temp_root("renew-");
    let dir = subdir(root.path(), "codex");
    let svc = TokenService::start(Flavor::Codex);
    write_codex_login(&dir, &svc.login(ago(10)), ago(3600));
    // A query in an override is never shown (user information is refused by the configuration).
    let url = "http://127.0.0.1:9/oauth/token?key=s3cret";
    let out = run(
        moonauth_cmd(&[
            ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", url),
            ("MOONAUTH_RENEW_RETRY_DELAY", "10ms"),
        ])
        .args(["-v", "renew", "codex", "--json", "--dir", dir.to_str().unwrap()]),
        T,
    );
    assert_eq!(out.code, Some(1), "{}", out.text());
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.text()));
    let detail = v["logins"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("POST http://127.0.0.1:9/oauth/token"), "{detail}");
    // Before each attempt, an info line names where the refresh token goes.
    assert!(
        out.stderr
            .matches("token service POST http://127.0.0.1:9/oauth/token")
            .count()
            >= 2,
        "{}",
        out.stderr
    );
    let all = out.text();
    assert!(!all.contains("s3cret"), "{all}");
}

#[test]
fn dry_run_says_what_would_be_refreshed_and_why_and_contacts_nothing() {
    let svc = TokenService::start(Flavor::Codex);
    let root = temp_root("renew-");
    let due = subdir(root.path(), "due");
    let fresh = subdir(root.path(), "fresh");
    write_codex_login(&due, &svc.login(in_secs(600)), ago(3600));
    write_codex_login(&fresh, &svc.login(in_secs(3 * 3600)), ago(60));
    let before = fs::read(due.join("auth.json")).unwrap();
    let (out, v) = renew_json(
        &svc,
        &[
            "codex",
            "--dry-run",
            "--dir",
            due.to_str().unwrap(),
            "--dir",
            fresh.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_eq!(svc.token_requests(), 0, "a dry run sent a request");
    assert_eq!(fs::read(due.join("auth.json")).unwrap(), before);
    assert!(!due.join(".moonauth-refresh.lock").exists(), "a dry run took the lease");
    let logins = v["logins"].as_array().unwrap();
    assert_eq!(logins[0]["status"], "would-refresh", "{v}");
    let detail = logins[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("within the lead") && detail.contains(&format!("POST {}", svc.token_url())),
        "{detail}"
    );
    assert_eq!(logins[0]["attempts"], 0);
    assert_eq!(logins[1]["status"], "fresh", "{v}");
    // The human line says it too.
    let out = renew(&svc, &["--dry-run", "--dir", due.to_str().unwrap()], &[]);
    assert!(
        out.stdout.contains("would-refresh") || out.stdout.contains("would refresh"),
        "{}",
        out.stdout
    );
    assert_eq!(svc.token_requests(), 0);
}

#[test]
fn renew_and_run_help_name_the_token_services_and_their_overrides() {
    for cmd in ["renew", "run"] {
        let out = run(moonauth_cmd(&[]).args([cmd, "--help"]), T);
        for needle in [
            moonauth::agents::claude::TOKEN_URL,
            moonauth::agents::claude::TOKEN_URL_VARIABLE,
            moonauth::agents::codex::TOKEN_URL,
            moonauth::agents::codex::TOKEN_URL_VARIABLE,
        ] {
            assert!(
                out.stdout.contains(needle),
                "{cmd} --help lacks {needle}:\n{}",
                out.stdout
            );
        }
    }
}

#[test]
fn tokens_never_reach_output_or_logs_at_any_level() {
    let svc = TokenService::start(Flavor::Codex);
    let root = temp_root("renew-");
    let ok = subdir(root.path(), "ok");
    let dead = subdir(root.path(), "dead");
    let issued = svc.login(ago(10));
    write_codex_login(&ok, &issued, ago(3600));
    write_codex_login(&dead, &issued, ago(3600));
    let mut logs = String::new();
    for (args, vars) in [
        (vec!["-vvv", "renew", "codex", "--dir"], vec![("RUST_LOG", "trace")]),
        (
            vec!["-vvv", "renew", "codex", "--json", "--dir"],
            vec![("RUST_LOG", "trace")],
        ),
    ] {
        for dir in [&ok, &dead] {
            let mut all = args.clone();
            all.push(dir.to_str().unwrap());
            let url = svc.token_url();
            let mut v = vars.clone();
            v.push(("CODEX_REFRESH_TOKEN_URL_OVERRIDE", url.as_str()));
            let out = run(moonauth_cmd(&v).args(&all), T);
            assert_no_tokens(&out.text(), &svc);
            logs.push_str(&out.stderr);
        }
    }
    assert!(
        logs.contains("refreshing") && logs.contains("refresh failed"),
        "trace logs were written: {logs}"
    );
    // 5xx bodies that carry a token are scrubbed too.
    svc.fail_next(3);
    let out = renew(
        &svc,
        &["codex", "--force", "--dir", ok.to_str().unwrap()],
        &[("RUST_LOG", "trace")],
    );
    assert_no_tokens(&out.text(), &svc);
    assert!(svc.refreshes() >= 1);
}

#[test]
fn every_configured_login_is_renewed_with_all() {
    let codex = TokenService::start(Flavor::Codex);
    let claude = TokenService::start(Flavor::Claude);
    let root = temp_root("renew-");
    let cdir = subdir(root.path(), "codex");
    let adir = subdir(root.path(), "claude");
    write_codex_login(&cdir, &codex.login(ago(10)), ago(3600));
    write_claude_login(&adir, &claude.login(in_secs(300)));
    let out = run(
        moonauth_cmd(&[
            ("CODEX_HOME", cdir.to_str().unwrap()),
            ("CLAUDE_CONFIG_DIR", adir.to_str().unwrap()),
            ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", &codex.token_url()),
            ("MOONAUTH_CLAUDE_TOKEN_URL", &claude.token_url()),
        ])
        .args(["renew", "--all", "--json"]),
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.text());
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let statuses: Vec<(&str, &str)> = v["logins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["runtime"].as_str().unwrap(), l["status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses, [("codex", "refreshed"), ("claude", "refreshed")]);
    assert_eq!((codex.refreshes(), claude.refreshes()), (1, 1));
}

#[test]
fn a_missing_default_login_is_reported_but_a_named_one_fails() {
    let root = temp_root("renew-");
    let svc = TokenService::start(Flavor::Codex);
    let empty = subdir(root.path(), "empty");
    let out = run(
        moonauth_cmd(&[
            ("CODEX_HOME", empty.to_str().unwrap()),
            ("CLAUDE_CONFIG_DIR", root.path().join("nope").to_str().unwrap()),
        ])
        .args(["renew"]),
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert!(out.stdout.contains("missing"), "{}", out.stdout);
    let out = renew(&svc, &["codex", "--dir", empty.to_str().unwrap()], &[]);
    assert_eq!(out.code, Some(4), "{}", out.text());
    assert!(out.stdout.contains("moonauth login codex"), "{}", out.stdout);
    let out = renew(&svc, &["--dir", empty.to_str().unwrap()], &[]);
    assert_eq!(
        out.code,
        Some(2),
        "a --dir without a login file needs a runtime: {}",
        out.text()
    );
}

#[test]
fn the_owner_of_the_login_file_is_kept() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: needs root to give the login file to another uid");
        return;
    }
    let svc = TokenService::start(Flavor::Claude);
    let root = temp_root("renew-");
    let dir = subdir(root.path(), "claude");
    write_claude_login(&dir, &svc.login(ago(10)));
    let uid = nix::unistd::Uid::from_raw(1000);
    let gid = nix::unistd::Gid::from_raw(1000);
    nix::unistd::chown(&dir.join(".credentials.json"), Some(uid), Some(gid)).unwrap();
    let out = renew(&svc, &["claude", "--dir", dir.to_str().unwrap()], &[]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    let m = fs::metadata(dir.join(".credentials.json")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (1000, 1000, 0o600));
}

/// Kills `moonauth renew` with SIGKILL at random moments; after each kill the login file
/// parses and holds either the old login or the new one, and the next renewal is not
/// kept out by a lock the killed one held.
fn kill_nine(flavor: Flavor, rounds: usize) {
    let svc = TokenService::start(flavor);
    let root = temp_root("renew-kill-");
    let dir = subdir(root.path(), "login");
    let (runtime, file) = match flavor {
        Flavor::Codex => ("codex", dir.join("auth.json")),
        Flavor::Claude => ("claude", dir.join(".credentials.json")),
    };
    let url = svc.token_url();
    let vars = [
        ("MOONAUTH_CLAUDE_TOKEN_URL", url.as_str()),
        ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", url.as_str()),
        ("MOONAUTH_RENEW_LOCK_TIMEOUT", "20s"),
    ];
    let mut outcomes = [0usize; 2]; // [old, new]
    for round in 0..rounds {
        svc.set_delay(Duration::from_millis(fastrand::u64(0..15)));
        let issued = svc.login(ago(10));
        match flavor {
            Flavor::Codex => write_codex_login(&dir, &issued, ago(3600)),
            Flavor::Claude => write_claude_login(&dir, &issued),
        }
        let old = fs::read(&file).unwrap();
        let mut child = moonauth_cmd(&vars)
            .args(["renew", runtime, "--dir", dir.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(fastrand::u64(0..40_000)));
        let _ = child.kill();
        let _ = child.wait();

        let now = fs::read(&file).unwrap();
        let v: Value = serde_json::from_slice(&now)
            .unwrap_or_else(|e| panic!("round {round}: the login file does not parse: {e}"));
        if now == old {
            outcomes[0] += 1;
        } else {
            let access = match flavor {
                Flavor::Codex => v["tokens"]["access_token"].as_str().unwrap().to_string(),
                Flavor::Claude => v["claudeAiOauth"]["accessToken"].as_str().unwrap().to_string(),
            };
            assert!(svc.accepts(&access), "round {round}: neither the old nor the new login");
            outcomes[1] += 1;
        }
        // The flock is free at once.
        let lock = fs::File::open(dir.join(".moonauth-refresh.lock"));
        if let Ok(lock) = lock {
            let held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock);
            assert!(
                held.is_ok(),
                "round {round}: the lease is still held after the holder died"
            );
        }
        // Claude's lock directory a killed moonauth left is taken over, not waited out.
        if flavor == Flavor::Claude && round % 5 == 0 {
            // Far below Claude Code's 60 s stale time: only a takeover can get the lock
            // in time; waiting it out would fail the renewal.
            let short = [vars[0], vars[1], ("MOONAUTH_RENEW_LOCK_TIMEOUT", "10s")];
            let out = run(
                moonauth_cmd(&short).args(["renew", runtime, "--force", "--json", "--dir", dir.to_str().unwrap()]),
                T,
            );
            assert!(!out.stdout.contains("stayed locked"), "round {round}: {}", out.text());
            // Refreshed — or dead, when the killed holder had already spent the refresh
            // token and died before writing the new one (the kill's own loss, not a lock).
            let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.text()));
            let status = v["logins"][0]["status"].as_str().unwrap_or_default().to_string();
            assert!(
                status == "refreshed" || status == "dead",
                "round {round}: {}",
                out.text()
            );
        }
        for lock in [".oauth_refresh.lock", ".storage-write.lock"] {
            let p = dir.join(lock);
            if p.exists() {
                // Left by the kill: the next lease takes it over (checked above); clear it
                // here so every round starts alike.
                let _ = fs::remove_dir(&p);
            }
        }
        let _ = fs::remove_dir(root.path().join("login.lock"));
    }
    eprintln!(
        "{runtime}: {rounds} kills: {} left the old login, {} the new one",
        outcomes[0], outcomes[1]
    );
    assert_eq!(outcomes[0] + outcomes[1], rounds);
}

#[test]
fn kill_nine_during_codex_renewal_leaves_old_or_new_login() {
    kill_nine(Flavor::Codex, 200);
}

#[test]
fn kill_nine_during_claude_renewal_leaves_old_or_new_login() {
    kill_nine(Flavor::Claude, 200);
}

fn wait_for(path: &Path, what: &dyn Fn(&[u8]) -> bool, timeout: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if fs::read(path).is_ok_and(|b| what(&b)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn watch_renews_then_stops_cleanly_on_sigterm_finishing_the_refresh() {
    let svc = TokenService::start(Flavor::Codex);
    let root = temp_root("renew-watch-");
    let dir = subdir(root.path(), "codex");
    let issued = svc.login(in_secs(600));
    write_codex_login(&dir, &issued, ago(60));
    // Each refresh takes 1.5 s, so SIGTERM lands in the middle of it.
    svc.set_delay(Duration::from_millis(1500));
    let url = svc.token_url();
    let mut child = moonauth_cmd(&[("CODEX_REFRESH_TOKEN_URL_OVERRIDE", url.as_str())])
        .args(["renew", "codex", "--dir", dir.to_str().unwrap(), "--watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while svc.token_requests() == 0 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(svc.token_requests(), 1, "the watcher refreshed at once");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if child.try_wait().unwrap().is_some() {
                break child.wait_with_output().unwrap();
            }
            assert!(Instant::now() < deadline, "the watcher did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_no_tokens(&stdout, &svc);
    assert!(
        out.status.success(),
        "exit 0 on SIGTERM: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 1, "{stdout}");
    assert_eq!(events[0]["status"], "refreshed", "the refresh in flight finished");
    assert!(wait_for(
        &dir.join("auth.json"),
        &|b| !String::from_utf8_lossy(b).contains(&issued.access_token),
        Duration::from_secs(1)
    ));
    let lock = fs::File::open(dir.join(".moonauth-refresh.lock")).unwrap();
    assert!(nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok());
    assert_eq!(svc.refreshes(), 1);
}

#[test]
fn watch_picks_up_a_login_that_enters_the_lead() {
    let svc = TokenService::start(Flavor::Claude);
    let root = temp_root("renew-watch-");
    let dir = subdir(root.path(), "claude");
    // Outside a 60 s lead by 8 s: due 5 to 8 s after the watcher starts (the jitter adds
    // up to a twentieth of the lead).
    write_claude_login(&dir, &svc.login(in_secs(60 + 8)));
    let url = svc.token_url();
    let child = moonauth_cmd(&[("MOONAUTH_CLAUDE_TOKEN_URL", url.as_str())])
        .args([
            "renew",
            "claude",
            "--dir",
            dir.to_str().unwrap(),
            "--watch",
            "--lead",
            "60s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while svc.refreshes() == 0 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let waited = started.elapsed();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(svc.refreshes(), 1, "{stdout}");
    assert!(waited >= Duration::from_secs(4), "not before it was due: {waited:?}");
    assert!(out.status.success());
    assert!(stdout.contains("fresh") && stdout.contains("refreshed"), "{stdout}");
}

#[test]
fn human_report_snapshot() {
    let svc = TokenService::start(Flavor::Codex);
    let root = temp_root("renew-snap-");
    let fresh = subdir(root.path(), "fresh");
    let due = subdir(root.path(), "due");
    let copy = subdir(root.path(), "copy");
    write_codex_login(&fresh, &svc.login(in_secs(3 * 3600)), ago(60));
    let issued = svc.login(ago(10));
    write_codex_login(&due, &issued, ago(3600));
    write_codex_login(&copy, &issued, ago(3600));
    let args: Vec<String> = ["codex", "--dir", "fresh", "--dir", "due", "--dir", "copy"]
        .iter()
        .map(|a| match *a {
            "fresh" | "due" | "copy" => root.path().join(a).display().to_string(),
            other => other.to_string(),
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = renew(&svc, &args, &[]);
    assert_eq!(out.code, Some(4), "the dead copy decides the exit: {}", out.text());
    let text = out
        .stdout
        .replace(&root.path().display().to_string(), "<root>")
        .replace(&svc.token_url(), "<token-service>");
    insta::assert_snapshot!(text);
}

#[test]
fn a_dead_store_account_is_marked_for_relogin_and_all_includes_store_accounts() {
    let svc = TokenService::start(Flavor::Codex);
    let root = temp_root("renew-");
    let state = subdir(root.path(), "state");
    let spent = subdir(root.path(), "spent");
    let live = subdir(root.path(), "live");
    // `spent` holds a copy of a login whose refresh token another holder already used.
    let issued = svc.login(ago(10));
    write_codex_login(&live, &issued, ago(3600));
    write_codex_login(&spent, &issued, ago(3600));
    let vars = [("MOONAUTH_STATE_DIR", state.to_str().unwrap())];
    for (alias, dir) in [("spent", &spent), ("live", &live)] {
        let out = run(
            moonauth_cmd(&vars).args([
                "accounts",
                "add",
                alias,
                "--runtime",
                "codex",
                "--dir",
                dir.to_str().unwrap(),
            ]),
            T,
        );
        assert_eq!(out.code, Some(0), "{}", out.text());
    }
    let out = renew(&svc, &["--account", "live"], &vars);
    assert_eq!(out.code, Some(0), "{}", out.text());
    let out = renew(&svc, &["--account", "spent"], &vars);
    assert_eq!(out.code, Some(4), "{}", out.text());
    let ls = run(moonauth_cmd(&vars).args(["accounts", "ls", "--json"]), T);
    let v: Value = serde_json::from_str(&ls.stdout).unwrap();
    let spent_rec = v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alias"] == "spent")
        .unwrap()
        .clone();
    assert_eq!(spent_rec["needs_relogin"], true, "{spent_rec}");
    let live_rec = v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alias"] == "live")
        .unwrap()
        .clone();
    assert_eq!(live_rec["needs_relogin"], false, "{live_rec}");

    // --all reaches the store's accounts too (the configured default is absent here).
    let codex_home = root.path().join("no-default");
    let out = renew(
        &svc,
        &["--all", "--json", "--force"],
        &[
            vars[0],
            ("CODEX_HOME", codex_home.to_str().unwrap()),
            ("CLAUDE_HOME", codex_home.to_str().unwrap()),
        ],
    );
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.text()));
    let dirs: Vec<String> = v["logins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["dir"].as_str().unwrap().to_string())
        .collect();
    assert!(
        dirs.contains(&live.display().to_string()) && dirs.contains(&spent.display().to_string()),
        "{dirs:?}"
    );
}

// ---- hardening: out-of-range times never panic ----

fn jwt_of(claims: &Value) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    format!("eyJhbGciOiJub25lIn0.{}.sig", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

#[test]
fn renew_json_of_far_future_expiries_is_fresh_not_a_panic() {
    let svc = TokenService::start(Flavor::Codex);
    let root = temp_root("renew-far-");
    let claude = subdir(root.path(), "claude");
    fs::write(
        claude.join(".credentials.json"),
        r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-CANARY","refreshToken":"sk-ant-ort01-CANARY","expiresAt":253402300800000,"scopes":["user:inference"]}}"#,
    )
    .unwrap();
    let codex = subdir(root.path(), "codex");
    let far = serde_json::json!({"exp": u64::MAX});
    let auth = serde_json::json!({"OPENAI_API_KEY": null, "tokens": {"id_token": jwt_of(&far),
        "access_token": jwt_of(&far), "refresh_token": "rt_CANARY"},
        "last_refresh": humantime::format_rfc3339_seconds(SystemTime::now()).to_string()});
    fs::write(codex.join("auth.json"), auth.to_string()).unwrap();

    for (runtime, dir) in [("claude", &claude), ("codex", &codex)] {
        let (out, v) = renew_json(&svc, &[runtime, "--dir", dir.to_str().unwrap()]);
        assert_eq!(out.code, Some(0), "{runtime}: {}", out.text());
        assert_eq!(status_of(&v), "fresh", "{runtime}: {v}");
        assert_eq!(v["logins"][0]["expires_at"], "9999-12-31T23:59:59Z", "{runtime}: {v}");
    }
    assert_eq!(svc.token_requests(), 0);
}

/// The `login` check of `moonauth preflight --json --mode RUNTIME` on `dir`.
fn preflight_login_check(runtime: &str, dir: &Path) -> Value {
    let var = if runtime == "claude" {
        "CLAUDE_CONFIG_DIR"
    } else {
        "CODEX_HOME"
    };
    let out = run(
        moonauth_cmd(&[(var, dir.to_str().unwrap())]).args(["preflight", "--json", "--mode", runtime]),
        T,
    );
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.text()));
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "login")
        .unwrap_or_else(|| panic!("no login check: {v}"))
        .clone()
}

fn inspect_and_preflight_work(runtime: &str, dir: &Path) {
    let out = run(
        moonauth_cmd(&[]).args(["inspect", runtime, "--json", "--dir", dir.to_str().unwrap()]),
        T,
    );
    assert_eq!(out.code, Some(0), "inspect {runtime}: {}", out.text());
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.text()));
    assert_eq!(v["class"], "oauth-valid", "{v}");
    let var = if runtime == "claude" {
        "CLAUDE_CONFIG_DIR"
    } else {
        "CODEX_HOME"
    };
    // No CLI on PATH: the cli check fails (3), but the login check must pass and nothing panics.
    let out = run(
        moonauth_cmd(&[(var, dir.to_str().unwrap())]).args(["preflight", "--json", "--mode", runtime]),
        T,
    );
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.text()));
    let login = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "login")
        .unwrap_or_else(|| panic!("no login check: {v}"));
    assert_eq!(login["status"], "ok", "{v}");
}

/// The bound moonauth puts on an access token's lifetime (refresh::MAX_ACCESS_TOKEN_LIFETIME).
const MAX_LIFETIME: Duration = Duration::from_secs(366 * 86_400);

#[test]
fn a_claude_answer_with_a_huge_expires_in_is_bounded_and_said_so() {
    for expires_in in [1e13, 1e300] {
        let svc = TokenService::start(Flavor::Claude);
        svc.set_answer_patch(serde_json::json!({ "expires_in": expires_in }));
        let root = temp_root("renew-huge-");
        let dir = subdir(root.path(), "claude");
        let issued = svc.login(ago(60));
        write_claude_login(&dir, &issued);

        let (out, v) = renew_json(&svc, &["claude", "--dir", dir.to_str().unwrap()]);
        assert_eq!(out.code, Some(0), "{expires_in}: {}", out.text());
        assert_eq!(status_of(&v), "refreshed", "{v}");
        let detail = v["logins"][0]["detail"].as_str().unwrap();
        assert!(
            detail.contains("warning") && detail.contains("beyond the bound"),
            "{detail}"
        );
        assert!(
            out.stderr.contains("out of range"),
            "a warning is logged: {}",
            out.stderr
        );

        let o = &read_json(&dir.join(".credentials.json"))["claudeAiOauth"];
        assert!(svc.accepts(o["accessToken"].as_str().unwrap()));
        assert_eq!(o["refreshToken"].as_str().unwrap(), svc.current_refresh(issued.grant));
        let exp = o["expiresAt"].as_u64().expect("expiresAt is an integer");
        let now_ms = epoch_secs(SystemTime::now()) * 1000;
        assert!(exp > now_ms, "{expires_in}: not written as already expired: {exp}");
        assert!(
            exp <= now_ms + MAX_LIFETIME.as_millis() as u64 + 60_000,
            "{expires_in}: {exp}"
        );

        // The login is usable, and the next renewal leaves it alone.
        inspect_and_preflight_work("claude", &dir);
        let (_, v) = renew_json(&svc, &["claude", "--dir", dir.to_str().unwrap()]);
        assert_eq!(status_of(&v), "fresh", "{v}");
        assert_eq!(svc.refreshes(), 1);
    }
}

#[test]
fn a_codex_answer_whose_access_token_never_expires_is_kept_and_bounded() {
    let svc = TokenService::start(Flavor::Codex);
    let root = temp_root("renew-huge-");
    let dir = subdir(root.path(), "codex");
    let issued = svc.login(in_secs(600));
    write_codex_login(&dir, &issued, ago(3600));
    svc.set_access_exp(u64::MAX);

    let (out, v) = renew_json(&svc, &["codex", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_eq!(status_of(&v), "refreshed", "{v}");
    assert!(
        v["logins"][0]["detail"].as_str().unwrap().contains("beyond the bound"),
        "{v}"
    );
    let reported = humantime::parse_rfc3339(v["logins"][0]["expires_at"].as_str().unwrap()).unwrap();
    assert!(reported <= SystemTime::now() + MAX_LIFETIME, "{v}");

    // The refresh token was spent: the new tokens must be in the file.
    let auth = read_json(&dir.join("auth.json"));
    assert!(svc.accepts(auth["tokens"]["access_token"].as_str().unwrap()));
    assert_eq!(
        auth["tokens"]["refresh_token"].as_str().unwrap(),
        svc.current_refresh(issued.grant)
    );
    inspect_and_preflight_work("codex", &dir);
    assert_eq!(svc.refreshes(), 1);
}

// ---- hardening: a refresh whose write fails keeps the answer ----

/// `moonauth renew` whose files may not grow past `limit` bytes (RLIMIT_FSIZE: a write
/// past it fails with EFBIG, a real kernel condition that needs no privilege).
fn renew_with_file_size_limit(svc: &TokenService, args: &[&str], limit: u64) -> Output {
    use std::os::unix::process::CommandExt;
    let url = svc.token_url();
    let vars = [
        ("MOONAUTH_CLAUDE_TOKEN_URL", url.as_str()),
        ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", url.as_str()),
    ];
    let mut cmd = moonauth_cmd(&vars);
    cmd.arg("renew").args(args);
    // SAFETY: only async-signal-safe calls (signal, setrlimit) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Ignored, SIGXFSZ would otherwise kill the process instead of failing the write.
            nix::libc::signal(nix::libc::SIGXFSZ, nix::libc::SIG_IGN);
            let lim = nix::libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if nix::libc::setrlimit(nix::libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run(&mut cmd, T);
    assert!(!out.timed_out, "moonauth renew timed out: {}", out.text());
    assert_no_tokens(&out.text(), svc);
    out
}

/// A Codex login inside the lead whose file is padded to about `pad` bytes.
fn padded_codex_login(svc: &TokenService, dir: &Path, pad: usize) -> Issued {
    let issued = svc.login(in_secs(600));
    write_codex_login(dir, &issued, ago(3600));
    let mut auth = read_json(&dir.join("auth.json"));
    auth["x_pad"] = Value::String("q".repeat(pad));
    fs::write(dir.join("auth.json"), serde_json::to_vec_pretty(&auth).unwrap()).unwrap();
    issued
}

#[test]
fn a_directory_that_cannot_take_the_new_file_is_found_before_the_refresh_token_is_spent() {
    let svc = TokenService::start(Flavor::Codex);
    let root = temp_root("renew-fsize-");
    let dir = subdir(root.path(), "codex");
    padded_codex_login(&svc, &dir, 20_000);
    let before = fs::read(dir.join("auth.json")).unwrap();

    // The login file is ~20 KB and no file may grow past 15 KB: the new login cannot be
    // written, which must be found before the refresh token is spent, not after.
    let out = renew_with_file_size_limit(&svc, &["codex", "--json", "--dir", dir.to_str().unwrap()], 15_000);
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.text()));
    assert_eq!(out.code, Some(1), "{}", out.text());
    assert_eq!(status_of(&v), "failed", "{v}");
    assert!(
        v["logins"][0]["detail"].as_str().unwrap().contains("nothing was sent"),
        "{v}"
    );
    assert_eq!(svc.token_requests(), 0, "the refresh token was not spent");
    assert_eq!(fs::read(dir.join("auth.json")).unwrap(), before);
}

/// A Claude login (expired) whose file is padded to about `pad` bytes.
fn padded_claude_login(svc: &TokenService, dir: &Path, pad: usize) -> Issued {
    let issued = svc.login(ago(60));
    write_claude_login(dir, &issued);
    let mut creds = read_json(&dir.join(".credentials.json"));
    creds["x_pad"] = Value::String("q".repeat(pad));
    fs::write(
        dir.join(".credentials.json"),
        serde_json::to_vec_pretty(&creds).unwrap(),
    )
    .unwrap();
    issued
}

/// A refresh whose answer cannot be written (the new login file outgrows a file size
/// limit the directory passed before the refresh, while the answer alone fits) keeps the
/// answer; the next renewal applies it with no second refresh.
fn write_failure_round_trip(flavor: Flavor) {
    let svc = TokenService::start(flavor);
    let root = temp_root("renew-fsize-");
    let (runtime, name) = match flavor {
        Flavor::Codex => ("codex", "auth.json"),
        Flavor::Claude => ("claude", ".credentials.json"),
    };
    let dir = subdir(root.path(), runtime);
    let file = dir.join(name);
    // A ~20 KB login; a large answer: for Codex a ~40 KB id token (new file ~60 KB), for
    // Claude ~15 KB of scopes (written one per line: new file ~55 KB).
    let issued = match flavor {
        Flavor::Codex => {
            let issued = padded_codex_login(&svc, &dir, 20_000);
            svc.set_id_padding(30_000);
            issued
        }
        Flavor::Claude => {
            let issued = padded_claude_login(&svc, &dir, 20_000);
            let scope = format!("user:inference user:profile{}", " user:pad".repeat(1_700));
            svc.set_answer_patch(serde_json::json!({ "scope": scope }));
            issued
        }
    };
    let before = fs::read(&file).unwrap();

    let out = renew_with_file_size_limit(&svc, &[runtime, "--json", "--dir", dir.to_str().unwrap()], 45_000);
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.text()));
    assert_eq!(out.code, Some(1), "{}", out.text());
    assert_eq!(status_of(&v), "pending-write", "{v}");
    let detail = v["logins"][0]["detail"].as_str().unwrap();
    assert!(detail.contains(".moonauth-pending-refresh.json"), "{detail}");
    assert!(
        v["logins"][0]["fix"]
            .as_str()
            .unwrap()
            .contains(&format!("moonauth renew {runtime}")),
        "{v}"
    );
    assert_eq!(svc.refreshes(), 1);
    assert_eq!(fs::read(&file).unwrap(), before, "the login file is untouched");
    let pending = dir.join(".moonauth-pending-refresh.json");
    let meta = fs::symlink_metadata(&pending).expect("the answer is kept beside the login");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let leftovers: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".moonauth-tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "no temp file is left behind");

    // Meanwhile no worker may start on it: its CLI would refresh the spent token.
    let check = preflight_login_check(runtime, &dir);
    assert_eq!(check["status"], "fail", "{check}");
    assert!(check["fix"].as_str().unwrap().contains("moonauth renew"), "{check}");

    // The next renewal (room again) applies the kept answer instead of refreshing again.
    let (out, v) = renew_json(&svc, &[runtime, "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_eq!(status_of(&v), "refreshed", "{v}");
    assert!(
        v["logins"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("applied the answer"),
        "{v}"
    );
    assert_eq!(v["logins"][0]["attempts"], 0);
    assert_eq!(svc.token_requests(), 1, "exactly one refresh");
    assert_eq!(svc.reuses(), 0);
    assert!(!pending.exists());
    let login = read_json(&file);
    let (access, refresh) = match flavor {
        Flavor::Codex => (&login["tokens"]["access_token"], &login["tokens"]["refresh_token"]),
        Flavor::Claude => (
            &login["claudeAiOauth"]["accessToken"],
            &login["claudeAiOauth"]["refreshToken"],
        ),
    };
    assert!(svc.accepts(access.as_str().unwrap()), "the login works");
    assert_eq!(refresh.as_str().unwrap(), svc.current_refresh(issued.grant));
    assert_eq!(
        login["x_pad"].as_str().map(str::len),
        Some(20_000),
        "other keys are kept"
    );
    assert_eq!(preflight_login_check(runtime, &dir)["status"], "ok");

    // And then it is fresh.
    let (_, v) = renew_json(&svc, &[runtime, "--dir", dir.to_str().unwrap()]);
    assert_eq!(status_of(&v), "fresh", "{v}");
    assert_eq!(svc.token_requests(), 1);
}

#[test]
fn a_codex_refresh_whose_write_fails_keeps_the_answer_and_the_next_renewal_applies_it() {
    write_failure_round_trip(Flavor::Codex);
}

#[test]
fn a_claude_refresh_whose_write_fails_keeps_the_answer_and_the_next_renewal_applies_it() {
    write_failure_round_trip(Flavor::Claude);
}

#[test]
fn a_pending_answer_for_a_login_that_was_replaced_is_discarded() {
    let svc = TokenService::start(Flavor::Codex);
    let root = temp_root("renew-fsize-");
    let dir = subdir(root.path(), "codex");
    padded_codex_login(&svc, &dir, 20_000);
    svc.set_id_padding(30_000);
    let out = renew_with_file_size_limit(&svc, &["codex", "--json", "--dir", dir.to_str().unwrap()], 50_000);
    assert_eq!(out.code, Some(1), "{}", out.text());
    let pending = dir.join(".moonauth-pending-refresh.json");
    assert!(pending.exists());

    // A new login replaces the one whose token was spent: the kept answer is of no use.
    svc.set_id_padding(0);
    let fresh = svc.login(in_secs(7200));
    write_codex_login(&dir, &fresh, SystemTime::now());
    let (out, v) = renew_json(&svc, &["codex", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_eq!(status_of(&v), "fresh", "{v}");
    assert!(!pending.exists());
    let auth = read_json(&dir.join("auth.json"));
    assert_eq!(auth["tokens"]["access_token"].as_str().unwrap(), fresh.access_token);
}

#[test]
fn a_pending_answer_that_is_a_symbolic_link_is_never_followed() {
    let svc = TokenService::start(Flavor::Codex);
    let root = temp_root("renew-fsize-");
    let dir = subdir(root.path(), "codex");
    let issued = svc.login(in_secs(600));
    write_codex_login(&dir, &issued, ago(3600));
    let outside = root.path().join("outside.json");
    fs::write(&outside, "{}").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join(".moonauth-pending-refresh.json")).unwrap();

    let (out, v) = renew_json(&svc, &["codex", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{}", out.text());
    assert_eq!(status_of(&v), "pending-write", "{v}");
    assert!(
        v["logins"][0]["detail"].as_str().unwrap().contains("symbolic link"),
        "{v}"
    );
    assert_eq!(svc.token_requests(), 0);
    assert_eq!(fs::read_to_string(&outside).unwrap(), "{}");
}

/// A root-owned file outside the login directory that a worker points a link at.
fn victim(root: &Path, name: &str) -> std::path::PathBuf {
    let path = root.join(name);
    fs::write(&path, "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    path
}

fn assert_untouched(victim: &Path) {
    let meta = fs::symlink_metadata(victim).unwrap();
    assert_eq!(
        fs::read_to_string(victim).unwrap(),
        "root:x:0:0:root:/root:/bin/bash\n",
        "{} was written through a link",
        victim.display()
    );
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "{} was chowned", victim.display());
    assert_eq!(meta.mode() & 0o7777, 0o644, "{} was chmodded", victim.display());
}

/// The worker owns its login directory; moonauth, run as root, must never follow a link
/// the worker planted where a lock or state file goes, nor hand its target to the worker.
fn planted_links_are_refused(flavor: Flavor, runtime: &str, write: &dyn Fn(&Path, &Issued), locks: &[&str]) {
    if !nix::unistd::geteuid().is_root() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI runs as root; this test must run there");
        }
        eprintln!("skipping: needs root (moonauth as root next to a worker's files)");
        return;
    }
    let svc = TokenService::start(flavor);
    let root = temp_root("renew-links-");
    let dir = subdir(root.path(), runtime);
    write(&dir, &svc.login(ago(60)));
    for entry in fs::read_dir(&dir).unwrap().flatten() {
        std::os::unix::fs::lchown(entry.path(), Some(1000), Some(1000)).unwrap();
    }
    std::os::unix::fs::chown(&dir, Some(1000), Some(1000)).unwrap();
    let victims: Vec<_> = locks
        .iter()
        .map(|l| (l, victim(root.path(), &format!("victim{l}"))))
        .collect();
    for (lock, target) in &victims {
        std::os::unix::fs::symlink(target, dir.join(lock)).unwrap();
    }
    let out = renew(&svc, &[runtime, "--dir", dir.to_str().unwrap()], &[]);
    assert_ne!(out.code, Some(101), "no panic: {}", out.text());
    assert!(
        out.text().contains("symbolic link"),
        "the refusal says why: {}",
        out.text()
    );
    assert_eq!(svc.refreshes(), 0, "refused before the refresh token was spent");
    for (lock, target) in &victims {
        assert_untouched(target);
        assert!(fs::symlink_metadata(dir.join(lock)).unwrap().file_type().is_symlink());
    }
}

#[test]
fn renew_as_root_refuses_a_planted_lease_link() {
    planted_links_are_refused(
        Flavor::Claude,
        "claude",
        &write_claude_login,
        &[".moonauth-refresh.lock"],
    );
    planted_links_are_refused(
        Flavor::Codex,
        "codex",
        &|d, i| write_codex_login(d, i, ago(3600)),
        &[".moonauth-refresh.lock"],
    );
}

#[test]
fn renew_as_root_refuses_planted_codex_commit_lock_links() {
    for lock in ["auth.lock", "auth.json.lock"] {
        planted_links_are_refused(
            Flavor::Codex,
            "codex",
            &|d, i| write_codex_login(d, i, ago(3600)),
            &[lock],
        );
    }
}

#[test]
fn a_killed_renews_claude_lock_is_cleared_by_the_next_moonauth_even_on_the_fast_path() {
    let svc = TokenService::start(Flavor::Claude);
    let root = temp_root("renew-dead-");
    let dir = subdir(root.path(), "claude");
    write_claude_login(&dir, &svc.login(in_secs(6 * 3600)));
    // What `kill -9` of a renew holding Claude's refresh lock leaves: the lock directory,
    // and the lease record naming it as that (now dead) holder's.
    let lock = dir.join(".oauth_refresh.lock");
    fs::create_dir(&lock).unwrap();
    let meta = fs::metadata(&lock).unwrap();
    let born = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let record = serde_json::json!({"pid": 999_999, "host": "gone", "claude_locks": [[meta.dev(), meta.ino(), born]]});
    fs::write(dir.join(".moonauth-refresh.lock"), format!("{record}\n")).unwrap();

    let out = renew(&svc, &["claude", "--dir", dir.to_str().unwrap()], &[]);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert!(out.stdout.contains("fresh"), "{}", out.stdout);
    assert!(!lock.exists(), "the dead holder's lock was removed");
    assert_eq!(svc.token_requests(), 0);
}

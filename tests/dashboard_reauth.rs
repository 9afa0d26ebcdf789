//! Re-auth from the dashboard against the real Docker engine and the test image's
//! stand-in CLIs: Claude's paste-the-code flow (the sign-in URL relayed, the code sent
//! back through the API) and Codex's device-code flow (the device page and code
//! relayed); a refused code ends in `error` with the old login untouched; a good one
//! puts the new login in the account's volume and clears its re-login mark. No token
//! ever reaches an answer or the dashboard's output.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::docker::{docker_ready, in_container, Volumes, IMAGE};
use crate::support::dashboard::Dashboard;
use crate::support::sandbox::*;

/// Polls the account's re-auth until `done` says so (bounded), checking every answer
/// for tokens.
fn wait(d: &Dashboard, alias: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let r = d.call("GET", &format!("/api/accounts/{alias}/reauth"), None);
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            !r.body.to_lowercase().contains("canary"),
            "a token reached an answer: {}",
            r.body
        );
        let v = r.json();
        if done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "re-auth of {alias}: {what} not within 120s; last: {v}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn code_for(d: &Dashboard, alias: &str, code: &str) {
    let r = d.call(
        "POST",
        &format!("/api/accounts/{alias}/reauth/code"),
        Some(&serde_json::json!({ "code": code }).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn docker_dashboard_reauth_relays_the_clis_own_logins() {
    if !docker_ready() {
        return;
    }
    let sb = Sandbox::new();
    let state = sb.empty_dir("state");
    let st = state.to_str().unwrap();
    let pid = std::process::id();
    let (claude, codex) = (format!("dc{pid}"), format!("dx{pid}"));
    let (claude_vol, codex_vol) = (format!("claude_auth_{claude}"), format!("codex_auth_{codex}"));
    let _cleanup = Volumes(vec![claude_vol.clone(), codex_vol.clone()]);
    for (alias, runtime, dir, volume) in [
        (&claude, "claude", "/home/app/.claude", &claude_vol),
        (&codex, "codex", "/home/app/.codex", &codex_vol),
    ] {
        let out = sb
            .moonauth()
            .env("MOONAUTH_STATE_DIR", st)
            .args([
                "accounts",
                "add",
                alias,
                "--runtime",
                runtime,
                "--dir",
                dir,
                "--volume",
                volume,
            ])
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let store = moonauth::state::store::Store::open(&state).unwrap();
    store
        .update(Duration::from_secs(5), |s| {
            s.record_auth_failure(&claude, "revoked", std::time::SystemTime::now())
        })
        .unwrap()
        .unwrap();
    let relogin = || store.read_unlocked().unwrap().account(&claude).unwrap().needs_relogin;
    assert!(relogin());

    let home = sb.home().display().to_string();
    let static_bin = crate::support::static_moonauth().display().to_string();
    let mut vars = vec![
        ("MOONAUTH_STATE_DIR", st),
        ("HOME", home.as_str()),
        ("MOONAUTH_IMAGE", IMAGE),
        ("MOONAUTH_STATIC_BIN", static_bin.as_str()),
    ];
    let docker_host = std::env::var("DOCKER_HOST").unwrap_or_default();
    if !docker_host.is_empty() {
        vars.push(("DOCKER_HOST", docker_host.as_str()));
    }
    let d = Dashboard::start(&vars);

    // Claude: the sign-in URL, then a code pasted back.
    let r = d.call("POST", &format!("/api/accounts/{claude}/reauth"), None);
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["state"], "in-progress");
    let again = d.call("POST", &format!("/api/accounts/{claude}/reauth"), None);
    assert_eq!(again.status, 409, "one re-auth per account at a time: {}", again.body);
    let waiting = wait(&d, &claude, "the prompt for a code", |v| v["awaiting_code"] == true);
    assert_eq!(waiting["state"], "in-progress");
    assert_eq!(
        waiting["url"],
        "https://claude.ai/oauth/authorize?code=true&client_id=standin&state=standin"
    );
    assert!(relogin(), "the old state stays until the new login is verified");
    code_for(&d, &claude, "good");
    let done = wait(&d, &claude, "the end", |v| v["state"] != "in-progress");
    assert_eq!(done["state"], "success", "{done}");
    assert!(done["message"].as_str().unwrap().contains(&claude_vol), "{done}");
    assert!(!relogin(), "a good re-auth clears the re-login mark");
    let listing = in_container(&claude_vol, "/v", "stat -c '%n %u %a' /v/.credentials.json");
    assert!(listing.contains("/v/.credentials.json 1000 600"), "{listing}");

    // Codex: the device page and code; a refused sign-in leaves nothing behind.
    let r = d.call("POST", &format!("/api/accounts/{codex}/reauth"), None);
    assert_eq!(r.status, 202, "{}", r.body);
    let shown = wait(&d, &codex, "the device code", |v| !v["device_code"].is_null());
    assert_eq!(shown["device_code"], "STND-1234");
    assert_eq!(shown["url"], "https://auth.openai.com/codex/device");
    assert_eq!(
        shown["awaiting_code"], false,
        "a device login waits for the browser, not a code"
    );
    // The stand-in reads the outcome of the sign-in from its terminal.
    code_for(&d, &codex, "denied");
    let failed = wait(&d, &codex, "the end", |v| v["state"] != "in-progress");
    assert_eq!(failed["state"], "error", "{failed}");
    assert!(failed["message"].as_str().unwrap().contains("is unchanged"), "{failed}");
    let listing = in_container(&codex_vol, "/v", "ls -A /v");
    assert!(!listing.contains("auth.json"), "{listing}");
    assert!(!listing.contains(".moonauth-staging"), "{listing}");
    let r = d.call("POST", &format!("/api/accounts/{codex}/reauth"), None);
    assert_eq!(r.status, 202, "a failed re-auth can be tried again: {}", r.body);
    wait(&d, &codex, "the device code", |v| !v["device_code"].is_null());
    code_for(&d, &codex, "good");
    let done = wait(&d, &codex, "the end", |v| v["state"] != "in-progress");
    assert_eq!(done["state"], "success", "{done}");
    let listing = in_container(&codex_vol, "/v", "stat -c '%n %u %a' /v/auth.json");
    assert!(listing.contains("/v/auth.json 1000 600"), "{listing}");

    let logs = d.stop();
    assert!(!logs.to_lowercase().contains("canary"), "{logs}");
}

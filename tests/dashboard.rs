//! `moonauth dashboard` through real HTTP on 127.0.0.1 (and ::1): the loopback-only
//! bind, the Host check (DNS rebinding), the token, the Origin check (CSRF), the typed
//! errors, the same report as `accounts ls --json`, and concurrent toggles of one account.

use std::sync::Arc;

use crate::support::dashboard::Dashboard;
use crate::support::sandbox::*;

/// A sandbox with a store holding `work` (a usable Claude login), `spare` (Codex) and
/// `key` (an API key).
fn store_with_accounts() -> (Sandbox, String) {
    let sb = Sandbox::new();
    let state = sb.empty_dir("state").display().to_string();
    let work = sb.login("claude", "valid-max");
    let spare = sb.login("codex", "chatgpt-valid");
    for args in [
        vec![
            "accounts",
            "add",
            "work",
            "--runtime",
            "claude",
            "--dir",
            work.to_str().unwrap(),
        ],
        vec![
            "accounts",
            "add",
            "spare",
            "--runtime",
            "codex",
            "--dir",
            spare.to_str().unwrap(),
        ],
        vec![
            "accounts",
            "add",
            "key",
            "--runtime",
            "claude",
            "--api-key-env",
            "MT_KEY",
            "--allow-unset",
        ],
    ] {
        let out = sb
            .moonauth()
            .env("MOONAUTH_STATE_DIR", &state)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    (sb, state)
}

fn vars(sb: &Sandbox, state: &str) -> Vec<(String, String)> {
    vec![
        ("MOONAUTH_STATE_DIR".into(), state.into()),
        ("HOME".into(), sb.home().display().to_string()),
    ]
}

fn start(sb: &Sandbox, state: &str) -> Dashboard {
    let v = vars(sb, state);
    let refs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Dashboard::start(&refs)
}

fn enabled_in_store(sb: &Sandbox, state: &str, alias: &str) -> bool {
    let out = sb
        .moonauth()
        .env("MOONAUTH_STATE_DIR", state)
        .args(["accounts", "ls", "--json"])
        .output()
        .unwrap();
    let v = json(&out);
    v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alias"] == alias)
        .unwrap_or_else(|| panic!("no {alias}: {v}"))["enabled"]
        .as_bool()
        .unwrap()
}

#[test]
fn dashboard_refuses_any_bind_but_loopback_with_exit_2() {
    let sb = Sandbox::new();
    let state = sb.empty_dir("state");
    for bind in ["0.0.0.0", "::", "192.168.1.10", "localhost", "127.0.0.2"] {
        let out = sb
            .moonauth()
            .env("MOONAUTH_STATE_DIR", &state)
            .args(["dashboard", "--port", "0", "--bind", bind])
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "--bind {bind}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("--bind") && stderr(&out).contains("loopback only: 127.0.0.1 or ::1"),
            "{}",
            stderr(&out)
        );
        assert!(stdout(&out).is_empty(), "no URL for a refused bind: {}", stdout(&out));
    }
}

#[test]
fn dashboard_prints_its_url_with_a_token_and_serves_the_page_without_it() {
    let (sb, state) = store_with_accounts();
    let d = start(&sb, &state);
    assert!(d.url.starts_with("http://127.0.0.1:"), "{}", d.url);
    assert_eq!(d.token.len(), 64, "{}", d.url);
    assert_ne!(d.addr.port(), 0);
    let page = d.raw("GET", "/", &[("Host", &d.host())], None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<script src=\"/app.js\""), "{}", page.body);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    let script = d.raw("GET", "/app.js", &[("Host", &d.host())], None);
    assert_eq!(script.status, 200);
    assert!(
        script.body.contains("Authorization"),
        "the page sends the token as a header"
    );
    // Another start, another token.
    let other = start(&sb, &state);
    assert_ne!(other.token, d.token);
    // The token never reaches the logs.
    let token = d.token.clone();
    let logs = d.stop();
    assert!(!logs.contains(&token), "{logs}");
}

#[test]
fn dashboard_listens_on_ipv6_loopback_when_asked() {
    let (sb, state) = store_with_accounts();
    let v = vars(&sb, &state);
    let refs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let d = Dashboard::start_with(&refs, &["--bind", "::1"]);
    assert!(d.url.starts_with("http://[::1]:"), "{}", d.url);
    let reply = d.call("GET", "/api/accounts", None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    // The IPv4 spelling is another host.
    let auth = format!("Bearer {}", d.token);
    let other = d.raw(
        "GET",
        "/api/accounts",
        &[
            ("Host", &format!("127.0.0.1:{}", d.addr.port())),
            ("Authorization", &auth),
        ],
        None,
    );
    assert_eq!(other.status, 403);
}

#[test]
fn dashboard_refuses_a_foreign_host_a_missing_token_and_a_foreign_origin() {
    let (sb, state) = store_with_accounts();
    let d = start(&sb, &state);
    let auth = format!("Bearer {}", d.token);
    let port = d.addr.port();
    let body = Some(r#"{"enabled":false}"#);

    // DNS rebinding: a page on evil.example resolved to 127.0.0.1 sends its own Host.
    let rebound = format!("evil.example:{port}");
    for host in [rebound.as_str(), "127.0.0.1", "127.0.0.1:1"] {
        let r = d.raw(
            "GET",
            "/api/accounts",
            &[("Host", host), ("Authorization", &auth)],
            None,
        );
        assert_eq!(r.status, 403, "Host {host}: {}", r.body);
        assert_eq!(r.json()["code"], "foreign-host");
        let r = d.raw("GET", "/", &[("Host", host)], None);
        assert_eq!(r.status, 403, "the page too, Host {host}");
    }
    // localhost with the port is the same machine.
    let r = d.raw(
        "GET",
        "/api/accounts",
        &[("Host", &format!("localhost:{port}")), ("Authorization", &auth)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // No token, a wrong one, a token in the query instead of the header.
    let wrong = format!("Bearer {}", "0".repeat(64));
    for headers in [
        vec![("Host", d.host())],
        vec![("Host", d.host()), ("Authorization", wrong.clone())],
        vec![("Host", d.host()), ("Authorization", d.token.clone())],
    ] {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = d.raw("PUT", "/api/accounts/work/enabled", &h, body);
        assert_eq!(r.status, 401, "{headers:?}: {}", r.body);
        let j = r.json();
        assert_eq!(j["code"], "missing-token");
        assert!(j["message"].as_str().unwrap().contains("Authorization: Bearer"), "{j}");
    }
    let r = d.raw(
        "GET",
        &format!("/api/accounts?token={}", d.token),
        &[("Host", &d.host())],
        None,
    );
    assert_eq!(r.status, 401, "the token is a header, not a query parameter");

    // CSRF: the right token cannot come from another site's page.
    let r = d.raw(
        "PUT",
        "/api/accounts/work/enabled",
        &[
            ("Host", &d.host()),
            ("Authorization", &auth),
            ("Origin", "http://evil.example"),
        ],
        body,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["code"], "foreign-origin");
    assert!(
        enabled_in_store(&sb, &state, "work"),
        "no refused request changed the store"
    );

    // The dashboard's own origin may.
    let own = format!("http://{}", d.host());
    let r = d.raw(
        "PUT",
        "/api/accounts/work/enabled",
        &[("Host", &d.host()), ("Authorization", &auth), ("Origin", &own)],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!enabled_in_store(&sb, &state, "work"));
}

#[test]
fn dashboard_errors_are_typed_404_409_422() {
    let (sb, state) = store_with_accounts();
    let d = start(&sb, &state);
    let check = |r: &crate::support::dashboard::Reply, status: u16, code: &str| {
        assert_eq!(r.status, status, "{}", r.body);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let j = r.json();
        assert_eq!(j["code"], code, "{j}");
        assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()), "{j}");
        assert!(j["details"].is_object(), "{j}");
        j
    };
    let j = check(
        &d.call("PUT", "/api/accounts/nobody/enabled", Some(r#"{"enabled":true}"#)),
        404,
        "unknown-account",
    );
    assert_eq!(j["details"]["alias"], "nobody");
    check(
        &d.call("GET", "/api/accounts/nobody/reauth", None),
        404,
        "unknown-account",
    );
    check(
        &d.call("POST", "/api/accounts/nobody/reauth", None),
        404,
        "unknown-account",
    );
    check(&d.call("GET", "/api/no-such-route", None), 404, "not-found");

    for bad in [r#"{"enabled":"yes"}"#, r#"{"enable":true}"#, "not json", ""] {
        let j = check(
            &d.call("PUT", "/api/accounts/work/enabled", Some(bad)),
            422,
            "validation",
        );
        assert_eq!(j["details"]["field"], "body");
        assert!(j["details"]["rule"].as_str().unwrap().contains("\"enabled\""), "{j}");
        // A refused value is never echoed (it might be a pasted secret).
        assert!(!j.to_string().contains("yes"), "{j}");
    }
    // An API-key account has no login to renew.
    let j = check(&d.call("POST", "/api/accounts/key/reauth", None), 422, "validation");
    assert_eq!(j["details"]["field"], "alias");
    // No re-auth runs, so none waits for a code.
    check(
        &d.call("POST", "/api/accounts/work/reauth/code", Some(r#"{"code":"abc"}"#)),
        409,
        "conflict",
    );
    let idle = d.call("GET", "/api/accounts/work/reauth", None);
    assert_eq!(idle.status, 200);
    assert_eq!(idle.json()["state"], "idle");

    // A change against a revision the store has moved past.
    let r = d.call("GET", "/api/accounts", None);
    let revision = r.json()["revision"].as_u64().unwrap();
    let stale = format!(r#"{{"enabled":false,"revision":{}}}"#, revision + 7);
    let j = check(
        &d.call("PUT", "/api/accounts/work/enabled", Some(&stale)),
        409,
        "conflict",
    );
    assert_eq!(j["details"]["revision"], revision);
    assert!(enabled_in_store(&sb, &state, "work"));
    let current = format!(r#"{{"enabled":false,"revision":{revision}}}"#);
    let r = d.call("PUT", "/api/accounts/work/enabled", Some(&current));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("x-moonauth-revision"),
        Some((revision + 1).to_string().as_str())
    );
    assert!(!enabled_in_store(&sb, &state, "work"));
}

#[test]
fn dashboard_accounts_is_the_report_accounts_ls_json_prints() {
    let (sb, state) = store_with_accounts();
    let d = start(&sb, &state);
    let api = d.call("GET", "/api/accounts", None);
    assert_eq!(api.status, 200);
    let cli = sb
        .moonauth()
        .env("MOONAUTH_STATE_DIR", &state)
        .args(["accounts", "ls", "--json"])
        .output()
        .unwrap();
    let mut from_api = api.json();
    let mut from_cli = json(&cli);
    // Times relative to now (cooldowns, expiry) are the same here: nothing is cooling down.
    for v in [&mut from_api, &mut from_cli] {
        v.as_object_mut().unwrap().remove("exit_code");
        v.as_object_mut().unwrap().remove("ok");
    }
    assert_eq!(from_api, from_cli);
    assert_eq!(from_api["schema"], "moonauth.accounts.v1");
    // A change answers with the report `accounts disable --json` prints.
    let r = d.call("PUT", "/api/accounts/spare/enabled", Some(r#"{"enabled":false}"#));
    let j = r.json();
    assert_eq!(j["schema"], "moonauth.accounts-change.v1");
    assert_eq!(j["action"], "disabled");
    assert_eq!(j["account"]["alias"], "spare");
    assert_eq!(j["account"]["status"], "disabled");
}

#[test]
fn dashboard_concurrent_toggles_of_one_account_end_in_a_defined_state() {
    let (sb, state) = store_with_accounts();
    let d = Arc::new(start(&sb, &state));
    let before = d.call("GET", "/api/accounts", None).json();
    let revision = before["revision"].as_u64().unwrap();
    let untouched = |v: &serde_json::Value| {
        v["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["alias"] != "work")
            .cloned()
            .collect::<Vec<_>>()
    };
    const N: usize = 16;
    let threads: Vec<_> = (0..N)
        .map(|i| {
            let d = Arc::clone(&d);
            std::thread::spawn(move || {
                let want = i % 2 == 0;
                let r = d.call(
                    "PUT",
                    "/api/accounts/work/enabled",
                    Some(&format!(r#"{{"enabled":{want}}}"#)),
                );
                assert_eq!(r.status, 200, "{}", r.body);
                let written: u64 = r.header("x-moonauth-revision").unwrap().parse().unwrap();
                assert_eq!(r.json()["account"]["enabled"], want, "each answer says what it wrote");
                (written, want)
            })
        })
        .collect();
    let mut answers: Vec<(u64, bool)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    answers.sort();
    // Every request was one locked write: no write lost, none merged.
    let revisions: Vec<u64> = answers.iter().map(|(r, _)| *r).collect();
    assert_eq!(revisions, ((revision + 1)..=(revision + N as u64)).collect::<Vec<_>>());
    // The store holds what the last write wrote, and nothing else changed.
    let after = d.call("GET", "/api/accounts", None).json();
    assert_eq!(after["revision"], revision + N as u64);
    let last = answers.last().unwrap().1;
    assert_eq!(enabled_in_store(&sb, &state, "work"), last);
    assert_eq!(untouched(&after), untouched(&before));
}

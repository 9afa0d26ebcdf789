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
fn dashboard_accounts_are_the_views_accounts_pick_peek_json_prints() {
    let (sb, state) = store_with_accounts();
    let d = start(&sb, &state);
    let api = d.call("GET", "/api/accounts", None);
    assert_eq!(api.status, 200);
    let fleet = api.json();
    assert_eq!(fleet["schema"], "moonauth.fleet.v1");
    assert_eq!(fleet["strategy"]["source"], "default");
    // Every account, in store order, each as `accounts pick RUNTIME --peek --json` shows it.
    let aliases: Vec<&str> = fleet["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["alias"].as_str().unwrap())
        .collect();
    assert_eq!(aliases, ["work", "spare", "key"]);
    for runtime in ["claude", "codex"] {
        let out = sb
            .moonauth()
            .env("MOONAUTH_STATE_DIR", &state)
            .args(["accounts", "pick", runtime, "--peek", "--json"])
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        for view in json(&out)["accounts"].as_array().unwrap() {
            let alias = view["alias"].as_str().unwrap();
            let from_api = fleet["accounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["alias"] == alias)
                .unwrap();
            assert_eq!(from_api, view, "{alias}");
        }
    }
    let work = &fleet["accounts"][0];
    assert_eq!(work["eligible"], true);
    assert!(work["why"].as_str().unwrap().contains("round-robin"), "{work}");
    assert_eq!(work["usage_windows"]["freshness"], "unknown");
    // A change answers with the report `accounts disable --json` prints.
    let r = d.call("PUT", "/api/accounts/spare/enabled", Some(r#"{"enabled":false}"#));
    let j = r.json();
    assert_eq!(j["schema"], "moonauth.accounts-change.v1");
    assert_eq!(j["action"], "disabled");
    assert_eq!(j["account"]["alias"], "spare");
    assert_eq!(j["account"]["status"], "disabled");
    let spare = d.call("GET", "/api/accounts", None).json()["accounts"][1].clone();
    assert_eq!(spare["eligible"], false);
    assert!(spare["why"].as_str().unwrap().contains("disabled"), "{spare}");
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
            .map(|a| {
                // The records; what rotation says of them follows `work` (eligible or not).
                let mut a = a.clone();
                for derived in ["why", "eligible", "tier", "forced"] {
                    a.as_object_mut().unwrap().remove(derived);
                }
                a
            })
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

const NOW: &str = "2026-11-26T12:00:00Z";

/// The store of [`store_with_accounts`] plus `other` (a second Claude login), and a
/// dashboard on the pinned clock [`NOW`].
fn pinned() -> (Sandbox, String, Dashboard) {
    let (sb, state) = store_with_accounts();
    let other = sb.login_named("other-login", "claude", "valid-max");
    let out = sb
        .moonauth()
        .env("MOONAUTH_STATE_DIR", &state)
        .args([
            "accounts",
            "add",
            "other",
            "--runtime",
            "claude",
            "--dir",
            other.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut v = vars(&sb, &state);
    v.push(("MOONAUTH_NOW".into(), NOW.into()));
    let refs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let d = Dashboard::start(&refs);
    (sb, state, d)
}

fn cli(sb: &Sandbox, state: &str, args: &[&str]) -> std::process::Output {
    sb.moonauth()
        .env("MOONAUTH_STATE_DIR", state)
        .env("MOONAUTH_NOW", NOW)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn dashboard_force_is_the_force_accounts_pick_obeys() {
    let (sb, state, d) = pinned();
    // Round-robin alone takes turns between work and other.
    let r = d.call("POST", "/api/force", Some(r#"{"alias":"other","for":"2h"}"#));
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["schema"], "moonauth.accounts-force.v1");
    assert_eq!(j["action"], "forced");
    assert_eq!(j["force"]["alias"], "other");
    assert_eq!(j["force"]["forced_by"], "dashboard");
    assert_eq!(j["force"]["seconds_left"], 7200);
    assert_eq!(j["force"]["until"], "2026-11-26T14:00:00Z");
    for _ in 0..3 {
        let out = cli(&sb, &state, &["accounts", "pick", "claude", "--json"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(json(&out)["picked"]["alias"], "other", "{}", stdout(&out));
    }
    // Forcing it again does not extend the time.
    let again = d
        .call("POST", "/api/force", Some(r#"{"alias":"other","for":"9h"}"#))
        .json();
    assert_eq!(again["action"], "already-forced");
    assert_eq!(again["force"]["until"], "2026-11-26T14:00:00Z");
    // The fleet shows it.
    let fleet = d.call("GET", "/api/accounts", None).json();
    assert_eq!(fleet["force"]["alias"], "other");
    let forced: Vec<&str> = fleet["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["forced"] == true)
        .map(|a| a["alias"].as_str().unwrap())
        .collect();
    assert_eq!(forced, ["other"]);

    // Errors: unknown alias, an account that cannot be chosen, a bad duration or body.
    let r = d.call("POST", "/api/force", Some(r#"{"alias":"nobody"}"#));
    assert_eq!((r.status, r.json()["code"].clone()), (404, "unknown-account".into()));
    d.call("PUT", "/api/accounts/spare/enabled", Some(r#"{"enabled":false}"#));
    let r = d.call("POST", "/api/force", Some(r#"{"alias":"spare"}"#));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.json()["details"]["why"].as_str().unwrap().contains("disabled"),
        "{}",
        r.body
    );
    for bad in [r#"{"alias":"work","for":"soon"}"#, r#"{"alias":"work","for":"0s"}"#] {
        let r = d.call("POST", "/api/force", Some(bad));
        assert_eq!(r.status, 422, "{}", r.body);
        assert_eq!(r.json()["details"]["field"], "for");
    }
    let r = d.call("POST", "/api/force", Some(r#"{"who":"work"}"#));
    assert_eq!(r.status, 422);
    assert_eq!(d.call("GET", "/api/accounts", None).json()["force"]["alias"], "other");

    // Disabling the forced account ends force mode at once.
    d.call("PUT", "/api/accounts/other/enabled", Some(r#"{"enabled":false}"#));
    assert!(d.call("GET", "/api/accounts", None).json()["force"].is_null());
    d.call("PUT", "/api/accounts/other/enabled", Some(r#"{"enabled":true}"#));

    // Clear.
    let r = d.call("POST", "/api/force", Some(r#"{"alias":"work"}"#)).json();
    assert_eq!(
        r["force"]["seconds_left"],
        24 * 3600,
        "24h by default, as `accounts force`"
    );
    let cleared = d.call("POST", "/api/force/clear", None).json();
    assert_eq!(cleared["action"], "cleared");
    assert!(cleared["force"].is_null());
    assert_eq!(d.call("POST", "/api/force/clear", None).json()["action"], "not-forced");
    let out = cli(&sb, &state, &["accounts", "ls", "--json"]);
    assert_eq!(code(&out), 0);
}

#[test]
fn dashboard_settings_are_the_settings_of_the_cli_and_refuse_invalid_values_whole() {
    let (sb, state, d) = pinned();
    let got = d.call("GET", "/api/settings", None);
    assert_eq!(got.status, 200);
    let got = got.json();
    assert_eq!(got["schema"], "moonauth.settings.v1");
    let from_cli = json(&cli(&sb, &state, &["settings", "get", "--json"]));
    assert_eq!(got, from_cli);

    let r = d.call(
        "PUT",
        "/api/settings",
        Some(r#"{"strategy":"priority","threshold.low":40,"weight.work":"0.5"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let set = r.json();
    let setting = |v: &serde_json::Value, key: &str| {
        v["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("no {key}: {v}"))
            .clone()
    };
    assert_eq!(setting(&set, "strategy")["value"], "priority");
    assert_eq!(setting(&set, "strategy")["source"], "store");
    assert_eq!(setting(&set, "threshold.low")["value"], 40);
    assert_eq!(setting(&set, "weight.work")["value"], 0.5);
    assert_eq!(
        json(&cli(&sb, &state, &["settings", "get", "--json"])),
        d.call("GET", "/api/settings", None).json()
    );

    // One bad value refuses the whole request: nothing is written.
    let before = d.call("GET", "/api/settings", None).json();
    for (body, field) in [
        (
            r#"{"strategy":"round-robin","threshold.critical":50}"#,
            "threshold.critical",
        ),
        (r#"{"strategy":"fastest"}"#, "strategy"),
        (r#"{"preset":"reckless"}"#, "preset"),
        (r#"{"threshold.low":101}"#, "threshold.low"),
        (r#"{"weight.work":0}"#, "weight.work"),
        (r#"{"colour":"blue"}"#, "key"),
        (r#"{"strategy":["priority"]}"#, "strategy"),
    ] {
        let r = d.call("PUT", "/api/settings", Some(body));
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        let j = r.json();
        assert_eq!(j["code"], "validation");
        assert_eq!(j["details"]["field"], field, "{body}: {j}");
        assert!(j["details"]["rule"].as_str().is_some_and(|r| !r.is_empty()), "{j}");
    }
    let r = d.call("PUT", "/api/settings", Some(r#"{"weight.nobody":0.5}"#));
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(d.call("GET", "/api/settings", None).json(), before);

    let reset = d.call("POST", "/api/settings/reset", None).json();
    assert_eq!(reset["action"], "reset");
    assert_eq!(setting(&reset, "strategy")["source"], "default");
    assert_eq!(setting(&reset, "strategy")["value"], "round-robin");
}

#[test]
fn dashboard_decisions_are_the_decision_log() {
    let (sb, state, d) = pinned();
    let empty = d.call("GET", "/api/decisions", None);
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert_eq!(empty.json()["schema"], "moonauth.accounts-log.v1");
    assert_eq!(empty.json()["decisions"], serde_json::json!([]));
    for _ in 0..3 {
        assert_eq!(code(&cli(&sb, &state, &["accounts", "pick", "claude"])), 0);
    }
    // Peeks (the dashboard's view included) are not decisions.
    assert_eq!(code(&cli(&sb, &state, &["accounts", "pick", "claude", "--peek"])), 0);
    d.call("GET", "/api/accounts", None);
    let log = d.call("GET", "/api/decisions", None).json();
    let decisions = log["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 3, "{log}");
    assert_eq!(decisions[0]["by"], "accounts pick");
    assert_eq!(log, json(&cli(&sb, &state, &["accounts", "log", "--json"])));
    let last = d.call("GET", "/api/decisions?limit=1", None).json();
    assert_eq!(last["decisions"].as_array().unwrap().len(), 1);
    assert_eq!(last["decisions"][0], decisions[2]);
    for bad in ["0", "1001", "many"] {
        let r = d.call("GET", &format!("/api/decisions?limit={bad}"), None);
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
        assert_eq!(r.json()["details"]["field"], "limit");
    }
}

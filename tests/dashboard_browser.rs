//! The dashboard's page in a real headless Chromium (WebDriver): it loads the accounts,
//! its Enabled switch changes the store (once, however fast it is clicked), force mode
//! set on the page is what `moonauth accounts pick` obeys, and an invalid setting is
//! refused with the error shown at its field. A screenshot of each state is saved under
//! target/dashboard-screenshots/ and its path printed.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::support::dashboard::Dashboard;
use crate::support::sandbox::*;
use crate::support::webdriver::{browser, Browser};

const WAIT: Duration = Duration::from_secs(20);

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("dashboard-screenshots")
}

/// Usage windows as a run would have captured them: a few snapshots over the last hour.
fn seed_usage(state: &std::path::Path) {
    use moonauth::state::usage::{Capture, History, Snapshot, Window};
    let store = moonauth::state::store::Store::open(state).unwrap();
    let now = SystemTime::now();
    let min = Duration::from_secs(60);
    store
        .update(Duration::from_secs(5), |s| {
            for (alias, names, start) in [
                ("work", ["five_hour", "seven_day"], 20.0),
                ("spare", ["primary", "secondary"], 45.0),
            ] {
                let mut h = History::default();
                for i in 0..6u32 {
                    let at = now - min * (62 - 10 * i);
                    h.record(Snapshot {
                        source: Capture {
                            run_id: format!("run-{alias}-{i}"),
                            at,
                            outcome: "success".into(),
                        },
                        windows: names
                            .iter()
                            .enumerate()
                            .map(|(k, n)| Window {
                                name: n.to_string(),
                                used_percent: start + f64::from(i) * 5.0 + k as f64 * 20.0,
                                resets_at: Some(now + min * 120),
                                window_minutes: None,
                                status: None,
                            })
                            .collect(),
                    });
                }
                s.usage_windows.insert(alias.to_string(), h);
            }
        })
        .unwrap();
}

#[test]
fn dashboard_page_in_a_real_browser_switches_forces_and_validates() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let sb = Sandbox::new();
    let state = sb.empty_dir("state");
    let st = state.to_str().unwrap();
    let add = |args: &[&str]| {
        let out = sb.moonauth().env("MOONAUTH_STATE_DIR", st).args(args).output().unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    };
    let work = sb.login("claude", "valid-max");
    let other = sb.login_named("other-login", "claude", "valid-max");
    let spare = sb.login("codex", "chatgpt-valid");
    add(&[
        "accounts",
        "add",
        "work",
        "--runtime",
        "claude",
        "--dir",
        work.to_str().unwrap(),
    ]);
    add(&[
        "accounts",
        "add",
        "other",
        "--runtime",
        "claude",
        "--dir",
        other.to_str().unwrap(),
    ]);
    add(&[
        "accounts",
        "add",
        "spare",
        "--runtime",
        "codex",
        "--dir",
        spare.to_str().unwrap(),
    ]);
    seed_usage(&state);
    let ls = || {
        let out = sb
            .moonauth()
            .env("MOONAUTH_STATE_DIR", st)
            .args(["accounts", "ls", "--json"])
            .output()
            .unwrap();
        json(&out)
    };
    let enabled = |alias: &str| {
        ls()["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["alias"] == alias)
            .unwrap()["enabled"]
            .as_bool()
            .unwrap()
    };

    let home = sb.home().display().to_string();
    let d = Dashboard::start(&[("MOONAUTH_STATE_DIR", st), ("HOME", &home)]);
    let b = Browser::start(&chromium, &chromedriver);
    let dir = screenshots();
    let mut saved = Vec::new();
    let mut shot = |name: &str| {
        let path = dir.join(format!("{name}.png"));
        b.screenshot(&path);
        saved.push(path);
    };

    // 1. Load: one card per account, the token gone from the address bar.
    b.goto(&d.url);
    b.wait_until(
        "the page loaded",
        "return document.body.dataset.loaded === 'true'",
        WAIT,
    );
    b.wait_for("article.card[data-alias=spare]", WAIT);
    let cards = b.eval(
        "return [...document.querySelectorAll('article.card')].map(c => c.dataset.alias)",
        json!([]),
    );
    assert_eq!(cards, json!(["work", "other", "spare"]));
    assert!(
        !b.url().contains("token="),
        "the token left the address bar: {}",
        b.url()
    );
    let bars = b.eval(
        "return document.querySelectorAll('article.card[data-alias=work] .bar').length",
        json!([]),
    );
    assert_eq!(bars, json!(2), "the work account's two windows");
    let charts = b.eval(
        "return document.querySelectorAll('svg.history polyline').length",
        json!([]),
    );
    assert_eq!(charts, json!(4), "a history chart per window");
    let fresh = b.find("article.card[data-alias=work] [data-freshness]").unwrap();
    assert_eq!(b.text(&fresh), "stale", "the newest snapshot is 12 minutes old");
    shot("01-loaded");

    // 2. Flip a switch (clicked twice at once: one change) and see the store change.
    let revision = ls()["revision"].as_u64().unwrap();
    let switch = b.find("button.switch[data-alias=other]").unwrap();
    assert_eq!(b.attribute(&switch, "data-state").as_deref(), Some("on"));
    b.eval(
        "const s = document.querySelector('button.switch[data-alias=other]'); s.click(); s.click();",
        json!([]),
    );
    b.wait_until(
        "the switch shows off",
        "return document.querySelector('button.switch[data-alias=other]').dataset.state === 'off'",
        WAIT,
    );
    assert!(!enabled("other"), "the switch changed the store");
    assert_eq!(
        ls()["revision"].as_u64().unwrap(),
        revision + 1,
        "a double click is one change"
    );
    assert!(enabled("work"), "only its own account");
    shot("02-switch-off");
    b.click(&switch);
    b.wait_until(
        "the switch shows on",
        "return document.querySelector('button.switch[data-alias=other]').dataset.state === 'on'",
        WAIT,
    );
    assert!(enabled("other"));

    // 3. Force `other` and see `accounts pick` choose it, every time.
    b.eval("document.getElementById('force-alias').value = 'other';", json!([]));
    b.click(&b.find("#force-button").unwrap());
    b.wait_until(
        "force mode shows",
        "const s = document.getElementById('force-status'); return s.dataset.state === 'on' && s.textContent.includes('other')",
        WAIT,
    );
    for _ in 0..3 {
        let out = sb
            .moonauth()
            .env("MOONAUTH_STATE_DIR", st)
            .args(["accounts", "pick", "claude", "--json"])
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(json(&out)["picked"]["alias"], "other");
    }
    let status = b.text(&b.find("#force-status").unwrap());
    assert!(status.contains("by dashboard") && status.contains("left"), "{status}");
    shot("03-forced");

    // 4. An invalid setting: refused by the server, the error shown at its field, nothing stored.
    b.wait_for("#setting-threshold-critical", WAIT);
    let critical = b.find("#setting-threshold-critical").unwrap();
    b.type_into(&critical, "50");
    b.click(&b.find("#settings-save").unwrap());
    b.wait_until(
        "the inline error",
        "return document.getElementById('error-threshold-critical').textContent.includes('threshold.critical')",
        WAIT,
    );
    assert_eq!(b.attribute(&critical, "aria-invalid").as_deref(), Some("true"));
    let error = b.text(&b.find("#error-threshold-critical").unwrap());
    assert!(error.contains("below threshold.low"), "{error}");
    let out = sb
        .moonauth()
        .env("MOONAUTH_STATE_DIR", st)
        .args(["settings", "get", "threshold.critical", "--json"])
        .output()
        .unwrap();
    assert_eq!(json(&out)["settings"][0]["source"], "default", "nothing was stored");
    shot("04-invalid-setting");

    // The decisions the picks made are on the page.
    b.wait_until(
        "the decision log",
        "return document.querySelectorAll('#decisions li[data-chosen=other]').length >= 3",
        WAIT,
    );
    shot("05-decisions");
    for path in &saved {
        println!("dashboard screenshot: {}", path.display());
        assert!(std::fs::metadata(path).unwrap().len() > 1000);
    }
}

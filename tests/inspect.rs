//! `moonauth inspect` through the binary, on temp copies of every fixture.

use std::fs;
use std::os::unix::fs::symlink;

use crate::support::sandbox::*;

fn inspect_json(sb: &Sandbox, runtime: &str, dir: &std::path::Path) -> (i32, serde_json::Value) {
    let out = sb
        .moonauth()
        .args(["inspect", runtime, "--json", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    (code(&out), json(&out))
}

#[test]
fn inspect_classifies_every_claude_fixture_and_exits_4_when_unusable() {
    let sb = Sandbox::new();
    for (case, class, usable) in CLAUDE_CASES {
        let dir = sb.login("claude", case);
        let (code, j) = inspect_json(&sb, "claude", &dir);
        assert_eq!(j["class"], class, "claude/{case}: {j:#}");
        assert_eq!(j["usable"], usable, "claude/{case}");
        assert_eq!(code, if usable { 0 } else { 4 }, "claude/{case}");
        assert_eq!(j["schema"], "moonauth.inspect.v1");
        assert_eq!(j["runtime"], "claude");
        assert_eq!(j["file"], dir.join(".credentials.json").display().to_string());
    }
}

#[test]
fn inspect_classifies_every_codex_fixture_and_exits_4_when_unusable() {
    let sb = Sandbox::new();
    for (case, class, usable) in CODEX_CASES {
        let dir = sb.login("codex", case);
        let (code, j) = inspect_json(&sb, "codex", &dir);
        assert_eq!(j["class"], class, "codex/{case}: {j:#}");
        assert_eq!(j["usable"], usable, "codex/{case}");
        assert_eq!(code, if usable { 0 } else { 4 }, "codex/{case}");
        assert_eq!(j["file"], dir.join("auth.json").display().to_string());
    }
}

#[test]
fn inspect_reports_claude_plan_expiry_and_refresh_token() {
    let sb = Sandbox::new();
    let (_, j) = inspect_json(&sb, "claude", &sb.login("claude", "valid-max"));
    assert_eq!(j["plan"], "max");
    assert_eq!(j["rate_limit_tier"], "default_claude_max_20x");
    assert_eq!(j["expires_at"], "2100-01-01T00:00:00Z");
    assert_eq!(j["refreshable"], true);
    assert_eq!(
        j["scopes"],
        serde_json::json!(["user:inference", "user:profile", "user:sessions:claude_code"])
    );

    let (_, j) = inspect_json(&sb, "claude", &sb.login("claude", "expired-no-refresh"));
    assert_eq!(j["plan"], "pro");
    assert_eq!(j["expires_at"], "2025-01-01T00:00:00Z");
    assert_eq!(j["refreshable"], false);
    let detail = j["detail"].as_str().unwrap();
    assert!(
        detail.contains("expired") && detail.contains("no refresh token"),
        "{detail}"
    );
}

#[test]
fn inspect_reports_codex_plan_account_email_expiry_and_last_refresh() {
    let sb = Sandbox::new();
    let (_, j) = inspect_json(&sb, "codex", &sb.login("codex", "chatgpt-valid"));
    assert_eq!(j["plan"], "pro");
    assert_eq!(j["email"], "dev@example.com");
    assert_eq!(j["account_id"], "acct-fixture-1");
    assert_eq!(j["expires_at"], "2100-01-01T00:00:00Z");
    assert_eq!(j["last_refresh"], "2026-11-20T10:00:00Z");
    assert_eq!(j["refreshable"], true);

    let (_, j) = inspect_json(&sb, "codex", &sb.login("codex", "chatgpt-expired-refreshable"));
    assert_eq!(j["plan"], "plus");
    assert_eq!(j["account_id"], "acct-fixture-2");
    assert_eq!(j["expires_at"], "2025-01-01T00:00:00Z");
    assert_eq!(j["last_refresh"], "2025-01-01T00:00:00Z");

    let (_, j) = inspect_json(&sb, "codex", &sb.login("codex", "api-key"));
    assert!(j.get("plan").is_none() && j.get("expires_at").is_none(), "{j:#}");
}

#[test]
fn inspect_human_output_shows_verdict_and_metadata() {
    let sb = Sandbox::new();
    let dir = sb.login("codex", "chatgpt-valid");
    let out = sb
        .moonauth()
        .args(["inspect", "codex", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    for want in [
        "verdict:    oauth-valid (usable)",
        "plan:       pro",
        "account:    dev@example.com",
        "account id: acct-fixture-1",
        "expires:    2100-01-01T00:00:00Z",
        "refreshed:  2026-11-20T10:00:00Z",
        "refresh:    refresh token present",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn inspect_reads_the_configured_login_directories_without_dir() {
    let sb = Sandbox::new();
    let codex = sb.login("codex", "chatgpt-valid");
    let claude = sb.login("claude", "valid-max");
    let other = sb.login("claude", "malformed");

    let out = sb
        .moonauth()
        .args(["inspect", "codex", "--json"])
        .env("CODEX_HOME", &codex)
        .output()
        .unwrap();
    assert_eq!(json(&out)["dir"], codex.display().to_string());
    assert_eq!(code(&out), 0);

    let out = sb
        .moonauth()
        .args(["inspect", "codex", "--json"])
        .env("CODEX_VOLUME_PATH", &codex)
        .output()
        .unwrap();
    assert_eq!(json(&out)["dir"], codex.display().to_string());

    // CLAUDE_CONFIG_DIR (what the CLI reads) wins over CLAUDE_HOME (MoonMind's name).
    let out = sb
        .moonauth()
        .args(["inspect", "claude", "--json"])
        .env("CLAUDE_HOME", &other)
        .env("CLAUDE_CONFIG_DIR", &claude)
        .output()
        .unwrap();
    assert_eq!(json(&out)["dir"], claude.display().to_string());
    assert_eq!(code(&out), 0);

    let out = sb
        .moonauth()
        .args(["inspect", "claude", "--json"])
        .env("CLAUDE_HOME", &other)
        .output()
        .unwrap();
    assert_eq!(json(&out)["dir"], other.display().to_string());
    assert_eq!(code(&out), 4);

    // Without any variable: the MoonMind default inside a worker.
    let out = sb.moonauth().args(["inspect", "claude", "--json"]).output().unwrap();
    assert_eq!(json(&out)["dir"], "/home/app/.claude");
}

#[test]
fn inspect_marks_a_login_expiring_within_the_lead() {
    let sb = Sandbox::new();
    let dir = sb.login("claude", "valid-max");
    // Five minutes before the fixture's expiry (2100-01-01T00:00:00Z).
    let near = "2099-12-31T23:55:00Z";
    let run = |extra: &[(&str, &str)], args: &[&str]| {
        let mut cmd = sb.moonauth();
        cmd.args(["inspect", "claude", "--json", "--dir"]).arg(&dir).args(args);
        cmd.env("MOONAUTH_NOW", near);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (code(&out), json(&out)["class"].as_str().unwrap().to_string())
    };
    assert_eq!(run(&[], &[]), (0, "oauth-expiring-soon".into()), "default lead is 10m");
    assert_eq!(run(&[("MOONAUTH_EXPIRY_LEAD", "1m")], &[]), (0, "oauth-valid".into()));
    assert_eq!(
        run(&[("MOONAUTH_EXPIRY_LEAD", "1m")], &["--lead", "1h"]),
        (0, "oauth-expiring-soon".into()),
        "--lead wins over MOONAUTH_EXPIRY_LEAD"
    );
}

#[test]
fn inspect_counts_an_api_key_in_the_environment_as_usable_and_names_it() {
    let sb = Sandbox::new();
    for (runtime, case, var) in [
        ("claude", "missing", "ANTHROPIC_API_KEY"),
        ("claude", "expired-no-refresh", "CLAUDE_CODE_OAUTH_TOKEN"),
        ("claude", "malformed", "ANTHROPIC_AUTH_TOKEN"),
        ("codex", "missing", "OPENAI_API_KEY"),
        ("codex", "malformed", "CODEX_API_KEY"),
    ] {
        let dir = sb.login_named(&format!("{runtime}-{case}-{var}"), runtime, case);
        let out = sb
            .moonauth()
            .args(["inspect", runtime, "--json", "--dir"])
            .arg(&dir)
            .env(var, "sk-test-CANARY-env-value")
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{runtime}/{case} with {var}: {}", stdout(&out));
        let j = json(&out);
        assert_eq!(j["usable"], true);
        assert_eq!(j["env_credentials"], serde_json::json!([var]));

        let out = sb
            .moonauth()
            .args(["inspect", runtime, "--dir"])
            .arg(&dir)
            .env(var, "sk-test-CANARY-env-value")
            .output()
            .unwrap();
        let text = stdout(&out);
        assert!(
            text.contains(&format!("usable through {var} in the environment")),
            "{text}"
        );
        assert!(!text.to_lowercase().contains("canary"), "{text}");
    }
    // A blank variable is not a credential.
    let dir = sb.login("codex", "missing");
    let out = sb
        .moonauth()
        .args(["inspect", "codex", "--json", "--dir"])
        .arg(&dir)
        .env("OPENAI_API_KEY", "  ")
        .output()
        .unwrap();
    assert_eq!(code(&out), 4);
    assert_eq!(json(&out)["env_credentials"], serde_json::json!([]));
}

#[test]
fn inspect_refuses_links_that_leave_the_directory() {
    let sb = Sandbox::new();
    let outside = sb.login("codex", "chatgpt-valid");
    let dir = sb.empty_dir("linked");
    symlink(outside.join("auth.json"), dir.join("auth.json")).unwrap();
    let (code, j) = inspect_json(&sb, "codex", &dir);
    assert_eq!(code, 4);
    assert_eq!(j["class"], "refused");
    assert!(
        j["detail"].as_str().unwrap().contains("leaves the login directory"),
        "{j:#}"
    );
}

#[test]
fn inspect_refuses_oversized_and_non_regular_login_files() {
    let sb = Sandbox::new();
    let dir = sb.empty_dir("big");
    fs::write(dir.join(".credentials.json"), vec![b' '; 300 * 1024]).unwrap();
    let (code, j) = inspect_json(&sb, "claude", &dir);
    assert_eq!((code, j["class"].as_str().unwrap()), (4, "refused"));
    assert!(j["detail"].as_str().unwrap().contains("byte limit"), "{j:#}");

    let dir = sb.empty_dir("dir-as-file");
    fs::create_dir(dir.join("auth.json")).unwrap();
    let (code, j) = inspect_json(&sb, "codex", &dir);
    assert_eq!((code, j["class"].as_str().unwrap()), (4, "refused"));
    assert!(j["detail"].as_str().unwrap().contains("not a regular file"), "{j:#}");
}

#[test]
fn inspect_of_a_directory_that_does_not_exist_is_a_missing_login() {
    let sb = Sandbox::new();
    let (code, j) = inspect_json(&sb, "codex", &sb.root().join("nowhere"));
    assert_eq!((code, j["class"].as_str().unwrap()), (4, "missing"));
}

#[test]
fn inspect_rejects_an_unknown_runtime_with_exit_2() {
    let sb = Sandbox::new();
    let out = sb.moonauth().args(["inspect", "gemini"]).output().unwrap();
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("\"gemini\"") && err.contains("claude, codex"), "{err}");
}

#[test]
fn inspect_accepts_runtime_names_in_any_case() {
    let sb = Sandbox::new();
    let dir = sb.login("claude", "valid-max");
    let out = sb
        .moonauth()
        .args(["inspect", " Claude ", "--json", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    assert_eq!(json(&out)["runtime"], "claude");
}

// ---- far-future expiries (hardening: these used to panic with exit 101) ----

/// A Claude login whose `expiresAt` is 10000-01-01 (in ms), past what RFC 3339 can write.
pub const CLAUDE_FAR_FUTURE: &str = r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-CANARY-far","refreshToken":"sk-ant-ort01-CANARY-far","expiresAt":253402300800000,"scopes":["user:inference"],"subscriptionType":"max"}}"#;

/// A Codex login whose access JWT has `exp` 2^64-1.
fn codex_far_future() -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let jwt = |claims: &str| format!("eyJhbGciOiJub25lIn0.{}.sig", URL_SAFE_NO_PAD.encode(claims));
    format!(
        r#"{{"OPENAI_API_KEY":null,"tokens":{{"id_token":"{}","access_token":"{}","refresh_token":"rt_CANARY-far","account_id":"acct-1"}},"last_refresh":"2026-11-20T10:00:00Z"}}"#,
        jwt(r#"{"email":"dev@example.com","exp":18446744073709551615}"#),
        jwt(r#"{"exp":18446744073709551615}"#)
    )
}

fn far_future_dir(sb: &Sandbox, runtime: &str) -> std::path::PathBuf {
    let dir = sb.empty_dir(&format!("{runtime}-far-future"));
    match runtime {
        "claude" => fs::write(dir.join(".credentials.json"), CLAUDE_FAR_FUTURE).unwrap(),
        _ => fs::write(dir.join("auth.json"), codex_far_future()).unwrap(),
    }
    dir
}

#[test]
fn inspect_of_a_far_future_expiry_says_so_instead_of_panicking() {
    let sb = Sandbox::new();
    for runtime in ["claude", "codex"] {
        let dir = far_future_dir(&sb, runtime);
        let (status, j) = inspect_json(&sb, runtime, &dir);
        assert_eq!(status, 0, "{runtime}: {j:#}");
        assert_eq!(j["class"], "oauth-valid", "{runtime}: {j:#}");
        assert_eq!(j["expires_at"], "9999-12-31T23:59:59Z", "{runtime}");
        let detail = j["detail"].as_str().unwrap();
        assert!(detail.contains("far future"), "{runtime}: {detail}");

        let out = sb
            .moonauth()
            .args(["inspect", runtime, "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(code(&out), 0, "{runtime}: {text}");
        assert!(text.contains("expires:    9999-12-31T23:59:59Z"), "{runtime}: {text}");
        assert!(
            !text.contains("panicked") && !text.contains("CANARY"),
            "{runtime}: {text}"
        );
    }
}

/// `.claude.json` as Claude Code writes it beside the credentials (CLAUDE_CONFIG_DIR).
const CLAUDE_ACCOUNT_JSON: &str = r#"{"numStartups":3,"oauthAccount":{"accountUuid":"11111111-2222","emailAddress":"dev@example.com","organizationUuid":"33333333-4444","organizationName":"Acme Research","organizationRole":"admin"},"userID":"abc"}"#;

#[test]
fn inspect_names_the_claude_account_from_claude_json_and_never_a_token() {
    let sb = Sandbox::new();
    let dir = sb.login("claude", "valid-max");
    fs::write(dir.join(".claude.json"), CLAUDE_ACCOUNT_JSON).unwrap();
    let (code, j) = inspect_json(&sb, "claude", &dir);
    assert_eq!(code, 0, "{j:#}");
    assert_eq!(j["email"], "dev@example.com", "{j:#}");
    assert_eq!(j["organization"], "Acme Research", "{j:#}");
    let out = sb
        .moonauth()
        .args(["inspect", "claude", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("account:    dev@example.com (Acme Research)"), "{text}");
    assert!(!text.contains("sk-ant-"), "{text}");
}

#[test]
fn inspect_reads_claude_json_under_the_same_guards_as_the_login() {
    let sb = Sandbox::new();
    // A link out of the login directory is not followed, even to a valid account file.
    let outside = sb.empty_dir("outside");
    fs::write(outside.join(".claude.json"), CLAUDE_ACCOUNT_JSON).unwrap();
    let dir = sb.login("claude", "valid-max");
    symlink(outside.join(".claude.json"), dir.join(".claude.json")).unwrap();
    let (code, j) = inspect_json(&sb, "claude", &dir);
    assert_eq!(code, 0, "an unreadable account file only means no identity: {j:#}");
    assert!(j.get("email").is_none(), "{j:#}");
    // A FIFO neither hangs nor fails.
    let dir = sb.login_named("fifo", "claude", "valid-max");
    nix::unistd::mkfifo(&dir.join(".claude.json"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let (code, j) = inspect_json(&sb, "claude", &dir);
    assert_eq!(code, 0, "{j:#}");
    assert!(j.get("email").is_none(), "{j:#}");
}

#[test]
fn inspect_of_a_directory_that_does_not_exist_says_the_directory_is_missing() {
    let sb = Sandbox::new();
    let dir = sb.root().join("nonexistent");
    for runtime in ["claude", "codex"] {
        let (code, j) = inspect_json(&sb, runtime, &dir);
        assert_eq!(code, 4, "{j:#}");
        assert_eq!(j["class"], "missing");
        let detail = j["detail"].as_str().unwrap();
        assert!(
            detail.contains("login directory") && detail.contains("does not exist") && detail.contains("nonexistent"),
            "{detail}"
        );
    }
}

#[test]
fn relative_login_directory_variables_are_refused_with_exit_2_naming_the_variable() {
    let sb = Sandbox::new();
    for (runtime, var) in [
        ("codex", "CODEX_HOME"),
        ("claude", "CLAUDE_CONFIG_DIR"),
        ("claude", "CLAUDE_HOME"),
    ] {
        let out = sb
            .moonauth()
            .args(["inspect", runtime])
            .env(var, "relative/dir")
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "{var}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(var) && err.contains("absolute path"), "{err}");
    }
}

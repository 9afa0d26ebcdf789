//! The canary: every fixture's tokens carry `CANARY`. Run every command on every
//! fixture, with credential variables holding CANARY values, at the most verbose
//! logging, and no output may contain "canary" (any case) or any token value.

use std::path::Path;

use crate::support::sandbox::*;

/// Credential variables set to canary values (the CLIs would use them).
const ENV_SECRETS: [(&str, &str); 5] = [
    ("ANTHROPIC_API_KEY", "sk-ant-api03-CANARY-env-anthropic-key"),
    ("ANTHROPIC_AUTH_TOKEN", "CANARY-env-anthropic-auth-token"),
    ("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-CANARY-env-oauth-token"),
    ("OPENAI_API_KEY", "sk-proj-CANARY-env-openai-key"),
    ("CODEX_API_KEY", "CANARY-env-codex-key"),
];

/// Every token value in the fixture files: quoted strings that carry CANARY or look
/// like a token, and each dot-separated part of the JWTs among them (the canary inside
/// a JWT is base64-encoded, so the plain-text check alone would miss it).
fn fixture_secrets() -> Vec<String> {
    let mut secrets = Vec::new();
    for runtime in ["claude", "codex"] {
        for entry in std::fs::read_dir(fixtures().join(runtime)).unwrap() {
            for file in std::fs::read_dir(entry.unwrap().path()).unwrap() {
                let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
                for (i, quoted) in text.split('"').enumerate() {
                    let inside = i % 2 == 1;
                    let token_like = ["sk-", "rt_", "eyJ"].iter().any(|p| quoted.starts_with(p));
                    if inside && (quoted.contains("CANARY") || token_like) {
                        secrets.push(quoted.to_string());
                        if quoted.starts_with("eyJ") {
                            secrets.extend(quoted.split('.').filter(|s| s.len() >= 8).map(str::to_string));
                        }
                    }
                }
            }
        }
    }
    secrets.sort();
    secrets.dedup();
    // Guard the guard: the collection must have found the fixtures' tokens.
    assert!(secrets.len() >= 15, "found only {secrets:?}");
    assert!(secrets.iter().any(|s| s == "rt_CANARY-moonauth-refresh-valid"));
    secrets
}

fn assert_clean(what: &str, out: &std::process::Output, secrets: &[String]) {
    for (stream, text) in [("stdout", stdout(out)), ("stderr", stderr(out))] {
        assert!(
            !text.to_lowercase().contains("canary"),
            "{what}: {stream} contains the canary:\n{text}"
        );
        for secret in secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what}: {stream} contains {secret:?}:\n{text}"
            );
        }
    }
}

/// Stand-in CLIs whose status answers carry token-shaped text, as the real codex does
/// with an API key (`sk-proj-***` and the key's last characters).
fn leaky_stand_ins(sb: &Sandbox) {
    sb.stand_in(
        "codex",
        "echo 'API key configured - sk-proj-CANARY-moonauth-standin-0123456789abcdef' >&2",
    );
    sb.stand_in(
        "claude",
        r#"echo '{"loggedIn":true,"authMethod":"claude.ai","token":"sk-ant-oat01-CANARY-standin"}'"#,
    );
    sb.stand_in("gemini", "exit 0");
}

/// The invocations to try against a login dir of `runtime`.
fn invocations(runtime: &str, dir: &Path) -> Vec<Vec<String>> {
    let dir = dir.display().to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        s(&["inspect", runtime, "--dir", &dir]),
        s(&["inspect", runtime, "--dir", &dir, "--json"]),
        s(&["preflight", "--mode", runtime]),
        s(&["preflight", "--mode", runtime, "--json"]),
        s(&["preflight", "--mode", runtime, "--deep"]),
        s(&["preflight", "--mode", "universal", "--deep", "--json"]),
        s(&["preflight", "--mode", runtime, "--auth-mode", "oauth"]),
        s(&["preflight", "--mode", runtime, "--auth-mode", "api-key", "--json"]),
        s(&["preflight", "--mode", runtime, "--", "/bin/true"]),
        s(&["preflight", "--mode", runtime, "--json", "--", "/bin/true"]),
        s(&["runtime", "resolve"]),
        s(&["runtime", "resolve", "--explicit", runtime, "--json"]),
    ]
}

#[test]
fn no_output_of_any_command_contains_a_canary_or_a_token() {
    let secrets = fixture_secrets();
    let mut all_secrets = secrets.clone();
    all_secrets.extend(ENV_SECRETS.iter().map(|(_, v)| v.to_string()));
    let mut runs = 0;
    let fixtures = CLAUDE_CASES
        .iter()
        .map(|(c, _, _)| ("claude", *c))
        .chain(CODEX_CASES.iter().map(|(c, _, _)| ("codex", *c)));
    for (runtime, case) in fixtures {
        let sb = Sandbox::new();
        leaky_stand_ins(&sb);
        let dir = sb.login(runtime, case);
        // The other runtime gets a valid login so universal runs reach every check.
        let (codex, claude) = match runtime {
            "claude" => (sb.login("codex", "chatgpt-valid"), dir.clone()),
            _ => (dir.clone(), sb.login("claude", "valid-max")),
        };
        for args in invocations(runtime, &dir) {
            for with_env_secrets in [false, true] {
                for rust_log in [Some("trace"), None] {
                    let mut cmd = sb.moonauth();
                    cmd.arg("-vvv")
                        .args(&args)
                        .env("CODEX_HOME", &codex)
                        .env("CLAUDE_CONFIG_DIR", &claude);
                    if let Some(filter) = rust_log {
                        cmd.env("RUST_LOG", filter);
                    }
                    if with_env_secrets {
                        cmd.envs(ENV_SECRETS);
                    }
                    let out = cmd.output().unwrap();
                    let what =
                        format!("{runtime}/{case} {args:?} env-secrets={with_env_secrets} RUST_LOG={rust_log:?}");
                    assert_clean(&what, &out, &all_secrets);
                    runs += 1;
                }
            }
        }
    }
    assert_eq!(runs, 11 * 12 * 4);
}

#[test]
fn waiting_and_payload_resolution_logs_carry_no_canary() {
    let secrets = fixture_secrets();
    let sb = Sandbox::new();
    leaky_stand_ins(&sb);
    let malformed = sb.login("codex", "malformed");
    // --wait logs each changed failure while it waits: a malformed login, then a
    // competing variable refused by MOONAUTH_AUTH_MODE=oauth.
    for (auth_mode, env) in [("auto", &[][..]), ("oauth", &ENV_SECRETS[..])] {
        let out = sb
            .moonauth()
            .args(["-vvv", "preflight", "--wait=1s", "--auth-mode", auth_mode])
            .env("RUST_LOG", "trace")
            .env("CODEX_HOME", &malformed)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(code(&out), 4);
        assert!(stderr(&out).contains("waiting"), "{}", stderr(&out));
        assert_clean("--wait", &out, &secrets);
    }

    let out = sb
        .moonauth()
        .args(["-vvv", "runtime", "resolve", "--payload", "-"])
        .write_stdin(r#"{"task":{"instructions":"x"}}"#)
        .env("RUST_LOG", "trace")
        .envs(ENV_SECRETS)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    assert!(
        stderr(&out).contains("resolved task runtime"),
        "trace logs are on: {}",
        stderr(&out)
    );
    assert_clean("runtime resolve --payload", &out, &secrets);
}

//! Agreement with the real CLIs, pinned in tools/clis (claude 2.1.330, codex 0.169.0):
//! for each fixture (and some variations of them), `codex login status` /
//! `claude auth status` on a temp copy, offline, against `moonauth inspect` on the same
//! copy, by the rule in shared/facts/credentials.md:
//!
//! - where the CLI says "not logged in", moonauth must not call the login usable;
//! - where the CLI says "logged in", moonauth may say unusable only for a reason the
//!   CLI does not check (expired with no refresh token; a file with nothing to send),
//!   and must say so in its message.
//!
//! The CLIs come from `$MOONAUTH_CLI_BIN_DIR` (default tools/clis/node_modules/.bin).
//! When they are absent the tests print a skip notice and pass, unless
//! `MOONAUTH_REQUIRE_REAL_CLIS=1` (CI), where they fail. The CLIs always run with no
//! network (`unshare -n`), no stdin, a time limit, a temp HOME and no credential
//! variables. What the CLIs do is described in docs/real-cli-behaviour.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::support::moonauth_bin;
use crate::support::sandbox::*;

/// The real CLIs and how to run a command offline.
struct RealClis {
    bin: PathBuf,
    /// The program and arguments that put a command in a network namespace of its own.
    offline: Vec<PathBuf>,
    timeout: PathBuf,
}

fn required() -> bool {
    std::env::var("MOONAUTH_REQUIRE_REAL_CLIS").is_ok_and(|v| v.trim() == "1")
}

/// The real CLIs, or None (after a skip notice) when they are not installed.
fn real_clis(test: &str) -> Option<RealClis> {
    let bin = std::env::var_os("MOONAUTH_CLI_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/clis/node_modules/.bin"));
    let skip = |why: String| -> Option<RealClis> {
        if required() {
            panic!("{test}: {why} (MOONAUTH_REQUIRE_REAL_CLIS=1)");
        }
        eprintln!(
            "SKIPPED {test}: {why}. Install them with `npm ci --prefix tools/clis` or point \
             MOONAUTH_CLI_BIN_DIR at them; MOONAUTH_REQUIRE_REAL_CLIS=1 makes this a failure."
        );
        None
    };
    for cli in ["claude", "codex"] {
        if !bin.join(cli).is_file() {
            return skip(format!("no real `{cli}` in {}", bin.display()));
        }
    }
    let unshare = find_program("unshare")?;
    let timeout = find_program("timeout")?;
    // Root gets a network namespace directly; anyone else through a user namespace.
    let offline = if is_root() {
        vec![unshare, "-n".into()]
    } else {
        vec![unshare, "-r".into(), "-n".into()]
    };
    let works = Command::new(&offline[0])
        .args(&offline[1..])
        .arg("true")
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        return skip("cannot create a network namespace to run the CLIs offline".into());
    }
    Some(RealClis { bin, offline, timeout })
}

/// What a CLI's status command said.
#[derive(Debug)]
struct Answer {
    code: i32,
    logged_in: bool,
    out: Output,
}

impl RealClis {
    /// `timeout 60 unshare -n <cmd> <args>` with a clean environment, no stdin.
    fn offline_command(&self, program: &Path, args: &[&str], home: &Path) -> Command {
        let mut cmd = Command::new(&self.timeout);
        cmd.args(["-k", "5", "60"])
            .args(&self.offline)
            .arg(program)
            .args(args)
            .env_clear()
            // The bin dir first, then the system's (codex starts through node).
            .env("PATH", self.path())
            .env("HOME", home)
            .env("DISABLE_TELEMETRY", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .stdin(Stdio::null());
        cmd
    }

    fn path(&self) -> std::ffi::OsString {
        let system = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        std::env::join_paths(std::iter::once(self.bin.clone()).chain(std::env::split_paths(&system))).unwrap()
    }

    /// Runs `codex login status` or `claude auth status` on `dir`.
    fn status(&self, runtime: &str, dir: &Path, home: &Path, env: &[(&str, &str)]) -> Answer {
        let (args, var): (&[&str], &str) = match runtime {
            "claude" => (&["auth", "status"], "CLAUDE_CONFIG_DIR"),
            _ => (&["login", "status"], "CODEX_HOME"),
        };
        let mut cmd = self.offline_command(&self.bin.join(runtime), args, home);
        cmd.env(var, dir).envs(env.iter().copied());
        let out = cmd.output().unwrap();
        let code = code(&out);
        assert!(code != 124 && code != 137, "{runtime} status timed out: {out:?}");
        let logged_in = match runtime {
            "claude" => {
                let j: Value = serde_json::from_slice(&out.stdout)
                    .unwrap_or_else(|e| panic!("claude auth status is not JSON ({e}): {out:?}"));
                j["loggedIn"].as_bool().expect("loggedIn is a bool")
            }
            _ => code == 0,
        };
        Answer { code, logged_in, out }
    }
}

/// moonauth inspect --json on `dir`, with an empty environment.
fn inspect(sb: &Sandbox, runtime: &str, dir: &Path, env: &[(&str, &str)]) -> (i32, Value) {
    let out = sb
        .moonauth()
        .args(["inspect", runtime, "--json", "--dir"])
        .arg(dir)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (code(&out), json(&out))
}

/// The agreement rule. `allowed` lists the classes moonauth may call unusable while the
/// CLI says logged in, each with words its detail must contain.
fn assert_agreement(what: &str, cli: &Answer, moonauth: &Value, allowed: &[(&str, &str)]) {
    let usable = moonauth["usable"].as_bool().unwrap();
    let class = moonauth["class"].as_str().unwrap();
    let detail = moonauth["detail"].as_str().unwrap();
    if !cli.logged_in {
        assert!(
            !usable,
            "{what}: the CLI says not logged in but moonauth calls {class} usable\n{cli:?}"
        );
    } else if !usable {
        let said_why = allowed.iter().any(|(c, words)| *c == class && detail.contains(words));
        assert!(
            said_why,
            "{what}: the CLI says logged in, moonauth says {class} without a reason the CLI does not check \
             ({allowed:?}): {detail}"
        );
    }
}

/// Reasons the CLIs do not check.
const NOT_CHECKED_BY_THE_CLI: [(&str, &str); 3] = [
    ("oauth-expired-not-refreshable", "no refresh token"),
    // codex counts `{}`, and auth_mode chatgpt without tokens, as a ChatGPT login with
    // nothing in it to send.
    ("missing", "ChatGPT tokens"),
    // codex selects an empty OPENAI_API_KEY ("API key configured - ***").
    ("missing", "key is empty"),
];

fn sha(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// Runs one case: a login dir, the CLI's answer, moonauth's verdict, the rule.
fn check_case(clis: &RealClis, sb: &Sandbox, runtime: &str, name: &str, dir: &Path, expect_cli: Option<(i32, bool)>) {
    let file = dir.join(if runtime == "claude" {
        ".credentials.json"
    } else {
        "auth.json"
    });
    let (moon_code, moon) = inspect(sb, runtime, dir, &[]);
    assert_eq!(moon_code, if moon["usable"] == true { 0 } else { 4 }, "{name}");
    let before = sha(&file);
    let home = sb.empty_dir(&format!("home-{runtime}-{name}"));
    let cli = clis.status(runtime, dir, &home, &[]);
    assert_eq!(sha(&file), before, "{name}: the offline CLI changed the login file");
    if let Some((code, logged_in)) = expect_cli {
        assert_eq!(
            (cli.code, cli.logged_in),
            (code, logged_in),
            "{runtime} {name}: the CLI no longer answers as docs/real-cli-behaviour.md says; re-check it\n{:?}",
            cli.out
        );
    }
    assert_agreement(&format!("{runtime} {name}"), &cli, &moon, &NOT_CHECKED_BY_THE_CLI);
}

#[test]
fn real_cli_claude_auth_status_agrees_with_inspect_on_every_fixture() {
    let Some(clis) = real_clis("real_cli_claude_auth_status_agrees_with_inspect_on_every_fixture") else {
        return;
    };
    let sb = Sandbox::new();
    // (fixture, exit and loggedIn of `claude auth status` 2.1.330)
    for (case, expected) in [
        ("valid-max", (0, true)),
        ("expired-refreshable", (0, true)),
        ("expired-no-refresh", (0, true)),
        ("empty-oauth", (1, false)),
        ("malformed", (1, false)),
        ("missing", (1, false)),
    ] {
        let dir = sb.login("claude", case);
        check_case(&clis, &sb, "claude", case, &dir, Some(expected));
    }
}

#[test]
fn real_cli_codex_login_status_agrees_with_inspect_on_every_fixture() {
    let Some(clis) = real_clis("real_cli_codex_login_status_agrees_with_inspect_on_every_fixture") else {
        return;
    };
    let sb = Sandbox::new();
    for (case, expected) in [
        ("chatgpt-valid", (0, true)),
        ("chatgpt-expired-refreshable", (0, true)),
        ("api-key", (0, true)),
        ("malformed", (1, false)),
        ("missing", (1, false)),
    ] {
        let dir = sb.login("codex", case);
        check_case(&clis, &sb, "codex", case, &dir, Some(expected));
    }
}

/// Writes `json` as the login file of a fresh dir `name`.
fn variation(sb: &Sandbox, runtime: &str, name: &str, json: &Value) -> PathBuf {
    let dir = sb.empty_dir(name);
    let file = if runtime == "claude" {
        ".credentials.json"
    } else {
        "auth.json"
    };
    std::fs::write(dir.join(file), serde_json::to_vec(json).unwrap()).unwrap();
    dir
}

fn fixture_json(runtime: &str, case: &str) -> Value {
    serde_json::from_slice(&fixture_login_file(runtime, case)).unwrap()
}

#[test]
fn real_cli_claude_agrees_on_variations_of_the_fixtures() {
    let Some(clis) = real_clis("real_cli_claude_agrees_on_variations_of_the_fixtures") else {
        return;
    };
    let sb = Sandbox::new();
    let base = fixture_json("claude", "valid-max");
    let with = |edit: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut v = base.clone();
        edit(v["claudeAiOauth"].as_object_mut().unwrap());
        v
    };
    let cases: Vec<(&str, Value)> = vec![
        (
            "no-scopes",
            with(&|o| {
                o.remove("scopes");
            }),
        ),
        (
            "scopes-without-inference",
            with(&|o| {
                o.insert("scopes".into(), serde_json::json!(["user:profile"]));
            }),
        ),
        (
            "empty-scopes",
            with(&|o| {
                o.insert("scopes".into(), serde_json::json!([]));
            }),
        ),
        (
            "wiped",
            with(&|o| {
                o.insert("accessToken".into(), "".into());
                o.insert("refreshToken".into(), "".into());
                o.insert("expiresAt".into(), 0.into());
            }),
        ),
        (
            "no-expiry-no-plan",
            with(&|o| {
                for k in ["expiresAt", "refreshToken", "subscriptionType", "rateLimitTier"] {
                    o.remove(k);
                }
            }),
        ),
        ("unknown-keys", {
            let mut v = with(&|o| {
                o.insert("subscriptionTypeSource".into(), "x".into());
            });
            v["somethingNew"] = 1.into();
            v
        }),
    ];
    for (name, json) in cases {
        let dir = variation(&sb, "claude", name, &json);
        check_case(&clis, &sb, "claude", name, &dir, None);
    }
}

#[test]
fn real_cli_codex_agrees_on_variations_of_the_fixtures() {
    let Some(clis) = real_clis("real_cli_codex_agrees_on_variations_of_the_fixtures") else {
        return;
    };
    let sb = Sandbox::new();
    let base = fixture_json("codex", "chatgpt-valid");
    let key = fixture_json("codex", "api-key");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        edit(&mut v);
        v
    };
    let cases: Vec<(&str, Value)> = vec![
        ("empty-object", serde_json::json!({})),
        ("tokens-empty", serde_json::json!({"tokens": {}})),
        (
            "no-refresh-token",
            with(&|v| {
                v["tokens"].as_object_mut().unwrap().remove("refresh_token");
            }),
        ),
        (
            "id-token-not-a-jwt",
            with(&|v| v["tokens"]["id_token"] = "not-a-jwt".into()),
        ),
        (
            "access-token-not-a-jwt",
            with(&|v| v["tokens"]["access_token"] = "opaque".into()),
        ),
        (
            "no-last-refresh",
            with(&|v| {
                v.as_object_mut().unwrap().remove("last_refresh");
            }),
        ),
        (
            "key-and-tokens",
            with(&|v| v["OPENAI_API_KEY"] = key["OPENAI_API_KEY"].clone()),
        ),
        (
            "key-and-tokens-mode-chatgpt",
            with(&|v| {
                v["OPENAI_API_KEY"] = key["OPENAI_API_KEY"].clone();
                v["auth_mode"] = "chatgpt".into();
            }),
        ),
        (
            "key-and-tokens-mode-apikey",
            with(&|v| {
                v["OPENAI_API_KEY"] = key["OPENAI_API_KEY"].clone();
                v["auth_mode"] = "apikey".into();
            }),
        ),
        ("mode-api_key", {
            let mut v = key.clone();
            v["auth_mode"] = "api_key".into();
            v
        }),
        ("mode-chatgpt-without-tokens", {
            let mut v = key.clone();
            v["auth_mode"] = "chatgpt".into();
            v
        }),
        ("empty-key-and-tokens", with(&|v| v["OPENAI_API_KEY"] = "".into())),
    ];
    for (name, json) in cases {
        let dir = variation(&sb, "codex", name, &json);
        check_case(&clis, &sb, "codex", name, &dir, None);
    }
}

#[test]
fn real_cli_codex_home_that_does_not_exist_is_not_a_login() {
    let Some(clis) = real_clis("real_cli_codex_home_that_does_not_exist_is_not_a_login") else {
        return;
    };
    let sb = Sandbox::new();
    let gone = sb.root().join("gone");
    let cli = clis.status("codex", &gone, &sb.home(), &[]);
    assert_eq!((cli.code, cli.logged_in), (1, false), "{:?}", cli.out);
    assert!(stderr(&cli.out).contains("does not exist"), "{:?}", cli.out);
    let (moon_code, moon) = inspect(&sb, "codex", &gone, &[]);
    assert_eq!((moon_code, moon["usable"].as_bool()), (4, Some(false)));
    // preflight says more precisely what is wrong: the directory, exit 5.
    sb.stand_ins(&["codex"]);
    let out = sb
        .moonauth()
        .arg("preflight")
        .env("CODEX_HOME", &gone)
        .output()
        .unwrap();
    assert_eq!(code(&out), 5);
}

#[test]
fn real_cli_claude_with_an_api_key_and_no_login_file_is_usable() {
    let Some(clis) = real_clis("real_cli_claude_with_an_api_key_and_no_login_file_is_usable") else {
        return;
    };
    let sb = Sandbox::new();
    for (var, method) in [
        ("ANTHROPIC_API_KEY", "api_key"),
        ("CLAUDE_CODE_OAUTH_TOKEN", "oauth_token"),
        ("ANTHROPIC_AUTH_TOKEN", "oauth_token"),
    ] {
        let dir = sb.login_named(&format!("claude-{var}"), "claude", "missing");
        let env = [(var, "sk-ant-CANARY-real-cli-env-value")];
        let cli = clis.status("claude", &dir, &sb.home(), &env);
        assert!(cli.logged_in, "{var}: {:?}", cli.out);
        let j: Value = serde_json::from_slice(&cli.out.stdout).unwrap();
        assert_eq!(j["authMethod"], method, "{var}");
        let (code, moon) = inspect(&sb, "claude", &dir, &env);
        assert_eq!(code, 0, "{var}: {moon:#}");
        assert_agreement(var, &cli, &moon, &[]);
    }
}

/// `moonauth preflight --deep` with the real CLIs on PATH, itself run offline.
fn deep(clis: &RealClis, sb: &Sandbox, mode: &str, codex: &Path, claude: &Path) -> (i32, Value, Output) {
    let mut cmd = clis.offline_command(
        moonauth_bin(),
        &["preflight", "--deep", "--json", "--mode", mode],
        &sb.home(),
    );
    cmd.env("CODEX_HOME", codex)
        .env("CLAUDE_CONFIG_DIR", claude)
        .env("MOONAUTH_NOW", NOW)
        .current_dir(sb.cwd());
    let out = cmd.output().unwrap();
    let j = json(&out);
    (code(&out), j, out)
}

fn assert_no_secrets(out: &Output) {
    for text in [stdout(out), stderr(out)] {
        assert!(!text.to_lowercase().contains("canary"), "{text}");
        assert!(
            !text.contains("pikey"),
            "the real codex shows the key's last characters: {text}"
        );
    }
}

#[test]
fn real_cli_preflight_deep_agrees_on_a_valid_claude_login() {
    let Some(clis) = real_clis("real_cli_preflight_deep_agrees_on_a_valid_claude_login") else {
        return;
    };
    let sb = Sandbox::new();
    let (code, j, out) = deep(
        &clis,
        &sb,
        "claude",
        &sb.login("codex", "missing"),
        &sb.login("claude", "valid-max"),
    );
    assert_eq!(code, 0, "{j:#}");
    let c = check(&j, "claude", "cli-status");
    assert_eq!(c["status"], "ok");
    assert_eq!(
        c["detail"],
        "`claude auth status` agrees: logged in (authMethod claude.ai, subscriptionType max)"
    );
    assert_no_secrets(&out);
}

#[test]
fn real_cli_preflight_deep_explains_an_expired_claude_login_without_refresh_token() {
    let Some(clis) = real_clis("real_cli_preflight_deep_explains_an_expired_claude_login_without_refresh_token") else {
        return;
    };
    let sb = Sandbox::new();
    let claude = sb.login("claude", "expired-no-refresh");
    let (code, j, out) = deep(&clis, &sb, "claude", &sb.login("codex", "missing"), &claude);
    assert_eq!(code, 4, "the login check fails: {j:#}");
    assert_eq!(check(&j, "claude", "login")["status"], "fail");
    let c = check(&j, "claude", "cli-status");
    assert_eq!(c["status"], "ok", "{c:#}");
    assert!(c["detail"].as_str().unwrap().contains("does not check expiry"), "{c:#}");
    assert_no_secrets(&out);
}

#[test]
fn real_cli_preflight_deep_on_codex_logins() {
    let Some(clis) = real_clis("real_cli_preflight_deep_on_codex_logins") else {
        return;
    };
    let sb = Sandbox::new();
    let claude = sb.login("claude", "valid-max");
    for (case, want_code, cli_status, summary) in [
        ("chatgpt-valid", 0, "ok", "agrees: logged in (Logged in using ChatGPT)"),
        (
            "api-key",
            0,
            "ok",
            "agrees: logged in (API key configured - [redacted])",
        ),
        (
            "malformed",
            4,
            "ok",
            "agrees: not logged in (Error checking login status",
        ),
        ("missing", 4, "ok", "agrees: not logged in (Not logged in)"),
    ] {
        let codex = sb.login("codex", case);
        let (code, j, out) = deep(&clis, &sb, "universal", &codex, &claude);
        assert_eq!(code, want_code, "{case}: {j:#}");
        let c = check(&j, "codex", "cli-status");
        assert_eq!(c["status"], cli_status, "{case}: {c:#}");
        assert!(c["detail"].as_str().unwrap().contains(summary), "{case}: {c:#}");
        assert_eq!(check(&j, "claude", "cli-status")["status"], "ok", "{case}");
        assert_no_secrets(&out);
    }
}

//! `moonauth preflight` through the binary: the checks per worker mode, their exit
//! codes and fix hints, competing credential variables, `--deep` against stand-in
//! CLIs, and `--wait`.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::sandbox::*;

/// A sandbox with stand-in CLIs and valid logins for both runtimes.
struct Worker {
    sb: Sandbox,
    codex: PathBuf,
    claude: PathBuf,
}

impl Worker {
    fn new() -> Self {
        Self::with("chatgpt-valid", "valid-max")
    }

    fn with(codex_case: &str, claude_case: &str) -> Self {
        let sb = Sandbox::new();
        sb.stand_ins(&["codex", "claude", "gemini"]);
        let codex = sb.login("codex", codex_case);
        let claude = sb.login("claude", claude_case);
        Worker { sb, codex, claude }
    }

    fn preflight(&self) -> assert_cmd::Command {
        let mut cmd = self.sb.moonauth();
        cmd.arg("preflight")
            .env("CODEX_HOME", &self.codex)
            .env("CLAUDE_CONFIG_DIR", &self.claude);
        cmd
    }

    fn json(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, serde_json::Value) {
        let mut cmd = self.preflight();
        cmd.arg("--json").args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (code(&out), json(&out))
    }
}

fn triples(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    list.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[test]
fn preflight_runs_the_checks_of_each_mode_and_passes_on_valid_logins() {
    let w = Worker::new();
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str, &'a str)>);
    let cases: [Case; 4] = [
        (
            "codex",
            vec![
                ("codex", "cli", "ok"),
                ("codex", "login-dir", "ok"),
                ("codex", "login", "ok"),
            ],
        ),
        (
            "claude",
            vec![
                ("claude", "cli", "ok"),
                ("claude", "login-dir", "ok"),
                ("claude", "login", "ok"),
            ],
        ),
        (
            "universal",
            vec![
                ("codex", "cli", "ok"),
                ("codex", "login-dir", "ok"),
                ("codex", "login", "ok"),
                ("claude", "cli", "ok"),
                ("claude", "login-dir", "ok"),
                ("claude", "login", "ok"),
            ],
        ),
        ("gemini", vec![("gemini", "cli", "ok")]),
    ];
    for (mode, want) in cases {
        let (code, j) = w.json(&["--mode", mode], &[]);
        assert_eq!(code, 0, "{mode}: {j:#}");
        assert_eq!(j["mode"], mode);
        assert_eq!(j["ok"], true);
        assert_eq!(j["exit_code"], 0);
        assert_eq!(checks(&j), triples(&want), "{mode}");
    }
}

/// The block of `runtime` in a human preflight report: its header line (`codex: …`, or
/// just `gemini`) and the indented check lines under it.
fn block(text: &str, runtime: &str) -> String {
    let mut lines = text
        .lines()
        .skip_while(|l| !(l == &runtime || l.starts_with(&format!("{runtime}: "))));
    let mut out = lines.next().unwrap_or_default().to_string();
    for l in lines.take_while(|l| l.starts_with("  ")) {
        out.push('\n');
        out.push_str(l);
    }
    out
}

#[test]
fn preflight_without_the_cli_exits_3_with_an_install_hint() {
    for (mode, runtime, package) in [
        ("codex", "codex", "@openai/codex"),
        ("claude", "claude", "@anthropic-ai/claude-code"),
        ("universal", "codex", "@openai/codex"),
        ("gemini", "gemini", "@google/gemini-cli"),
    ] {
        let w = Worker::new();
        std::fs::remove_file(w.sb.bin().join(runtime)).unwrap();
        let out = w.preflight().args(["--mode", mode]).output().unwrap();
        assert_eq!(code(&out), 3, "{mode}: {}", stdout(&out));
        let text = stdout(&out);
        assert!(
            block(&text, runtime).contains("\n  ✗ cli: "),
            "{mode}: no failed cli line:\n{text}"
        );
        assert!(
            text.contains(&format!("`{runtime}` is not an executable on PATH")),
            "{text}"
        );
        assert!(text.contains("fix: install") && text.contains(package), "{text}");
        assert!(text.contains("not ready:") && text.contains("(exit 3:"), "{text}");
    }
}

#[test]
fn preflight_does_not_take_a_non_executable_file_for_the_cli() {
    let w = Worker::new();
    set_mode(&w.sb.bin().join("codex"), 0o644);
    let (code, j) = w.json(&[], &[]);
    assert_eq!(code, 3);
    assert_eq!(check(&j, "codex", "cli")["status"], "fail");
}

#[test]
fn preflight_with_a_missing_login_directory_exits_5_and_says_which_volume() {
    for (mode, var, volume) in [
        ("codex", "CODEX_HOME", "codex_auth_volume"),
        ("claude", "CLAUDE_CONFIG_DIR", "claude_auth_volume"),
    ] {
        let w = Worker::new();
        let gone = w.sb.root().join("not-mounted");
        let out = w.preflight().args(["--mode", mode]).env(var, &gone).output().unwrap();
        assert_eq!(code(&out), 5, "{mode}: {}", stdout(&out));
        let text = stdout(&out);
        assert!(
            text.contains(&format!("{} (env {var}) does not exist", gone.display())),
            "{text}"
        );
        assert!(text.contains(&format!("fix: mount the {volume} volume")), "{text}");
    }
    // The volume name comes from the MoonMind variable when set.
    let w = Worker::new();
    let out = w
        .preflight()
        .env("CODEX_HOME", w.sb.root().join("gone"))
        .env("CODEX_VOLUME_NAME", "fleet_codex")
        .output()
        .unwrap();
    assert_eq!(code(&out), 5);
    assert!(
        stdout(&out).contains("mount the fleet_codex volume"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn preflight_with_a_file_where_the_login_directory_should_be_exits_5() {
    let w = Worker::new();
    let file = w.sb.root().join("a-file");
    std::fs::write(&file, "").unwrap();
    let (code, j) = w.json(&[], &[("CODEX_HOME", file.to_str().unwrap())]);
    assert_eq!(code, 5);
    let c = check(&j, "codex", "login-dir");
    assert_eq!(c["status"], "fail");
    assert!(c["detail"].as_str().unwrap().contains("is not a directory"), "{c:#}");
}

/// A login directory the worker's user cannot write. As root `access()` always passes,
/// so the binary runs as uid 65534 there; otherwise the directory is made 0500.
fn run_unwritable(w: &Worker, mode: &str) -> std::process::Output {
    let dir = match mode {
        "codex" => &w.codex,
        _ => &w.claude,
    };
    // Readable and searchable by everyone, writable by its owner only.
    set_mode(dir, if is_root() { 0o755 } else { 0o500 });
    let mut cmd = if is_root() {
        w.sb.moonauth_as_nobody()
    } else {
        w.sb.moonauth()
    };
    cmd.args(["preflight", "--mode", mode])
        .env("CODEX_HOME", &w.codex)
        .env("CLAUDE_CONFIG_DIR", &w.claude);
    let out = cmd.output().unwrap();
    set_mode(dir, 0o755);
    out
}

#[test]
fn preflight_with_a_login_directory_the_user_cannot_write_exits_5_with_a_chown_hint() {
    for mode in ["codex", "claude"] {
        let w = Worker::new();
        let out = run_unwritable(&w, mode);
        let text = stdout(&out);
        assert_eq!(code(&out), 5, "{mode}: {text}{}", stderr(&out));
        assert!(text.contains("cannot read and write it"), "{text}");
        assert!(
            text.contains("fix: run `moonauth init` as root") && text.contains("chown -R"),
            "{text}"
        );
    }
}

#[test]
fn preflight_with_a_login_file_the_user_cannot_write_exits_5() {
    if !is_root() {
        eprintln!("skipped: needs root to hand the directory to another uid");
        return;
    }
    let w = Worker::new();
    // The directory belongs to the worker's uid, the login file does not.
    nix::unistd::chown(&w.codex, Some(65534.into()), Some(65534.into())).unwrap();
    let out =
        w.sb.moonauth_as_nobody()
            .args(["preflight", "--json"])
            .env("CODEX_HOME", &w.codex)
            .output()
            .unwrap();
    assert_eq!(code(&out), 5, "{}", stdout(&out));
    let j = json(&out);
    let detail = check(&j, "codex", "login-dir")["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("auth.json is not readable and writable by uid 65534"),
        "{detail}"
    );
}

#[test]
fn preflight_with_an_unusable_login_exits_4_and_says_how_to_log_in() {
    for (runtime, cases) in [
        ("codex", vec!["missing", "malformed"]),
        (
            "claude",
            vec!["missing", "malformed", "expired-no-refresh", "empty-oauth"],
        ),
    ] {
        for case in cases {
            let w = match runtime {
                "codex" => Worker::with(case, "valid-max"),
                _ => Worker::with("chatgpt-valid", case),
            };
            let out = w.preflight().args(["--mode", runtime]).output().unwrap();
            let text = stdout(&out);
            assert_eq!(code(&out), 4, "{runtime}/{case}: {text}");
            assert!(block(&text, runtime).contains("\n  ✗ login: "), "{text}");
            assert!(text.contains(&format!("fix: run `moonauth login {runtime}`")), "{text}");
        }
    }
}

#[test]
fn preflight_passes_an_expired_but_refreshable_login_with_a_warning() {
    for (runtime, w) in [
        ("codex", Worker::with("chatgpt-expired-refreshable", "valid-max")),
        ("claude", Worker::with("chatgpt-valid", "expired-refreshable")),
    ] {
        let (code, j) = w.json(&["--mode", runtime], &[]);
        assert_eq!(code, 0, "{j:#}");
        let c = check(&j, runtime, "login");
        assert_eq!(c["status"], "warn");
        assert_eq!(c["login"]["class"], "oauth-expired-refreshable");
        assert!(c["fix"].as_str().unwrap().contains("refresh"), "{c:#}");
    }
}

#[test]
fn preflight_universal_fails_when_either_runtime_fails() {
    let w = Worker::with("chatgpt-valid", "malformed");
    let (code, j) = w.json(&["--mode", "universal"], &[]);
    assert_eq!(code, 4);
    assert_eq!(check(&j, "codex", "login")["status"], "ok");
    assert_eq!(check(&j, "claude", "login")["status"], "fail");

    let w = Worker::with("missing", "valid-max");
    let (code, j) = w.json(&["--mode", "universal"], &[]);
    assert_eq!(code, 4);
    assert_eq!(check(&j, "claude", "login")["status"], "ok");
    assert_eq!(j["ok"], false);
    assert_eq!(j["exit_code"], 4);

    // Every check still runs, and the exit code is that of the first failure.
    let w = Worker::with("chatgpt-valid", "malformed");
    let gone = w.sb.root().join("gone");
    let (code, j) = w.json(&["--mode", "universal"], &[("CODEX_HOME", gone.to_str().unwrap())]);
    assert_eq!(code, 5);
    assert_eq!(check(&j, "codex", "login-dir")["status"], "fail");
    assert_eq!(check(&j, "claude", "login")["status"], "fail");
}

#[test]
fn preflight_mode_comes_from_the_flag_then_moonmind_worker_runtime_then_codex() {
    let w = Worker::new();
    let (_, j) = w.json(&[], &[]);
    assert_eq!(
        (j["mode"].as_str(), j["mode_source"].as_str()),
        (Some("codex"), Some("default"))
    );

    let (_, j) = w.json(&[], &[("MOONMIND_WORKER_RUNTIME", "claude")]);
    assert_eq!(
        (j["mode"].as_str(), j["mode_source"].as_str()),
        (Some("claude"), Some("env MOONMIND_WORKER_RUNTIME"))
    );

    let (_, j) = w.json(&["--mode", "gemini"], &[("MOONMIND_WORKER_RUNTIME", "claude")]);
    assert_eq!(
        (j["mode"].as_str(), j["mode_source"].as_str()),
        (Some("gemini"), Some("flag --mode"))
    );

    // A blank variable means unset.
    let (_, j) = w.json(&[], &[("MOONMIND_WORKER_RUNTIME", "   ")]);
    assert_eq!(j["mode"], "codex");
}

#[test]
fn preflight_mode_values_are_trimmed_and_lower_cased() {
    let w = Worker::new();
    let (code, j) = w.json(&[], &[("MOONMIND_WORKER_RUNTIME", "  Universal\t")]);
    assert_eq!((code, j["mode"].as_str()), (0, Some("universal")));
    let (code, j) = w.json(&["--mode", " CLAUDE "], &[]);
    assert_eq!((code, j["mode"].as_str()), (0, Some("claude")));
}

#[test]
fn preflight_rejects_an_unknown_mode_with_exit_2_naming_the_allowed_values() {
    let w = Worker::new();
    let out = w.preflight().args(["--mode", "both"]).output().unwrap();
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("--mode") && err.contains("\"both\""), "{err}");
    assert!(err.contains("codex, claude, universal, gemini"), "{err}");
    assert!(stdout(&out).is_empty());

    let out = w.preflight().env("MOONMIND_WORKER_RUNTIME", "both").output().unwrap();
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("MOONMIND_WORKER_RUNTIME") && err.contains("codex, claude, universal, gemini"));
}

#[test]
fn preflight_warns_about_a_credential_variable_that_wins_over_the_oauth_login() {
    for (mode, var) in [
        ("codex", "OPENAI_API_KEY"),
        ("codex", "CODEX_API_KEY"),
        ("claude", "ANTHROPIC_API_KEY"),
        ("claude", "ANTHROPIC_AUTH_TOKEN"),
        ("claude", "CLAUDE_CODE_OAUTH_TOKEN"),
    ] {
        let w = Worker::new();
        let (code, j) = w.json(&["--mode", mode], &[(var, "secret-CANARY-value")]);
        assert_eq!(code, 0, "{var}: {j:#}");
        let c = check(&j, mode, "env-credentials");
        assert_eq!(c["status"], "warn", "{var}");
        let detail = c["detail"].as_str().unwrap();
        assert!(detail.contains(var) && detail.contains("changes who pays"), "{detail}");
        assert!(c["fix"].as_str().unwrap().contains(&format!("unset {var}")));
        assert!(!j.to_string().contains("CANARY"));
    }
}

#[test]
fn preflight_fails_on_a_competing_credential_variable_when_auth_mode_is_oauth() {
    let w = Worker::new();
    let (code, j) = w.json(&[], &[("OPENAI_API_KEY", "sk-x"), ("MOONAUTH_AUTH_MODE", "oauth")]);
    assert_eq!(code, 4, "{j:#}");
    let c = check(&j, "codex", "env-credentials");
    assert_eq!(c["status"], "fail");
    assert!(c["fix"].as_str().unwrap().contains("MOONAUTH_AUTH_MODE=oauth"), "{c:#}");

    // The flag does the same, and values are trimmed and lower-cased.
    let (code, _) = w.json(
        &["--mode", "claude", "--auth-mode", " OAuth "],
        &[("ANTHROPIC_API_KEY", "k")],
    );
    assert_eq!(code, 4);
    // The flag wins over the variable.
    let (code, _) = w.json(
        &["--auth-mode", "auto"],
        &[("OPENAI_API_KEY", "k"), ("MOONAUTH_AUTH_MODE", "oauth")],
    );
    assert_eq!(code, 0);
}

#[test]
fn preflight_auth_mode_oauth_refuses_an_api_key_login_file() {
    let w = Worker::with("api-key", "valid-max");
    let (code, j) = w.json(&[], &[("MOONAUTH_AUTH_MODE", "oauth")]);
    assert_eq!(code, 4);
    let c = check(&j, "codex", "login");
    assert_eq!(c["status"], "fail");
    assert!(c["fix"].as_str().unwrap().contains("needs an OAuth login"), "{c:#}");
    let (code, _) = w.json(&[], &[]);
    assert_eq!(code, 0, "auto accepts the API key in the file");
}

#[test]
fn preflight_uses_the_environment_key_when_the_login_file_is_missing() {
    let w = Worker::with("missing", "missing");
    for (mode, var) in [("codex", "OPENAI_API_KEY"), ("claude", "ANTHROPIC_API_KEY")] {
        let (code, j) = w.json(&["--mode", mode], &[(var, "k")]);
        assert_eq!(code, 0, "{j:#}");
        let c = check(&j, mode, "login");
        assert_eq!(c["status"], "warn");
        assert!(c["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("using {var} from the environment")));

        // With MOONAUTH_AUTH_MODE=api-key the key is the intended credential: no warning at all.
        let (code, j) = w.json(&["--mode", mode], &[(var, "k"), ("MOONAUTH_AUTH_MODE", "api-key")]);
        assert_eq!(code, 0);
        assert!(checks(&j).iter().all(|(_, _, s)| s == "ok"), "{j:#}");

        // But oauth refuses it.
        let (code, _) = w.json(&["--mode", mode], &[(var, "k"), ("MOONAUTH_AUTH_MODE", "oauth")]);
        assert_eq!(code, 4);
    }
    // api-key mode with neither a key variable nor a key file fails.
    let (code, j) = w.json(&[], &[("MOONAUTH_AUTH_MODE", "api-key")]);
    assert_eq!(code, 4);
    assert!(check(&j, "codex", "login")["fix"]
        .as_str()
        .unwrap()
        .contains("OPENAI_API_KEY"));
}

#[test]
fn preflight_never_runs_the_clis_without_deep() {
    let w = Worker::new();
    let marker = w.sb.root().join("cli-ran");
    for name in ["codex", "claude", "gemini"] {
        w.sb.stand_in(name, &format!("touch {}", marker.display()));
    }
    for mode in ["codex", "claude", "universal", "gemini"] {
        let out = w.preflight().args(["--mode", mode]).output().unwrap();
        assert_eq!(code(&out), 0);
    }
    assert!(!marker.exists(), "a CLI was started without --deep");
    // The stand-ins do leave the marker when they run.
    w.preflight().arg("--deep").output().unwrap();
    assert!(marker.exists(), "the stand-in did not run under --deep");
}

// ---- --deep, against stand-in CLIs whose answers the tests choose ----

const CLAUDE_LOGGED_IN: &str = r#"cat <<'EOF'
{
  "loggedIn": true,
  "authMethod": "claude.ai",
  "apiProvider": "firstParty",
  "subscriptionType": "max"
}
EOF
exit 0"#;

const CLAUDE_LOGGED_OUT: &str = r#"printf '{\n  "loggedIn": false,\n  "authMethod": "none"\n}\n'; exit 1"#;

#[test]
fn preflight_deep_reports_agreement_with_the_status_commands() {
    let w = Worker::new();
    w.sb.stand_in(
        "codex",
        "echo 'WARNING: proceeding, even though we could not create PATH aliases' >&2\necho 'Logged in using ChatGPT' >&2",
    );
    w.sb.stand_in("claude", CLAUDE_LOGGED_IN);
    let (code, j) = w.json(&["--mode", "universal", "--deep"], &[]);
    assert_eq!(code, 0, "{j:#}");
    let c = check(&j, "codex", "cli-status");
    assert_eq!(c["status"], "ok");
    assert_eq!(
        c["detail"], "`codex login status` agrees: logged in (Logged in using ChatGPT)",
        "the summary skips the CLI's warnings"
    );
    let c = check(&j, "claude", "cli-status");
    assert_eq!(c["status"], "ok");
    assert_eq!(
        c["detail"], "`claude auth status` agrees: logged in (authMethod claude.ai, subscriptionType max)",
        "the summary reads the JSON, not its first line"
    );
}

#[test]
fn preflight_deep_fails_when_the_cli_says_not_logged_in_but_the_file_looks_usable() {
    let w = Worker::new();
    w.sb.stand_in("codex", "echo 'Not logged in' >&2; exit 1");
    w.sb.stand_in("claude", CLAUDE_LOGGED_OUT);
    for mode in ["codex", "claude"] {
        let (code, j) = w.json(&["--mode", mode, "--deep"], &[]);
        assert_eq!(code, 4, "{j:#}");
        let c = check(&j, mode, "cli-status");
        assert_eq!(c["status"], "fail");
        let detail = c["detail"].as_str().unwrap();
        assert!(
            detail.contains("says not logged in, moonauth read oauth-valid"),
            "{detail}"
        );
    }
}

#[test]
fn preflight_deep_explains_that_the_cli_does_not_check_expiry() {
    let w = Worker::with("chatgpt-valid", "expired-no-refresh");
    w.sb.stand_in("claude", CLAUDE_LOGGED_IN);
    let (code, j) = w.json(&["--mode", "claude", "--deep"], &[]);
    assert_eq!(code, 4, "the login check fails: {j:#}");
    let c = check(&j, "claude", "cli-status");
    assert_eq!(c["status"], "ok");
    assert!(c["detail"].as_str().unwrap().contains("does not check expiry"), "{c:#}");
}

#[test]
fn preflight_deep_warns_when_the_cli_accepts_what_moonauth_refuses() {
    // A malformed file the stand-in CLI still calls a login.
    let w = Worker::with("malformed", "valid-max");
    w.sb.stand_in("codex", "echo 'Logged in using ChatGPT'");
    let (code, j) = w.json(&["--deep"], &[]);
    assert_eq!(code, 4);
    let c = check(&j, "codex", "cli-status");
    assert_eq!(c["status"], "warn");
    assert!(
        c["detail"].as_str().unwrap().contains("moonauth says malformed"),
        "{c:#}"
    );
}

#[test]
fn preflight_deep_runs_the_cli_on_the_login_dir_without_stdin_or_credential_variables() {
    let w = Worker::new();
    w.sb.stand_in(
        "codex",
        r#"read -r line; echo "args=$* home=$CODEX_HOME key=${OPENAI_API_KEY:-unset} stdin=${line:-empty} telemetry=$DISABLE_TELEMETRY""#,
    );
    let (code, j) = w.json(
        &["--deep"],
        &[("OPENAI_API_KEY", "sk-x"), ("MOONAUTH_AUTH_MODE", "auto")],
    );
    assert_eq!(code, 0, "{j:#}");
    let detail = check(&j, "codex", "cli-status")["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("args=login status"), "{detail}");
    assert!(detail.contains(&format!("home={}", w.codex.display())), "{detail}");
    assert!(detail.contains("key=unset"), "the CLI must judge the file: {detail}");
    assert!(detail.contains("stdin=empty"), "{detail}");
    assert!(detail.contains("telemetry=1"), "{detail}");
}

#[test]
fn preflight_deep_gives_up_on_a_hanging_cli_after_the_status_timeout() {
    let w = Worker::new();
    // The stand-in and its child must both be killed: the process group goes.
    w.sb.stand_in("codex", "sleep 30 & sleep 30");
    let (code, j) = w.json(&["--deep"], &[("MOONAUTH_STATUS_TIMEOUT", "1s")]);
    assert_eq!(code, 4, "{j:#}");
    let c = check(&j, "codex", "cli-status");
    assert_eq!(c["status"], "fail");
    assert!(c["detail"].as_str().unwrap().contains("timed out after 1s"), "{c:#}");
    assert!(c["fix"].as_str().unwrap().contains("MOONAUTH_STATUS_TIMEOUT"));
}

#[test]
fn preflight_deep_summary_masks_tokens_and_survives_long_non_ascii_output() {
    let w = Worker::new();
    // A long line of 3-byte characters after a token; with three paddings one of them
    // puts a character across any fixed byte limit on the summary.
    for pad in ["", "a", "ab"] {
        let long = "€".repeat(150);
        w.sb.stand_in(
            "codex",
            &format!("echo 'API key configured - sk-proj-CANARY-moonauth-apikey {pad}{long}'"),
        );
        let out = w.preflight().args(["--deep", "--json"]).output().unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(stderr(&out).is_empty(), "{}", stderr(&out));
        let detail = check(&json(&out), "codex", "cli-status")["detail"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(detail.contains("API key configured - [redacted]"), "{detail}");
        assert!(!detail.contains("CANARY"), "{detail}");
    }
}

// ---- --wait ----

#[test]
fn preflight_wait_succeeds_once_a_login_appears() {
    let w = Worker::with("missing", "valid-max");
    let target = w.codex.join("auth.json");
    let bytes = fixture_login_file("codex", "chatgpt-valid");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        write_atomically(&target, &bytes);
    });
    let (code, j) = w.json(&["--wait=10s"], &[]);
    writer.join().unwrap();
    assert_eq!(code, 0, "{j:#}");
    assert!(j["rounds"].as_u64().unwrap() > 1, "{j:#}");
    assert_eq!(check(&j, "codex", "login")["login"]["class"], "oauth-valid");
}

#[test]
fn preflight_wait_gives_up_with_the_login_exit_code() {
    let w = Worker::with("missing", "valid-max");
    let out = w.preflight().arg("--wait=1s").output().unwrap();
    assert_eq!(code(&out), 4);
    let text = stdout(&out);
    assert!(
        text.contains("checks failed after") && text.contains("rounds"),
        "{text}"
    );
    assert!(
        stderr(&out).contains("waiting"),
        "progress goes to stderr: {}",
        stderr(&out)
    );

    let (code, j) = w.json(&["--wait=1s"], &[]);
    assert_eq!(code, 4);
    assert!(j["rounds"].as_u64().unwrap() >= 2, "{j:#}");
}

#[test]
fn preflight_wait_rejects_a_bad_duration_with_exit_2() {
    let w = Worker::new();
    let out = w.preflight().arg("--wait=later").output().unwrap();
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--wait \"later\""), "{}", stderr(&out));
}

#[test]
fn preflight_logs_go_to_stderr_and_only_the_report_to_stdout() {
    let w = Worker::new();
    let out = w.preflight().args(["--json", "-vvv"]).output().unwrap();
    assert_eq!(code(&out), 0);
    json(&out); // stdout is exactly one JSON document
    let out = w
        .preflight()
        .args(["--json", "-q"])
        .env("OPENAI_API_KEY", "k")
        .output()
        .unwrap();
    assert!(stderr(&out).is_empty(), "-q prints only errors: {}", stderr(&out));
}

// ---- far-future expiries (hardening: these used to panic with exit 101) ----

#[test]
fn preflight_passes_a_far_future_expiry_and_execs_the_worker() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let w = Worker::new();
    std::fs::write(
        w.claude.join(".credentials.json"),
        r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-CANARY","refreshToken":"sk-ant-ort01-CANARY","expiresAt":253402300800000,"scopes":["user:inference"]}}"#,
    )
    .unwrap();
    let jwt = |claims: &str| format!("eyJhbGciOiJub25lIn0.{}.sig", URL_SAFE_NO_PAD.encode(claims));
    let exp = r#"{"exp":18446744073709551615}"#;
    std::fs::write(
        w.codex.join("auth.json"),
        format!(
            r#"{{"OPENAI_API_KEY":null,"tokens":{{"id_token":"{}","access_token":"{}","refresh_token":"rt_CANARY"}}}}"#,
            jwt(exp),
            jwt(exp)
        ),
    )
    .unwrap();

    let (status, j) = w.json(&["--mode", "universal"], &[]);
    assert_eq!(status, 0, "{j:#}");
    for runtime in ["claude", "codex"] {
        let detail = check(&j, runtime, "login")["detail"].as_str().unwrap().to_string();
        assert!(
            detail.contains("far future") && detail.contains("9999-12-31T23:59:59Z"),
            "{detail}"
        );
    }

    // The container entrypoint: every check passes, so the worker must run.
    let out = w
        .preflight()
        .args(["--mode", "universal", "--", "/bin/sh", "-c", "echo worker-ran"])
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(code(&out), 0, "{text}");
    assert!(stdout(&out).contains("worker-ran"), "{text}");
    assert!(!text.contains("CANARY"), "{text}");
}

#[test]
fn preflight_wait_with_a_separate_value_hints_at_the_equals_sign() {
    let w = Worker::new();
    let out = w.preflight().args(["--wait", "5s"]).output().unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("hint: write --wait=5s"), "{}", stderr(&out));
}

#[test]
fn preflight_names_the_claude_account_from_claude_json() {
    let w = Worker::new();
    std::fs::write(
        w.claude.join(".claude.json"),
        r#"{"oauthAccount":{"emailAddress":"claude-dev@example.com","organizationName":"Acme"}}"#,
    )
    .unwrap();
    let (code, j) = w.json(&["--mode", "claude"], &[]);
    assert_eq!(code, 0, "{j:#}");
    let login = check(&j, "claude", "login");
    assert!(
        login["detail"].as_str().unwrap().contains("claude-dev@example.com"),
        "{login:#}"
    );
}

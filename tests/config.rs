//! Configuration through the binary: every invalid variable is exit 2 naming it, for
//! every command; precedence is flags > process environment > `.env` > defaults.

use crate::support::sandbox::*;

/// Every variable moonauth validates, with a value it must refuse.
const INVALID: [(&str, &str); 13] = [
    ("MOONMIND_WORKER_RUNTIME", "gpt"),
    ("MOONMIND_WORKER_RUNTIME", "codex,claude"),
    ("MOONMIND_DEFAULT_TASK_RUNTIME", "universal"),
    ("MOONMIND_DEFAULT_TASK_RUNTIME", "bogus"),
    ("SPEC_WORKFLOW_DEFAULT_TASK_RUNTIME", "bogus"),
    ("MOONAUTH_AUTH_MODE", "sometimes"),
    ("MOONAUTH_EXPIRY_LEAD", "soon"),
    ("MOONAUTH_STATUS_TIMEOUT", "0"),
    ("MOONAUTH_STATUS_TIMEOUT", "forever"),
    ("CODEX_VOLUME_NAME", "bad name"),
    ("CLAUDE_VOLUME_NAME", "/abs"),
    ("CLAUDE_VOLUME_NAME", "x"),
    ("MOONAUTH_NOW", "yesterday"),
];

/// The commands, each with what it needs to succeed in a sandbox when nothing is wrong.
fn commands(sb: &Sandbox) -> Vec<(&'static str, assert_cmd::Command)> {
    let codex = sb.login("codex", "chatgpt-valid");
    let claude = sb.login("claude", "valid-max");
    sb.stand_ins(&["codex", "claude", "gemini"]);
    let with_dirs = |args: &[&str]| {
        let mut cmd = sb.moonauth();
        cmd.args(args)
            .env("CODEX_HOME", &codex)
            .env("CLAUDE_CONFIG_DIR", &claude);
        cmd
    };
    vec![
        ("preflight", with_dirs(&["preflight", "--mode", "universal"])),
        ("preflight --json", with_dirs(&["preflight", "--json"])),
        // Flags that win over the variables must not mask an invalid variable.
        (
            "preflight with flags",
            with_dirs(&["preflight", "--mode", "codex", "--lead", "1m", "--auth-mode", "auto"]),
        ),
        ("inspect --lead", with_dirs(&["inspect", "codex", "--lead", "1m"])),
        ("inspect codex", with_dirs(&["inspect", "codex"])),
        ("inspect claude --json", with_dirs(&["inspect", "claude", "--json"])),
        ("runtime resolve", with_dirs(&["runtime", "resolve"])),
        (
            "runtime resolve --explicit",
            with_dirs(&["runtime", "resolve", "--explicit", "claude"]),
        ),
        ("runtime resolve --payload", {
            let mut cmd = with_dirs(&["runtime", "resolve", "--payload", "-"]);
            cmd.write_stdin(r#"{"task":{}}"#);
            cmd
        }),
    ]
}

#[test]
fn every_command_succeeds_in_the_sandbox_without_a_bad_variable() {
    // The control for the test below: the same commands pass when nothing is wrong.
    let sb = Sandbox::new();
    for (name, mut cmd) in commands(&sb) {
        let out = cmd.output().unwrap();
        assert_eq!(code(&out), 0, "{name}: {}{}", stdout(&out), stderr(&out));
    }
}

#[test]
fn every_invalid_variable_is_exit_2_naming_it_for_every_command() {
    for (var, value) in INVALID {
        let sb = Sandbox::new();
        for (name, mut cmd) in commands(&sb) {
            let out = cmd.env(var, value).output().unwrap();
            let err = stderr(&out);
            assert_eq!(code(&out), 2, "{name} with {var}={value:?}: {}{err}", stdout(&out));
            assert!(
                err.contains(&format!("moonauth: error: {var}={value:?} is not valid")),
                "{name} with {var}={value:?}: {err}"
            );
            assert!(err.contains(&format!("hint: set {var}")), "{err}");
            assert!(stdout(&out).is_empty(), "{name}: nothing on stdout on a usage error");
        }
    }
}

#[test]
fn invalid_variables_from_the_env_file_are_named_too() {
    let sb = Sandbox::new();
    let file = sb.root().join("bad.env");
    std::fs::write(&file, "MOONAUTH_EXPIRY_LEAD=soon\n").unwrap();
    let out = sb
        .moonauth()
        .arg("--env-file")
        .arg(&file)
        .args(["inspect", "codex"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("MOONAUTH_EXPIRY_LEAD=\"soon\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn valid_values_are_trimmed_and_case_insensitive() {
    let sb = Sandbox::new();
    for (name, mut cmd) in commands(&sb) {
        let out = cmd
            .env("MOONMIND_WORKER_RUNTIME", " Codex ")
            .env("MOONMIND_DEFAULT_TASK_RUNTIME", "\tCLAUDE ")
            .env("MOONAUTH_AUTH_MODE", " API-KEY ")
            .env("MOONAUTH_EXPIRY_LEAD", " 90s ")
            .env("MOONAUTH_STATUS_TIMEOUT", "30")
            .env("CODEX_VOLUME_NAME", "fleet.codex-1")
            .env("CLAUDE_VOLUME_NAME", "fleet_claude")
            .env("OPENAI_API_KEY", "k")
            .env("ANTHROPIC_API_KEY", "k")
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
    }
}

#[test]
fn invalid_flag_values_are_exit_2_naming_the_flag() {
    let sb = Sandbox::new();
    for (args, flag) in [
        (&["preflight", "--mode", "all"][..], "--mode"),
        (&["preflight", "--lead", "soon"][..], "--lead"),
        (&["preflight", "--auth-mode", "any"][..], "--auth-mode"),
        (&["preflight", "--wait=ages"][..], "--wait"),
        (&["inspect", "codex", "--lead", "x"][..], "--lead"),
        (&["runtime", "resolve", "--explicit", "gpt"][..], "--explicit"),
    ] {
        let out = sb.moonauth().args(args).output().unwrap();
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(stderr(&out).contains(flag), "{args:?}: {}", stderr(&out));
    }
    // clap's own usage errors use the same code.
    let out = sb.moonauth().args(["preflight", "--no-such-flag"]).output().unwrap();
    assert_eq!(code(&out), 2);
    let out = sb.moonauth().output().unwrap();
    assert_eq!(code(&out), 2);
}

/// The worker mode preflight reports, and where it says it came from.
fn mode_of(mut cmd: assert_cmd::Command) -> (String, String) {
    let out = cmd.output().unwrap();
    let j = json(&out);
    (
        j["mode"].as_str().unwrap().to_string(),
        j["mode_source"].as_str().unwrap().to_string(),
    )
}

#[test]
fn precedence_is_flag_then_process_env_then_env_file_then_default() {
    let sb = Sandbox::new();
    sb.stand_ins(&["codex", "claude", "gemini"]);
    let file = sb.root().join("settings.env");
    std::fs::write(&file, "# comment\nMOONMIND_WORKER_RUNTIME=gemini\n").unwrap();
    let base = |with_file: bool| {
        let mut cmd = sb.moonauth();
        if with_file {
            cmd.arg("--env-file").arg(&file);
        }
        cmd.args(["preflight", "--json"]);
        cmd
    };

    assert_eq!(mode_of(base(false)), ("codex".into(), "default".into()));
    assert_eq!(
        mode_of(base(true)),
        ("gemini".into(), ".env MOONMIND_WORKER_RUNTIME".into())
    );
    let mut cmd = base(true);
    cmd.env("MOONMIND_WORKER_RUNTIME", "claude");
    assert_eq!(mode_of(cmd), ("claude".into(), "env MOONMIND_WORKER_RUNTIME".into()));
    let mut cmd = base(true);
    cmd.env("MOONMIND_WORKER_RUNTIME", "claude")
        .args(["--mode", "universal"]);
    assert_eq!(mode_of(cmd), ("universal".into(), "flag --mode".into()));
}

#[test]
fn login_directories_come_from_the_env_file_under_the_process_environment() {
    let sb = Sandbox::new();
    sb.stand_ins(&["codex"]);
    let from_file = sb.login("codex", "chatgpt-valid");
    let from_process = sb.login("codex", "api-key");
    let file = sb.root().join("dirs.env");
    std::fs::write(&file, format!("CODEX_HOME={}\n", from_file.display())).unwrap();

    let out = sb
        .moonauth()
        .arg("--env-file")
        .arg(&file)
        .args(["preflight", "--json"])
        .output()
        .unwrap();
    let j = json(&out);
    let c = check(&j, "codex", "login-dir");
    assert!(c["detail"].as_str().unwrap().contains("(.env CODEX_HOME)"), "{c:#}");
    assert_eq!(
        check(&j, "codex", "login")["login"]["dir"],
        from_file.display().to_string()
    );

    let out = sb
        .moonauth()
        .arg("--env-file")
        .arg(&file)
        .args(["preflight", "--json"])
        .env("CODEX_HOME", &from_process)
        .output()
        .unwrap();
    let j = json(&out);
    assert_eq!(check(&j, "codex", "login")["login"]["class"], "api-key");
}

#[test]
fn a_dot_env_in_the_working_directory_is_read_when_present() {
    let sb = Sandbox::new();
    sb.stand_ins(&["claude"]);
    std::fs::write(sb.cwd().join(".env"), "MOONMIND_WORKER_RUNTIME=claude\n").unwrap();
    let mut cmd = sb.moonauth();
    cmd.args(["preflight", "--json"]);
    assert_eq!(mode_of(cmd), ("claude".into(), ".env MOONMIND_WORKER_RUNTIME".into()));
}

#[test]
fn a_missing_env_file_is_exit_2_naming_it() {
    let sb = Sandbox::new();
    let missing = sb.root().join("nope.env");
    for args in [
        &["preflight"][..],
        &["inspect", "codex"][..],
        &["runtime", "resolve"][..],
    ] {
        let out = sb
            .moonauth()
            .arg("--env-file")
            .arg(&missing)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("cannot read the env file {}", missing.display())),
            "{err}"
        );
    }
}

#[test]
fn an_unparsable_env_file_is_exit_2() {
    let sb = Sandbox::new();
    let file = sb.root().join("broken.env");
    std::fs::write(&file, "MOONMIND_WORKER_RUNTIME='unterminated\n").unwrap();
    let out = sb
        .moonauth()
        .arg("--env-file")
        .arg(&file)
        .args(["runtime", "resolve"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("broken.env"), "{}", stderr(&out));
}

#[test]
fn the_env_template_copied_to_dot_env_is_read_without_error() {
    // The README's compose quick start: `cp .env-template .env`, then any command.
    let sb = Sandbox::new();
    let template = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".env-template");
    std::fs::copy(&template, sb.cwd().join(".env")).unwrap();
    for args in [&["runtime", "resolve"][..], &["accounts", "ls"][..]] {
        let out = sb.moonauth().args(args).output().unwrap();
        assert_eq!(code(&out), 0, "moonauth {args:?}: {}", stderr(&out));
    }
}

#[test]
fn an_unparsable_env_file_names_the_line_and_variable_but_never_the_value() {
    let sb = Sandbox::new();
    let file = sb.root().join("broken.env");
    std::fs::write(
        &file,
        "# settings\nMOONMIND_WORKER_RUNTIME=codex\nMY_KEY=sk-ant-api03-CANARYenvfile two words\n",
    )
    .unwrap();
    let out = sb
        .moonauth()
        .arg("--env-file")
        .arg(&file)
        .args(["runtime", "resolve"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("line 3 (MY_KEY)"), "{err}");
    assert!(err.contains("must be quoted"), "{err}");
    assert!(!err.contains("CANARY"), "{err}");
}

//! One JSON convention for every command: each `--json` report carries `schema`
//! (`moonauth.<command>.v1`) and `ok`/`exit_code` that agree with the process's exit
//! code. Every command runs here in a sandbox; the volume commands need the engine.

use std::process::{Command, Stdio};

use crate::support::sandbox::*;

/// Checks one command's JSON against the convention; `schema` is the expected name.
fn conforms(what: &str, out: &std::process::Output, schema: &str) {
    let j = json(out);
    let exit = code(out);
    assert_eq!(j["schema"], schema, "{what}: schema\n{j:#}");
    assert_eq!(
        j["exit_code"].as_i64(),
        Some(i64::from(exit)),
        "{what}: exit_code vs exit {exit}\n{j:#}"
    );
    assert_eq!(j["ok"].as_bool(), Some(exit == 0), "{what}: ok vs exit {exit}\n{j:#}");
}

#[test]
fn every_command_without_docker_follows_the_json_convention() {
    let sb = Sandbox::new();
    sb.stand_ins(&["codex", "claude"]);
    let claude_ok = sb.login("claude", "valid-max");
    let claude_bad = sb.login("claude", "expired-no-refresh");
    let codex_ok = sb.login("codex", "chatgpt-valid");
    let codex_bad = sb.login("codex", "malformed");
    let state = sb.empty_dir("state");

    for (runtime, dir, expect) in [
        ("claude", &claude_ok, 0),
        ("claude", &claude_bad, 4),
        ("codex", &codex_ok, 0),
        ("codex", &codex_bad, 4),
    ] {
        let out = sb
            .moonauth()
            .args(["inspect", runtime, "--json", "--dir"])
            .arg(dir)
            .output()
            .unwrap();
        assert_eq!(code(&out), expect, "{}", stderr(&out));
        conforms(&format!("inspect {runtime}"), &out, "moonauth.inspect.v1");
    }
    for (codex, expect) in [(&codex_ok, 0), (&codex_bad, 4)] {
        let out = sb
            .moonauth()
            .args(["preflight", "--mode", "universal", "--json"])
            .env("CODEX_HOME", codex)
            .env("CLAUDE_CONFIG_DIR", &claude_ok)
            .output()
            .unwrap();
        assert_eq!(code(&out), expect, "{}", stdout(&out));
        conforms("preflight", &out, "moonauth.preflight.v1");
    }
    let out = sb.moonauth().args(["runtime", "resolve", "--json"]).output().unwrap();
    conforms("runtime resolve", &out, "moonauth.runtime-resolve.v1");

    for (pairs, expect) in [
        (
            vec![
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_EVENT_NAME", "push"),
                ("CLAUDE_CODE_OAUTH_TOKEN", "t"),
            ],
            0,
        ),
        (
            vec![("GITHUB_ACTIONS", "true"), ("GITHUB_EVENT_NAME", "pull_request")],
            4,
        ),
    ] {
        let out = sb
            .moonauth()
            .args(["ci", "check", "--json"])
            .envs(pairs)
            .output()
            .unwrap();
        assert_eq!(code(&out), expect, "{}", stdout(&out));
        conforms("ci check", &out, "moonauth.ci.v1");
    }
    // Rotation's reports (issue 14): pick (with nothing to pick: exit 10), force,
    // settings, the decision log.
    let rot = |args: &[&str]| {
        sb.moonauth()
            .args(args)
            .env("MOONAUTH_STATE_DIR", &state)
            .output()
            .unwrap()
    };
    let out = rot(&[
        "accounts",
        "add",
        "w",
        "--runtime",
        "claude",
        "--json",
        "--dir",
        claude_ok.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = rot(&["accounts", "pick", "codex", "--json"]);
    assert_eq!(code(&out), 10, "{}", stderr(&out));
    conforms("accounts pick (none)", &out, "moonauth.accounts-pick.v1");
    let out = rot(&["accounts", "pick", "claude", "--json"]);
    conforms("accounts pick", &out, "moonauth.accounts-pick.v1");
    let out = rot(&["accounts", "force", "w", "--json"]);
    conforms("accounts force", &out, "moonauth.accounts-force.v1");
    let out = rot(&["accounts", "force", "--clear", "--json"]);
    conforms("accounts force --clear", &out, "moonauth.accounts-force.v1");
    for args in [
        &["settings", "get", "--json"][..],
        &["settings", "set", "preset", "aggressive", "--json"],
        &["settings", "reset", "--json"],
    ] {
        let out = rot(args);
        conforms(&args.join(" "), &out, "moonauth.settings.v1");
    }
    let out = rot(&["accounts", "log", "--json"]);
    conforms("accounts log", &out, "moonauth.accounts-log.v1");
    let out = rot(&["accounts", "rm", "w"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // Every `accounts` subcommand, on a store the test fills, and `pick` both when it
    // picks (0) and when nothing can be picked (10).
    let accounts = |args: &[&str]| {
        sb.moonauth()
            .arg("accounts")
            .args(args)
            .arg("--json")
            .env("MOONAUTH_STATE_DIR", &state)
            .output()
            .unwrap()
    };
    let claude_dir = claude_ok.to_str().unwrap();
    for (args, schema, expect) in [
        (&["ls"][..], "moonauth.accounts.v1", 0),
        (&["pick", "claude", "--peek"], "moonauth.accounts-pick.v1", 10),
        (
            &["add", "main", "--runtime", "claude", "--dir", claude_dir],
            "moonauth.accounts-change.v1",
            0,
        ),
        (&["ls"], "moonauth.accounts.v1", 0),
        (&["pick", "claude"], "moonauth.accounts-pick.v1", 0),
        (&["disable", "main"], "moonauth.accounts-change.v1", 0),
        (&["pick", "claude"], "moonauth.accounts-pick.v1", 10),
        (&["enable", "main"], "moonauth.accounts-change.v1", 0),
        (&["rm", "main"], "moonauth.accounts-change.v1", 0),
    ] {
        let out = accounts(args);
        assert_eq!(
            code(&out),
            expect,
            "accounts {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        conforms(&format!("accounts {}", args.join(" ")), &out, schema);
    }

    // `renew`: a fresh login (0), a dry run (0), and a named login that is missing (4).
    let empty = sb.empty_dir("no-login");
    for (args, dir, expect) in [
        (&["renew", "codex"][..], &codex_ok, 0),
        (&["renew", "codex", "--dry-run", "--force"], &codex_ok, 0),
        (&["renew", "codex"], &empty, 4),
    ] {
        let out = sb
            .moonauth()
            .args(args)
            .args(["--json", "--dir"])
            .arg(dir)
            .env("MOONAUTH_STATE_DIR", &state)
            .output()
            .unwrap();
        assert_eq!(code(&out), expect, "{args:?}: {}{}", stdout(&out), stderr(&out));
        conforms(&args.join(" "), &out, "moonauth.renew.v1");
    }
}

fn docker_answers() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn every_volume_command_follows_the_json_convention() {
    if !docker_answers() {
        if std::env::var("MOONAUTH_REQUIRE_DOCKER").as_deref() == Ok("1") {
            panic!("MOONAUTH_REQUIRE_DOCKER=1 but no Docker engine answers");
        }
        eprintln!("SKIP: no Docker engine");
        return;
    }
    let sb = Sandbox::new();
    let name = format!("mt-json-{}", std::process::id());
    let run = |args: &[&str]| {
        let mut cmd = sb.moonauth();
        cmd.args(args)
            .env("CLAUDE_VOLUME_NAME", &name)
            .env("CODEX_VOLUME_NAME", format!("{name}-codex"));
        if let Ok(host) = std::env::var("DOCKER_HOST") {
            cmd.env("DOCKER_HOST", host);
        }
        cmd.output().unwrap()
    };
    // The configured volumes do not exist: status fails (4), ls still lists (0).
    let out = run(&["status", "claude", "--json"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    conforms("status", &out, "moonauth.status.v1");
    let out = run(&["volumes", "ls", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    conforms("volumes ls", &out, "moonauth.volumes-ls.v1");
    let out = run(&["volumes", "ensure", "claude", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    conforms("volumes ensure", &out, "moonauth.volumes-ensure.v1");
    let out = run(&["volumes", "rm", "--force", "--json", &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    conforms("volumes rm", &out, "moonauth.volumes-rm.v1");
    let _ = Command::new("docker").args(["volume", "rm", "-f", &name]).output();
}

#[test]
fn help_describes_every_json_flag_and_the_main_commands_show_examples() {
    let sb = Sandbox::new();
    let help = |args: &[&str]| {
        let out = sb.moonauth().args(args).arg("--help").output().unwrap();
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    for args in [
        &["preflight"][..],
        &["inspect"],
        &["status"],
        &["volumes", "ensure"],
        &["volumes", "ls"],
        &["volumes", "rm"],
        &["login"],
        &["init"],
        &["renew"],
        &["runtime", "resolve"],
        &["accounts", "add"],
        &["accounts", "ls"],
        &["accounts", "enable"],
        &["accounts", "pick"],
        &["accounts", "force"],
        &["accounts", "log"],
        &["settings", "get"],
        &["settings", "set"],
        &["settings", "reset"],
    ] {
        let text = help(args);
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("--json"))
            .unwrap_or_else(|| panic!("`moonauth {} --help` has no --json:\n{text}", args.join(" ")));
        assert!(
            line.trim_start().trim_start_matches("--json").trim().len() > 5,
            "`moonauth {} --help`: --json has no description:\n{text}",
            args.join(" ")
        );
    }
    for name in [
        "preflight",
        "inspect",
        "status",
        "volumes",
        "login",
        "accounts",
        "run",
        "renew",
        "settings",
    ] {
        let text = help(&[name]);
        assert!(
            text.contains("Examples:") && text.contains(&format!("  moonauth {name}")),
            "`moonauth {name} --help` shows no examples:\n{text}"
        );
    }
}

//! `moonauth completions SHELL` and `moonauth man`: generated from the clap definitions,
//! so each names every subcommand; bash's script really registers a completion.

use std::process::Command;

use crate::support::moonauth_bin;
use crate::support::sandbox::find_program;

const SUBCOMMANDS: [&str; 14] = [
    "preflight",
    "inspect",
    "runtime",
    "status",
    "volumes",
    "login",
    "init",
    "accounts",
    "run",
    "renew",
    "doctor",
    "completions",
    "man",
    "help",
];

fn moonauth(args: &[&str]) -> String {
    let out = Command::new(moonauth_bin()).args(args).output().expect("run moonauth");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn each_shells_completion_script_names_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let script = moonauth(&["completions", shell]);
        assert!(!script.trim().is_empty(), "{shell}: empty script");
        for sub in SUBCOMMANDS.iter().filter(|s| **s != "help") {
            assert!(script.contains(sub), "{shell}: {sub} missing");
        }
    }
}

#[test]
fn the_bash_script_registers_a_completion_for_moonauth() {
    let Some(bash) = find_program("bash") else {
        eprintln!("SKIP: no bash");
        return;
    };
    let script = moonauth(&["completions", "bash"]);
    let out = Command::new(bash)
        .args(["-c", "source /dev/stdin && complete -p moonauth"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(script.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let registered = String::from_utf8_lossy(&out.stdout);
    assert!(
        registered.contains("complete") && registered.contains("moonauth"),
        "{registered}"
    );
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = Command::new(moonauth_bin())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_man_page_has_a_title_and_every_subcommand() {
    let page = moonauth(&["man"]);
    assert!(page.contains(".TH moonauth 1"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(page.contains(sub), "{sub} missing from the man page");
    }
    assert!(
        !page.contains("internal"),
        "the hidden internal command is not documented"
    );
}

#[test]
fn man_renders_the_page_when_installed() {
    let Some(man) = find_program("man") else {
        eprintln!("SKIP: man is not installed");
        return;
    };
    let page = moonauth(&["man"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("moonauth.1");
    std::fs::write(&file, page).unwrap();
    let out = Command::new(man)
        .arg("-l")
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("doctor") && text.contains("completions"), "{text}");
}

#[test]
fn a_closed_stdout_ends_completions_and_man_quietly() {
    for args in [&["completions", "bash"][..], &["man"][..]] {
        let mut child = Command::new(moonauth_bin())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

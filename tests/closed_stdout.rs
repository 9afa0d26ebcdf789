//! A closed stdout (`moonauth inspect … | head -c1` where the reader is gone) ends
//! quietly: the command's own exit code, nothing on stderr, no panic, no signal.

use std::process::Stdio;

use crate::support::sandbox::*;

/// Runs `cmd` with stdout a pipe whose read end is already closed.
fn run_with_closed_stdout(mut cmd: std::process::Command, stdin: Option<&str>) -> std::process::Output {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    cmd.stdout(Stdio::from(write)).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_stdout_is_not_an_error_for_any_command() {
    let sb = Sandbox::new();
    sb.stand_ins(&["codex", "claude"]);
    let codex = sb.login("codex", "chatgpt-valid");
    let claude = sb.login("claude", "malformed");
    let cases: [(&[&str], Option<&str>, i32); 8] = [
        (&["inspect", "codex"], None, 0),
        (&["inspect", "codex", "--json"], None, 0),
        (&["inspect", "claude"], None, 4),
        (&["preflight", "--mode", "universal"], None, 4),
        (&["preflight", "--json"], None, 0),
        (&["runtime", "resolve"], None, 0),
        (&["runtime", "resolve", "--json"], None, 0),
        (
            &["runtime", "resolve", "--payload", "-"],
            Some(r#"{"task":{"instructions":"x"}}"#),
            0,
        ),
    ];
    for (args, stdin, want) in cases {
        let mut cmd = sb.std_moonauth();
        cmd.args(args)
            .env("CODEX_HOME", &codex)
            .env("CLAUDE_CONFIG_DIR", &claude);
        let out = run_with_closed_stdout(cmd, stdin);
        assert_eq!(
            out.status.code(),
            Some(want),
            "{args:?}: {:?} {}",
            out.status,
            stderr(&out)
        );
        assert!(stderr(&out).is_empty(), "{args:?}: {}", stderr(&out));
    }
}

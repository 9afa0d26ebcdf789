//! `moonauth preflight -- CMD`: on success the process becomes the worker command
//! (same PID, its exit status, its signals), with the login directories and `.env`
//! values in its environment; on failure the command never starts.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;

use crate::support::moonauth_bin;
use crate::support::sandbox::*;

struct Worker {
    sb: Sandbox,
    codex: PathBuf,
    claude: PathBuf,
}

impl Worker {
    fn new() -> Self {
        let sb = Sandbox::new();
        sb.stand_ins(&["codex", "claude", "gemini"]);
        let codex = sb.login("codex", "chatgpt-valid");
        let claude = sb.login("claude", "valid-max");
        Worker { sb, codex, claude }
    }

    /// `moonauth preflight` (universal) with the login dirs given through MoonMind's
    /// variables, which the CLIs themselves do not read.
    fn preflight(&self) -> std::process::Command {
        let mut cmd = self.sb.std_moonauth();
        cmd.args(["preflight", "--mode", "universal"])
            .env("CODEX_VOLUME_PATH", &self.codex)
            .env("CLAUDE_HOME", &self.claude);
        cmd
    }
}

/// Runs `sh -c script` as the worker command and returns its output.
fn run_worker(mut cmd: std::process::Command, script: &str) -> std::process::Output {
    cmd.args(["--", "/bin/sh", "-c", script]);
    cmd.stdin(Stdio::null()).output().unwrap()
}

#[test]
fn exec_replaces_the_moonauth_process_with_the_worker() {
    let w = Worker::new();
    let mut cmd = w.preflight();
    cmd.args(["--", "/bin/sh", "-c", "echo $$"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The shell's own PID is the PID moonauth was started with: exec, not a child.
    assert_eq!(stdout(&out).trim(), pid.to_string());
    // The report went to stderr so the worker owns stdout.
    assert!(stderr(&out).contains("ready: 6 checks passed"), "{}", stderr(&out));
}

#[test]
fn exec_hands_on_the_worker_exit_status_and_signals() {
    let w = Worker::new();
    let out = run_worker(w.preflight(), "exit 7");
    assert_eq!(out.status.code(), Some(7));

    let out = run_worker(w.preflight(), "kill -TERM $$");
    assert_eq!(out.status.signal(), Some(15), "{:?}", out.status);
}

#[test]
fn exec_makes_the_worker_pid_1_in_a_new_pid_namespace() {
    if !is_root() {
        eprintln!("skipped: a new PID namespace needs root");
        return;
    }
    let w = Worker::new();
    let unshare = find_program("unshare").expect("unshare (util-linux) is installed");
    let mut cmd = std::process::Command::new(unshare);
    cmd.args(["--pid", "--fork", "--mount-proc"])
        .arg(moonauth_bin())
        .args([
            "preflight",
            "--mode",
            "universal",
            "--",
            "/bin/sh",
            "-c",
            "echo $$; /bin/cat /proc/1/cmdline",
        ])
        .env_clear()
        .env("PATH", w.sb.bin())
        .env("CODEX_HOME", &w.codex)
        .env("CLAUDE_CONFIG_DIR", &w.claude)
        .current_dir(w.sb.cwd())
        .stdin(Stdio::null());
    let out = cmd.output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("1"), "{text}");
    // PID 1 is the worker itself, not moonauth waiting for it.
    assert!(lines.next().unwrap_or("").starts_with("/bin/sh"), "{text:?}");
}

#[test]
fn exec_sets_claude_config_dir_and_codex_home_for_the_worker() {
    let w = Worker::new();
    let out = run_worker(
        w.preflight(),
        r#"echo "claude=$CLAUDE_CONFIG_DIR"; echo "codex=$CODEX_HOME""#,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("claude={}\ncodex={}\n", w.claude.display(), w.codex.display())
    );
}

#[test]
fn exec_leaves_claude_config_dir_and_codex_home_alone_when_set() {
    let w = Worker::new();
    // Surrounding blanks: moonauth trims for its own checks, but the worker must get
    // the variable exactly as it was, not moonauth's version of it.
    let claude = format!(" {} ", w.claude.display());
    let codex = format!("{} ", w.codex.display());
    let mut cmd = w.preflight();
    cmd.env("CLAUDE_CONFIG_DIR", &claude)
        .env("CODEX_HOME", &codex)
        .arg("--json");
    let out = run_worker(cmd, r#"echo "claude=[$CLAUDE_CONFIG_DIR]"; echo "codex=[$CODEX_HOME]""#);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("claude=[{claude}]\ncodex=[{codex}]\n"));
    // With a worker command the JSON report goes to stderr, and says it set nothing.
    let report: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(report["exec_env"], serde_json::json!({}));
}

#[test]
fn exec_sets_only_the_directories_of_the_checked_runtimes() {
    let w = Worker::new();
    let mut cmd = w.sb.std_moonauth();
    cmd.args(["preflight", "--mode", "codex"])
        .env("CODEX_VOLUME_PATH", &w.codex);
    let out = run_worker(cmd, r#"echo "claude=${CLAUDE_CONFIG_DIR-unset} codex=$CODEX_HOME""#);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("claude=unset codex={}\n", w.codex.display()));
}

#[test]
fn exec_passes_env_file_values_to_the_worker_under_process_values() {
    let w = Worker::new();
    let env_file = w.sb.root().join("worker.env");
    std::fs::write(
        &env_file,
        format!(
            "CODEX_HOME={}\nCLAUDE_CONFIG_DIR={}\nFROM_FILE=file-value\nBOTH=file-value\n",
            w.codex.display(),
            w.claude.display()
        ),
    )
    .unwrap();
    let mut cmd = w.sb.std_moonauth();
    cmd.arg("--env-file")
        .arg(&env_file)
        .args(["preflight", "--mode", "universal"])
        .env("BOTH", "process-value");
    let out = run_worker(
        cmd,
        r#"echo "$FROM_FILE $BOTH"; echo "$CODEX_HOME"; echo "$CLAUDE_CONFIG_DIR""#,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "file-value process-value\n{}\n{}\n",
            w.codex.display(),
            w.claude.display()
        )
    );
}

#[test]
fn exec_never_starts_the_worker_when_a_check_fails() {
    let w = Worker::new();
    let marker = w.sb.root().join("worker-ran");
    let script = format!("/usr/bin/touch {}", marker.display());
    let gone = w.sb.root().join("gone");
    type Case<'a> = (&'a str, i32, Vec<(&'a str, String)>);
    let cases: Vec<Case> = vec![
        (
            "cli missing",
            3,
            vec![("PATH", w.sb.root().join("empty-bin").display().to_string())],
        ),
        (
            "login unusable",
            4,
            vec![("CLAUDE_HOME", w.sb.login("claude", "malformed").display().to_string())],
        ),
        (
            "login dir missing",
            5,
            vec![("CODEX_VOLUME_PATH", gone.display().to_string())],
        ),
        ("bad configuration", 2, vec![("MOONAUTH_AUTH_MODE", "sometimes".into())]),
        (
            "competing key under oauth",
            4,
            vec![("MOONAUTH_AUTH_MODE", "oauth".into()), ("OPENAI_API_KEY", "k".into())],
        ),
    ];
    for (what, want, env) in cases {
        let mut cmd = w.preflight();
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = run_worker(cmd, &script);
        assert_eq!(code(&out), want, "{what}: {}", stderr(&out));
        assert!(!marker.exists(), "{what}: the worker ran");
        assert!(stdout(&out).is_empty(), "{what}: {}", stdout(&out));
    }
    // The same command does run when the checks pass.
    let out = run_worker(w.preflight(), &script);
    assert_eq!(code(&out), 0);
    assert!(marker.exists());
}

#[test]
fn exec_of_a_missing_command_exits_127() {
    let w = Worker::new();
    for program in ["no-such-worker", "/nonexistent/worker"] {
        let mut cmd = w.preflight();
        cmd.args(["--", program, "--flag"]);
        let out = cmd.output().unwrap();
        assert_eq!(code(&out), 127, "{program}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("worker command {program:?} was not found")),
            "{err}"
        );
        assert!(err.contains("hint:"), "{err}");
    }
}

#[test]
fn exec_of_a_command_that_cannot_be_executed_exits_126() {
    let w = Worker::new();
    let script = w.sb.root().join("worker.sh");
    std::fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    set_mode(&script, 0o644);
    let dir = w.sb.empty_dir("a-directory");
    // execve reports a missing #! interpreter as ENOENT; the file exists, so 126.
    let bad_interpreter = w.sb.root().join("bad-interpreter.sh");
    std::fs::write(&bad_interpreter, "#!/nonexistent/interpreter\necho ran\n").unwrap();
    set_mode(&bad_interpreter, 0o755);
    w.sb.stand_in("on-path-bad-interpreter", "true");
    std::fs::write(
        w.sb.bin().join("on-path-bad-interpreter"),
        "#!/nonexistent/interpreter\n",
    )
    .unwrap();
    for program in [
        &script,
        &dir,
        &bad_interpreter,
        &PathBuf::from("on-path-bad-interpreter"),
    ] {
        let mut cmd = w.preflight();
        cmd.arg("--").arg(program);
        let out = cmd.output().unwrap();
        assert_eq!(code(&out), 126, "{}: {}", program.display(), stderr(&out));
        assert!(stdout(&out).is_empty());
        let err = stderr(&out);
        assert!(err.contains("cannot be executed") && err.contains("hint:"), "{err}");
    }
}

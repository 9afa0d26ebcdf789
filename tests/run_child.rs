//! `moonauth run` and the process it starts, through the built binary with a stand-in
//! `claude` (a small sh script) on a valid login: the CLI starts with no signal blocked and
//! stops when `run` or its process group gets SIGTERM; megabytes of output without a
//! newline pass through byte for byte and fast; a process the CLI leaves behind holding
//! its output does not keep `run` waiting.
//!
//! Every wait is bounded by a generous safety net (seconds, not a measured figure): a
//! broken behaviour shows up as a run that does not end in time.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::sandbox::Sandbox;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// Far beyond how long any of these runs takes when it works.
const SAFETY_NET: Duration = Duration::from_secs(10);

/// A sandbox whose `claude` runs `body`, with a Claude login valid until 2100.
struct Fixture {
    sandbox: Sandbox,
    login: PathBuf,
}

impl Fixture {
    fn new(body: &str) -> Fixture {
        let sandbox = Sandbox::new();
        let login = sandbox.login("claude", "valid-max");
        sandbox.stand_in("claude", body);
        Fixture { sandbox, login }
    }

    fn root(&self) -> &Path {
        self.sandbox.root()
    }

    /// `moonauth run claude -- -p hi`, the report in a file so stderr is the CLI's alone.
    fn command(&self) -> Command {
        let mut cmd = self.sandbox.std_moonauth();
        cmd.env("CLAUDE_CONFIG_DIR", &self.login)
            .args(["run", "claude", "--report"])
            .arg(self.root().join("report.json"))
            .args(["--", "-p", "hi"]);
        cmd
    }

    /// Starts the run in a process group of its own (so the test can signal the group, and
    /// clean up whatever is left), stdin closed, stdout and stderr read to the end.
    fn spawn(&self) -> Running {
        let mut child = self
            .command()
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn moonauth");
        let read_all = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        };
        let stdout = read_all(Box::new(child.stdout.take().expect("stdout")));
        let stderr = read_all(Box::new(child.stderr.take().expect("stderr")));
        Running { child, stdout, stderr }
    }

    fn report(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.root().join("report.json")).expect("the run wrote its report");
        serde_json::from_str(&text).expect("report JSON")
    }
}

struct Running {
    child: Child,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
}

struct Finished {
    /// `None` when the run did not end within the bound (it was then killed).
    status: Option<ExitStatus>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Running {
    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits up to `bound` for moonauth to exit; whether it did.
    fn exited_within(&mut self, bound: Duration) -> bool {
        poll_until(bound, || self.child.try_wait().expect("try_wait").is_some())
    }

    /// Waits up to `bound` for the run to end; kills its group either way, so nothing the
    /// test started outlives it.
    fn finish(mut self, bound: Duration) -> Finished {
        let ended = self.exited_within(bound);
        let _ = killpg(self.pid(), Signal::SIGKILL);
        let status = self.child.wait().expect("wait");
        Finished {
            status: ended.then_some(status),
            stdout: self.stdout.join().unwrap_or_default(),
            stderr: self.stderr.join().unwrap_or_default(),
        }
    }
}

/// Polls `done` every 20 ms until it holds or `bound` passes; whether it held.
fn poll_until(bound: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < bound {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// Whether `pid` still runs (a zombie waiting for its parent does not).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses: `123 (sleep) S …`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The pid a stand-in wrote to `file`, waiting for it up to the safety net.
fn pid_in(file: &Path) -> i32 {
    let mut pid = None;
    poll_until(SAFETY_NET, || {
        pid = std::fs::read_to_string(file).ok().and_then(|s| s.trim().parse().ok());
        pid.is_some()
    });
    pid.unwrap_or_else(|| panic!("the stand-in never wrote {}", file.display()))
}

/// A mask line of /proc/PID/status (`SigBlk:\t0000000000004007`) as a number.
fn mask(status: &str, name: &str) -> u64 {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in:\n{status}"));
    u64::from_str_radix(line.trim_start_matches(':').trim(), 16).expect("a hex mask")
}

/// The bit of signal number `sig` in a /proc mask.
const fn bit(sig: u32) -> u64 {
    1 << (sig - 1)
}

const SIGHUP_INT_QUIT_TERM: u64 = bit(1) | bit(2) | bit(3) | bit(15);

#[test]
fn run_starts_the_cli_with_no_signal_blocked() {
    // The shell reads its own status with builtins: a forked `grep` would show the mask
    // dash sets while it waits for a child, not the one it was started with.
    let f = Fixture::new(r#"while read -r l; do case $l in Sig*) echo "$l";; esac; done < /proc/$$/status"#);
    let out = f.spawn().finish(SAFETY_NET);
    assert_eq!(
        out.status.map(|s| s.code()),
        Some(Some(0)),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = String::from_utf8_lossy(&out.stdout);
    let blocked = mask(&status, "SigBlk");
    assert_eq!(
        blocked & SIGHUP_INT_QUIT_TERM,
        0,
        "HUP, INT, QUIT or TERM blocked in the CLI:\n{status}"
    );
    assert_eq!(blocked, 0, "the CLI starts with an empty signal mask:\n{status}");
    assert_eq!(
        mask(&status, "SigIgn") & SIGHUP_INT_QUIT_TERM,
        0,
        "moonauth was started with default dispositions, so is the CLI:\n{status}"
    );
}

/// A CLI that writes its pid and then is `sleep 60` (same pid), with default signal handling.
fn sleeping_cli() -> (Fixture, PathBuf) {
    let f = Fixture::new("");
    let pid_file = f.root().join("cli.pid");
    f.sandbox
        .stand_in("claude", &format!("echo $$ > '{}'\nexec sleep 60", pid_file.display()));
    (f, pid_file)
}

/// Sends SIGTERM with `send` once the CLI runs, and checks that the CLI and the run end.
fn sigterm_stops_the_cli(send: impl FnOnce(Pid)) {
    let (f, pid_file) = sleeping_cli();
    let run = f.spawn();
    let cli = pid_in(&pid_file);
    // The pid file is written a moment before moonauth notes the child's pid for forwarding.
    std::thread::sleep(Duration::from_millis(300));
    send(run.pid());
    let gone = poll_until(SAFETY_NET, || !alive(cli));
    let out = run.finish(SAFETY_NET);
    let _ = kill(Pid::from_raw(cli), Signal::SIGKILL);
    assert!(gone, "the CLI (pid {cli}) still runs {SAFETY_NET:?} after SIGTERM");
    let code = out.status.and_then(|s| s.code());
    assert_eq!(
        code,
        Some(128 + 15),
        "run ends as interrupted by SIGTERM; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        f.report()["attempts"].as_array().map(Vec::len),
        Some(1),
        "no failover after a signal"
    );
}

#[test]
fn sigterm_to_run_stops_the_cli() {
    sigterm_stops_the_cli(|run| kill(run, Signal::SIGTERM).expect("kill"));
}

#[test]
fn sigterm_to_the_process_group_of_run_stops_the_cli() {
    // What `docker stop` of a shell-less container, or a terminal's job control, does.
    sigterm_stops_the_cli(|run| killpg(run, Signal::SIGTERM).expect("killpg"));
}

/// 32 MiB of arbitrary bytes with no newline among them (a fixed xorshift sequence).
fn no_newline_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match (x >> 56) as u8 {
                b'\n' => b'+',
                b => b,
            }
        })
        .collect()
}

#[test]
fn run_passes_32_mib_without_a_newline_through_byte_for_byte() {
    let f = Fixture::new("");
    let data = no_newline_bytes(32 << 20);
    let file = f.root().join("blob");
    std::fs::write(&file, &data).unwrap();
    f.sandbox
        .stand_in("claude", &format!("cat '{}'\necho done >&2", file.display()));
    let started = Instant::now();
    // Linear scanning takes a second or two here even in a debug build; the quadratic one
    // took minutes. The bound only keeps a regression from hanging the suite.
    let out = f.spawn().finish(Duration::from_secs(60));
    let took = started.elapsed();
    assert!(
        out.status.is_some(),
        "the run did not end within 60 s (it had passed {} of {} bytes)",
        out.stdout.len(),
        data.len()
    );
    assert_eq!(out.status.and_then(|s| s.code()), Some(0));
    assert_eq!(out.stdout.len(), data.len(), "every byte passed through");
    assert!(out.stdout == data, "the bytes passed through unchanged");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("done\n"),
        "stderr passes through too"
    );
    assert_eq!(f.report()["attempts"][0]["outcome"], "success");
    eprintln!("32 MiB without a newline passed through in {took:?}");
}

#[test]
fn run_does_not_wait_for_a_process_the_cli_left_holding_its_output() {
    let f = Fixture::new("");
    let pid_file = f.root().join("background.pid");
    f.sandbox.stand_in(
        "claude",
        &format!("sleep 30 &\necho $! > '{}'\necho hi", pid_file.display()),
    );
    let mut run = f.spawn();
    // Long before the background `sleep 30` ends: the run ends about a second after the CLI.
    let exited = run.exited_within(SAFETY_NET);
    let background = pid_in(&pid_file);
    // Looked at before `finish` ends the test's process group, where the leftover is too.
    let left_running = alive(background);
    let out = run.finish(Duration::ZERO);
    let _ = kill(Pid::from_raw(background), Signal::SIGKILL);
    assert!(exited, "run waited for the process the CLI left behind");
    assert!(out.status.is_some(), "run waited for the process the CLI left behind");
    assert_eq!(out.status.and_then(|s| s.code()), Some(0));
    assert_eq!(out.stdout, b"hi\n");
    assert_eq!(f.report()["attempts"][0]["outcome"], "success");
    assert!(left_running, "moonauth does not kill what the CLI left behind");
}

#[test]
fn sigterm_while_run_waits_to_retry_starts_no_cli_that_ignores_it() {
    // The first attempt is throttled; run waits 3 s before retrying. A SIGTERM in that wait
    // must end the run: the retry would otherwise start a CLI that never hears of it.
    let f = Fixture::new("");
    let (count, second) = (f.root().join("count"), f.root().join("second.pid"));
    f.sandbox.stand_in(
        "claude",
        &format!(
            "n=$(cat '{count}' 2>/dev/null || echo 0); n=$((n + 1)); echo $n > '{count}'\n\
             if [ $n = 1 ]; then echo 'API Error: 429 Too many requests' >&2; exit 1; fi\n\
             echo $$ > '{second}'\nexec sleep 60",
            count = count.display(),
            second = second.display()
        ),
    );
    let mut cmd = f.command();
    cmd.env("MOONAUTH_THROTTLE_RETRIES", "1")
        .env("MOONAUTH_THROTTLE_BACKOFF", "3s")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn moonauth");
    let run = Pid::from_raw(child.id() as i32);
    let throttled = poll_until(SAFETY_NET, || {
        std::fs::read_to_string(&count).is_ok_and(|n| n.trim() == "1")
    });
    std::thread::sleep(Duration::from_millis(500));
    kill(run, Signal::SIGTERM).expect("kill");
    let ended = poll_until(SAFETY_NET, || child.try_wait().expect("try_wait").is_some());
    let _ = killpg(run, Signal::SIGKILL);
    let status = child.wait().expect("wait");
    assert!(throttled, "the first attempt never ran");
    assert!(
        ended,
        "run went on after SIGTERM (a second CLI started: {})",
        second.exists()
    );
    assert_eq!(status.code(), Some(128 + 15));
    assert!(!second.exists(), "no second CLI started after the SIGTERM");
    let report = f.report();
    assert_eq!(report["attempts"][0]["outcome"], "throttle", "{report}");
}

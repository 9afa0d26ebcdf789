//! Everything the integration tests share, in one tree:
//!
//! - [`moonauth_bin`]: the built binary (the one place its path is spelled out);
//! - `sandbox`: login directories from `tests/fixtures`, stand-in CLIs on a fake PATH,
//!   `moonauth` run with a cleared environment, and readers of its output;
//! - `cli`, `fake_anthropic`, `fake_openai`, `fake_api`, `samples`: the real CLIs run
//!   safely against fake APIs on 127.0.0.1, and the captured outputs in `tests/samples`;
//! - `renew`, `token_service`: a loopback token service with rotating refresh tokens, login
//!   files in the CLIs' formats, programs run with a hard timeout;
//! - `http`: the small HTTP server under both fakes and the token service;
//! - `postgres`: throwaway PostgreSQL clusters, one database per test.
//!
//! Each test module uses a different part of it.
#![allow(dead_code)]

pub mod cli;
pub mod dashboard;
pub mod fake_anthropic;
pub mod fake_api;
pub mod fake_openai;
pub mod http;
pub mod postgres;
pub mod renew;
pub mod samples;
pub mod sandbox;
pub mod token_service;
pub mod webdriver;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use moonauth::agents::Runtime;
use moonauth::failover::classify::{Classification, OutputClassifier};

/// The `moonauth` binary Cargo built for these tests.
pub fn moonauth_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_moonauth"))
}

/// What a program run by [`run_in_group`] printed, and how it ended.
pub struct Finished {
    pub stdout: String,
    pub stderr: String,
    /// `None` when killed by a signal (the timeout).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub elapsed: Duration,
    /// When the child had exited: the anchor for clock times in its output.
    pub finished_at: SystemTime,
}

/// Runs `cmd` with stdin closed in its own process group, killing the group after
/// `timeout`, and again once the program has exited: helpers it left behind would hold
/// the pipes open.
pub fn run_in_group(cmd: &mut Command, timeout: Duration) -> Finished {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = reader(Box::new(child.stdout.take().expect("stdout")));
    let stderr = reader(Box::new(child.stderr.take().expect("stderr")));
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > timeout {
            timed_out = true;
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let finished_at = SystemTime::now();
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    Finished {
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        code: status.code(),
        timed_out,
        elapsed: started.elapsed(),
        finished_at,
    }
}

/// A proxy address nothing listens on: any request not to 127.0.0.1 fails at once.
pub const DEAD_PROXY: &str = "http://127.0.0.1:9";

static STATIC_BIN: OnceLock<PathBuf> = OnceLock::new();

/// The static moonauth when [`static_moonauth`] has found or built it already.
pub fn static_moonauth_if_ready() -> Option<&'static Path> {
    STATIC_BIN.get().map(PathBuf::as_path)
}

/// The static (musl) moonauth, which `login` carries into its helper containers and the
/// quick start puts into the worker image: MOONAUTH_STATIC_BIN of the test process
/// (scripts/test builds it once and exports it), else the binary `scripts/build-static.sh`
/// builds, once per test process (it prints `PATH SIZE bytes` last).
pub fn static_moonauth() -> &'static Path {
    STATIC_BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("MOONAUTH_STATIC_BIN").filter(|p| !p.is_empty()) {
            return PathBuf::from(path);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-static.sh");
        let out = Command::new(script).output().expect("run scripts/build-static.sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "building the static moonauth failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // `PATH SIZE bytes`: the path may hold spaces, the size does not.
        let path = stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_suffix(" bytes")?.rsplit_once(' ').map(|(path, _)| path))
            .unwrap_or_else(|| panic!("scripts/build-static.sh printed no path: {stdout}"));
        PathBuf::from(path)
    })
}

/// Feeds a finished run's output to a classifier line by line, as `moonauth run` does
/// (stdout first, then stderr: the two streams are independent), in `zone`.
pub fn classify_output(
    runtime: Runtime,
    zone: jiff::tz::TimeZone,
    stdout: &str,
    stderr: &str,
    exit_code: Option<i32>,
    now: SystemTime,
) -> Classification {
    let mut classifier = OutputClassifier::with_time_zone(runtime, zone);
    stdout.lines().for_each(|line| classifier.stdout_line(line));
    stderr.lines().for_each(|line| classifier.stderr_line(line));
    classifier.finish(exit_code, now)
}

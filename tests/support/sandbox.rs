//! Helpers shared by the integration tests: login directories built from
//! `tests/fixtures`, a fake PATH holding stand-in CLIs, and `moonauth` run with a
//! cleared environment plus only what a test sets (tests never call `set_var`).
//!
//! Each test module uses part of it.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use tempfile::TempDir;

use super::moonauth_bin;

/// The clock every test pins through `MOONAUTH_NOW` unless it needs the real one.
pub const NOW: &str = "2026-11-24T12:00:00Z";

/// Claude fixture cases: (case, class moonauth reports, usable).
pub const CLAUDE_CASES: [(&str, &str, bool); 6] = [
    ("valid-max", "oauth-valid", true),
    ("expired-refreshable", "oauth-expired-refreshable", true),
    ("expired-no-refresh", "oauth-expired-not-refreshable", false),
    ("empty-oauth", "missing", false),
    ("malformed", "malformed", false),
    ("missing", "missing", false),
];

/// Codex fixture cases: (case, class moonauth reports, usable).
pub const CODEX_CASES: [(&str, &str, bool); 5] = [
    ("chatgpt-valid", "oauth-valid", true),
    ("chatgpt-expired-refreshable", "oauth-expired-refreshable", true),
    ("api-key", "api-key", true),
    ("malformed", "malformed", false),
    ("missing", "missing", false),
];

/// Credential variables the CLIs read instead of their login files.
pub const CREDENTIAL_VARS: [&str; 5] = [
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "OPENAI_API_KEY",
    "CODEX_API_KEY",
];

/// The repository's fixture tree.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

/// True when the tests run as root (where `access()` passes on any directory).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A temp directory holding everything one test needs: `bin/` (the only PATH entry),
/// `home/`, `cwd/` (the working directory, so no stray `.env` is read) and login dirs.
pub struct Sandbox {
    dir: TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("moonauth-test-").tempdir().unwrap();
        // Readable by every user, so a test can run moonauth under another uid.
        set_mode(dir.path(), 0o755);
        for sub in ["bin", "home", "cwd"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
            set_mode(&dir.path().join(sub), 0o755);
        }
        Sandbox { dir }
    }

    /// The sandbox root (for filtering it out of snapshots).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The directory on PATH (holds only the stand-ins a test creates).
    pub fn bin(&self) -> PathBuf {
        self.root().join("bin")
    }

    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    /// The working directory moonauth runs in.
    pub fn cwd(&self) -> PathBuf {
        self.root().join("cwd")
    }

    /// A writable copy of fixture `runtime/case` at `<root>/<name>`.
    pub fn login_named(&self, name: &str, runtime: &str, case: &str) -> PathBuf {
        let src = fixtures().join(runtime).join(case);
        assert!(src.is_dir(), "no fixture {}", src.display());
        let dst = self.root().join(name);
        copy_dir(&src, &dst);
        dst
    }

    /// A writable copy of fixture `runtime/case` at `<root>/<runtime>-<case>`.
    pub fn login(&self, runtime: &str, case: &str) -> PathBuf {
        self.login_named(&format!("{runtime}-{case}"), runtime, case)
    }

    /// An empty directory `<root>/<name>`.
    pub fn empty_dir(&self, name: &str) -> PathBuf {
        let d = self.root().join(name);
        fs::create_dir_all(&d).unwrap();
        set_mode(&d, 0o755);
        d
    }

    /// A stand-in executable `bin/<name>`: a small sh script running `body` with the
    /// system's PATH (moonauth itself runs with only `bin/` on PATH).
    pub fn stand_in(&self, name: &str, body: &str) -> PathBuf {
        let p = self.bin().join(name);
        fs::write(&p, format!("#!/bin/sh\nPATH=/usr/local/bin:/usr/bin:/bin\n{body}\n")).unwrap();
        set_mode(&p, 0o755);
        p
    }

    /// Stand-ins that do nothing (enough for the `cli` check).
    pub fn stand_ins(&self, names: &[&str]) {
        for name in names {
            self.stand_in(name, "exit 0");
        }
    }

    /// `moonauth` with a cleared environment: only PATH (the sandbox bin), HOME,
    /// MOONAUTH_NOW and what the test adds; the working directory is `cwd/`.
    pub fn moonauth(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.std_moonauth())
    }

    /// The same as [`Sandbox::moonauth`], as a `std::process::Command` (for spawning).
    pub fn std_moonauth(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(moonauth_bin());
        self.prepare(&mut cmd);
        cmd
    }

    /// `moonauth` run as uid/gid 65534 through `setpriv` (root only): the binary is
    /// copied into the sandbox first so that user can execute it wherever the build is.
    pub fn moonauth_as_nobody(&self) -> assert_cmd::Command {
        assert!(is_root(), "only root can switch users");
        let copy = self.root().join("moonauth");
        if !copy.exists() {
            fs::copy(moonauth_bin(), &copy).unwrap();
            set_mode(&copy, 0o755);
        }
        let setpriv = find_program("setpriv").expect("setpriv (util-linux) is installed");
        let mut cmd = std::process::Command::new(setpriv);
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&copy);
        self.prepare(&mut cmd);
        assert_cmd::Command::from_std(cmd)
    }

    fn prepare(&self, cmd: &mut std::process::Command) {
        cmd.env_clear()
            .env("PATH", self.bin())
            .env("HOME", self.home())
            .env("MOONAUTH_NOW", NOW)
            .current_dir(self.cwd());
    }
}

/// A program on the PATH of the test process (moonauth's own PATH is the sandbox's).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Copies a directory tree (dotfiles included), making it writable by its owner:
/// fixtures in the repository may be read-only.
pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    set_mode(dst, 0o755);
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).unwrap();
            set_mode(&to, 0o644);
        }
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The bytes of a fixture's login file.
pub fn fixture_login_file(runtime: &str, case: &str) -> Vec<u8> {
    let name = match runtime {
        "claude" => ".credentials.json",
        _ => "auth.json",
    };
    fs::read(fixtures().join(runtime).join(case).join(name)).unwrap()
}

/// Writes a file atomically (temp file + rename), so a concurrent reader never sees half of it.
pub fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("moonauth-test-tmp");
    fs::write(&tmp, bytes).unwrap();
    fs::rename(&tmp, path).unwrap();
}

/// The exit code; panics with the output when the process died of a signal.
pub fn code(out: &Output) -> i32 {
    out.status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {out:?}"))
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parses stdout as JSON, with the whole output in the panic message when it is not.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", stdout(out), stderr(out)))
}

/// The checks of a preflight JSON report as (runtime, check, status) triples.
pub fn checks(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["checks"]
        .as_array()
        .expect("checks is an array")
        .iter()
        .map(|c| {
            (
                c["runtime"].as_str().unwrap_or("-").to_string(),
                c["check"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The check `name` of `runtime` in a preflight JSON report.
pub fn check<'a>(report: &'a serde_json::Value, runtime: &str, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["runtime"] == runtime && c["check"] == name)
        .unwrap_or_else(|| panic!("no {runtime} {name} check in {report:#}"))
}

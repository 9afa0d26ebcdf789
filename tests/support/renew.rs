//! Helpers for the renewal tests: the loopback token service with rotating refresh tokens
//! (`super::token_service`, on the HTTP server the classifier tests use), login files in
//! the CLIs' formats, and running programs with a hard timeout.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::moonauth_bin;
pub use super::token_service::{Flavor, Issued, TokenService};

pub use super::DEAD_PROXY;

/// moonauth with an empty environment but PATH, the dead proxy, and `vars`.
pub fn moonauth_cmd(vars: &[(&str, &str)]) -> Command {
    let mut c = Command::new(moonauth_bin());
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HTTPS_PROXY", DEAD_PROXY)
        .env("NO_PROXY", "127.0.0.1,localhost")
        // Keep unit runs quick; the retry tests set their own.
        .env("MOONAUTH_RENEW_RETRY_DELAY", "50ms")
        .stdin(Stdio::null());
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

/// What a finished (or killed) program printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl Output {
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` with stdin closed in its own process group; kills the group after `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    let f = super::run_in_group(cmd, timeout);
    Output {
        stdout: f.stdout,
        stderr: f.stderr,
        code: f.code,
        timed_out: f.timed_out,
        elapsed: f.elapsed,
    }
}

/// Fails when any issued token appears in `text`.
pub fn assert_no_tokens(text: &str, service: &TokenService) {
    for token in service.issued() {
        assert!(!text.contains(&token), "a token leaked into the output:\n{text}");
    }
    assert!(
        !text.contains("CANARY"),
        "a canary token leaked into the output:\n{text}"
    );
}

pub fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn write_private(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).expect("write login");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod login");
}

/// Writes a Codex ChatGPT login (`auth.json`) holding `issued`, last refreshed `last_refresh`,
/// with an unknown key that must survive a refresh.
pub fn write_codex_login(dir: &Path, issued: &Issued, last_refresh: SystemTime) {
    let auth = json!({
        "OPENAI_API_KEY": null,
        "tokens": {
            "id_token": issued.id_token,
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "account_id": format!("acct-g{}", issued.grant),
        },
        "last_refresh": humantime::format_rfc3339_micros(last_refresh).to_string(),
        "x_moonauth_test_keep": {"kept": true},
    });
    write_private(&dir.join("auth.json"), &auth);
}

/// Writes a Claude login (`.credentials.json`) holding `issued`, with unknown keys that
/// must survive a refresh.
pub fn write_claude_login(dir: &Path, issued: &Issued) {
    let creds = json!({
        "claudeAiOauth": {
            "accessToken": issued.access_token,
            "refreshToken": issued.refresh_token,
            "expiresAt": issued.expires_at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64,
            "scopes": ["user:inference", "user:profile", "user:sessions:claude_code"],
            "subscriptionType": "max",
            "rateLimitTier": "default_claude_max_20x",
            "subscriptionTypeSource": "profile",
            "x_moonauth_test_keep": 42
        },
        "x_top_level_keep": "yes"
    });
    write_private(&dir.join(".credentials.json"), &creds);
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
}

/// A temp directory under the target dir (codex refuses helpers under /tmp).
pub fn temp_root(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

pub fn subdir(root: &Path, name: &str) -> PathBuf {
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The real CLI `name`, or `None` (after a skip notice) when it is not installed;
/// MOONAUTH_REQUIRE_REAL_CLIS=1 makes its absence a failure.
pub fn real_cli(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("MOONAUTH_CLI_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/clis/node_modules/.bin"));
    let path = dir.join(name);
    if path.exists() {
        return Some(path);
    }
    let hint = "install with `npm ci --prefix tools/clis` or set MOONAUTH_CLI_BIN_DIR";
    if std::env::var("MOONAUTH_REQUIRE_REAL_CLIS").as_deref() == Ok("1") {
        panic!("MOONAUTH_REQUIRE_REAL_CLIS=1 but {} is missing: {hint}", path.display());
    }
    eprintln!("SKIP: the real `{name}` CLI is not at {} ({hint})", path.display());
    None
}

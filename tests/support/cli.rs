//! Running the real `claude` and `codex` against the fake APIs, safely: stdin closed, a
//! hard timeout that kills the whole process group, an empty environment except what the
//! run needs, HOME and the login directories in a temp dir, every other network attempt
//! sent to a dead loopback proxy.
//!
//! The CLIs are found in `$MOONAUTH_CLI_BIN_DIR`, else `<repo>/tools/clis/node_modules/.bin`
//! (`npm ci --prefix tools/clis`). When they are missing a test prints a skip notice and
//! passes, unless `MOONAUTH_REQUIRE_REAL_CLIS=1`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

/// The versions the samples and docs were captured with (tools/clis/package.json).
pub const CLAUDE_PINNED: &str = "2.1.330";
pub const CODEX_PINNED: &str = "0.169.0";

/// Long enough for a cold start on a loaded machine; every case here finishes in seconds.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(90);

use super::DEAD_PROXY;

/// Shared fixtures (read-only) with CANARY token values.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// The path of a real CLI, or `None` (after a skip notice) when it is not installed.
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
    eprintln!("skipping: the real `{name}` CLI is not at {} ({hint})", path.display());
    None
}

/// `claude --version` / `codex --version` → `2.1.330` / `0.169.0`.
pub fn cli_version(bin: &Path) -> String {
    let sandbox = Sandbox::new();
    let out = run(sandbox.command(bin).arg("--version"), Duration::from_secs(30));
    out.stdout
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .unwrap_or("unknown")
        .to_string()
}

/// A temp directory holding HOME, the working directory and login directories of one run.
pub struct Sandbox {
    pub root: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// Under the target directory, not /tmp: codex refuses to set up helpers under /tmp
    /// and warns on every run.
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("real-cli-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temp dir");
        for sub in ["home", "work"] {
            std::fs::create_dir_all(root.path().join(sub)).expect("sandbox dirs");
        }
        Sandbox { root }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    /// The working directory the CLI runs in (Claude's transcript slug comes from it).
    pub fn cwd(&self) -> PathBuf {
        self.path().join("work")
    }

    /// A fresh directory for a login.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.path().join(name);
        std::fs::create_dir_all(&dir).expect("login dir");
        dir
    }

    /// A command with an empty environment but PATH (codex is a node script), HOME, TZ=UTC
    /// and the dead proxy.
    pub fn command(&self, program: &Path) -> Command {
        offline(program, &self.home(), &self.cwd())
    }
}

/// A real CLI run: an empty environment but PATH (codex is a node script), a private
/// HOME, UTC, C.UTF-8, and the dead proxy for anything not on 127.0.0.1.
pub fn offline(program: &Path, home: &Path, cwd: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .current_dir(cwd)
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
        )
        .env("HOME", home)
        .env("TZ", "UTC")
        .env("LANG", "C.UTF-8")
        .env("HTTPS_PROXY", DEAD_PROXY)
        .env("HTTP_PROXY", DEAD_PROXY)
        .env("https_proxy", DEAD_PROXY)
        .env("http_proxy", DEAD_PROXY)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    cmd
}

/// Output formats of the runs under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `claude -p … --output-format stream-json --verbose`
    ClaudeStreamJson,
    /// `claude -p … --output-format json`
    ClaudeJson,
    /// `claude -p …` (text)
    ClaudeText,
    /// `codex exec --json …`
    CodexJson,
    /// `codex exec …` (text)
    CodexText,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::ClaudeStreamJson => "stream-json",
            Format::ClaudeJson => "json",
            Format::ClaudeText => "text",
            Format::CodexJson => "json",
            Format::CodexText => "text",
        }
    }

    pub fn is_claude(self) -> bool {
        matches!(self, Format::ClaudeStreamJson | Format::ClaudeJson | Format::ClaudeText)
    }

    pub fn is_structured(self) -> bool {
        !matches!(self, Format::ClaudeText | Format::CodexText)
    }
}

/// `claude -p <prompt>` in `format`, against `base_url`, with the login in `config_dir`.
pub fn claude_command(
    sandbox: &Sandbox,
    bin: &Path,
    config_dir: &Path,
    base_url: &str,
    format: Format,
    prompt: &str,
) -> Command {
    let mut cmd = sandbox.command(bin);
    cmd.env("CLAUDE_CONFIG_DIR", config_dir)
        .env("ANTHROPIC_BASE_URL", base_url)
        .env("DISABLE_TELEMETRY", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        // 2.1.330 retries throttles and 529s for minutes otherwise.
        .env("CLAUDE_CODE_MAX_RETRIES", "0")
        .arg("-p")
        .arg(prompt);
    match format {
        Format::ClaudeStreamJson => cmd.args(["--output-format", "stream-json", "--verbose"]),
        Format::ClaudeJson => cmd.args(["--output-format", "json"]),
        _ => &mut cmd,
    };
    cmd
}

/// How codex authenticates to the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodexAuth {
    /// `auth.json` in CODEX_HOME, provider with `requires_openai_auth=true`.
    ChatGpt,
    /// `OPENAI_API_KEY` in the environment, provider with `env_key`.
    ApiKey(String),
}

/// `codex exec … <prompt>` in `format`, against the fake at `base_url`.
pub fn codex_command(
    sandbox: &Sandbox,
    bin: &Path,
    codex_home: &Path,
    base_url: &str,
    auth: &CodexAuth,
    format: Format,
    prompt: &str,
) -> Command {
    let mut cmd = sandbox.command(bin);
    let auth_key = match auth {
        CodexAuth::ChatGpt => "requires_openai_auth=true".to_string(),
        CodexAuth::ApiKey(key) => {
            cmd.env("OPENAI_API_KEY", key);
            r#"env_key="OPENAI_API_KEY""#.to_string()
        }
    };
    let provider = format!(
        r#"model_providers.fake={{name="fake",base_url="{base_url}/v1",wire_api="responses",{auth_key},request_max_retries=0,stream_max_retries=0}}"#
    );
    cmd.env("CODEX_HOME", codex_home)
        .env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", format!("{base_url}/oauth/token"))
        .args(["exec", "--skip-git-repo-check"]);
    if format == Format::CodexJson {
        cmd.arg("--json");
    }
    cmd.args([
        "-c",
        "cli_auth_credentials_store=file",
        "-c",
        &provider,
        "-c",
        "model_provider=fake",
        prompt,
    ]);
    cmd
}

/// Writes a Claude OAuth login (the valid-max fixture) whose access token is `access_token`.
pub fn claude_oauth_login(config_dir: &Path, access_token: &str) {
    let fixture = std::fs::read(Path::new(FIXTURES).join("claude/valid-max/.credentials.json")).expect("fixture");
    let mut creds: Value = serde_json::from_slice(&fixture).expect("fixture json");
    creds["claudeAiOauth"]["accessToken"] = Value::String(access_token.to_string());
    creds["claudeAiOauth"]["refreshToken"] = Value::String(format!("{access_token}-refresh").replace("oat01", "ort01"));
    write_private(&config_dir.join(".credentials.json"), &creds);
}

/// Writes a codex ChatGPT login (the chatgpt-valid fixture) whose access token is a JWT
/// carrying `label`, expiring at `exp` (epoch seconds); returns the access token.
pub fn codex_chatgpt_login(codex_home: &Path, label: &str, exp: u64) -> String {
    let fixture = std::fs::read(Path::new(FIXTURES).join("codex/chatgpt-valid/auth.json")).expect("fixture");
    let mut auth: Value = serde_json::from_slice(&fixture).expect("fixture json");
    let access = auth["tokens"]["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    let mut parts = access.split('.');
    let (header, payload, signature) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("claims");
    claims["exp"] = exp.into();
    claims["note"] = format!("CANARY-moonauth-access-{label}").into();
    let token = format!("{header}.{}.{signature}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    auth["tokens"]["access_token"] = Value::String(token.clone());
    auth["tokens"]["refresh_token"] = Value::String(format!("rt_CANARY-moonauth-refresh-{label}"));
    if exp < crate_now_secs() {
        // An expired token with an old refresh date: codex refreshes before the first call.
        auth["last_refresh"] = "2026-01-01T00:00:00Z".into();
    }
    write_private(&codex_home.join("auth.json"), &auth);
    token
}

fn crate_now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn write_private(path: &Path, value: &Value) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, value.to_string()).expect("write login");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod login");
}

/// What a finished (or killed) CLI printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    /// `None` when killed by a signal (the timeout).
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub elapsed: Duration,
    /// When the child had exited: the anchor for clock times in its output.
    pub finished_at: SystemTime,
}

/// At most this many real CLIs at once: each is a heavy process, and a starved one times out.
const MAX_CONCURRENT: usize = 4;
static SLOTS: Mutex<usize> = Mutex::new(0);
static SLOT_FREED: Condvar = Condvar::new();

struct Slot;

impl Slot {
    fn take() -> Slot {
        let mut used = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
        while *used >= MAX_CONCURRENT {
            used = SLOT_FREED.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *SLOTS.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        SLOT_FREED.notify_one();
    }
}

/// Runs `cmd` with stdin closed, in its own process group, killing the group after
/// `timeout`; at most [`MAX_CONCURRENT`] at once.
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    let _slot = Slot::take();
    let f = super::run_in_group(cmd, timeout);
    Output {
        stdout: f.stdout,
        stderr: f.stderr,
        exit_code: f.code,
        timed_out: f.timed_out,
        elapsed: f.elapsed,
        finished_at: f.finished_at,
    }
}

/// Whether Claude wrote the transcript `<config>/projects/<slug>/<session_id>.jsonl`.
pub fn claude_transcript_exists(config_dir: &Path, session_id: &str) -> bool {
    find_file(
        &config_dir.join("projects"),
        &|name| name == format!("{session_id}.jsonl"),
        3,
    )
}

/// Whether codex wrote the rollout `<CODEX_HOME>/sessions/Y/M/D/rollout-…-<thread_id>.jsonl`.
pub fn codex_rollout_exists(codex_home: &Path, thread_id: &str) -> bool {
    find_file(
        &codex_home.join("sessions"),
        &|name| name.ends_with(&format!("-{thread_id}.jsonl")),
        4,
    )
}

fn find_file(dir: &Path, wanted: &dyn Fn(&str) -> bool, depth: usize) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            depth > 0 && find_file(&path, wanted, depth - 1)
        } else {
            wanted(&entry.file_name().to_string_lossy())
        }
    })
}

//! The worker preflight: one list of checks (CLI on PATH, login directory permissions,
//! a usable login, competing credential variables, and with `--deep` the CLIs' own
//! status commands), a report built from them, and the exec into the worker command.
//!
//! Everything here is synchronous and allocation-light: it runs in every container
//! start. The only child processes are the `--deep` status commands.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::unistd::{access, AccessFlags};
use serde::Serialize;

use crate::agents::{LoginRuntime, Runtime, WorkerMode};
use crate::config::{AuthMode, Config, RuntimeSettings};
use crate::credentials::{self, LoginClass, LoginReport};
use crate::error::Error;
use crate::exit::Exit;
use crate::redact;
use crate::source::{Env, Source, Sourced};

pub use super::{Check, CheckStatus};

/// The preflight report: rendered as text or as JSON (schema in docs/preflight.md).
#[derive(Debug, Clone, Serialize)]
pub struct PreflightReport {
    /// Identifies the JSON schema; bumped on incompatible changes.
    pub schema: &'static str,
    pub mode: WorkerMode,
    pub mode_source: Source,
    pub ok: bool,
    pub exit_code: u8,
    pub checks: Vec<Check>,
    /// Variables set for the worker command when preflight execs it.
    pub exec_env: BTreeMap<String, String>,
    /// How many rounds of checks ran (more than one under `--wait`).
    pub rounds: u32,
}

impl PreflightReport {
    /// The exit status: that of the first failed check, else success.
    pub fn exit(&self) -> Exit {
        self.checks
            .iter()
            .find(|c| c.status == CheckStatus::Fail)
            .map(|c| c.exit)
            .unwrap_or(Exit::Ok)
    }
}

/// What a preflight needs besides the configuration: the environment and a clock.
pub struct Inputs<'a> {
    pub config: &'a Config,
    pub env: &'a Env,
    pub now: SystemTime,
    /// Also run the CLIs' own status commands.
    pub deep: bool,
}

/// Runs every check the configured worker mode needs.
pub fn run_checks(inputs: &Inputs<'_>) -> PreflightReport {
    let config = inputs.config;
    let mode: &Sourced<WorkerMode> = &config.worker_mode;
    let mut checks = Vec::new();
    let mut exec_env = BTreeMap::new();
    for &runtime in mode.value.runtimes() {
        let cli = check_cli(runtime, inputs.env);
        let cli_path = cli.1.clone();
        checks.push(cli.0);
        let Some(settings) = config.runtime(runtime) else {
            continue;
        };
        checks.push(check_login_dir(settings));
        let login = check_login(settings, config, inputs.now);
        let login_report = login.login.clone();
        checks.push(login);
        if let Some(c) = check_env_credentials(settings, config.auth_mode.value) {
            checks.push(c);
        }
        if inputs.deep {
            if let (Some(path), Some(report)) = (cli_path, login_report) {
                checks.push(check_cli_status(
                    settings.runtime,
                    &path,
                    settings,
                    &report,
                    inputs.env,
                    config.status_timeout.value,
                ));
            }
        }
        let var = dir_variable(settings.runtime);
        if inputs.env.non_blank(var).is_none() {
            exec_env.insert(var.to_string(), settings.login_dir.value.display().to_string());
        }
    }
    if inputs.env.get("GITHUB_ACTIONS") == Some("true") {
        checks.extend(super::ci::preflight_section(config, inputs.env));
    }
    let mut report = PreflightReport {
        schema: "moonauth.preflight.v1",
        mode: mode.value,
        mode_source: mode.source.clone(),
        ok: true,
        exit_code: 0,
        checks,
        exec_env,
        rounds: 1,
    };
    let exit = report.exit();
    report.ok = exit == Exit::Ok;
    report.exit_code = exit.code();
    report
}

pub use crate::agents::dir_variable;

fn install_hint(runtime: Runtime) -> &'static str {
    runtime.install_hint()
}

fn check_cli(runtime: Runtime, env: &Env) -> (Check, Option<PathBuf>) {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let path = env.get("PATH").map(OsString::from);
    match which::which_in(runtime.binary(), path, cwd) {
        Ok(p) => (
            Check::new(runtime, "cli", CheckStatus::Ok, p.display().to_string()),
            Some(p),
        ),
        Err(_) => (
            Check::new(
                runtime,
                "cli",
                CheckStatus::Fail,
                format!("`{}` is not an executable on PATH", runtime.binary()),
            )
            .fail(Exit::CliMissing, install_hint(runtime)),
            None,
        ),
    }
}

fn check_login_dir(settings: &RuntimeSettings) -> Check {
    let login = settings.runtime;
    let runtime = login.runtime();
    let dir = &settings.login_dir.value;
    let shown = format!("{} ({})", dir.display(), settings.login_dir.source);
    let check = |status, detail| Check::new(runtime, "login-dir", status, detail);
    let uid = nix::unistd::geteuid();
    let gid = nix::unistd::getegid();
    let chown = format!(
        "run `moonauth init` as root in the init service, or `chown -R {uid}:{gid} {}`",
        dir.display()
    );
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return check(CheckStatus::Fail, format!("{shown} does not exist")).fail(
                Exit::Permissions,
                format!(
                    "mount the {} volume at {} (see compose/docker-compose.yaml), or set {} to the login directory",
                    settings.volume_name.value,
                    dir.display(),
                    dir_variable(login)
                ),
            )
        }
        Err(e) => {
            return check(CheckStatus::Fail, format!("{shown} cannot be read: {e}")).fail(Exit::Permissions, chown)
        }
    };
    if !meta.is_dir() {
        return check(CheckStatus::Fail, format!("{shown} is not a directory")).fail(
            Exit::Permissions,
            format!("point {} at a directory", dir_variable(login)),
        );
    }
    let rwx = AccessFlags::R_OK | AccessFlags::W_OK | AccessFlags::X_OK;
    if access(dir.as_path(), rwx).is_err() {
        use std::os::unix::fs::MetadataExt;
        return check(
            CheckStatus::Fail,
            format!(
                "{shown} is owned by {}:{} mode {:o}; uid {uid} cannot read and write it (the CLI writes refreshed tokens there)",
                meta.uid(),
                meta.gid(),
                meta.mode() & 0o7777
            ),
        )
        .fail(Exit::Permissions, chown);
    }
    let file = credentials::login_file(login, dir);
    if file.exists() && access(file.as_path(), AccessFlags::R_OK | AccessFlags::W_OK).is_err() {
        return check(
            CheckStatus::Fail,
            format!("{} is not readable and writable by uid {uid}", file.display()),
        )
        .fail(Exit::Permissions, chown);
    }
    check(CheckStatus::Ok, format!("{shown} is readable and writable"))
}

fn check_login(settings: &RuntimeSettings, config: &Config, now: SystemTime) -> Check {
    let login = settings.runtime;
    let runtime = login.runtime();
    let mut report = credentials::inspect_dir(login, &settings.login_dir.value, now, config.expiry_lead.value);
    // A login moonauth's refresh found dead (or failing) stays unusable until a new login.
    if report.usable && report.inspection.class.is_oauth() {
        if let Some(why) = crate::renew::relogin_needed(login, &settings.login_dir.value) {
            report.usable = false;
            report.inspection.detail = format!("{}; {why}", report.inspection.detail);
        }
    }
    // A refresh's answer that waits to be written: the CLI must not refresh the spent token.
    let pending = (report.usable && report.inspection.class.is_oauth())
        .then(|| crate::renew::pending_answer(&settings.login_dir.value))
        .flatten();
    if let Some(why) = &pending {
        report.usable = false;
        report.inspection.detail = format!("{}; {why}", report.inspection.detail);
    }
    let class = report.inspection.class;
    let summary = summarize(&report);
    let env_var = settings.env_credentials.first().map(|(name, _)| *name);
    let mut check = Check::new(runtime, "login", CheckStatus::Ok, summary.clone());
    check = match (config.auth_mode.value, report.usable, env_var) {
        (AuthMode::Oauth, true, _) if !class.is_oauth() => check.fail(
            Exit::LoginUnusable,
            format!("MOONAUTH_AUTH_MODE=oauth needs an OAuth login: run `{}`", crate::agents::login_command(runtime, None)),
        ),
        (AuthMode::ApiKey, _, Some(var)) => {
            check.detail = format!("using {var} from the environment (API billing); login file: {summary}");
            check
        }
        (AuthMode::ApiKey, _, None) if class == LoginClass::ApiKey => check,
        (AuthMode::ApiKey, _, None) => check.fail(
            Exit::LoginUnusable,
            format!("MOONAUTH_AUTH_MODE=api-key needs an API key: set {}", login.api_key_var()),
        ),
        (_, true, _) if class == LoginClass::OauthExpiredRefreshable => check.warn(format!(
            "run `moonauth renew {runtime}` (or keep the `moonauth renew --watch` service running); workers sharing a login must not refresh it themselves (docs/shared-logins.md)"
        )),
        (_, true, _) => check,
        (AuthMode::Auto, false, Some(var)) => {
            check.detail = format!("using {var} from the environment; the login file is not usable: {summary}");
            check.warn(format!(
                "{var} bills that credential; run `{}` to use the subscription login instead",
                crate::agents::login_command(runtime, None)
            ))
        }
        (_, false, _) if pending.is_some() => check.fail(
            Exit::LoginUnusable,
            format!(
                "run `moonauth renew {runtime}` once the login directory can be written: it applies the kept answer"
            ),
        ),
        (_, false, _) => {
            let fix = match class {
                LoginClass::Refused => format!(
                    "replace {} with a regular file inside the directory, or run `{}`",
                    report.file.display(),
                    crate::agents::login_command(runtime, None)
                ),
                _ => format!("run `{}` (or sync a host login with --sync-from)", crate::agents::login_command(runtime, None)),
            };
            check.fail(Exit::LoginUnusable, fix)
        }
    };
    check.login = Some(report);
    check
}

/// One line on a login: class, then the metadata a person needs.
pub fn summarize(report: &LoginReport) -> String {
    let i = &report.inspection;
    let mut parts = vec![format!("{}: {}", i.class.as_str(), i.detail)];
    if let Some(plan) = &i.plan {
        parts.push(format!("plan {plan}"));
    }
    if let Some(email) = &i.email {
        parts.push(email.clone());
    }
    if let Some(account) = &i.account_id {
        parts.push(format!("account {account}"));
    }
    if let Some(exp) = i.expires_at {
        parts.push(format!("expires {}", crate::credentials::rfc3339(exp)));
    }
    if let Some(last) = i.last_refresh {
        parts.push(format!("refreshed {}", crate::credentials::rfc3339(last)));
    }
    parts.join(" · ")
}

fn check_env_credentials(settings: &RuntimeSettings, mode: AuthMode) -> Option<Check> {
    let runtime = settings.runtime.runtime();
    if settings.env_credentials.is_empty() {
        return None;
    }
    let names: Vec<&str> = settings.env_credentials.iter().map(|(n, _)| *n).collect();
    let list = names.join(", ");
    let detail = format!(
        "{list} set in the environment; {} uses it instead of the OAuth login in {}, which changes who pays",
        runtime.binary(),
        settings.login_dir.value.display()
    );
    let check = Check::new(runtime, "env-credentials", CheckStatus::Ok, detail);
    Some(match mode {
        AuthMode::ApiKey => check,
        AuthMode::Auto => check.warn(format!(
            "unset {list} to run on the subscription login, or set MOONAUTH_AUTH_MODE=api-key to make the key the intended credential"
        )),
        AuthMode::Oauth => check.fail(
            Exit::LoginUnusable,
            format!("unset {list}: MOONAUTH_AUTH_MODE=oauth allows only the OAuth login"),
        ),
    })
}

/// What a CLI's own status command said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliStatus {
    /// The CLI considers itself logged in.
    pub logged_in: bool,
    /// First line of its output, token-shaped words masked.
    pub summary: String,
}

/// Runs a CLI's status command on `dir` (no stdin, no terminal, a timeout, competing
/// credential variables removed so it judges the file).
pub fn cli_status(
    runtime: LoginRuntime,
    cli: &Path,
    dir: &Path,
    env: &Env,
    timeout: Duration,
) -> Result<CliStatus, String> {
    let mut cmd = Command::new(cli);
    cmd.args(runtime.status_args());
    // The child inherits the process environment; add what only the .env file set.
    cmd.envs(env.dotenv_only());
    for var in LoginRuntime::Claude
        .credential_vars()
        .iter()
        .chain(LoginRuntime::Codex.credential_vars())
    {
        cmd.env_remove(var);
    }
    // Keep the CLI off the network: since 2.1.330 `claude auth status` refreshes an
    // expired login (and wipes it when the refresh is refused), which on a shared
    // login is a second refresher. A proxy on a closed loopback port makes every
    // connection fail at once; the CLI then judges the file as it is.
    let closed = closed_loopback_port();
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env(var, format!("http://127.0.0.1:{closed}"));
    }
    cmd.env_remove("NO_PROXY").env_remove("no_proxy");
    cmd.env(dir_variable(runtime), dir)
        .env("DISABLE_TELEMETRY", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A new session: no controlling terminal, and one process group to kill on timeout.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", cli.display()))?;
    let mut stdout = child.stdout.take().expect("stdout was piped above");
    let mut stderr = child.stderr.take().expect("stderr was piped above");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let pgid = nix::unistd::Pid::from_raw(-(child.id() as i32));
                let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                return Err(format!("timed out after {}", humantime::format_duration(timeout)));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("waiting for the status command failed: {e}")),
        }
    };
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    let json = match runtime {
        LoginRuntime::Claude => serde_json::from_str::<serde_json::Value>(out.trim()).ok(),
        LoginRuntime::Codex => None,
    };
    let logged_in = json
        .as_ref()
        .and_then(|v| v.get("loggedIn").and_then(serde_json::Value::as_bool))
        .unwrap_or(status.success());
    // Claude answers in pretty JSON whose first line is `{`: summarize its fields instead.
    // Codex writes everything to stderr, often after warnings that say nothing about the login.
    let line = match json.as_ref().and_then(claude_status_summary) {
        Some(s) => s,
        None => {
            let lines: Vec<&str> = out
                .lines()
                .chain(err.lines())
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let line = lines.iter().find(|l| !l.starts_with("WARNING")).or(lines.first());
            line.map(|l| l.to_string()).unwrap_or_default()
        }
    };
    // Redact before truncating, and cut on a character boundary (the output is not ASCII-only).
    let summary: String = redact::scrub(&line).chars().take(200).collect();
    Ok(CliStatus { logged_in, summary })
}

/// `authMethod` and `subscriptionType` from `claude auth status` JSON, when present.
fn claude_status_summary(v: &serde_json::Value) -> Option<String> {
    let field = |k: &str| v.get(k).and_then(serde_json::Value::as_str);
    let method = field("authMethod")?;
    Some(match field("subscriptionType") {
        Some(plan) => format!("authMethod {method}, subscriptionType {plan}"),
        None => format!("authMethod {method}"),
    })
}

/// A loopback port nothing listens on (bound, then released).
fn closed_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9)
}

fn check_cli_status(
    login: LoginRuntime,
    cli: &Path,
    settings: &RuntimeSettings,
    report: &LoginReport,
    env: &Env,
    timeout: Duration,
) -> Check {
    let runtime = login.runtime();
    let command = login.status_command();
    let check = |status, detail| Check::new(runtime, "cli-status", status, detail);
    let status = match cli_status(login, cli, &settings.login_dir.value, env, timeout) {
        Ok(s) => s,
        Err(why) => {
            return check(CheckStatus::Fail, format!("`{command}` gave no answer: {why}")).fail(
                Exit::LoginUnusable,
                "check that the CLI starts in this container; raise MOONAUTH_STATUS_TIMEOUT if it is slow",
            )
        }
    };
    let cli_says = if status.logged_in { "logged in" } else { "not logged in" };
    let ours = report.inspection.class;
    match (status.logged_in, report.usable) {
        (true, true) | (false, false) => check(
            CheckStatus::Ok,
            format!("`{command}` agrees: {cli_says} ({})", status.summary),
        ),
        (true, false) if ours == LoginClass::OauthExpiredNotRefreshable => check(
            CheckStatus::Ok,
            format!(
                "`{command}` says logged in, but it does not check expiry: the token expired and cannot be refreshed"
            ),
        ),
        (true, false) => check(
            CheckStatus::Warn,
            format!(
                "`{command}` says logged in, moonauth says {} ({})",
                ours.as_str(),
                status.summary
            ),
        )
        .warn(format!(
            "run `{}` to replace the login",
            crate::agents::login_command(runtime, None)
        )),
        (false, true) => check(
            CheckStatus::Fail,
            format!(
                "`{command}` says not logged in, moonauth read {} ({})",
                ours.as_str(),
                status.summary
            ),
        )
        .fail(
            Exit::LoginUnusable,
            format!("run `{}`", crate::agents::login_command(runtime, None)),
        ),
    }
}

/// Runs the checks until they pass or `wait` runs out (re-checking every `interval`).
pub fn run_until(inputs: &Inputs<'_>, wait: Option<Duration>, interval: Duration) -> PreflightReport {
    let deadline = wait.map(|w| Instant::now() + w);
    let mut rounds = 1;
    let mut last_failed: Vec<String> = Vec::new();
    loop {
        let now = if rounds == 1 { inputs.now } else { SystemTime::now() };
        let mut report = run_checks(&Inputs { now, ..*inputs });
        report.rounds = rounds;
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match remaining {
            Some(left) if !report.ok && !left.is_zero() => {
                let failed: Vec<String> = report
                    .checks
                    .iter()
                    .filter(|c| c.status == CheckStatus::Fail)
                    .map(|c| {
                        format!(
                            "{} {}: {}",
                            c.runtime.map(Runtime::as_str).unwrap_or("-"),
                            c.check,
                            c.detail
                        )
                    })
                    .collect();
                if failed != last_failed {
                    tracing::warn!(
                        "waiting ({} left): {}",
                        humantime::format_duration(Duration::from_secs(left.as_secs())),
                        failed.join("; ")
                    );
                    last_failed = failed;
                }
                std::thread::sleep(interval.min(left));
                rounds += 1;
            }
            _ => return report,
        }
    }
}

/// Replaces this process with the worker command. Returns only on failure.
pub fn exec_worker(command: &[String], env: &Env, exec_env: &BTreeMap<String, String>) -> Error {
    use std::os::unix::process::CommandExt;
    let Some((program, args)) = command.split_first() else {
        return Error::CommandNotFound { command: String::new() };
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    // The worker inherits the process environment, plus what only the .env file set,
    // plus the login directories preflight checked.
    cmd.envs(env.dotenv_only());
    cmd.envs(exec_env);
    let err = cmd.exec();
    match err.kind() {
        // execve says ENOENT both for a missing file and for a script whose `#!`
        // interpreter is missing; only the first is "not found" (127), as in a shell.
        std::io::ErrorKind::NotFound if command_exists(program, env) => Error::CommandNotExecutable {
            command: program.clone(),
            reason: "the file exists, but its interpreter (#! line) or loader was not found".into(),
        },
        std::io::ErrorKind::NotFound => Error::CommandNotFound {
            command: program.clone(),
        },
        _ => Error::CommandNotExecutable {
            command: program.clone(),
            reason: err.to_string(),
        },
    }
}

/// Whether the worker command names an existing file (a path, or a name on PATH).
fn command_exists(program: &str, env: &Env) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    which::which_in(program, env.get("PATH").map(OsString::from), cwd).is_ok()
}

//! Settings: defaults < `.env` file < process environment < flags, read once into a
//! typed [`Config`] whose values remember where they came from.
//!
//! The environment is injected: [`Env`] is a plain value built by `main` from the
//! process and the `.env` file, so tests build their own and never touch the real one.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::agents::{self, claude, codex, LoginRuntime, Runtime, WorkerMode};
use crate::error::{Error, Result};
use crate::redact::Secret;
pub use crate::source::{Env, Origin, Source, Sourced};

/// Who may pay for a run: what `MOONAUTH_AUTH_MODE` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// Any usable credential; credential variables that win over the OAuth login are warned about.
    Auto,
    /// Only the OAuth login in the login directory; competing variables are failures.
    Oauth,
    /// An API key (environment or file) is the intended credential; no warning for it.
    ApiKey,
}

/// The login-related settings of one runtime.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    pub runtime: LoginRuntime,
    /// The directory the CLI reads its login from (inside the worker).
    pub login_dir: Sourced<PathBuf>,
    /// The Docker volume that holds the login.
    pub volume_name: Sourced<String>,
    /// Credential variables set in the environment that the CLI would use, by name.
    pub env_credentials: Vec<(&'static str, Secret)>,
}

/// Values given on the command line, which win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub worker_mode: Option<String>,
    pub expiry_lead: Option<String>,
    pub auth_mode: Option<String>,
    /// `moonauth renew --lead`.
    pub renew_lead: Option<String>,
}

/// moonauth's resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub worker_mode: Sourced<WorkerMode>,
    pub default_task_runtime: Sourced<Runtime>,
    pub codex: RuntimeSettings,
    pub claude: RuntimeSettings,
    pub auth_mode: Sourced<AuthMode>,
    /// How long before expiry an OAuth login counts as "expiring soon".
    pub expiry_lead: Sourced<Duration>,
    /// Timeout for the CLIs' own status commands (`preflight --deep`).
    pub status_timeout: Sourced<Duration>,
    pub docker: DockerSettings,
    /// Where the account store lives (`MOONAUTH_STATE_DIR`); `None` when it is not set
    /// and there is no `XDG_STATE_HOME` or `HOME` to derive it from.
    pub state_dir: Option<Sourced<PathBuf>>,
    pub run: RunSettings,
    /// Where and when moonauth refreshes OAuth logins itself (`moonauth renew`).
    pub renew: RenewSettings,
    /// What `moonauth ci check` holds a GitHub Actions step against.
    pub github: GithubSettings,
}

/// GitHub Actions settings (docs/github-actions.md).
#[derive(Debug, Clone)]
pub struct GithubSettings {
    /// The events the Claude GitHub App token exchange accepts (`MOONAUTH_GITHUB_EVENTS`,
    /// comma-separated): the backend's list has changed before.
    pub app_events: Sourced<Vec<String>>,
    /// The audience `ci check --oidc` asks its token for (`MOONAUTH_OIDC_AUDIENCE`).
    pub oidc_audience: Sourced<String>,
}

/// How `moonauth run` fails over.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Fall back to an API key when every OAuth account is out for quota (`MOONAUTH_API_FALLBACK`).
    pub api_fallback: Sourced<bool>,
    /// The prompt that continues a resumed session (`MOONAUTH_CONTINUE_PROMPT`).
    pub continuation: Sourced<String>,
    /// Retries on the same account after a throttle or overload (`MOONAUTH_THROTTLE_RETRIES`).
    pub throttle_retries: Sourced<u32>,
    /// The first backoff before such a retry; it doubles (`MOONAUTH_THROTTLE_BACKOFF`).
    pub throttle_backoff: Sourced<Duration>,
    /// `CLAUDE_CODE_MAX_RETRIES` for the CLI when the environment does not set it (`MOONAUTH_CLI_MAX_RETRIES`).
    pub cli_max_retries: Sourced<u32>,
}

/// Settings of moonauth's own token refresh (docs/shared-logins.md).
#[derive(Debug, Clone)]
pub struct RenewSettings {
    /// Claude Code's token endpoint (`MOONAUTH_CLAUDE_TOKEN_URL`).
    pub claude_token_url: Sourced<String>,
    /// Codex's token endpoint (`CODEX_REFRESH_TOKEN_URL_OVERRIDE`, the variable codex itself reads).
    pub codex_token_url: Sourced<String>,
    /// Refresh when the access token expires within this (`MOONAUTH_RENEW_LEAD`, `--lead`).
    pub lead: Sourced<Duration>,
    /// How long to wait for another holder's refresh lock (`MOONAUTH_RENEW_LOCK_TIMEOUT`).
    pub lock_timeout: Sourced<Duration>,
    /// First delay between retries of a refresh that failed for a passing reason
    /// (`MOONAUTH_RENEW_RETRY_DELAY`); it doubles each time.
    pub retry_delay: Sourced<Duration>,
}

/// How moonauth reaches Docker and what it runs there.
#[derive(Debug, Clone)]
pub struct DockerSettings {
    /// `DOCKER_HOST`, when set (else the local socket).
    pub host: Option<String>,
    /// Timeout of each Engine API call (`MOONAUTH_DOCKER_TIMEOUT`).
    pub timeout: Sourced<Duration>,
    /// The worker image logins run in (`MOONAUTH_IMAGE`).
    pub image: Option<Sourced<String>>,
    /// The worker user that owns the logins (`MOONAUTH_WORKER_UID` / `MOONAUTH_WORKER_GID`).
    pub uid: Sourced<u32>,
    pub gid: Sourced<u32>,
    /// A custom login command (`MOONAUTH_LOGIN_COMMAND`), split into arguments, never run by a shell.
    pub login_command: Option<Sourced<Vec<String>>>,
    /// A statically linked moonauth to put logins in place with (`MOONAUTH_STATIC_BIN`),
    /// when this one is not static; checked when it is used (docker::helper).
    pub static_bin: Option<Sourced<PathBuf>>,
}

/// The variables read into [`Config`], as envy deserializes them (names lower-cased).
#[derive(Debug, Default, Deserialize)]
struct RawVars {
    moonmind_worker_runtime: Option<String>,
    codex_volume_name: Option<String>,
    claude_volume_name: Option<String>,
    moonauth_auth_mode: Option<String>,
    moonauth_expiry_lead: Option<String>,
    moonauth_status_timeout: Option<String>,
    moonauth_image: Option<String>,
    moonauth_worker_uid: Option<String>,
    moonauth_worker_gid: Option<String>,
    moonauth_login_command: Option<String>,
    moonauth_static_bin: Option<String>,
    moonauth_docker_timeout: Option<String>,
    docker_host: Option<String>,
    moonauth_state_dir: Option<String>,
    moonauth_api_fallback: Option<String>,
    moonauth_continue_prompt: Option<String>,
    moonauth_throttle_retries: Option<String>,
    moonauth_throttle_backoff: Option<String>,
    moonauth_cli_max_retries: Option<String>,
    moonauth_github_events: Option<String>,
    moonauth_oidc_audience: Option<String>,
    moonauth_claude_token_url: Option<String>,
    codex_refresh_token_url_override: Option<String>,
    moonauth_renew_lead: Option<String>,
    moonauth_renew_lock_timeout: Option<String>,
    moonauth_renew_retry_delay: Option<String>,
}

/// Default login directory of Codex inside a worker (MoonMind's `CODEX_VOLUME_PATH`).
/// The events the Claude GitHub App token exchange accepts by default
/// (`MOONAUTH_GITHUB_EVENTS` replaces the list: the backend's list has changed before).
pub const DEFAULT_APP_EVENTS: [&str; 10] = [
    "pull_request",
    "issue_comment",
    "pull_request_comment",
    "issues",
    "pull_request_review",
    "pull_request_review_comment",
    "repository_dispatch",
    "workflow_dispatch",
    "schedule",
    "workflow_run",
];

/// The OIDC audience claude-code-action asks for (`MOONAUTH_OIDC_AUDIENCE` changes it).
pub const DEFAULT_OIDC_AUDIENCE: &str = "claude-code-github-action";

/// The continuation prompt when none is configured.
pub const DEFAULT_CONTINUATION: &str = "Continue from where you left off.";

pub const DEFAULT_CODEX_HOME: &str = "/home/app/.codex";
/// Default login directory of Claude Code inside a worker (MoonMind's `CLAUDE_VOLUME_PATH`).
pub const DEFAULT_CLAUDE_HOME: &str = "/home/app/.claude";
/// Default volume names.
pub const DEFAULT_CODEX_VOLUME: &str = "codex_auth_volume";
pub const DEFAULT_CLAUDE_VOLUME: &str = "claude_auth_volume";
/// Default lead before expiry for "expiring soon".
pub const DEFAULT_EXPIRY_LEAD: Duration = Duration::from_secs(10 * 60);
/// Default timeout for a CLI status command.
pub const DEFAULT_STATUS_TIMEOUT: Duration = Duration::from_secs(20);

/// Default timeout of one Docker Engine API call.
pub const DEFAULT_DOCKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Default renewal lead: above the longest task, so a running CLI never reaches its own
/// 5-minute refresh window (docs/shared-logins.md).
pub const DEFAULT_RENEW_LEAD: Duration = Duration::from_secs(60 * 60);
/// Default wait for the refresh lock: above Claude Code's 60 s stale time, so a lock left
/// by a killed claude is taken over instead of timing out.
pub const DEFAULT_RENEW_LOCK_TIMEOUT: Duration = Duration::from_secs(90);
/// Default first retry delay of a refresh that failed for a passing reason.
pub const DEFAULT_RENEW_RETRY_DELAY: Duration = Duration::from_secs(1);

impl Config {
    /// Reads and validates every setting once. Any invalid value is an error naming its variable.
    pub fn resolve(env: &Env, overrides: &Overrides) -> Result<Config> {
        let raw: RawVars = envy::from_iter(env.pairs()).map_err(|e| Error::InvalidVariable {
            var: "environment".into(),
            value: String::new(),
            reason: e.to_string(),
        })?;

        let worker_mode = pick(
            env,
            overrides.worker_mode.as_deref(),
            "--mode",
            "MOONMIND_WORKER_RUNTIME",
            &raw.moonmind_worker_runtime,
            WorkerMode::Codex,
            agents::parse_worker_mode,
        )?;

        let default_task_runtime = agents::default_task_runtime(env)?;

        let codex_dir = first_set(env, &[codex::DIR_VARIABLE, "CODEX_VOLUME_PATH"], DEFAULT_CODEX_HOME)?;
        let claude_dir = first_set(
            env,
            &[claude::DIR_VARIABLE, "CLAUDE_HOME", "CLAUDE_VOLUME_PATH"],
            DEFAULT_CLAUDE_HOME,
        )?;

        let codex = RuntimeSettings {
            runtime: LoginRuntime::Codex,
            login_dir: codex_dir,
            volume_name: volume_name(env, "CODEX_VOLUME_NAME", &raw.codex_volume_name, DEFAULT_CODEX_VOLUME)?,
            env_credentials: credential_vars(env, LoginRuntime::Codex.credential_vars()),
        };
        let claude = RuntimeSettings {
            runtime: LoginRuntime::Claude,
            login_dir: claude_dir,
            volume_name: volume_name(
                env,
                "CLAUDE_VOLUME_NAME",
                &raw.claude_volume_name,
                DEFAULT_CLAUDE_VOLUME,
            )?,
            env_credentials: credential_vars(env, LoginRuntime::Claude.credential_vars()),
        };

        let auth_mode = pick(
            env,
            overrides.auth_mode.as_deref(),
            "--auth-mode",
            "MOONAUTH_AUTH_MODE",
            &raw.moonauth_auth_mode,
            AuthMode::Auto,
            parse_auth_mode,
        )?;
        let expiry_lead = pick(
            env,
            overrides.expiry_lead.as_deref(),
            "--lead",
            "MOONAUTH_EXPIRY_LEAD",
            &raw.moonauth_expiry_lead,
            DEFAULT_EXPIRY_LEAD,
            parse_duration,
        )?;
        let status_timeout = pick(
            env,
            None,
            "",
            "MOONAUTH_STATUS_TIMEOUT",
            &raw.moonauth_status_timeout,
            DEFAULT_STATUS_TIMEOUT,
            parse_positive_duration,
        )?;

        let docker = DockerSettings {
            host: non_blank(&raw.docker_host).map(str::to_string),
            timeout: pick(
                env,
                None,
                "",
                "MOONAUTH_DOCKER_TIMEOUT",
                &raw.moonauth_docker_timeout,
                DEFAULT_DOCKER_TIMEOUT,
                parse_positive_duration,
            )?,
            image: non_blank(&raw.moonauth_image).map(|v| Sourced::new(v.to_string(), env.source_of("MOONAUTH_IMAGE"))),
            uid: pick(
                env,
                None,
                "",
                "MOONAUTH_WORKER_UID",
                &raw.moonauth_worker_uid,
                1000,
                parse_id,
            )?,
            gid: pick(
                env,
                None,
                "",
                "MOONAUTH_WORKER_GID",
                &raw.moonauth_worker_gid,
                1000,
                parse_id,
            )?,
            login_command: match non_blank(&raw.moonauth_login_command) {
                None => None,
                Some(v) => Some(Sourced::new(
                    parse_command(v).map_err(|reason| Error::InvalidVariable {
                        var: "MOONAUTH_LOGIN_COMMAND".into(),
                        value: v.to_string(),
                        reason,
                    })?,
                    env.source_of("MOONAUTH_LOGIN_COMMAND"),
                )),
            },
            static_bin: non_blank(&raw.moonauth_static_bin)
                .map(|v| Sourced::new(PathBuf::from(v), env.source_of("MOONAUTH_STATIC_BIN"))),
        };

        let state_dir = state_dir(env, &raw.moonauth_state_dir)?;

        let run = RunSettings {
            api_fallback: pick(
                env,
                None,
                "",
                "MOONAUTH_API_FALLBACK",
                &raw.moonauth_api_fallback,
                false,
                parse_bool,
            )?,
            continuation: match non_blank(&raw.moonauth_continue_prompt) {
                Some(v) => Sourced::new(v.to_string(), env.source_of("MOONAUTH_CONTINUE_PROMPT")),
                None => Sourced::new(DEFAULT_CONTINUATION.to_string(), Source::Default),
            },
            throttle_retries: pick(
                env,
                None,
                "",
                "MOONAUTH_THROTTLE_RETRIES",
                &raw.moonauth_throttle_retries,
                2,
                parse_small_count,
            )?,
            throttle_backoff: pick(
                env,
                None,
                "",
                "MOONAUTH_THROTTLE_BACKOFF",
                &raw.moonauth_throttle_backoff,
                Duration::from_secs(5),
                parse_duration,
            )?,
            cli_max_retries: pick(
                env,
                None,
                "",
                "MOONAUTH_CLI_MAX_RETRIES",
                &raw.moonauth_cli_max_retries,
                1,
                parse_small_count,
            )?,
        };

        let renew = renew_settings(env, &raw, overrides)?;
        let github = GithubSettings {
            app_events: match non_blank(&raw.moonauth_github_events) {
                Some(v) => {
                    let events: Vec<String> = v
                        .split(',')
                        .map(str::trim)
                        .filter(|e| !e.is_empty())
                        .map(str::to_string)
                        .collect();
                    if let Some(bad) = events
                        .iter()
                        .find(|e| !e.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                    {
                        return Err(Error::InvalidVariable {
                            var: "MOONAUTH_GITHUB_EVENTS".into(),
                            value: v.to_string(),
                            reason: format!("{bad:?} is not an event name (lower-case letters and _, comma-separated)"),
                        });
                    }
                    Sourced::new(events, env.source_of("MOONAUTH_GITHUB_EVENTS"))
                }
                None => Sourced::new(
                    DEFAULT_APP_EVENTS.iter().map(|e| e.to_string()).collect(),
                    Source::Default,
                ),
            },
            oidc_audience: match non_blank(&raw.moonauth_oidc_audience) {
                Some(v) => Sourced::new(v.to_string(), env.source_of("MOONAUTH_OIDC_AUDIENCE")),
                None => Sourced::new(DEFAULT_OIDC_AUDIENCE.to_string(), Source::Default),
            },
        };

        Ok(Config {
            run,
            state_dir,
            renew,
            github,
            docker,
            worker_mode,
            default_task_runtime,
            codex,
            claude,
            auth_mode,
            expiry_lead,
            status_timeout,
        })
    }

    /// The settings of a runtime that has a login (Codex or Claude).
    /// `None` for Gemini, which has no login moonauth manages.
    pub fn runtime(&self, runtime: Runtime) -> Option<&RuntimeSettings> {
        runtime.login().map(|login| self.login(login))
    }

    /// The settings of a runtime with a login.
    pub fn login(&self, runtime: LoginRuntime) -> &RuntimeSettings {
        match runtime {
            LoginRuntime::Codex => &self.codex,
            LoginRuntime::Claude => &self.claude,
        }
    }

    /// The account store's directory, or an error naming `MOONAUTH_STATE_DIR` when
    /// there is none.
    pub fn state_dir(&self) -> Result<&Sourced<PathBuf>> {
        self.state_dir.as_ref().ok_or_else(|| Error::InvalidVariable {
            var: "MOONAUTH_STATE_DIR".into(),
            value: String::new(),
            reason: "it is not set, and neither XDG_STATE_HOME nor HOME is set to derive the default".into(),
        })
    }
}

/// `MOONAUTH_STATE_DIR` (absolute), else `$XDG_STATE_HOME/moonauth`, else
/// `$HOME/.local/state/moonauth`. Relative XDG/HOME values are ignored, as the XDG
/// spec says.
fn state_dir(env: &Env, raw: &Option<String>) -> Result<Option<Sourced<PathBuf>>> {
    if let Some(v) = non_blank(raw) {
        let path = PathBuf::from(v);
        if !path.is_absolute() {
            return Err(Error::InvalidVariable {
                var: "MOONAUTH_STATE_DIR".into(),
                value: v.to_string(),
                reason: "must be an absolute path".into(),
            });
        }
        return Ok(Some(Sourced::new(path, env.source_of("MOONAUTH_STATE_DIR"))));
    }
    let absolute = |var: &str| env.non_blank(var).map(PathBuf::from).filter(|p| p.is_absolute());
    let derived = absolute("XDG_STATE_HOME")
        .map(|p| p.join("moonauth"))
        .or_else(|| absolute("HOME").map(|p| p.join(".local/state/moonauth")));
    Ok(derived.map(|p| Sourced::new(p, Source::Default)))
}

fn renew_settings(env: &Env, raw: &RawVars, overrides: &Overrides) -> Result<RenewSettings> {
    let url = |var: &str, value: &Option<String>, default: &str, strict: bool| -> Result<Sourced<String>> {
        match non_blank(value) {
            None => Ok(Sourced::new(default.to_string(), Source::Default)),
            Some(v) => parse_token_url(v, strict)
                .map(|u| Sourced::new(u, env.source_of(var)))
                .map_err(|reason| Error::InvalidVariable {
                    var: var.to_string(),
                    value: v.to_string(),
                    reason,
                }),
        }
    };
    Ok(RenewSettings {
        claude_token_url: url(
            claude::TOKEN_URL_VARIABLE,
            &raw.moonauth_claude_token_url,
            claude::TOKEN_URL,
            true,
        )?,
        codex_token_url: url(
            codex::TOKEN_URL_VARIABLE,
            &raw.codex_refresh_token_url_override,
            codex::TOKEN_URL,
            // codex itself follows this variable wherever it points; refusing what codex
            // accepts would protect nothing and break every command where it is set.
            false,
        )?,
        lead: pick(
            env,
            overrides.renew_lead.as_deref(),
            "--lead",
            "MOONAUTH_RENEW_LEAD",
            &raw.moonauth_renew_lead,
            DEFAULT_RENEW_LEAD,
            parse_duration,
        )?,
        lock_timeout: pick(
            env,
            None,
            "",
            "MOONAUTH_RENEW_LOCK_TIMEOUT",
            &raw.moonauth_renew_lock_timeout,
            DEFAULT_RENEW_LOCK_TIMEOUT,
            parse_duration,
        )?,
        retry_delay: pick(
            env,
            None,
            "",
            "MOONAUTH_RENEW_RETRY_DELAY",
            &raw.moonauth_renew_retry_delay,
            DEFAULT_RENEW_RETRY_DELAY,
            parse_duration,
        )?,
    })
}

/// Checks a token endpoint URL: `https://…`, or with `strict` `http://` to the loopback
/// only (a refresh token must never cross a network in clear text; tests use a loopback
/// token service).
pub fn parse_token_url(value: &str, strict: bool) -> std::result::Result<String, String> {
    let v = value.trim();
    let (scheme, rest) = v
        .split_once("://")
        .ok_or_else(|| "expected a URL such as https://host/path".to_string())?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if host.is_empty() || authority.contains('@') {
        return Err("expected a URL with a host and no user name, such as https://host/path".into());
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(v.to_string()),
        "http" if !strict || matches!(host, "127.0.0.1" | "localhost" | "::1") => Ok(v.to_string()),
        "http" => Err("plain http is allowed only to 127.0.0.1, localhost or [::1]; use https".into()),
        _ => Err("expected an https:// URL".into()),
    }
}

fn non_blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The first of `vars` that is set, which must be an absolute path: a login directory is
/// where a volume is mounted in every worker, and a relative one would name a different
/// directory in each working directory (the CLIs, preflight and `renew` would disagree).
fn first_set(env: &Env, vars: &[&str], default: &str) -> Result<Sourced<PathBuf>> {
    for var in vars {
        if let Some(v) = env.non_blank(var) {
            let path = PathBuf::from(v);
            if !path.is_absolute() {
                return Err(Error::InvalidVariable {
                    var: var.to_string(),
                    value: v.to_string(),
                    reason: format!("a login directory must be an absolute path (e.g. {default})"),
                });
            }
            return Ok(Sourced::new(path, env.source_of(var)));
        }
    }
    Ok(Sourced::new(PathBuf::from(default), Source::Default))
}

fn volume_name(env: &Env, var: &str, raw: &Option<String>, default: &str) -> Result<Sourced<String>> {
    match non_blank(raw) {
        None => Ok(Sourced::new(default.to_string(), Source::Default)),
        Some(v) if is_volume_name(v) => Ok(Sourced::new(v.to_string(), env.source_of(var))),
        Some(v) => Err(Error::InvalidVariable {
            var: var.to_string(),
            value: v.to_string(),
            reason: VOLUME_NAME_RULE.into(),
        }),
    }
}

/// What [`is_volume_name`] checks, for error messages.
pub const VOLUME_NAME_RULE: &str =
    "a Docker volume name has at least 2 characters from [a-zA-Z0-9_.-] and starts with a letter or digit";

/// Docker's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn is_volume_name(v: &str) -> bool {
    v.len() >= 2
        && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn credential_vars(env: &Env, names: &[&'static str]) -> Vec<(&'static str, Secret)> {
    names
        .iter()
        .filter_map(|name| env.non_blank(name).map(|v| (*name, Secret::new(v))))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn pick<T>(
    env: &Env,
    flag_value: Option<&str>,
    flag: &'static str,
    var: &str,
    raw: &Option<String>,
    default: T,
    parse: fn(&str) -> std::result::Result<T, String>,
) -> Result<Sourced<T>> {
    let from_flag = match flag_value {
        Some(v) => Some(parse(v).map_err(|reason| Error::InvalidFlag {
            flag,
            value: v.to_string(),
            reason,
        })?),
        None => None,
    };
    // The variable is validated even when the flag wins: an invalid value is never masked.
    let from_env = match non_blank(raw) {
        Some(v) => Some(parse(v).map_err(|reason| Error::InvalidVariable {
            var: var.to_string(),
            value: v.to_string(),
            reason,
        })?),
        None => None,
    };
    Ok(match (from_flag, from_env) {
        (Some(value), _) => Sourced::new(value, Source::Flag(flag)),
        (None, Some(value)) => Sourced::new(value, env.source_of(var)),
        (None, None) => Sourced::new(default, Source::Default),
    })
}

/// Parses `MOONAUTH_AUTH_MODE`: `auto`, `oauth` or `api-key` (trimmed, any case).
pub fn parse_auth_mode(value: &str) -> std::result::Result<AuthMode, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(AuthMode::Auto),
        "oauth" => Ok(AuthMode::Oauth),
        "api-key" | "api_key" | "apikey" => Ok(AuthMode::ApiKey),
        _ => Err("allowed values: auto, oauth, api-key".into()),
    }
}

/// Parses a duration such as `90s`, `10m`, `1h30m` (humantime), or plain seconds.
pub fn parse_duration(value: &str) -> std::result::Result<Duration, String> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(v).map_err(|_| "expected a duration such as 90s, 10m or 1h".to_string())
}

/// Parses a yes/no setting: 1/0, true/false, yes/no, on/off (any case).
pub fn parse_bool(value: &str) -> std::result::Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected 1/0, true/false, yes/no or on/off".into()),
    }
}

fn parse_small_count(value: &str) -> std::result::Result<u32, String> {
    match value.trim().parse::<u32>() {
        Ok(n) if n <= 15 => Ok(n),
        _ => Err("expected a whole number from 0 to 15".into()),
    }
}

fn parse_id(value: &str) -> std::result::Result<u32, String> {
    value
        .trim()
        .parse::<u32>()
        .map_err(|_| "expected a numeric id such as 1000".to_string())
}

/// Splits a command line into arguments the way a shell would quote them, without a shell.
pub fn parse_command(value: &str) -> std::result::Result<Vec<String>, String> {
    let words = shell_words::split(value).map_err(|_| "unbalanced quotes".to_string())?;
    if words.is_empty() {
        return Err("empty command".into());
    }
    Ok(words)
}

fn parse_positive_duration(value: &str) -> std::result::Result<Duration, String> {
    match parse_duration(value)? {
        d if d.is_zero() => Err("must be greater than zero".into()),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(pairs: &[(&str, &str)]) -> Result<Config> {
        Config::resolve(&Env::from_pairs(pairs.iter().copied()), &Overrides::default())
    }

    #[test]
    fn relative_login_directories_are_refused_naming_the_variable() {
        for var in [
            "CODEX_HOME",
            "CODEX_VOLUME_PATH",
            "CLAUDE_CONFIG_DIR",
            "CLAUDE_HOME",
            "CLAUDE_VOLUME_PATH",
        ] {
            let err = resolve(&[(var, "relative/dir")]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(var) && text.contains("absolute path"), "{text}");
            assert_eq!(err.exit(), crate::exit::Exit::Usage, "{text}");
        }
    }

    #[test]
    fn defaults_follow_moonmind() {
        let c = resolve(&[]).unwrap();
        assert_eq!(c.worker_mode.value, WorkerMode::Codex);
        assert_eq!(c.codex.login_dir.value, PathBuf::from(DEFAULT_CODEX_HOME));
        assert_eq!(c.claude.login_dir.value, PathBuf::from(DEFAULT_CLAUDE_HOME));
        assert_eq!(c.codex.volume_name.value, DEFAULT_CODEX_VOLUME);
        assert_eq!(c.claude.volume_name.value, DEFAULT_CLAUDE_VOLUME);
        assert_eq!(c.auth_mode.value, AuthMode::Auto);
        assert_eq!(c.expiry_lead.source, Source::Default);
    }

    #[test]
    fn claude_config_dir_wins_over_claude_home_and_volume_path() {
        let c = resolve(&[
            ("CLAUDE_VOLUME_PATH", "/v"),
            ("CLAUDE_HOME", "/h"),
            ("CLAUDE_CONFIG_DIR", "/c"),
        ])
        .unwrap();
        assert_eq!(c.claude.login_dir.value, PathBuf::from("/c"));
        assert_eq!(c.claude.login_dir.source, Source::Env("CLAUDE_CONFIG_DIR".into()));
        let c = resolve(&[("CLAUDE_VOLUME_PATH", "/v"), ("CLAUDE_HOME", "/h")]).unwrap();
        assert_eq!(c.claude.login_dir.value, PathBuf::from("/h"));
        let c = resolve(&[("CLAUDE_VOLUME_PATH", "/v")]).unwrap();
        assert_eq!(c.claude.login_dir.value, PathBuf::from("/v"));
    }

    #[test]
    fn codex_home_wins_over_volume_path() {
        let c = resolve(&[("CODEX_VOLUME_PATH", "/v"), ("CODEX_HOME", "/h")]).unwrap();
        assert_eq!(c.codex.login_dir.value, PathBuf::from("/h"));
        let c = resolve(&[("CODEX_VOLUME_PATH", "/v"), ("CODEX_HOME", "  ")]).unwrap();
        assert_eq!(c.codex.login_dir.value, PathBuf::from("/v"));
    }

    #[test]
    fn login_command_is_split_without_a_shell() {
        let c = resolve(&[(
            "MOONAUTH_LOGIN_COMMAND",
            "claude auth login --claudeai 'a b' ; rm -rf /",
        )])
        .unwrap();
        let cmd = c.docker.login_command.unwrap().value;
        assert_eq!(
            cmd,
            ["claude", "auth", "login", "--claudeai", "a b", ";", "rm", "-rf", "/"]
        );
    }

    #[test]
    fn flags_win_over_environment() {
        let env = Env::from_pairs([("MOONMIND_WORKER_RUNTIME", "claude")]);
        let o = Overrides {
            worker_mode: Some("universal".into()),
            ..Default::default()
        };
        let c = Config::resolve(&env, &o).unwrap();
        assert_eq!(c.worker_mode.value, WorkerMode::Universal);
        assert_eq!(c.worker_mode.source, Source::Flag("--mode"));
    }

    #[test]
    fn every_invalid_variable_is_named() {
        for (var, value) in [
            ("MOONMIND_WORKER_RUNTIME", "gpt"),
            ("MOONMIND_DEFAULT_TASK_RUNTIME", "universal"),
            ("SPEC_WORKFLOW_DEFAULT_TASK_RUNTIME", "bogus"),
            ("MOONAUTH_AUTH_MODE", "sometimes"),
            ("MOONAUTH_EXPIRY_LEAD", "soon"),
            ("MOONAUTH_STATUS_TIMEOUT", "0"),
            ("CODEX_VOLUME_NAME", "bad name"),
            ("CLAUDE_VOLUME_NAME", "/abs"),
            ("MOONAUTH_WORKER_UID", "app"),
            ("MOONAUTH_WORKER_GID", "-1"),
            ("MOONAUTH_DOCKER_TIMEOUT", "forever"),
            ("MOONAUTH_LOGIN_COMMAND", "claude 'auth login"),
            ("MOONAUTH_API_FALLBACK", "maybe"),
            ("MOONAUTH_THROTTLE_RETRIES", "100"),
            ("MOONAUTH_THROTTLE_BACKOFF", "later"),
            ("MOONAUTH_CLI_MAX_RETRIES", "-1"),
            ("MOONAUTH_CLAUDE_TOKEN_URL", "http://token.example/v1/oauth/token"),
            ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", "ftp://127.0.0.1/x"),
            ("MOONAUTH_RENEW_LEAD", "later"),
            ("MOONAUTH_RENEW_LOCK_TIMEOUT", "never"),
            ("MOONAUTH_RENEW_RETRY_DELAY", "x"),
        ] {
            let err = resolve(&[(var, value)]).unwrap_err();
            assert_eq!(err.exit(), crate::exit::Exit::Usage, "{var}");
            assert!(err.to_string().contains(var), "{var}: {err}");
        }
    }

    #[test]
    fn an_invalid_variable_is_reported_even_when_a_flag_wins() {
        let env = Env::from_pairs([("MOONMIND_WORKER_RUNTIME", "gpt"), ("MOONAUTH_EXPIRY_LEAD", "soon")]);
        let o = Overrides {
            worker_mode: Some("claude".into()),
            expiry_lead: Some("1m".into()),
            ..Default::default()
        };
        let err = Config::resolve(&env, &o).unwrap_err();
        assert!(err.to_string().contains("MOONMIND_WORKER_RUNTIME"), "{err}");
    }

    #[test]
    fn state_dir_follows_xdg_then_home_and_must_be_absolute() {
        let c = resolve(&[("HOME", "/home/app"), ("XDG_STATE_HOME", "/xdg")]).unwrap();
        assert_eq!(c.state_dir().unwrap().value, PathBuf::from("/xdg/moonauth"));
        let c = resolve(&[("HOME", "/home/app"), ("XDG_STATE_HOME", "relative")]).unwrap();
        assert_eq!(
            c.state_dir().unwrap().value,
            PathBuf::from("/home/app/.local/state/moonauth")
        );
        let c = resolve(&[("HOME", "/home/app"), ("MOONAUTH_STATE_DIR", "/state")]).unwrap();
        assert_eq!(c.state_dir().unwrap().value, PathBuf::from("/state"));
        assert_eq!(c.state_dir().unwrap().source, Source::Env("MOONAUTH_STATE_DIR".into()));
        let err = resolve(&[]).unwrap().state_dir().unwrap_err();
        assert!(err.to_string().contains("MOONAUTH_STATE_DIR"), "{err}");
        let err = resolve(&[("MOONAUTH_STATE_DIR", "state")]).unwrap_err();
        assert!(err.to_string().contains("MOONAUTH_STATE_DIR"), "{err}");
    }

    #[test]
    fn renew_endpoints_default_to_the_real_ones_and_follow_codex_override() {
        let c = resolve(&[]).unwrap();
        assert_eq!(c.renew.claude_token_url.value, claude::TOKEN_URL);
        assert_eq!(c.renew.codex_token_url.value, codex::TOKEN_URL);
        assert_eq!(c.renew.lead.value, DEFAULT_RENEW_LEAD);
        let c = resolve(&[
            ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", "http://127.0.0.1:4000/oauth/token"),
            ("MOONAUTH_CLAUDE_TOKEN_URL", "http://[::1]:5/t"),
            ("MOONAUTH_RENEW_LEAD", "2h"),
        ])
        .unwrap();
        assert_eq!(c.renew.codex_token_url.value, "http://127.0.0.1:4000/oauth/token");
        assert_eq!(
            c.renew.codex_token_url.source,
            Source::Env("CODEX_REFRESH_TOKEN_URL_OVERRIDE".into())
        );
        assert_eq!(c.renew.claude_token_url.value, "http://[::1]:5/t");
        assert_eq!(c.renew.lead.value, Duration::from_secs(7200));
        assert!(parse_token_url("https://user@host/x", true).is_err());
        assert!(parse_token_url("http://localhost.evil.example/x", true).is_err());
        assert!(parse_token_url("http://auth.corp.example/oauth/token", false).is_ok());
    }

    #[test]
    fn env_file_values_are_under_process_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custom.env");
        std::fs::write(&path, "MOONMIND_WORKER_RUNTIME=claude\nCODEX_HOME=/from-file\n").unwrap();
        let env = Env::load([("CODEX_HOME".to_string(), "/from-process".to_string())], Some(&path)).unwrap();
        let c = Config::resolve(&env, &Overrides::default()).unwrap();
        assert_eq!(c.worker_mode.value, WorkerMode::Claude);
        assert_eq!(c.worker_mode.source, Source::DotEnv("MOONMIND_WORKER_RUNTIME".into()));
        assert_eq!(c.codex.login_dir.value, PathBuf::from("/from-process"));
    }

    #[test]
    fn missing_explicit_env_file_is_a_usage_error() {
        let err =
            Error::from(Env::load(Vec::new(), Some(std::path::Path::new("/nonexistent/moonauth.env"))).unwrap_err());
        assert_eq!(err.exit(), crate::exit::Exit::Usage);
        assert!(err.to_string().contains("/nonexistent/moonauth.env"));
    }
}

//! The one exit-code table. Every command ends through [`Exit`]; `docs/exit-codes.md`
//! documents the same table and a test keeps the two in step.

use serde::Serialize;

/// A process exit status with a documented meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exit {
    /// Everything checked out; the command did what was asked.
    Ok,
    /// An unexpected failure (I/O error, a bug); the message says what.
    Failure,
    /// Bad usage or configuration: a flag, a variable, a payload field, an `.env` file.
    Usage,
    /// A runtime's CLI (`claude`, `codex`, `gemini`) is not on PATH or not executable.
    CliMissing,
    /// A login is missing, malformed, expired without a refresh token, or refused by policy.
    LoginUnusable,
    /// A login directory is missing, or not readable and writable by this user.
    Permissions,
    /// The Docker engine cannot be reached (not running, wrong `DOCKER_HOST`, timeout).
    DockerUnreachable,
    /// Docker refused or failed an operation: an image is missing, a volume is in use or not moonauth's.
    DockerFailed,
    /// A login or sync failed or was aborted; the previous login is unchanged.
    LoginFailed,
    /// An interactive login was asked for without a terminal.
    NeedsTerminal,
    /// No account of the runtime can be used now: each is disabled, cooling down or needs a re-login.
    AccountsExhausted,
    /// A rotation setting (store, variable or flag) breaks its rule; nothing was changed.
    InvalidSetting,
    /// The worker command given after `--` exists but cannot be executed.
    CommandNotExecutable,
    /// The worker command given after `--` was not found.
    CommandNotFound,
    /// `moonauth run` passes the CLI's own exit status through (not in the fixed table).
    Child(u8),
}

impl Exit {
    /// Every code, in table order (for docs and tests).
    pub const ALL: [Exit; 14] = [
        Exit::Ok,
        Exit::Failure,
        Exit::Usage,
        Exit::CliMissing,
        Exit::LoginUnusable,
        Exit::Permissions,
        Exit::DockerUnreachable,
        Exit::DockerFailed,
        Exit::LoginFailed,
        Exit::NeedsTerminal,
        Exit::AccountsExhausted,
        Exit::InvalidSetting,
        Exit::CommandNotExecutable,
        Exit::CommandNotFound,
    ];

    /// The numeric status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::CliMissing => 3,
            Exit::LoginUnusable => 4,
            Exit::Permissions => 5,
            Exit::DockerUnreachable => 6,
            Exit::DockerFailed => 7,
            Exit::LoginFailed => 8,
            Exit::NeedsTerminal => 9,
            Exit::AccountsExhausted => 10,
            Exit::InvalidSetting => 11,
            Exit::CommandNotExecutable => 126,
            Exit::CommandNotFound => 127,
            Exit::Child(code) => code,
        }
    }

    /// One line on what the code means, as in `docs/exit-codes.md`.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "success: every check passed, or the command did what was asked",
            Exit::Failure => "unexpected failure (I/O error or bug); the message says what",
            Exit::Usage => "usage or configuration error: a flag, variable, payload field or .env file is invalid",
            Exit::CliMissing => "a required CLI (claude, codex, gemini) is not on PATH or not executable",
            Exit::LoginUnusable => {
                "a login is missing, malformed, expired without refresh, or refused by MOONAUTH_AUTH_MODE"
            }
            Exit::Permissions => "a login directory is missing or not readable and writable by the current user",
            Exit::DockerUnreachable => {
                "the Docker engine cannot be reached (not running, wrong DOCKER_HOST, or timed out)"
            }
            Exit::DockerFailed => {
                "Docker refused or failed an operation (image missing, volume in use or not managed by moonauth)"
            }
            Exit::LoginFailed => "a login or sync failed or was aborted; the previous login is unchanged",
            Exit::NeedsTerminal => "an interactive login needs a terminal (run it with docker run -it / from a shell)",
            Exit::AccountsExhausted => {
                "no account of the runtime is eligible (all disabled, cooling down or needing re-login); the output lists each and why"
            }
            Exit::InvalidSetting => {
                "a rotation setting breaks its rule (the message names the field and the rule); nothing was changed"
            }
            Exit::CommandNotExecutable => "the worker command after -- exists but cannot be executed",
            Exit::CommandNotFound => "the worker command after -- was not found",
            Exit::Child(_) => "the exit status of the CLI that moonauth run ran",
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

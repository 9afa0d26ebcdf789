//! Command-line types (clap). No logic: `commands` turns these into work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Logins, preflight and runtime resolution for fleets of Claude Code and Codex workers.
#[derive(Debug, Parser)]
#[command(name = "moonauth", version, about, propagate_version = true)]
pub struct Cli {
    /// Read settings from this .env file (default: ./.env when present). Process variables win over it.
    #[arg(long, global = true, value_name = "PATH")]
    pub env_file: Option<PathBuf>,

    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that this worker can run its runtimes, then exec the worker command.
    Preflight(PreflightArgs),
    /// Report what a local login directory holds (no network, no Docker).
    Inspect(InspectArgs),
    /// Resolve the task runtime.
    #[command(subcommand)]
    Runtime(RuntimeCommand),
    /// Report what each auth volume holds (read through the Docker archive API; nothing is started).
    Status(StatusArgs),
    /// Create, list and remove auth volumes.
    #[command(subcommand)]
    Volumes(VolumesCommand),
    /// Log a volume in with the CLI's own login in a container, or copy a host login with --sync-from.
    Login(LoginArgs),
    /// Prepare the login directories for the worker user (the compose init service; run as root).
    Init(InitArgs),
    /// Refresh shared OAuth logins ahead of expiry, so no CLI refreshes them itself.
    Renew(RenewArgs),
    /// Steps moonauth runs inside containers.
    #[command(subcommand, hide = true)]
    Internal(InternalCommand),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Runtimes to report (claude, codex). Default: those of MOONMIND_WORKER_RUNTIME when set, else both.
    pub runtimes: Vec<String>,

    /// Also report these accounts' volumes (repeatable). Labelled account volumes are always included.
    #[arg(long, value_name = "NAME")]
    pub account: Vec<String>,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,

    /// Lead before expiry under which an OAuth login counts as expiring soon.
    #[arg(long, value_name = "DURATION")]
    pub lead: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum VolumesCommand {
    /// Create the auth volumes that do not exist yet, labelled as moonauth's (idempotent).
    Ensure(EnsureArgs),
    /// List auth volumes: configured ones and every volume moonauth labelled, with their login verdict.
    Ls(LsArgs),
    /// Remove auth volumes moonauth created (never one in use; needs --force).
    Rm(RmArgs),
}

#[derive(Debug, Args)]
pub struct EnsureArgs {
    /// Runtimes (claude, codex). Default: both.
    pub runtimes: Vec<String>,

    /// The account whose volume to create (default: the configured volume).
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,

    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Volume names.
    #[arg(required = true)]
    pub volumes: Vec<String>,

    /// Confirm: the logins in the volumes are lost.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// claude or codex.
    pub runtime: String,

    /// The account to log in (its own volume); default: the configured volume.
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,

    /// The worker image to run the login in (default: MOONAUTH_IMAGE).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,

    /// Copy the login from this host directory (e.g. ~/.claude, ~/.codex) instead of logging in.
    #[arg(long, value_name = "DIR")]
    pub sync_from: Option<PathBuf>,

    /// Print the resulting status as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Runtimes whose login directories to prepare (claude, codex). Default: both.
    pub runtimes: Vec<String>,

    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RenewArgs {
    /// The runtime whose login to renew: claude or codex. Default: both configured logins.
    pub runtime: Option<String>,

    /// Every configured login (CLAUDE_CONFIG_DIR / CLAUDE_HOME and CODEX_HOME), plus any --dir.
    #[arg(long)]
    pub all: bool,

    /// A login directory to renew instead of the configured one (repeatable). Without a
    /// runtime, the login file in it says which.
    #[arg(long, value_name = "DIR")]
    pub dir: Vec<PathBuf>,

    /// Refresh when the access token expires within this (default: MOONAUTH_RENEW_LEAD, else 1h).
    #[arg(long, value_name = "DURATION")]
    pub lead: Option<String>,

    /// Refresh even when fresh, and retry a login moonauth gave up on.
    #[arg(long)]
    pub force: bool,

    /// Print the report as JSON (with --watch: one JSON object per line and event).
    #[arg(long)]
    pub json: bool,

    /// Keep running: renew every login whenever it enters the lead, until SIGTERM or SIGINT.
    #[arg(long)]
    pub watch: bool,
}

#[derive(Debug, Subcommand)]
pub enum InternalCommand {
    /// Put a staged login in place inside a volume (run by `moonauth login` in a container).
    ApplyLogin(ApplyLoginArgs),
}

#[derive(Debug, Args)]
pub struct ApplyLoginArgs {
    #[arg(long)]
    pub runtime: String,
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long)]
    pub staging: PathBuf,
    #[arg(long)]
    pub uid: u32,
    #[arg(long)]
    pub gid: u32,
    /// Remove login files the staging directory lacks.
    #[arg(long)]
    pub prune: bool,
    /// Only remove the staging directory.
    #[arg(long)]
    pub discard: bool,
}

#[derive(Debug, Args)]
pub struct PreflightArgs {
    /// Worker mode: codex, claude, universal (both) or gemini. Default: MOONMIND_WORKER_RUNTIME, else codex.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,

    /// Print the report as JSON (schema in docs/preflight.md).
    #[arg(long)]
    pub json: bool,

    /// Also run the CLIs' own status commands (`codex login status`, `claude auth status`) and compare.
    #[arg(long)]
    pub deep: bool,

    /// Re-check until the checks pass or DURATION runs out (default 5m) instead of failing at once.
    #[arg(long, value_name = "DURATION", num_args = 0..=1, require_equals = true, default_missing_value = "5m")]
    pub wait: Option<String>,

    /// Lead before expiry under which an OAuth login counts as expiring soon (default: MOONAUTH_EXPIRY_LEAD, else 10m).
    #[arg(long, value_name = "DURATION")]
    pub lead: Option<String>,

    /// Which credentials may pay: auto, oauth or api-key (default: MOONAUTH_AUTH_MODE, else auto).
    #[arg(long, value_name = "MODE")]
    pub auth_mode: Option<String>,

    /// The worker command to exec when every check passes.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The runtime whose login to read: claude or codex.
    pub runtime: String,

    /// The login directory (default: CLAUDE_CONFIG_DIR / CLAUDE_HOME, or CODEX_HOME, as configured).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,

    /// Lead before expiry under which an OAuth login counts as expiring soon.
    #[arg(long, value_name = "DURATION")]
    pub lead: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// Resolve the runtime of a task: explicit value > MOONMIND_DEFAULT_TASK_RUNTIME > codex.
    Resolve(ResolveArgs),
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// An explicit runtime for the task (codex, claude, gemini; universal means the default).
    #[arg(long, value_name = "RUNTIME")]
    pub explicit: Option<String>,

    /// A task payload (JSON) to normalize: a file, or - for stdin. Prints the normalized payload.
    #[arg(long, value_name = "FILE|-")]
    pub payload: Option<PathBuf>,

    /// Print the resolution as JSON (with --payload the output is always JSON).
    #[arg(long)]
    pub json: bool,
}

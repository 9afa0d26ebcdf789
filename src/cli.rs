//! Command-line types (clap). No logic: `commands` turns these into work.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

/// `moonauth --version`: the version, the commit, and the CLI versions verified against.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BUILD_GIT_COMMIT"),
    ")\nverified with: claude ",
    env!("BUILD_VERIFIED_CLAUDE"),
    ", codex ",
    env!("BUILD_VERIFIED_CODEX"),
);

/// Logins, preflight and runtime resolution for fleets of Claude Code and Codex workers.
#[derive(Debug, Parser)]
#[command(name = "moonauth", version, long_version = LONG_VERSION, about, propagate_version = true)]
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

    /// Colour in logs: auto (only when stderr is a terminal and NO_COLOR is unset), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

/// When to use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour a stream: `auto` asks whether it is a terminal and honours
    /// `NO_COLOR` (no-color.org: set and not empty).
    pub fn enabled(self, is_terminal: bool, no_color: Option<&str>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && no_color.is_none_or(str::is_empty),
        }
    }
}

/// A hint for a command line clap refused, when moonauth can tell what was meant:
/// `--wait 5s` (the value of `--wait` needs `=`, because `--wait` alone means 5m).
pub fn usage_hint(args: &[String]) -> Option<String> {
    let at = args.iter().position(|a| a == "--wait")?;
    let value = args.get(at + 1).filter(|v| !v.starts_with('-'))?;
    Some(format!(
        "write --wait={value}: the value of --wait needs an equals sign, since --wait alone waits 5m"
    ))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that this worker can run its runtimes, then exec the worker command.
    #[command(after_help = "Examples:
  moonauth preflight                          check this worker's logins (MOONMIND_WORKER_RUNTIME)
  moonauth preflight --mode claude --json     the report as JSON (schema moonauth.preflight.v1)
  moonauth preflight --wait=2m -- codex exec  wait up to 2m for a login, then exec the worker")]
    Preflight(PreflightArgs),
    /// Report what a local login directory holds (no network, no Docker).
    #[command(after_help = "Examples:
  moonauth inspect claude                     the configured CLAUDE_CONFIG_DIR / CLAUDE_HOME
  moonauth inspect codex --dir ~/.codex --json")]
    Inspect(InspectArgs),
    /// Resolve the task runtime.
    #[command(subcommand)]
    Runtime(RuntimeCommand),
    /// Report what each auth volume holds (read through the Docker archive API; nothing is started).
    #[command(after_help = "Examples:
  moonauth status                             both runtimes' volumes and every labelled account volume
  moonauth status claude --account work --json")]
    Status(StatusArgs),
    /// Create, list and remove auth volumes.
    #[command(
        subcommand,
        after_help = "Examples:
  moonauth volumes ensure claude --account work
  moonauth volumes ls --json
  moonauth volumes rm claude_auth_work --force"
    )]
    Volumes(VolumesCommand),
    /// Log a volume in with the CLI's own login in a container, or copy a host login with --sync-from.
    #[command(after_help = "Examples:
  moonauth login codex                        device-code login into CODEX_VOLUME_NAME
  moonauth login claude --account work        a second Claude account, in its own volume
  moonauth login claude --sync-from ~/.claude copy a host login (then stop using the host's)")]
    Login(LoginArgs),
    /// Prepare the login directories for the worker user (the compose init service; run as root).
    Init(InitArgs),
    /// The accounts each runtime can run on: add, list, enable, disable, remove, and pick the next one.
    #[command(
        subcommand,
        after_help = "Examples:
  moonauth accounts add work --runtime claude --dir /home/app/.claude-work
  moonauth accounts ls --json
  moonauth accounts pick claude"
    )]
    Accounts(AccountsCommand),
    /// Run the real CLI on an account's login, failing over to the next account when a subscription runs out.
    Run(RunArgs),
    /// Refresh shared OAuth logins ahead of expiry, so no CLI refreshes them itself.
    Renew(RenewArgs),
    /// Check the whole setup at once: engine, images, volumes, account store, clock (and with --network, token endpoints).
    Doctor(DoctorArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions(CompletionsArgs),
    /// Print the man page (roff) to stdout, e.g. `moonauth man | man -l -`.
    Man,
    /// GitHub Actions: check a workflow step's event, OIDC and credentials.
    #[command(subcommand)]
    Ci(CiCommand),
    /// Steps moonauth runs inside containers.
    #[command(subcommand, hide = true)]
    Internal(InternalCommand),
}

#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// Check this GitHub Actions step: the event against the Claude GitHub App's allow-list, the runner, OIDC, which credentials are set and which the CLI would use.
    Check(CiCheckArgs),
}

#[derive(Debug, Args)]
pub struct CiCheckArgs {
    /// Print the report as JSON (schema moonauth.ci.v1, docs/github-actions.md).
    #[arg(long)]
    pub json: bool,

    /// Request an OIDC token (audience MOONAUTH_OIDC_AUDIENCE, default claude-code-github-action) and print its claims, never the token.
    #[arg(long)]
    pub oidc: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the report as JSON (schema moonauth.doctor.v1, docs/doctor.md).
    #[arg(long)]
    pub json: bool,

    /// Also try to reach the token endpoints' hosts (a HEAD request; nothing secret is sent). Off by default.
    #[arg(long)]
    pub network: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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
    /// List every volume moonauth labelled (runtime and account from its labels) and the configured ones, missing or not, with their login.
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

    /// Print what was done as JSON (schema moonauth.volumes-ensure.v1).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print the list as JSON (schema moonauth.volumes-ls.v1).
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

    /// Print what was removed as JSON (schema moonauth.volumes-rm.v1).
    #[arg(long)]
    pub json: bool,
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
#[command(after_help = format!("Before each attempt, a login inside the lead is refreshed first.\n{TOKEN_SERVICE_HELP}\n\nExamples:
  moonauth run claude -- -p 'fix the tests'
  moonauth run codex --report run.json -- exec 'fix the tests'"))]
pub struct RunArgs {
    /// claude or codex.
    pub runtime: String,

    /// Start with this account (its alias in `moonauth accounts ls`).
    #[arg(long, value_name = "ALIAS")]
    pub account: Option<String>,

    /// Write the run report (JSON) to this file instead of a line on stderr.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Fall back to an API key when every OAuth account is out for quota (default: MOONAUTH_API_FALLBACK).
    #[arg(long)]
    pub api_fallback: bool,

    /// When the run ends, write what resuming it needs into DIR (session transcript, its id, the attempts; nothing secret), e.g. for actions/upload-artifact.
    #[arg(long, value_name = "DIR")]
    pub save_state: Option<PathBuf>,

    /// Continue the session an earlier `run --save-state DIR` left, on the next credential (credentials tried there are not tried again).
    #[arg(long, value_name = "DIR")]
    pub resume_from: Option<PathBuf>,

    /// The CLI's arguments (after --).
    #[arg(last = true, value_name = "ARGS", required = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Runtimes whose login directories to prepare (claude, codex). Default: both.
    pub runtimes: Vec<String>,

    /// Print what was changed as JSON.
    #[arg(long)]
    pub json: bool,

    /// Run outside a container too: create the login directories and give them (and
    /// everything in them) to MOONAUTH_WORKER_UID:GID on this machine. Without it, init
    /// refuses on a host (no /.dockerenv, /run/.containerenv or container cgroup).
    #[arg(long)]
    pub yes: bool,

    /// Report what init would change (directories, owners, modes, Codex's config.toml) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// What `renew --help` and `run --help` say about the network: they send refresh tokens.
pub const TOKEN_SERVICE_HELP: &str = "\
Network: refreshing sends the login's refresh token to the CLI's token service:
  claude  https://platform.claude.com/v1/oauth/token  (override: MOONAUTH_CLAUDE_TOKEN_URL)
  codex   https://auth.openai.com/oauth/token         (override: CODEX_REFRESH_TOKEN_URL_OVERRIDE)
Only logins inside the lead (or --force) are sent; -v logs each request's URL, and a
failure names it.";

#[derive(Debug, Args)]
#[command(after_help = format!("{TOKEN_SERVICE_HELP}\n`moonauth renew --dry-run` lists what would be refreshed and why, and contacts nothing.\n\nExamples:
  moonauth renew                              both configured logins, if within the lead
  moonauth renew --all --json
  moonauth renew --watch                      keep renewing until SIGTERM"))]
pub struct RenewArgs {
    /// The runtime whose login to renew: claude or codex. Default: both configured logins.
    pub runtime: Option<String>,

    /// Every configured login (CLAUDE_CONFIG_DIR / CLAUDE_HOME and CODEX_HOME) and every
    /// enabled OAuth account in the store, plus any --dir.
    #[arg(long, conflicts_with = "account")]
    pub all: bool,

    /// The login of this account in the store (`moonauth accounts ls`).
    #[arg(long, value_name = "ALIAS")]
    pub account: Option<String>,

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

    /// Say which logins would be refreshed and why; contact nothing, take no lock, write nothing.
    #[arg(long, conflicts_with = "watch")]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum InternalCommand {
    /// Put a staged login in place inside a volume (run by `moonauth login` in a container).
    ApplyLogin(ApplyLoginArgs),
    /// Time read-modify-writes of the account store (for tests and scripts/bench-store.sh).
    StoreBench(StoreBenchArgs),
}

#[derive(Debug, Args)]
pub struct StoreBenchArgs {
    /// Updates to make; each picks an account of RUNTIME and marks it used, under the lock.
    #[arg(long, value_name = "N")]
    pub ops: u64,

    #[arg(long, value_name = "RUNTIME", default_value = "claude")]
    pub runtime: String,
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

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Add an account: an OAuth login directory (--dir), or where an API key comes from.
    Add(AccountAddArgs),
    /// List the accounts with their state: cooldowns, failures, last use, what needs a re-login.
    Ls(AccountLsArgs),
    /// Make an account pickable again (also clears its re-login mark).
    Enable(AccountArgs),
    /// Never pick an account until it is enabled again.
    Disable(AccountArgs),
    /// Forget an account's record (its login is not touched).
    Rm(AccountArgs),
    /// Print the account a new task should use (alias and login), and mark it used.
    Pick(AccountPickArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("credential").required(true).args(["dir", "api_key_env", "api_key_file", "oauth_token_env", "oauth_token_file"])))]
pub struct AccountAddArgs {
    /// The account's name: a-z, 0-9, - and _ (also its `moonauth login --account`).
    pub alias: String,

    /// claude or codex.
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: String,

    /// An OAuth login: the login directory as the worker sees it. It must exist here
    /// (unless --volume: then it is checked where the volume is mounted); an empty one is
    /// added with a warning, to log in with `moonauth login RUNTIME --account ALIAS`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// The Docker volume that holds the login directory.
    #[arg(long, value_name = "NAME", requires = "dir")]
    pub volume: Option<String>,

    /// An API key in this environment variable (moonauth never stores the key).
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,

    /// An API key in this file (moonauth never stores the key).
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,

    /// A Claude subscription's OAuth token (`claude setup-token`) in this environment variable, handed to the CLI as CLAUDE_CODE_OAUTH_TOKEN (moonauth never stores the token).
    #[arg(long, value_name = "VAR")]
    pub oauth_token_env: Option<String>,

    /// A Claude subscription's OAuth token in this file (first non-empty line).
    #[arg(long, value_name = "PATH")]
    pub oauth_token_file: Option<PathBuf>,

    /// Lower is tried first (OAuth accounts always before API keys).
    #[arg(long, value_name = "N", default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i32,

    /// Accept an --api-key-env or --oauth-token-env variable that is not set here (it is set only where the worker runs).
    #[arg(long)]
    pub allow_unset: bool,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AccountLsArgs {
    /// Only this runtime's accounts (claude, codex).
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AccountArgs {
    pub alias: String,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AccountPickArgs {
    /// claude or codex.
    pub runtime: String,

    /// Only show the pick; do not mark the account used.
    #[arg(long)]
    pub peek: bool,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory;

    /// Every subcommand, with its path (`volumes ls`).
    fn walk(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands() {
            let p = format!("{path} {}", sub.get_name()).trim().to_string();
            out.push((p.clone(), sub.clone()));
            walk(sub, p, out);
        }
    }

    #[test]
    fn every_json_flag_is_described_and_the_main_commands_show_examples() {
        let mut all = Vec::new();
        walk(&super::Cli::command(), String::new(), &mut all);
        for (path, cmd) in &all {
            if let Some(json) = cmd.get_arguments().find(|a| a.get_id() == "json") {
                assert!(json.get_help().is_some(), "`moonauth {path} --json` has no description");
            }
        }
        for name in [
            "preflight",
            "inspect",
            "status",
            "volumes",
            "login",
            "accounts",
            "run",
            "renew",
        ] {
            let (_, cmd) = all.iter().find(|(p, _)| p == name).unwrap();
            let after = cmd.get_after_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(
                after.contains("Examples:") && after.contains(&format!("moonauth {name}")),
                "`moonauth {name} --help` shows no examples"
            );
        }
        let rm = all.iter().find(|(p, _)| p == "volumes rm").unwrap();
        assert!(
            rm.1.get_arguments().any(|a| a.get_id() == "json"),
            "volumes rm has no --json"
        );
    }

    #[test]
    fn a_separate_wait_value_gets_the_equals_sign_hint() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let hint = super::usage_hint(&args(&["moonauth", "preflight", "--wait", "5s"])).unwrap();
        assert!(hint.contains("--wait=5s"), "{hint}");
        assert_eq!(
            super::usage_hint(&args(&["moonauth", "preflight", "--wait", "--json"])),
            None
        );
        assert_eq!(super::usage_hint(&args(&["moonauth", "preflight", "--bogus"])), None);
    }
}

#[cfg(test)]
mod color_tests {
    use super::ColorChoice;

    #[test]
    fn colour_only_on_a_terminal_unless_forced_and_no_color_wins_over_auto() {
        assert!(
            !ColorChoice::Auto.enabled(false, None),
            "a pipe or docker logs gets no escapes"
        );
        assert!(ColorChoice::Auto.enabled(true, None));
        assert!(!ColorChoice::Auto.enabled(true, Some("1")));
        assert!(ColorChoice::Auto.enabled(true, Some("")), "an empty NO_COLOR is unset");
        assert!(ColorChoice::Always.enabled(false, Some("1")));
        assert!(!ColorChoice::Never.enabled(true, None));
    }

    #[test]
    fn the_long_version_names_the_pinned_clis_and_a_commit() {
        let pins = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/clis/package.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&pins).unwrap();
        let deps = &v["dependencies"];
        let claude = deps["@anthropic-ai/claude-code"].as_str().unwrap();
        let codex = deps["@openai/codex"].as_str().unwrap();
        let long = super::LONG_VERSION;
        assert!(long.contains(&format!("claude {claude}, codex {codex}")), "{long}");
        assert!(long.starts_with(env!("CARGO_PKG_VERSION")), "{long}");
        assert!(!long.contains("commit )"), "{long}");
    }
}

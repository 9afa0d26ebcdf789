//! `moonauth run`: run the real CLI on an account's login and keep the work going when a
//! subscription runs out — classify how each attempt ended, cool the account down, move
//! to the next eligible OAuth account (and, when allowed, to an API key), resume the
//! interrupted session there, and report which credential paid.
//!
//! Policy (docs/failover.md): a usage limit cools the account down until its reset and
//! moves on; a throttle or overload backs off on the same account a bounded number of
//! times; an auth failure marks the account for re-login and moves on, and then never
//! falls back to an API key; the API key is used only when every OAuth account is out
//! for quota reasons and `MOONAUTH_API_FALLBACK` is on. Each credential is tried once.
//! Without a store the credentials come from the environment (rotation's plan); work
//! can be handed from one job to the next (`--save-state`, `--resume-from`: `handoff.rs`).

mod attempt;
pub mod child;
pub mod classify;
pub mod handoff;
mod outcome;
mod renewal;
mod report;
pub mod resume;
mod secrets;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::agents::{LoginRuntime, Runtime};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::failover::classify::Classification;
use crate::redact::Secret;
use crate::renew::RenewOptions;
use crate::rotation::{Choice, EnvCredentials, KeyNotUsed, Plan};
use crate::source::Env;
use crate::state::accounts::AccountKind;
use crate::time::Clock;

use child::SignalForwarder;
use outcome::{Next, Recorder};
use renewal::Renewal;
use secrets::Masks;

pub use report::{Attempt, CredentialKind, KeyNotUsedReport, RunReport, Unavailable};

/// What `moonauth run` was asked to do.
pub struct RunRequest {
    pub runtime: Runtime,
    /// Start with this account.
    pub account: Option<String>,
    /// The CLI's arguments.
    pub args: Vec<String>,
    pub continuation: String,
    pub api_fallback: bool,
    /// Attempts on the same account after a throttle or overload.
    pub throttle_retries: u32,
    /// First backoff after a throttle or overload; it doubles, capped at a minute.
    pub backoff: Duration,
    /// `CLAUDE_CODE_MAX_RETRIES` for the child unless the environment sets it.
    pub cli_max_retries: u32,
    /// More variables kept out of every child and masked (the step's OIDC request
    /// variables under GitHub Actions).
    pub removed_vars: Vec<String>,
    /// Write what resuming needs here when the run ends (`--save-state`).
    pub save_state: Option<PathBuf>,
    /// Continue the session an earlier job saved here (`--resume-from`).
    pub resume_from: Option<PathBuf>,
}

/// A credential `run` can use: rotation's choice, with its key read and the directory
/// it runs in.
#[derive(Debug, Clone)]
struct Candidate {
    alias: String,
    kind: AccountKind,
    /// The login directory (OAuth), or for an API key the directory of the previous attempt.
    dir: Option<PathBuf>,
    key: Option<Secret>,
    /// Whether it is a record in the store (or the implicit default login / environment key).
    stored: bool,
    /// An OAuth token from this variable rather than a login directory.
    token: Option<String>,
}

impl Candidate {
    fn credential_kind(&self) -> CredentialKind {
        match (self.kind, &self.token) {
            (AccountKind::ApiKey, _) => CredentialKind::ApiKey,
            (AccountKind::Oauth, Some(_)) => CredentialKind::OauthToken,
            (AccountKind::Oauth, None) => CredentialKind::OauthLogin,
        }
    }
}

fn api_key_vars(runtime: Runtime) -> &'static [&'static str] {
    // Gemini has no key variable moonauth knows of (`run` takes only login runtimes).
    runtime.login().map(LoginRuntime::api_key_vars).unwrap_or_default()
}

/// Runs the request to completion and returns its report. Every time it reads or
/// records comes from `clock`.
pub fn run(config: &Config, env: &Env, request: &RunRequest, clock: &Clock) -> Result<RunReport> {
    let (mut failover, mut plan) = Failover::start(config, env, request, clock)?;
    let report = if failover.drive(&mut plan)? {
        std::mem::replace(&mut failover.report, RunReport::new(request.runtime))
    } else {
        let why = plan.key_not_used();
        failover.exhausted(why)
    };
    if let Some(dir) = &request.save_state {
        handoff::save(dir, &report, failover.last_dir.as_deref(), &failover.masks.redactor)?;
    }
    Ok(report)
}

/// The credential values a run knows (stored accounts' tokens and keys, the login files'
/// tokens, the credential variables of the environment and `extra_vars`), for masking
/// them in a CI log before anything is printed.
pub fn secret_values(config: &Config, env: &Env, extra_vars: &[&str]) -> Result<Vec<String>> {
    let store = crate::state::open_existing(config)?;
    let state = match &store {
        Some(s) => Some(s.read_unlocked()?),
        None => None,
    };
    let mut masks = Masks::new(config, env, state.as_ref());
    for var in extra_vars {
        if let Some(v) = env.non_blank(var) {
            masks.redactor.add(v);
        }
    }
    Ok(masks.redactor.values().map(str::to_string).collect())
}

impl Failover<'_> {
    /// Tries the plan's credentials in turn; true when the run is over (finished, or a
    /// failure another credential would not help), false when every credential is out.
    fn drive(&mut self, plan: &mut Plan) -> Result<bool> {
        // The loop's own name for the run, as when it lived in `run`.
        let failover = self;
        while let Some(choice) = plan.next_credential() {
            let candidate = failover.candidate(choice)?;
            let Some(dir) = failover.usable(&candidate) else {
                continue;
            };
            let renewed = match failover.renew_before_start(&candidate, &dir)? {
                Renewal::Start(status) => status,
                Renewal::SitOut => {
                    plan.lost_to_login();
                    continue;
                }
            };
            if candidate.kind == AccountKind::ApiKey {
                // The key is tried only once every subscription credential was out for quota.
                failover.report.fallback_reason = Some(crate::state::accounts::reason::USAGE_LIMIT.into());
            }
            let (args, resumed) = failover.resume_here(&dir)?;
            let spec = failover.child_spec(args, &candidate, &dir);
            failover.last_dir = Some(dir.clone());
            let finished = failover.attempt(&spec, &candidate, resumed, renewed)?;
            match failover.settle(&candidate, finished)? {
                Next::Done => return Ok(true),
                Next::FailOver {
                    lost_to_login,
                    classification,
                } => {
                    if lost_to_login {
                        plan.lost_to_login();
                    }
                    failover.previous = Some((dir, classification));
                }
            }
        }
        Ok(false)
    }
}

/// One run in progress: what every step reads, and what the attempts so far left.
struct Failover<'a> {
    config: &'a Config,
    env: &'a Env,
    request: &'a RunRequest,
    clock: &'a Clock,
    signals: SignalForwarder,
    /// The CLI, found on the environment's PATH.
    program: PathBuf,
    masks: Masks,
    recorder: Recorder,
    renew_options: RenewOptions,
    report: RunReport,
    /// The accounts that were out, listed when every credential is.
    unavailable: Vec<Unavailable>,
    /// The directory and the classification of the last attempt that failed over.
    previous: Option<(PathBuf, Classification)>,
    /// When the last child exited (for the switch time).
    last_exit: Option<Instant>,
    /// The directory the last attempt ran in (where `--save-state` finds its session).
    last_dir: Option<PathBuf>,
    /// A private directory for credentials without a login directory (an OAuth token, a
    /// key with no login to run beside, a session handed over by an earlier job).
    scratch: Option<tempfile::TempDir>,
}

impl<'a> Failover<'a> {
    /// Finds the CLI, reads the store (when there is one) and asks rotation for the
    /// order of the credentials.
    fn start(
        config: &'a Config,
        env: &'a Env,
        request: &'a RunRequest,
        clock: &'a Clock,
    ) -> Result<(Failover<'a>, Plan)> {
        let signals = SignalForwarder::install()?;
        let runtime = request.runtime;
        let program = which::which_in(
            runtime.binary(),
            env.get("PATH").map(std::ffi::OsString::from),
            std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        )
        .map_err(|_| Error::CommandNotFound {
            command: runtime.binary().to_string(),
        })?;

        // The store, when there is one and it has accounts of this runtime.
        let store = crate::state::open_existing(config)?;
        let now = clock.now();
        let state = match &store {
            Some(s) => Some(s.read_unlocked()?),
            None => None,
        };
        let env_key_var = api_key_vars(runtime)
            .iter()
            .copied()
            .find(|v| env.non_blank(v).is_some());
        let login = match (runtime.login(), config.runtime(runtime)) {
            (Some(login), Some(settings)) => Some(crate::credentials::inspect_dir(
                login,
                &settings.login_dir.value,
                now,
                config.expiry_lead.value,
            )),
            _ => None,
        };
        let env_credentials = EnvCredentials {
            login_usable: login.as_ref().is_some_and(|l| l.usable),
            login_present: login
                .as_ref()
                .is_some_and(|l| l.inspection.class != crate::credentials::LoginClass::Missing),
            oauth_token_var: oauth_token_vars(runtime)
                .iter()
                .copied()
                .find(|v| env.non_blank(v).is_some()),
            api_key_var: env_key_var,
        };
        let mut plan = Plan::new(
            state.as_ref(),
            runtime,
            request.account.as_deref(),
            &env_credentials,
            request.api_fallback,
            now,
        )?;
        let mut masks = Masks::new(config, env, state.as_ref());
        for var in &request.removed_vars {
            if let Some(v) = env.non_blank(var) {
                masks.redactor.add(v);
            }
            masks.key_vars.push(var.clone());
        }
        let mut failover = Failover {
            config,
            env,
            request,
            clock,
            signals,
            program,
            masks,
            recorder: Recorder::new(store),
            renew_options: RenewOptions::from_config(config),
            report: RunReport::new(runtime),
            unavailable: plan.passed_over().iter().map(Unavailable::passed_over).collect(),
            previous: None,
            last_exit: None,
            last_dir: None,
            scratch: None,
        };
        if let Some(dir) = &request.resume_from {
            failover.take_over(dir, &mut plan)?;
        }
        Ok((failover, plan))
    }

    /// A private directory (0700) for this run, made on first use under the runner's
    /// temporary directory; removed when the run ends.
    fn scratch_dir(&mut self) -> Result<PathBuf> {
        if let Some(d) = &self.scratch {
            return Ok(d.path().to_path_buf());
        }
        let base = ["RUNNER_TEMP", "TMPDIR"]
            .iter()
            .find_map(|v| self.env.non_blank(v))
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("moonauth-run-")
            .tempdir_in(&base)
            .map_err(|e| Error::io(format!("create a run directory in {}", base.display()), e))?;
        let path = dir.path().to_path_buf();
        self.scratch = Some(dir);
        Ok(path)
    }

    /// The configured login directory when it exists, else the run's own directory.
    fn home_dir(&mut self) -> Result<PathBuf> {
        match self.configured_login().filter(|d| d.is_dir()) {
            Some(d) => Ok(d),
            None => self.scratch_dir(),
        }
    }

    /// The configured login directory of the runtime.
    fn configured_login(&self) -> Option<PathBuf> {
        self.config
            .runtime(self.request.runtime)
            .map(|s| s.login_dir.value.clone())
    }

    /// Rotation's choice with its key read and its directory: an API key runs in the
    /// previous attempt's directory, where the session is.
    fn candidate(&mut self, choice: Choice) -> Result<Candidate> {
        let dir = match (choice.kind, choice.stored, &choice.token) {
            (AccountKind::ApiKey, _, _) => match self.previous.as_ref() {
                Some((d, _)) => Some(d.clone()),
                None => Some(self.home_dir()?),
            },
            // A token runs where no login file can compete with it.
            (AccountKind::Oauth, _, Some(_)) => Some(self.scratch_dir()?),
            (AccountKind::Oauth, false, None) => self.configured_login(),
            (AccountKind::Oauth, true, None) => choice.login_dir,
        };
        Ok(Candidate {
            key: secrets::key_value(&choice.key, self.env),
            alias: choice.alias,
            kind: choice.kind,
            dir,
            stored: choice.stored,
            token: choice.token,
        })
    }

    /// The directory the candidate runs in, or `None` (and why, listed) when it cannot run.
    fn usable(&mut self, candidate: &Candidate) -> Option<PathBuf> {
        let reason = match (&candidate.dir, &candidate.key) {
            (None, _) => "no login directory",
            (Some(_), None) if candidate.kind == AccountKind::ApiKey => "its API key is not set",
            (Some(_), None) if candidate.token.is_some() => "its OAuth token is not set",
            (Some(dir), _) => return Some(dir.clone()),
        };
        self.unavailable.push(Unavailable {
            account: candidate.alias.clone(),
            reason: reason.into(),
            until: None,
            fix: None,
        });
        None
    }

    /// The report when every credential is out: exit 10, with each account and why, and
    /// why no API key was tried.
    fn exhausted(&mut self, key_not_used: Option<KeyNotUsed>) -> RunReport {
        let mut report = std::mem::replace(&mut self.report, RunReport::new(self.request.runtime));
        report.unavailable = std::mem::take(&mut self.unavailable);
        report.api_key_not_used = key_not_used.map(|why| self.key_not_used_report(why));
        report.exhausted = true;
        report.exit_code = i32::from(Exit::AccountsExhausted.code());
        report
    }

    fn key_not_used_report(&self, why: KeyNotUsed) -> KeyNotUsedReport {
        let runtime = self.request.runtime;
        let var = runtime
            .login()
            .map(LoginRuntime::api_key_var)
            .unwrap_or("the API key variable");
        let message = match why {
            KeyNotUsed::FallbackOff => {
                "API fallback is off (set MOONAUTH_API_FALLBACK=1 or pass --api-fallback to let an API key finish the work)".to_string()
            }
            KeyNotUsed::AuthFailure => "a credential was refused (auth failure); moonauth never falls back to an API key after one: fix that credential first".to_string(),
            KeyNotUsed::NoKey => format!("there is no API key: set {var}, or add one with `moonauth accounts add --runtime {runtime} --api-key-env VAR`"),
        };
        KeyNotUsedReport {
            code: why.code(),
            message,
        }
    }
}

/// The variables an OAuth token is handed to the CLI in (Claude's `CLAUDE_CODE_OAUTH_TOKEN`).
pub(super) fn oauth_token_vars(runtime: Runtime) -> &'static [&'static str] {
    match runtime {
        Runtime::Claude => &[crate::agents::claude::CLAUDE_CODE_OAUTH_TOKEN],
        _ => &[],
    }
}

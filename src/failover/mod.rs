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

mod attempt;
pub mod child;
pub mod classify;
mod outcome;
mod renewal;
mod report;
pub mod resume;
mod secrets;
mod windows;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::agents::{LoginRuntime, Runtime};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::failover::classify::Classification;
use crate::redact::Secret;
use crate::renew::RenewOptions;
use crate::rotation::{Choice, Plan};
use crate::source::Env;
use crate::state::accounts::AccountKind;
use crate::time::Clock;

use child::SignalForwarder;
use outcome::{Next, Recorder};
use renewal::Renewal;
use secrets::Masks;

pub use report::{github_summary, Attempt, RunReport, Unavailable, UsageCapture};

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
}

fn api_key_vars(runtime: Runtime) -> &'static [&'static str] {
    // Gemini has no key variable moonauth knows of (`run` takes only login runtimes).
    runtime.login().map(LoginRuntime::api_key_vars).unwrap_or_default()
}

/// Runs the request to completion and returns its report. Every time it reads or
/// records comes from `clock`.
pub fn run(config: &Config, env: &Env, request: &RunRequest, clock: &Clock) -> Result<RunReport> {
    let (mut failover, mut plan) = Failover::start(config, env, request, clock)?;
    while let Some(choice) = plan.next_credential() {
        let candidate = failover.candidate(choice);
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
        let (args, resumed) = failover.resume_here(&dir)?;
        let spec = failover.child_spec(args, &candidate, &dir);
        let finished = failover.attempt(&spec, &candidate, resumed, renewed)?;
        match failover.settle(&candidate, finished)? {
            Next::Done => return Ok(failover.report),
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
    Ok(failover.exhausted())
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
    /// This run's id, in the decision log and on the usage snapshots it captures.
    run_id: String,
}

/// A run id: the start time in milliseconds and a random suffix (unique enough to tell
/// runs apart in the log; not a secret).
fn new_run_id(now: std::time::SystemTime) -> String {
    let ms = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    format!("run-{ms}-{:08x}", fastrand::u32(..))
}

/// Rotation's decision for this run, with the settings in effect and this
/// environment's login problems. With accounts of the runtime in the store it is made
/// and recorded under the store's lock (the chosen account marked used, so concurrent
/// runs take turns under round-robin; a force mode it ended cleared) and logged.
fn decide_run(
    store: Option<&crate::state::Store>,
    state: &crate::state::accounts::State,
    runtime: Runtime,
    env: &Env,
    run_id: &str,
    now: std::time::SystemTime,
) -> Result<crate::rotation::Decision> {
    use crate::rotation::{decide_here, force, log::Record, settings};
    let decide = |s: &crate::state::accounts::State| -> Result<crate::rotation::Decision> {
        let resolved = settings::resolve(&s.settings, env, &Default::default())?;
        Ok(decide_here(s, runtime, &resolved, env, now, &mut fastrand::Rng::new()))
    };
    let Some(store) = store.filter(|_| state.accounts.iter().any(|a| a.runtime == runtime)) else {
        return decide(state);
    };
    let decision = store.update(crate::state::DEFAULT_LOCK_TIMEOUT, |s| {
        let decision = decide(s)?;
        force::record(s, &decision, now)?;
        Ok::<_, Error>(decision)
    })??;
    if let Err(e) = store.append_decision(&Record::new(&decision, now, Some(run_id), "run").line()) {
        tracing::warn!("could not log the rotation decision: {e}");
    }
    Ok(decision)
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
        let run_id = new_run_id(now);
        let decision = match &state {
            Some(s) => Some(decide_run(store.as_ref(), s, runtime, env, &run_id, now)?),
            None => None,
        };
        let plan = Plan::new(
            state.as_ref().zip(decision.as_ref()),
            runtime,
            request.account.as_deref(),
            env_key_var,
            request.api_fallback,
            now,
        )?;
        let masks = Masks::new(config, env, state.as_ref());
        let failover = Failover {
            config,
            env,
            request,
            clock,
            signals,
            program,
            masks,
            recorder: Recorder::new(store),
            run_id: run_id.clone(),
            renew_options: RenewOptions::from_config(config),
            report: RunReport {
                run_id: run_id.clone(),
                ..RunReport::new(runtime)
            },
            unavailable: plan.passed_over().iter().map(Unavailable::passed_over).collect(),
            previous: None,
            last_exit: None,
        };
        Ok((failover, plan))
    }

    /// The configured login directory of the runtime.
    fn configured_login(&self) -> Option<PathBuf> {
        self.config
            .runtime(self.request.runtime)
            .map(|s| s.login_dir.value.clone())
    }

    /// Rotation's choice with its key read and its directory: an API key runs in the
    /// previous attempt's directory, where the session is.
    fn candidate(&self, choice: Choice) -> Candidate {
        let dir = match (choice.kind, choice.stored) {
            (AccountKind::ApiKey, _) => self
                .previous
                .as_ref()
                .map(|(d, _)| d.clone())
                .or_else(|| self.configured_login()),
            (AccountKind::Oauth, false) => self.configured_login(),
            (AccountKind::Oauth, true) => choice.login_dir,
        };
        Candidate {
            key: secrets::key_value(&choice.key, self.env),
            alias: choice.alias,
            kind: choice.kind,
            dir,
            stored: choice.stored,
        }
    }

    /// The directory the candidate runs in, or `None` (and why, listed) when it cannot run.
    fn usable(&mut self, candidate: &Candidate) -> Option<PathBuf> {
        let reason = match (&candidate.dir, &candidate.key) {
            (None, _) => "no login directory",
            (Some(_), None) if candidate.kind == AccountKind::ApiKey => "its API key is not set",
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

    /// The report when every credential is out: exit 10, with each account and why.
    fn exhausted(mut self) -> RunReport {
        self.report.unavailable = self.unavailable;
        self.report.exhausted = true;
        self.report.exit_code = i32::from(Exit::AccountsExhausted.code());
        self.report
    }
}

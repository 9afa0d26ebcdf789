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

pub mod child;
pub mod classify;
pub mod resume;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::agents::{LoginRuntime, Runtime};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::failover::classify::{Classification, Outcome};
use crate::redact::{Redactor, Secret};
use crate::renew::{self, RenewOptions, RenewStatus};
use crate::state::accounts::{self, Account, AccountKind, Availability};

use child::{ChildSpec, SignalForwarder};

use crate::agents::COMPETING_CREDENTIALS as CREDENTIAL_VARS;

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

/// A credential `run` can use.
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

/// One attempt, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub account: String,
    pub kind: AccountKind,
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Whether this attempt resumed the previous attempt's session.
    pub resumed: bool,
    pub exit_code: Option<i32>,
    pub started_at: String,
    pub duration_ms: u64,
    /// Time from the previous child's exit to this child's start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switch_ms: Option<f64>,
    /// What moonauth's own refresh did before the start (`fresh`, `refreshed`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewal: Option<String>,
}

/// An account that could not be used, for the exhaustion listing.
#[derive(Debug, Clone, Serialize)]
pub struct Unavailable {
    pub account: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The report of one `moonauth run` (schema in docs/failover.md).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub schema: &'static str,
    pub runtime: Runtime,
    pub ok: bool,
    pub exit_code: i32,
    /// The account whose credential finished the work.
    pub finished_by: Option<String>,
    pub api_billing_used: bool,
    /// Every credential was out: the run ends with exit 10.
    pub exhausted: bool,
    pub attempts: Vec<Attempt>,
    /// Accounts that were out, with why (filled when every credential is exhausted).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<Unavailable>,
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn api_key_vars(runtime: Runtime) -> &'static [&'static str] {
    // Gemini has no key variable moonauth knows of (`run` takes only login runtimes).
    runtime.login().map(LoginRuntime::api_key_vars).unwrap_or_default()
}

fn resolve_key(account: &Account, env: &crate::source::Env) -> Option<Secret> {
    if let Some(var) = &account.api_key_env {
        return env.non_blank(var).map(Secret::new);
    }
    if let Some(path) = &account.api_key_file {
        return child::first_line_of(path).ok().map(Secret::new);
    }
    None
}

/// Every variable a stored account names for its key, of any runtime (set-aside records
/// too): removed from every child, so one account's key never reaches another's attempt.
fn named_key_vars(state: Option<&accounts::State>) -> Vec<String> {
    let Some(state) = state else { return Vec::new() };
    let mut vars: Vec<String> = state
        .accounts
        .iter()
        .filter_map(|a| a.api_key_env.clone())
        .chain(
            state
                .unreadable_accounts
                .iter()
                .filter_map(|r| r.get("api_key_env").and_then(serde_json::Value::as_str))
                .filter(|v| accounts::is_variable_name(v))
                .map(str::to_string),
        )
        .collect();
    vars.sort();
    vars.dedup();
    vars
}

/// The credential values this run knows: every stored account's tokens (from its login
/// file) and key (from its variable or file), the default login's tokens, and the
/// credential variables of the environment. What the run records or reports is masked
/// with them, not only by shape.
fn known_secrets(
    config: &Config,
    env: &crate::source::Env,
    state: Option<&accounts::State>,
    key_vars: &[String],
) -> Redactor {
    let mut redactor = Redactor::new();
    let mut logins: Vec<(Runtime, PathBuf)> = [Runtime::Claude, Runtime::Codex]
        .into_iter()
        .filter_map(|rt| config.runtime(rt).map(|s| (rt, s.login_dir.value.clone())))
        .collect();
    for a in state.map(|s| s.accounts.as_slice()).unwrap_or_default() {
        if let Some(dir) = &a.login_dir {
            logins.push((a.runtime, dir.clone()));
        }
        if let Some(key) = resolve_key(a, env) {
            redactor.add(key.expose());
        }
    }
    for (runtime, dir) in logins.into_iter().filter_map(|(rt, dir)| Some((rt.login()?, dir))) {
        let file = crate::credentials::login_file(runtime, &dir);
        // Bounded and link-safe; a login that cannot be read has no values to mask.
        if let Ok(Some(bytes)) = crate::credentials::read_login_file(&dir, &file) {
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                credential_strings(&value, false, &mut |s| redactor.add(s));
            }
        }
    }
    for var in CREDENTIAL_VARS
        .iter()
        .copied()
        .chain(key_vars.iter().map(String::as_str))
    {
        if let Some(value) = env.non_blank(var) {
            redactor.add(value);
        }
    }
    redactor
}

/// Calls `found` with every string in a login file held under a credential-like key
/// (`accessToken`, `refresh_token`, `OPENAI_API_KEY`, …), at any depth.
fn credential_strings(value: &serde_json::Value, under_secret: bool, found: &mut dyn FnMut(&str)) {
    match value {
        serde_json::Value::String(s) if under_secret => found(s),
        serde_json::Value::Array(items) => {
            for item in items {
                credential_strings(item, under_secret, found);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                let k = key.to_ascii_lowercase();
                let secret = ["token", "key", "secret", "password"].iter().any(|n| k.contains(n));
                credential_strings(v, under_secret || secret, found);
            }
        }
        _ => {}
    }
}

/// The credentials a run may use, in order, and the accounts that are out before it starts.
struct Plan {
    oauth: Vec<Candidate>,
    api: Vec<Candidate>,
    unavailable: Vec<Unavailable>,
    /// Every OAuth account that is out is out for quota (so an API key may follow).
    quota_only: bool,
}

/// Orders the credentials of `runtime`: the stored accounts by the pick policy (OAuth
/// before keys), or without any, the configured login and the environment's key.
fn plan(
    config: &Config,
    env: &crate::source::Env,
    runtime: Runtime,
    state: Option<&accounts::State>,
    stored: &[Account],
    first: Option<&str>,
    now: SystemTime,
) -> Result<Plan> {
    let mut unavailable = Vec::new();
    let mut quota_only = true;
    let mut oauth: Vec<Candidate> = Vec::new();
    let mut api: Vec<Candidate> = Vec::new();
    if stored.is_empty() {
        // No store: the configured login, and the environment's key as the fallback.
        let dir = config.runtime(runtime).map(|s| s.login_dir.value.clone());
        oauth.push(Candidate {
            alias: "default".into(),
            kind: AccountKind::Oauth,
            dir,
            key: None,
            stored: false,
        });
        if let Some((var, key)) = api_key_vars(runtime)
            .iter()
            .find_map(|v| env.non_blank(v).map(|k| (*v, k)))
        {
            api.push(Candidate {
                alias: format!("env:{var}"),
                kind: AccountKind::ApiKey,
                dir: None,
                key: Some(Secret::new(key)),
                stored: false,
            });
        }
    } else {
        let state = state.expect("stored accounts come from a state");
        let order = accounts::eligible(state, runtime, now);
        for a in stored {
            if order.iter().any(|e| e.alias == a.alias) {
                continue;
            }
            let availability = accounts::availability(a, now);
            // A disabled account is the operator's choice, not a reason against the key.
            if !matches!(availability, Availability::CoolingDown(_) | Availability::Disabled) {
                quota_only = false;
            }
            unavailable.push(Unavailable {
                account: a.alias.clone(),
                reason: match availability {
                    Availability::Disabled => availability.as_str().to_string(),
                    _ => a
                        .last_failure
                        .as_ref()
                        .map(|f| f.reason.clone())
                        .unwrap_or_else(|| availability.as_str().to_string()),
                },
                until: a.cooldown_until.filter(|t| *t > now).map(rfc3339),
                fix: a.fix(now),
            });
        }
        for a in order {
            let c = Candidate {
                alias: a.alias.clone(),
                kind: a.kind,
                dir: a.login_dir.clone(),
                key: if a.kind == AccountKind::ApiKey {
                    resolve_key(a, env)
                } else {
                    None
                },
                stored: true,
            };
            match a.kind {
                AccountKind::Oauth => oauth.push(c),
                AccountKind::ApiKey => api.push(c),
            }
        }
    }
    if let Some(first) = first {
        match oauth.iter().position(|c| c.alias == first) {
            Some(i) => {
                let c = oauth.remove(i);
                oauth.insert(0, c);
            }
            None => {
                if !stored.iter().any(|a| a.alias == first) && first != "default" {
                    return Err(Error::InvalidFlag {
                        flag: "--account",
                        value: first.to_string(),
                        reason: format!("no {runtime} account has this alias (see `moonauth accounts ls`)"),
                    });
                }
                tracing::warn!("account {first} is not eligible now; starting with the next one");
            }
        }
    }

    Ok(Plan {
        oauth,
        api,
        unavailable,
        quota_only,
    })
}

/// Runs the request to completion and returns its report.
pub fn run(config: &Config, env: &crate::source::Env, request: &RunRequest) -> Result<RunReport> {
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
    let lock_wait = Duration::from_secs(10);
    let now = SystemTime::now();
    let state = match &store {
        Some(s) => Some(s.read_unlocked()?),
        None => None,
    };
    let stored: Vec<Account> = state
        .as_ref()
        .map(|s| s.accounts.iter().filter(|a| a.runtime == runtime).cloned().collect())
        .unwrap_or_default();

    let Plan {
        oauth,
        mut api,
        mut unavailable,
        mut quota_only,
    } = plan(
        config,
        env,
        runtime,
        state.as_ref(),
        &stored,
        request.account.as_deref(),
        now,
    )?;

    let key_vars = named_key_vars(state.as_ref());
    let redactor = known_secrets(config, env, state.as_ref(), &key_vars);

    let record = |f: &dyn Fn(&mut accounts::State) -> Result<()>| -> Result<()> {
        if let Some(s) = &store {
            s.update(lock_wait, |state| f(state))??;
        }
        Ok(())
    };

    let mut report = RunReport {
        schema: "moonauth.run.v1",
        runtime,
        ok: false,
        exit_code: 1,
        finished_by: None,
        api_billing_used: false,
        exhausted: false,
        attempts: Vec::new(),
        unavailable: Vec::new(),
    };
    let mut previous: Option<(PathBuf, Classification)> = None;
    let mut last_exit: Option<Instant> = None;

    let renew_options = RenewOptions::from_config(config);
    let mut queue: Vec<Candidate> = oauth;
    let mut api_used = false;
    let mut index = 0;
    loop {
        let candidate = if index < queue.len() {
            queue[index].clone()
        } else if !api_used && request.api_fallback && quota_only && !api.is_empty() {
            api_used = true;
            let mut c = api.remove(0);
            // The key runs in the previous attempt's directory, where the session is.
            c.dir = previous
                .as_ref()
                .map(|(d, _)| d.clone())
                .or_else(|| config.runtime(runtime).map(|s| s.login_dir.value.clone()));
            queue.push(c.clone());
            c
        } else {
            break;
        };
        index += 1;
        let mut renewed: Option<RenewStatus> = None;
        let Some(dir) = candidate.dir.clone() else {
            unavailable.push(Unavailable {
                account: candidate.alias.clone(),
                reason: "no login directory".into(),
                until: None,
                fix: None,
            });
            continue;
        };
        if candidate.kind == AccountKind::ApiKey && candidate.key.is_none() {
            unavailable.push(Unavailable {
                account: candidate.alias.clone(),
                reason: "its API key is not set".into(),
                until: None,
                fix: None,
            });
            continue;
        }

        // Refresh the login first when it is inside the lead, under the shared lease, so
        // the CLI never refreshes a login other workers use (docs/shared-logins.md).
        if candidate.kind == AccountKind::Oauth {
            let renewal = renew::renew_dir(runtime, &dir, &renew_options, SystemTime::now());
            match renewal.status {
                // A pending write leaves a spent refresh token in the file: the CLI must not
                // refresh it, so this account sits out until a renewal applies the answer.
                RenewStatus::Dead | RenewStatus::Blocked | RenewStatus::Missing | RenewStatus::PendingWrite => {
                    quota_only = false;
                    let now = SystemTime::now();
                    let alias = candidate.alias.clone();
                    let renewal_detail = redactor.redact(&renewal.detail);
                    if candidate.stored && renewal.status != RenewStatus::PendingWrite {
                        let detail = renewal_detail.clone();
                        let dead = renewal.status != RenewStatus::Missing;
                        record(&|s| s.record_refresh_failure(&alias, &detail, dead, now).map(|_| ()))?;
                    }
                    report.attempts.push(Attempt {
                        account: alias.clone(),
                        kind: candidate.kind,
                        outcome: "auth-failure".into(),
                        reason: Some(format!("login not usable before start: {renewal_detail}")),
                        resets_at: None,
                        session_id: None,
                        resumed: false,
                        exit_code: None,
                        started_at: rfc3339(now),
                        duration_ms: 0,
                        switch_ms: None,
                        renewal: Some(renewal.status.as_str().to_string()),
                    });
                    unavailable.push(Unavailable {
                        account: alias.clone(),
                        reason: "auth-failure".into(),
                        until: None,
                        fix: Some(match (renewal.status, &renewal.fix) {
                            (RenewStatus::PendingWrite, Some(fix)) => fix.clone(),
                            _ => crate::agents::account_login_command(runtime, &alias),
                        }),
                    });
                    continue;
                }
                RenewStatus::Failed => {
                    tracing::warn!(
                        "{}: {}; starting the CLI on the login as it is",
                        candidate.alias,
                        redactor.redact(&renewal.detail)
                    )
                }
                _ => {}
            }
            renewed = Some(renewal.status);
        }

        // Resume the interrupted session here when it got far enough to have one.
        let (args, resumed) = match &previous {
            Some((prev_dir, c)) if c.resumable() => {
                let id = c.session_id.as_deref().expect("resumable has an id");
                match resume::carry_session(runtime, prev_dir, &dir, id)? {
                    Some(_) => (
                        match runtime {
                            Runtime::Claude => resume::claude_resume_args(&request.args, id, &request.continuation),
                            _ => resume::codex_resume_args(&request.args, id, &request.continuation),
                        },
                        true,
                    ),
                    None => (request.args.clone(), false),
                }
            }
            _ => (request.args.clone(), false),
        };

        let mut set = vec![(
            crate::agents::dir_variable(runtime.require_login()?).to_string(),
            dir.display().to_string(),
        )];
        if runtime == Runtime::Claude && env.get("CLAUDE_CODE_MAX_RETRIES").is_none() {
            set.push(("CLAUDE_CODE_MAX_RETRIES".into(), request.cli_max_retries.to_string()));
        }
        if let Some(key) = &candidate.key {
            for var in api_key_vars(runtime) {
                set.push((var.to_string(), key.expose().to_string()));
            }
        }
        // Every credential variable out, then only the one this attempt uses back in
        // (`set` wins over `remove`): a custom key variable of one account
        // (`--api-key-env WORK_KEY_2`) must not reach an attempt on another.
        let remove: Vec<String> = CREDENTIAL_VARS
            .iter()
            .map(|s| s.to_string())
            .chain(key_vars.iter().cloned())
            .collect();
        let spec = ChildSpec {
            program: program.clone(),
            args,
            set,
            remove,
            redact: redactor.clone(),
        };

        let finished = attempt(
            &spec,
            &candidate,
            resumed,
            renewed,
            request,
            &signals,
            &mut last_exit,
            &mut report.attempts,
        )?;

        let exit = finished.exit_code.unwrap_or_else(|| 128 + finished.signal.unwrap_or(0));
        report.exit_code = exit;
        if let Some(sig) = finished.interrupted_by {
            tracing::warn!("interrupted by signal {sig}; not failing over");
            report.exit_code = 128 + sig;
            return Ok(report);
        }
        let usage = finished.classification.usage.clone();
        let now = SystemTime::now();
        let alias = candidate.alias.clone();
        match &finished.classification.outcome {
            Outcome::Success => {
                if candidate.stored {
                    record(&|s| {
                        s.record_success(&alias, now)?;
                        if let Some(u) = &usage {
                            s.account_mut(&alias)?.usage = Some(u.clone());
                        }
                        Ok(())
                    })?;
                }
                report.ok = exit == 0;
                report.finished_by = Some(alias);
                report.api_billing_used = candidate.kind == AccountKind::ApiKey;
                return Ok(report);
            }
            Outcome::UsageLimit { resets_at, .. } => {
                if candidate.stored {
                    let resets = *resets_at;
                    record(&|s| {
                        s.record_quota(&alias, resets, now).map(|_| ())?;
                        if let Some(u) = &usage {
                            s.account_mut(&alias)?.usage = Some(u.clone());
                        }
                        Ok(())
                    })?;
                }
                if candidate.kind == AccountKind::ApiKey {
                    return Ok(report);
                }
                unavailable.push(Unavailable {
                    account: alias,
                    reason: "usage-limit".into(),
                    until: resets_at.map(rfc3339),
                    fix: None,
                });
            }
            Outcome::AuthFailure { detail } => {
                quota_only = false;
                if candidate.stored {
                    let detail = redactor.redact(detail);
                    record(&|s| s.record_auth_failure(&alias, &detail, now))?;
                }
                if candidate.kind == AccountKind::ApiKey {
                    return Ok(report);
                }
                unavailable.push(Unavailable {
                    account: alias.clone(),
                    reason: "auth-failure".into(),
                    until: None,
                    fix: Some(crate::agents::account_login_command(runtime, &alias)),
                });
            }
            Outcome::Throttle { .. } | Outcome::Overload | Outcome::Other { .. } => {
                // Not the credential's fault: another account would not help.
                return Ok(report);
            }
        }
        previous = Some((dir, finished.classification));
    }

    report.unavailable = unavailable;
    report.exhausted = true;
    report.exit_code = i32::from(Exit::AccountsExhausted.code());
    Ok(report)
}

/// How often a wait between attempts looks for a signal moonauth received.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Runs one credential's attempt, retrying the same credential after a throttle or an
/// overload (bounded, with backoff); every try is recorded in `attempts`.
#[allow(clippy::too_many_arguments)]
fn attempt(
    spec: &ChildSpec,
    candidate: &Candidate,
    resumed: bool,
    renewed: Option<RenewStatus>,
    request: &RunRequest,
    signals: &SignalForwarder,
    last_exit: &mut Option<Instant>,
    attempts: &mut Vec<Attempt>,
) -> Result<child::Finished> {
    let runtime = request.runtime;
    let mut tries = 0;
    loop {
        let wall = SystemTime::now();
        let switch_ms = last_exit.map(|t| t.elapsed().as_secs_f64() * 1000.0);
        let f = child::run(spec, runtime, signals)?;
        *last_exit = Some(f.ended);
        let c = &f.classification;
        attempts.push(Attempt {
            account: candidate.alias.clone(),
            kind: candidate.kind,
            outcome: c.outcome.kind().to_string(),
            reason: reason(&c.outcome).map(|r| spec.redact.redact(&r)),
            resets_at: match &c.outcome {
                Outcome::UsageLimit { resets_at, .. } => resets_at.map(rfc3339),
                _ => None,
            },
            session_id: c.session_id.clone(),
            resumed,
            exit_code: f.exit_code,
            started_at: rfc3339(wall),
            duration_ms: f.ended.duration_since(f.started).as_millis() as u64,
            switch_ms,
            renewal: renewed.map(|r| r.as_str().to_string()),
        });
        let retry = matches!(c.outcome, Outcome::Throttle { .. } | Outcome::Overload);
        if !retry || tries >= request.throttle_retries || f.interrupted_by.is_some() {
            return Ok(f);
        }
        let hinted = match &c.outcome {
            Outcome::Throttle { retry_after } => *retry_after,
            _ => None,
        };
        let wait = retry_wait(hinted, request.backoff, tries);
        tracing::warn!(
            "{}: {} on account {}; retrying in {} ({}/{})",
            runtime,
            c.outcome.kind(),
            candidate.alias,
            humantime::format_duration(wait),
            tries + 1,
            request.throttle_retries
        );
        // A signal in the wait ends the run now: the retry would start a CLI that never
        // hears of it.
        let until = Instant::now() + wait;
        while signals.received().is_none() && Instant::now() < until {
            std::thread::sleep(until.saturating_duration_since(Instant::now()).min(SIGNAL_POLL));
        }
        if let Some(sig) = signals.received() {
            return Ok(child::Finished {
                interrupted_by: Some(sig),
                ..f
            });
        }
        tries += 1;
    }
}

/// The longest wait before a retry on the same account.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// The wait before retry number `tries + 1`: the CLI's hint, else `backoff` doubled per
/// earlier try, at most [`MAX_RETRY_WAIT`]. Saturating: `MOONAUTH_THROTTLE_BACKOFF` may be
/// any duration, and a product past `Duration::MAX` would panic.
fn retry_wait(hinted: Option<Duration>, backoff: Duration, tries: u32) -> Duration {
    let doubled = 2u32
        .checked_pow(tries)
        .and_then(|factor| backoff.checked_mul(factor))
        .unwrap_or(Duration::MAX);
    hinted.unwrap_or(doubled).min(MAX_RETRY_WAIT)
}

fn reason(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Success => None,
        Outcome::UsageLimit { window, .. } => Some(match window {
            Some(w) => format!("usage limit ({w})"),
            None => "usage limit".into(),
        }),
        Outcome::Throttle { .. } => Some("throttled (429)".into()),
        Outcome::Overload => Some("overloaded".into()),
        Outcome::AuthFailure { detail } | Outcome::Other { detail } => Some(detail.clone()),
    }
}

/// Writes the GitHub Actions job summary table and an annotation for a finished run.
pub fn github_summary(report: &RunReport, summary_file: Option<&Path>) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(path) = summary_file {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        writeln!(f, "### moonauth run ({})\n", report.runtime)?;
        writeln!(f, "| # | account | kind | outcome | reason | resets at | session |")?;
        writeln!(f, "|---|---|---|---|---|---|---|")?;
        for (i, a) in report.attempts.iter().enumerate() {
            writeln!(
                f,
                "| {} | {} | {} | {} | {} | {} | {} |",
                i + 1,
                a.account,
                a.kind.as_str(),
                a.outcome,
                a.reason.as_deref().unwrap_or("").replace('|', "\\|"),
                a.resets_at.as_deref().unwrap_or(""),
                a.session_id.as_deref().unwrap_or("")
            )?;
        }
        let paid = match (&report.finished_by, report.api_billing_used) {
            (Some(a), true) => format!("finished on **{a}** (API key billing)"),
            (Some(a), false) => format!("finished on **{a}** (subscription)"),
            (None, _) => "did not finish".into(),
        };
        writeln!(f, "\n{paid}\n")?;
    }
    let line = match (&report.finished_by, report.api_billing_used, report.attempts.len()) {
        (Some(a), true, _) => format!(
            "::warning title=moonauth::{} run finished on API key {a} (API billing)",
            report.runtime
        ),
        (Some(a), false, 1) => format!(
            "::notice title=moonauth::{} run finished on account {a}",
            report.runtime
        ),
        (Some(a), false, n) => format!(
            "::notice title=moonauth::{} run failed over and finished on account {a} after {n} attempts",
            report.runtime
        ),
        (None, _, _) => format!(
            "::warning title=moonauth::{} run did not finish (exit {})",
            report.runtime, report.exit_code
        ),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_wait_doubles_and_stays_under_a_minute_for_any_backoff() {
        let secs = Duration::from_secs;
        assert_eq!(retry_wait(None, secs(5), 0), secs(5));
        assert_eq!(retry_wait(None, secs(5), 2), secs(20));
        assert_eq!(retry_wait(Some(secs(2)), secs(5), 3), secs(2));
        assert_eq!(retry_wait(Some(secs(3600)), secs(5), 0), MAX_RETRY_WAIT);
        // A backoff of u64::MAX seconds (a valid MOONAUTH_THROTTLE_BACKOFF) used to overflow.
        assert_eq!(retry_wait(None, secs(u64::MAX), 1), MAX_RETRY_WAIT);
        assert_eq!(retry_wait(None, secs(5), 40), MAX_RETRY_WAIT);
    }
}

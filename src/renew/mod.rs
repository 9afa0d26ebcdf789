//! Keeping shared logins outside the lead, so no CLI ever refreshes one itself.
//!
//! [`renew_dir`] renews one login directory: it reads the login, and when the access token
//! is inside the lead it takes the [`Lease`], reads the file again (another holder may have
//! refreshed meanwhile), performs the CLI's own refresh ([`crate::credentials::refresh`]) with bounded
//! retries, and writes the answer back atomically with the file's owner and mode. A failed
//! refresh leaves the file as it was and is recorded in `<dir>/.moonauth-renew.json`, so a
//! dead login (or one that failed [`MAX_CONSECUTIVE_FAILURES`] times in a row) is not
//! retried until its file changes or `--force`; [`relogin_needed`] reads that record for
//! `status` and preflight. [`watch`] repeats this for a set of logins until stopped.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Serialize, Serializer};

use crate::agents::{LoginRuntime, Runtime};
use crate::config::Config;
use crate::credentials::apply;
use crate::credentials::refresh::{self, RefreshError};
use crate::credentials::{self, human_duration};
use crate::exit::Exit;
use crate::lease::fleet::Fleet;
use crate::lease::{self, Lease, LeaseError, LoginKey};

pub mod generation;
pub mod record;
pub mod watch;

use record::{
    blocked_by, clear_state, create_pending, fingerprint, pending_record, read_pending, record_failure, remove_pending,
};
pub use record::{
    pending_answer, read_state, relogin_needed, relogin_needed_from, RenewState, MAX_CONSECUTIVE_FAILURES,
    PENDING_FILE, STATE_FILE,
};
pub use watch::{watch, WATCH_POLL};

/// HTTP attempts per renewal for a passing failure (network, 5xx).
pub const DEFAULT_ATTEMPTS: u32 = 3;
/// Timeout of one request to a token service.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the credentials write waits for the CLI's own write locks (Claude Code's
/// storage-write lock, Codex's commit flocks).
const STORAGE_LOCK_WAIT: Duration = Duration::from_secs(30);
/// Space claimed beyond the login file's size before a refresh token is spent: the answer
/// adds a few KiB to the file, and the answer is first kept in this claimed space.
const RESERVE_SLACK: u64 = 16 * 1024;

/// How to renew: the lead, the endpoints, the waits. Built from [`Config`] by
/// [`RenewOptions::from_config`]; library callers (`moonauth run`) may adjust it.
#[derive(Debug, Clone)]
pub struct RenewOptions {
    /// Refresh when the access token expires within this.
    pub lead: Duration,
    /// Refresh even when fresh, and even when the failure record says to leave it alone.
    pub force: bool,
    /// How long to wait for the lease (moonauth's flock and Claude Code's locks).
    pub lock_timeout: Duration,
    pub claude_token_url: String,
    pub codex_token_url: String,
    /// Timeout of one token request.
    pub http_timeout: Duration,
    /// Attempts of one renewal when the failure is passing.
    pub attempts: u32,
    /// Delay before the second attempt; doubles after each.
    pub retry_delay: Duration,
    /// Set by a signal handler: no further attempt starts once it is true.
    pub stop: Option<&'static AtomicBool>,
    /// Only say what would be done: no lease, no request, no file touched.
    pub dry_run: bool,
    /// The fleet's database (`MOONAUTH_STATE_URL`): the fleet lease is taken with the
    /// local one, and refreshed logins are published and taken up as generations.
    pub fleet: Option<Arc<Fleet>>,
}

impl RenewOptions {
    /// The options the configuration asks for.
    pub fn from_config(config: &Config) -> RenewOptions {
        RenewOptions {
            lead: config.renew.lead.value,
            force: false,
            lock_timeout: config.renew.lock_timeout.value,
            claude_token_url: config.renew.claude_token_url.value.clone(),
            codex_token_url: config.renew.codex_token_url.value.clone(),
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
            retry_delay: config.renew.retry_delay.value,
            stop: None,
            dry_run: false,
            fleet: config.fleet.clone().map(|f| Arc::new(Fleet::new(f))),
        }
    }

    fn token_url(&self, runtime: LoginRuntime) -> &str {
        match runtime {
            LoginRuntime::Claude => &self.claude_token_url,
            LoginRuntime::Codex => &self.codex_token_url,
        }
    }

    fn stopped(&self) -> bool {
        self.stop.is_some_and(|s| s.load(Ordering::SeqCst))
    }
}

/// What happened to one login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RenewStatus {
    /// moonauth refreshed it; `expires_at` is the new expiry.
    Refreshed,
    /// Another holder refreshed it while moonauth waited for the lease.
    RefreshedElsewhere,
    /// Outside the lead: nothing to do.
    Fresh,
    /// The token service refused the refresh token: log in again.
    Dead,
    /// The refresh failed for a passing reason (network, 5xx, lock busy); the file is unchanged.
    Failed,
    /// Refreshed, but the new tokens could not be written to the login file: they wait in
    /// [`PENDING_FILE`] and the next renewal applies them. Needs attention: the login
    /// file's refresh token is spent, so no CLI may refresh it meanwhile.
    PendingWrite,
    /// Failed too often in a row (or dead); left alone until the file changes or `--force`.
    Blocked,
    /// Nothing moonauth can refresh: an API key, or a login without a refresh token.
    NotRefreshable,
    /// No login file in the directory.
    Missing,
    /// `--dry-run`: a renewal would refresh it now (the detail says why and where).
    WouldRefresh,
}

impl RenewStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RenewStatus::Refreshed => "refreshed",
            RenewStatus::RefreshedElsewhere => "refreshed-elsewhere",
            RenewStatus::Fresh => "fresh",
            RenewStatus::Dead => "dead",
            RenewStatus::Failed => "failed",
            RenewStatus::PendingWrite => "pending-write",
            RenewStatus::Blocked => "blocked",
            RenewStatus::NotRefreshable => "not-refreshable",
            RenewStatus::Missing => "missing",
            RenewStatus::WouldRefresh => "would-refresh",
        }
    }
}

/// The outcome of renewing one login. Never holds a token.
#[derive(Debug, Clone, Serialize)]
pub struct RenewOutcome {
    pub runtime: Runtime,
    pub dir: PathBuf,
    pub status: RenewStatus,
    /// One sentence on what happened.
    pub detail: String,
    /// The access token's expiry after this renewal.
    #[serde(serialize_with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<SystemTime>,
    /// Requests sent to the token service.
    pub attempts: u32,
    /// The command that fixes it, when a person must act.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl RenewOutcome {
    fn new(runtime: Runtime, dir: &Path, status: RenewStatus, detail: impl Into<String>) -> Self {
        RenewOutcome {
            runtime,
            dir: dir.to_path_buf(),
            status,
            detail: detail.into(),
            expires_at: None,
            attempts: 0,
            fix: None,
        }
    }

    fn expiring(mut self, at: Option<SystemTime>) -> Self {
        self.expires_at = at;
        self
    }

    fn with_fix(mut self, fix: String) -> Self {
        self.fix = Some(fix);
        self
    }

    /// Whether the CLI can run on this login without refreshing it itself.
    pub fn usable(&self) -> bool {
        matches!(
            self.status,
            RenewStatus::Refreshed | RenewStatus::RefreshedElsewhere | RenewStatus::Fresh | RenewStatus::NotRefreshable
        )
    }

    /// The exit status this outcome alone would give (docs/exit-codes.md).
    pub fn exit(&self) -> Exit {
        match self.status {
            RenewStatus::Refreshed
            | RenewStatus::RefreshedElsewhere
            | RenewStatus::Fresh
            | RenewStatus::NotRefreshable
            | RenewStatus::WouldRefresh => Exit::Ok,
            RenewStatus::Dead | RenewStatus::Blocked | RenewStatus::Missing => Exit::LoginUnusable,
            // Retrying is what helps (the next renewal applies the kept answer), as for
            // a passing failure: no code of its own.
            RenewStatus::Failed | RenewStatus::PendingWrite => Exit::Failure,
        }
    }
}

fn opt_time<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&credentials::rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// The report of one `moonauth renew` (schema in docs/shared-logins.md).
#[derive(Debug, Serialize)]
pub struct RenewReport {
    pub schema: &'static str,
    /// Whether the command exits 0 (`exit_code` is the exit: the worst of the logins').
    pub ok: bool,
    pub exit_code: u8,
    /// The lead in seconds.
    pub lead_secs: u64,
    pub logins: Vec<RenewOutcome>,
}

impl RenewReport {
    /// The report of renewing `logins`, which end the command with `exit` (the command
    /// decides it: a missing login nobody named does not fail it).
    pub fn new(lead: Duration, logins: Vec<RenewOutcome>, exit: Exit) -> RenewReport {
        RenewReport {
            schema: "moonauth.renew.v1",
            ok: exit == Exit::Ok,
            exit_code: exit.code(),
            lead_secs: lead.as_secs(),
            logins,
        }
    }
}

/// Renews the login of `runtime` in `dir` when it is inside the lead (or `force`); a
/// login not named by a store account. See [`renew_login`].
pub fn renew_dir(runtime: Runtime, dir: &Path, opts: &RenewOptions, now: SystemTime) -> RenewOutcome {
    renew_login(&LoginKey::new(runtime, None), dir, opts, now)
}

/// Renews the login `key`, found in `dir` on this host, when it is inside the lead (or
/// `force`). `now` is the time decisions are made at (injected for tests); the new
/// expiry is counted from `now` plus the time spent here.
pub fn renew_login(key: &LoginKey, dir: &Path, opts: &RenewOptions, now: SystemTime) -> RenewOutcome {
    let runtime = key.runtime;
    let started = Instant::now();
    let clock = || now + started.elapsed();
    let Some(login) = runtime.login() else {
        let why = format!("{runtime} has no login moonauth refreshes");
        return RenewOutcome::new(runtime, dir, RenewStatus::NotRefreshable, why);
    };
    if runtime == Runtime::Claude && !opts.dry_run {
        // Before anything else, even on the fast path (`run` comes through here before
        // each attempt): a killed moonauth's Claude locks would stall a running claude.
        lease::release_dead_holders_claude_locks(dir);
    }
    let fleet = opts.fleet.as_deref().filter(|_| !opts.dry_run);
    // A newer generation another host published comes first, even on the fast path: the
    // refresh token in this directory may be spent.
    if let Some(fleet) = fleet {
        if generation::newer_published(fleet, key, dir) {
            let mut local = match Lease::acquire(key, dir, opts.lock_timeout, None) {
                Ok(l) => l,
                Err(e) => return busy(runtime, dir, e),
            };
            if let Err(why) = generation::take_up(&mut local, fleet, key, dir) {
                return fleet_failed(runtime, dir, why);
            }
        }
    }
    let file = credentials::login_file(login, dir);
    let missing = format!("no {} in {}", file_name(&file), dir.display());
    let bytes = match read_login(runtime, dir, &file, missing) {
        Ok(b) => b,
        Err(outcome) => return *outcome,
    };
    // An answer an earlier renewal could not write comes first: its refresh token is spent.
    let pending = fs::symlink_metadata(dir.join(PENDING_FILE)).is_ok();
    let state = read_state(dir);
    if !opts.force && !pending {
        if let Some(why) = blocked_by(&state, &bytes) {
            return blocked(runtime, dir, why);
        }
    }
    let seen = match refresh::read_tokens(login, &bytes) {
        Ok(t) => t,
        Err(why) => return RenewOutcome::new(runtime, dir, RenewStatus::NotRefreshable, why),
    };
    // The fast path: a fresh login needs no lock.
    let due = refresh::refresh_due(login, &seen, now, opts.lead);
    if !opts.force && !pending && due.is_none() {
        return fresh(runtime, dir, seen.expires_at, now, opts.lead);
    }
    if opts.dry_run {
        let why = match (pending, due) {
            (true, _) => format!("would write the answer kept in {PENDING_FILE}; nothing would be sent"),
            (false, Some(why)) => format!("would refresh: {why}; POST {}", endpoint(opts.token_url(login))),
            (false, None) => format!("would refresh: --force; POST {}", endpoint(opts.token_url(login))),
        };
        return RenewOutcome::new(runtime, dir, RenewStatus::WouldRefresh, why).expiring(seen.expires_at);
    }

    let mut lease = match Lease::acquire(key, dir, opts.lock_timeout, fleet) {
        Ok(l) => l,
        Err(e) => return busy(runtime, dir, e),
    };
    // Under the fleet lease: a generation published while this process waited is taken up
    // here, and the double-check below then finds the login refreshed elsewhere.
    if let Some(fleet) = fleet {
        if let Err(why) = generation::take_up(&mut lease, fleet, key, dir) {
            return fleet_failed(runtime, dir, why);
        }
    }
    // Double-check under the lease: another holder may have refreshed while we waited.
    let removed = "the login file was removed while waiting for the lease".to_string();
    let bytes = match read_login(runtime, dir, &file, removed) {
        Ok(b) => b,
        Err(outcome) => return *outcome,
    };
    let tokens = match refresh::read_tokens(login, &bytes) {
        Ok(t) => t,
        Err(why) => return RenewOutcome::new(runtime, dir, RenewStatus::NotRefreshable, why),
    };
    if pending {
        match apply_pending(&mut lease, runtime, dir, &file, &tokens, clock()) {
            Some(outcome) => return outcome,
            // Stale (the login changed since) and discarded: renew as if it never was.
            None if !opts.force => {
                if let Some(why) = blocked_by(&state, &bytes) {
                    return blocked(runtime, dir, why);
                }
            }
            None => {}
        }
    }
    if tokens.access_token != seen.access_token {
        return RenewOutcome::new(
            runtime,
            dir,
            RenewStatus::RefreshedElsewhere,
            "another holder refreshed the login while moonauth waited for the lease",
        )
        .expiring(tokens.expires_at);
    }
    if !opts.force && refresh::refresh_due(login, &tokens, clock(), opts.lead).is_none() {
        return fresh(runtime, dir, tokens.expires_at, clock(), opts.lead);
    }
    clean_stale_temp_files(dir);
    if runtime != Runtime::Claude {
        // Before the refresh token is spent: Codex's commit locks must open (a link planted
        // under their name is refused), or the new tokens could not be written afterwards.
        if let Err(e) = lease::codex_commit_locks(dir, STORAGE_LOCK_WAIT) {
            return busy(runtime, dir, e);
        }
    }

    // Before the refresh token is spent, make sure the answer can be kept: claim room for
    // the new file in the directory (space, quota, file size limit, a writable directory).
    let reservation = match Reservation::claim(dir, bytes.len() as u64 + RESERVE_SLACK, owner_of(&file)) {
        Ok(r) => r,
        Err(e) => {
            let e = RefreshError::Retryable(format!(
                "cannot write in the login directory ({e}); nothing was sent to the token service"
            ));
            return failed(runtime, dir, &file, bytes, &tokens, e, 0, clock());
        }
    };
    // The last moment before the refresh token is spent: the fleet lease must still be
    // this grant (extended now), or another host may be refreshing with it.
    if let Some(grant) = lease.fleet_grant() {
        if !grant.confirm() {
            return fleet_failed(
                runtime,
                dir,
                format!(
                    "the fleet lease (fencing {}) expired or was taken over while this process prepared; nothing was sent",
                    grant.fencing()
                ),
            );
        }
    }
    let body = refresh::request_body(login, &tokens);
    let url = opts.token_url(login);
    let shown = endpoint(url);
    let mut attempts = 0;
    let mut delay = opts.retry_delay;
    let answer = loop {
        attempts += 1;
        tracing::info!(%runtime, dir = %dir.display(), attempt = attempts, "refreshing at the token service POST {shown}");
        match refresh::post(url, &body, opts.http_timeout) {
            Ok(answer) => break Ok(answer),
            Err(RefreshError::Retryable(why)) if attempts < opts.attempts && !opts.stopped() => {
                // A warning, so a blocked network is not waited out in silence.
                tracing::warn!(%runtime, dir = %dir.display(), attempt = attempts, reason = %why, "refresh at {shown} failed; retrying");
                std::thread::sleep(jittered(delay));
                delay = delay.saturating_mul(2);
            }
            // Where it went, so a person can tell a blocked network from a wrong override.
            Err(RefreshError::Retryable(why)) => break Err(RefreshError::Retryable(format!("{why} (POST {shown})"))),
            Err(RefreshError::Dead(why)) => break Err(RefreshError::Dead(format!("{why} (POST {shown})"))),
        }
    };
    let outcome = match answer {
        Ok(answer) => settle(&mut lease, runtime, dir, &file, &tokens, &answer, clock(), reservation),
        Err(e) => Err(e),
    };
    let mut outcome = match outcome {
        Ok(Written::Done(expires_at, mut warnings)) => {
            clear_state(dir);
            if let Some(fleet) = fleet {
                if let Err(why) = generation::publish(&lease, fleet, key, dir) {
                    tracing::error!(%runtime, dir = %dir.display(), "not published to the fleet: {why}");
                    warnings.push(format!("not published to the fleet: {why}"));
                }
            }
            refreshed(runtime, dir, "refreshed", expires_at, &warnings, clock())
        }
        Ok(Written::Pending(why)) => pending_write(runtime, dir, &why),
        Err(e) => return failed(runtime, dir, &file, bytes, &tokens, e, attempts, clock()),
    };
    outcome.attempts = attempts;
    drop(lease);
    outcome
}

/// A token endpoint as it may be shown: scheme, host, port and path, without any user
/// information, query or fragment (an override could carry a secret there).
pub fn endpoint(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// The outcome of a refresh whose answer is in the login file.
fn refreshed(
    runtime: Runtime,
    dir: &Path,
    what: &str,
    expires_at: Option<SystemTime>,
    warnings: &[String],
    now: SystemTime,
) -> RenewOutcome {
    let left = expires_at
        .and_then(|e| e.duration_since(now).ok())
        .map(|d| format!("; the access token is valid for {}", human_duration(d)))
        .unwrap_or_default();
    tracing::info!(%runtime, dir = %dir.display(), "refreshed");
    let mut detail = format!("{what}{left}");
    // An out-of-range answer was bounded, not trusted: say so (the warnings hold no token).
    for w in warnings {
        tracing::warn!(%runtime, dir = %dir.display(), warning = %w, "the token service's answer was out of range");
        detail.push_str("; warning: ");
        detail.push_str(w);
    }
    RenewOutcome::new(runtime, dir, RenewStatus::Refreshed, detail).expiring(expires_at)
}

/// The outcome of a refresh whose answer waits in [`PENDING_FILE`].
fn pending_write(runtime: Runtime, dir: &Path, why: &str) -> RenewOutcome {
    tracing::warn!(%runtime, dir = %dir.display(), reason = %why, "refreshed, but the login could not be written; the answer is kept");
    RenewOutcome::new(
        runtime,
        dir,
        RenewStatus::PendingWrite,
        format!(
            "refreshed, but the new tokens could not be written to the login file ({why}); they are kept in {PENDING_FILE} and the next renewal applies them"
        ),
    )
    .with_fix(format!(
        "free space in (or make writable) {}, then run `moonauth renew {runtime} --dir {}`; until then no CLI should refresh this login, its refresh token is spent",
        dir.display(),
        dir.display()
    ))
}

/// Records a failed renewal and says what it means.
#[allow(clippy::too_many_arguments)]
fn failed(
    runtime: Runtime,
    dir: &Path,
    file: &Path,
    bytes: Vec<u8>,
    tokens: &refresh::LoginTokens,
    e: RefreshError,
    attempts: u32,
    now: SystemTime,
) -> RenewOutcome {
    let dead = matches!(e, RefreshError::Dead(_));
    let current = credentials::read_login_file(dir, file).ok().flatten().unwrap_or(bytes);
    let failures = record_failure(dir, runtime, &current, &e, now);
    tracing::warn!(%runtime, dir = %dir.display(), reason = %e.reason(), "refresh failed");
    let mut o = if dead {
        RenewOutcome::new(
            runtime,
            dir,
            RenewStatus::Dead,
            format!("{}; the login file is unchanged", e.reason()),
        )
        .with_fix(crate::agents::login_command(runtime, None))
    } else {
        let mut o = RenewOutcome::new(
            runtime,
            dir,
            RenewStatus::Failed,
            format!(
                "{} ({} failed renewal(s) in a row; the login file is unchanged)",
                e.reason(),
                failures
            ),
        )
        .expiring(tokens.expires_at);
        if failures >= MAX_CONSECUTIVE_FAILURES {
            o.fix = Some(format!(
                "check the token service and the network, then `moonauth renew {runtime} --force`"
            ));
        }
        o
    };
    o.attempts = attempts;
    o
}

fn blocked(runtime: Runtime, dir: &Path, why: String) -> RenewOutcome {
    RenewOutcome::new(runtime, dir, RenewStatus::Blocked, why).with_fix(format!(
        "{} (or `moonauth renew {runtime} --force` to try once more)",
        crate::agents::login_command(runtime, None)
    ))
}

/// The login file's bytes, or the outcome that ends the renewal: missing (with `missing`
/// as the detail and the login command as the fix) or refused by the read guards.
fn read_login(runtime: Runtime, dir: &Path, file: &Path, missing: String) -> Result<Vec<u8>, Box<RenewOutcome>> {
    match credentials::read_login_file(dir, file) {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(Box::new(
            RenewOutcome::new(runtime, dir, RenewStatus::Missing, missing)
                .with_fix(crate::agents::login_command(runtime, None)),
        )),
        Err(reason) => Err(Box::new(RenewOutcome::new(
            runtime,
            dir,
            RenewStatus::NotRefreshable,
            reason,
        ))),
    }
}

fn fresh(
    runtime: Runtime,
    dir: &Path,
    expires_at: Option<SystemTime>,
    now: SystemTime,
    lead: Duration,
) -> RenewOutcome {
    let detail = match expires_at.and_then(|e| e.duration_since(now).ok()) {
        Some(left) => format!(
            "the access token is valid for {}, outside the lead of {}",
            human_duration(left),
            human_duration(lead)
        ),
        None => "the access token carries no expiry; nothing to renew ahead of time".into(),
    };
    RenewOutcome::new(runtime, dir, RenewStatus::Fresh, detail).expiring(expires_at)
}

/// The fleet's database or key stopped a renewal; the login in `dir` is as it was.
fn fleet_failed(runtime: Runtime, dir: &Path, why: String) -> RenewOutcome {
    RenewOutcome::new(
        runtime,
        dir,
        RenewStatus::Failed,
        format!("{why}; nothing was refreshed"),
    )
    .with_fix("see docs/fleet.md (MOONAUTH_STATE_URL, MOONAUTH_STATE_KEY)".to_string())
}

fn busy(runtime: Runtime, dir: &Path, e: LeaseError) -> RenewOutcome {
    RenewOutcome::new(
        runtime,
        dir,
        RenewStatus::Failed,
        format!("{e}; nothing was refreshed, try again (MOONAUTH_RENEW_LOCK_TIMEOUT sets the wait)"),
    )
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Why an answer did not get into the login file.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    /// The file no longer holds the login that was refreshed (replaced, wiped, removed):
    /// the answer must not go in, now or later.
    #[error("{0}")]
    Replaced(String),
    /// The write failed (locks, I/O, an answer the file cannot take): the answer must be kept.
    #[error("{0}")]
    Failed(String),
}

/// Where an answer ended up.
enum Written {
    /// In the login file: the new expiry and what was bounded.
    Done(Option<SystemTime>, Vec<String>),
    /// In [`PENDING_FILE`], because the login file could not be written (the reason).
    Pending(String),
}

/// Puts an answer whose refresh token is spent where it cannot be lost: first into
/// [`PENDING_FILE`] (in the space claimed before posting, so a full disk cannot stop it),
/// then into the login file; the pending file goes once the login file has the answer.
#[allow(clippy::too_many_arguments)]
fn settle(
    lease: &mut Lease,
    runtime: Runtime,
    dir: &Path,
    file: &Path,
    sent: &refresh::LoginTokens,
    answer: &[u8],
    now: SystemTime,
    reservation: Reservation,
) -> Result<Written, RefreshError> {
    let record = pending_record(runtime, sent, answer, now);
    let kept = match reservation.keep(dir, &record) {
        Ok(()) => true,
        Err(e) => {
            // The claimed space was too small, or the directory changed: write the login anyway.
            tracing::warn!(%runtime, dir = %dir.display(), error = %e, "could not keep the answer before writing the login");
            false
        }
    };
    match write_answer(lease, runtime, dir, file, sent, answer, now) {
        Ok((expires_at, warnings)) => {
            if kept {
                remove_pending(dir);
            }
            Ok(Written::Done(expires_at, warnings))
        }
        Err(WriteError::Replaced(why)) => {
            if kept {
                remove_pending(dir);
            }
            Err(RefreshError::Retryable(format!(
                "refreshed, but {why}; the new tokens were not written and the old refresh token is spent"
            )))
        }
        Err(WriteError::Failed(why)) => {
            if kept || create_pending(dir, &record, owner_of(file)).is_ok() {
                Ok(Written::Pending(why))
            } else {
                Err(RefreshError::Dead(format!(
                    "refreshed, but {why}, and the new tokens could not be kept anywhere; the old refresh token is spent"
                )))
            }
        }
    }
}

/// Writes the token service's answer into the login file, under Claude Code's
/// storage-write lock for Claude, re-reading the file there so that keys another writer
/// changed meanwhile are kept. Refuses when the login itself was replaced meanwhile.
fn write_answer(
    lease: &mut Lease,
    runtime: Runtime,
    dir: &Path,
    file: &Path,
    sent: &refresh::LoginTokens,
    answer: &[u8],
    now: SystemTime,
) -> Result<(Option<SystemTime>, Vec<String>), WriteError> {
    let cannot = |e: LeaseError| WriteError::Failed(format!("could not take the login's write lock: {e}"));
    let mut codex_locks = None;
    if runtime == Runtime::Claude {
        lease.take_storage_lock(dir, STORAGE_LOCK_WAIT).map_err(cannot)?;
    } else {
        codex_locks = Some(lease::codex_commit_locks(dir, STORAGE_LOCK_WAIT).map_err(cannot)?);
    }
    let written = write_new_login(runtime, dir, file, sent, answer, now);
    drop(codex_locks);
    lease.release_storage_lock();
    written
}

fn write_new_login(
    runtime: Runtime,
    dir: &Path,
    file: &Path,
    sent: &refresh::LoginTokens,
    answer: &[u8],
    now: SystemTime,
) -> Result<(Option<SystemTime>, Vec<String>), WriteError> {
    let current = credentials::read_login_file(dir, file)
        .map_err(WriteError::Failed)?
        .ok_or_else(|| WriteError::Replaced("the login file disappeared".into()))?;
    let login = runtime.require_login().map_err(|e| WriteError::Failed(e.to_string()))?;
    let now_tokens = refresh::read_tokens(login, &current).map_err(WriteError::Replaced)?;
    if now_tokens.refresh_token != sent.refresh_token {
        return Err(WriteError::Replaced(
            "the login in the file was replaced meanwhile".into(),
        ));
    }
    let refresh::NewLogin {
        bytes,
        expires_at,
        warnings,
    } = refresh::apply_answer(login, &current, answer, now).map_err(WriteError::Failed)?;
    // Keep the file's owner and mode (a link is written through to its target).
    let target = fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let meta = fs::metadata(&target).map_err(|e| WriteError::Failed(e.to_string()))?;
    let mode = meta.permissions().mode() & 0o777;
    apply::write_atomic(&target, &bytes, meta.uid(), meta.gid(), mode)
        .map_err(|e| WriteError::Failed(e.to_string()))?;
    Ok((expires_at, warnings))
}

/// The owner of the login file (or of its directory), for the files moonauth adds beside it.
fn owner_of(file: &Path) -> (u32, u32) {
    fs::metadata(file)
        .or_else(|_| fs::metadata(file.parent().unwrap_or(Path::new("."))))
        .map(|m| (m.uid(), m.gid()))
        .unwrap_or((nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw()))
}

/// Room claimed in the login directory before a refresh token is spent: a temp file
/// (`.moonauth-tmp-*`, so a killed holder's is cleaned up) filled with zeros and synced,
/// which proves the directory takes a file that large now (space, quota, `RLIMIT_FSIZE`)
/// and holds the blocks for keeping the answer. Dropping it removes it.
struct Reservation {
    file: tempfile::NamedTempFile,
}

impl Reservation {
    fn claim(dir: &Path, size: u64, (uid, gid): (u32, u32)) -> std::io::Result<Reservation> {
        let mut file = tempfile::Builder::new()
            .prefix(".moonauth-tmp-")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)?;
        let zeros = [0u8; 8192];
        let mut left = size;
        while left > 0 {
            // `left.min(8192)` fits in usize.
            let n = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        file.as_file().sync_all()?;
        if nix::unistd::geteuid().is_root() {
            // The worker (not root) must be able to read and apply the answer later.
            std::os::unix::fs::fchown(file.as_file(), Some(uid), Some(gid))?;
        }
        Ok(Reservation { file })
    }

    /// Writes `record` into the claimed space and links it as [`PENDING_FILE`] (a link
    /// never replaces nor follows what is there); the temp name goes when `self` drops.
    fn keep(mut self, dir: &Path, record: &[u8]) -> std::io::Result<()> {
        let f = self.file.as_file_mut();
        f.seek(SeekFrom::Start(0))?;
        f.write_all(record)?;
        f.set_len(record.len() as u64)?;
        f.sync_all()?;
        fs::hard_link(self.file.path(), dir.join(PENDING_FILE))?;
        apply::sync_dir(dir).map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// Applies the answer an earlier renewal kept in [`PENDING_FILE`], under the lease.
/// `None` when it was stale (the login changed since) and is gone: renew as usual.
fn apply_pending(
    lease: &mut Lease,
    runtime: Runtime,
    dir: &Path,
    file: &Path,
    tokens: &refresh::LoginTokens,
    now: SystemTime,
) -> Option<RenewOutcome> {
    let pending = match read_pending(dir) {
        Ok(Some(p)) => p,
        Ok(None) => return None,
        Err(why) => {
            return Some(
                RenewOutcome::new(runtime, dir, RenewStatus::PendingWrite, why).with_fix(format!(
                    "check that `moonauth inspect {runtime} --dir {}` is usable and remove {PENDING_FILE}, or run `{}`",
                    dir.display(),
                    crate::agents::login_command(runtime, None)
                )),
            )
        }
    };
    let same_login = pending.runtime == runtime.as_str()
        && pending.spent_refresh_token == fingerprint(tokens.refresh_token.expose().as_bytes());
    if !same_login {
        // A new login (or the write did land before a crash): the kept tokens are of no use.
        tracing::info!(%runtime, dir = %dir.display(), "discarding a pending answer for a login the file no longer holds");
        remove_pending(dir);
        return None;
    }
    let received = humantime::parse_rfc3339_weak(&pending.received_at).unwrap_or(now);
    match write_answer(lease, runtime, dir, file, tokens, pending.answer.as_bytes(), received) {
        Ok((expires_at, warnings)) => {
            remove_pending(dir);
            clear_state(dir);
            let what = format!(
                "applied the answer an earlier renewal received at {} but could not write; no new refresh was needed",
                credentials::rfc3339(received)
            );
            Some(refreshed(runtime, dir, &what, expires_at, &warnings, now))
        }
        Err(WriteError::Replaced(_)) => {
            remove_pending(dir);
            None
        }
        Err(WriteError::Failed(why)) => Some(pending_write(runtime, dir, &why)),
    }
}

fn jittered(d: Duration) -> Duration {
    d + Duration::from_millis(fastrand::u64(0..=d.as_millis() as u64 / 4))
}

/// Removes temp files a killed writer left (older than ten minutes, so a write in
/// progress is never touched).
fn clean_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(".moonauth-tmp-") {
            continue;
        }
        let old = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age > Duration::from_secs(600));
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod endpoint_tests {
    use super::endpoint;

    #[test]
    fn an_endpoint_is_shown_as_scheme_host_and_path_only() {
        assert_eq!(
            endpoint("https://auth.openai.com/oauth/token"),
            "https://auth.openai.com/oauth/token"
        );
        assert_eq!(
            endpoint("http://u:pw@127.0.0.1:9/oauth/token?key=s#frag"),
            "http://127.0.0.1:9/oauth/token"
        );
        assert_eq!(endpoint("host/path"), "host/path");
    }
}

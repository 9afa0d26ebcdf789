//! One attempt on one credential: the arguments that resume the interrupted session
//! here, the child's environment, and the child itself, retried on the same credential
//! after a throttle or an overload (bounded, with backoff).

use std::path::Path;
use std::time::{Duration, Instant};

use super::child::{self, ChildSpec};
use super::classify::Outcome;
use super::report::{rfc3339, Attempt};
use super::{api_key_vars, resume, Candidate, Failover};
use crate::agents::Runtime;
use crate::error::Result;
use crate::renew::RenewStatus;

/// How often a wait between attempts looks for a signal moonauth received.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

impl Failover<'_> {
    /// The CLI's arguments in `dir`: resuming the previous attempt's session when it got
    /// far enough to have one and it could be carried here. Says whether it resumes.
    pub(super) fn resume_here(&self, dir: &Path) -> Result<(Vec<String>, bool)> {
        let runtime = self.request.runtime;
        let request = self.request;
        Ok(match &self.previous {
            Some((prev_dir, c)) if c.resumable() => {
                let id = c.session_id.as_deref().expect("resumable has an id");
                match resume::carry_session(runtime, prev_dir, dir, id)? {
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
        })
    }

    /// The child for `candidate` in `dir` with `args`.
    pub(super) fn child_spec(&self, args: Vec<String>, candidate: &Candidate, dir: &Path) -> ChildSpec {
        let runtime = self.request.runtime;
        // `run` takes only runtimes with a login (the CLI parser refuses others).
        let mut set: Vec<(String, String)> = runtime
            .login()
            .map(|login| {
                (
                    crate::agents::dir_variable(login).to_string(),
                    dir.display().to_string(),
                )
            })
            .into_iter()
            .collect();
        if runtime == Runtime::Claude && self.env.get("CLAUDE_CODE_MAX_RETRIES").is_none() {
            set.push((
                "CLAUDE_CODE_MAX_RETRIES".into(),
                self.request.cli_max_retries.to_string(),
            ));
        }
        match (&candidate.key, &candidate.token) {
            (Some(token), Some(_)) => {
                for var in super::oauth_token_vars(runtime) {
                    set.push((var.to_string(), token.expose().to_string()));
                }
            }
            (Some(key), None) => {
                for var in api_key_vars(runtime) {
                    set.push((var.to_string(), key.expose().to_string()));
                }
            }
            (None, _) => {}
        }
        // Every credential variable out, then only the one this attempt uses back in
        // (`set` wins over `remove`): a custom key variable of one account
        // (`--api-key-env WORK_KEY_2`) must not reach an attempt on another.
        ChildSpec {
            program: self.program.clone(),
            args,
            set,
            remove: self.masks.removed_vars(),
            redact: self.masks.redactor.clone(),
        }
    }

    /// Runs one credential's attempt, retrying the same credential after a throttle or an
    /// overload (bounded, with backoff); every try is recorded in the report.
    pub(super) fn attempt(
        &mut self,
        spec: &ChildSpec,
        candidate: &Candidate,
        resumed: bool,
        renewed: Option<RenewStatus>,
    ) -> Result<child::Finished> {
        let request = self.request;
        let runtime = request.runtime;
        let signals = &self.signals;
        let mut tries = 0;
        loop {
            let wall = self.clock.now();
            let switch_ms = self.last_exit.map(|t| t.elapsed().as_secs_f64() * 1000.0);
            let f = child::run(spec, runtime, signals, self.clock)?;
            self.last_exit = Some(f.ended);
            let c = &f.classification;
            self.report.attempts.push(Attempt {
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
                carried: false,
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

//! After an attempt: record in the store what its outcome says about the account, and
//! decide whether the run ends here or fails over to the next credential.

use std::time::Duration;

use super::child::Finished;
use super::classify::{Classification, Outcome};
use super::report::{rfc3339, Unavailable};
use super::{Candidate, Failover};
use crate::error::Result;
use crate::state::accounts::{AccountKind, State};
use crate::state::Store;

/// How long a record waits for the store's lock.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Writes what the run learned about stored accounts, each change under the store's
/// lock; without a store there is nothing to write.
pub(super) struct Recorder {
    store: Option<Store>,
}

impl Recorder {
    pub fn new(store: Option<Store>) -> Recorder {
        Recorder { store }
    }

    pub fn record(&self, change: impl FnOnce(&mut State) -> Result<()>) -> Result<()> {
        if let Some(s) = &self.store {
            s.update(LOCK_WAIT, change)??;
        }
        Ok(())
    }
}

/// What the run does after an attempt.
pub(super) enum Next {
    /// The report is final (finished, interrupted, or a failure another account would not help).
    Done,
    /// Try the next credential, resuming this attempt's session there.
    FailOver {
        /// The account was lost to its login, not to quota (no API key may follow).
        lost_to_login: bool,
        classification: Classification,
    },
}

impl Failover<'_> {
    /// Records the attempt's outcome and says what comes next.
    pub(super) fn settle(&mut self, candidate: &Candidate, finished: Finished) -> Result<Next> {
        let runtime = self.request.runtime;
        let report = &mut self.report;
        let exit = finished.exit_code.unwrap_or_else(|| 128 + finished.signal.unwrap_or(0));
        report.exit_code = exit;
        if let Some(sig) = finished.interrupted_by {
            tracing::warn!("interrupted by signal {sig}; not failing over");
            report.exit_code = 128 + sig;
            return Ok(Next::Done);
        }
        let usage = finished.classification.usage.clone();
        let now = self.clock.now();
        let alias = candidate.alias.clone();
        let record_usage = |s: &mut State| -> Result<()> {
            if let Some(u) = &usage {
                s.account_mut(&alias)?.usage = Some(u.clone());
            }
            Ok(())
        };
        let lost_to_login = match &finished.classification.outcome {
            Outcome::Success => {
                if candidate.stored {
                    self.recorder.record(|s| {
                        s.record_success(&alias, now)?;
                        record_usage(s)
                    })?;
                }
                report.ok = exit == 0;
                report.finished_by = Some(alias);
                report.api_billing_used = candidate.kind == AccountKind::ApiKey;
                report.credential_kind = Some(candidate.credential_kind());
                return Ok(Next::Done);
            }
            Outcome::UsageLimit { resets_at, .. } => {
                if candidate.stored {
                    let resets = *resets_at;
                    self.recorder.record(|s| {
                        s.record_quota(&alias, resets, now).map(|_| ())?;
                        record_usage(s)
                    })?;
                }
                if candidate.kind == AccountKind::ApiKey {
                    return Ok(Next::Done);
                }
                self.unavailable.push(Unavailable {
                    account: alias,
                    reason: "usage-limit".into(),
                    until: resets_at.map(rfc3339),
                    fix: None,
                });
                false
            }
            Outcome::AuthFailure { detail } => {
                if candidate.stored {
                    let detail = self.masks.redactor.redact(detail);
                    self.recorder.record(|s| s.record_auth_failure(&alias, &detail, now))?;
                }
                if candidate.kind == AccountKind::ApiKey {
                    return Ok(Next::Done);
                }
                self.unavailable.push(Unavailable {
                    account: alias.clone(),
                    reason: "auth-failure".into(),
                    until: None,
                    fix: Some(match &candidate.token {
                        // A setup-token has no refresh token: only a new one helps.
                        Some(var) => format!(
                            "the OAuth token in {var} was refused (revoked or expired): run `claude setup-token` and store the new token there (in a workflow, the claude_code_oauth_token secret){}",
                            if candidate.stored { format!(", then moonauth accounts enable {alias}") } else { String::new() }
                        ),
                        None => crate::agents::account_login_command(runtime, &alias),
                    }),
                });
                true
            }
            Outcome::Throttle { .. } | Outcome::Overload | Outcome::Other { .. } => {
                // Not the credential's fault: another account would not help.
                return Ok(Next::Done);
            }
        };
        Ok(Next::FailOver {
            lost_to_login,
            classification: finished.classification,
        })
    }
}

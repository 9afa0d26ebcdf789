//! After an attempt: record in the store what its outcome says about the account, and
//! decide whether the run ends here or fails over to the next credential.

use std::time::Duration;

use super::child::Finished;
use super::classify::{Classification, Outcome};
use super::report::{rfc3339, Unavailable, UsageCapture};
use super::windows::{self, Captured};
use super::{Candidate, Failover};
use crate::error::Result;
use crate::state::accounts::{AccountKind, State};
use crate::state::usage::{Capture, CaptureError, Snapshot};
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

/// What an attempt changes in its account's usage history.
#[derive(Debug, Clone)]
enum WindowChange {
    Snapshot(Snapshot),
    Error(CaptureError),
}

impl Failover<'_> {
    /// Reads the windows the attempt reported, says so in the report, and returns the
    /// change to the account's history: a snapshot, a failed capture (only when the API
    /// answered), or none (the output carried no windows: the stored ones stay).
    fn capture_windows(
        &mut self,
        candidate: &Candidate,
        classification: &Classification,
        now: std::time::SystemTime,
    ) -> Option<WindowChange> {
        let dir = candidate.dir.as_deref()?;
        let captured = windows::capture(self.request.runtime, classification, dir);
        let source = Capture {
            run_id: self.run_id.clone(),
            at: now,
            outcome: classification.outcome.kind().to_string(),
        };
        let answered = !matches!(classification.outcome, Outcome::Other { .. });
        let (line, change) = match captured {
            Captured::Windows(windows) => (
                UsageCapture {
                    account: candidate.alias.clone(),
                    status: "captured",
                    windows: windows.clone(),
                    detail: None,
                },
                Some(WindowChange::Snapshot(Snapshot { source, windows })),
            ),
            Captured::Nothing(why) => (
                UsageCapture {
                    account: candidate.alias.clone(),
                    status: "none",
                    windows: Vec::new(),
                    detail: Some(why),
                },
                None,
            ),
            Captured::Failed(why) => (
                UsageCapture {
                    account: candidate.alias.clone(),
                    status: "error",
                    windows: Vec::new(),
                    detail: Some(why.clone()),
                },
                answered.then_some(WindowChange::Error(CaptureError { source, reason: why })),
            ),
        };
        self.report.usage_windows.push(line);
        change.filter(|_| candidate.stored)
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
        let captured = if finished.interrupted_by.is_none() {
            self.capture_windows(candidate, &finished.classification, self.clock.now())
        } else {
            None
        };
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
            if let Some(change) = &captured {
                let history = s.usage_windows.entry(alias.clone()).or_default();
                match change.clone() {
                    WindowChange::Snapshot(snap) => history.record(snap),
                    WindowChange::Error(e) => history.record_error(e),
                }
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
                    self.recorder.record(|s| {
                        s.record_auth_failure(&alias, &detail, now)?;
                        record_usage(s)
                    })?;
                }
                if candidate.kind == AccountKind::ApiKey {
                    return Ok(Next::Done);
                }
                self.unavailable.push(Unavailable {
                    account: alias.clone(),
                    reason: "auth-failure".into(),
                    until: None,
                    fix: Some(crate::agents::account_login_command(runtime, &alias)),
                });
                true
            }
            Outcome::Throttle { .. } | Outcome::Overload | Outcome::Other { .. } => {
                // Not the credential's fault: another account would not help. Windows
                // the CLI did report are kept (the API answered); nothing else changes.
                if candidate.stored && captured.is_some() {
                    self.recorder.record(|s| record_usage(s))?;
                }
                return Ok(Next::Done);
            }
        };
        Ok(Next::FailOver {
            lost_to_login,
            classification: finished.classification,
        })
    }
}

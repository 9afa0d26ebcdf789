//! Before an OAuth attempt starts: refresh the login when it is inside the lead, under
//! the shared lease, so the CLI never refreshes a login other workers use
//! (docs/shared-logins.md). A login that cannot be used sits this run out.

use std::path::Path;

use super::report::{rfc3339, Attempt, Unavailable};
use super::{Candidate, Failover};
use crate::error::Result;
use crate::renew::{self, RenewStatus};
use crate::state::accounts::AccountKind;

/// Whether the candidate starts after its renewal.
pub(super) enum Renewal {
    /// Start it; what the renewal did (`None` for an API key).
    Start(Option<RenewStatus>),
    /// Its login is not usable: recorded and listed; the next credential goes.
    SitOut,
}

impl Failover<'_> {
    /// Renews an OAuth candidate's login in `dir` before its start.
    pub(super) fn renew_before_start(&mut self, candidate: &Candidate, dir: &Path) -> Result<Renewal> {
        // A key or an OAuth token has no login file to refresh.
        if candidate.kind != AccountKind::Oauth || candidate.token.is_some() {
            return Ok(Renewal::Start(None));
        }
        let runtime = self.request.runtime;
        let renewal = renew::renew_dir(runtime, dir, &self.renew_options, self.clock.now());
        let redactor = &self.masks.redactor;
        match renewal.status {
            // A pending write leaves a spent refresh token in the file: the CLI must not
            // refresh it, so this account sits out until a renewal applies the answer.
            RenewStatus::Dead | RenewStatus::Blocked | RenewStatus::Missing | RenewStatus::PendingWrite => {
                let now = self.clock.now();
                let alias = candidate.alias.clone();
                let renewal_detail = redactor.redact(&renewal.detail);
                if candidate.stored && renewal.status != RenewStatus::PendingWrite {
                    let detail = renewal_detail.clone();
                    let dead = renewal.status != RenewStatus::Missing;
                    self.recorder
                        .record(|s| s.record_refresh_failure(&alias, &detail, dead, now).map(|_| ()))?;
                }
                self.report.attempts.push(Attempt {
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
                    carried: false,
                });
                self.unavailable.push(Unavailable {
                    account: alias.clone(),
                    reason: "auth-failure".into(),
                    until: None,
                    fix: Some(match (renewal.status, &renewal.fix) {
                        (RenewStatus::PendingWrite, Some(fix)) => fix.clone(),
                        _ => crate::agents::account_login_command(runtime, &alias),
                    }),
                });
                return Ok(Renewal::SitOut);
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
        Ok(Renewal::Start(Some(renewal.status)))
    }
}

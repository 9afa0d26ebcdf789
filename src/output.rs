//! Rendering reports: human text or JSON, from the same `Serialize` structs. Writes
//! go to stdout; a closed pipe (`moonauth … | head -1`) ends quietly.

use std::io::{self, Write};

use serde::Serialize;

use crate::checks::preflight::{CheckStatus, PreflightReport};
use crate::credentials::LoginReport;

/// A report with a human rendering; its JSON rendering is its `Serialize` form.
pub trait Render: Serialize {
    fn human(&self, w: &mut dyn Write) -> io::Result<()>;
}

/// Writes `report` to stdout as text or JSON. A broken pipe is not an error.
pub fn emit<R: Render>(report: &R, json: bool) -> io::Result<()> {
    let stdout = io::stdout();
    let mut w = stdout.lock();
    let result = if json {
        serde_json::to_writer_pretty(&mut w, report)
            .map_err(io::Error::from)
            .and_then(|_| writeln!(w))
    } else {
        report.human(&mut w)
    };
    match result.and_then(|_| w.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn status_word(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Ok => "ok",
        CheckStatus::Warn => "warn",
        CheckStatus::Fail => "FAIL",
    }
}

impl Render for PreflightReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        writeln!(w, "moonauth preflight · mode {} ({})", self.mode, self.mode_source)?;
        for c in &self.checks {
            let rt = c.runtime.map(|r| r.as_str()).unwrap_or("-");
            writeln!(w, "{:<5} {:<7} {:<16} {}", status_word(c.status), rt, c.check, c.detail)?;
            if let Some(fix) = &c.fix {
                writeln!(w, "{:<30}fix: {fix}", "")?;
            }
        }
        let failed = self.checks.iter().filter(|c| c.status == CheckStatus::Fail).count();
        let warned = self.checks.iter().filter(|c| c.status == CheckStatus::Warn).count();
        let total = self.checks.len();
        let waited = if self.rounds > 1 {
            format!(" after {} rounds", self.rounds)
        } else {
            String::new()
        };
        if failed == 0 {
            writeln!(w, "ready: {total} checks passed{waited}, {warned} warning(s)")
        } else {
            let exit = self.exit();
            writeln!(
                w,
                "not ready: {failed} of {total} checks failed{waited} (exit {}: {})",
                exit.code(),
                exit.meaning()
            )
        }
    }
}

/// A login report for `moonauth inspect`.
#[derive(Debug, Serialize)]
pub struct InspectReport {
    pub schema: &'static str,
    #[serde(flatten)]
    pub login: LoginReport,
    /// Credential variables set in the environment that the CLI would use instead (names only);
    /// any of them makes the runtime usable even when the file login is not.
    pub env_credentials: Vec<&'static str>,
}

impl Render for InspectReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        let l = &self.login;
        let i = &l.inspection;
        writeln!(w, "{} login in {}", l.runtime, l.dir.display())?;
        writeln!(w, "  file:       {}", l.file.display())?;
        let usable = match (l.usable, i.class.usable()) {
            (true, true) => "usable".to_string(),
            (true, false) => format!("usable through {} in the environment", self.env_credentials.join(", ")),
            (false, _) => "not usable".to_string(),
        };
        writeln!(w, "  verdict:    {} ({usable})", i.class.as_str())?;
        writeln!(w, "  detail:     {}", i.detail)?;
        if let Some(plan) = &i.plan {
            match &i.rate_limit_tier {
                Some(tier) => writeln!(w, "  plan:       {plan} ({tier})")?,
                None => writeln!(w, "  plan:       {plan}")?,
            }
        }
        if let Some(email) = &i.email {
            writeln!(w, "  account:    {email}")?;
        }
        if let Some(id) = &i.account_id {
            writeln!(w, "  account id: {id}")?;
        }
        if let Some(t) = i.expires_at {
            writeln!(w, "  expires:    {}", crate::credentials::rfc3339(t))?;
        }
        if let Some(t) = i.last_refresh {
            writeln!(w, "  refreshed:  {}", crate::credentials::rfc3339(t))?;
        }
        if i.class.is_oauth() {
            writeln!(
                w,
                "  refresh:    {}",
                if i.refreshable {
                    "refresh token present"
                } else {
                    "no refresh token"
                }
            )?;
        }
        if !self.env_credentials.is_empty() {
            writeln!(
                w,
                "  env:        {} set; the CLI uses it instead of this login",
                self.env_credentials.join(", ")
            )?;
        }
        Ok(())
    }
}

/// The resolved task runtime, for `moonauth runtime resolve` without a payload.
#[derive(Debug, Serialize)]
pub struct ResolveReport {
    pub runtime: crate::agents::Runtime,
    pub source: crate::source::Source,
}

impl Render for ResolveReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        writeln!(w, "{}", self.runtime)?;
        Ok(())
    }
}

impl Render for crate::docker::status::StatusReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        for v in &self.volumes {
            writeln!(w, "{} ({}, account {})", v.volume, v.runtime, v.account)?;
            match (&v.login, v.exists) {
                (_, false) => writeln!(w, "  x volume does not exist")?,
                (None, true) => writeln!(w, "  x login not read")?,
                (Some(l), true) => {
                    let i = &l.inspection;
                    let mark = if l.usable { "ok" } else { "x" };
                    let state = if l.usable { "Logged in" } else { "Not usable" };
                    writeln!(w, "  {mark} {state}: {} - {}", i.class.as_str(), i.detail)?;
                    if let Some(plan) = &i.plan {
                        writeln!(w, "  - Plan: {plan}")?;
                    }
                    if let Some(email) = &i.email {
                        writeln!(w, "  - Account: {email}")?;
                    }
                    if let Some(t) = i.expires_at {
                        writeln!(w, "  - Token expires: {}", crate::credentials::rfc3339(t))?;
                    }
                    if let Some(t) = i.last_refresh {
                        writeln!(w, "  - Last refresh: {}", crate::credentials::rfc3339(t))?;
                    }
                    writeln!(w, "  - Mounted at: {} in workers", l.dir.display())?;
                    if !v.managed {
                        writeln!(w, "  - Not labelled by moonauth (created elsewhere)")?;
                    }
                }
            }
            if let Some(fix) = &v.fix {
                writeln!(w, "  - Fix: {fix}")?;
            }
        }
        Ok(())
    }
}

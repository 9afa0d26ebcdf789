//! Rendering reports: human text or JSON, from the same `Serialize` structs. Writes
//! go to stdout; a closed pipe (`moonauth … | head -1`) ends quietly.

use std::io::{self, Write};

use serde::Serialize;

use crate::checks;
use crate::checks::preflight::{CheckStatus, PreflightReport};
use crate::credentials::{LoginClass, LoginReport};
use crate::docker::status::VolumeList;
use crate::docker::volumes::{EnsureReport, Ensured, RemoveReport, Removed};
use crate::init::InitReport;
use crate::renew::{RenewOutcome, RenewReport};
use crate::rotation::report::{ForceAction, ForceReport, LogReport, PickReport, SettingsReport};
use crate::state::accounts::Availability;
use crate::state::report::{rfc3339_seconds, AccountsReport, Action, ChangeReport};

/// A report with a human rendering; its JSON rendering is its `Serialize` form.
pub trait Render: Serialize {
    fn human(&self, w: &mut dyn Write) -> io::Result<()>;
}

/// Writes `value` to stdout as one line of JSON (`--follow --json`). A broken pipe is not an error.
pub fn emit_line<T: Serialize>(value: &T) -> io::Result<()> {
    let stdout = io::stdout();
    let mut w = stdout.lock();
    let result = serde_json::to_writer(&mut w, value)
        .map_err(io::Error::from)
        .and_then(|_| writeln!(w))
        .and_then(|_| w.flush());
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
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

/// The mark of a check, as `gh auth status` shows it: ✓ passed, ! passed with a
/// warning, ✗ failed. The mark carries the verdict, so the text reads the same with or
/// without colour.
pub fn mark(status: CheckStatus) -> char {
    match status {
        CheckStatus::Ok => '✓',
        CheckStatus::Warn => '!',
        CheckStatus::Fail => '✗',
    }
}

/// One check as a report line, `{indent}✓ text`, and for a warning or a failure its fix
/// on the next line, under the text. `doctor`, `preflight` and `status` all write their
/// checks through this, so the three read alike.
fn check_line(
    w: &mut dyn Write,
    indent: usize,
    status: CheckStatus,
    text: std::fmt::Arguments<'_>,
    fix: Option<&str>,
) -> io::Result<()> {
    writeln!(w, "{:indent$}{} {text}", "", mark(status))?;
    match fix.filter(|_| status != CheckStatus::Ok) {
        Some(fix) => writeln!(w, "{:width$}fix: {fix}", "", width = indent + 4),
        None => Ok(()),
    }
}

impl Render for PreflightReport {
    /// One block per runtime, `gh auth status` style: who the login belongs to and where
    /// its token lives, then each check with its mark and, when it did not pass, its fix.
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        writeln!(w, "moonauth preflight · mode {} ({})", self.mode, self.mode_source)?;
        let mut block = None;
        for c in &self.checks {
            if block != Some(c.runtime) {
                block = Some(c.runtime);
                preflight_block_header(w, c.runtime, &self.checks)?;
            }
            check_line(
                w,
                2,
                c.status,
                format_args!("{}: {}", c.check, c.detail),
                c.fix.as_deref(),
            )?;
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
            writeln!(
                w,
                "ready: {total} checks passed{waited}, {}",
                plural(warned, "warning", "warnings")
            )
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

impl Render for crate::checks::ci::CiReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        writeln!(
            w,
            "moonauth ci check · event {} · repository {} · runner {} ({}, {})",
            or_dash(&self.event),
            or_dash(&self.repository),
            or_dash(&self.runner.name),
            or_dash(&self.runner.os),
            or_dash(&self.runner.environment)
        )?;
        for c in &self.checks {
            let text = format_args!("{}: {}", c.check, c.detail);
            check_line(w, 2, c.status, text, c.fix.as_deref())?;
        }
        if let Some(claims) = &self.oidc.claims {
            writeln!(w, "OIDC claims (audience {}):", self.oidc.audience)?;
            for (k, v) in claims {
                let v = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                writeln!(w, "  {k:<18} {v}")?;
            }
        }
        if !self.credentials.moonauth_run_order.is_empty() {
            writeln!(
                w,
                "moonauth run tries: {}",
                self.credentials.moonauth_run_order.join(", then ")
            )?;
        }
        let exit = self.exit();
        if self.ok {
            writeln!(w, "ok")
        } else {
            writeln!(w, "not ready (exit {}: {})", exit.code(), exit.meaning())
        }
    }
}

/// The first line of a runtime's block in the preflight report: the runtime, who its
/// login belongs to, and the file its token lives in (from the `login` check).
fn preflight_block_header(
    w: &mut dyn Write,
    runtime: Option<crate::agents::Runtime>,
    checks: &[checks::Check],
) -> io::Result<()> {
    let Some(runtime) = runtime else {
        return writeln!(w, "worker");
    };
    let login = checks
        .iter()
        .filter(|c| c.runtime == Some(runtime))
        .find_map(|c| c.login.as_ref());
    let Some(login) = login else {
        return writeln!(w, "{runtime}");
    };
    let file = login.file.display();
    match login.inspection.class {
        LoginClass::Missing => return writeln!(w, "{runtime}: no login yet, expected in {file}"),
        LoginClass::ApiKey => return writeln!(w, "{runtime}: an API key, in {file}"),
        _ => {}
    }
    match identity(&login.inspection) {
        Some(who) => writeln!(w, "{runtime}: account {who}, token in {file}"),
        None => writeln!(w, "{runtime}: account not recorded, token in {file}"),
    }
}

/// `1 warning`, `2 warnings`, `0 warnings`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A login report for `moonauth inspect`.
#[derive(Debug, Serialize)]
pub struct InspectReport {
    pub schema: &'static str,
    /// Whether the command exits 0 (`exit_code` is the exit).
    pub ok: bool,
    pub exit_code: u8,
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
        if let Some(who) = identity(i) {
            writeln!(w, "  account:    {who}")?;
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

/// Who a login belongs to: the e-mail, and the organization when recorded.
fn identity(i: &crate::credentials::Inspection) -> Option<String> {
    match (&i.email, &i.organization) {
        (Some(e), Some(o)) => Some(format!("{e} ({o})")),
        (Some(e), None) => Some(e.clone()),
        (None, Some(o)) => Some(format!("organization {o}")),
        (None, None) => None,
    }
}

/// The resolved task runtime, for `moonauth runtime resolve` without a payload.
#[derive(Debug, Serialize)]
pub struct ResolveReport {
    pub schema: &'static str,
    pub ok: bool,
    pub exit_code: u8,
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
    /// One block per volume, `gh auth status` style: whether its login works (with the
    /// fix when it does not), who it belongs to, and where the token lives.
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        if let Some(c) = &self.fleet {
            let mark = match c.status {
                CheckStatus::Ok => "ok",
                CheckStatus::Warn => "!",
                CheckStatus::Fail => "x",
            };
            writeln!(w, "fleet state\n  {mark} {}", c.detail)?;
            if let Some(fix) = &c.fix {
                writeln!(w, "  - Fix: {fix}")?;
            }
        }
        for v in &self.volumes {
            writeln!(w, "{} ({}, account {})", v.volume, v.runtime, v.account)?;
            let check = v.check();
            let fix = check.fix.as_deref();
            let Some(l) = v.login.as_ref().filter(|_| v.exists) else {
                check_line(w, 2, check.status, format_args!("{}", check.detail), fix)?;
                continue;
            };
            let i = &l.inspection;
            let state = if l.usable { "Logged in" } else { "Not usable" };
            check_line(w, 2, check.status, format_args!("{state}: {}", check.detail), fix)?;
            if let Some(who) = identity(i) {
                writeln!(w, "  - Account: {who}")?;
            }
            if let Some(plan) = &i.plan {
                writeln!(w, "  - Plan: {plan}")?;
            }
            writeln!(w, "  - Token in: {} in workers (volume {})", l.file.display(), v.volume)?;
            if let Some(t) = i.expires_at {
                writeln!(w, "  - Token expires: {}", crate::credentials::rfc3339(t))?;
            }
            if let Some(t) = i.last_refresh {
                writeln!(w, "  - Last refresh: {}", crate::credentials::rfc3339(t))?;
            }
            if !v.managed {
                writeln!(w, "  - Not labelled by moonauth (created elsewhere)")?;
            }
        }
        Ok(())
    }
}

impl Render for ChangeReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        let a = &self.account.account;
        let action = match self.action {
            Action::Added => "added",
            Action::Enabled => "enabled",
            Action::Disabled => "disabled",
            Action::Removed => "removed",
        };
        write!(
            w,
            "{action} {} account {} ({}, {}, priority {})",
            a.runtime,
            a.alias,
            a.kind.as_str(),
            self.account.login,
            a.priority
        )?;
        match self.action {
            Action::Removed => writeln!(w, "; the login itself is untouched"),
            _ => writeln!(w, ": {}", self.account.status),
        }
    }
}

impl Render for AccountsReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        // Set-aside records first: a person looking for an account should see why it is missing.
        for aside in &self.set_aside {
            writeln!(w, "warning: {aside}")?;
        }
        if self.accounts.is_empty() {
            return writeln!(
                w,
                "no accounts in {}; add one with `moonauth accounts add ALIAS --runtime claude --dir DIR`",
                self.state_dir.display()
            );
        }
        let header = [
            "ALIAS",
            "RUNTIME",
            "KIND",
            "PRIO",
            "ENABLED",
            "STATUS",
            "COOLDOWN UNTIL",
            "LAST FAILURE",
            "LAST USED",
            "USAGE",
            "LOGIN",
        ];
        let rows: Vec<Vec<String>> = self
            .accounts
            .iter()
            .map(|row| {
                let a = &row.account;
                let login = match &a.volume {
                    Some(v) => format!("{} (volume {v})", row.login),
                    None => row.login.clone(),
                };
                vec![
                    a.alias.clone(),
                    a.runtime.to_string(),
                    a.kind.as_str().to_string(),
                    a.priority.to_string(),
                    if a.enabled { "yes" } else { "no" }.to_string(),
                    row.status.to_string(),
                    match row.availability() {
                        Availability::CoolingDown(until) => rfc3339_seconds(until),
                        _ => "-".into(),
                    },
                    a.last_failure.as_ref().map_or("-".into(), |f| f.reason.clone()),
                    a.last_used.map_or("never".into(), rfc3339_seconds),
                    row.usage_windows.as_ref().map_or("unknown".into(), |u| u.summary()),
                    login,
                ]
            })
            .collect();
        table(w, &header, &rows)?;
        if let Some(f) = &self.force {
            writeln!(
                w,
                "force mode: {} is picked whenever eligible until {} (by {}; then {} again)",
                f.alias,
                rfc3339_seconds(f.until),
                f.forced_by,
                f.replaced
            )?;
        }
        for (row, check) in self.accounts.iter().map(|r| (r, checks::account(r))) {
            if let Some(fix) = &check.fix {
                writeln!(w, "{}: {}; fix: {fix}", row.account.alias, check.detail)?;
            }
        }
        Ok(())
    }
}

impl Render for PickReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        if let Some(view) = &self.picked {
            // One line, two fields, for `read alias login < <(moonauth accounts pick claude)`.
            return writeln!(w, "{} {}", view.row.account.alias, view.row.login);
        }
        if self.accounts.is_empty() {
            return writeln!(
                w,
                "no {rt} accounts; add one with `moonauth accounts add ALIAS --runtime {rt} --dir DIR`",
                rt = self.runtime
            );
        }
        writeln!(w, "no {} account can be used now:", self.runtime)?;
        let width = self
            .accounts
            .iter()
            .map(|v| v.row.account.alias.len())
            .max()
            .unwrap_or(0);
        for view in &self.accounts {
            let check = checks::account(&view.row);
            write!(w, "  {:<width$}  {}", view.row.account.alias, view.why)?;
            match &check.fix {
                Some(fix) => writeln!(w, "; fix: {fix}")?,
                None => writeln!(w)?,
            }
        }
        Ok(())
    }
}

impl Render for ForceReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        match (&self.action, &self.force) {
            (ForceAction::Forced, Some(f)) => writeln!(
                w,
                "forced {} until {} (by {}); {} is in effect again after that",
                f.alias, f.until, f.forced_by, f.replaced
            ),
            (ForceAction::AlreadyForced, Some(f)) => writeln!(
                w,
                "{} is already forced until {} (forcing again does not extend it)",
                f.alias, f.until
            ),
            (ForceAction::Cleared, _) => writeln!(w, "force mode cleared; strategy {} is in effect", self.strategy),
            _ => writeln!(w, "force mode is off; strategy {} is in effect", self.strategy),
        }
    }
}

impl Render for SettingsReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        let rows: Vec<Vec<String>> = self
            .settings
            .iter()
            .map(|s| {
                let value = match &s.value {
                    serde_json::Value::String(v) => v.clone(),
                    other => other.to_string(),
                };
                vec![s.key.clone(), value, s.source.clone()]
            })
            .collect();
        table(w, &["KEY", "VALUE", "SOURCE"], &rows)?;
        if let Some(f) = &self.force {
            writeln!(
                w,
                "force mode: {} until {} (by {}) replaces the strategy until then",
                f.alias, f.until, f.forced_by
            )?;
        }
        Ok(())
    }
}

impl Render for LogReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        for d in &self.decisions {
            let chosen = d.chosen.as_deref().unwrap_or("none");
            let run = d.run_id.as_deref().map(|r| format!(" run {r}")).unwrap_or_default();
            writeln!(
                w,
                "{} {} {}{}: {} chose {chosen}",
                d.time, d.by, d.runtime, run, d.strategy
            )?;
            if let Some(force) = d.force.as_ref().and_then(|f| f.get("alias")).and_then(|a| a.as_str()) {
                writeln!(w, "  force mode on {force}")?;
            }
            if let Some(f) = &d.fallback {
                writeln!(w, "  fallback: {f}")?;
            }
            for c in &d.candidates {
                let alias = c.get("alias").and_then(|v| v.as_str()).unwrap_or("?");
                let reason = c.get("reason").and_then(|v| v.as_str()).unwrap_or("");
                writeln!(w, "  {alias}: {reason}")?;
            }
        }
        Ok(())
    }
}

/// Writes left-aligned columns as wide as their widest cell.
fn table(w: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |w: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        let text: Vec<String> = cells.zip(&widths).map(|(c, width)| format!("{c:<width$}")).collect();
        writeln!(w, "{}", text.join("  ").trim_end())
    };
    line(w, &mut header.iter().copied())?;
    for row in rows {
        line(w, &mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

impl Render for RenewReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        for o in &self.logins {
            renew_line(w, o)?;
        }
        Ok(())
    }
}

/// One login of a renew report, as a line (and its fix); `renew --watch` prints one per event.
pub fn renew_line(w: &mut dyn Write, o: &RenewOutcome) -> io::Result<()> {
    writeln!(
        w,
        "{:<7} {:<20} {}  {}",
        o.runtime.as_str(),
        o.status.as_str(),
        o.dir.display(),
        o.detail
    )?;
    if let Some(fix) = &o.fix {
        writeln!(w, "{:<29}fix: {fix}", "")?;
    }
    Ok(())
}

impl Render for InitReport {
    fn human(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        for d in &self.dirs {
            let what = d.runtime.map(|r| r.as_str()).unwrap_or("store");
            if d.changes.is_empty() {
                writeln!(
                    w,
                    "{:<7} {}: ready for {}:{} (no changes)",
                    what,
                    d.dir.display(),
                    self.uid,
                    self.gid
                )?;
            } else {
                let verb = if self.dry_run { "would make" } else { "made" };
                writeln!(
                    w,
                    "{:<7} {}: {verb} {}",
                    what,
                    d.dir.display(),
                    plural(d.changes.len(), "change", "changes")
                )?;
                for c in &d.changes {
                    writeln!(w, "          {}: {}", c.path.display(), c.what)?;
                }
            }
        }
        Ok(())
    }
}

impl Render for EnsureReport {
    fn human(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        let rows: Vec<Vec<String>> = self
            .volumes
            .iter()
            .map(|v| {
                let what = match v.outcome {
                    Ensured::Created => "created",
                    Ensured::Existed => "exists",
                    Ensured::ExistedUnlabelled => "exists (created outside moonauth; left as it is)",
                };
                vec![
                    v.spec.name.clone(),
                    v.spec.runtime.to_string(),
                    v.spec.account.clone(),
                    what.to_string(),
                ]
            })
            .collect();
        table(w, &["VOLUME", "RUNTIME", "ACCOUNT", "OUTCOME"], &rows)
    }
}

impl Render for RemoveReport {
    fn human(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        for v in &self.volumes {
            match v.outcome {
                Removed::Removed => writeln!(w, "removed {}", v.volume)?,
                Removed::Absent => writeln!(w, "{} does not exist", v.volume)?,
            }
        }
        Ok(())
    }
}

impl Render for VolumeList {
    fn human(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        let rows: Vec<Vec<String>> = self
            .volumes
            .iter()
            .map(|v| {
                let login = match (&v.login, v.exists) {
                    (_, false) => "missing (volume does not exist)".to_string(),
                    (Some(l), true) => {
                        let class = l.inspection.class.as_str();
                        match identity(&l.inspection) {
                            Some(who) => format!("{class} {who}"),
                            None => class.to_string(),
                        }
                    }
                    (None, true) => "-".to_string(),
                };
                let managed = if !v.exists {
                    "-"
                } else if v.managed {
                    "yes"
                } else {
                    "no"
                };
                vec![
                    v.volume.clone(),
                    v.runtime.to_string(),
                    v.account.clone(),
                    managed.to_string(),
                    login,
                ]
            })
            .collect();
        table(w, &["VOLUME", "RUNTIME", "ACCOUNT", "MANAGED", "LOGIN"], &rows)
    }
}

impl Render for crate::docker::doctor::DoctorReport {
    /// One line per check, `gh auth status` style: ✓ ok, ! warning, ✗ failure, each
    /// warning and failure followed by its fix.
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        writeln!(w, "moonauth doctor")?;
        for c in &self.checks {
            let fix = c.fix.as_deref();
            match c.runtime {
                Some(rt) => check_line(
                    w,
                    2,
                    c.status,
                    format_args!("{} {}: {}", c.check, rt.as_str(), c.detail),
                    fix,
                )?,
                None => check_line(w, 2, c.status, format_args!("{}: {}", c.check, c.detail), fix)?,
            }
        }
        if !self.network {
            writeln!(
                w,
                "  - token-endpoint: not checked (off by default); --network sends a HEAD to {} (nothing secret)",
                self.token_endpoints.join(", ")
            )?;
        }
        let failed = self.checks.iter().filter(|c| c.status == CheckStatus::Fail).count();
        let warned = self.checks.iter().filter(|c| c.status == CheckStatus::Warn).count();
        let total = self.checks.len();
        if failed == 0 {
            writeln!(w, "ok: {total} checks, {}", plural(warned, "warning", "warnings"))
        } else {
            let exit = self.exit();
            writeln!(
                w,
                "{failed} of {total} checks failed, {} (exit {}: {})",
                plural(warned, "warning", "warnings"),
                exit.code(),
                exit.meaning()
            )
        }
    }
}

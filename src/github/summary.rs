//! The job summary table of a `moonauth run` (appended to `$GITHUB_STEP_SUMMARY`) and
//! the annotation that says who paid: a notice on the subscription, a warning on API
//! billing or when the run did not finish.

use std::io::Write;
use std::path::Path;

use crate::failover::RunReport;

/// The Markdown table of the run's attempts and who finished it.
pub fn table(report: &RunReport) -> String {
    let mut f = String::new();
    f.push_str(&format!("### moonauth run ({})\n\n", report.runtime));
    f.push_str("| # | account | kind | outcome | reason | resets at | session |\n");
    f.push_str("|---|---|---|---|---|---|---|\n");
    for (i, a) in report.attempts.iter().enumerate() {
        f.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            i + 1,
            if a.carried {
                format!("{} (earlier job)", a.account)
            } else {
                a.account.clone()
            },
            a.kind.as_str(),
            a.outcome,
            a.reason.as_deref().unwrap_or("").replace('|', "\\|"),
            a.resets_at.as_deref().unwrap_or(""),
            a.session_id.as_deref().unwrap_or("")
        ));
    }
    let paid = match (&report.finished_by, report.api_billing_used) {
        (Some(a), true) => format!("finished on **{a}** (API key billing)"),
        (Some(a), false) => format!("finished on **{a}** (subscription)"),
        (None, _) => "did not finish".into(),
    };
    f.push_str(&format!("\n{paid}\n\n"));
    if let Some(why) = &report.api_key_not_used {
        f.push_str(&format!("API key not used: {}\n\n", why.message));
    }
    f
}

/// The annotation (a workflow command) for a finished run.
pub fn annotation(report: &RunReport) -> String {
    match (&report.finished_by, report.api_billing_used, report.attempts.len()) {
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
        (None, _, _) if report.exhausted => format!(
            "::error title=moonauth::{} run stopped: every credential is out (exit {}){}",
            report.runtime,
            report.exit_code,
            report
                .api_key_not_used
                .as_ref()
                .map(|w| format!("; API key not used: {}", w.message))
                .unwrap_or_default()
        ),
        (None, _, _) => format!(
            "::warning title=moonauth::{} run did not finish (exit {})",
            report.runtime, report.exit_code
        ),
    }
}

/// Appends the table to the summary file (when the runner gave one) and prints the
/// annotation on stdout.
pub fn write(report: &RunReport, summary_file: Option<&Path>) -> std::io::Result<()> {
    if let Some(path) = summary_file {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        f.write_all(table(report).as_bytes())?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", annotation(report))
}

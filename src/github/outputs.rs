//! The step outputs of a `moonauth run` (`$GITHUB_OUTPUT`): who finished, on what kind of
//! credential, whether API billing was used and why, the session, and whether every
//! credential was out and until when. Never a credential: a masked value cannot be an
//! output anyway.

use std::io::Write;
use std::path::Path;

use crate::failover::RunReport;

/// The outputs, in the order they are written (docs/github-actions.md).
pub fn of_report(report: &RunReport) -> Vec<(&'static str, String)> {
    let session = report
        .attempts
        .iter()
        .rev()
        .find_map(|a| a.session_id.clone())
        .unwrap_or_default();
    // The earliest time a credential that was out comes back.
    let reset_at = report
        .unavailable
        .iter()
        .filter_map(|u| u.until.clone())
        .chain(report.attempts.iter().filter_map(|a| a.resets_at.clone()))
        .min()
        .unwrap_or_default();
    let fallback_reason = match (&report.fallback_reason, &report.api_key_not_used) {
        (Some(why), _) => why.clone(),
        (None, Some(not_used)) => format!("not-used: {}", not_used.code),
        (None, None) => String::new(),
    };
    vec![
        ("finished_by", report.finished_by.clone().unwrap_or_default()),
        (
            "credential_kind",
            report.credential_kind.map(|k| k.to_string()).unwrap_or_default(),
        ),
        ("api_billing_used", report.api_billing_used.to_string()),
        ("fallback_reason", fallback_reason),
        ("session_id", session),
        ("exhausted", report.exhausted.to_string()),
        ("reset_at", if report.exhausted { reset_at } else { String::new() }),
        ("exit_code", report.exit_code.to_string()),
    ]
}

/// `outputs` in the `GITHUB_OUTPUT` file format: `name=value`, or for a value with a line
/// break `name<<DELIMITER` … `DELIMITER` with a delimiter the value does not contain.
pub fn format(outputs: &[(&str, String)]) -> String {
    let mut text = String::new();
    for (name, value) in outputs {
        if value.contains('\n') || value.contains('\r') {
            let mut delimiter = format!("MOONAUTH_EOF_{}", fastrand::u64(..));
            while value.contains(&delimiter) {
                delimiter = format!("MOONAUTH_EOF_{}", fastrand::u64(..));
            }
            text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
        } else {
            text.push_str(&format!("{name}={value}\n"));
        }
    }
    text
}

/// Appends the run's outputs to the step's output file.
pub fn write(report: &RunReport, output_file: &Path) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(output_file)?;
    f.write_all(format(&of_report(report)).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiline_values_get_a_delimiter_they_do_not_contain() {
        let text = format(&[("a", "one".into()), ("b", "x\ny".into())]);
        assert!(text.starts_with("a=one\nb<<MOONAUTH_EOF_"), "{text}");
        let delimiter = text.lines().nth(1).unwrap().trim_start_matches("b<<");
        assert!(text.ends_with(&format!("\nx\ny\n{delimiter}\n")), "{text}");
    }
}

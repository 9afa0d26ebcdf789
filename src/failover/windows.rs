//! Usage windows from what the CLI already wrote during the attempt — never a probe
//! request. Claude Code: the `unifiedWindows` of its last `rate_limit_event` (stream-json
//! output; the classifier keeps the event). Codex: the `rate_limits` of the last
//! `token_count` event in the session's rollout file (`$CODEX_HOME/sessions/…`), read
//! link-safe and bounded.

use std::path::Path;
use std::time::SystemTime;

use serde_json::Value;

use crate::agents::Runtime;
use crate::state::usage::Window;

use super::classify::Classification;

/// The most of a rollout file read to find its last rate-limit snapshot.
const ROLLOUT_MAX_BYTES: u64 = 32 * 1024 * 1024;

/// What an attempt's output said about the account's usage windows.
#[derive(Debug, Clone, PartialEq)]
pub enum Captured {
    /// The windows the CLI reported.
    Windows(Vec<Window>),
    /// The output carried none (plain text output, or the API never answered); why.
    Nothing(String),
    /// They should be there but could not be read; why (never a value from the file).
    Failed(String),
}

/// Reads the windows an attempt of `runtime` in `dir` reported.
pub fn capture(runtime: Runtime, classification: &Classification, dir: &Path) -> Captured {
    match runtime {
        Runtime::Claude => match &classification.usage {
            Some(info) => match claude_windows(info) {
                Some(w) if !w.is_empty() => Captured::Windows(w),
                _ => Captured::Nothing("Claude's rate_limit_event carried no unifiedWindows".into()),
            },
            None => Captured::Nothing(
                "the CLI's output carried no usage windows (they come with --output-format stream-json --verbose)"
                    .into(),
            ),
        },
        Runtime::Codex => {
            let Some(thread) = classification.session_id.as_deref() else {
                return Captured::Nothing("codex printed no thread id: no rollout to read windows from".into());
            };
            let Some(path) = super::resume::find_session(Runtime::Codex, dir, thread) else {
                return Captured::Nothing("codex wrote no rollout file for the thread".into());
            };
            match crate::fsx::read_file(&path, ROLLOUT_MAX_BYTES) {
                Ok(Some(bytes)) => match codex_windows(&bytes) {
                    Some(w) if !w.is_empty() => Captured::Windows(w),
                    _ => Captured::Nothing("codex's rollout carried no rate_limits".into()),
                },
                Ok(None) => Captured::Nothing("codex's rollout file went away".into()),
                Err(e) => Captured::Failed(format!("cannot read codex's rollout file: {e}")),
            }
        }
        Runtime::Gemini => Captured::Nothing("moonauth reads no usage windows of gemini".into()),
    }
}

fn secs(v: Option<&Value>) -> Option<SystemTime> {
    v.and_then(Value::as_f64)
        .filter(|s| *s > 0.0 && s.is_finite())
        .map(|s| crate::time::time_from_secs(s as u64))
}

/// Claude's `unifiedWindows`: `{"five_hour": {"utilization": 0.1, "resetsAt": …, "status": …}, …}`.
pub fn claude_windows(info: &Value) -> Option<Vec<Window>> {
    let map = info.get("unifiedWindows")?.as_object()?;
    let windows = map
        .iter()
        .filter_map(|(name, w)| {
            let utilization = w.get("utilization")?.as_f64().filter(|u| u.is_finite())?;
            Some(Window {
                name: crate::redact::printable(name, 40),
                used_percent: (utilization * 100.0).clamp(0.0, 100.0),
                resets_at: secs(w.get("resetsAt")),
                window_minutes: None,
                status: w
                    .get("status")
                    .and_then(Value::as_str)
                    .map(|s| crate::redact::printable(s, 40)),
            })
        })
        .collect();
    Some(windows)
}

/// The `rate_limits` of the last `token_count` event of a Codex rollout.
pub fn codex_windows(rollout: &[u8]) -> Option<Vec<Window>> {
    let text = String::from_utf8_lossy(rollout);
    let limits = text
        .lines()
        .rev()
        .filter(|l| l.contains("rate_limits"))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|event| {
            let payload = event.get("payload").unwrap_or(&event);
            (payload.get("type").and_then(Value::as_str) == Some("token_count"))
                .then(|| payload.get("rate_limits").filter(|r| r.is_object()).cloned())
                .flatten()
        })?;
    let windows = ["primary", "secondary"]
        .iter()
        .filter_map(|name| {
            let w = limits.get(*name)?;
            let used = w.get("used_percent")?.as_f64().filter(|u| u.is_finite())?;
            Some(Window {
                name: (*name).to_string(),
                used_percent: used.clamp(0.0, 100.0),
                resets_at: secs(w.get("resets_at")),
                window_minutes: w.get("window_minutes").and_then(Value::as_u64),
                status: None,
            })
        })
        .collect();
    Some(windows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_unified_windows_become_percent_used() {
        let info = serde_json::json!({"status":"allowed","unifiedWindows":{
            "five_hour":{"utilization":0.1,"resetsAt":1795708451,"status":"allowed"},
            "seven_day":{"utilization":0.25,"resetsAt":1795794851,"status":"allowed"}}});
        let w = claude_windows(&info).unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].name.as_str(), w[0].used_percent), ("five_hour", 10.0));
        assert_eq!(w[1].used_percent, 25.0);
        assert_eq!(w[0].resets_at, Some(crate::time::time_from_secs(1795708451)));
        // No windows is not 0 %.
        assert!(claude_windows(&serde_json::json!({"status":"allowed"})).is_none());
    }

    #[test]
    fn a_rollout_that_is_a_link_is_never_read() {
        let tmp = tempfile::tempdir().unwrap();
        let day = tmp.path().join("sessions/2026/11/24");
        std::fs::create_dir_all(&day).unwrap();
        let elsewhere = tmp.path().join("elsewhere.jsonl");
        std::fs::write(
            &elsewhere,
            r#"{"type":"event_msg","payload":{"type":"token_count","rate_limits":{"primary":{"used_percent":99.0}}}}"#,
        )
        .unwrap();
        std::os::unix::fs::symlink(&elsewhere, day.join("rollout-2026-11-24T00-00-00-T1.jsonl")).unwrap();
        let c = Classification {
            outcome: super::super::classify::Outcome::Success,
            session_id: Some("T1".into()),
            session_started: true,
            api_error_status: None,
            usage: None,
        };
        assert!(
            !matches!(capture(Runtime::Codex, &c, tmp.path()), Captured::Windows(_)),
            "a planted link was followed"
        );
        // The same file in place is read.
        std::fs::remove_file(day.join("rollout-2026-11-24T00-00-00-T1.jsonl")).unwrap();
        std::fs::copy(&elsewhere, day.join("rollout-2026-11-24T00-00-00-T1.jsonl")).unwrap();
        assert!(matches!(capture(Runtime::Codex, &c, tmp.path()), Captured::Windows(w) if w[0].used_percent == 99.0));
    }

    #[test]
    fn codex_takes_the_last_token_count_of_the_rollout() {
        let rollout = concat!(
            r#"{"type":"session_meta","payload":{}}"#,
            "\n",
            r#"{"type":"event_msg","payload":{"type":"token_count","rate_limits":{"primary":{"used_percent":5.0,"window_minutes":300,"resets_at":1795708478}}}}"#,
            "\n",
            r#"{"type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":{"limit_id":"codex","primary":{"used_percent":12.0,"window_minutes":300,"resets_at":1795708478},"secondary":{"used_percent":30.0,"window_minutes":10080,"resets_at":1796129678}}}}"#,
            "\n",
            "not json rate_limits\n",
        );
        let w = codex_windows(rollout.as_bytes()).unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(
            (w[0].name.as_str(), w[0].used_percent, w[0].window_minutes),
            ("primary", 12.0, Some(300))
        );
        assert_eq!(w[1].used_percent, 30.0);
        assert!(codex_windows(b"{\"type\":\"x\"}\n").is_none());
    }
}

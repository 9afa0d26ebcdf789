//! Unit tests of the classifier: clock parsing, prose, redaction, serialization.

use super::*;

/// 2026-11-24T10:00:00Z.
const NOW_SECS: u64 = 1_795_514_400;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn now() -> SystemTime {
    at(NOW_SECS)
}

fn utc(text: &str) -> Option<SystemTime> {
    parse_reset_clock(text, &TimeZone::UTC, now())
}

fn classify(runtime: Runtime, stdout: &[&str], stderr: &[&str], exit: Option<i32>) -> Classification {
    let mut c = OutputClassifier::with_time_zone(runtime, TimeZone::UTC);
    stdout.iter().for_each(|l| c.stdout_line(l));
    stderr.iter().for_each(|l| c.stderr_line(l));
    c.finish(exit, now())
}

#[test]
fn clock_time_later_today_is_today() {
    assert_eq!(utc("4:48 PM."), Some(at(NOW_SECS + 6 * 3600 + 48 * 60)));
    assert_eq!(utc("16:48"), Some(at(NOW_SECS + 6 * 3600 + 48 * 60)));
    assert_eq!(utc("4:48pm"), Some(at(NOW_SECS + 6 * 3600 + 48 * 60)));
    assert_eq!(utc("11am"), Some(at(NOW_SECS + 3600)));
}

#[test]
fn clock_time_already_past_is_tomorrow() {
    // 3:08am is long gone at 10:00: the reset is tomorrow morning.
    assert_eq!(
        utc("3:08am (UTC)"),
        Some(at(NOW_SECS - 10 * 3600 + 86_400 + 3 * 3600 + 8 * 60))
    );
    assert_eq!(utc("12:30 AM"), Some(at(NOW_SECS + 14 * 3600 + 30 * 60)));
}

#[test]
fn clock_time_just_past_is_still_today() {
    // The CLIs print minutes; 9:59 at 10:00 is a reset that has just passed, not tomorrow's.
    assert_eq!(utc("9:59 AM"), Some(at(NOW_SECS - 60)));
}

#[test]
fn clock_time_with_a_date() {
    // Codex prints `%b %-d<suffix>, %Y %-I:%M %p` when the reset is not today.
    assert_eq!(
        utc("Nov 25th, 2026 4:48 PM."),
        Some(at(NOW_SECS + 86_400 + 6 * 3600 + 48 * 60))
    );
    assert_eq!(utc("Nov 30, 2pm (UTC)"), Some(at(NOW_SECS + 6 * 86_400 + 4 * 3600)));
    assert_eq!(utc("Nov 30 at 2pm"), Some(at(NOW_SECS + 6 * 86_400 + 4 * 3600)));
    // A date without a year that lies months back is next year's.
    assert_eq!(utc("Jan 2, 1am"), Some(at(1_798_851_600)));
}

#[test]
fn clock_time_in_a_named_or_local_zone() {
    // 10:00Z is 11:00 in Berlin: 3:08am Berlin is tomorrow 02:08Z.
    let berlin = parse_reset_clock("3:08am (Europe/Berlin)", &TimeZone::UTC, now());
    assert_eq!(berlin, Some(at(NOW_SECS + 86_400 - 8 * 3600 + 8 * 60)));
    // Codex prints no zone: its local time is the process's.
    let new_york = TimeZone::get("America/New_York").unwrap();
    // 10:00Z is 05:00 in New York (EST, UTC-5): 4:48 PM there is 21:48Z today.
    let parsed = parse_reset_clock("4:48 PM", &new_york, now());
    assert_eq!(parsed, Some(at(NOW_SECS + 11 * 3600 + 48 * 60)));
}

#[test]
fn not_a_clock_time() {
    assert_eq!(utc("soon"), None);
    assert_eq!(utc("5 minutes"), None);
    assert_eq!(utc("25:00"), None);
    assert_eq!(utc("13pm"), None);
    assert_eq!(utc(""), None);
}

#[test]
fn status_codes_in_messages() {
    assert_eq!(
        status_in("unexpected status 401 Unauthorized: Incorrect API key provided"),
        Some(401)
    );
    assert_eq!(
        status_in("exceeded retry limit, last status: 429 Too Many Requests"),
        Some(429)
    );
    assert_eq!(status_in("API Error: 529 Overloaded."), Some(529));
    assert_eq!(status_in("no status here"), None);
    assert_eq!(status_in("status 4011"), None);
}

#[test]
fn retry_after_from_text() {
    assert_eq!(
        retry_after_in("Please try again in 20s."),
        Some(Duration::from_secs(20))
    );
    assert_eq!(retry_after_in("try again in 250ms"), Some(Duration::from_millis(250)));
    assert_eq!(retry_after_in("try again in 2m"), Some(Duration::from_secs(120)));
    assert_eq!(retry_after_in("try again at 4:48 PM"), None);
}

#[test]
fn claude_2_1_197_session_limit_text_mode() {
    let c = classify(
        Runtime::Claude,
        &["You've hit your session limit · resets 3:08am (UTC)"],
        &[],
        Some(1),
    );
    assert_eq!(
        c.outcome,
        Outcome::UsageLimit {
            resets_at: utc("3:08am (UTC)"),
            window: Some("five_hour".into())
        }
    );
    assert!(!c.session_started);
}

#[test]
fn claude_2_1_330_five_hour_limit_text_mode() {
    let c = classify(
        Runtime::Claude,
        &["You've hit your 5-hour limit · resets 2:17am (UTC)"],
        &[],
        Some(1),
    );
    assert_eq!(
        c.outcome,
        Outcome::UsageLimit {
            resets_at: utc("2:17am"),
            window: Some("five_hour".into())
        }
    );
}

#[test]
fn claude_weekly_limit_with_a_date() {
    let c = classify(
        Runtime::Claude,
        &["You've hit your weekly limit · resets Nov 30, 2pm (UTC)"],
        &[],
        Some(1),
    );
    assert_eq!(
        c.outcome,
        Outcome::UsageLimit {
            resets_at: utc("Nov 30, 2pm"),
            window: Some("seven_day".into())
        }
    );
}

#[test]
fn claude_result_without_api_error_field_uses_the_rejection() {
    // 2.1.197 stream-json: no `api_error`, the rate_limit_event carries the reset.
    let stdout = [
        r#"{"type":"system","subtype":"init","session_id":"s-1"}"#,
        r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1795520880,"rateLimitType":"five_hour","isUsingOverage":false},"session_id":"s-1"}"#,
        r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"result":"You've hit your session limit · resets 11:48am (UTC)","session_id":"s-1"}"#,
    ];
    let c = classify(Runtime::Claude, &stdout, &[], Some(1));
    assert_eq!(
        c.outcome,
        Outcome::UsageLimit {
            resets_at: Some(at(1_795_520_880)),
            window: Some("five_hour".into())
        }
    );
    assert_eq!(c.session_id.as_deref(), Some("s-1"));
    assert!(c.session_started && c.resumable());
    assert_eq!(c.api_error_status, Some(429));
}

#[test]
fn claude_rejected_event_without_reset_is_a_throttle() {
    // 2.1.330 emits a rejected rate_limit_event for a plain throttle too, with no reset.
    let stdout = [
        r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","isUsingOverage":false},"session_id":"s-2"}"#,
        r#"{"type":"result","is_error":true,"num_turns":1,"api_error_status":429,"api_error_type":"rate_limit_error","result":"API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited","session_id":"s-2"}"#,
    ];
    let c = classify(Runtime::Claude, &stdout, &[], Some(1));
    assert_eq!(c.outcome, Outcome::Throttle { retry_after: None });
}

#[test]
fn claude_oauth_session_expired_is_an_auth_failure() {
    // 2.1.330 after a refused refresh: no status, no error type, only the text.
    let stdout = [
        r#"{"type":"result","subtype":"success","is_error":true,"num_turns":0,"api_error_status":null,"api_error_type":null,"result":"Failed to authenticate: OAuth session expired and could not be refreshed","session_id":"s-3"}"#,
    ];
    let c = classify(Runtime::Claude, &stdout, &[], Some(1));
    assert!(matches!(c.outcome, Outcome::AuthFailure { .. }), "{c:?}");
    assert!(!c.session_started, "no request was made");
}

#[test]
fn claude_not_logged_in_2_1_197_json() {
    let stdout = [
        r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":401,"result":"Not logged in · Please run /login","session_id":"s-4"}"#,
    ];
    let c = classify(Runtime::Claude, &stdout, &[], Some(1));
    assert_eq!(
        c.outcome,
        Outcome::AuthFailure {
            detail: "Not logged in · Please run /login".into()
        }
    );
}

#[test]
fn claude_success_keeps_the_usage_snapshot() {
    let stdout = [
        r#"{"type":"system","subtype":"init","session_id":"s-5"}"#,
        r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed","unifiedWindows":{"five_hour":{"utilization":0.25,"resetsAt":1795520880,"status":"allowed"}}},"session_id":"s-5"}"#,
        r#"{"type":"result","subtype":"success","is_error":false,"result":"hi","session_id":"s-5"}"#,
    ];
    let c = classify(Runtime::Claude, &stdout, &[], Some(0));
    assert_eq!(c.outcome, Outcome::Success);
    assert_eq!(c.usage.unwrap()["unifiedWindows"]["five_hour"]["utilization"], 0.25);
}

#[test]
fn exit_zero_without_events_is_success_even_if_the_reply_mentions_limits() {
    let c = classify(
        Runtime::Claude,
        &["You've hit your 5-hour limit, says the model."],
        &[],
        Some(0),
    );
    assert_eq!(c.outcome, Outcome::Success);
}

#[test]
fn codex_refresh_failure_is_an_auth_failure() {
    let msg = "Your access token could not be refreshed. Please log out and sign in again.";
    let stdout = [
        r#"{"type":"thread.started","thread_id":"t-1"}"#.to_string(),
        r#"{"type":"turn.started"}"#.to_string(),
        serde_json::json!({"type":"error","message":msg}).to_string(),
        serde_json::json!({"type":"turn.failed","error":{"message":msg}}).to_string(),
    ];
    let lines: Vec<&str> = stdout.iter().map(String::as_str).collect();
    let c = classify(Runtime::Codex, &lines, &[], Some(1));
    assert_eq!(c.outcome, Outcome::AuthFailure { detail: msg.into() });
    assert_eq!(c.session_id.as_deref(), Some("t-1"));
}

#[test]
fn codex_usage_limit_text_with_a_clock_time() {
    let msg = "You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at 4:48 PM.";
    let failed = serde_json::json!({"type":"turn.failed","error":{"message":msg}}).to_string();
    let c = classify(
        Runtime::Codex,
        &[r#"{"type":"thread.started","thread_id":"t-2"}"#, &failed],
        &[],
        Some(1),
    );
    assert_eq!(
        c.outcome,
        Outcome::UsageLimit {
            resets_at: utc("4:48 PM"),
            window: None
        }
    );
}

#[test]
fn codex_reconnect_then_success() {
    let stdout = [
        r#"{"type":"thread.started","thread_id":"t-3"}"#,
        r#"{"type":"error","message":"Reconnecting... 1/5 (unexpected status 503 Service Unavailable)"}"#,
        r#"{"type":"turn.completed","usage":{}}"#,
    ];
    assert_eq!(
        classify(Runtime::Codex, &stdout, &[], Some(0)).outcome,
        Outcome::Success
    );
}

#[test]
fn codex_text_mode_falls_back_to_prose() {
    let stderr = [
        "Reading additional input from stdin...",
        "ERROR: unexpected status 503 Service Unavailable: busy",
    ];
    let c = classify(Runtime::Codex, &[], &stderr, Some(1));
    assert_eq!(c.outcome, Outcome::Overload);
    assert_eq!(c.api_error_status, Some(503));
}

#[test]
fn killed_without_output_is_other() {
    let c = classify(Runtime::Codex, &[], &["Reading additional input from stdin..."], None);
    assert_eq!(
        c.outcome,
        Outcome::Other {
            detail: "codex was stopped by a signal before it finished".into()
        }
    );
}

#[test]
fn details_are_redacted_before_truncation() {
    let token = "sk-ant-oat01-CANARY-moonauth-access-valid";
    let text = format!(
        "Failed to authenticate. API Error: 401 token {token} {}",
        "x".repeat(500)
    );
    let stdout =
        [serde_json::json!({"type":"result","is_error":true,"api_error_status":401,"result":text}).to_string()];
    let c = classify(Runtime::Claude, &[&stdout[0]], &[], Some(1));
    let Outcome::AuthFailure { detail } = c.outcome else {
        panic!("{c:?}")
    };
    assert!(!detail.contains("CANARY") && !detail.contains("sk-ant"), "{detail}");
    assert!(detail.contains(crate::redact::REDACTED));
    assert_eq!(detail.chars().count(), DETAIL_MAX_CHARS);
}

#[test]
fn outcomes_serialize_with_a_kind_tag_and_rfc3339_times() {
    let limit = Outcome::UsageLimit {
        resets_at: Some(at(NOW_SECS)),
        window: Some("five_hour".into()),
    };
    let json = serde_json::to_value(&limit).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"kind":"usage-limit","resets_at":"2026-11-24T10:00:00Z","window":"five_hour"})
    );
    assert_eq!(serde_json::from_value::<Outcome>(json).unwrap(), limit);
    let throttle = Outcome::Throttle {
        retry_after: Some(Duration::from_secs(2)),
    };
    assert_eq!(
        serde_json::to_value(&throttle).unwrap(),
        serde_json::json!({"kind":"throttle","retry_after_secs":2.0})
    );
    assert_eq!(
        serde_json::to_value(Outcome::Success).unwrap(),
        serde_json::json!({"kind":"success"})
    );
    let auth = serde_json::to_value(Outcome::AuthFailure { detail: "x".into() }).unwrap();
    assert_eq!(auth["kind"], "auth-failure");
    assert_eq!(Outcome::Overload.kind(), "overload");
}

#[test]
fn claude_error_without_api_error_names_its_subtype() {
    let stdout = [r#"{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":3,"session_id":"s-6"}"#];
    let c = classify(Runtime::Claude, &stdout, &[], Some(1));
    assert_eq!(
        c.outcome,
        Outcome::Other {
            detail: "Claude Code ended with error_max_turns".into()
        }
    );
    assert!(c.resumable());
}

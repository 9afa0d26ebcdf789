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

#[test]
fn a_token_where_the_session_id_belongs_is_not_kept() {
    let token = "sk-ant-oat01-CANARYsession";
    let init = serde_json::json!({"type":"system","subtype":"init","session_id":token}).to_string();
    let c = classify(Runtime::Claude, &[&init], &[], Some(0));
    assert_eq!(c.session_id, None);
    let c = classify(Runtime::Codex, &[], &[&format!("session id: {token}")], Some(1));
    assert_eq!(c.session_id, None);
    // The real ids, UUIDs, stay, though the redactor would mask them in prose.
    let c = classify(
        Runtime::Codex,
        &[],
        &["session id: 01a20af9-6528-7e50-bebe-14114645dbbc"],
        Some(1),
    );
    assert_eq!(c.session_id.as_deref(), Some("01a20af9-6528-7e50-bebe-14114645dbbc"));
}

#[test]
fn a_token_in_the_rate_limit_info_reaches_neither_the_window_nor_the_usage() {
    let token = "sk-ant-oat01-CANARYwindow";
    let event = serde_json::json!({"type":"rate_limit_event","rate_limit_info":{
        "status":"rejected","resetsAt":1795520880,"rateLimitType":token,"note":format!("key={token}"),
        "unifiedWindows":{token:{"status":"rejected","resetsAt":1795520880}}}})
    .to_string();
    let text = format!("You've hit your {token} limit");
    let c = classify(Runtime::Claude, &[&event], &[&text], Some(1));
    let rendered = format!("{c:?} {}", serde_json::to_string(&c).unwrap());
    assert!(!rendered.to_lowercase().contains("canary"), "{rendered}");
    assert_eq!(
        c.outcome,
        Outcome::UsageLimit {
            resets_at: Some(at(1_795_520_880)),
            window: None
        }
    );
}

#[test]
fn a_reset_date_before_1970_or_after_9999_is_no_reset_time() {
    assert_eq!(utc("Jan 1st, 1900 1:00 AM."), None);
    // 23:59 on the last day of 9999 at UTC-5 is already year 10000 in UTC.
    let west = TimeZone::fixed(jiff::tz::offset(-5));
    assert_eq!(parse_reset_clock("Dec 31st, 9999 11:59 PM", &west, now()), None);
    assert!(utc("Dec 30th, 9999 1:00 PM").is_some(), "late in 9999 UTC still is one");
    let line = serde_json::json!({"type":"error","message":"You've hit your usage limit. try again at Jan 2nd, 1903 4:48 PM."}).to_string();
    let c = classify(Runtime::Codex, &[&line], &[], Some(1));
    assert_eq!(
        c.outcome,
        Outcome::UsageLimit {
            resets_at: None,
            window: None
        }
    );
    assert!(serde_json::to_string(&c).is_ok(), "the report can render it");
}

/// Arbitrary CLI output never panics the classifier, and no token in it reaches any
/// rendering of the classification (Debug, JSON). Lines mix the real shapes of
/// `tests/samples/` (rate-limit events, API-error messages, results, Codex events, reset
/// texts) with arbitrary text, odd numbers and a canary token in every free-text slot.
mod properties {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// The prefixes of the tokens the CLIs hold (Claude OAuth access/refresh, API keys, Codex).
    const PREFIXES: [&str; 5] = ["sk-ant-oat01-", "sk-ant-ort01-", "sk-ant-api03-", "sk-proj-", "rt_"];

    /// A token whose `CANARY…` part must never be printed, in any case.
    #[derive(Debug, Clone)]
    struct Canary {
        token: String,
        marker: String,
    }

    fn canary() -> BoxedStrategy<Canary> {
        (prop::sample::select(&PREFIXES[..]), "[A-Za-z0-9]{6,24}")
            .prop_map(|(prefix, tail)| Canary {
                token: format!("{prefix}CANARY{tail}"),
                marker: format!("canary{}", tail.to_lowercase()),
            })
            .boxed()
    }

    /// JSON number literals, the edges included: `u64::MAX`, beyond it, negatives, exponents.
    fn number() -> BoxedStrategy<String> {
        prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            prop::sample::select(
                &[
                    "18446744073709551615",
                    "18446744073709551616",
                    "-9223372036854775808",
                    "99999999999999999999999999",
                    "1e308",
                    "-1e308",
                    "253402300799",
                    "253402300800",
                    "-1",
                    "0",
                    "0.5",
                    "429",
                    "401",
                    "529",
                    "1795487640",
                ][..]
            )
            .prop_map(str::to_string),
        ]
        .boxed()
    }

    /// A free-text slot: the canary alone, glued to a key, inside prose, or arbitrary text.
    fn text(c: &Canary) -> BoxedStrategy<String> {
        let t = c.token.clone();
        prop_oneof![
            Just(t.clone()),
            prop::sample::select(
                &[
                    "{}",
                    "key={}",
                    "Authorization: Bearer {}",
                    "Invalid API key: {}.",
                    "Failed to authenticate. API Error: 401 token {} revoked",
                    "You've hit your {} limit · resets 2:34am (UTC)",
                    "You’ve hit your usage limit. try again at {} 4:48 PM.",
                    "unexpected status 429 Too Many Requests: {}, try again in 20s",
                    "API Error: 529 {\"type\":\"overloaded_error\",\"message\":\"{}\"}",
                    "'{}'",
                    "\"{}\"",
                    "({})",
                    "token:{}",
                    "{},{}",
                ][..]
            )
            .prop_map(move |template| template.replace("{}", &t)),
            ("\\PC{0,40}", "\\PC{0,40}").prop_map({
                let t = c.token.clone();
                move |(a, b)| format!("{a} {t} {b}")
            }),
            "\\PC{0,80}",
            reset_text(),
        ]
        .boxed()
    }

    /// Reset texts as the CLIs print them, with any year, clock and zone.
    fn reset_text() -> BoxedStrategy<String> {
        (
            prop::sample::select(&["resets ", "try again at ", "reset at "][..]),
            prop::sample::select(&["Jan", "Nov", "Dec", "Feb", ""][..]),
            0u32..40,
            0u32..=9999,
            0u32..30,
            0u32..70,
            prop::sample::select(&["AM", "PM", "am", "", "pm"][..]),
            prop::sample::select(&["", " (UTC)", " (Europe/Berlin)", " (Nowhere/Else)", " (GMT)"][..]),
        )
            .prop_map(|(marker, month, day, year, hour, minute, meridiem, zone)| {
                let date = if month.is_empty() {
                    String::new()
                } else {
                    format!("{month} {day}th, {year:04} ")
                };
                format!("You've hit your usage limit · {marker}{date}{hour}:{minute:02} {meridiem}{zone}.")
            })
            .boxed()
    }

    /// A session or thread id: a real-looking one, the canary, or anything.
    fn id(c: &Canary) -> BoxedStrategy<Value> {
        prop_oneof![
            Just(json!("60494aa8-603f-4fe3-9a0c-43924155db5c")),
            Just(json!(c.token)),
            text(c).prop_map(Value::from),
            Just(Value::Null),
        ]
        .boxed()
    }

    fn num(c: &Canary) -> BoxedStrategy<Value> {
        prop_oneof![
            4 => number().prop_map(|n| serde_json::from_str(&n).unwrap_or(Value::Null)),
            1 => Just(json!(c.token)),
        ]
        .boxed()
    }

    /// `rate_limit_info` as Claude 2.1.197/2.1.330 print it, with any values.
    fn rate_limit_info(c: &Canary) -> BoxedStrategy<Value> {
        (
            prop::sample::select(&["rejected", "allowed", "allowed_warning"][..]),
            num(c),
            prop_oneof![
                Just(json!("five_hour")),
                Just(json!("seven_day")),
                Just(json!(c.token)),
                text(c).prop_map(Value::from)
            ],
            prop_oneof![Just("five_hour".to_string()), Just(c.token.clone()), "\\PC{0,20}"],
            num(c),
        )
            .prop_map(|(status, resets, kind, window, window_resets)| {
                json!({
                    "status": status,
                    "resetsAt": resets,
                    "rateLimitType": kind,
                    "isUsingOverage": false,
                    "unifiedWindows": { window: { "utilization": 1, "resetsAt": window_resets, "status": status } },
                })
            })
            .boxed()
    }

    /// One line of a CLI's stdout or stderr.
    fn line(c: &Canary) -> BoxedStrategy<String> {
        let claude = prop_oneof![
            (id(c), rate_limit_info(c)).prop_map(|(id, info)| json!({
                "type": "rate_limit_event", "rate_limit_info": info, "session_id": id
            })),
            (id(c), num(c), text(c), text(c), rate_limit_info(c)).prop_map(|(id, status, kind, text, info)| json!({
                "type": "assistant", "is_api_error_message": true, "api_error_status": status,
                "api_error": "usage_limit_reached", "api_error_type": kind,
                "message": { "content": [{ "type": "text", "text": text }] },
                "api_error_params": { "rate_limit_info": info }, "session_id": id
            })),
            (id(c), any::<bool>(), num(c), num(c), text(c), text(c), text(c)).prop_map(
                |(id, is_error, turns, status, subtype, kind, result)| json!({
                    "type": "result", "is_error": is_error, "num_turns": turns, "subtype": subtype,
                    "api_error_status": status, "api_error_type": kind, "result": result, "session_id": id
                })
            ),
            (id(c), num(c)).prop_map(|(id, status)| json!({
                "type": "system", "subtype": "api_retry", "error_status": status, "session_id": id
            })),
            id(c).prop_map(|id| json!({ "type": "system", "subtype": "init", "session_id": id })),
        ];
        let codex = prop_oneof![
            id(c).prop_map(|id| json!({ "type": "thread.started", "thread_id": id })),
            text(c).prop_map(|m| json!({ "type": "turn.failed", "error": { "message": m } })),
            text(c).prop_map(|m| json!({ "type": "error", "message": m })),
            Just(json!({ "type": "turn.completed" })),
        ];
        prop_oneof![
            claude.prop_map(|v| v.to_string()),
            codex.prop_map(|v| v.to_string()),
            text(c),
            text(c).prop_map(|t| format!("session id: {t}")),
            text(c).prop_map(|t| format!("ERROR: {t}")),
        ]
        .boxed()
    }

    /// A whole run: the runtime, the zone its clock times are read in, lines on either
    /// stream, the exit code and the time it ended (1970–2100: a real clock's).
    /// (canary, runtime, UTC offset in hours, (stdout?, line)…, exit code, end in epoch seconds).
    type Run = (Canary, Runtime, i8, Vec<(bool, String)>, Option<i32>, u64);

    fn run() -> BoxedStrategy<Run> {
        canary()
            .prop_flat_map(|c| {
                let lines = prop::collection::vec((any::<bool>(), line(&c)), 0..8);
                (
                    Just(c),
                    prop::sample::select(&[Runtime::Claude, Runtime::Codex, Runtime::Gemini][..]),
                    -12i8..=14,
                    lines,
                    any::<Option<i32>>(),
                    0u64..=4_102_444_800,
                )
            })
            .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_output_never_panics_nor_leaks_a_token(
            (c, runtime, offset, lines, exit, now) in run()
        ) {
            let zone = jiff::tz::TimeZone::fixed(jiff::tz::Offset::constant(offset));
            let mut classifier = OutputClassifier::with_time_zone(runtime, zone);
            for (stdout, line) in &lines {
                if *stdout {
                    classifier.stdout_line(line);
                } else {
                    classifier.stderr_line(line);
                }
            }
            let classification = classifier.finish(exit, at(now));
            let json = serde_json::to_string(&classification);
            prop_assert!(json.is_ok(), "the classification serializes: {json:?}");
            let renderings = [
                format!("{classification:?}"),
                json.unwrap_or_default(),
                classification.outcome.kind().to_string(),
            ];
            for rendering in renderings {
                prop_assert!(
                    !rendering.to_lowercase().contains(&c.marker),
                    "{} leaked into {rendering}", c.token
                );
            }
        }
    }
}

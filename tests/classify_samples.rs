//! The classifier on every captured sample in `tests/samples/` (real runs of the pinned
//! CLIs, saved by `classify_real_cli.rs`) and on hand-written samples of texts from older
//! versions (Claude Code 2.1.197), so it is checked without the CLIs installed.

use std::time::{Duration, SystemTime};

use jiff::tz::TimeZone;
use moonauth::agents::Runtime;
use moonauth::failover::classify::{Classification, Outcome};

use crate::support;
use crate::support::samples::{self, Sample};

fn runtime(sample: &Sample) -> Runtime {
    match sample.meta.runtime.as_str() {
        "claude" => Runtime::Claude,
        "codex" => Runtime::Codex,
        other => panic!("{}/{}: unknown runtime {other}", sample.dir, sample.case),
    }
}

fn classify(sample: &Sample, stdout: &str, stderr: &str) -> Classification {
    let finished_at = humantime::parse_rfc3339_weak(sample.meta.finished_at.trim_end_matches('Z'))
        .unwrap_or_else(|e| panic!("{}/{}: finished_at: {e}", sample.dir, sample.case));
    let zone = TimeZone::get(&sample.meta.time_zone).expect("time zone");
    support::classify_output(
        runtime(sample),
        zone,
        stdout,
        stderr,
        sample.meta.exit_code,
        finished_at,
    )
}

fn parse_time(text: &str) -> SystemTime {
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z')).expect("rfc3339")
}

#[test]
fn every_sample_classifies_as_expected() {
    let all = samples::load_all();
    let mut failures = Vec::new();
    for sample in &all {
        let c = classify(sample, &sample.stdout, &sample.stderr);
        let expected = &sample.meta.expected;
        let name = format!("{}/{}", sample.dir, sample.case);
        let mut fail = |what: String| failures.push(format!("{name}: {what} (classified {c:?})"));
        if c.outcome.kind() != expected.kind {
            fail(format!("kind {} != {}", c.outcome.kind(), expected.kind));
            continue;
        }
        if let Outcome::UsageLimit { resets_at, window } = &c.outcome {
            if let Some(want) = &expected.resets_at {
                let want = parse_time(want);
                match resets_at {
                    None => fail("no reset time".into()),
                    Some(got) => {
                        let diff = got.duration_since(want).unwrap_or_else(|e| e.duration());
                        if diff > Duration::from_secs(expected.reset_tolerance_secs) {
                            fail(format!("reset off by {diff:?}"));
                        }
                    }
                }
            }
            if expected.window.is_some() && window != &expected.window {
                fail(format!("window {window:?} != {:?}", expected.window));
            }
        }
        if c.session_id.is_some() != expected.session_id {
            fail(format!(
                "session id {:?}, expected one: {}",
                c.session_id, expected.session_id
            ));
        }
        if c.session_id.as_deref() == Some("") {
            fail("empty session id".into());
        }
        if c.session_started != expected.session_started {
            fail(format!(
                "session_started {} != {}",
                c.session_started, expected.session_started
            ));
        }
        if expected.api_error_status.is_some() && c.api_error_status != expected.api_error_status {
            fail(format!(
                "api_error_status {:?} != {:?}",
                c.api_error_status, expected.api_error_status
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} samples misclassified:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn samples_cover_every_outcome_of_both_clis() {
    let all = samples::load_all();
    for (dir_prefix, kinds) in [
        (
            "claude-2.1.330",
            &["success", "usage-limit", "throttle", "overload", "auth-failure"][..],
        ),
        (
            "claude-2.1.197",
            &["usage-limit", "throttle", "overload", "auth-failure"][..],
        ),
        (
            "codex-0.169.0",
            &["success", "usage-limit", "throttle", "overload", "auth-failure"][..],
        ),
    ] {
        for kind in kinds {
            assert!(
                all.iter().any(|s| s.dir == dir_prefix && s.meta.expected.kind == *kind),
                "no {kind} sample in tests/samples/{dir_prefix}"
            );
        }
    }
}

/// Canary: put credential values back where the samples have placeholders (as a real run
/// would print them), and check that none reaches a classification.
#[test]
fn no_credential_reaches_a_classification() {
    let canaries = [
        ("<access-token>", "sk-ant-oat01-CANARY-moonauth-access-valid"),
        ("<refresh-token>", "sk-ant-ort01-CANARY-moonauth-refresh-valid"),
        ("<api-key>", "sk-proj-CANARY-moonauth-apikey"),
        (
            "<id-token>",
            "eyJhbGciOiJSUzI1NiJ9.eyJub3RlIjoiQ0FOQVJZIn0.Q0FOQVJZLXNpZ25hdHVyZQ",
        ),
    ];
    let restore = |text: &str| {
        canaries.iter().fold(text.to_string(), |t, (placeholder, value)| {
            t.replace(placeholder, value)
        })
    };
    let mut checked = 0;
    for sample in samples::load_all() {
        // Also quote a token in every error text, as a server that echoes it would.
        let echo = |text: &str| {
            text.replace(
                "Please obtain a new token.",
                "Token sk-ant-oat01-CANARY-moonauth-echo refused.",
            )
        };
        let c = classify(&sample, &echo(&restore(&sample.stdout)), &restore(&sample.stderr));
        let json = serde_json::to_string(&c).expect("json");
        assert!(!json.contains("CANARY"), "{}/{}: {json}", sample.dir, sample.case);
        for (_, value) in canaries {
            assert!(!json.contains(value), "{}/{}: {json}", sample.dir, sample.case);
        }
        checked += 1;
    }
    assert!(checked > 0, "no samples found under tests/samples");
}

#[test]
fn samples_hold_no_credentials() {
    for sample in samples::load_all() {
        for text in [&sample.stdout, &sample.stderr] {
            assert!(
                !text.contains("CANARY"),
                "{}/{} holds a CANARY value",
                sample.dir,
                sample.case
            );
            for prefix in ["sk-ant-", "sk-proj-", "rt_CANARY", "eyJhbGci"] {
                assert!(
                    !text.contains(prefix),
                    "{}/{} holds a credential ({prefix}…)",
                    sample.dir,
                    sample.case
                );
            }
        }
    }
}

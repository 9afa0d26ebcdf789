//! Shared test code for the classifier and `moonauth run` tests: fake Anthropic and OpenAI
//! APIs on 127.0.0.1, a safe runner for the real CLIs, and the captured samples.
//!
//! Each test crate uses a different part of it.
#![allow(dead_code)]

pub mod cli;
pub mod fake_anthropic;
pub mod fake_api;
pub mod fake_openai;
pub mod http;
pub mod samples;

use std::time::SystemTime;

use moonauth::agents::Runtime;
use moonauth::failover::classify::{Classification, OutputClassifier};

/// Feeds a finished run's output to a classifier line by line, as `moonauth run` does
/// (stdout first, then stderr: the two streams are independent), in `zone`.
pub fn classify_output(
    runtime: Runtime,
    zone: jiff::tz::TimeZone,
    stdout: &str,
    stderr: &str,
    exit_code: Option<i32>,
    now: SystemTime,
) -> Classification {
    let mut classifier = OutputClassifier::with_time_zone(runtime, zone);
    stdout.lines().for_each(|line| classifier.stdout_line(line));
    stderr.lines().for_each(|line| classifier.stderr_line(line));
    classifier.finish(exit_code, now)
}

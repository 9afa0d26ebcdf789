//! Everything the integration tests share, in one tree:
//!
//! - [`moonauth_bin`]: the built binary (the one place its path is spelled out);
//! - `sandbox`: login directories from `tests/fixtures`, stand-in CLIs on a fake PATH,
//!   `moonauth` run with a cleared environment, and readers of its output;
//! - `cli`, `fake_anthropic`, `fake_openai`, `fake_api`, `samples`: the real CLIs run
//!   safely against fake APIs on 127.0.0.1, and the captured outputs in `tests/samples`;
//! - `renew`, `token_service`: a loopback token service with rotating refresh tokens, login
//!   files in the CLIs' formats, programs run with a hard timeout;
//! - `http`: the small HTTP server under both fakes and the token service;
//! - `postgres`: throwaway PostgreSQL clusters, one database per test.
//!
//! Each test module uses a different part of it.
#![allow(dead_code)]

pub mod cli;
pub mod dashboard;
pub mod fake_anthropic;
pub mod fake_api;
pub mod fake_openai;
pub mod http;
pub mod postgres;
pub mod renew;
pub mod samples;
pub mod sandbox;
pub mod token_service;
pub mod webdriver;

use std::path::Path;
use std::time::SystemTime;

use moonauth::agents::Runtime;
use moonauth::failover::classify::{Classification, OutputClassifier};

/// The `moonauth` binary Cargo built for these tests.
pub fn moonauth_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_moonauth"))
}

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

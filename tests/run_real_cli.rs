//! `moonauth run` end to end: the real `claude` and `codex` against fake APIs on
//! 127.0.0.1, several accounts in a real store, and the failover policy:
//! a usage limit on A continues on B with the same session resumed; A and B exhausted
//! without fallback is exit 10 with both reasons; with fallback the API key finishes
//! the work and the report says so; an auth failure never falls back to the API key.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::support::cli::{self, Sandbox};
use crate::support::fake_anthropic::FakeAnthropic;
use crate::support::fake_api::Reply;
use crate::support::fake_openai::FakeOpenAi;
use crate::support::moonauth_bin;

/// moonauth in the sandbox's clean environment, with the CLI's directory on PATH and a
/// store in the sandbox.
fn moonauth_cmd(sandbox: &Sandbox, cli_bin: &Path) -> Command {
    let mut cmd = sandbox.command(moonauth_bin());
    let path = format!(
        "{}:{}",
        cli_bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path)
        .env("MOONAUTH_STATE_DIR", sandbox.path().join("state"))
        .env("DISABLE_TELEMETRY", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("MOONAUTH_CLI_MAX_RETRIES", "0")
        .env("MOONAUTH_THROTTLE_RETRIES", "0");
    cmd
}

fn ok(out: &cli::Output) {
    assert_eq!(
        out.exit_code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
}

fn accounts_add(sandbox: &Sandbox, cli_bin: &Path, args: &[&str]) {
    let out = cli::run(
        moonauth_cmd(sandbox, cli_bin).arg("accounts").arg("add").args(args),
        Duration::from_secs(30),
    );
    ok(&out);
}

fn report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("the run wrote its report")).expect("report JSON")
}

fn no_canary(out: &cli::Output, report: &Path) {
    let all = format!(
        "{}{}{}",
        out.stdout,
        out.stderr,
        std::fs::read_to_string(report).unwrap_or_default()
    );
    // `::add-mask::` lines (under GITHUB_ACTIONS) are how the runner learns what to
    // mask; it takes them out of the log.
    let leaked: Vec<&str> = all
        .lines()
        .filter(|l| !l.starts_with("::add-mask::") && l.contains("CANARY"))
        .collect();
    assert!(leaked.is_empty(), "a token reached the output or report:\n{leaked:?}");
}

/// Two Claude OAuth accounts (a, b) and an API-key account, with their tokens.
struct ClaudeFleet {
    sandbox: Sandbox,
    bin: PathBuf,
    fake: FakeAnthropic,
    a: PathBuf,
    b: PathBuf,
}

const TOKEN_A: &str = "sk-ant-oat01-CANARY-run-a";
const TOKEN_B: &str = "sk-ant-oat01-CANARY-run-b";
const API_KEY: &str = "sk-ant-api03-CANARY-run-key";

impl ClaudeFleet {
    fn new() -> Option<ClaudeFleet> {
        let bin = cli::real_cli("claude")?;
        let sandbox = Sandbox::new();
        let fake = FakeAnthropic::start();
        let a = sandbox.dir("claude-a");
        let b = sandbox.dir("claude-b");
        cli::claude_oauth_login(&a, TOKEN_A);
        cli::claude_oauth_login(&b, TOKEN_B);
        accounts_add(
            &sandbox,
            &bin,
            &[
                "a",
                "--runtime",
                "claude",
                "--dir",
                a.to_str().unwrap(),
                "--priority",
                "1",
            ],
        );
        accounts_add(
            &sandbox,
            &bin,
            &[
                "b",
                "--runtime",
                "claude",
                "--dir",
                b.to_str().unwrap(),
                "--priority",
                "2",
            ],
        );
        accounts_add(
            &sandbox,
            &bin,
            // Set only in the runs' environment.
            &[
                "key",
                "--runtime",
                "claude",
                "--api-key-env",
                "TEST_ANTHROPIC_KEY",
                "--allow-unset",
            ],
        );
        Some(ClaudeFleet {
            sandbox,
            bin,
            fake,
            a,
            b,
        })
    }

    fn run(&self, extra_env: &[(&str, &str)]) -> (cli::Output, PathBuf) {
        let report = self.sandbox.path().join(format!("report-{}.json", rand_suffix()));
        let mut cmd = moonauth_cmd(&self.sandbox, &self.bin);
        cmd.env("ANTHROPIC_BASE_URL", self.fake.base_url())
            .env("TEST_ANTHROPIC_KEY", API_KEY)
            // Would win over every login if moonauth let it through.
            .env("ANTHROPIC_API_KEY", "sk-ant-api03-CANARY-must-not-be-used");
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.args(["run", "claude", "--report", report.to_str().unwrap(), "--"])
            .args([
                "-p",
                "write the failover haiku",
                "--output-format",
                "stream-json",
                "--verbose",
            ]);
        let out = cli::run(&mut cmd, Duration::from_secs(180));
        no_canary(&out, &report);
        (out, report)
    }
}

fn rand_suffix() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn in_an_hour() -> SystemTime {
    // Whole minutes: the CLIs print reset times to the minute.
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs - secs % 60)
}

#[test]
fn real_cli_claude_usage_limit_on_a_continues_on_b_with_the_session_resumed() {
    let Some(f) = ClaudeFleet::new() else { return };
    let reset = in_an_hour();
    f.fake.reply(TOKEN_A, Reply::UsageLimit { resets_at: reset });
    f.fake.reply(TOKEN_B, Reply::Ok);
    let (out, report_path) = f.run(&[]);
    ok(&out);
    let r = report(&report_path);
    assert_eq!(r["finished_by"], "b", "{r}");
    assert_eq!(r["api_billing_used"], false);
    let attempts = r["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{r}");
    assert_eq!(attempts[0]["account"], "a");
    assert_eq!(attempts[0]["outcome"], "usage-limit");
    let reported: SystemTime = humantime::parse_rfc3339(attempts[0]["resets_at"].as_str().unwrap()).unwrap();
    assert_eq!(reported, reset, "the reset time the API gave");
    assert_eq!(attempts[1]["account"], "b");
    assert_eq!(attempts[1]["outcome"], "success");
    assert_eq!(attempts[1]["resumed"], true, "{r}");
    let session = attempts[0]["session_id"].as_str().expect("a session id").to_string();
    assert_eq!(
        attempts[1]["session_id"],
        session.as_str(),
        "the same session continued on b"
    );
    // The resumed request carried the earlier conversation to b.
    let body = f.fake.last_body().unwrap().to_string();
    assert!(body.contains("write the failover haiku"), "{body}");
    assert!(
        cli::claude_transcript_exists(&f.a, &session),
        "the session started on a"
    );
    assert!(cli::claude_transcript_exists(&f.b, &session), "and was carried to b");
    // The key was never used, nor the variable that would have won.
    assert_eq!(f.fake.count(API_KEY), 0);
    assert_eq!(f.fake.count("sk-ant-api03-CANARY-must-not-be-used"), 0);
    // The CLI's own output passed through.
    assert!(out.stdout.contains("\"type\":\"result\""), "{}", out.stdout);
    // The store remembers the cooldown.
    let ls = cli::run(
        moonauth_cmd(&f.sandbox, &f.bin).args(["accounts", "ls", "--json"]),
        Duration::from_secs(30),
    );
    ok(&ls);
    let accounts: Value = serde_json::from_str(&ls.stdout).unwrap();
    let a = accounts["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["alias"] == "a")
        .unwrap()
        .clone();
    assert!(a["cooldown_until"].as_str().is_some(), "{a}");
}

#[test]
fn real_cli_claude_all_oauth_exhausted_without_fallback_is_exit_10_with_both_reasons() {
    let Some(f) = ClaudeFleet::new() else { return };
    let reset = in_an_hour();
    f.fake.reply(TOKEN_A, Reply::UsageLimit { resets_at: reset });
    f.fake.reply(TOKEN_B, Reply::UsageLimit { resets_at: reset });
    f.fake.reply(API_KEY, Reply::Ok);
    let (out, report_path) = f.run(&[]);
    assert_eq!(out.exit_code, Some(10), "{}", out.stderr);
    assert!(out.stderr.contains("a: usage-limit until"), "{}", out.stderr);
    assert!(out.stderr.contains("b: usage-limit until"), "{}", out.stderr);
    let r = report(&report_path);
    assert_eq!(r["finished_by"], Value::Null);
    assert_eq!(r["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(f.fake.count(API_KEY), 0, "fallback is off");
}

#[test]
fn real_cli_claude_fallback_finishes_on_the_api_key_and_says_so() {
    let Some(f) = ClaudeFleet::new() else { return };
    let reset = in_an_hour();
    f.fake.reply(TOKEN_A, Reply::UsageLimit { resets_at: reset });
    f.fake.reply(TOKEN_B, Reply::UsageLimit { resets_at: reset });
    f.fake.reply(API_KEY, Reply::Ok);
    let summary = f.sandbox.path().join("summary.md");
    let (out, report_path) = f.run(&[
        ("MOONAUTH_API_FALLBACK", "1"),
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
    ]);
    ok(&out);
    let r = report(&report_path);
    assert_eq!(r["finished_by"], "key", "{r}");
    assert_eq!(r["api_billing_used"], true);
    let attempts = r["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[2]["kind"], "api-key");
    assert_eq!(attempts[2]["resumed"], true, "the key continued the same session: {r}");
    assert!(f.fake.count(API_KEY) >= 1);
    let table = std::fs::read_to_string(&summary).unwrap();
    assert!(table.contains("| 3 | key | api-key | success |"), "{table}");
    assert!(table.contains("API key billing"), "{table}");
    assert!(out.stdout.contains("::warning title=moonauth::"), "{}", out.stdout);
}

#[test]
fn real_cli_claude_auth_failure_never_falls_back_to_the_api_key() {
    let Some(f) = ClaudeFleet::new() else { return };
    f.fake.reply(TOKEN_A, Reply::Unauthorized);
    f.fake.reply(
        TOKEN_B,
        Reply::UsageLimit {
            resets_at: in_an_hour(),
        },
    );
    f.fake.reply(API_KEY, Reply::Ok);
    let (out, report_path) = f.run(&[("MOONAUTH_API_FALLBACK", "1")]);
    assert_eq!(out.exit_code, Some(10), "{}", out.stderr);
    assert_eq!(
        f.fake.count(API_KEY),
        0,
        "an auth failure must never fall back to the key"
    );
    let r = report(&report_path);
    let attempts = r["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["outcome"], "auth-failure", "{r}");
    assert!(
        out.stderr.contains("moonauth login claude --account a"),
        "{}",
        out.stderr
    );
    let ls = cli::run(
        moonauth_cmd(&f.sandbox, &f.bin).args(["accounts", "ls", "--json"]),
        Duration::from_secs(30),
    );
    let accounts: Value = serde_json::from_str(&ls.stdout).unwrap();
    let a = accounts["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["alias"] == "a")
        .unwrap()
        .clone();
    assert_eq!(a["needs_relogin"], true, "{a}");
}

#[test]
fn real_cli_codex_usage_limit_on_a_continues_on_b_with_the_thread_resumed() {
    let Some(bin) = cli::real_cli("codex") else { return };
    let sandbox = Sandbox::new();
    let fake = FakeOpenAi::start();
    let a = sandbox.dir("codex-a");
    let b = sandbox.dir("codex-b");
    let far = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 86_400;
    let token_a = cli::codex_chatgpt_login(&a, "run-a", far);
    let token_b = cli::codex_chatgpt_login(&b, "run-b", far);
    accounts_add(
        &sandbox,
        &bin,
        &[
            "a",
            "--runtime",
            "codex",
            "--dir",
            a.to_str().unwrap(),
            "--priority",
            "1",
        ],
    );
    accounts_add(
        &sandbox,
        &bin,
        &[
            "b",
            "--runtime",
            "codex",
            "--dir",
            b.to_str().unwrap(),
            "--priority",
            "2",
        ],
    );
    fake.reply(
        &token_a,
        Reply::UsageLimit {
            resets_at: in_an_hour(),
        },
    );
    fake.reply(&token_b, Reply::Ok);

    let report_path = sandbox.path().join("report.json");
    let provider = format!(
        r#"model_providers.fake={{name="fake",base_url="{}/v1",wire_api="responses",requires_openai_auth=true,request_max_retries=0,stream_max_retries=0}}"#,
        fake.base_url()
    );
    let mut cmd = moonauth_cmd(&sandbox, &bin);
    cmd.env("OPENAI_API_KEY", "sk-proj-CANARY-must-not-be-used")
        .args(["run", "codex", "--report", report_path.to_str().unwrap(), "--"])
        .args([
            "exec",
            "--skip-git-repo-check",
            "--json",
            "-c",
            "cli_auth_credentials_store=file",
            "-c",
        ])
        .arg(&provider)
        .args(["-c", "model_provider=fake", "write the failover haiku"]);
    let out = cli::run(&mut cmd, Duration::from_secs(180));
    no_canary(&out, &report_path);
    ok(&out);
    let r = report(&report_path);
    let attempts = r["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{r}");
    assert_eq!(attempts[0]["outcome"], "usage-limit");
    assert!(attempts[0]["resets_at"].as_str().is_some(), "{r}");
    assert_eq!(attempts[1]["outcome"], "success");
    assert_eq!(attempts[1]["resumed"], true, "{r}");
    let thread = attempts[0]["session_id"].as_str().expect("thread id").to_string();
    assert_eq!(
        attempts[1]["session_id"],
        thread.as_str(),
        "the same thread continued on b"
    );
    assert!(cli::codex_rollout_exists(&b, &thread));
    assert_eq!(r["finished_by"], "b");
    let body = fake.last_body().unwrap().to_string();
    assert!(
        body.contains("write the failover haiku"),
        "the earlier conversation was sent: {body}"
    );
}

#[test]
fn real_cli_claude_throttle_backs_off_on_the_same_account_without_benching_it() {
    let Some(f) = ClaudeFleet::new() else { return };
    f.fake.reply(TOKEN_A, Reply::Throttle);
    f.fake.reply(TOKEN_B, Reply::Ok);
    let (out, report_path) = f.run(&[("MOONAUTH_THROTTLE_RETRIES", "1"), ("MOONAUTH_THROTTLE_BACKOFF", "0s")]);
    assert_eq!(out.exit_code, Some(1), "the CLI's own status: {}", out.stderr);
    let r = report(&report_path);
    let attempts = r["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "one try and one bounded retry: {r}");
    assert!(
        attempts
            .iter()
            .all(|a| a["account"] == "a" && a["outcome"] == "throttle"),
        "{r}"
    );
    assert_eq!(
        f.fake.count(TOKEN_B),
        0,
        "a throttle is not a reason to switch accounts"
    );
    let ls = cli::run(
        moonauth_cmd(&f.sandbox, &f.bin).args(["accounts", "ls", "--json"]),
        Duration::from_secs(30),
    );
    let accounts: Value = serde_json::from_str(&ls.stdout).unwrap();
    let a = accounts["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["alias"] == "a")
        .unwrap()
        .clone();
    assert!(a["cooldown_until"].is_null(), "not benched: {a}");
}

#[test]
fn real_cli_claude_with_every_account_disabled_lists_them_and_exits_10() {
    let Some(f) = ClaudeFleet::new() else { return };
    for alias in ["a", "b"] {
        let out = cli::run(
            moonauth_cmd(&f.sandbox, &f.bin).args(["accounts", "disable", alias]),
            Duration::from_secs(30),
        );
        ok(&out);
    }
    let (out, report_path) = f.run(&[]);
    assert_eq!(out.exit_code, Some(10), "{}", out.stderr);
    assert!(
        out.stderr.contains("a: disabled") && out.stderr.contains("b: disabled"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("moonauth accounts enable a"), "{}", out.stderr);
    let r = report(&report_path);
    assert_eq!(r["exhausted"], true);
    assert_eq!(r["attempts"].as_array().unwrap().len(), 0, "nothing ran: {r}");
    assert_eq!(f.fake.calls().len(), 0);
}

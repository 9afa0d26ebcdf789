//! Usage windows captured passively from `moonauth run` (issue 14): the pinned real
//! `claude` and `codex` against the loopback fakes, whose answers carry the windows'
//! headers (`anthropic-ratelimit-unified-5h-*`/`-7d-*`, `x-codex-primary-*`/
//! `-secondary-*`). The CLIs report them (Claude's stream-json `rate_limit_event`,
//! Codex's rollout `token_count`); moonauth stores them per account with their source,
//! never sends a request of its own, keeps the last good snapshot when a run ends before
//! the API answers, and says so when the output carries none.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use moonauth::state::Store;
use serde_json::Value;

use crate::support::cli::{self, Sandbox};
use crate::support::fake_anthropic::FakeAnthropic;
use crate::support::fake_api::Reply;
use crate::support::fake_openai::{self, FakeOpenAi};
use crate::support::moonauth_bin;

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

fn moonauth(sandbox: &Sandbox, bin: &Path, args: &[&str]) -> cli::Output {
    cli::run(moonauth_cmd(sandbox, bin).args(args), Duration::from_secs(30))
}

fn report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("the run wrote its report")).expect("report JSON")
}

/// The account's row in `accounts ls --json` at `now` (pinned).
fn row(sandbox: &Sandbox, bin: &Path, alias: &str, now: Option<SystemTime>) -> Value {
    let mut cmd = moonauth_cmd(sandbox, bin);
    if let Some(now) = now {
        cmd.env("MOONAUTH_NOW", moonauth::time::rfc3339(now));
    }
    let out = cli::run(cmd.args(["accounts", "ls", "--json"]), Duration::from_secs(30));
    let ls: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    ls["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alias"] == alias)
        .unwrap()
        .clone()
}

fn window<'a>(row: &'a Value, name: &str) -> &'a Value {
    row["usage_windows"]["windows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == name)
        .unwrap_or_else(|| panic!("no window {name}: {row:#}"))
}

fn claude_run(sandbox: &Sandbox, bin: &Path, base_url: &str, stream_json: bool) -> (cli::Output, Value) {
    let report_path = sandbox.path().join(format!(
        "report-{}.json",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut cmd = moonauth_cmd(sandbox, bin);
    cmd.env("ANTHROPIC_BASE_URL", base_url)
        .args(["run", "claude", "--report", report_path.to_str().unwrap(), "--"])
        .args(["-p", "count the windows"]);
    if stream_json {
        cmd.args(["--output-format", "stream-json", "--verbose"]);
    }
    let out = cli::run(&mut cmd, Duration::from_secs(120));
    let r = report(&report_path);
    (out, r)
}

#[test]
fn real_cli_claude_windows_are_stored_with_their_source_and_freshness_and_a_failed_run_keeps_them() {
    let Some(bin) = cli::real_cli("claude") else { return };
    let sandbox = Sandbox::new();
    let fake = FakeAnthropic::start();
    fake.default_reply(Reply::Ok);
    let dir = sandbox.dir("claude-a");
    cli::claude_oauth_login(&dir, "sk-ant-oat01-CANARY-usage-a");
    let out = moonauth(
        &sandbox,
        &bin,
        &[
            "accounts",
            "add",
            "a",
            "--runtime",
            "claude",
            "--dir",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr);

    let (out, r) = claude_run(&sandbox, &bin, &fake.base_url(), true);
    assert_eq!(
        out.exit_code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    let run_id = r["run_id"].as_str().unwrap().to_string();
    assert!(run_id.starts_with("run-"), "{r:#}");
    assert_eq!(r["usage_windows"][0]["status"], "captured", "{r:#}");
    // The fake's only requests are the CLI's own: moonauth sent no probe.
    let requests = fake.calls().len() + fake.other_requests().len();

    let captured_at = SystemTime::now();
    let a = row(&sandbox, &bin, "a", None);
    assert_eq!(a["usage_windows"]["freshness"], "fresh", "{a:#}");
    assert_eq!(a["usage_windows"]["run_id"], run_id.as_str());
    assert_eq!(a["usage_windows"]["outcome"], "success");
    assert_eq!(window(&a, "five_hour")["used_percent"], 25.0);
    assert_eq!(window(&a, "seven_day")["used_percent"], 40.0);
    assert_eq!(window(&a, "five_hour")["status"], "allowed");
    // Over the pinned clock: stale after 5 minutes, unknown (null, never 0) after 60.
    let stale = row(&sandbox, &bin, "a", Some(captured_at + Duration::from_secs(30 * 60)));
    assert_eq!(stale["usage_windows"]["freshness"], "stale");
    let unknown = row(&sandbox, &bin, "a", Some(captured_at + Duration::from_secs(61 * 60)));
    assert_eq!(unknown["usage_windows"]["freshness"], "unknown");
    assert_eq!(window(&unknown, "five_hour")["used_percent"], Value::Null);

    // A run that ends before the API answers (nothing listens) leaves the snapshot.
    let (_, r) = claude_run(&sandbox, &bin, "http://127.0.0.1:9", true);
    assert_ne!(r["usage_windows"][0]["status"], "captured", "{r:#}");
    let state = Store::open(&sandbox.path().join("state"))
        .unwrap()
        .read_unlocked()
        .unwrap();
    let history = &state.usage_windows["a"];
    assert_eq!(history.snapshots.len(), 1);
    assert_eq!(history.latest().unwrap().source.run_id, run_id);
    assert!(history.last_error.is_none());

    // Plain text output carries no windows: the report says so and nothing changes.
    let (out, r) = claude_run(&sandbox, &bin, &fake.base_url(), false);
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr);
    assert_eq!(r["usage_windows"][0]["status"], "none", "{r:#}");
    assert!(
        r["usage_windows"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("stream-json"),
        "{r:#}"
    );
    let state = Store::open(&sandbox.path().join("state"))
        .unwrap()
        .read_unlocked()
        .unwrap();
    assert_eq!(state.usage_windows["a"].snapshots.len(), 1);
    assert_eq!(
        fake.calls().len() + fake.other_requests().len(),
        requests + 1,
        "one request per CLI run, no probe"
    );

    // The decision of each run is in the log, with the run id.
    let log = Store::open(&sandbox.path().join("state"))
        .unwrap()
        .decisions(10)
        .unwrap();
    let first: Value = serde_json::from_str(&log[0]).unwrap();
    assert_eq!(
        (first["run_id"].as_str(), first["by"].as_str()),
        (Some(run_id.as_str()), Some("run"))
    );
    let all = log.join("\n");
    assert!(!all.contains("CANARY"), "a token reached the decision log");
}

#[test]
fn real_cli_claude_a_usage_limit_stores_the_rejected_window() {
    let Some(bin) = cli::real_cli("claude") else { return };
    let sandbox = Sandbox::new();
    let fake = FakeAnthropic::start();
    let dir = sandbox.dir("claude-a");
    let token = "sk-ant-oat01-CANARY-usage-limit";
    cli::claude_oauth_login(&dir, token);
    let out = moonauth(
        &sandbox,
        &bin,
        &[
            "accounts",
            "add",
            "a",
            "--runtime",
            "claude",
            "--dir",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr);
    let resets_at = SystemTime::now() + Duration::from_secs(3600);
    fake.reply(token, Reply::UsageLimit { resets_at });
    let (out, r) = claude_run(&sandbox, &bin, &fake.base_url(), true);
    assert_eq!(
        out.exit_code,
        Some(10),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(r["usage_windows"][0]["status"], "captured", "{r:#}");
    let a = row(&sandbox, &bin, "a", None);
    assert_eq!(a["usage_windows"]["outcome"], "usage-limit");
    assert_eq!(window(&a, "five_hour")["used_percent"], 100.0);
    assert_eq!(window(&a, "five_hour")["status"], "rejected");
}

#[test]
fn real_cli_codex_windows_come_from_the_rollout() {
    let Some(bin) = cli::real_cli("codex") else { return };
    let sandbox = Sandbox::new();
    let fake = FakeOpenAi::start();
    fake.default_reply(Reply::Ok);
    let dir: PathBuf = sandbox.dir("codex-a");
    let far = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 86_400;
    let _token = cli::codex_chatgpt_login(&dir, "usage-a", far);
    let out = moonauth(
        &sandbox,
        &bin,
        &[
            "accounts",
            "add",
            "a",
            "--runtime",
            "codex",
            "--dir",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr);
    let report_path = sandbox.path().join("report.json");
    let provider = format!(
        r#"model_providers.fake={{name="fake",base_url="{}/v1",wire_api="responses",requires_openai_auth=true,request_max_retries=0,stream_max_retries=0}}"#,
        fake.base_url()
    );
    let mut cmd = moonauth_cmd(&sandbox, &bin);
    cmd.args(["run", "codex", "--report", report_path.to_str().unwrap(), "--"])
        .args([
            "exec",
            "--skip-git-repo-check",
            "--json",
            "-c",
            "cli_auth_credentials_store=file",
            "-c",
        ])
        .arg(&provider)
        .args(["-c", "model_provider=fake", "count the windows"]);
    let out = cli::run(&mut cmd, Duration::from_secs(120));
    assert_eq!(
        out.exit_code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    let r = report(&report_path);
    assert_eq!(r["usage_windows"][0]["status"], "captured", "{r:#}");
    let a = row(&sandbox, &bin, "a", None);
    assert_eq!(a["usage_windows"]["freshness"], "fresh", "{a:#}");
    let primary = window(&a, "primary");
    assert_eq!(primary["used_percent"], f64::from(fake_openai::PRIMARY_USED_PERCENT));
    assert_eq!(primary["window_minutes"], 300);
    assert_eq!(
        window(&a, "secondary")["used_percent"],
        f64::from(fake_openai::SECONDARY_USED_PERCENT)
    );
}

#[test]
fn real_cli_claude_runs_take_turns_by_round_robin_and_each_decision_is_logged() {
    let Some(bin) = cli::real_cli("claude") else { return };
    let sandbox = Sandbox::new();
    let fake = FakeAnthropic::start();
    fake.default_reply(Reply::Ok);
    for alias in ["a", "b"] {
        let dir = sandbox.dir(&format!("claude-{alias}"));
        cli::claude_oauth_login(&dir, &format!("sk-ant-oat01-CANARY-turns-{alias}"));
        let out = moonauth(
            &sandbox,
            &bin,
            &[
                "accounts",
                "add",
                alias,
                "--runtime",
                "claude",
                "--dir",
                dir.to_str().unwrap(),
            ],
        );
        assert_eq!(out.exit_code, Some(0), "{}", out.stderr);
    }
    let finished: Vec<String> = (0..3)
        .map(|_| {
            let (out, r) = claude_run(&sandbox, &bin, &fake.base_url(), true);
            assert_eq!(out.exit_code, Some(0), "{}", out.stderr);
            r["finished_by"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(finished, ["a", "b", "a"]);
    let log = Store::open(&sandbox.path().join("state"))
        .unwrap()
        .decisions(10)
        .unwrap();
    let chosen: Vec<String> = log
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|d| format!("{}:{}", d["by"].as_str().unwrap(), d["chosen"].as_str().unwrap()))
        .collect();
    assert_eq!(chosen, ["run:a", "run:b", "run:a"]);
}

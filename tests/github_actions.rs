//! `moonauth run`, `ci check` and `preflight` as steps of a GitHub Actions job: fake
//! `GITHUB_*` environments with temp `GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY` and
//! `GITHUB_ENV` files, a fake OIDC token service on 127.0.0.1, and the pinned real
//! `claude` against the loopback fake API with a setup-token (`CLAUDE_CODE_OAUTH_TOKEN`)
//! and an API key in the environment and no account store: the subscription first, the
//! key only on a usage limit with fallback on, never after an auth failure, and work
//! handed from one job to the next (`--save-state`, `--resume-from`). Canary tokens are
//! looked for in every output file, log and bundle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::support::cli::{self, Sandbox};
use crate::support::fake_anthropic::FakeAnthropic;
use crate::support::fake_api::Reply;
use crate::support::http::{Request, Response, Server};
use crate::support::moonauth_bin;

const OAUTH_TOKEN: &str = "sk-ant-oat01-CANARY-gha-setup-token-0123456789";
const API_KEY: &str = "sk-ant-api03-CANARY-gha-api-key-0123456789";
const OIDC_REQUEST_TOKEN: &str = "CANARY-gha-oidc-request-token-0123456789";
const PROMPT: &str = "review the pull request haiku";

/// Every event a workflow can start on that these tests walk through, and whether the
/// Claude GitHub App token exchange accepts it by default.
const EVENTS: &[(&str, bool)] = &[
    ("pull_request", true),
    ("issue_comment", true),
    ("pull_request_comment", true),
    ("issues", true),
    ("pull_request_review", true),
    ("pull_request_review_comment", true),
    ("repository_dispatch", true),
    ("workflow_dispatch", true),
    ("schedule", true),
    ("workflow_run", true),
    ("push", false),
    ("pull_request_target", false),
    ("release", false),
    ("merge_group", false),
    ("check_suite", false),
];

/// The files of one job step, as a runner provides them.
struct Step {
    output: PathBuf,
    summary: PathBuf,
    env_file: PathBuf,
    temp: PathBuf,
}

impl Step {
    fn new(sandbox: &Sandbox, name: &str) -> Step {
        let dir = sandbox.dir(&format!("runner-{name}"));
        let temp = dir.join("temp");
        std::fs::create_dir_all(&temp).unwrap();
        let step = Step {
            output: dir.join("github_output"),
            summary: dir.join("step_summary.md"),
            env_file: dir.join("github_env"),
            temp,
        };
        for f in [&step.output, &step.summary, &step.env_file] {
            std::fs::write(f, "").unwrap();
        }
        step
    }

    /// The fake `GITHUB_*` environment of a step started by `event`.
    fn env(&self, event: &str) -> Vec<(String, String)> {
        let s = |p: &Path| p.display().to_string();
        [
            ("GITHUB_ACTIONS", "true".to_string()),
            ("CI", "true".into()),
            ("GITHUB_EVENT_NAME", event.into()),
            ("GITHUB_REPOSITORY", "octo/moonauth-demo".into()),
            ("GITHUB_ACTOR", "octocat".into()),
            ("GITHUB_REF", "refs/heads/main".into()),
            ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567".into()),
            ("GITHUB_WORKFLOW", "review".into()),
            ("GITHUB_RUN_ID", "4242".into()),
            ("GITHUB_JOB", "review".into()),
            ("RUNNER_OS", "Linux".into()),
            ("RUNNER_NAME", "fake-runner".into()),
            ("RUNNER_ENVIRONMENT", "github-hosted".into()),
            ("RUNNER_TEMP", s(&self.temp)),
            ("GITHUB_OUTPUT", s(&self.output)),
            ("GITHUB_STEP_SUMMARY", s(&self.summary)),
            ("GITHUB_ENV", s(&self.env_file)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The step outputs written so far (`name=value` lines; a heredoc value whole).
    fn outputs(&self) -> BTreeMap<String, String> {
        let text = std::fs::read_to_string(&self.output).unwrap();
        let mut out = BTreeMap::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if let Some((name, delimiter)) = line.split_once("<<") {
                let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
                out.insert(name.to_string(), value.join("\n"));
            } else if let Some((name, value)) = line.split_once('=') {
                out.insert(name.to_string(), value.to_string());
            }
        }
        out
    }

    /// Everything the step left in its files.
    fn files_text(&self) -> String {
        [&self.output, &self.summary, &self.env_file]
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect()
    }
}

/// Every file under `dir`, as text.
fn tree_text(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.push_str(&tree_text(&path));
        } else {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    all
}

/// Fails when a canary is anywhere in `text` but in the `::add-mask::` lines, which the
/// runner takes out of the log (they are how it learns what to mask).
fn assert_no_canary(what: &str, text: &str) {
    for line in text.lines() {
        if line.starts_with("::add-mask::") {
            continue;
        }
        assert!(!line.contains("CANARY"), "a credential reached {what}: {line}");
    }
}

/// The pinned claude, the fake API and a job's worth of sandbox.
struct Job {
    sandbox: Sandbox,
    bin: PathBuf,
    fake: FakeAnthropic,
}

struct Ran {
    out: cli::Output,
    report: Value,
    outputs: BTreeMap<String, String>,
}

impl Job {
    fn new() -> Option<Job> {
        let bin = cli::real_cli("claude")?;
        Some(Job {
            sandbox: Sandbox::new(),
            bin,
            fake: FakeAnthropic::start(),
        })
    }

    /// `moonauth run claude` as a step: no store, no login directory, the token and key
    /// given by `env`, the step's `GITHUB_*` environment.
    fn run(&self, step: &Step, env: &[(&str, &str)], flags: &[&str]) -> Ran {
        let report = self.sandbox.path().join(format!("report-{}.json", fastrand::u64(..)));
        let mut cmd = self.sandbox.command(moonauth_bin());
        let path = format!(
            "{}:{}",
            self.bin.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.env("PATH", path)
            .env("MOONAUTH_STATE_DIR", self.sandbox.path().join("no-store"))
            .env("CLAUDE_CONFIG_DIR", self.sandbox.path().join("no-login"))
            .env("ANTHROPIC_BASE_URL", self.fake.base_url())
            .env("DISABLE_TELEMETRY", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("MOONAUTH_CLI_MAX_RETRIES", "0")
            .env("MOONAUTH_THROTTLE_RETRIES", "0")
            .env(
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                "http://127.0.0.1:9/token?api-version=2.0",
            )
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", OIDC_REQUEST_TOKEN)
            .envs(step.env("pull_request"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(["run", "claude", "--report", report.to_str().unwrap()])
            .args(flags)
            .arg("--")
            .args(["-p", PROMPT, "--output-format", "stream-json", "--verbose"]);
        let out = cli::run(&mut cmd, Duration::from_secs(180));
        let report_text = std::fs::read_to_string(&report).unwrap_or_default();
        assert_no_canary("stdout", &out.stdout);
        assert_no_canary("stderr", &out.stderr);
        assert_no_canary("the report", &report_text);
        assert_no_canary("the step's files", &step.files_text());
        let secrets: Vec<&str> = env
            .iter()
            .map(|(_, v)| *v)
            .filter(|v| v.contains("CANARY"))
            .chain([OIDC_REQUEST_TOKEN])
            .collect();
        assert_masks_come_first(&out.stdout, &secrets);
        let report = serde_json::from_str(&report_text)
            .unwrap_or_else(|e| panic!("report: {e}\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr));
        Ran {
            out,
            report,
            outputs: step.outputs(),
        }
    }
}

/// `::add-mask::` for each of `secrets` (the token, the key, the OIDC request token),
/// before any other line.
fn assert_masks_come_first(stdout: &str, secrets: &[&str]) {
    let masks: Vec<&str> = stdout.lines().take_while(|l| l.starts_with("::add-mask::")).collect();
    for value in secrets {
        assert!(
            masks.contains(&format!("::add-mask::{value}").as_str()),
            "{value} is not masked before the first other line:\n{stdout}"
        );
    }
    let after = stdout.lines().skip(masks.len()).collect::<Vec<_>>().join("\n");
    assert!(!after.contains("::add-mask::"), "a mask came late:\n{stdout}");
}

fn in_an_hour() -> SystemTime {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs - secs % 60)
}

#[test]
fn real_cli_github_oauth_token_at_its_limit_then_the_key_finishes_and_the_outputs_say_so() {
    let Some(job) = Job::new() else { return };
    job.fake.reply(
        OAUTH_TOKEN,
        Reply::UsageLimit {
            resets_at: in_an_hour(),
        },
    );
    job.fake.reply(API_KEY, Reply::Ok);
    let step = Step::new(&job.sandbox, "one");
    let ran = job.run(
        &step,
        &[
            ("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN),
            ("ANTHROPIC_API_KEY", API_KEY),
            ("MOONAUTH_API_FALLBACK", "1"),
        ],
        &[],
    );
    assert_eq!(ran.out.exit_code, Some(0), "{}", ran.out.stderr);
    let r = &ran.report;
    let attempts = r["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{r}");
    assert_eq!(attempts[0]["account"], "env:CLAUDE_CODE_OAUTH_TOKEN");
    assert_eq!(attempts[0]["outcome"], "usage-limit");
    assert_eq!(attempts[1]["account"], "env:ANTHROPIC_API_KEY");
    assert_eq!(attempts[1]["resumed"], true, "the key continued the session: {r}");
    assert_eq!(job.fake.count(OAUTH_TOKEN), 1, "the subscription went first");
    assert!(job.fake.count(API_KEY) >= 1);
    let o = &ran.outputs;
    assert_eq!(o["finished_by"], "env:ANTHROPIC_API_KEY", "{o:?}");
    assert_eq!(o["credential_kind"], "api-key");
    assert_eq!(o["api_billing_used"], "true");
    assert_eq!(o["fallback_reason"], "usage-limit");
    assert_eq!(o["exhausted"], "false");
    assert_eq!(o["session_id"], attempts[0]["session_id"].as_str().unwrap());
    let summary = std::fs::read_to_string(&step.summary).unwrap();
    assert!(
        summary.contains("| 2 | env:ANTHROPIC_API_KEY | api-key | success |"),
        "{summary}"
    );
    assert!(
        ran.out.stdout.contains("::warning title=moonauth::"),
        "{}",
        ran.out.stdout
    );
}

#[test]
fn real_cli_github_oauth_token_alone_finishes_on_the_subscription() {
    let Some(job) = Job::new() else { return };
    job.fake.reply(OAUTH_TOKEN, Reply::Ok);
    job.fake.reply(API_KEY, Reply::Ok);
    let step = Step::new(&job.sandbox, "one");
    let ran = job.run(
        &step,
        &[
            ("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN),
            ("ANTHROPIC_API_KEY", API_KEY),
            ("MOONAUTH_API_FALLBACK", "1"),
        ],
        &[],
    );
    assert_eq!(ran.out.exit_code, Some(0), "{}", ran.out.stderr);
    assert_eq!(ran.outputs["finished_by"], "env:CLAUDE_CODE_OAUTH_TOKEN");
    assert_eq!(ran.outputs["credential_kind"], "oauth-token");
    assert_eq!(ran.outputs["api_billing_used"], "false");
    assert_eq!(ran.outputs["fallback_reason"], "");
    assert_eq!(
        job.fake.count(API_KEY),
        0,
        "the key is not used while the subscription works"
    );
    assert!(
        ran.out.stdout.contains("::notice title=moonauth::"),
        "{}",
        ran.out.stdout
    );
}

#[test]
fn real_cli_github_seven_day_limit_as_a_bare_429_is_a_usage_limit() {
    let Some(job) = Job::new() else { return };
    let reset = in_an_hour() + Duration::from_secs(3 * 86_400);
    job.fake.reply(OAUTH_TOKEN, Reply::SevenDayLimit { resets_at: reset });
    job.fake.reply(API_KEY, Reply::Ok);
    let step = Step::new(&job.sandbox, "one");
    let ran = job.run(
        &step,
        &[
            ("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN),
            ("ANTHROPIC_API_KEY", API_KEY),
            ("MOONAUTH_API_FALLBACK", "1"),
        ],
        &[],
    );
    let r = &ran.report;
    assert_eq!(r["attempts"][0]["outcome"], "usage-limit", "{r}\n{}", ran.out.stdout);
    assert_eq!(ran.out.exit_code, Some(0), "{}", ran.out.stderr);
    assert_eq!(ran.outputs["finished_by"], "env:ANTHROPIC_API_KEY");
}

#[test]
fn real_cli_github_without_fallback_the_run_is_exhausted_and_the_outputs_say_why() {
    let Some(job) = Job::new() else { return };
    let reset = in_an_hour();
    job.fake.reply(OAUTH_TOKEN, Reply::UsageLimit { resets_at: reset });
    job.fake.reply(API_KEY, Reply::Ok);
    let step = Step::new(&job.sandbox, "one");
    let ran = job.run(
        &step,
        &[("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN), ("ANTHROPIC_API_KEY", API_KEY)],
        &[],
    );
    assert_eq!(ran.out.exit_code, Some(10), "{}", ran.out.stderr);
    assert_eq!(job.fake.count(API_KEY), 0, "fallback is off");
    let o = &ran.outputs;
    assert_eq!(o["exhausted"], "true", "{o:?}");
    assert_eq!(o["finished_by"], "");
    assert_eq!(o["api_billing_used"], "false");
    assert_eq!(o["fallback_reason"], "not-used: fallback-off");
    let reported: SystemTime = humantime::parse_rfc3339(&o["reset_at"]).unwrap();
    assert_eq!(reported, reset);
    assert_eq!(ran.report["api_key_not_used"]["code"], "fallback-off");
    assert!(
        ran.out.stderr.contains("API key not used: API fallback is off"),
        "{}",
        ran.out.stderr
    );
    assert!(
        ran.out.stdout.contains("::error title=moonauth::"),
        "{}",
        ran.out.stdout
    );
}

#[test]
fn real_cli_github_revoked_oauth_token_fails_with_the_fix_and_the_key_gets_no_request() {
    let Some(job) = Job::new() else { return };
    job.fake.reply(OAUTH_TOKEN, Reply::Unauthorized);
    job.fake.reply(API_KEY, Reply::Ok);
    let step = Step::new(&job.sandbox, "one");
    let ran = job.run(
        &step,
        &[
            ("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN),
            ("ANTHROPIC_API_KEY", API_KEY),
            ("MOONAUTH_API_FALLBACK", "1"),
        ],
        &[],
    );
    assert_ne!(ran.out.exit_code, Some(0), "an auth failure never looks like success");
    assert_eq!(ran.out.exit_code, Some(10), "{}", ran.out.stderr);
    assert_eq!(
        job.fake.count(API_KEY),
        0,
        "an auth failure never falls back to the key"
    );
    assert_eq!(ran.report["attempts"][0]["outcome"], "auth-failure");
    assert!(ran.out.stderr.contains("claude setup-token"), "{}", ran.out.stderr);
    assert_eq!(ran.outputs["exhausted"], "true");
    assert_eq!(ran.outputs["fallback_reason"], "not-used: auth-failure");
}

#[test]
fn real_cli_github_save_state_in_one_job_and_resume_from_it_in_the_next() {
    let Some(job) = Job::new() else { return };
    job.fake.reply(
        OAUTH_TOKEN,
        Reply::UsageLimit {
            resets_at: in_an_hour(),
        },
    );
    job.fake.reply(API_KEY, Reply::Ok);
    let bundle = job.sandbox.path().join("artifact");

    // Job 1: the subscription only; it runs out and saves its work.
    let step1 = Step::new(&job.sandbox, "subscription");
    let first = job.run(
        &step1,
        &[("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN)],
        &["--save-state", bundle.to_str().unwrap()],
    );
    assert_eq!(first.out.exit_code, Some(10), "{}", first.out.stderr);
    let session = first.outputs["session_id"].clone();
    assert!(!session.is_empty(), "{:?}", first.outputs);
    assert!(bundle.join("moonauth-state.json").is_file());
    let bundle_text = tree_text(&bundle);
    assert!(bundle_text.contains(PROMPT), "the transcript travels with the bundle");
    assert!(!bundle_text.contains("CANARY"), "a credential reached the bundle");
    let calls_after_job1 = job.fake.calls().len();

    // Job 2, on another "runner": the key, fallback on; the token too, but it was tried.
    let step2 = Step::new(&job.sandbox, "fallback");
    let second = job.run(
        &step2,
        &[
            ("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN),
            ("ANTHROPIC_API_KEY", API_KEY),
            ("MOONAUTH_API_FALLBACK", "1"),
        ],
        &["--resume-from", bundle.to_str().unwrap()],
    );
    assert_eq!(second.out.exit_code, Some(0), "{}", second.out.stderr);
    assert_eq!(job.fake.count(OAUTH_TOKEN), 1, "job 2 does not try the token again");
    let r = &second.report;
    let attempts = r["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{r}");
    assert_eq!(attempts[0]["carried"], true);
    assert_eq!(attempts[1]["account"], "env:ANTHROPIC_API_KEY");
    assert_eq!(attempts[1]["resumed"], true, "{r}\n{}", second.out.stderr);
    assert_eq!(
        attempts[1]["session_id"],
        session.as_str(),
        "the same session continued"
    );
    let calls = job.fake.calls();
    assert!(calls.len() > calls_after_job1);
    let body = String::from_utf8_lossy(&calls.last().unwrap().body).to_string();
    assert!(
        body.contains(PROMPT),
        "the second job's request carries the first prompt: {body}"
    );
    assert_eq!(second.outputs["finished_by"], "env:ANTHROPIC_API_KEY");
    assert_eq!(second.outputs["session_id"], session);
    let summary = std::fs::read_to_string(&step2.summary).unwrap();
    assert!(
        summary.contains("| 1 | env:CLAUDE_CODE_OAUTH_TOKEN (earlier job) | oauth | usage-limit |"),
        "{summary}"
    );

    // Job 3 resuming the same bundle again finds nothing left to try: no loop.
    let step3 = Step::new(&job.sandbox, "again");
    let third = job.run(
        &step3,
        &[("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN)],
        &["--resume-from", bundle.to_str().unwrap()],
    );
    assert_eq!(third.out.exit_code, Some(10), "{}", third.out.stderr);
    assert_eq!(job.fake.count(OAUTH_TOKEN), 1);
}

/// A stand-in `claude` that records its environment: the OIDC request variables never
/// reach the CLI, and the masks are printed before its first line.
#[test]
fn github_oidc_request_variables_never_reach_the_cli() {
    use crate::support::sandbox::Sandbox as Sb;
    let sb = Sb::new();
    let dump = sb.root().join("claude.env");
    sb.stand_in(
        "claude",
        &format!(
            "env > '{}'\necho '{{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"num_turns\":1,\"result\":\"ok\",\"session_id\":\"s-1\"}}'",
            dump.display()
        ),
    );
    let step_dir = sb.empty_dir("step");
    let output = step_dir.join("out");
    let out = sb
        .moonauth()
        .env("MOONAUTH_STATE_DIR", sb.root().join("no-store"))
        .env("CLAUDE_CONFIG_DIR", sb.root().join("no-login"))
        .env("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output)
        .env("RUNNER_TEMP", &step_dir)
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", "http://127.0.0.1:9/token")
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", OIDC_REQUEST_TOKEN)
        .args(["run", "claude", "--", "-p", "hi"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = std::fs::read_to_string(&dump).unwrap();
    assert!(!env.contains("ACTIONS_ID_TOKEN_REQUEST"), "{env}");
    assert!(
        env.contains(&format!("CLAUDE_CODE_OAUTH_TOKEN={OAUTH_TOKEN}")),
        "the token is handed over"
    );
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("::add-mask::"), "{stdout}");
    assert!(
        stdout.contains(&format!("::add-mask::{OIDC_REQUEST_TOKEN}")),
        "{stdout}"
    );
    let outputs = std::fs::read_to_string(&output).unwrap();
    assert!(outputs.contains("credential_kind=oauth-token\n"), "{outputs}");
    assert!(!outputs.contains("CANARY"), "{outputs}");
}

fn ci_check(step: &Step, event: &str, extra: &[(&str, &str)], flags: &[&str]) -> (i32, Value, String) {
    use crate::support::sandbox::Sandbox as Sb;
    let sb = Sb::new();
    let out = sb
        .moonauth()
        .envs(step.env(event))
        .envs(extra.iter().copied())
        .args(["ci", "check", "--json"])
        .args(flags)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {all}"));
    (out.status.code().unwrap(), json, all)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check: {report:#}"))
}

#[test]
fn github_ci_check_judges_every_event_against_the_allow_list() {
    let sb = Sandbox::new();
    for (event, accepted) in EVENTS {
        let step = Step::new(&sb, event);
        let (code, r, all) = ci_check(&step, event, &[("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN)], &[]);
        assert_eq!(code, 0, "{event}: {all}");
        assert_eq!(r["schema"], "moonauth.ci.v1");
        assert_eq!(r["ok"], true);
        assert_eq!(r["exit_code"], 0);
        assert_eq!(r["event"], *event);
        assert_eq!(r["runner"]["environment"], "github-hosted");
        let c = check(&r, "event");
        let expected = if *accepted { "ok" } else { "warn" };
        assert_eq!(c["status"], expected, "{event}: {c}");
        if !accepted {
            let fix = c["fix"].as_str().unwrap();
            assert!(
                fix.contains("repository_dispatch") && fix.contains("github_token"),
                "{fix}"
            );
        }
        assert_eq!(check(&r, "oidc")["status"], "warn", "no id-token permission: {r}");
        assert_no_canary("ci check", &all);
        assert_no_canary("the step's files", &step.files_text());
    }
    // The list is a setting.
    let step = Step::new(&sb, "custom");
    let (_, r, _) = ci_check(
        &step,
        "push",
        &[
            ("MOONAUTH_GITHUB_EVENTS", "push,workflow_run"),
            ("ANTHROPIC_API_KEY", API_KEY),
        ],
        &[],
    );
    assert_eq!(check(&r, "event")["status"], "ok", "{r}");
    assert_eq!(r["app_events"], json!(["push", "workflow_run"]));
}

#[test]
fn github_ci_check_names_the_credentials_and_warns_when_both_are_set() {
    let sb = Sandbox::new();
    let step = Step::new(&sb, "creds");
    let (code, r, all) = ci_check(
        &step,
        "pull_request",
        &[("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN), ("ANTHROPIC_API_KEY", API_KEY)],
        &[],
    );
    assert_eq!(code, 0, "{all}");
    let c = check(&r, "credentials");
    assert_eq!(c["status"], "warn", "{c}");
    assert!(c["fix"].as_str().unwrap().contains("moonauth run"), "{c}");
    assert_eq!(r["credentials"]["cli_would_use"], "api-key");
    assert_eq!(r["credentials"]["oauth_token"], true);
    assert_no_canary("ci check", &all);

    let (code, r, _) = ci_check(&step, "pull_request", &[], &[]);
    assert_eq!(code, 4, "no credential at all: {r}");
    assert_eq!(r["ok"], false);
    assert_eq!(check(&r, "credentials")["status"], "fail");
}

/// What the fake OIDC service was asked: the bearer and the audience of each request.
type Asked = Arc<Mutex<Vec<(Option<String>, String)>>>;

/// A fake `ACTIONS_ID_TOKEN_REQUEST_URL` on 127.0.0.1: answers a JWT only to the right
/// bearer and the expected audience, and records what it was asked.
struct FakeOidc {
    server: Server,
    asked: Asked,
}

impl FakeOidc {
    fn start(audience: &'static str) -> FakeOidc {
        let asked: Asked = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&asked);
        let server = Server::start(Arc::new(move |req: &Request| {
            let aud = req
                .target
                .split(['?', '&'])
                .find_map(|p| p.strip_prefix("audience="))
                .unwrap_or("")
                .to_string();
            record.lock().unwrap().push((req.credential(), aud.clone()));
            if req.method != "GET" || req.path() != "/token" {
                return Response::new(404, "text/plain", "not found");
            }
            if req.credential().as_deref() != Some(OIDC_REQUEST_TOKEN) {
                return Response::json(401, &json!({"message": "bad bearer"}));
            }
            if aud != audience {
                return Response::json(400, &json!({"message": "unexpected audience"}));
            }
            let claims = json!({
                "aud": aud, "iss": "https://token.actions.githubusercontent.com",
                "sub": "repo:octo/moonauth-demo:pull_request", "event_name": "pull_request",
                "repository": "octo/moonauth-demo", "actor": "octocat", "ref": "refs/pull/7/merge",
                "sha": "0123456789abcdef0123456789abcdef01234567",
                "job_workflow_ref": "octo/moonauth-demo/.github/workflows/review.yml@refs/pull/7/merge",
                "run_id": "4242", "exp": 4102444800u64, "jti": "CANARY-jti-should-not-print",
            });
            let jwt = format!(
                "eyJhbGciOiJSUzI1NiJ9.{}.CANARY-signature-0123456789",
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            Response::json(200, &json!({"count": 1, "value": jwt}))
        }));
        FakeOidc { server, asked }
    }

    fn url(&self) -> String {
        format!("{}/token?api-version=2.0", self.server.base_url())
    }
}

#[test]
fn github_ci_check_oidc_requests_a_token_and_prints_its_claims_never_the_token() {
    let sb = Sandbox::new();
    let oidc = FakeOidc::start("claude-code-github-action");
    let step = Step::new(&sb, "oidc");
    let url = oidc.url();
    let vars = [
        ("ACTIONS_ID_TOKEN_REQUEST_URL", url.as_str()),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", OIDC_REQUEST_TOKEN),
        ("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN),
    ];
    let (code, r, all) = ci_check(&step, "pull_request", &vars, &["--oidc"]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(check(&r, "oidc")["status"], "ok", "{r}");
    let claims = &r["oidc"]["claims"];
    assert_eq!(claims["sub"], "repo:octo/moonauth-demo:pull_request");
    assert_eq!(claims["event_name"], "pull_request");
    assert_eq!(
        claims["job_workflow_ref"],
        "octo/moonauth-demo/.github/workflows/review.yml@refs/pull/7/merge"
    );
    assert_eq!(claims["run_id"], "4242");
    assert!(claims.get("jti").is_none(), "only the shown claims");
    assert_no_canary("ci check --oidc", &all);
    assert!(!all.contains("eyJhbGciOiJSUzI1NiJ9"), "the token was printed: {all}");
    let asked = oidc.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        vec![(
            Some(OIDC_REQUEST_TOKEN.to_string()),
            "claude-code-github-action".to_string()
        )]
    );

    // A configured audience the service does not expect: the check fails, exit 1.
    let mut vars = vars.to_vec();
    vars.push(("MOONAUTH_OIDC_AUDIENCE", "https://example.test/other"));
    let (code, r, all) = ci_check(&step, "pull_request", &vars, &["--oidc"]);
    assert_eq!(code, 1, "{all}");
    assert_eq!(check(&r, "oidc")["status"], "fail");
    assert!(
        check(&r, "oidc")["detail"].as_str().unwrap().contains("HTTP 400"),
        "{r}"
    );
    assert_eq!(
        oidc.asked.lock().unwrap().last().unwrap().1,
        "https%3A%2F%2Fexample.test%2Fother"
    );
    // Human output too.
    let out = crate::support::sandbox::Sandbox::new()
        .moonauth()
        .envs(step.env("pull_request"))
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", &url)
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", OIDC_REQUEST_TOKEN)
        .env("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN)
        .args(["ci", "check", "--oidc"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("sub") && text.contains("repo:octo/moonauth-demo:pull_request"),
        "{text}"
    );
    assert_no_canary("ci check --oidc (text)", &text);
}

#[test]
fn github_preflight_has_a_github_section_under_actions_only() {
    let sb = crate::support::sandbox::Sandbox::new();
    sb.stand_ins(&["claude"]);
    let login = sb.login("claude", "valid-max");
    let step = Step::new(&Sandbox::new(), "preflight");
    let run = |actions: bool| -> Value {
        let mut cmd = sb.moonauth();
        cmd.args(["preflight", "--mode", "claude", "--json"])
            .env("CLAUDE_CONFIG_DIR", &login);
        if actions {
            cmd.envs(step.env("push"));
        }
        let out = cmd.output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let with = run(true);
    assert_eq!(check(&with, "event")["status"], "warn", "{with:#}");
    // The worker has a login: a step without secrets still passes preflight.
    assert_eq!(check(&with, "credentials")["status"], "warn");
    assert_eq!(with["ok"], true, "{with:#}");
    let without = run(false);
    assert!(without["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["check"] != "event"));
}

/// Two stored setup-token accounts (`accounts add --oauth-token-env`, `--oauth-token-file`),
/// both at their limit, no stored key: the environment's key is the last resort (it was
/// never tried before this change: exit 10).
#[test]
fn real_cli_stored_setup_token_accounts_at_their_limit_then_the_environments_key() {
    let Some(job) = Job::new() else { return };
    let token_two = "sk-ant-oat01-CANARY-gha-stored-token-two-0123";
    job.fake.reply(
        OAUTH_TOKEN,
        Reply::UsageLimit {
            resets_at: in_an_hour(),
        },
    );
    job.fake.reply(
        token_two,
        Reply::UsageLimit {
            resets_at: in_an_hour(),
        },
    );
    job.fake.reply(API_KEY, Reply::Ok);
    let store = job.sandbox.path().join("store");
    let token_file = job.sandbox.path().join("token-two");
    std::fs::write(&token_file, format!("\n{token_two}\n")).unwrap();
    let add = |args: &[&str]| {
        let mut cmd = job.sandbox.command(moonauth_bin());
        cmd.env("MOONAUTH_STATE_DIR", &store)
            .env("TOKEN_ONE", OAUTH_TOKEN)
            .args(["accounts", "add"])
            .args(args);
        cli::run(&mut cmd, Duration::from_secs(30))
    };
    let out = add(&[
        "one",
        "--runtime",
        "claude",
        "--oauth-token-env",
        "TOKEN_ONE",
        "--priority",
        "1",
    ]);
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr);
    let out = add(&[
        "two",
        "--runtime",
        "claude",
        "--oauth-token-file",
        token_file.to_str().unwrap(),
        "--priority",
        "2",
    ]);
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr);
    let out = add(&["cx", "--runtime", "codex", "--oauth-token-env", "TOKEN_ONE"]);
    assert_eq!(out.exit_code, Some(2), "codex has no setup-token: {}", out.stderr);
    let stored = std::fs::read_to_string(store.join("state.json")).unwrap();
    assert!(!stored.contains("CANARY"), "a token reached the store: {stored}");
    assert!(
        stored.contains("\"oauth_token_env\": \"TOKEN_ONE\"") || stored.contains("\"oauth_token_env\":\"TOKEN_ONE\""),
        "{stored}"
    );

    let step = Step::new(&job.sandbox, "stored");
    let store_str = store.display().to_string();
    let ran = job.run(
        &step,
        &[
            ("MOONAUTH_STATE_DIR", &store_str),
            ("TOKEN_ONE", OAUTH_TOKEN),
            ("ANTHROPIC_API_KEY", API_KEY),
            ("MOONAUTH_API_FALLBACK", "1"),
        ],
        &[],
    );
    assert_eq!(ran.out.exit_code, Some(0), "{}", ran.out.stderr);
    let attempts = ran.report["attempts"].as_array().unwrap();
    let accounts: Vec<&str> = attempts.iter().map(|a| a["account"].as_str().unwrap()).collect();
    assert_eq!(accounts, ["one", "two", "env:ANTHROPIC_API_KEY"], "{}", ran.report);
    assert_eq!(attempts[2]["resumed"], true);
    assert_eq!(job.fake.count(OAUTH_TOKEN), 1);
    assert_eq!(job.fake.count(token_two), 1);
    assert_eq!(ran.outputs["finished_by"], "env:ANTHROPIC_API_KEY");
    assert_eq!(ran.outputs["credential_kind"], "api-key");

    // The store remembers both cooldowns; ls shows where each token is, never the token.
    let mut ls = job.sandbox.command(moonauth_bin());
    ls.env("MOONAUTH_STATE_DIR", &store)
        .env("TOKEN_ONE", OAUTH_TOKEN)
        .args(["accounts", "ls", "--json"]);
    let ls = cli::run(&mut ls, Duration::from_secs(30));
    assert_no_canary("accounts ls", &ls.stdout);
    let listed: Value = serde_json::from_str(&ls.stdout).unwrap();
    let one = listed["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alias"] == "one")
        .unwrap();
    assert_eq!(one["login"], "env:TOKEN_ONE", "{one}");
    assert!(one["cooldown_until"].as_str().is_some(), "{one}");
}

/// No store, no login, no token, no key: nothing runs, and the run says what would work
/// and why no key was used.
#[test]
fn github_nothing_to_run_on_says_what_to_set() {
    use crate::support::sandbox::Sandbox as Sb;
    let sb = Sb::new();
    let ran = sb.root().join("ran");
    sb.stand_in("claude", &format!("touch '{}'", ran.display()));
    let step_dir = sb.empty_dir("step");
    let output = step_dir.join("out");
    for (fallback, code) in [("0", "fallback-off"), ("1", "no-api-key")] {
        let out = sb
            .moonauth()
            .env("MOONAUTH_STATE_DIR", sb.root().join("no-store"))
            .env("CLAUDE_CONFIG_DIR", sb.root().join("no-login"))
            .env("MOONAUTH_API_FALLBACK", fallback)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", &output)
            .args(["run", "claude", "--", "-p", "hi"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(10), "{stderr}");
        assert!(
            stderr.contains("default: no login — fix: moonauth login claude, or set CLAUDE_CODE_OAUTH_TOKEN"),
            "{stderr}"
        );
        assert!(stderr.contains(&format!("\"code\":\"{code}\"")), "{stderr}");
        let outputs = std::fs::read_to_string(&output).unwrap();
        assert!(
            outputs.contains(&format!("fallback_reason=not-used: {code}\n")),
            "{outputs}"
        );
        assert!(outputs.contains("exhausted=true\n"), "{outputs}");
    }
    assert!(!ran.exists(), "the CLI never ran");
}

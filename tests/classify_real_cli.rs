//! The classifier against the real `claude` and `codex` CLIs, run against fake APIs on
//! 127.0.0.1 that answer each login with a chosen reply (ok, usage limit, throttle,
//! overload, unauthorized). Every run is checked for the outcome, the reset time, the
//! session id (and that the transcript or rollout really exists when the classifier says
//! the session started) and that no credential reaches a classification.
//!
//! `MOONAUTH_SAVE_SAMPLES=1` also stores each run's output under `tests/samples/` for
//! `classify_samples.rs`. Without the CLIs installed these tests print a skip notice.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::tz::TimeZone;
use moonauth::agents::Runtime;
use moonauth::failover::classify::{Classification, Outcome};

use crate::support;
use crate::support::cli::{
    claude_command, claude_oauth_login, claude_transcript_exists, cli_version, codex_chatgpt_login, codex_command,
    codex_rollout_exists, real_cli, run, CodexAuth, Format, Output, Sandbox, RUN_TIMEOUT,
};
use crate::support::fake_anthropic::{self, FakeAnthropic};
use crate::support::fake_api::{FakeApi, Reply};
use crate::support::fake_openai::{self, FakeOpenAi};
use crate::support::samples::{self, Expected, Meta};

/// A reset time on a whole minute, `after` from now: both CLIs print reset clock times in
/// minutes, so a whole minute makes text-derived resets exact too.
fn reset_in(after: Duration) -> SystemTime {
    let secs = (SystemTime::now() + after)
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    UNIX_EPOCH + Duration::from_secs(secs.div_ceil(60) * 60)
}

fn usage_limit_in_2h() -> Reply {
    Reply::UsageLimit {
        resets_at: reset_in(Duration::from_secs(2 * 3600)),
    }
}

/// Tomorrow, at a clock time earlier than now's: the case where a bare clock time means
/// the next day.
fn usage_limit_tomorrow() -> Reply {
    Reply::UsageLimit {
        resets_at: reset_in(Duration::from_secs(23 * 3600 + 50 * 60)),
    }
}

/// Days away: the CLIs add a date.
fn usage_limit_in_3_days() -> Reply {
    Reply::UsageLimit {
        resets_at: reset_in(Duration::from_secs(3 * 86_400)),
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn version(bin: &Path) -> &'static str {
    static CLAUDE: OnceLock<String> = OnceLock::new();
    static CODEX: OnceLock<String> = OnceLock::new();
    let cell = if bin.ends_with("claude") { &CLAUDE } else { &CODEX };
    cell.get_or_init(|| cli_version(bin))
}

/// How a case logs in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Login {
    /// Claude: `.credentials.json` (OAuth); Codex: `auth.json` (ChatGPT).
    OAuth,
    /// Codex: an `auth.json` whose access token has expired; the refresh is refused.
    OAuthExpired,
    /// `ANTHROPIC_API_KEY` / `OPENAI_API_KEY`.
    ApiKey,
    /// An empty login directory.
    None,
}

struct Case {
    name: String,
    runtime: Runtime,
    format: Format,
    reply: Reply,
    login: Login,
    /// The CLI's TZ; the classifier reads zone-less clock times in it.
    time_zone: &'static str,
    /// The outcome kind when it is not the reply's (e.g. no login at all).
    expected_kind: Option<&'static str>,
    /// `CLAUDE_CODE_MAX_RETRIES` (moonauth sets 0 or 1).
    max_retries: &'static str,
}

impl Case {
    fn new(test_name: &str, runtime: Runtime, format: Format, reply: Reply) -> Case {
        let prefix = format!("real_cli_{}_", runtime.as_str());
        let name = test_name.strip_prefix(&prefix).unwrap_or(test_name).replace('_', "-");
        Case {
            name,
            runtime,
            format,
            reply,
            login: Login::OAuth,
            time_zone: "UTC",
            expected_kind: None,
            max_retries: "0",
        }
    }

    fn login(mut self, login: Login) -> Case {
        self.login = login;
        self
    }

    fn time_zone(mut self, zone: &'static str) -> Case {
        self.time_zone = zone;
        self
    }

    fn max_retries(mut self, retries: &'static str) -> Case {
        self.max_retries = retries;
        self
    }

    fn expect(mut self, kind: &'static str) -> Case {
        self.expected_kind = Some(kind);
        self
    }
}

/// What a run left behind, for checking.
struct Ran {
    output: Output,
    classification: Classification,
    api_calls: usize,
    /// Every credential value the run could see: none may leak.
    secrets: Vec<String>,
    replacements: Vec<(String, String)>,
    command: String,
    version: String,
    login_dir: PathBuf,
    /// Kept until the checks ran: the transcript lives in it.
    _sandbox: Sandbox,
}

fn run_case(case: &Case) -> Option<Ran> {
    match case.runtime {
        Runtime::Claude => run_claude(case),
        _ => run_codex(case),
    }
}

fn run_claude(case: &Case) -> Option<Ran> {
    let bin = real_cli("claude")?;
    let api = FakeAnthropic::start();
    let sandbox = Sandbox::new();
    let config = sandbox.dir("claude-config");
    let token = format!("sk-ant-oat01-CANARY-moonauth-{}", case.name);
    let api_key = format!("sk-ant-api03-CANARY-moonauth-{}", case.name);
    let mut cmd = claude_command(&sandbox, &bin, &config, &api.base_url(), case.format, "hi");
    cmd.env("TZ", case.time_zone)
        .env("CLAUDE_CODE_MAX_RETRIES", case.max_retries);
    let mut replacements = vec![(token.clone(), "<access-token>".to_string())];
    let mut secrets = vec![token.clone(), token.replace("oat01", "ort01") + "-refresh"];
    match case.login {
        Login::OAuth | Login::OAuthExpired => {
            claude_oauth_login(&config, &token);
            api.reply(&token, case.reply.clone());
            replacements.push((secrets[1].clone(), "<refresh-token>".into()));
        }
        Login::ApiKey => {
            cmd.env("ANTHROPIC_API_KEY", &api_key);
            api.reply(&api_key, case.reply.clone());
            replacements.push((api_key.clone(), "<api-key>".into()));
            secrets.push(api_key.clone());
        }
        Login::None => {}
    }
    let output = run(&mut cmd, RUN_TIMEOUT);
    let retries = if case.max_retries == "0" {
        String::new()
    } else {
        format!("CLAUDE_CODE_MAX_RETRIES={} ", case.max_retries)
    };
    let format_args = match case.format {
        Format::ClaudeStreamJson => " --output-format stream-json --verbose",
        Format::ClaudeJson => " --output-format json",
        _ => "",
    };
    Some(finish_run(
        case,
        output,
        &api,
        sandbox,
        config,
        replacements,
        secrets,
        format!("{retries}claude -p hi{format_args}"),
        version(&bin),
    ))
}

fn run_codex(case: &Case) -> Option<Ran> {
    let bin = real_cli("codex")?;
    let api = FakeOpenAi::start();
    let sandbox = Sandbox::new();
    let home = sandbox.dir("codex-home");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let api_key = format!("sk-proj-CANARY-moonauth-{}", case.name);
    let (auth, token) = match case.login {
        Login::OAuth => (
            CodexAuth::ChatGpt,
            codex_chatgpt_login(&home, &case.name, 4_102_444_800),
        ),
        Login::OAuthExpired => (CodexAuth::ChatGpt, codex_chatgpt_login(&home, &case.name, now - 3600)),
        Login::ApiKey => (CodexAuth::ApiKey(api_key.clone()), api_key.clone()),
        Login::None => (CodexAuth::ChatGpt, String::new()),
    };
    if !token.is_empty() {
        api.reply(&token, case.reply.clone());
    }
    let mut cmd = codex_command(&sandbox, &bin, &home, &api.base_url(), &auth, case.format, "hi");
    cmd.env("TZ", case.time_zone);
    let output = run(&mut cmd, RUN_TIMEOUT);
    let refresh = format!("rt_CANARY-moonauth-refresh-{}", case.name);
    let mut replacements = vec![(refresh.clone(), "<refresh-token>".to_string())];
    let mut secrets = vec![refresh, api_key.clone()];
    if !token.is_empty() {
        replacements.push((
            token.clone(),
            if auth == CodexAuth::ChatGpt {
                "<access-token>"
            } else {
                "<api-key>"
            }
            .into(),
        ));
        secrets.push(token);
    }
    // The id token of the fixture is shared by every ChatGPT login here.
    if let Ok(auth_json) = std::fs::read_to_string(home.join("auth.json")) {
        let value: serde_json::Value = serde_json::from_str(&auth_json).unwrap_or_default();
        if let Some(id) = value.pointer("/tokens/id_token").and_then(|v| v.as_str()) {
            replacements.push((id.to_string(), "<id-token>".into()));
            secrets.push(id.to_string());
        }
    }
    let provider_auth = match auth {
        CodexAuth::ChatGpt => "requires_openai_auth=true",
        CodexAuth::ApiKey(_) => r#"env_key="OPENAI_API_KEY""#,
    };
    let json = if case.format == Format::CodexJson {
        " --json"
    } else {
        ""
    };
    let command = format!(
        r#"codex exec --skip-git-repo-check{json} -c cli_auth_credentials_store=file -c 'model_providers.fake={{name="fake",base_url="http://127.0.0.1:<port>/v1",wire_api="responses",{provider_auth},request_max_retries=0,stream_max_retries=0}}' -c model_provider=fake hi"#
    );
    Some(finish_run(
        case,
        output,
        &api,
        sandbox,
        home,
        replacements,
        secrets,
        command,
        version(&bin),
    ))
}

#[allow(clippy::too_many_arguments)]
fn finish_run(
    case: &Case,
    output: Output,
    api: &FakeApi,
    sandbox: Sandbox,
    login_dir: PathBuf,
    mut replacements: Vec<(String, String)>,
    secrets: Vec<String>,
    command: String,
    version: &str,
) -> Ran {
    let zone = TimeZone::get(case.time_zone).expect("time zone");
    let classification = support::classify_output(
        case.runtime,
        zone,
        &output.stdout,
        &output.stderr,
        output.exit_code,
        output.finished_at,
    );
    replacements.push((sandbox.path().display().to_string(), "<sandbox>".into()));
    replacements.push((format!("127.0.0.1:{}", api.port()), "127.0.0.1:<port>".into()));
    let api_calls = api.calls().len();
    Ran {
        output,
        classification,
        api_calls,
        secrets,
        replacements,
        command,
        version: version.to_string(),
        login_dir,
        _sandbox: sandbox,
    }
}

/// The checks every case shares; returns the expectation for the sample.
fn check(case: &Case, ran: &Ran) -> Expected {
    let Ran {
        output,
        classification: c,
        ..
    } = ran;
    let context = format!(
        "case {} ({:?}): exit {:?}, classified {:?}\n--- stdout\n{}\n--- stderr\n{}",
        case.name, case.runtime, output.exit_code, c, output.stdout, output.stderr
    );
    assert!(
        !output.timed_out,
        "the CLI timed out after {:?}\n{context}",
        output.elapsed
    );

    let kind = case.expected_kind.unwrap_or(case.reply.expected_kind());
    assert_eq!(c.outcome.kind(), kind, "{context}");
    assert_eq!(
        output.exit_code,
        Some(if kind == "success" { 0 } else { 1 }),
        "{context}"
    );

    // The reset time: exact (1 s) from Claude's stream-json rate_limit_event, to the minute
    // when the CLI only prints a clock time.
    let structured_reset = case.format == Format::ClaudeStreamJson;
    let tolerance = if structured_reset { 1 } else { 60 };
    let mut expected_reset = None;
    let mut expected_window = None;
    if let Reply::UsageLimit { resets_at } = case.reply {
        let Outcome::UsageLimit { resets_at: got, window } = &c.outcome else {
            unreachable!("kind checked")
        };
        let got = got.unwrap_or_else(|| panic!("no reset time\n{context}"));
        let diff = got
            .duration_since(resets_at)
            .or_else(|e| Ok::<_, ()>(e.duration()))
            .unwrap();
        assert!(
            diff.as_secs() <= tolerance,
            "reset {} vs sent {}\n{context}",
            rfc3339(got),
            rfc3339(resets_at)
        );
        expected_reset = Some(rfc3339(resets_at));
        if case.runtime == Runtime::Claude {
            assert_eq!(window.as_deref(), Some("five_hour"), "{context}");
            expected_window = window.clone();
        }
    }

    // A session id in every structured run that reached the CLI's session; the classifier's
    // "started" must match the transcript / rollout on disk.
    let on_disk = match (&c.session_id, case.runtime) {
        (Some(id), Runtime::Claude) => claude_transcript_exists(&ran.login_dir, id),
        (Some(id), _) => codex_rollout_exists(&ran.login_dir, id),
        (None, _) => false,
    };
    if case.format.is_structured() {
        let id = c
            .session_id
            .as_deref()
            .unwrap_or_else(|| panic!("no session id\n{context}"));
        assert!(!id.is_empty(), "{context}");
    }
    assert_eq!(
        c.session_started, on_disk,
        "session_started vs transcript on disk\n{context}"
    );

    if let (Reply::Ok, true) = (&case.reply, kind == "success") {
        let text = if case.runtime == Runtime::Claude {
            fake_anthropic::REPLY_TEXT
        } else {
            fake_openai::REPLY_TEXT
        };
        assert!(
            output.stdout.contains(text),
            "the reply did not reach stdout\n{context}"
        );
        if case.format == Format::ClaudeStreamJson {
            let usage = c
                .usage
                .as_ref()
                .unwrap_or_else(|| panic!("no usage snapshot\n{context}"));
            assert_eq!(usage["unifiedWindows"]["five_hour"]["utilization"], 0.25, "{context}");
        }
    }

    let expected_status = match (case.runtime, case.format.is_structured(), &case.reply, kind) {
        (Runtime::Claude, true, Reply::UsageLimit { .. } | Reply::Throttle, _) => Some(429),
        (Runtime::Claude, true, Reply::Overload, _) => Some(529),
        (Runtime::Claude, true, Reply::Unauthorized | Reply::UnauthorizedEcho, _) if case.login != Login::None => {
            Some(401)
        }
        _ => None,
    };
    if expected_status.is_some() {
        assert_eq!(c.api_error_status, expected_status, "{context}");
    }

    // No credential value in what moonauth would log or report.
    let json = serde_json::to_string(c).unwrap();
    assert!(
        !json.contains("CANARY"),
        "a CANARY value reached the classification: {json}"
    );
    for secret in &ran.secrets {
        assert!(
            !json.contains(secret.as_str()),
            "a credential reached the classification: {json}"
        );
    }

    Expected {
        kind: kind.to_string(),
        resets_at: expected_reset,
        reset_tolerance_secs: tolerance,
        window: expected_window,
        session_id: c.session_id.is_some(),
        session_started: on_disk,
        api_error_status: expected_status,
    }
}

fn case(case: Case) {
    let Some(ran) = run_case(&case) else { return };
    let expected = check(&case, &ran);
    eprintln!(
        "{} {}: exit {:?}, {} API call(s), {:.1}s, {}",
        case.runtime,
        case.name,
        ran.output.exit_code,
        ran.api_calls,
        ran.output.elapsed.as_secs_f64(),
        serde_json::to_string(&ran.classification.outcome).unwrap()
    );
    if samples::saving() {
        let meta = Meta {
            runtime: case.runtime.to_string(),
            cli_version: ran.version.clone(),
            command: ran.command.clone(),
            reply: if case.login == Login::None {
                "none".into()
            } else {
                case.reply.name().into()
            },
            exit_code: ran.output.exit_code,
            finished_at: humantime::format_rfc3339_millis(ran.output.finished_at).to_string(),
            time_zone: case.time_zone.to_string(),
            api_calls: ran.api_calls,
            origin: "captured".into(),
            expected,
        };
        let dir = format!("{}-{}", case.runtime, ran.version);
        let stdout = samples::scrub(&ran.output.stdout, &ran.replacements);
        let stderr = samples::scrub(&ran.output.stderr, &ran.replacements);
        samples::save(&dir, &case.name, &stdout, &stderr, &meta, &ran.secrets);
    }
}

macro_rules! cases {
    ($runtime:expr; $($name:ident: $format:expr, $reply:expr $(, $modifier:ident($arg:expr))*;)*) => {
        $(
            #[test]
            fn $name() {
                case(Case::new(stringify!($name), $runtime, $format, $reply)$(.$modifier($arg))*);
            }
        )*
    };
}

// Claude Code with an OAuth login, every reply, every output format.
cases! { Runtime::Claude;
    real_cli_claude_stream_json_ok: Format::ClaudeStreamJson, Reply::Ok;
    real_cli_claude_stream_json_usage_limit: Format::ClaudeStreamJson, usage_limit_in_2h();
    real_cli_claude_stream_json_throttle: Format::ClaudeStreamJson, Reply::Throttle;
    real_cli_claude_stream_json_overload: Format::ClaudeStreamJson, Reply::Overload;
    real_cli_claude_stream_json_unauthorized: Format::ClaudeStreamJson, Reply::Unauthorized;
    real_cli_claude_json_ok: Format::ClaudeJson, Reply::Ok;
    real_cli_claude_json_usage_limit: Format::ClaudeJson, usage_limit_in_2h();
    real_cli_claude_json_throttle: Format::ClaudeJson, Reply::Throttle;
    real_cli_claude_json_overload: Format::ClaudeJson, Reply::Overload;
    real_cli_claude_json_unauthorized: Format::ClaudeJson, Reply::Unauthorized;
    real_cli_claude_text_ok: Format::ClaudeText, Reply::Ok;
    real_cli_claude_text_usage_limit: Format::ClaudeText, usage_limit_in_2h();
    real_cli_claude_text_throttle: Format::ClaudeText, Reply::Throttle;
    real_cli_claude_text_overload: Format::ClaudeText, Reply::Overload;
    real_cli_claude_text_unauthorized: Format::ClaudeText, Reply::Unauthorized;
    // Other logins and zones.
    // One retry, as moonauth allows: the stream shows a system/api_retry line first.
    real_cli_claude_stream_json_throttle_retried_once: Format::ClaudeStreamJson, Reply::Throttle, max_retries("1");
    real_cli_claude_stream_json_overload_retried_once: Format::ClaudeStreamJson, Reply::Overload, max_retries("1");
    real_cli_claude_json_api_key_ok: Format::ClaudeJson, Reply::Ok, login(Login::ApiKey);
    real_cli_claude_json_api_key_unauthorized: Format::ClaudeJson, Reply::Unauthorized, login(Login::ApiKey);
    real_cli_claude_stream_json_not_logged_in: Format::ClaudeStreamJson, Reply::Ok, login(Login::None), expect("auth-failure");
    real_cli_claude_json_not_logged_in: Format::ClaudeJson, Reply::Ok, login(Login::None), expect("auth-failure");
    real_cli_claude_json_usage_limit_new_york: Format::ClaudeJson, usage_limit_in_2h(), time_zone("America/New_York");
    real_cli_claude_json_usage_limit_tomorrow: Format::ClaudeJson, usage_limit_tomorrow();
    real_cli_claude_json_usage_limit_in_3_days: Format::ClaudeJson, usage_limit_in_3_days();
    real_cli_claude_text_usage_limit_in_3_days: Format::ClaudeText, usage_limit_in_3_days();
    // The server quotes the token it refused: the classification must not.
    real_cli_claude_stream_json_unauthorized_echo: Format::ClaudeStreamJson, Reply::UnauthorizedEcho;
}

// Codex with a ChatGPT login, every reply, both output formats.
cases! { Runtime::Codex;
    real_cli_codex_json_ok: Format::CodexJson, Reply::Ok;
    real_cli_codex_json_usage_limit: Format::CodexJson, usage_limit_in_2h();
    real_cli_codex_json_throttle: Format::CodexJson, Reply::Throttle;
    real_cli_codex_json_overload: Format::CodexJson, Reply::Overload;
    real_cli_codex_json_unauthorized: Format::CodexJson, Reply::Unauthorized;
    real_cli_codex_text_ok: Format::CodexText, Reply::Ok;
    real_cli_codex_text_usage_limit: Format::CodexText, usage_limit_in_2h();
    real_cli_codex_text_throttle: Format::CodexText, Reply::Throttle;
    real_cli_codex_text_overload: Format::CodexText, Reply::Overload;
    real_cli_codex_text_unauthorized: Format::CodexText, Reply::Unauthorized;
    // Other logins and zones.
    real_cli_codex_json_api_key_ok: Format::CodexJson, Reply::Ok, login(Login::ApiKey);
    real_cli_codex_json_api_key_unauthorized: Format::CodexJson, Reply::Unauthorized, login(Login::ApiKey);
    real_cli_codex_json_refresh_refused: Format::CodexJson, Reply::Unauthorized, login(Login::OAuthExpired);
    real_cli_codex_json_not_logged_in: Format::CodexJson, Reply::Ok, login(Login::None), expect("auth-failure");
    real_cli_codex_json_usage_limit_new_york: Format::CodexJson, usage_limit_in_2h(), time_zone("America/New_York");
    real_cli_codex_json_usage_limit_tomorrow: Format::CodexJson, usage_limit_tomorrow();
    real_cli_codex_json_usage_limit_in_3_days: Format::CodexJson, usage_limit_in_3_days();
    real_cli_codex_json_unauthorized_echo: Format::CodexJson, Reply::UnauthorizedEcho, login(Login::ApiKey);
}

/// Two logins against one fake: each gets its own reply, and the fake counts them apart.
#[test]
fn real_cli_claude_fake_tells_logins_apart() {
    let Some(bin) = real_cli("claude") else { return };
    let api = FakeAnthropic::start();
    let sandbox = Sandbox::new();
    let mut outcomes = Vec::new();
    for (account, reply) in [("a", usage_limit_in_2h()), ("b", Reply::Ok)] {
        let config = sandbox.dir(&format!("claude-{account}"));
        let token = format!("sk-ant-oat01-CANARY-moonauth-account-{account}");
        claude_oauth_login(&config, &token);
        api.reply(&token, reply);
        let out = run(
            &mut claude_command(&sandbox, &bin, &config, &api.base_url(), Format::ClaudeJson, "hi"),
            RUN_TIMEOUT,
        );
        let c = support::classify_output(
            Runtime::Claude,
            TimeZone::UTC,
            &out.stdout,
            &out.stderr,
            out.exit_code,
            out.finished_at,
        );
        outcomes.push(c.outcome.kind());
        assert_eq!(api.count(&token), 1, "one call for account {account}");
    }
    assert_eq!(outcomes, ["usage-limit", "success"]);
    assert_eq!(api.session_ids().len(), 2, "each run has its own session id");
    let body = api.last_body().expect("last body");
    assert!(body.to_string().contains("hi"), "the prompt is in the recorded body");
}

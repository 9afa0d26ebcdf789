//! How a run of `claude` or `codex` ended, read from what the CLI printed.
//!
//! [`OutputClassifier`] is fed the child's stdout and stderr lines as they come; once the
//! child has exited, [`OutputClassifier::finish`] says whether the run succeeded or hit a
//! usage limit, a throttle, an overload, an auth failure or something else, with the reset
//! time, the session id and whether the session can be resumed. Structured output wins
//! (Claude's `--output-format stream-json`/`json`, Codex's `exec --json`); the CLIs' prose is
//! only a fallback, because it changes between releases. `docs/failover.md` lists what the
//! real CLIs print. What to do about an outcome (cooldowns, failover, resume) is the
//! caller's business.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::agents::Runtime;
use crate::redact::scrub;

/// Longest `detail` kept, in characters, counted after redaction.
pub const DETAIL_MAX_CHARS: usize = 300;

/// Lines of unstructured output kept for the prose fallback.
const TAIL_LINES: usize = 24;
/// Longest unstructured line kept, in characters.
const LINE_MAX_CHARS: usize = 2_000;
/// A clock time read from text that lies up to this far in the past still means today:
/// the CLIs print minutes, and the reset may have just passed.
const CLOCK_SLACK: Duration = Duration::from_secs(120);
/// Epoch seconds beyond this (9999-12-31) are not a reset time anyone meant.
const MAX_EPOCH_SECS: u64 = 253_402_300_799;

/// How a CLI run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// The CLI finished its turn.
    Success,
    /// The account's subscription quota is used up, until `resets_at` when the CLI said.
    UsageLimit {
        #[serde(with = "crate::time::serde_rfc3339_seconds_opt", default)]
        resets_at: Option<SystemTime>,
        /// The limit window hit, as Claude names it (`five_hour`, `seven_day`, …).
        #[serde(default)]
        window: Option<String>,
    },
    /// A short-term rate limit (HTTP 429 without a quota signal): the same account may retry.
    Throttle {
        #[serde(rename = "retry_after_secs", with = "secs_opt", default)]
        retry_after: Option<Duration>,
    },
    /// The service is overloaded or failing (529, 5xx): not the account's fault.
    Overload,
    /// The login was refused (expired, revoked, invalid key, not logged in): log in again.
    AuthFailure { detail: String },
    /// Anything else; `detail` is what the CLI said, redacted and truncated.
    Other { detail: String },
}

impl Outcome {
    /// The serialized `kind` tag: `success`, `usage-limit`, `throttle`, `overload`,
    /// `auth-failure`, `other`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::UsageLimit { .. } => "usage-limit",
            Outcome::Throttle { .. } => "throttle",
            Outcome::Overload => "overload",
            Outcome::AuthFailure { .. } => "auth-failure",
            Outcome::Other { .. } => "other",
        }
    }
}

/// What [`OutputClassifier::finish`] concluded about one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub outcome: Outcome,
    /// Claude's `session_id` or Codex's `thread_id`: what `--resume` / `exec resume` take.
    pub session_id: Option<String>,
    /// The CLI got far enough that a transcript (Claude) or rollout (Codex) exists, so the
    /// session can be resumed instead of rerun.
    pub session_started: bool,
    /// The HTTP status of the API error the CLI reported, when it said.
    pub api_error_status: Option<u16>,
    /// Claude's last `rate_limit_event.rate_limit_info` (`status`, `unifiedWindows`, …): a
    /// usage snapshot of the account from a real run, on success too.
    pub usage: Option<Value>,
}

impl Classification {
    /// True when the failed run can be continued with the session id instead of rerun.
    pub fn resumable(&self) -> bool {
        self.session_started && self.session_id.is_some()
    }
}

/// Reads a CLI's output line by line and classifies the run at the end.
#[derive(Debug, Clone)]
pub struct OutputClassifier {
    runtime: Runtime,
    /// `None`: this process's zone, looked up only when a clock time must be read (the
    /// lookup reads the zoneinfo tree, which costs milliseconds on every run otherwise).
    zone: Option<TimeZone>,
    session_id: Option<String>,
    session_started: bool,
    usage: Option<Value>,
    claude: ClaudeState,
    codex: CodexState,
    /// The last unstructured lines (both streams), for the prose fallback.
    tail: VecDeque<String>,
}

/// What Claude Code's structured lines said so far.
#[derive(Debug, Clone, Default)]
struct ClaudeState {
    /// The `type: result` object (the only line of `--output-format json`).
    result: Option<ApiSignal>,
    /// The last synthetic assistant message carrying an API error (stream-json).
    api_error: Option<ApiSignal>,
    /// The state of the last `rate_limit_event`, when it was a rejection.
    rejection: Option<Rejection>,
    /// `error_status` of the last `system/api_retry` line.
    retry_status: Option<u16>,
}

/// The error fields Claude Code puts on its result object and API-error messages.
#[derive(Debug, Clone, Default)]
struct ApiSignal {
    is_error: bool,
    status: Option<u16>,
    error_type: Option<String>,
    /// `api_error`: `usage_limit_reached` for a usage limit (2.1.330).
    api_error: Option<String>,
    text: Option<String>,
    rate_limit_info: Option<Value>,
    /// The result's `subtype`: `success`, or `error_max_turns`, `error_during_execution`, ….
    subtype: Option<String>,
}

/// A rejected `rate_limit_event`: the structured usage-limit signal.
#[derive(Debug, Clone, Default)]
struct Rejection {
    resets_at: Option<SystemTime>,
    window: Option<String>,
}

impl Rejection {
    /// Throttles are rejected too, but without a reset time or window: only these mark a quota.
    fn marks_quota(&self) -> bool {
        self.resets_at.is_some() || self.window.is_some()
    }
}

/// What Codex's `exec --json` events said so far.
#[derive(Debug, Clone, Default)]
struct CodexState {
    completed: bool,
    /// `turn.failed` error message.
    failure: Option<String>,
    /// The last `error` event message.
    last_error: Option<String>,
}

impl OutputClassifier {
    /// A classifier for one run of `runtime`'s CLI. Clock times the CLI prints without a
    /// zone (Codex's `try again at 4:48 PM`) are read in this process's time zone (`TZ`,
    /// else the system's, else UTC): moonauth runs beside the CLI.
    pub fn new(runtime: Runtime) -> Self {
        let mut c = Self::with_time_zone(runtime, TimeZone::UTC);
        c.zone = None;
        c
    }

    /// A classifier that reads zone-less clock times in `zone` (the CLI's time zone).
    pub fn with_time_zone(runtime: Runtime, zone: TimeZone) -> Self {
        OutputClassifier {
            runtime,
            zone: Some(zone),
            session_id: None,
            session_started: false,
            usage: None,
            claude: ClaudeState::default(),
            codex: CodexState::default(),
            tail: VecDeque::new(),
        }
    }

    /// Feeds one line the CLI wrote to stdout (with or without its line ending).
    pub fn stdout_line(&mut self, line: &str) {
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(event) = json_object(line) {
            match self.runtime {
                Runtime::Claude => self.claude_event(&event),
                Runtime::Codex => self.codex_event(&event),
                Runtime::Gemini => {}
            }
            return;
        }
        self.push_tail(line);
    }

    /// Feeds one line the CLI wrote to stderr. Both CLIs write only prose there; codex's
    /// text mode names its session in a header line there.
    pub fn stderr_line(&mut self, line: &str) {
        let line = line.trim_end_matches(['\r', '\n']);
        if self.runtime == Runtime::Codex {
            if let Some(id) = line.strip_prefix("session id: ") {
                // Printed once the thread (and its rollout) exists.
                self.note_session_id(Some(id));
                self.session_started = self.session_id.is_some();
                return;
            }
        }
        self.push_tail(line);
    }

    /// Classifies the run. `exit_code` is `None` when the child was killed by a signal
    /// (e.g. moonauth's timeout); `now` anchors clock times that carry no date.
    pub fn finish(self, exit_code: Option<i32>, now: SystemTime) -> Classification {
        let structured = match self.runtime {
            Runtime::Claude => self.claude_outcome(exit_code, now),
            Runtime::Codex => self.codex_outcome(now),
            Runtime::Gemini => None,
        };
        let (outcome, status) = match structured {
            Some(found) => found,
            None if exit_code == Some(0) => (Outcome::Success, None),
            None => self.prose_outcome(exit_code, now),
        };
        Classification {
            outcome,
            session_id: self.session_id,
            session_started: self.session_started,
            api_error_status: status,
            usage: self.usage,
        }
    }

    fn push_tail(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.chars().take(LINE_MAX_CHARS).collect());
    }

    fn note_session_id(&mut self, id: Option<&str>) {
        // An id goes into the report and the logs as it is: one that looks like a token
        // (a CLI echoing a credential where the id belongs) is not an id.
        if let Some(id) = id.map(str::trim).filter(|id| !id.is_empty() && shown_safely(id)) {
            if self.session_id.is_none() {
                self.session_id = Some(id.to_string());
            }
        }
    }

    fn claude_event(&mut self, event: &Value) {
        self.note_session_id(event.get("session_id").and_then(Value::as_str));
        match str_field(event, "type") {
            Some("system") => match str_field(event, "subtype") {
                // `init` comes before the first request; Claude writes the transcript as it
                // sends the prompt, so a session seen here is resumable.
                Some("init") => self.session_started = true,
                Some("api_retry") => {
                    self.session_started = true;
                    self.claude.retry_status = status_field(event, "error_status");
                }
                _ => {}
            },
            Some("rate_limit_event") => {
                self.session_started = true;
                if let Some(info) = event.get("rate_limit_info").filter(|v| v.is_object()) {
                    self.claude.rejection = rejection(info);
                    // Kept in the store and shown by `accounts ls`: mask anything token-shaped.
                    self.usage = Some(scrub_json(info));
                }
            }
            Some("assistant") => {
                self.session_started = true;
                let is_api_error = event.get("is_api_error_message").and_then(Value::as_bool) == Some(true)
                    || event.get("api_error_status").is_some_and(|v| !v.is_null());
                if is_api_error {
                    let text = event.pointer("/message/content").and_then(content_text);
                    let mut signal = api_signal(event, text);
                    signal.is_error = true;
                    self.claude.api_error = Some(signal);
                }
            }
            Some("user") => self.session_started = true,
            Some("result") => {
                let signal = api_signal(event, str_field(event, "result").map(str::to_string));
                // A result after a request means the transcript exists; `--output-format
                // json` prints nothing else. No request was made when the CLI reports zero
                // turns (e.g. nothing to log in with).
                let turns = event.get("num_turns").and_then(Value::as_u64).unwrap_or(0);
                if turns > 0 || signal.status.is_some() {
                    self.session_started = true;
                }
                self.claude.result = Some(signal);
            }
            _ => {}
        }
    }

    fn claude_outcome(&self, exit_code: Option<i32>, now: SystemTime) -> Option<(Outcome, Option<u16>)> {
        let state = &self.claude;
        if let Some(result) = state.result.as_ref().filter(|r| !r.is_error) {
            return Some((Outcome::Success, result.status));
        }
        let Some(signal) = state.result.as_ref().or(state.api_error.as_ref()) else {
            // No error object (killed early, or text mode): a rejection still marks the quota.
            return match &state.rejection {
                Some(r) if r.marks_quota() && exit_code != Some(0) => Some((usage_limit(r.clone(), None), None)),
                _ => None,
            };
        };
        // The result object may lack what the streamed error message carried.
        let message = state.api_error.as_ref();
        let status = signal.status.or(message.and_then(|m| m.status)).or(state.retry_status);
        let error_type = signal
            .error_type
            .as_deref()
            .or(message.and_then(|m| m.error_type.as_deref()));
        let api_error = signal
            .api_error
            .as_deref()
            .or(message.and_then(|m| m.api_error.as_deref()));
        let text = signal
            .text
            .as_deref()
            .or(message.and_then(|m| m.text.as_deref()))
            .unwrap_or("");
        let rejection = state
            .rejection
            .clone()
            .or_else(|| signal.rate_limit_info.as_ref().and_then(rejection))
            .or_else(|| message.and_then(|m| m.rate_limit_info.as_ref()).and_then(rejection))
            .filter(Rejection::marks_quota);
        let prose = prose_kind(text);
        let text_usage = || self.usage_from_text(text, now);

        let outcome = if api_error == Some("usage_limit_reached") {
            usage_limit(rejection.unwrap_or_default(), Some(text_usage()))
        } else if matches!(status, Some(401 | 403))
            || matches!(error_type, Some("authentication_error" | "permission_error"))
        {
            Outcome::AuthFailure { detail: detail(text) }
        } else if status == Some(529) || error_type == Some("overloaded_error") {
            Outcome::Overload
        } else if status == Some(429) || error_type == Some("rate_limit_error") {
            // 2.1.197 has no `api_error`: the rejection (stream-json) or its text tells.
            match rejection {
                Some(r) => usage_limit(r, Some(text_usage())),
                None if prose == Some(ProseKind::UsageLimit) => text_usage(),
                None => Outcome::Throttle {
                    retry_after: retry_after_in(text),
                },
            }
        } else if status.is_some_and(|s| s >= 500) || error_type == Some("api_error") {
            Outcome::Overload
        } else {
            match prose {
                Some(kind) => self.prose_kind_outcome(kind, text, now),
                None if !text.is_empty() => Outcome::Other { detail: detail(text) },
                // Errors that are not the API's (`error_max_turns`, …) carry no text.
                None => match signal.subtype.as_deref().filter(|s| *s != "success") {
                    Some(subtype) => Outcome::Other {
                        detail: format!("Claude Code ended with {}", detail(subtype)),
                    },
                    None => return None,
                },
            }
        };
        Some((outcome, status))
    }

    fn codex_event(&mut self, event: &Value) {
        let message = |v: &Value| str_field(v, "message").map(str::to_string);
        match str_field(event, "type") {
            // The rollout is created with the thread: `exec resume <thread_id>` works from here.
            Some("thread.started") => {
                self.note_session_id(str_field(event, "thread_id"));
                self.session_started = self.session_id.is_some();
            }
            Some("turn.completed") => self.codex.completed = true,
            Some("turn.failed") => {
                self.codex.failure = event.get("error").and_then(message).or_else(|| Some(String::new()));
            }
            Some("error") => self.codex.last_error = message(event),
            _ => {}
        }
    }

    fn codex_outcome(&self, now: SystemTime) -> Option<(Outcome, Option<u16>)> {
        let state = &self.codex;
        if state.completed && state.failure.is_none() {
            return Some((Outcome::Success, None));
        }
        let message = state
            .failure
            .as_deref()
            .filter(|m| !m.is_empty())
            .or(state.last_error.as_deref())?;
        Some(self.codex_message_outcome(message, now))
    }

    /// Codex reports every failure as a message; the status code in it and codex's fixed
    /// texts for its own error kinds are the structure there is.
    fn codex_message_outcome(&self, message: &str, now: SystemTime) -> (Outcome, Option<u16>) {
        let status = status_in(message);
        let prose = prose_kind(message);
        let outcome = if prose == Some(ProseKind::UsageLimit) {
            self.usage_from_text(message, now)
        } else if matches!(status, Some(401 | 403)) || prose == Some(ProseKind::Auth) {
            Outcome::AuthFailure {
                detail: detail(message),
            }
        } else if status == Some(429) {
            Outcome::Throttle {
                retry_after: retry_after_in(message),
            }
        } else if status.is_some_and(|s| s >= 500) {
            Outcome::Overload
        } else if let Some(kind) = prose {
            self.prose_kind_outcome(kind, message, now)
        } else {
            Outcome::Other {
                detail: detail(message),
            }
        };
        (outcome, status)
    }

    /// The fallback without structured output: the most telling line of the tail.
    fn prose_outcome(&self, exit_code: Option<i32>, now: SystemTime) -> (Outcome, Option<u16>) {
        let best = self
            .tail
            .iter()
            .enumerate()
            .filter_map(|(i, line)| prose_kind(line).map(|kind| (kind, i, line)))
            .max_by_key(|(kind, i, _)| (*kind, *i));
        if let Some((kind, _, line)) = best {
            if self.runtime == Runtime::Codex {
                return self.codex_message_outcome(line, now);
            }
            return (self.prose_kind_outcome(kind, line, now), status_in(line));
        }
        let last = self.tail.iter().rev().find(|l| !is_noise(l));
        let detail = match (last, exit_code) {
            (Some(line), _) => detail(line),
            (None, Some(code)) => format!("{} exited with status {code} without saying why", self.runtime),
            (None, None) => format!("{} was stopped by a signal before it finished", self.runtime),
        };
        (Outcome::Other { detail }, None)
    }

    fn prose_kind_outcome(&self, kind: ProseKind, text: &str, now: SystemTime) -> Outcome {
        match kind {
            ProseKind::UsageLimit => self.usage_from_text(text, now),
            ProseKind::Auth => Outcome::AuthFailure { detail: detail(text) },
            ProseKind::Overload => Outcome::Overload,
            ProseKind::Throttle => Outcome::Throttle {
                retry_after: retry_after_in(text),
            },
        }
    }

    /// A usage limit read from its text: the reset clock time and the window's name.
    fn usage_from_text(&self, text: &str, now: SystemTime) -> Outcome {
        let normalized = normalize(text);
        let resets_at = ["resets ", "try again at ", "reset at ", "resets at "]
            .iter()
            .filter_map(|marker| normalized.find(marker).map(|at| at + marker.len()))
            .find_map(|at| {
                let zone = self
                    .zone
                    .clone()
                    .unwrap_or_else(|| TimeZone::try_system().unwrap_or(TimeZone::UTC));
                parse_reset_clock(&text_from(text, &normalized, at), &zone, now)
            });
        Outcome::UsageLimit {
            resets_at,
            window: window_in(&normalized),
        }
    }
}

/// A usage limit from a structured rejection, completed by what the text said.
fn usage_limit(rejection: Rejection, from_text: Option<Outcome>) -> Outcome {
    let (text_reset, text_window) = match from_text {
        Some(Outcome::UsageLimit { resets_at, window }) => (resets_at, window),
        _ => (None, None),
    };
    Outcome::UsageLimit {
        resets_at: rejection.resets_at.or(text_reset),
        window: rejection.window.or(text_window),
    }
}

fn json_object(line: &str) -> Option<Value> {
    let trimmed = line.trim();
    if !trimmed.starts_with('{') {
        return None;
    }
    serde_json::from_str::<Value>(trimmed).ok().filter(Value::is_object)
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn status_field(value: &Value, key: &str) -> Option<u16> {
    value
        .get(key)
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
}

fn api_signal(event: &Value, text: Option<String>) -> ApiSignal {
    ApiSignal {
        is_error: event.get("is_error").and_then(Value::as_bool).unwrap_or(false),
        status: status_field(event, "api_error_status"),
        error_type: str_field(event, "api_error_type").map(str::to_string),
        api_error: str_field(event, "api_error").map(str::to_string),
        text,
        rate_limit_info: event.pointer("/api_error_params/rate_limit_info").cloned(),
        subtype: str_field(event, "subtype").map(str::to_string),
    }
}

/// The text blocks of an assistant message's `content`.
fn content_text(content: &Value) -> Option<String> {
    let parts: Vec<&str> = content
        .as_array()?
        .iter()
        .filter_map(|block| block.get("text").and_then(Value::as_str))
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n"))
}

/// A rejection from `rate_limit_info`; `None` when its status is not `rejected`.
fn rejection(info: &Value) -> Option<Rejection> {
    if str_field(info, "status") != Some("rejected") {
        return None;
    }
    // 2.1.330 also lists every window; the rejected one names the window when the top
    // level does not.
    let rejected_window = info
        .get("unifiedWindows")
        .and_then(Value::as_object)
        .and_then(|windows| windows.iter().find(|(_, w)| str_field(w, "status") == Some("rejected")));
    let resets_at =
        epoch_secs(info.get("resetsAt")).or_else(|| rejected_window.and_then(|(_, w)| epoch_secs(w.get("resetsAt"))));
    let window = str_field(info, "rateLimitType")
        .filter(|name| is_plain(name))
        .map(str::to_string)
        .or_else(|| {
            rejected_window
                .map(|(name, _)| name.clone())
                .filter(|name| is_plain(name))
        });
    Some(Rejection { resets_at, window })
}

fn epoch_secs(value: Option<&Value>) -> Option<SystemTime> {
    let secs = value?.as_f64()?;
    if !(0.0..=MAX_EPOCH_SECS as f64).contains(&secs) {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_secs(secs.round() as u64))
}

/// What a line of prose says, in rising order of weight: when several lines speak, the
/// heaviest wins (a usage limit explains a later auth complaint, not the other way round).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ProseKind {
    Throttle,
    Overload,
    Auth,
    UsageLimit,
}

/// The known prose of both CLIs (Claude 2.1.197 and 2.1.330, Codex 0.169.0), lower-cased
/// with typographic apostrophes made plain.
fn prose_kind(text: &str) -> Option<ProseKind> {
    let t = normalize(text);
    let has = |needles: &[&str]| needles.iter().any(|n| t.contains(n));
    if (t.contains("you've hit your") && t.contains("limit"))
        || has(&[
            "usage_limit_reached",
            "usage limit reached",
            "insufficient_quota",
            "quota exceeded",
        ])
    {
        return Some(ProseKind::UsageLimit);
    }
    if has(&[
        "not logged in",
        "please run /login",
        "failed to authenticate",
        "oauth session expired",
        "could not be refreshed",
        "sign in again",
        "invalid api key",
        "incorrect api key",
        "invalid x-api-key",
        "invalid_api_key",
        "authentication_error",
        "token has been revoked",
        "token has expired",
        "401 unauthorized",
        "api error: 401",
    ]) {
        return Some(ProseKind::Auth);
    }
    if has(&[
        "overloaded",
        "api error: 529",
        "api error: 5",
        "status 5",
        "status: 5",
        "503 service unavailable",
        "502 bad gateway",
        "500 internal server error",
        "504 gateway",
        "at capacity",
    ]) {
        return Some(ProseKind::Overload);
    }
    if has(&[
        "temporarily limiting requests",
        "too many requests",
        "rate_limit_exceeded",
        "rate_limit_error",
        "rate limit reached",
        "rate limit exceeded",
        "api error: 429",
    ]) {
        return Some(ProseKind::Throttle);
    }
    None
}

/// Lines both CLIs print on every run, which say nothing about how it ended.
fn is_noise(line: &str) -> bool {
    let t = normalize(line);
    t.starts_with("reading additional input from stdin") || t.starts_with("warning: proceeding, even though")
}

fn normalize(text: &str) -> String {
    text.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'")
}

/// The part of `original` from the byte offset `at` of its normalized form. Lower-casing
/// and the apostrophe swap can change lengths, so count characters, not bytes.
fn text_from(original: &str, normalized: &str, at: usize) -> String {
    let chars_before = normalized[..at].chars().count();
    original.chars().skip(chars_before).collect()
}

/// The HTTP status a message quotes: `unexpected status 401 …`, `last status: 429 …`,
/// `API Error: 529 …`.
fn status_in(text: &str) -> Option<u16> {
    let t = normalize(text);
    ["status: ", "status ", "api error: "].iter().find_map(|marker| {
        t.match_indices(marker).find_map(|(at, _)| {
            let digits: String = t[at + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits
                .parse::<u16>()
                .ok()
                .filter(|s| digits.len() == 3 && (100..=599).contains(s))
        })
    })
}

/// `try again in 20s` / `in 1.5s` / `in 250ms` / `in 2m`, as some 429 messages say.
fn retry_after_in(text: &str) -> Option<Duration> {
    let t = normalize(text);
    let rest = &t[t.find("try again in ")? + "try again in ".len()..];
    let number: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let value: f64 = number.parse().ok()?;
    let unit = rest[number.len()..].trim_start();
    let secs = if unit.starts_with("ms") {
        value / 1000.0
    } else if unit.starts_with('s') {
        value
    } else if unit.starts_with('m') {
        value * 60.0
    } else if unit.starts_with('h') {
        value * 3600.0
    } else {
        return None;
    };
    (secs.is_finite() && (0.0..=86_400.0).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// The window of `You've hit your 5-hour limit` (2.1.330) / `…your session limit` (2.1.197)
/// / `…your weekly limit`, named as Claude's `rateLimitType` names it.
fn window_in(normalized: &str) -> Option<String> {
    let start = normalized.find("you've hit your ")? + "you've hit your ".len();
    let end = start + normalized[start..].find(" limit")?;
    let name = normalized[start..end].trim();
    let window = match name {
        "" | "usage" => return None,
        "5-hour" | "five-hour" | "session" => "five_hour".to_string(),
        "weekly" | "7-day" | "seven-day" => "seven_day".to_string(),
        "opus weekly" | "weekly opus" => "seven_day_opus".to_string(),
        "sonnet weekly" | "weekly sonnet" => "seven_day_sonnet".to_string(),
        other if other.len() <= 40 && is_plain(other) => other.replace([' ', '-'], "_"),
        _ => return None,
    };
    Some(window)
}

/// A clock time as the CLIs print reset times: `4:48 PM`, `2:19am`, `16:48`, `3am`,
/// optionally after a date (`Nov 25th, 2026 4:48 PM`, `Nov 30, 2pm`, `Nov 30 at 2pm`) and
/// before a zone in parentheses (`(UTC)`, `(Europe/Berlin)`). Without a zone it is local
/// time in `zone`; without a date it is the next such time (it may be tomorrow).
fn parse_reset_clock(text: &str, zone: &TimeZone, now: SystemTime) -> Option<SystemTime> {
    let tokens = clock_tokens(text);
    let mut i = 0;
    let mut date: Option<(Option<i16>, i8, i8)> = None;
    if let (Some(month), Some(day)) = (
        tokens.first().and_then(|t| month_number(t)),
        tokens.get(1).and_then(|t| day_number(t)),
    ) {
        i = 2;
        let mut year = None;
        while let Some(t) = tokens.get(i) {
            if t == "," || t.eq_ignore_ascii_case("at") {
                i += 1;
            } else if year.is_none() && t.len() == 4 && t.chars().all(|c| c.is_ascii_digit()) {
                year = t.parse::<i16>().ok();
                i += 1;
            } else {
                break;
            }
        }
        date = Some((year, month, day));
    }
    let (hour, minute, used) = clock_time(&tokens[i.min(tokens.len())..])?;
    i += used;
    let named_zone = match (tokens.get(i), tokens.get(i + 1)) {
        (Some(open), Some(name)) if open == "(" => zone_named(name),
        _ => None,
    };
    let zone = named_zone.unwrap_or_else(|| zone.clone());

    let now_ts = Timestamp::try_from(now).ok()?;
    let today = now_ts.to_zoned(zone.clone()).date();
    let at = |day: Date| {
        day.at(hour, minute, 0, 0)
            .to_zoned(zone.clone())
            .ok()
            .map(|z| z.timestamp())
    };
    let instant = match date {
        Some((year, month, day)) => {
            let mut instant = at(Date::new(year.unwrap_or(today.year()), month, day).ok()?)?;
            // `Jan 2` printed in late December means next year.
            if year.is_none() && instant < now_ts - jiff::SignedDuration::from_hours(24 * 180) {
                instant = at(Date::new(today.year() + 1, month, day).ok()?)?;
            }
            instant
        }
        None => {
            let instant = at(today)?;
            let slack = jiff::SignedDuration::try_from(CLOCK_SLACK).ok()?;
            if instant < now_ts - slack {
                at(today.tomorrow().ok()?)?
            } else {
                instant
            }
        }
    };
    // A year from the text can put the time before 1970 or after 9999, which no RFC 3339
    // rendering (the report, the store) can show: not a reset time anyone meant.
    (0..=MAX_EPOCH_SECS as i64)
        .contains(&instant.as_second())
        .then(|| SystemTime::from(instant))
}

/// Splits a reset text into words (keeping `4:48`, `2:19am`, `Europe/Berlin` whole) and
/// single punctuation marks; stops at the first sentence end that follows a word.
fn clock_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    for ch in text.chars().take(80) {
        if ch.is_alphanumeric() || matches!(ch, ':' | '/' | '_' | '+' | '-') {
            word.push(ch);
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        if !ch.is_whitespace() {
            tokens.push(ch.to_string());
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

fn month_number(token: &str) -> Option<i8> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = token.to_ascii_lowercase();
    if lower.len() < 3 || !lower.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    MONTHS.iter().position(|m| lower.starts_with(m)).map(|p| p as i8 + 1)
}

fn day_number(token: &str) -> Option<i8> {
    let digits: String = token.chars().take_while(char::is_ascii_digit).collect();
    let suffix = token[digits.len()..].to_ascii_lowercase();
    if !matches!(suffix.as_str(), "" | "st" | "nd" | "rd" | "th") {
        return None;
    }
    digits.parse::<i8>().ok().filter(|d| (1..=31).contains(d))
}

/// Hour and minute from `4:48` `PM`, `2:19am`, `16:48`, `3am`; and how many tokens that took.
fn clock_time(tokens: &[String]) -> Option<(i8, i8, usize)> {
    let first = tokens.first()?.to_ascii_lowercase();
    let (clock, mut meridiem) = match first.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => (&first[..at], Some(first[at..].to_string())),
        None => (first.as_str(), None),
    };
    let mut used = 1;
    if meridiem.is_none() {
        if let Some(next) = tokens.get(1).map(|t| t.to_ascii_lowercase()) {
            if next == "am" || next == "pm" {
                meridiem = Some(next);
                used = 2;
            }
        }
    }
    let (hour, minute) = match clock.split_once(':') {
        Some((h, m)) if m.len() == 2 => (h.parse::<i8>().ok()?, m.parse::<i8>().ok()?),
        Some(_) => return None,
        // A bare number is a clock time only with am/pm.
        None if meridiem.is_some() => (clock.parse::<i8>().ok()?, 0),
        None => return None,
    };
    if !(0..=59).contains(&minute) {
        return None;
    }
    let hour = match meridiem.as_deref() {
        None if (0..=23).contains(&hour) => hour,
        Some("am") if (1..=12).contains(&hour) => hour % 12,
        Some("pm") if (1..=12).contains(&hour) => hour % 12 + 12,
        _ => return None,
    };
    Some((hour, minute, used))
}

fn zone_named(name: &str) -> Option<TimeZone> {
    match name.to_ascii_uppercase().as_str() {
        "UTC" | "GMT" | "Z" => Some(TimeZone::UTC),
        _ => TimeZone::get(name).ok(),
    }
}

/// Whether text the CLI printed can be shown as it is: the redactor would leave it alone.
fn is_plain(text: &str) -> bool {
    scrub(text) == text
}

/// Whether a session or thread id can be shown: plain, or a UUID (what both CLIs use, and
/// what the redactor would mask as a long run of letters and digits).
fn shown_safely(id: &str) -> bool {
    let uuid = id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    uuid || is_plain(id)
}

/// `value` with every string in it (keys too) redacted.
fn scrub_json(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(scrub(s)),
        Value::Array(items) => Value::Array(items.iter().map(scrub_json).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (scrub(k), scrub_json(v))).collect()),
        other => other.clone(),
    }
}

/// A `detail` string: redacted first, then cut to [`DETAIL_MAX_CHARS`].
fn detail(text: &str) -> String {
    let scrubbed = scrub(text.trim());
    if scrubbed.chars().count() <= DETAIL_MAX_CHARS {
        return scrubbed;
    }
    let mut cut: String = scrubbed.chars().take(DETAIL_MAX_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// `Option<Duration>` as a number of seconds.
mod secs_opt {
    use std::time::Duration;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match duration {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|secs| Duration::try_from_secs_f64(secs).map_err(D::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests;

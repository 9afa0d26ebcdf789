//! A fake Anthropic Messages API for the real `claude` CLI.
//!
//! Claude Code 2.1.330 sends `POST /v1/messages?beta=true` (streamed) with the OAuth
//! access token as `Authorization: Bearer …`, or an API key as `x-api-key`, plus its session
//! id in `x-claude-code-session-id`. It needs nothing else from the base URL (no `HEAD /`,
//! no title query). The command line that works (see `support::cli::claude_command`):
//!
//! ```text
//! env -i PATH=… HOME=<tmp> TZ=UTC CLAUDE_CONFIG_DIR=<dir with .credentials.json> \
//!   ANTHROPIC_BASE_URL=http://127.0.0.1:PORT DISABLE_TELEMETRY=1 \
//!   CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 CLAUDE_CODE_MAX_RETRIES=0 \
//!   HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost \
//!   claude -p hi --output-format stream-json --verbose </dev/null
//! ```

use std::ops::Deref;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::fake_api::{epoch_secs, secs_until, FakeApi, Reply};
use super::http::{Request, Response};

/// What the fake answers in [`Reply::Ok`].
pub const REPLY_TEXT: &str = "Hello from the fake Anthropic API.";

/// The fake Anthropic API; derefs to [`FakeApi`] for configuring and inspecting it.
pub struct FakeAnthropic(FakeApi);

impl FakeAnthropic {
    pub fn start() -> Self {
        FakeAnthropic(FakeApi::start("/v1/messages", respond, |_| None))
    }
}

impl Deref for FakeAnthropic {
    type Target = FakeApi;
    fn deref(&self) -> &FakeApi {
        &self.0
    }
}

fn respond(reply: &Reply, request: &Request) -> Response {
    let now = SystemTime::now();
    match reply {
        Reply::Ok => ok(request, now),
        Reply::UsageLimit { resets_at } => {
            let reset = epoch_secs(*resets_at);
            let body = error(
                "rate_limit_error",
                "This request would exceed your account's rate limit. Please try again later.",
            );
            // The full unified header set a subscription limit carries (cli-errors.md).
            Response::json(429, &body)
                .header("retry-after", secs_until(*resets_at).max(1))
                .header("anthropic-ratelimit-unified-status", "rejected")
                .header("anthropic-ratelimit-unified-reset", reset)
                .header("anthropic-ratelimit-unified-5h-status", "rejected")
                .header("anthropic-ratelimit-unified-5h-reset", reset)
                .header("anthropic-ratelimit-unified-5h-utilization", "1.0")
                .header("anthropic-ratelimit-unified-7d-status", "allowed")
                .header("anthropic-ratelimit-unified-7d-reset", reset + 4 * 86_400)
                .header("anthropic-ratelimit-unified-7d-utilization", "0.4")
                .header("anthropic-ratelimit-unified-representative-claim", "five_hour")
                .header("anthropic-ratelimit-unified-fallback-percentage", "0.5")
        }
        Reply::SevenDayLimit { resets_at } => {
            let reset = epoch_secs(*resets_at);
            let body = error(
                "rate_limit_error",
                "This request would exceed your account's rate limit. Please try again later.",
            );
            Response::json(429, &body)
                .header("retry-after", secs_until(*resets_at).max(1))
                .header("anthropic-ratelimit-unified-status", "rejected")
                .header("anthropic-ratelimit-unified-reset", reset)
                .header("anthropic-ratelimit-unified-5h-status", "allowed")
                .header("anthropic-ratelimit-unified-5h-utilization", "0.3")
                .header("anthropic-ratelimit-unified-7d-status", "rejected")
                .header("anthropic-ratelimit-unified-7d-reset", reset)
                .header("anthropic-ratelimit-unified-7d-utilization", "1.0")
        }
        Reply::Throttle => Response::json(
            429,
            &error(
                "rate_limit_error",
                "Number of requests has exceeded your per-minute rate limit.",
            ),
        )
        .header("retry-after", 1),
        Reply::Overload => Response::json(529, &error("overloaded_error", "Overloaded")),
        Reply::Unauthorized => {
            let message = if request.header("x-api-key").is_some() {
                "invalid x-api-key"
            } else {
                "OAuth token has been revoked. Please obtain a new token."
            };
            Response::json(401, &error("authentication_error", message))
        }
        Reply::UnauthorizedEcho => {
            let credential = request.credential().unwrap_or_default();
            Response::json(
                401,
                &error("authentication_error", &format!("Invalid bearer token: {credential}")),
            )
        }
    }
}

fn error(kind: &str, message: &str) -> serde_json::Value {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake_0001"})
}

/// A streamed one-block text answer, with the unified headers of an account well within
/// its limits (Claude turns them into an `allowed` rate_limit_event).
fn ok(request: &Request, now: SystemTime) -> Response {
    let model = serde_json::from_slice::<serde_json::Value>(&request.body)
        .ok()
        .and_then(|b| b.get("model").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| "claude-fake".into());
    let events = [
        (
            "message_start",
            json!({"type":"message_start","message":{"id":"msg_fake_0001","type":"message","role":"assistant","model":model,
                "content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}),
        ),
        (
            "content_block_start",
            json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
        ),
        (
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":REPLY_TEXT}}),
        ),
        ("content_block_stop", json!({"type":"content_block_stop","index":0})),
        (
            "message_delta",
            json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":8}}),
        ),
        ("message_stop", json!({"type":"message_stop"})),
    ];
    let body: String = events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect();
    let in_5h = epoch_secs(now + Duration::from_secs(3 * 3600));
    let in_7d = epoch_secs(now + Duration::from_secs(5 * 86_400));
    Response::new(200, "text/event-stream", body)
        .header("anthropic-ratelimit-unified-status", "allowed")
        .header("anthropic-ratelimit-unified-5h-status", "allowed")
        .header("anthropic-ratelimit-unified-5h-reset", in_5h)
        .header("anthropic-ratelimit-unified-5h-utilization", "0.25")
        .header("anthropic-ratelimit-unified-7d-status", "allowed")
        .header("anthropic-ratelimit-unified-7d-reset", in_7d)
        .header("anthropic-ratelimit-unified-7d-utilization", "0.4")
        .header("anthropic-ratelimit-unified-representative-claim", "five_hour")
}

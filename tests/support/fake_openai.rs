//! A fake OpenAI Responses API for the real `codex` CLI.
//!
//! Codex 0.169.0 sends `POST /v1/responses` (streamed SSE) with `Authorization: Bearer`
//! (the API key of an `env_key` provider, or `tokens.access_token` from
//! `$CODEX_HOME/auth.json` for a `requires_openai_auth` provider) and its thread id in the
//! `session-id` header. It also refreshes an expired ChatGPT login at
//! `CODEX_REFRESH_TOKEN_URL_OVERRIDE`, which tests point at this fake's `/oauth/token`; the
//! fake refuses every refresh. The command lines that work (see `support::cli::codex_command`):
//!
//! ```text
//! # ChatGPT login (auth.json in CODEX_HOME):
//! env -i PATH=… HOME=<tmp> TZ=UTC CODEX_HOME=<dir> \
//!   CODEX_REFRESH_TOKEN_URL_OVERRIDE=http://127.0.0.1:PORT/oauth/token \
//!   HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost \
//!   codex exec --skip-git-repo-check --json -c cli_auth_credentials_store=file \
//!     -c 'model_providers.fake={name="fake",base_url="http://127.0.0.1:PORT/v1",wire_api="responses",requires_openai_auth=true,request_max_retries=0,stream_max_retries=0}' \
//!     -c model_provider=fake hi </dev/null
//! # API key: the same with env_key="OPENAI_API_KEY" instead of requires_openai_auth=true,
//! # and OPENAI_API_KEY=… in the environment.
//! ```

use std::ops::Deref;
use std::time::SystemTime;

use serde_json::json;

use super::fake_api::{epoch_secs, secs_until, FakeApi, Reply};
use super::http::{Request, Response};

/// What the fake answers in [`Reply::Ok`].
pub const REPLY_TEXT: &str = "Hello from the fake OpenAI API.";

/// The fake OpenAI API; derefs to [`FakeApi`] for configuring and inspecting it.
pub struct FakeOpenAi(FakeApi);

impl FakeOpenAi {
    pub fn start() -> Self {
        FakeOpenAi(FakeApi::start("/v1/responses", respond, token_endpoint))
    }

    /// The URL to give codex as `CODEX_REFRESH_TOKEN_URL_OVERRIDE`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.base_url())
    }
}

impl Deref for FakeOpenAi {
    type Target = FakeApi;
    fn deref(&self) -> &FakeApi {
        &self.0
    }
}

/// Refuses every token refresh, as the real service does for a reused refresh token.
fn token_endpoint(request: &Request) -> Option<Response> {
    (request.method == "POST" && request.path() == "/oauth/token").then(|| {
        Response::json(
            401,
            &json!({"error": {"message": "Your refresh token has already been used to generate a new access token. Please try signing in again.",
                "type": "invalid_request_error", "param": null, "code": "refresh_token_reused"}}),
        )
    })
}

fn respond(reply: &Reply, request: &Request) -> Response {
    match reply {
        Reply::Ok => ok(),
        Reply::UsageLimit { resets_at } | Reply::SevenDayLimit { resets_at } => Response::json(
            429,
            &json!({"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                "plan_type": "plus", "resets_at": epoch_secs(*resets_at), "resets_in_seconds": secs_until(*resets_at)}}),
        ),
        Reply::Throttle => Response::json(
            429,
            &json!({"error": {"type": "requests", "code": "rate_limit_exceeded", "param": null,
                "message": "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s."}}),
        )
        .header("retry-after", 20),
        Reply::Overload => Response::json(
            503,
            &json!({"error": {"type": "server_error", "code": null, "param": null, "message": "The server is overloaded or not ready yet."}}),
        ),
        Reply::Unauthorized => Response::json(
            401,
            &json!({"error": {"type": "invalid_request_error", "code": "invalid_api_key", "param": null,
                "message": "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."}}),
        ),
        Reply::UnauthorizedEcho => Response::json(
            401,
            &json!({"error": {"type": "invalid_request_error", "code": "invalid_api_key", "param": null,
                "message": format!("Incorrect API key provided: {}.", request.credential().unwrap_or_default())}}),
        ),
    }
}

/// A streamed one-message answer: the events codex 0.169.0 needs to finish a turn.
fn ok() -> Response {
    let created = epoch_secs(SystemTime::now());
    let message = json!({"id":"msg_fake_0001","type":"message","role":"assistant","status":"completed",
        "content":[{"type":"output_text","text":REPLY_TEXT,"annotations":[]}]});
    let events = [
        json!({"type":"response.created","response":{"id":"resp_fake_0001","object":"response","created_at":created,"status":"in_progress","output":[]}}),
        json!({"type":"response.output_item.added","output_index":0,
            "item":{"id":"msg_fake_0001","type":"message","role":"assistant","status":"in_progress","content":[]}}),
        json!({"type":"response.output_text.delta","item_id":"msg_fake_0001","output_index":0,"content_index":0,"delta":REPLY_TEXT}),
        json!({"type":"response.output_item.done","output_index":0,"item":message}),
        json!({"type":"response.completed","response":{"id":"resp_fake_0001","object":"response","created_at":created,"status":"completed","output":[message],
            "usage":{"input_tokens":5,"input_tokens_details":{"cached_tokens":0},"output_tokens":8,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":13}}}),
    ];
    let body: String = events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or("")))
        .collect();
    Response::new(200, "text/event-stream", body)
}

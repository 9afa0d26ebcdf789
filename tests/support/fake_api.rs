//! What both fake APIs share: the [`Reply`] a test picks per credential, and the record of
//! what the CLIs sent (per-credential counts, bodies, session ids).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::http::{Handler, Request, Response, Server};

/// How the fake answers a credential's API calls.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A normal, minimal streamed answer.
    Ok,
    /// The subscription quota is used up until `resets_at`.
    UsageLimit { resets_at: SystemTime },
    /// The seven-day window is used up, in the shape of claude-code-action #1613: a 429
    /// whose only window rejected is `anthropic-ratelimit-unified-7d-status`, with no
    /// representative claim (Anthropic); the same as `UsageLimit` for OpenAI.
    SevenDayLimit { resets_at: SystemTime },
    /// A plain 429: too many requests, no quota signal.
    Throttle,
    /// 529 (Anthropic) / 503 (OpenAI).
    Overload,
    /// 401: the token or key is refused.
    Unauthorized,
    /// 401 whose message quotes the credential it refused: the worst case for leaks, for
    /// canary tests.
    UnauthorizedEcho,
}

impl Reply {
    /// The `Outcome::kind` the classifier should give a run that got this reply.
    pub fn expected_kind(&self) -> &'static str {
        match self {
            Reply::Ok => "success",
            Reply::UsageLimit { .. } | Reply::SevenDayLimit { .. } => "usage-limit",
            Reply::Throttle => "throttle",
            Reply::Overload => "overload",
            Reply::Unauthorized | Reply::UnauthorizedEcho => "auth-failure",
        }
    }

    /// A short name for sample files and test output.
    pub fn name(&self) -> &'static str {
        match self {
            Reply::Ok => "ok",
            Reply::UsageLimit { .. } => "usage-limit",
            Reply::SevenDayLimit { .. } => "seven-day-limit",
            Reply::Throttle => "throttle",
            Reply::Overload => "overload",
            Reply::Unauthorized => "unauthorized",
            Reply::UnauthorizedEcho => "unauthorized-echo",
        }
    }
}

/// One API call the fake answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    pub credential: Option<String>,
    /// The CLI's session id when it sends one in a header (Claude: `x-claude-code-session-id`;
    /// Codex: `session-id`).
    pub session_id: Option<String>,
    pub body: Vec<u8>,
    pub status: u16,
}

#[derive(Default)]
struct State {
    replies: HashMap<String, Reply>,
    default: Option<Reply>,
    calls: Vec<Recorded>,
    others: Vec<(String, String, u16)>,
}

/// Builds the answer to an API call for a reply.
pub type Responder = fn(&Reply, &Request) -> Response;
/// Answers requests to paths that are not the API call (e.g. a token refresh endpoint).
pub type SideResponder = fn(&Request) -> Option<Response>;

/// A fake API server; what it answers is chosen by the credential the CLI sends.
pub struct FakeApi {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl FakeApi {
    /// Starts a fake that answers `POST <api_path>` with `respond` and anything else with
    /// `side` (or 404). Credentials without a configured reply get `Unauthorized`.
    pub fn start(api_path: &'static str, respond: Responder, side: SideResponder) -> FakeApi {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let handler: Handler = Arc::new(move |request: &Request| {
            if request.method != "POST" || request.path() != api_path {
                let response = side(request).unwrap_or_else(|| Response::new(404, "text/plain", "not found"));
                lock(&shared)
                    .others
                    .push((request.method.clone(), request.target.clone(), response.status));
                return response;
            }
            let credential = request.credential();
            let reply = {
                let state = lock(&shared);
                credential
                    .as_ref()
                    .and_then(|c| state.replies.get(c))
                    .or(state.default.as_ref())
                    .cloned()
                    .unwrap_or(Reply::Unauthorized)
            };
            let response = respond(&reply, request);
            let session_id = request
                .header("x-claude-code-session-id")
                .or(request.header("session-id"));
            lock(&shared).calls.push(Recorded {
                method: request.method.clone(),
                target: request.target.clone(),
                credential,
                session_id: session_id.map(str::to_string),
                body: request.body.clone(),
                status: response.status,
            });
            response
        });
        FakeApi {
            server: Server::start(handler),
            state,
        }
    }

    /// Answers API calls made with `credential` with `reply`.
    pub fn reply(&self, credential: &str, reply: Reply) {
        lock(&self.state).replies.insert(credential.to_string(), reply);
    }

    /// Answers credentials without their own reply with `reply` (default: `Unauthorized`).
    pub fn default_reply(&self, reply: Reply) {
        lock(&self.state).default = Some(reply);
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// API calls made with `credential`.
    pub fn count(&self, credential: &str) -> usize {
        lock(&self.state)
            .calls
            .iter()
            .filter(|c| c.credential.as_deref() == Some(credential))
            .count()
    }

    /// Every API call, oldest first.
    pub fn calls(&self) -> Vec<Recorded> {
        lock(&self.state).calls.clone()
    }

    /// Requests to other paths: (method, target, status).
    pub fn other_requests(&self) -> Vec<(String, String, u16)> {
        lock(&self.state).others.clone()
    }

    /// The body of the last API call, parsed as JSON (the conversation the CLI sent).
    pub fn last_body(&self) -> Option<serde_json::Value> {
        let state = lock(&self.state);
        serde_json::from_slice(&state.calls.last()?.body).ok()
    }

    /// The distinct session ids the CLIs sent, in order of first use.
    pub fn session_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for id in lock(&self.state).calls.iter().filter_map(|c| c.session_id.clone()) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A panicking handler thread must not hide the record from the test.
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn epoch_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Seconds from now until `time` (0 when past).
pub fn secs_until(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

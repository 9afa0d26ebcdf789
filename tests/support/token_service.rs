//! A loopback OAuth token service with the real semantics of rotating refresh tokens,
//! and the model APIs that accept only what it issued.
//!
//! - Each refresh token works once: a refresh answers a new access token and a new
//!   refresh token, and the old refresh token is spent.
//! - Presenting a spent refresh token is theft to the service: the whole grant is
//!   revoked, and every access token issued from it gets 401 from the model APIs.
//! - The model APIs (`POST /v1/responses` for codex, `POST /v1/messages` for claude)
//!   accept only unexpired, unrevoked access tokens of a known grant.
//!
//! Codex's tokens are JWTs with `exp` (codex reads it); Claude's are opaque
//! `sk-ant-oat01-…` strings whose expiry the service keeps. Every token contains
//! `CANARY`, so tests can prove none ever reaches moonauth's output.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::http::{Handler, Request, Response, Server};

/// Which CLI's token service to mimic (answer shapes and refusal bodies differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Claude,
    Codex,
}

/// A login as issued: what goes into the CLI's file.
#[derive(Debug, Clone)]
pub struct Issued {
    pub grant: usize,
    pub access_token: String,
    pub refresh_token: String,
    pub id_token: String,
    pub expires_at: SystemTime,
}

#[derive(Debug, Default)]
struct Grant {
    revoked: bool,
    current_refresh: String,
    spent: Vec<String>,
    /// Access tokens issued from this grant, with their expiry.
    access: HashMap<String, SystemTime>,
}

#[derive(Debug, Default)]
struct State {
    grants: Vec<Grant>,
    refreshes: usize,
    reuses: usize,
    unknown: usize,
    /// Token requests answered with 503 before the service works again.
    fail_next: usize,
    /// Token requests answered with 503 in all.
    failures: usize,
    /// Every token request seen.
    token_requests: usize,
    model_ok: usize,
    model_refused: usize,
    /// Lifetime of the access tokens a refresh issues.
    ttl: Duration,
    /// How long a refresh takes (to widen races and kill windows).
    delay: Duration,
    /// Every token value ever issued (for canary checks).
    issued: Vec<String>,
    /// Token request bodies (client id, scope…), the refresh token removed.
    bodies: Vec<Value>,
    /// Keys merged into every successful refresh answer (`expires_in: 1e300`, …), to
    /// play a broken or hostile service.
    answer_patch: Option<Value>,
    /// The `exp` claim of the Codex access tokens a refresh issues, instead of now + ttl.
    access_exp: Option<u64>,
    /// Bytes of padding in a claim of the Codex id tokens a refresh issues (a large answer).
    id_padding: usize,
}

/// The running service; stops when dropped.
pub struct TokenService {
    flavor: Flavor,
    state: Arc<Mutex<State>>,
    server: Server,
}

impl TokenService {
    pub fn start(flavor: Flavor) -> TokenService {
        let state = Arc::new(Mutex::new(State {
            ttl: Duration::from_secs(8 * 3600),
            ..Default::default()
        }));
        let s = Arc::clone(&state);
        let handler: Handler = Arc::new(move |r: &Request| handle(flavor, &s, r));
        TokenService {
            flavor,
            state,
            server: Server::start(handler),
        }
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The token endpoint each CLI posts to.
    pub fn token_url(&self) -> String {
        match self.flavor {
            Flavor::Claude => format!("{}/v1/oauth/token", self.base_url()),
            Flavor::Codex => format!("{}/oauth/token", self.base_url()),
        }
    }

    /// A new grant (a fresh login) whose first access token expires at `expires_at`.
    pub fn login(&self, expires_at: SystemTime) -> Issued {
        let mut st = self.state.lock().unwrap();
        let grant = st.grants.len();
        st.grants.push(Grant::default());
        issue(self.flavor, &mut st, grant, expires_at)
    }

    pub fn set_delay(&self, d: Duration) {
        self.state.lock().unwrap().delay = d;
    }

    /// Merges `patch`'s keys into every later successful refresh answer.
    pub fn set_answer_patch(&self, patch: Value) {
        self.state.lock().unwrap().answer_patch = Some(patch);
    }

    /// Later Codex refreshes issue access tokens whose `exp` claim is `exp`.
    pub fn set_access_exp(&self, exp: u64) {
        self.state.lock().unwrap().access_exp = Some(exp);
    }

    /// Later Codex refreshes issue id tokens padded with `bytes` bytes of a claim.
    pub fn set_id_padding(&self, bytes: usize) {
        self.state.lock().unwrap().id_padding = bytes;
    }

    pub fn set_ttl(&self, d: Duration) {
        self.state.lock().unwrap().ttl = d;
    }

    /// The next `n` token requests are answered 503.
    pub fn fail_next(&self, n: usize) {
        self.state.lock().unwrap().fail_next = n;
    }

    pub fn refreshes(&self) -> usize {
        self.state.lock().unwrap().refreshes
    }

    pub fn reuses(&self) -> usize {
        self.state.lock().unwrap().reuses
    }

    pub fn token_requests(&self) -> usize {
        self.state.lock().unwrap().token_requests
    }

    pub fn failures(&self) -> usize {
        self.state.lock().unwrap().failures
    }

    pub fn model_ok(&self) -> usize {
        self.state.lock().unwrap().model_ok
    }

    pub fn model_refused(&self) -> usize {
        self.state.lock().unwrap().model_refused
    }

    pub fn revoked(&self, grant: usize) -> bool {
        self.state.lock().unwrap().grants[grant].revoked
    }

    /// Every token value issued so far.
    pub fn issued(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.clone()
    }

    /// The token request bodies, refresh tokens removed.
    pub fn bodies(&self) -> Vec<Value> {
        self.state.lock().unwrap().bodies.clone()
    }

    /// Whether the model API would accept `access_token` now.
    pub fn accepts(&self, access_token: &str) -> bool {
        accepted(&self.state.lock().unwrap(), access_token)
    }

    /// The current refresh token of a grant.
    pub fn current_refresh(&self, grant: usize) -> String {
        self.state.lock().unwrap().grants[grant].current_refresh.clone()
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn jwt(claims: &Value) -> String {
    format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.c2ln",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn issue(flavor: Flavor, st: &mut State, grant: usize, expires_at: SystemTime) -> Issued {
    let n = st.issued.len();
    let nonce = fastrand::u64(..);
    let (access, refresh, id) = match flavor {
        Flavor::Claude => (
            format!("sk-ant-oat01-CANARY-g{grant}-n{n}-{nonce:016x}"),
            format!("sk-ant-ort01-CANARY-g{grant}-n{n}-{nonce:016x}"),
            String::new(),
        ),
        Flavor::Codex => {
            let account = format!("acct-g{grant}");
            let exp = st.access_exp.unwrap_or(secs(expires_at));
            let access = jwt(&json!({"exp": exp, "grant": grant, "n": n,
                "note": format!("CANARY-access-{nonce:016x}"),
                "https://api.openai.com/auth": {"chatgpt_account_id": account}}));
            let id = jwt(&json!({"exp": secs(expires_at), "email": "fleet@example.com", "n": n,
                "pad": "p".repeat(st.id_padding),
                "https://api.openai.com/auth": {"chatgpt_plan_type": "pro", "chatgpt_account_id": account}}));
            (access, format!("rt_CANARY-g{grant}-n{n}-{nonce:016x}"), id)
        }
    };
    let g = &mut st.grants[grant];
    g.current_refresh = refresh.clone();
    g.access.insert(access.clone(), expires_at);
    st.issued.push(access.clone());
    st.issued.push(refresh.clone());
    Issued {
        grant,
        access_token: access,
        refresh_token: refresh,
        id_token: id,
        expires_at,
    }
}

fn accepted(st: &State, token: &str) -> bool {
    st.grants
        .iter()
        .any(|g| !g.revoked && g.access.get(token).is_some_and(|exp| *exp > SystemTime::now()))
}

fn handle(flavor: Flavor, state: &Arc<Mutex<State>>, r: &Request) -> Response {
    match (r.method.as_str(), r.path()) {
        ("POST", "/oauth/token") | ("POST", "/v1/oauth/token") => token(flavor, state, r),
        ("POST", "/v1/responses") | ("POST", "/v1/messages") => {
            let token = r.credential().unwrap_or_default();
            let mut st = state.lock().unwrap();
            if accepted(&st, &token) {
                st.model_ok += 1;
                drop(st);
                if r.path() == "/v1/responses" {
                    responses_ok()
                } else {
                    messages_ok(r)
                }
            } else {
                st.model_refused += 1;
                match flavor {
                    Flavor::Codex => Response::json(
                        401,
                        &json!({"error": {"message": "Your authentication token has been invalidated. Please try signing in again.",
                            "type": "invalid_request_error", "code": "token_invalidated", "param": null}}),
                    ),
                    Flavor::Claude => Response::json(
                        401,
                        &json!({"type": "error", "error": {"type": "authentication_error",
                            "message": "OAuth token has been revoked. Please obtain a new token."}}),
                    ),
                }
            }
        }
        _ => Response::json(404, &json!({"error": "not found"})),
    }
}

fn token(flavor: Flavor, state: &Arc<Mutex<State>>, r: &Request) -> Response {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let presented = body
        .get("refresh_token")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let delay = {
        let mut st = state.lock().unwrap();
        st.token_requests += 1;
        let mut recorded = body.clone();
        if let Some(o) = recorded.as_object_mut() {
            o.remove("refresh_token");
        }
        st.bodies.push(recorded);
        if st.fail_next > 0 {
            st.fail_next -= 1;
            st.failures += 1;
            return Response::json(503, &json!({"error": "temporarily_unavailable"}));
        }
        st.delay
    };
    // The slow part of a real refresh happens before the rotation is decided.
    std::thread::sleep(delay);
    let mut st = state.lock().unwrap();
    let found = st.grants.iter().position(|g| g.current_refresh == presented);
    let spent = st.grants.iter().position(|g| g.spent.contains(&presented));
    match (found, spent) {
        (Some(grant), _) if !st.grants[grant].revoked => {
            st.refreshes += 1;
            st.grants[grant].spent.push(presented);
            let ttl = st.ttl;
            let issued = issue(flavor, &mut st, grant, SystemTime::now() + ttl);
            let answer = match flavor {
                Flavor::Claude => json!({"token_type": "Bearer", "access_token": issued.access_token,
                    "refresh_token": issued.refresh_token, "expires_in": ttl.as_secs(),
                    "scope": "user:inference user:profile user:sessions:claude_code"}),
                Flavor::Codex => json!({"id_token": issued.id_token, "access_token": issued.access_token,
                    "refresh_token": issued.refresh_token}),
            };
            let mut answer = answer;
            if let (Some(Value::Object(patch)), Some(a)) = (&st.answer_patch, answer.as_object_mut()) {
                for (k, v) in patch {
                    a.insert(k.clone(), v.clone());
                }
            }
            Response::json(200, &answer)
        }
        (_, Some(grant)) => {
            // Reuse of a rotated refresh token: revoke the whole grant.
            st.reuses += 1;
            st.grants[grant].revoked = true;
            refused(flavor, true)
        }
        _ => {
            st.unknown += 1;
            refused(flavor, false)
        }
    }
}

fn refused(flavor: Flavor, reused: bool) -> Response {
    match flavor {
        Flavor::Codex => Response::json(
            401,
            &json!({"error": {"message": if reused {"Your refresh token has already been used to generate a new access token. Please try signing in again."} else {"Could not validate your refresh token. Please try signing in again."},
                "type": "invalid_request_error", "param": null,
                "code": if reused {"refresh_token_reused"} else {"refresh_token_invalidated"}}}),
        ),
        Flavor::Claude => Response::json(
            400,
            &json!({"error": "invalid_grant", "error_description": "Refresh token not found or invalid"}),
        ),
    }
}

/// A streamed one-message answer: the events codex 0.169.0 needs to finish a turn
/// (the same as the classifier tests' fake).
fn responses_ok() -> Response {
    let created = secs(SystemTime::now());
    let text = "Hello from the fake Responses API.";
    let message = json!({"id":"msg_fake_0001","type":"message","role":"assistant","status":"completed",
        "content":[{"type":"output_text","text":text,"annotations":[]}]});
    let events = [
        json!({"type":"response.created","response":{"id":"resp_fake_0001","object":"response","created_at":created,"status":"in_progress","output":[]}}),
        json!({"type":"response.output_item.added","output_index":0,
            "item":{"id":"msg_fake_0001","type":"message","role":"assistant","status":"in_progress","content":[]}}),
        json!({"type":"response.output_text.delta","item_id":"msg_fake_0001","output_index":0,"content_index":0,"delta":text}),
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

/// A streamed one-block Messages API answer.
fn messages_ok(request: &Request) -> Response {
    let model = serde_json::from_slice::<Value>(&request.body)
        .ok()
        .and_then(|b| b.get("model").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| "claude-fake".into());
    let text = "Hello from the fake Messages API.";
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
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":text}}),
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
    Response::new(200, "text/event-stream", body)
}

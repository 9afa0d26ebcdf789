//! Performing the OAuth refresh each CLI would perform itself, and nothing more: the
//! same endpoint, client id and body, and the answer written back in the CLI's own file
//! format with every other key kept (shared/facts/credentials.md, "Refresh tokens rotate").
//!
//! The pure parts take bytes and a clock: [`read_tokens`] (the CLIs' one parser, seen
//! from a refresh) and [`refresh_due`] decide,
//! [`request_body`] builds the request, [`apply_answer`] turns the old file and the token
//! service's answer into the new file, [`classify_status`] sorts a refusal into dead or
//! passing. [`post`] is the one network call. Locking, retrying and writing the file are
//! `renew`'s; this module never touches the file system.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::agents::{claude, codex, LoginRuntime};
use crate::credentials::codex::CodexCredential;
use crate::credentials::{self, jwt, Unreadable};
use crate::redact::{self, Secret};

/// Answers larger than this are refused: a real one is a few kilobytes.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// Why a refresh failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "reason", rename_all = "kebab-case")]
pub enum RefreshError {
    /// The token service refused the refresh token (invalid_grant, reused, revoked,
    /// 400/401): only a new login helps. Never retried.
    Dead(String),
    /// A passing failure (network, timeout, 429, 5xx): worth retrying later.
    Retryable(String),
}

impl RefreshError {
    /// The reason, for people (never contains a token).
    pub fn reason(&self) -> &str {
        match self {
            RefreshError::Dead(r) | RefreshError::Retryable(r) => r,
        }
    }
}

/// What a login file holds that a refresh needs.
#[derive(Debug, Clone)]
pub struct LoginTokens {
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// When the access token expires (Claude's `expiresAt`, the access JWT's `exp`).
    pub expires_at: Option<SystemTime>,
    /// Codex's `last_refresh`.
    pub last_refresh: Option<SystemTime>,
    /// Claude's `scopes`, joined, as the CLI sends them back.
    pub scopes: Option<String>,
    /// Claude's `clientId`, when the file names one.
    pub client_id: Option<String>,
}

/// Reads the tokens of an OAuth login through the CLI's one parser
/// (`credentials::{claude,codex}::parse`); `Err` says why the file cannot be refreshed
/// (not JSON, malformed, an API key login, no refresh token). Never echoes file content.
pub fn read_tokens(runtime: LoginRuntime, bytes: &[u8]) -> Result<LoginTokens, String> {
    let not_json = |line, column| format!("the login file is not valid JSON (line {line}, column {column})");
    match runtime {
        LoginRuntime::Claude => {
            let login = credentials::claude::parse(bytes).map_err(|why| match why {
                Unreadable::NotJson { line, column } => not_json(line, column),
                Unreadable::NotObject | Unreadable::NoLogin => "the file holds no claudeAiOauth login".into(),
                Unreadable::Malformed(reason) => reason,
            })?;
            let access = login.access_token.ok_or("claudeAiOauth has no accessToken")?;
            let refresh = login.refresh_token.ok_or("claudeAiOauth has no refreshToken")?;
            let scopes = login.scopes.filter(|s| !s.is_empty()).map(|s| s.join(" "));
            Ok(LoginTokens {
                access_token: access,
                refresh_token: refresh,
                expires_at: login.expires_at,
                last_refresh: None,
                scopes,
                client_id: login.client_id,
            })
        }
        LoginRuntime::Codex => {
            let login = credentials::codex::parse(bytes).map_err(|why| match why {
                Unreadable::NotJson { line, column } => not_json(line, column),
                Unreadable::NotObject | Unreadable::NoLogin => "the file holds no ChatGPT tokens".into(),
                Unreadable::Malformed(reason) => reason,
            })?;
            let tokens = match login.credential {
                CodexCredential::ApiKey(_) => {
                    return Err("the file holds an API key login, which has nothing to refresh".into())
                }
                CodexCredential::NoTokens => return Err("the file holds no ChatGPT tokens".into()),
                CodexCredential::Chatgpt(tokens) => tokens,
            };
            let access = tokens.access_token.ok_or("tokens has no access_token")?;
            let refresh = tokens.refresh_token.ok_or("tokens has no refresh_token")?;
            Ok(LoginTokens {
                access_token: access,
                refresh_token: refresh,
                expires_at: tokens.expires_at,
                last_refresh: login.last_refresh,
                scopes: None,
                client_id: None,
            })
        }
    }
}

/// Why a login is inside the lead and due for a refresh, or `None` when it is fresh.
/// Due when the access token expires within `lead`; for Codex also when `last_refresh`
/// is older than Codex's own 8-day interval minus the lead.
pub fn refresh_due(runtime: LoginRuntime, tokens: &LoginTokens, now: SystemTime, lead: Duration) -> Option<String> {
    match tokens.expires_at {
        Some(exp) => match exp.duration_since(now) {
            Err(_) => return Some("the access token has expired".into()),
            Ok(left) if left <= lead => {
                return Some(format!(
                    "the access token expires in {}, within the lead of {}",
                    crate::credentials::human_duration(left),
                    crate::credentials::human_duration(lead)
                ))
            }
            Ok(_) => {}
        },
        // No expiry to go by: Claude without expiresAt refreshes only on a 401; so do we.
        None if runtime == LoginRuntime::Claude => return None,
        None => {}
    }
    if runtime == LoginRuntime::Codex {
        let limit = codex::REFRESH_INTERVAL.saturating_sub(lead);
        match tokens.last_refresh {
            Some(last) if now.duration_since(last).is_ok_and(|age| age >= limit) => {
                return Some(format!(
                    "last refreshed {} ago; codex refreshes after {}",
                    crate::credentials::human_duration(now.duration_since(last).unwrap_or_default()),
                    crate::credentials::human_duration(codex::REFRESH_INTERVAL)
                ))
            }
            None if tokens.expires_at.is_none() => return Some("no expiry and no last_refresh to go by".into()),
            _ => {}
        }
    }
    None
}

/// The JSON body the CLI posts to its token endpoint. Holds the refresh token: hand it
/// only to [`post`].
pub fn request_body(runtime: LoginRuntime, tokens: &LoginTokens) -> Secret {
    let body = match runtime {
        LoginRuntime::Claude => serde_json::json!({
            "grant_type": "refresh_token",
            "refresh_token": tokens.refresh_token.expose(),
            "client_id": tokens.client_id.as_deref().unwrap_or(claude::CLIENT_ID),
            "scope": tokens.scopes.as_deref().unwrap_or(claude::DEFAULT_SCOPES),
        }),
        LoginRuntime::Codex => serde_json::json!({
            "client_id": codex::CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_token": tokens.refresh_token.expose(),
            "scope": codex::SCOPE,
        }),
    };
    Secret::new(body.to_string())
}

/// The longest access-token lifetime moonauth writes or reports: real ones last hours
/// (Claude 8 h, Codex about 10 days). A longer one in an answer (`expires_in: 1e13`, a
/// JWT `exp` of 2^64-1) is a broken or hostile service; it is bounded to this and the
/// outcome says so, rather than written as it came.
pub const MAX_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(366 * 86_400);

/// The longest refresh-token lifetime moonauth writes (`refreshTokenExpiresAt`).
pub const MAX_REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 366 * 86_400);

/// The new login file [`apply_answer`] made from the old one and an answer.
/// Its `Debug` leaves the bytes out: they hold tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct NewLogin {
    /// The file to write (holds tokens: hand it only to the writer).
    pub bytes: Vec<u8>,
    /// The new access token's expiry, bounded to [`MAX_ACCESS_TOKEN_LIFETIME`] from now.
    pub expires_at: Option<SystemTime>,
    /// What in the answer was out of range and how it was bounded; never a token.
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for NewLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewLogin")
            .field("bytes", &format_args!("[redacted: {} bytes]", self.bytes.len()))
            .field("expires_at", &self.expires_at)
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// A lifetime in seconds from an answer, bounded to `max`: `(lifetime, warning)`.
/// Non-finite values cannot come out of JSON; negative ones read as zero.
fn bounded_lifetime(name: &str, secs: f64, max: Duration) -> (Duration, Option<String>) {
    if secs > max.as_secs_f64() {
        let warning = format!(
            "the token service's {name} ({secs:.3e} s) is beyond the bound of {}; moonauth wrote {} instead",
            crate::credentials::human_duration(max),
            crate::credentials::human_duration(max)
        );
        (max, Some(warning))
    } else if secs > 0.0 {
        // In range: the cast cannot saturate.
        (Duration::from_secs_f64(secs), None)
    } else {
        let warning = format!("the token service's {name} ({secs} s) is not positive; it was written as expired");
        (Duration::ZERO, Some(warning))
    }
}

/// Milliseconds since the epoch of `now + lifetime`, never past [`credentials::LATEST_EPOCH_SECS`].
fn epoch_ms_after(now: SystemTime, lifetime: Duration) -> u64 {
    let at = now
        .checked_add(lifetime)
        .unwrap_or_else(credentials::latest_time)
        .min(credentials::latest_time());
    let ms = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// The new login file: the old one with the answer's tokens (and expiry) written in,
/// every other key kept in its place. An out-of-range lifetime is bounded (see
/// [`MAX_ACCESS_TOKEN_LIFETIME`]) and named in [`NewLogin::warnings`].
/// `Err` when the answer is not one the CLI could use (the file must then stay as it was).
pub fn apply_answer(runtime: LoginRuntime, old: &[u8], answer: &[u8], now: SystemTime) -> Result<NewLogin, String> {
    let mut root: Value = serde_json::from_slice(old).map_err(|_| "the login file is no longer valid JSON")?;
    let answer: Value = serde_json::from_slice(answer).map_err(|_| "the token service's answer is not JSON")?;
    let field = |name: &str| answer.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    let access = field("access_token").ok_or("the token service's answer has no access_token")?;
    let mut warnings = Vec::new();
    let expires_at;
    match runtime {
        LoginRuntime::Claude => {
            let expires_in = answer
                .get("expires_in")
                .and_then(Value::as_f64)
                .ok_or("the token service's answer has no expires_in")?;
            let (lifetime, warning) = bounded_lifetime("expires_in", expires_in, MAX_ACCESS_TOKEN_LIFETIME);
            warnings.extend(warning);
            let exp_ms = epoch_ms_after(now, lifetime);
            expires_at = Some(credentials::time_from_millis(exp_ms));
            let oauth = object_at(&mut root, "claudeAiOauth")?;
            oauth.insert("accessToken".into(), access.into());
            // As Claude Code: an answer without a refresh token keeps the old one.
            if let Some(refresh) = field("refresh_token") {
                oauth.insert("refreshToken".into(), refresh.into());
            }
            oauth.insert("expiresAt".into(), exp_ms.into());
            if let Some(scope) = field("scope") {
                let scopes: Vec<Value> = scope.split(' ').filter(|s| !s.is_empty()).map(Value::from).collect();
                oauth.insert("scopes".into(), scopes.into());
            }
            if let Some(secs) = answer.get("refresh_token_expires_in").and_then(Value::as_f64) {
                let (lifetime, warning) =
                    bounded_lifetime("refresh_token_expires_in", secs, MAX_REFRESH_TOKEN_LIFETIME);
                warnings.extend(warning);
                oauth.insert("refreshTokenExpiresAt".into(), epoch_ms_after(now, lifetime).into());
            }
        }
        LoginRuntime::Codex => {
            // Codex parses the id token when it loads the file: never write one it cannot read.
            let id = field("id_token");
            if let Some(id) = id {
                jwt::claims(id).map_err(|why| format!("the answer's id_token is unusable: {why}"))?;
            }
            // The JWT is written as issued (it is signed); only what moonauth reports is bounded.
            let exp = jwt::claims(access)
                .ok()
                .and_then(|c| c.get("exp").and_then(Value::as_u64))
                .map(credentials::time_from_secs);
            let bound = now
                .checked_add(MAX_ACCESS_TOKEN_LIFETIME)
                .unwrap_or_else(credentials::latest_time);
            expires_at = match exp {
                Some(exp) if exp > bound => {
                    warnings.push(format!(
                        "the new access token claims to be valid until {}, beyond the bound of {}; moonauth counts {} from now",
                        credentials::rfc3339(exp),
                        crate::credentials::human_duration(MAX_ACCESS_TOKEN_LIFETIME),
                        crate::credentials::human_duration(MAX_ACCESS_TOKEN_LIFETIME)
                    ));
                    Some(bound.min(credentials::latest_time()))
                }
                Some(exp) if exp <= now => {
                    warnings.push(format!(
                        "the token service issued an access token that expired at {}",
                        credentials::rfc3339(exp)
                    ));
                    Some(exp)
                }
                other => other,
            };
            let obj = root.as_object_mut().ok_or("the login file is not a JSON object")?;
            let tokens = match obj.get_mut("tokens") {
                Some(Value::Object(t)) => t,
                _ => return Err("the login file has no tokens object".into()),
            };
            if let Some(id) = id {
                tokens.insert("id_token".into(), id.into());
            }
            tokens.insert("access_token".into(), access.into());
            if let Some(refresh) = field("refresh_token") {
                tokens.insert("refresh_token".into(), refresh.into());
            }
            obj.insert("last_refresh".into(), rfc3339_micros(now).into());
        }
    }
    let mut bytes = serde_json::to_vec_pretty(&root).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    Ok(NewLogin {
        bytes,
        expires_at,
        warnings,
    })
}

/// Codex's `last_refresh` format (microseconds), for any clock value.
use crate::time::rfc3339_micros;

fn object_at<'a>(root: &'a mut Value, key: &str) -> Result<&'a mut Map<String, Value>, String> {
    match root.get_mut(key) {
        Some(Value::Object(o)) => Ok(o),
        _ => Err(format!("the login file has no {key} object")),
    }
}

/// Sorts a token service's refusal: a refused grant is dead, anything the service may
/// answer differently next time is retryable. `body` is only quoted after scrubbing.
pub fn classify_status(status: u16, body: &[u8]) -> RefreshError {
    let json = serde_json::from_slice::<Value>(body).ok();
    let code = json.as_ref().and_then(|v| {
        let e = v.get("error")?;
        e.as_str()
            .map(str::to_string)
            .or_else(|| e.get("code").and_then(Value::as_str).map(str::to_string))
            .or_else(|| e.get("type").and_then(Value::as_str).map(str::to_string))
    });
    // The service's own sentence when it gives one (OAuth's error_description, OpenAI's
    // error.message), else the body.
    let text = json
        .as_ref()
        .and_then(|v| {
            v.get("error_description")
                .or_else(|| v.get("error").and_then(|e| e.get("message")))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let dead_code = code.as_deref().is_some_and(|c| {
        matches!(
            c,
            "invalid_grant"
                | "refresh_token_reused"
                | "refresh_token_expired"
                | "refresh_token_invalidated"
                | "invalid_refresh_token"
                | "token_revoked"
        )
    });
    let quoted = quote(&text);
    let what = match &code {
        Some(c) => format!("HTTP {status} {}", redact::scrub(c)),
        None => format!("HTTP {status}"),
    };
    match status {
        400 | 401 => RefreshError::Dead(format!(
            "the token service refused the refresh token ({what}: {quoted})"
        )),
        _ if dead_code && (400..500).contains(&status) => RefreshError::Dead(format!(
            "the token service refused the refresh token ({what}: {quoted})"
        )),
        _ => RefreshError::Retryable(format!("the token service answered {what}: {quoted}")),
    }
}

/// A server's text for a message: token-shaped words masked first, then cut short.
fn quote(text: &str) -> String {
    let scrubbed = redact::scrub(text.trim());
    let mut cut: String = scrubbed.chars().take(200).collect();
    if cut.len() < scrubbed.len() {
        cut.push('…');
    }
    cut
}

/// Posts `body` (JSON) to `url` and returns the answer of a 200; a refusal or a network
/// failure is classified. One attempt; the caller retries what is retryable.
pub fn post(url: &str, body: &Secret, timeout: Duration) -> Result<Vec<u8>, RefreshError> {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
        .http_status_as_error(false)
        // A redirect would re-send the refresh token somewhere else; the CLIs do not follow one either.
        .max_redirects(0)
        .user_agent(concat!("moonauth/", env!("CARGO_PKG_VERSION")))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut response = agent
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .send(body.expose())
        .map_err(|e| {
            RefreshError::Retryable(format!(
                "cannot reach the token service: {}",
                redact::scrub(&e.to_string())
            ))
        })?;
    let status = response.status().as_u16();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .map_err(|e| {
            RefreshError::Retryable(format!(
                "the token service's answer could not be read: {}",
                redact::scrub(&e.to_string())
            ))
        })?;
    if status == 200 {
        Ok(bytes)
    } else {
        Err(classify_status(status, &bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    const NOW: u64 = 1_800_000_000;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    fn jwt(claims: &str) -> String {
        format!("eyJhbGciOiJub25lIn0.{}.sig", URL_SAFE_NO_PAD.encode(claims))
    }

    fn claude(exp_ms: u64) -> String {
        format!(
            r#"{{"claudeAiOauth":{{"accessToken":"sk-ant-oat01-OLD","refreshToken":"sk-ant-ort01-OLD","expiresAt":{exp_ms},"scopes":["user:inference","user:profile"],"subscriptionType":"max","futureKey":{{"a":1}}}},"otherTop":true}}"#
        )
    }

    fn codex(exp: u64, last: &str) -> String {
        format!(
            r#"{{"OPENAI_API_KEY":null,"tokens":{{"id_token":"{}","access_token":"{}","refresh_token":"rt_OLD","account_id":"acct-1"}},"last_refresh":"{last}","agent_identity":null,"unknown":[1,2]}}"#,
            jwt(r#"{"email":"a@b.c"}"#),
            jwt(&format!(r#"{{"exp":{exp}}}"#))
        )
    }

    #[test]
    fn claude_is_due_inside_the_lead_only() {
        let lead = Duration::from_secs(3600);
        let t = read_tokens(LoginRuntime::Claude, claude((NOW + 7200) * 1000).as_bytes()).unwrap();
        assert_eq!(refresh_due(LoginRuntime::Claude, &t, now(), lead), None);
        let t = read_tokens(LoginRuntime::Claude, claude((NOW + 1800) * 1000).as_bytes()).unwrap();
        assert!(refresh_due(LoginRuntime::Claude, &t, now(), lead)
            .unwrap()
            .contains("30m"));
        let t = read_tokens(LoginRuntime::Claude, claude((NOW - 1) * 1000).as_bytes()).unwrap();
        assert!(refresh_due(LoginRuntime::Claude, &t, now(), lead)
            .unwrap()
            .contains("expired"));
    }

    #[test]
    fn codex_is_due_on_expiry_or_on_last_refresh_age() {
        let lead = Duration::from_secs(3600);
        let recent = humantime::format_rfc3339_micros(now() - Duration::from_secs(86_400)).to_string();
        let old = humantime::format_rfc3339_micros(now() - Duration::from_secs(8 * 86_400 - 1800)).to_string();
        let t = read_tokens(LoginRuntime::Codex, codex(NOW + 86_400, &recent).as_bytes()).unwrap();
        assert_eq!(refresh_due(LoginRuntime::Codex, &t, now(), lead), None);
        let t = read_tokens(LoginRuntime::Codex, codex(NOW + 86_400, &old).as_bytes()).unwrap();
        assert!(refresh_due(LoginRuntime::Codex, &t, now(), lead)
            .unwrap()
            .contains("last refreshed"));
        let t = read_tokens(LoginRuntime::Codex, codex(NOW + 60, &recent).as_bytes()).unwrap();
        assert!(refresh_due(LoginRuntime::Codex, &t, now(), lead).is_some());
    }

    #[test]
    fn api_keys_and_logins_without_refresh_tokens_are_not_refreshable() {
        assert!(read_tokens(LoginRuntime::Codex, br#"{"OPENAI_API_KEY":"sk-x"}"#).is_err());
        assert!(read_tokens(LoginRuntime::Claude, br#"{"claudeAiOauth":{"accessToken":"a"}}"#).is_err());
        let err = read_tokens(
            LoginRuntime::Claude,
            br#"{"claudeAiOauth":{"accessToken":"sk-ant-SECRET""#,
        )
        .unwrap_err();
        assert!(!err.contains("SECRET"));
    }

    #[test]
    fn request_bodies_are_the_clis_own() {
        let t = read_tokens(LoginRuntime::Claude, claude(0).as_bytes()).unwrap();
        let body: Value = serde_json::from_str(request_body(LoginRuntime::Claude, &t).expose()).unwrap();
        assert_eq!(body["grant_type"], "refresh_token");
        assert_eq!(body["refresh_token"], "sk-ant-ort01-OLD");
        assert_eq!(body["client_id"], claude::CLIENT_ID);
        assert_eq!(body["scope"], "user:inference user:profile");
        let t = read_tokens(LoginRuntime::Codex, codex(0, "2026-01-01T00:00:00Z").as_bytes()).unwrap();
        let body: Value = serde_json::from_str(request_body(LoginRuntime::Codex, &t).expose()).unwrap();
        assert_eq!(body["client_id"], codex::CLIENT_ID);
        assert_eq!(body["scope"], codex::SCOPE);
        assert_eq!(body["refresh_token"], "rt_OLD");
    }

    #[test]
    fn claude_answer_keeps_every_other_key() {
        let answer = br#"{"access_token":"sk-ant-oat01-NEW","expires_in":28800,"scope":"user:inference user:profile","token_type":"Bearer"}"#;
        let NewLogin {
            bytes, expires_at: exp, ..
        } = apply_answer(LoginRuntime::Claude, claude(1).as_bytes(), answer, now()).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let o = &v["claudeAiOauth"];
        assert_eq!(o["accessToken"], "sk-ant-oat01-NEW");
        assert_eq!(
            o["refreshToken"], "sk-ant-ort01-OLD",
            "no refresh_token in the answer keeps the old one"
        );
        assert_eq!(o["expiresAt"], (NOW + 28_800) * 1000);
        assert_eq!(o["subscriptionType"], "max");
        assert_eq!(o["futureKey"]["a"], 1);
        assert_eq!(v["otherTop"], true);
        assert_eq!(exp, Some(now() + Duration::from_secs(28_800)));
        let keys: Vec<&String> = o.as_object().unwrap().keys().collect();
        assert_eq!(keys[0], "accessToken", "key order is kept");
    }

    #[test]
    fn codex_answer_rewrites_tokens_and_last_refresh_only() {
        let new_access = jwt(&format!(r#"{{"exp":{}}}"#, NOW + 864_000));
        let new_id = jwt(r#"{"email":"a@b.c","n":2}"#);
        let answer = format!(r#"{{"id_token":"{new_id}","access_token":"{new_access}","refresh_token":"rt_NEW"}}"#);
        let NewLogin {
            bytes, expires_at: exp, ..
        } = apply_answer(
            LoginRuntime::Codex,
            codex(1, "2026-01-01T00:00:00Z").as_bytes(),
            answer.as_bytes(),
            now(),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["tokens"]["access_token"], new_access.as_str());
        assert_eq!(v["tokens"]["id_token"], new_id.as_str());
        assert_eq!(v["tokens"]["refresh_token"], "rt_NEW");
        assert_eq!(v["tokens"]["account_id"], "acct-1");
        assert_eq!(v["unknown"], serde_json::json!([1, 2]));
        assert!(v["agent_identity"].is_null());
        assert!(v["last_refresh"].as_str().unwrap().starts_with("2027-01-15T08:00:00"));
        assert_eq!(exp, Some(now() + Duration::from_secs(864_000)));
        // The result is a login the classifier reads as valid.
        let i = crate::credentials::codex::classify(&bytes, now(), Duration::ZERO);
        assert_eq!(i.class, crate::credentials::LoginClass::OauthValid);
    }

    #[test]
    fn unusable_answers_are_refused() {
        let old = codex(1, "2026-01-01T00:00:00Z");
        for answer in [
            &b"not json"[..],
            br#"{"refresh_token":"rt"}"#,
            br#"{"access_token":"a","id_token":"not-a-jwt"}"#,
        ] {
            assert!(apply_answer(LoginRuntime::Codex, old.as_bytes(), answer, now()).is_err());
        }
        assert!(apply_answer(
            LoginRuntime::Claude,
            claude(1).as_bytes(),
            br#"{"access_token":"a"}"#,
            now()
        )
        .is_err());
    }

    #[test]
    fn out_of_range_lifetimes_are_bounded_and_named() {
        let max_ms = (NOW + MAX_ACCESS_TOKEN_LIFETIME.as_secs()) * 1000;
        for (expires_in, want_ms, warned) in [
            ("28800", (NOW + 28_800) * 1000, false),
            ("1e13", max_ms, true),
            ("1e300", max_ms, true),
            ("-5", NOW * 1000, true),
            ("0", NOW * 1000, true),
        ] {
            let answer = format!(
                r#"{{"access_token":"sk-ant-oat01-NEW","expires_in":{expires_in},"refresh_token_expires_in":1e300}}"#
            );
            let new = apply_answer(LoginRuntime::Claude, claude(1).as_bytes(), answer.as_bytes(), now()).unwrap();
            let v: Value = serde_json::from_slice(&new.bytes).unwrap();
            assert_eq!(v["claudeAiOauth"]["expiresAt"], want_ms, "{expires_in}");
            assert_eq!(new.expires_at, Some(UNIX_EPOCH + Duration::from_millis(want_ms)));
            assert_eq!(
                new.warnings.iter().any(|w| w.contains("service's expires_in")),
                warned,
                "{expires_in}: {:?}",
                new.warnings
            );
            assert!(new.warnings.iter().any(|w| w.contains("refresh_token_expires_in")));
            assert!(!new.warnings.concat().contains("NEW"));
        }
        let answer = format!(r#"{{"access_token":"{}"}}"#, jwt(r#"{"exp":18446744073709551615}"#));
        let new = apply_answer(
            LoginRuntime::Codex,
            codex(1, "2026-01-01T00:00:00Z").as_bytes(),
            answer.as_bytes(),
            now(),
        )
        .unwrap();
        assert_eq!(new.expires_at, Some(now() + MAX_ACCESS_TOKEN_LIFETIME));
        assert_eq!(new.warnings.len(), 1, "{:?}", new.warnings);
    }

    #[test]
    fn refusals_are_dead_and_outages_retryable() {
        let reused = br#"{"error":{"message":"Your refresh token has already been used","type":"invalid_request_error","code":"refresh_token_reused"}}"#;
        assert!(matches!(classify_status(401, reused), RefreshError::Dead(_)));
        assert!(matches!(
            classify_status(
                400,
                br#"{"error":"invalid_grant","error_description":"Refresh token not found or invalid"}"#
            ),
            RefreshError::Dead(_)
        ));
        assert!(matches!(
            classify_status(403, br#"{"error":"invalid_grant"}"#),
            RefreshError::Dead(_)
        ));
        for s in [429, 500, 502, 503, 529, 404, 403] {
            assert!(matches!(classify_status(s, b"oops"), RefreshError::Retryable(_)), "{s}");
        }
        let e = classify_status(500, b"upstream said sk-ant-ort01-abcdefghijklmnop");
        assert!(!e.reason().contains("sk-ant-ort01"), "{}", e.reason());
    }
}

//! Requesting the step's OIDC token to read its claims (`moonauth ci check --oidc`):
//! GET `$ACTIONS_ID_TOKEN_REQUEST_URL&audience=…` with `Authorization: Bearer
//! $ACTIONS_ID_TOKEN_REQUEST_TOKEN`; the JSON answer's `value` is the JWT. The token is
//! decoded (not verified) and dropped: only its claims leave this module.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::redact::Secret;

pub use crate::config::DEFAULT_OIDC_AUDIENCE as DEFAULT_AUDIENCE;

/// The claims shown, in this order; others are left out.
pub const SHOWN_CLAIMS: [&str; 12] = [
    "event_name",
    "repository",
    "actor",
    "ref",
    "sha",
    "job_workflow_ref",
    "run_id",
    "sub",
    "aud",
    "iss",
    "exp",
    "runner_environment",
];

/// The largest answer read.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// Why no claims could be read; never carries the token or the request token.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not both set")]
    NotAvailable,
    #[error("cannot reach the OIDC token service: {0}")]
    Unreachable(String),
    #[error("the OIDC token service answered HTTP {0}")]
    Status(u16),
    #[error("the OIDC token service's answer has no token: {0}")]
    BadAnswer(&'static str),
}

/// The request URL with `audience` appended (percent-encoded).
pub fn request_url(base: &str, audience: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}audience={}", percent_encode(audience))
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Requests a token for `audience` and returns its shown claims.
pub fn claims(
    url: &str,
    request_token: &Secret,
    audience: &str,
    timeout: Duration,
) -> Result<Map<String, Value>, OidcError> {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        // A redirect would send the request token elsewhere.
        .max_redirects(0)
        .user_agent(concat!("moonauth/", env!("CARGO_PKG_VERSION")))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut response = agent
        .get(&request_url(url, audience))
        .header("authorization", &format!("Bearer {}", request_token.expose()))
        .header("accept", "application/json")
        .call()
        .map_err(|e| OidcError::Unreachable(crate::redact::scrub(&e.to_string())))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(OidcError::Status(status));
    }
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .map_err(|e| OidcError::Unreachable(crate::redact::scrub(&e.to_string())))?;
    let answer: Value = serde_json::from_slice(&bytes).map_err(|_| OidcError::BadAnswer("not JSON"))?;
    let token = answer
        .get("value")
        .and_then(Value::as_str)
        .ok_or(OidcError::BadAnswer("no `value`"))?;
    let all = crate::credentials::jwt::claims(token).map_err(OidcError::BadAnswer)?;
    Ok(SHOWN_CLAIMS
        .iter()
        .filter_map(|name| all.get(*name).map(|v| (name.to_string(), v.clone())))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audience_is_appended_and_encoded() {
        assert_eq!(
            request_url("http://h/t?api-version=2.0", "claude-code-github-action"),
            "http://h/t?api-version=2.0&audience=claude-code-github-action"
        );
        assert_eq!(request_url("http://h/t", "a b/c"), "http://h/t?audience=a%20b%2Fc");
    }
}

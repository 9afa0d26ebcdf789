//! Claude Code's login file: `<dir>/.credentials.json` with a `claudeAiOauth` object
//! (`accessToken`, `refreshToken`, `expiresAt` in epoch milliseconds, `subscriptionType`,
//! `rateLimitTier`, `scopes`). Unknown keys are allowed: newer CLIs add fields.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::{oauth_class, Inspection, LoginClass};

use crate::agents::claude::{CREDENTIALS_FILE, INFERENCE_SCOPE};

/// Classifies the bytes of `.credentials.json` at time `now`.
pub fn classify(bytes: &[u8], now: SystemTime, lead: Duration) -> Inspection {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            return Inspection::new(
                LoginClass::Malformed,
                format!(
                    "{CREDENTIALS_FILE} is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        }
    };
    let Some(root) = value.as_object() else {
        return Inspection::new(
            LoginClass::Malformed,
            format!("{CREDENTIALS_FILE} is not a JSON object"),
        );
    };
    let oauth = match root.get("claudeAiOauth") {
        None | Some(Value::Null) => {
            return Inspection::new(
                LoginClass::Missing,
                format!("{CREDENTIALS_FILE} holds no claudeAiOauth login"),
            )
        }
        Some(Value::Object(o)) => o,
        Some(_) => return Inspection::new(LoginClass::Malformed, "claudeAiOauth is not a JSON object".to_string()),
    };

    let access = match oauth.get("accessToken") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            return Inspection::new(
                LoginClass::Malformed,
                "claudeAiOauth.accessToken is not a string".into(),
            )
        }
    };
    let refreshable = match oauth.get("refreshToken") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => {
            return Inspection::new(
                LoginClass::Malformed,
                "claudeAiOauth.refreshToken is not a string".into(),
            )
        }
    };
    let expires_at = match oauth.get("expiresAt") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => None,
            // Clamped: a far-future value must not overflow (see `LATEST_EPOCH_SECS`).
            Some(ms) => Some(super::time_from_millis(ms)),
            None => {
                return Inspection::new(
                    LoginClass::Malformed,
                    "claudeAiOauth.expiresAt is not a positive integer".into(),
                )
            }
        },
        Some(_) => return Inspection::new(LoginClass::Malformed, "claudeAiOauth.expiresAt is not a number".into()),
    };

    let scopes: Option<Vec<String>> = oauth
        .get("scopes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect());
    let can_infer = scopes.as_ref().is_some_and(|s| s.iter().any(|s| s == INFERENCE_SCOPE));

    let mut inspection = match access.map(str::trim).filter(|a| !a.is_empty()) {
        None => Inspection::new(
            LoginClass::Missing,
            "claudeAiOauth has no access token (never logged in, logged out, or wiped after a refused refresh)".into(),
        ),
        // Claude Code 2.1.330 ignores such a login: `claude auth status` says not logged in.
        Some(_) if !can_infer => Inspection::new(
            LoginClass::Missing,
            format!("claudeAiOauth lacks the {INFERENCE_SCOPE} scope, so Claude Code does not use this login"),
        ),
        Some(_) => {
            let (class, detail) = oauth_class(expires_at, refreshable, now, lead);
            Inspection::new(class, detail)
        }
    };
    inspection.expires_at = expires_at;
    inspection.refreshable = refreshable;
    inspection.plan = oauth
        .get("subscriptionType")
        .and_then(Value::as_str)
        .map(str::to_string);
    inspection.rate_limit_tier = oauth.get("rateLimitTier").and_then(Value::as_str).map(str::to_string);
    inspection.scopes = scopes;
    inspection
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const NOW_MS: u64 = 1_800_000_000_000;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(NOW_MS)
    }

    fn class_of(json: &str) -> LoginClass {
        classify(json.as_bytes(), now(), Duration::from_secs(600)).class
    }

    #[test]
    fn classification_table() {
        let in_1h = NOW_MS + 3_600_000;
        let in_5m = NOW_MS + 300_000;
        let past = NOW_MS - 1;
        let cases: Vec<(String, LoginClass)> = vec![
            (
                format!(
                    r#"{{"claudeAiOauth":{{"scopes":["user:inference"],"accessToken":"a","refreshToken":"r","expiresAt":{in_1h}}}}}"#
                ),
                LoginClass::OauthValid,
            ),
            (
                format!(
                    r#"{{"claudeAiOauth":{{"scopes":["user:inference"],"accessToken":"a","refreshToken":"r","expiresAt":{in_5m}}}}}"#
                ),
                LoginClass::OauthExpiringSoon,
            ),
            (
                format!(
                    r#"{{"claudeAiOauth":{{"scopes":["user:inference"],"accessToken":"a","refreshToken":"r","expiresAt":{past}}}}}"#
                ),
                LoginClass::OauthExpiredRefreshable,
            ),
            (
                format!(r#"{{"claudeAiOauth":{{"scopes":["user:inference"],"accessToken":"a","expiresAt":{past}}}}}"#),
                LoginClass::OauthExpiredNotRefreshable,
            ),
            (
                format!(
                    r#"{{"claudeAiOauth":{{"scopes":["user:inference"],"accessToken":"a","refreshToken":"","expiresAt":{past}}}}}"#
                ),
                LoginClass::OauthExpiredNotRefreshable,
            ),
            (
                r#"{"claudeAiOauth":{"scopes":["user:inference"],"accessToken":"a"}}"#.into(),
                LoginClass::OauthValid,
            ),
            (r#"{"claudeAiOauth":{}}"#.into(), LoginClass::Missing),
            // Claude Code 2.1.330 does not use a login without the inference scope.
            (r#"{"claudeAiOauth":{"accessToken":"a"}}"#.into(), LoginClass::Missing),
            (
                r#"{"claudeAiOauth":{"scopes":["user:profile"],"accessToken":"a"}}"#.into(),
                LoginClass::Missing,
            ),
            (
                r#"{"claudeAiOauth":{"accessToken":"","refreshToken":"","expiresAt":0}}"#.into(),
                LoginClass::Missing,
            ),
            (r#"{}"#.into(), LoginClass::Missing),
            (r#"{"claudeAiOauth":"x"}"#.into(), LoginClass::Malformed),
            (r#"{"claudeAiOauth":{"accessToken":5}}"#.into(), LoginClass::Malformed),
            (
                r#"{"claudeAiOauth":{"accessToken":"a","expiresAt":"soon"}}"#.into(),
                LoginClass::Malformed,
            ),
            (r#"[1,2]"#.into(), LoginClass::Malformed),
            (r#"{"claudeAiOauth": {"accessToken": "#.into(), LoginClass::Malformed),
        ];
        for (json, want) in cases {
            assert_eq!(class_of(&json), want, "{json}");
        }
    }

    #[test]
    fn metadata_is_read_and_unknown_keys_are_allowed() {
        let json = format!(
            r#"{{"claudeAiOauth":{{"accessToken":"a","refreshToken":"r","expiresAt":{},"subscriptionType":"max","rateLimitTier":"default_claude_max_20x","scopes":["user:inference"],"subscriptionTypeSource":"x","clientId":"y"}},"other":1}}"#,
            NOW_MS + 3_600_000
        );
        let i = classify(json.as_bytes(), now(), Duration::from_secs(600));
        assert_eq!(i.class, LoginClass::OauthValid);
        assert_eq!(i.plan.as_deref(), Some("max"));
        assert_eq!(i.rate_limit_tier.as_deref(), Some("default_claude_max_20x"));
        assert_eq!(
            i.expires_at,
            Some(UNIX_EPOCH + Duration::from_millis(NOW_MS + 3_600_000))
        );
        assert!(i.refreshable);
    }

    #[test]
    fn malformed_detail_never_contains_file_content() {
        let i = classify(
            br#"{"claudeAiOauth": {"accessToken": "sk-ant-oat01-SECRET"#,
            now(),
            Duration::ZERO,
        );
        assert_eq!(i.class, LoginClass::Malformed);
        assert!(!i.detail.contains("SECRET"), "{}", i.detail);
    }
}

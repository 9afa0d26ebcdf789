//! Claude Code's login file: `<dir>/.credentials.json` with a `claudeAiOauth` object
//! (`accessToken`, `refreshToken`, `expiresAt` in epoch milliseconds, `subscriptionType`,
//! `rateLimitTier`, `scopes`). Unknown keys are allowed: newer CLIs add fields.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::{oauth_class, Inspection, LoginClass, Unreadable};
use crate::agents::claude::{CREDENTIALS_FILE, INFERENCE_SCOPE};
use crate::redact::Secret;

/// A Claude Code login, as `.credentials.json` holds it under `claudeAiOauth`. The one
/// reading of the file: inspection, status, preflight and refresh all start here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaudeLogin {
    /// `accessToken`, when present and not blank.
    pub access_token: Option<Secret>,
    /// `refreshToken`, when present and not blank.
    pub refresh_token: Option<Secret>,
    /// `expiresAt` (epoch milliseconds). `0` is the epoch, so expired: Claude Code's own
    /// test is `now + 5 min >= expiresAt`, and it writes `expiresAt: 0` when it wipes a
    /// login whose refresh was refused. Absent means no expiry to go by.
    pub expires_at: Option<SystemTime>,
    /// `scopes`, the strings among them.
    pub scopes: Option<Vec<String>>,
    /// `subscriptionType` (`pro`, `max`, …).
    pub plan: Option<String>,
    /// `rateLimitTier`.
    pub rate_limit_tier: Option<String>,
    /// `clientId`, when the file names one (newer CLIs).
    pub client_id: Option<String>,
}

/// Reads the bytes of `.credentials.json`. Unknown keys are allowed; a known key of the
/// wrong type makes the file malformed. Never echoes file content.
pub fn parse(bytes: &[u8]) -> Result<ClaudeLogin, Unreadable> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| Unreadable::NotJson {
        line: e.line(),
        column: e.column(),
    })?;
    let root = value.as_object().ok_or(Unreadable::NotObject)?;
    let oauth = match root.get("claudeAiOauth") {
        None | Some(Value::Null) => return Err(Unreadable::NoLogin),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(Unreadable::Malformed("claudeAiOauth is not a JSON object".into())),
    };
    let access_token = secret(oauth, "accessToken")?;
    let refresh_token = secret(oauth, "refreshToken")?;
    let expires_at = match oauth.get("expiresAt") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            // Clamped: a far-future value must not overflow (see `LATEST_EPOCH_SECS`).
            Some(ms) => Some(super::time_from_millis(ms)),
            None => {
                return Err(Unreadable::Malformed(
                    "claudeAiOauth.expiresAt is not a positive integer".into(),
                ))
            }
        },
        Some(_) => return Err(Unreadable::Malformed("claudeAiOauth.expiresAt is not a number".into())),
    };
    let text = |key: &str| oauth.get(key).and_then(Value::as_str).map(str::to_string);
    Ok(ClaudeLogin {
        access_token,
        refresh_token,
        expires_at,
        scopes: oauth
            .get("scopes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()),
        plan: text("subscriptionType"),
        rate_limit_tier: text("rateLimitTier"),
        client_id: text("clientId").filter(|c| !c.trim().is_empty()),
    })
}

/// Who a Claude login belongs to, from `oauthAccount` in `.claude.json` (the CLI's
/// account cache beside the credentials). Holds no token: only the e-mail and org name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClaudeAccount {
    pub email: Option<String>,
    pub organization: Option<String>,
}

/// Reads `oauthAccount.emailAddress` and `oauthAccount.organizationName` from the bytes of
/// `.claude.json`; `None` when the file is not JSON or names no account. Only those two
/// fields are decoded: the rest of the file (every project Claude Code has seen, often
/// megabytes) is skipped without being built, since preflight reads it on every start.
pub fn parse_account(bytes: &[u8]) -> Option<ClaudeAccount> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(rename = "oauthAccount")]
        account: Option<Account>,
    }
    #[derive(serde::Deserialize)]
    struct Account {
        #[serde(rename = "emailAddress", default, deserialize_with = "lenient_text")]
        email: Option<String>,
        #[serde(rename = "organizationName", default, deserialize_with = "lenient_text")]
        organization: Option<String>,
    }
    /// A non-blank string, trimmed; any other JSON value counts as absent.
    fn lenient_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let v = <Value as serde::Deserialize>::deserialize(d)?;
        Ok(v.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string))
    }
    let account = serde_json::from_slice::<File>(bytes).ok()?.account?;
    let found = ClaudeAccount {
        email: account.email,
        organization: account.organization,
    };
    (found != ClaudeAccount::default()).then_some(found)
}

/// Adds the account of `.claude.json` to an inspection that has none.
pub fn with_account(mut inspection: Inspection, account_json: Option<&[u8]>) -> Inspection {
    if let Some(account) = account_json.and_then(parse_account) {
        if inspection.email.is_none() {
            inspection.email = account.email;
        }
        if inspection.organization.is_none() {
            inspection.organization = account.organization;
        }
    }
    inspection
}

/// A token field: absent, null and blank are all "none"; any other type is malformed.
fn secret(oauth: &Map<String, Value>, key: &str) -> Result<Option<Secret>, Unreadable> {
    match oauth.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok((!s.trim().is_empty()).then(|| Secret::new(s.as_str()))),
        Some(_) => Err(Unreadable::Malformed(format!("claudeAiOauth.{key} is not a string"))),
    }
}

/// Classifies the bytes of `.credentials.json` at time `now`.
pub fn classify(bytes: &[u8], now: SystemTime, lead: Duration) -> Inspection {
    match parse(bytes) {
        Ok(login) => verdict(&login, now, lead),
        Err(Unreadable::NotJson { line, column }) => Inspection::new(
            LoginClass::Malformed,
            format!("{CREDENTIALS_FILE} is not valid JSON (line {line}, column {column})"),
        ),
        Err(Unreadable::NotObject) => Inspection::new(
            LoginClass::Malformed,
            format!("{CREDENTIALS_FILE} is not a JSON object"),
        ),
        Err(Unreadable::NoLogin) => Inspection::new(
            LoginClass::Missing,
            format!("{CREDENTIALS_FILE} holds no claudeAiOauth login"),
        ),
        Err(Unreadable::Malformed(reason)) => Inspection::new(LoginClass::Malformed, reason),
    }
}

/// What a parsed login is worth at time `now`.
pub fn verdict(login: &ClaudeLogin, now: SystemTime, lead: Duration) -> Inspection {
    let refreshable = login.refresh_token.is_some();
    let can_infer = login
        .scopes
        .as_ref()
        .is_some_and(|s| s.iter().any(|s| s == INFERENCE_SCOPE));
    let mut inspection = match &login.access_token {
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
            let (class, detail) = oauth_class(login.expires_at, refreshable, now, lead);
            Inspection::new(class, detail)
        }
    };
    inspection.expires_at = login.expires_at;
    inspection.refreshable = refreshable;
    inspection.plan = login.plan.clone();
    inspection.rate_limit_tier = login.rate_limit_tier.clone();
    inspection.scopes = login.scopes.clone();
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
    fn expires_at_zero_is_expired_for_inspection_and_refresh_alike() {
        // Claude Code's own test is `now + 5 min >= expiresAt`: 0 is long past.
        let json =
            r#"{"claudeAiOauth":{"scopes":["user:inference"],"accessToken":"a","refreshToken":"r","expiresAt":0}}"#;
        let i = classify(json.as_bytes(), now(), Duration::from_secs(600));
        assert_eq!(i.class, LoginClass::OauthExpiredRefreshable);
        assert_eq!(i.expires_at, Some(UNIX_EPOCH));
        let lead = Duration::from_secs(600);
        let t = crate::credentials::refresh::read_tokens(crate::agents::LoginRuntime::Claude, json.as_bytes()).unwrap();
        assert_eq!(t.expires_at, i.expires_at);
        assert!(
            crate::credentials::refresh::refresh_due(crate::agents::LoginRuntime::Claude, &t, now(), lead)
                .unwrap()
                .contains("expired")
        );
    }

    #[test]
    fn the_parsed_login_keeps_its_tokens_secret() {
        let login =
            parse(br#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-SECRET","refreshToken":" ","clientId":"c"}}"#)
                .unwrap();
        assert_eq!(
            login.access_token.as_ref().map(|t| t.expose()),
            Some("sk-ant-oat01-SECRET")
        );
        assert_eq!(login.refresh_token, None, "a blank refresh token is none");
        assert_eq!(login.client_id.as_deref(), Some("c"));
        assert!(!format!("{login:?}").contains("SECRET"));
        assert_eq!(parse(b"{}"), Err(Unreadable::NoLogin));
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

    #[test]
    fn the_account_comes_from_oauth_account_and_nothing_else() {
        let json = br#"{"oauthAccount":{"accountUuid":"u","emailAddress":"dev@example.com","organizationName":"Acme","organizationUuid":"o"},"userID":"x"}"#;
        let a = parse_account(json).unwrap();
        assert_eq!(a.email.as_deref(), Some("dev@example.com"));
        assert_eq!(a.organization.as_deref(), Some("Acme"));
        assert_eq!(parse_account(br#"{"hasCompletedOnboarding":true}"#), None);
        assert_eq!(parse_account(b"not json"), None);
        assert_eq!(parse_account(br#"{"oauthAccount":{"emailAddress":" "}}"#), None);
    }
}

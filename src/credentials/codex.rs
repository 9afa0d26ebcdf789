//! Codex's login file: `<CODEX_HOME>/auth.json` with `OPENAI_API_KEY` (null or a key),
//! `tokens` (`id_token` and `access_token` JWTs, `refresh_token`, `account_id`),
//! `last_refresh` (RFC 3339) and, in newer files, `auth_mode`. Also knows the
//! `config.toml` key that moves the login into the OS keyring.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::{jwt, oauth_class, Inspection, LoginClass, Unreadable};
use crate::agents::codex::{AUTH_FILE, OPENAI_API_KEY};
use crate::redact::Secret;

/// The `auth_mode` values Codex 0.169 accepts; any other makes the file unreadable to it.
const AUTH_MODES: [&str; 5] = [
    "apikey",
    "chatgpt",
    "chatgptAuthTokens",
    "agentIdentity",
    "personalAccessToken",
];
/// The claim under which the id token carries ChatGPT account details.
const AUTH_CLAIM: &str = "https://api.openai.com/auth";

/// A Codex login, as `auth.json` holds it. The one reading of the file: inspection,
/// status, preflight and refresh all start here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodexLogin {
    /// What the file logs Codex in with.
    pub credential: CodexCredential,
    /// `last_refresh`: when Codex last refreshed the tokens.
    pub last_refresh: Option<SystemTime>,
}

/// What an `auth.json` logs Codex in with, as Codex itself chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodexCredential {
    /// `OPENAI_API_KEY` (selected by `auth_mode: apikey`, or by a non-null key without an
    /// `auth_mode`). `None` when the key is blank: Codex still selects it.
    ApiKey(Option<Secret>),
    /// ChatGPT tokens are selected but the file has none.
    NoTokens,
    /// ChatGPT tokens.
    Chatgpt(ChatgptTokens),
}

/// The ChatGPT tokens of an `auth.json` and what their id token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatgptTokens {
    /// `tokens.access_token`, when not blank.
    pub access_token: Option<Secret>,
    /// `tokens.refresh_token`, when not blank (Codex requires the field, not a value).
    pub refresh_token: Option<Secret>,
    /// The access token's `exp`.
    pub expires_at: Option<SystemTime>,
    /// `tokens.account_id`, else the id token's `chatgpt_account_id`.
    pub account_id: Option<String>,
    /// The id token's `email`.
    pub email: Option<String>,
    /// The id token's `chatgpt_plan_type`.
    pub plan: Option<String>,
    /// Whether the file also holds an API key that `auth_mode` leaves unused.
    pub unused_api_key: bool,
}

/// Reads the bytes of `auth.json` as Codex 0.169 does: unknown keys are allowed, a known
/// key of the wrong type makes the file malformed, and the tokens are read only when the
/// file selects them. Never echoes file content.
pub fn parse(bytes: &[u8]) -> Result<CodexLogin, Unreadable> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| Unreadable::NotJson {
        line: e.line(),
        column: e.column(),
    })?;
    let root = value.as_object().ok_or(Unreadable::NotObject)?;
    let malformed = |reason: String| Err(Unreadable::Malformed(reason));

    // Codex treats any non-null OPENAI_API_KEY as "the API key login", even an empty one.
    let api_key = match root.get(OPENAI_API_KEY) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return malformed(format!("{OPENAI_API_KEY} is neither null nor a string")),
    };
    let auth_mode = match root.get("auth_mode") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) if AUTH_MODES.contains(&m.as_str()) => Some(m.as_str()),
        Some(other) => {
            return malformed(format!(
                "auth_mode {other} is not one Codex accepts ({})",
                AUTH_MODES.join(", ")
            ))
        }
    };
    let last_refresh = match root.get("last_refresh") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match humantime::parse_rfc3339_weak(s.strip_suffix("+00:00").unwrap_or(s)) {
            Ok(t) => Some(t),
            Err(_) => return malformed("last_refresh is not an RFC 3339 time".into()),
        },
        Some(_) => return malformed("last_refresh is not a string".into()),
    };
    let tokens = match root.get("tokens") {
        None | Some(Value::Null) => None,
        Some(Value::Object(t)) => Some(t),
        Some(_) => return malformed("tokens is not a JSON object".into()),
    };

    // Codex prefers the API key when the file has one, unless auth_mode says otherwise.
    let use_api_key = match auth_mode {
        Some(m) => m == "apikey",
        None => api_key.is_some(),
    };
    let blank = |s: &str| s.trim().is_empty();
    let credential = if use_api_key {
        CodexCredential::ApiKey(api_key.filter(|k| !blank(k)).map(Secret::new))
    } else {
        match tokens {
            None => CodexCredential::NoTokens,
            Some(tokens) => {
                let unused_api_key = api_key.is_some_and(|k| !blank(k));
                CodexCredential::Chatgpt(chatgpt_tokens(tokens, unused_api_key)?)
            }
        }
    };
    Ok(CodexLogin {
        credential,
        last_refresh,
    })
}

fn chatgpt_tokens(tokens: &Map<String, Value>, unused_api_key: bool) -> Result<ChatgptTokens, Unreadable> {
    let mut strings = [None::<&str>; 3];
    for (slot, key) in strings.iter_mut().zip(["id_token", "access_token", "refresh_token"]) {
        *slot = match tokens.get(key) {
            Some(Value::String(s)) => Some(s.as_str()),
            None | Some(Value::Null) => None,
            Some(_) => return Err(Unreadable::Malformed(format!("tokens.{key} is not a string"))),
        };
    }
    let [id_token, access_token, refresh_token] = strings;
    let (Some(id_token), Some(access_token)) = (id_token, access_token) else {
        return Err(Unreadable::Malformed("tokens lacks id_token or access_token".into()));
    };
    // Codex requires the field (it may be empty); without it the CLI cannot read the file.
    let Some(refresh_token) = refresh_token else {
        return Err(Unreadable::Malformed("tokens lacks refresh_token".into()));
    };
    // Codex parses the id token when it loads the file; an unparseable one is a broken login.
    let id_claims = jwt::claims(id_token).map_err(|why| Unreadable::Malformed(format!("tokens.id_token: {why}")))?;
    let expires_at = jwt::claims(access_token)
        .ok()
        .and_then(|c| c.get("exp").and_then(Value::as_u64))
        // Clamped: `exp` may be anything up to 2^64-1 (see `LATEST_EPOCH_SECS`).
        .map(super::time_from_secs);
    let auth = id_claims.get(AUTH_CLAIM);
    let non_blank = |s: &str| (!s.trim().is_empty()).then(|| Secret::new(s));
    Ok(ChatgptTokens {
        access_token: non_blank(access_token),
        refresh_token: non_blank(refresh_token),
        expires_at,
        account_id: tokens
            .get("account_id")
            .and_then(Value::as_str)
            .or_else(|| auth.and_then(|a| a.get("chatgpt_account_id")).and_then(Value::as_str))
            .map(str::to_string),
        email: id_claims.get("email").and_then(Value::as_str).map(str::to_string),
        plan: auth
            .and_then(|a| a.get("chatgpt_plan_type"))
            .and_then(Value::as_str)
            .map(str::to_string),
        unused_api_key,
    })
}

/// Classifies the bytes of `auth.json` at time `now`.
pub fn classify(bytes: &[u8], now: SystemTime, lead: Duration) -> Inspection {
    match parse(bytes) {
        Ok(login) => verdict(&login, now, lead),
        Err(Unreadable::NotJson { line, column }) => Inspection::new(
            LoginClass::Malformed,
            format!("{AUTH_FILE} is not valid JSON (line {line}, column {column})"),
        ),
        // Codex reads no login out of a file that is not an object.
        Err(Unreadable::NotObject | Unreadable::NoLogin) => {
            Inspection::new(LoginClass::Malformed, format!("{AUTH_FILE} is not a JSON object"))
        }
        Err(Unreadable::Malformed(reason)) => Inspection::new(LoginClass::Malformed, reason),
    }
}

/// What a parsed login is worth at time `now`.
pub fn verdict(login: &CodexLogin, now: SystemTime, lead: Duration) -> Inspection {
    let tokens = match &login.credential {
        CodexCredential::ApiKey(None) => {
            return Inspection::new(
                LoginClass::Missing,
                format!("{AUTH_FILE} selects its API key but the key is empty (codex login status still says logged in; every request fails)"),
            );
        }
        CodexCredential::ApiKey(Some(_)) => {
            let mut i = Inspection::new(
                LoginClass::ApiKey,
                format!("{AUTH_FILE} holds an OpenAI API key (API billing)"),
            );
            i.last_refresh = login.last_refresh;
            return i;
        }
        CodexCredential::NoTokens => {
            return Inspection::new(
                LoginClass::Missing,
                format!(
                    "{AUTH_FILE} holds no ChatGPT tokens (codex login status still says logged in; every request fails)"
                ),
            );
        }
        CodexCredential::Chatgpt(tokens) => tokens,
    };
    let refreshable = tokens.refresh_token.is_some();
    let (class, detail) = match tokens.access_token {
        None => (LoginClass::Missing, "tokens.access_token is empty".to_string()),
        Some(_) => oauth_class(tokens.expires_at, refreshable, now, lead),
    };
    let mut i = Inspection::new(class, detail);
    i.expires_at = tokens.expires_at;
    i.refreshable = refreshable;
    i.last_refresh = login.last_refresh;
    i.email = tokens.email.clone();
    i.plan = tokens.plan.clone();
    i.account_id = tokens.account_id.clone();
    if tokens.unused_api_key {
        i.detail
            .push_str("; the file also holds an API key, unused while auth_mode is chatgpt");
    }
    i
}

/// Where `config.toml` says Codex keeps its login (`cli_auth_credentials_store`), if it says.
pub fn credentials_store(config_toml: &str) -> Option<String> {
    config_toml.lines().find_map(|line| {
        let line = line.split('#').next()?.trim();
        let (key, value) = line.split_once('=')?;
        (key.trim() == "cli_auth_credentials_store")
            .then(|| value.trim().trim_matches(['"', '\'']).to_ascii_lowercase())
    })
}

/// `config.toml` with `cli_auth_credentials_store = "file"`, or `None` when it already
/// says so. Other settings and comments are kept as they are.
pub fn with_file_store(config_toml: Option<&str>) -> Option<String> {
    let text = config_toml.unwrap_or("");
    if credentials_store(text).as_deref() == Some("file") {
        return None;
    }
    let line = "cli_auth_credentials_store = \"file\"";
    let mut replaced = false;
    let mut out: Vec<String> = Vec::new();
    for l in text.lines() {
        let key = l.split('#').next().unwrap_or("").split('=').next().unwrap_or("").trim();
        if key == "cli_auth_credentials_store" && !replaced {
            out.push(line.to_string());
            replaced = true;
        } else {
            out.push(l.to_string());
        }
    }
    if !replaced {
        // Top-level keys must come before the first [table]; put it first.
        out.insert(0, line.to_string());
    }
    let mut s = out.join("\n");
    s.push('\n');
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use std::time::UNIX_EPOCH;

    const NOW: u64 = 1_800_000_000;

    fn jwt(claims: &str) -> String {
        format!("eyJhbGciOiJub25lIn0.{}.sig", URL_SAFE_NO_PAD.encode(claims))
    }

    fn auth(access_exp: u64, refresh: &str) -> String {
        let id = jwt(&format!(
            r#"{{"email":"dev@example.com","exp":{access_exp},"{AUTH_CLAIM}":{{"chatgpt_plan_type":"pro","chatgpt_account_id":"acct-1"}}}}"#
        ));
        let access = jwt(&format!(r#"{{"exp":{access_exp}}}"#));
        format!(
            r#"{{"OPENAI_API_KEY":null,"tokens":{{"id_token":"{id}","access_token":"{access}","refresh_token":"{refresh}","account_id":"acct-1"}},"last_refresh":"2026-11-20T10:00:00.123456Z"}}"#
        )
    }

    fn class_of(json: &str) -> LoginClass {
        classify(
            json.as_bytes(),
            UNIX_EPOCH + Duration::from_secs(NOW),
            Duration::from_secs(600),
        )
        .class
    }

    #[test]
    fn classification_table() {
        let cases: Vec<(String, LoginClass)> = vec![
            (auth(NOW + 3600, "rt_x"), LoginClass::OauthValid),
            (auth(NOW + 60, "rt_x"), LoginClass::OauthExpiringSoon),
            (auth(NOW - 60, "rt_x"), LoginClass::OauthExpiredRefreshable),
            (auth(NOW - 60, ""), LoginClass::OauthExpiredNotRefreshable),
            (r#"{"OPENAI_API_KEY":"sk-proj-x"}"#.into(), LoginClass::ApiKey),
            (r#"{"OPENAI_API_KEY":null}"#.into(), LoginClass::Missing),
            (r#"{}"#.into(), LoginClass::Missing),
            (
                r#"{"tokens":{"id_token":"not-a-jwt","access_token":"a","refresh_token":"r"}}"#.into(),
                LoginClass::Malformed,
            ),
            (r#"{"tokens":{"id_token": "x""#.into(), LoginClass::Malformed),
            (r#"{"tokens":"x"}"#.into(), LoginClass::Malformed),
            (r#"{"OPENAI_API_KEY":5}"#.into(), LoginClass::Malformed),
            (r#"{"OPENAI_API_KEY":""}"#.into(), LoginClass::Missing),
            (
                r#"{"OPENAI_API_KEY":"sk-x","auth_mode":"api_key"}"#.into(),
                LoginClass::Malformed,
            ),
            (
                r#"{"OPENAI_API_KEY":"sk-x","auth_mode":"apikey"}"#.into(),
                LoginClass::ApiKey,
            ),
            (
                r#"{"OPENAI_API_KEY":"sk-x","auth_mode":"chatgpt"}"#.into(),
                LoginClass::Missing,
            ),
            (r#"[]"#.into(), LoginClass::Malformed),
        ];
        for (json, want) in cases {
            assert_eq!(class_of(&json), want, "{json}");
        }
    }

    #[test]
    fn auth_mode_chatgpt_wins_over_a_stored_api_key() {
        let with_key = auth(NOW + 3600, "rt").replacen(
            r#""OPENAI_API_KEY":null"#,
            r#""OPENAI_API_KEY":"sk-x","auth_mode":"chatgpt""#,
            1,
        );
        assert_eq!(class_of(&with_key), LoginClass::OauthValid);
        let without_mode = auth(NOW + 3600, "rt").replacen(r#""OPENAI_API_KEY":null"#, r#""OPENAI_API_KEY":"sk-x""#, 1);
        assert_eq!(class_of(&without_mode), LoginClass::ApiKey);
    }

    #[test]
    fn follows_what_codex_itself_can_load() {
        // Observed with codex 0.169.0 (docs/real-cli-behaviour.md).
        let no_refresh = auth(NOW + 3600, "rt").replacen(r#","refresh_token":"rt""#, "", 1);
        assert_eq!(class_of(&no_refresh), LoginClass::Malformed);
        assert_eq!(class_of(&auth(NOW + 3600, "")), LoginClass::OauthValid);
        let key = r#"{"OPENAI_API_KEY":"sk-x","auth_mode":"#;
        assert_eq!(class_of(&format!(r#"{key}"apikey"}}"#)), LoginClass::ApiKey);
        assert_eq!(class_of(&format!(r#"{key}"api_key"}}"#)), LoginClass::Malformed);
        assert_eq!(class_of(&format!(r#"{key}"ApiKey"}}"#)), LoginClass::Malformed);
        assert_eq!(class_of(&format!(r#"{key}"chatgpt"}}"#)), LoginClass::Missing);
        let tokens =
            auth(NOW + 3600, "rt").replacen(r#""OPENAI_API_KEY":null"#, r#""auth_mode":"chatgptAuthTokens""#, 1);
        assert_eq!(class_of(&tokens), LoginClass::OauthValid);
    }

    #[test]
    fn metadata_comes_from_the_id_token() {
        let i = classify(
            auth(NOW + 3600, "rt").as_bytes(),
            UNIX_EPOCH + Duration::from_secs(NOW),
            Duration::ZERO,
        );
        assert_eq!(i.email.as_deref(), Some("dev@example.com"));
        assert_eq!(i.plan.as_deref(), Some("pro"));
        assert_eq!(i.account_id.as_deref(), Some("acct-1"));
        assert!(i.last_refresh.is_some());
        assert_eq!(i.expires_at, Some(UNIX_EPOCH + Duration::from_secs(NOW + 3600)));
    }

    #[test]
    fn tokens_are_read_only_when_the_file_selects_them() {
        // Codex uses the key and never looks at the tokens: neither does the parser.
        let login = parse(br#"{"OPENAI_API_KEY":"sk-SECRET","tokens":{"id_token":5}}"#).unwrap();
        assert!(matches!(login.credential, CodexCredential::ApiKey(Some(_))));
        assert!(!format!("{login:?}").contains("SECRET"));
        let login = parse(auth(NOW + 3600, "rt_SECRET").as_bytes()).unwrap();
        let CodexCredential::Chatgpt(tokens) = login.credential else {
            panic!("a ChatGPT login")
        };
        assert_eq!(tokens.refresh_token.as_ref().map(|t| t.expose()), Some("rt_SECRET"));
        assert!(!format!("{tokens:?}").contains("SECRET"));
    }

    #[test]
    fn file_store_is_set_without_losing_other_settings() {
        assert_eq!(
            with_file_store(None).unwrap(),
            "cli_auth_credentials_store = \"file\"\n"
        );
        assert_eq!(with_file_store(Some("cli_auth_credentials_store = \"file\"\n")), None);
        let fixed = with_file_store(Some("model = \"o3\"\n[profiles.x]\na = 1\n")).unwrap();
        assert_eq!(
            fixed,
            "cli_auth_credentials_store = \"file\"\nmodel = \"o3\"\n[profiles.x]\na = 1\n"
        );
        let fixed = with_file_store(Some("# c\ncli_auth_credentials_store = \"keyring\"\nmodel = 1\n")).unwrap();
        assert_eq!(fixed, "# c\ncli_auth_credentials_store = \"file\"\nmodel = 1\n");
        assert_eq!(credentials_store(&fixed).as_deref(), Some("file"));
    }

    #[test]
    fn reads_the_credentials_store_setting() {
        assert_eq!(
            credentials_store("model = \"x\"\ncli_auth_credentials_store = \"keyring\" # note\n").as_deref(),
            Some("keyring")
        );
        assert_eq!(
            credentials_store("cli_auth_credentials_store='file'").as_deref(),
            Some("file")
        );
        assert_eq!(credentials_store("model = 1"), None);
    }
}

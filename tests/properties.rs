//! Property tests of every parser of untrusted input in the login and refresh path: the
//! CLIs' login files (bytes -> inspection), JWT claims, the token service's answers and
//! refusals. Arbitrary bytes and structured-adversarial JSON (huge, negative and float
//! numbers, wrong types, deep nesting, canary tokens) must never panic, must give a
//! verdict within bounds (times `None` or within [epoch, 9999-12-31]; lifetimes within
//! the documented bound), and no canary token may reach any rendering (Display, Debug,
//! serde JSON). Case counts are bounded so each property runs in seconds.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use moonauth::agents::Runtime;
use moonauth::credentials::refresh::{self, RefreshError, MAX_ACCESS_TOKEN_LIFETIME};
use moonauth::credentials::{self, jwt, Inspection, LoginClass, LoginReport};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const CASES: u32 = 512;
/// Every canary token contains this; none may ever be rendered.
const CANARY: &str = "CANARY";

fn config() -> ProptestConfig {
    ProptestConfig {
        // PROPTEST_CASES=16000 for a deeper one-off run; bounded by default.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(CASES),
        // No regression files in the tree: a failure prints its minimal input.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- generators ----

/// A token in one of the CLIs' formats, carrying the canary.
fn canary_token() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("sk-ant-oat01-"),
            Just("sk-ant-ort01-"),
            Just("rt_"),
            Just("sk-proj-")
        ],
        "[A-Za-z0-9]{8,24}",
    )
        .prop_map(|(prefix, tail)| format!("{prefix}{CANARY}-{tail}"))
}

/// Numbers where parsers break: huge, negative, float, the edges of u64/i64 and of the
/// year 9999, in seconds and in milliseconds.
fn edge_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => any::<u64>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => prop::num::f64::NORMAL.prop_map(Value::from),
        1 => prop::num::f64::SUBNORMAL.prop_map(Value::from),
        1 => (0u64..=253_402_300_799_999).prop_map(Value::from),
        3 => prop::sample::select(vec![
            json!(0),
            json!(-1),
            json!(1),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(1e13),
            json!(1e300),
            json!(-1e300),
            json!(0.5),
            json!(253_402_300_799u64),
            json!(253_402_300_800u64),
            json!(253_402_300_800_000u64),
            json!(18_446_744_073_709_551u64),
        ]),
    ]
}

/// Any JSON leaf without a canary (values a parser may echo as metadata).
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        edge_number(),
        "[ -~]{0,16}".prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
    ]
}

/// Any JSON value without a canary, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-zA-Z_]{1,10}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// What goes where a token goes: usually a canary token, sometimes anything else.
fn token_slot() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => canary_token().prop_map(Value::from),
        1 => Just(json!("")),
        1 => any_json(),
    ]
}

fn jwt_of(claims: &Value) -> String {
    format!("eyJhbGciOiJub25lIn0.{}.sig", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

/// A JWT whose payload carries the canary and an adversarial `exp`.
fn canary_jwt() -> impl Strategy<Value = String> {
    (prop::option::of(prop_oneof![edge_number(), any_json()]), canary_token()).prop_map(|(exp, note)| {
        let mut claims = json!({ "note": note });
        if let Some(exp) = exp {
            claims["exp"] = exp;
        }
        jwt_of(&claims)
    })
}

/// An object with each of `fields` absent or set by its strategy, plus unknown keys.
fn object_of(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> impl Strategy<Value = Value> {
    let slots: Vec<_> = fields
        .into_iter()
        // Mostly present, so that most cases get past the first check to the deep ones.
        .map(|(k, s)| prop::option::weighted(0.85, s).prop_map(move |v| v.map(|v| (k, v))))
        .collect();
    (slots, prop::collection::vec(("[a-z]{1,6}", any_json()), 0..3)).prop_map(|(set, extra)| {
        let mut map = Map::new();
        for (k, v) in extra {
            map.insert(k, v);
        }
        for (k, v) in set.into_iter().flatten() {
            map.insert(k.to_string(), v);
        }
        Value::Object(map)
    })
}

fn claude_login() -> impl Strategy<Value = Value> {
    let oauth = object_of(vec![
        ("accessToken", token_slot().boxed()),
        ("refreshToken", token_slot().boxed()),
        ("expiresAt", prop_oneof![3 => edge_number(), 1 => any_json()].boxed()),
        (
            "scopes",
            prop_oneof![3 => Just(json!(["user:inference", "user:profile"])), 1 => any_json()].boxed(),
        ),
        ("subscriptionType", leaf().boxed()),
        ("rateLimitTier", leaf().boxed()),
    ]);
    prop_oneof![
        6 => oauth.prop_map(|o| json!({ "claudeAiOauth": o })),
        1 => any_json(),
    ]
}

fn codex_login() -> impl Strategy<Value = Value> {
    let id_claims = object_of(vec![
        ("exp", edge_number().boxed()),
        ("email", leaf().boxed()),
        (
            "https://api.openai.com/auth",
            object_of(vec![
                ("chatgpt_plan_type", leaf().boxed()),
                ("chatgpt_account_id", leaf().boxed()),
            ])
            .boxed(),
        ),
    ]);
    let tokens = object_of(vec![
        (
            "id_token",
            prop_oneof![3 => id_claims.prop_map(|c| Value::from(jwt_of(&c))), 1 => any_json()].boxed(),
        ),
        (
            "access_token",
            prop_oneof![3 => canary_jwt().prop_map(Value::from), 1 => token_slot()].boxed(),
        ),
        ("refresh_token", token_slot().boxed()),
        ("account_id", leaf().boxed()),
    ]);
    let root = object_of(vec![
        (
            "OPENAI_API_KEY",
            prop_oneof![2 => Just(Value::Null), 1 => token_slot()].boxed(),
        ),
        (
            "auth_mode",
            prop_oneof![3 => Just(json!("chatgpt")), 1 => Just(json!("apikey")), 1 => leaf()].boxed(),
        ),
        ("tokens", tokens.boxed()),
        (
            "last_refresh",
            prop_oneof![
                Just(json!("2026-11-20T10:00:00.123456Z")),
                Just(json!("9999-12-31T23:59:59Z")),
                Just(json!("0000-01-01T00:00:00Z")),
                Just(json!("1969-12-31T23:59:59Z")),
                "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|\\+00:00)?"
                    .prop_map(Value::from),
                any_json(),
            ]
            .boxed(),
        ),
    ]);
    prop_oneof![6 => root, 1 => any_json()]
}

/// A moment between the epoch and the last second moonauth represents.
fn any_now() -> impl Strategy<Value = SystemTime> {
    prop_oneof![
        Just(UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        (0u64..=credentials::LATEST_EPOCH_SECS).prop_map(|s| UNIX_EPOCH + Duration::from_secs(s)),
    ]
}

// ---- checks ----

fn in_range(t: Option<SystemTime>) -> bool {
    t.is_none_or(|t| t >= UNIX_EPOCH && t <= credentials::latest_time())
}

fn assert_no_canary(what: &str, text: &str) {
    assert!(!text.contains(CANARY), "a canary token reached the {what}: {text}");
}

/// Every rendering of an inspection: its JSON, its Debug, preflight's one-line summary.
fn check_inspection(runtime: Runtime, i: &Inspection) {
    assert!(in_range(i.expires_at), "expires_at out of range: {:?}", i.expires_at);
    assert!(
        in_range(i.last_refresh),
        "last_refresh out of range: {:?}",
        i.last_refresh
    );
    if matches!(
        i.class,
        LoginClass::Missing | LoginClass::Malformed | LoginClass::Refused
    ) {
        assert!(!i.class.usable());
    }
    if i.class == LoginClass::OauthExpiredNotRefreshable {
        assert!(!i.refreshable);
    }
    let report = LoginReport {
        runtime,
        dir: PathBuf::from("/login"),
        file: PathBuf::from("/login/file"),
        usable: i.class.usable(),
        inspection: i.clone(),
    };
    let json = serde_json::to_string(&report).expect("an inspection always serializes");
    assert_no_canary("JSON of the inspection", &json);
    assert_no_canary("Debug of the inspection", &format!("{i:?}"));
    assert_no_canary("preflight summary", &moonauth::checks::preflight::summarize(&report));
    assert_no_canary("detail", &i.detail);
}

fn check_login_bytes(runtime: Runtime, bytes: &[u8], now: SystemTime) {
    let lead = Duration::from_secs(600);
    let login = runtime.login().expect("claude and codex have logins");
    let i = credentials::classify(login, bytes, now, lead);
    check_inspection(runtime, &i);
    // The refresher's own parser of the same files.
    match refresh::read_tokens(login, bytes) {
        Ok(t) => {
            assert!(in_range(t.expires_at) && in_range(t.last_refresh));
            assert_no_canary("Debug of the tokens", &format!("{t:?}"));
            if let Some(why) = refresh::refresh_due(login, &t, now, lead) {
                assert_no_canary("refresh reason", &why);
            }
        }
        Err(why) => assert_no_canary("read_tokens error", &why),
    }
}

// ---- login files ----

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_as_a_login_file_give_a_bounded_verdict(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        now in any_now(),
    ) {
        check_login_bytes(Runtime::Claude, &bytes, now);
        check_login_bytes(Runtime::Codex, &bytes, now);
    }

    #[test]
    fn adversarial_claude_logins_give_a_bounded_verdict_without_tokens(
        login in claude_login(),
        now in any_now(),
    ) {
        check_login_bytes(Runtime::Claude, login.to_string().as_bytes(), now);
    }

    #[test]
    fn adversarial_codex_logins_give_a_bounded_verdict_without_tokens(
        login in codex_login(),
        now in any_now(),
    ) {
        check_login_bytes(Runtime::Codex, login.to_string().as_bytes(), now);
    }

    #[test]
    fn any_bytes_as_a_jwt_never_panic_and_errors_never_echo(token in "\\PC{0,80}", claims in any_json()) {
        if let Err(why) = jwt::claims(&token) {
            assert_no_canary("JWT error", why);
        }
        let token = jwt_of(&claims);
        match jwt::claims(&token) {
            // Keys, not values: serde_json's float parsing is not an exact round trip.
            Ok(decoded) => {
                prop_assert!(claims.is_object());
                let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
                prop_assert_eq!(keys(&decoded), keys(&claims));
            }
            Err(_) => prop_assert!(!claims.is_object()),
        }
        let canary = format!("{}.{}.sig", "eyJ", URL_SAFE_NO_PAD.encode(format!("{{\"note\":\"{CANARY}\"")));
        if let Err(why) = jwt::claims(&canary) {
            assert_no_canary("JWT error", why);
        }
    }
}

// ---- token-service answers ----

fn old_login(runtime: Runtime) -> Vec<u8> {
    match runtime {
        Runtime::Claude => {
            json!({"claudeAiOauth": {"accessToken": "sk-ant-oat01-OLD", "refreshToken": "sk-ant-ort01-OLD",
            "expiresAt": 1u64, "scopes": ["user:inference"], "subscriptionType": "max"}})
        }
        _ => json!({"OPENAI_API_KEY": null, "tokens": {"id_token": jwt_of(&json!({"email": "a@b.c"})),
            "access_token": jwt_of(&json!({"exp": 1})), "refresh_token": "rt_OLD", "account_id": "acct"},
            "last_refresh": "2026-01-01T00:00:00Z"}),
    }
    .to_string()
    .into_bytes()
}

fn answer() -> impl Strategy<Value = Value> {
    let lifetime = || prop_oneof![3 => edge_number(), 1 => any_json()].boxed();
    prop_oneof![
        6 => object_of(vec![
            ("access_token", prop_oneof![2 => canary_jwt().prop_map(Value::from), 2 => token_slot()].boxed()),
            ("refresh_token", token_slot().boxed()),
            ("id_token", prop_oneof![2 => canary_jwt().prop_map(Value::from), 1 => token_slot()].boxed()),
            ("expires_in", lifetime()),
            ("refresh_token_expires_in", lifetime()),
            ("scope", prop_oneof![Just(json!("user:inference user:profile")), leaf()].boxed()),
        ]),
        1 => any_json(),
    ]
}

fn check_answer(runtime: Runtime, answer: &[u8], now: SystemTime) {
    let old = old_login(runtime);
    let login = runtime.login().expect("claude and codex have logins");
    match refresh::apply_answer(login, &old, answer, now) {
        Ok(new) => {
            let bound = now
                .checked_add(MAX_ACCESS_TOKEN_LIFETIME)
                .unwrap_or(credentials::latest_time());
            let exp = new.expires_at;
            assert!(in_range(exp), "{exp:?}");
            assert!(exp.is_none_or(|e| e <= bound), "beyond the lifetime bound: {exp:?}");
            if runtime == Runtime::Claude {
                // Never written as already expired by an overflow: at least now (to the ms).
                let e = exp.expect("a Claude answer always sets expiresAt");
                assert!(e + Duration::from_millis(1) >= now, "{e:?} before {now:?}");
            }
            assert_no_canary("Debug of the new login", &format!("{new:?}"));
            for w in &new.warnings {
                assert_no_canary("warning", w);
            }
            // The new file is one the inspector reads, with bounded times.
            let v: Value = serde_json::from_slice(&new.bytes).expect("the new login file is JSON");
            if runtime == Runtime::Claude {
                let ms = v["claudeAiOauth"]["expiresAt"]
                    .as_u64()
                    .expect("expiresAt is an integer");
                assert!(ms / 1000 <= credentials::LATEST_EPOCH_SECS);
            }
            check_login_bytes(runtime, &new.bytes, now);
        }
        Err(why) => assert_no_canary("apply_answer error", &why),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn adversarial_answers_are_bounded_or_refused_without_tokens(answer in answer(), now in any_now()) {
        let bytes = answer.to_string().into_bytes();
        check_answer(Runtime::Claude, &bytes, now);
        check_answer(Runtime::Codex, &bytes, now);
    }

    #[test]
    fn any_bytes_as_an_answer_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), now in any_now()) {
        check_answer(Runtime::Claude, &bytes, now);
        check_answer(Runtime::Codex, &bytes, now);
    }

    #[test]
    fn refusals_are_classified_within_bounds_and_never_quote_a_token(
        status in prop_oneof![100u16..600, any::<u16>()],
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| (b, None)),
            (canary_token(), "[ -~]{0,40}", any_json(), prop::sample::select(vec![
                "error_description", "message",
            ])).prop_map(|(token, text, extra, key)| {
                let sentence = format!("{text} {token} was refused");
                let body = if key == "message" {
                    json!({"error": {"message": sentence, "code": token, "type": extra}})
                } else {
                    json!({"error": token, "error_description": sentence, "extra": extra})
                };
                (body.to_string().into_bytes(), Some(token))
            }),
        ],
    ) {
        let (body, _token) = body;
        let e = refresh::classify_status(status, &body);
        match status {
            400 | 401 => prop_assert!(matches!(e, RefreshError::Dead(_))),
            500..=599 | 429 => prop_assert!(matches!(e, RefreshError::Retryable(_))),
            _ => {}
        }
        assert_no_canary("refusal reason", e.reason());
        assert_no_canary("Debug of the refusal", &format!("{e:?}"));
        assert_no_canary("JSON of the refusal", &serde_json::to_string(&e).expect("serializes"));
    }
}

// ---- deep nesting: serde_json's recursion limit, never a stack overflow ----

#[test]
fn deeply_nested_input_is_refused_not_a_crash() {
    let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes();
    let deep_obj = |depth: usize| format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)).into_bytes();
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for depth in [127, 128, 129, 10_000, 100_000] {
        for bytes in [deep(depth), deep_obj(depth)] {
            check_login_bytes(Runtime::Claude, &bytes, now);
            check_login_bytes(Runtime::Codex, &bytes, now);
            check_answer(Runtime::Claude, &bytes, now);
            check_answer(Runtime::Codex, &bytes, now);
            let _ = refresh::classify_status(400, &bytes);
            let payload = URL_SAFE_NO_PAD.encode(&bytes);
            let _ = jwt::claims(&format!("eyJhbGciOiJub25lIn0.{payload}.sig"));
        }
    }
}

//! Property tests of the store's decoding (bounded case counts, a few seconds):
//! arbitrary bytes and structurally adversarial JSON never panic, a bad `state.json`
//! never loses the last good state, and no canary planted in the input appears in an
//! error or a set-aside message. The document properties run against the PostgreSQL
//! store too (`a_bad_document_in_the_database_is_refused_and_kept`).

use std::fs;
use std::time::Duration;

use moonauth::agents::Runtime;
use moonauth::state::accounts::{Account, Credential};
use moonauth::state::store::{self, Store, Undecodable};
use proptest::prelude::*;
use serde_json::{json, Value};

const CANARY: &str = "CANARYsecretvalue";

fn no_canary(what: &str, text: &str) {
    assert!(!text.contains("CANARY"), "{what} echoes the input: {text}");
}

/// Checks everything decode says about `bytes`: no panic, and no canary in what it says.
fn decode_says_nothing_of_the_content(bytes: &[u8]) {
    match store::decode(bytes) {
        Ok(decoded) => {
            for aside in &decoded.state.set_aside {
                no_canary("a set-aside message", &aside.to_string());
            }
            // What decodes re-encodes and decodes to the same accounts (nothing lost).
            let again = store::decode(&store::encode(&decoded.state)).expect("an encoded state decodes");
            assert_eq!(again.state.accounts, decoded.state.accounts);
            assert_eq!(again.state.unreadable_accounts, decoded.state.unreadable_accounts);
        }
        Err(Undecodable::Broken(reason)) => no_canary("a parse error", &reason),
        Err(Undecodable::TooNew(_)) => {}
    }
}

/// Values of every JSON type, many of them carrying the canary.
fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(json!(CANARY)),
        Just(json!(format!("sk-ant-api03-{CANARY}"))),
        Just(json!(format!("/{CANARY}/dir"))),
        Just(json!(format!("../{CANARY}"))),
        Just(json!(format!("\u{1b}[31m{CANARY}\u{7}"))),
        Just(json!([CANARY, 1])),
        Just(json!({ "k": CANARY })),
        Just(json!("2026-11-24T12:00:00Z")),
        Just(json!("claude")),
        Just(json!("oauth")),
        Just(json!("api-key")),
    ]
}

/// Aliases, good and bad; never the canary (an alias is printed, escaped, to name a record).
fn any_alias() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("work")),
        Just(json!("b-2")),
        Just(json!("../../etc")),
        Just(json!("\u{1b}[2Jx")),
        Just(json!("UPPER")),
        Just(json!("")),
        Just(json!(7)),
        Just(Value::Null),
    ]
}

const FIELDS: [&str; 14] = [
    "runtime",
    "kind",
    "login_dir",
    "volume",
    "api_key_env",
    "api_key_file",
    "enabled",
    "priority",
    "cooldown_until",
    "last_failure",
    "last_used",
    "usage",
    "refresh_failures",
    "consecutive_quota_hits",
];

/// An account record: an alias (or none), then any of the known fields with any value.
fn any_record() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(any_alias()),
        proptest::collection::vec((0..FIELDS.len(), any_value()), 0..6),
    )
        .prop_map(|(alias, fields)| {
            let mut r = json!({"runtime": "claude", "kind": "oauth", "login_dir": "/home/app/.claude"});
            if let Some(a) = alias {
                r["alias"] = a;
            }
            for (i, v) in fields {
                r[FIELDS[i]] = v;
            }
            r
        })
}

/// A state file: version 2 (accounts in a list) or 1 (keyed by alias), any version
/// value, any revision, and sometimes a wrong shape for `accounts`.
fn any_state_json() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just(None),
            Just(Some(json!(2))),
            Just(Some(json!(1))),
            any_value().prop_map(Some)
        ],
        any_value(),
        proptest::collection::vec(any_record(), 0..5),
        0..4u8,
    )
        .prop_map(|(version, revision, records, shape)| {
            let accounts = match shape {
                0 | 1 => Value::Array(records),
                2 => Value::Object(
                    records
                        .into_iter()
                        .enumerate()
                        .map(|(i, r)| (format!("acct{i}"), r))
                        .collect(),
                ),
                _ => json!(CANARY),
            };
            let mut file = json!({ "revision": revision, "accounts": accounts, "extra": CANARY });
            if let Some(v) = version {
                file["version"] = v;
            }
            file
        })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decoding_arbitrary_bytes_never_panics_or_echoes_them(
        before in proptest::collection::vec(any::<u8>(), 0..64),
        after in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = before;
        bytes.extend_from_slice(CANARY.as_bytes());
        bytes.extend_from_slice(&after);
        decode_says_nothing_of_the_content(&bytes);
    }

    #[test]
    fn decoding_adversarial_json_never_panics_or_echoes_it(file in any_state_json(), cut in any::<prop::sample::Index>()) {
        let text = serde_json::to_vec_pretty(&file).unwrap();
        decode_says_nothing_of_the_content(&text);
        // Truncated anywhere: what a crash or a full disk leaves.
        decode_says_nothing_of_the_content(&text[..cut.index(text.len() + 1)]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..config() })]

    #[test]
    fn a_bad_state_file_never_loses_the_last_good_state(file in any_state_json(), garbage in any::<bool>()) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let t = Duration::from_secs(5);
        for alias in ["a", "b"] {
            let account = Account::new(alias, Runtime::Claude, Credential::Login { dir: "/home/app/.claude".into(), volume: None }, 0);
            store.update(t, |s| s.add(account)).unwrap().unwrap();
        }
        let good = fs::read(tmp.path().join(store::GOOD_FILE)).unwrap();
        let current = fs::read(tmp.path().join(store::STATE_FILE)).unwrap();
        let bad = if garbage {
            format!("{{\"version\": 2, \"accounts\": [\"{CANARY}").into_bytes()
        } else {
            serde_json::to_vec(&file).unwrap()
        };
        fs::write(tmp.path().join(store::STATE_FILE), &bad).unwrap();
        let broken = matches!(store::decode(&bad), Err(Undecodable::Broken(_)));
        match store.lock(t) {
            Ok(guard) => {
                if broken {
                    // Restored from the good copy; the bad bytes are kept beside it.
                    let expected = store::decode(&good).unwrap().state;
                    prop_assert_eq!(&guard.state().accounts, &expected.accounts);
                    let kept = fs::read_dir(tmp.path()).unwrap().filter_map(|e| {
                        let name = e.unwrap().file_name().into_string().unwrap();
                        name.starts_with(store::BROKEN_PREFIX).then(|| fs::read(tmp.path().join(name)).unwrap())
                    }).collect::<Vec<_>>();
                    prop_assert_eq!(kept, vec![bad.clone()]);
                }
                drop(guard);
            }
            Err(e) => {
                no_canary("a store error", &e.to_string());
                // A newer format is never treated as damage: nothing was replaced.
                prop_assert_eq!(fs::read(tmp.path().join(store::STATE_FILE)).unwrap(), bad.clone());
            }
        }
        // Whatever happened, the last good state is still there and still reads.
        prop_assert_eq!(fs::read(tmp.path().join(store::GOOD_FILE)).unwrap(), good.clone());
        prop_assert!(store::decode(&good).is_ok());
        let _ = current;
    }
}

/// The same adversarial documents in the PostgreSQL store's row (one database for all
/// cases): reading and locking never panic, never echo the input, and a document that
/// cannot be read is never replaced (the database has no torn writes to repair; a person
/// or a newer moonauth wrote it).
#[test]
fn a_bad_document_in_the_database_is_refused_and_kept() {
    let Some(backend) = crate::store::Backend::postgres() else {
        return;
    };
    let store = backend.open();
    let t = Duration::from_secs(5);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 32, ..config() });
    runner
        .run(&(any_state_json(), any::<bool>()), |(file, garbage)| {
            let bad = if garbage {
                format!("{{\"version\": 2, \"accounts\": [\"{CANARY}").into_bytes()
            } else {
                serde_json::to_vec(&file).unwrap()
            };
            backend.plant(&bad);
            let readable = store::decode(&bad).is_ok_and(|d| d.version <= store::VERSION);
            match store.read_unlocked() {
                Ok(_) => prop_assert!(store::decode(&bad).is_ok()),
                Err(e) => no_canary("a store error", &e.to_string()),
            }
            match store.update(t, |_| ()) {
                Ok(()) => prop_assert!(readable),
                Err(e) => {
                    no_canary("a store error", &e.to_string());
                    prop_assert_eq!(backend.raw(), bad.clone());
                }
            }
            Ok(())
        })
        .unwrap();
}

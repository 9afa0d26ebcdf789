//! The credential values and variables one run knows: masked in everything it records
//! or reports, and kept out of every child but the one attempt that uses them.

use std::path::PathBuf;

use crate::agents::Runtime;
use crate::agents::COMPETING_CREDENTIALS as CREDENTIAL_VARS;
use crate::config::Config;
use crate::redact::{Redactor, Secret};
use crate::rotation::KeySource;
use crate::source::Env;
use crate::state::accounts;

/// What a run masks and removes.
pub(super) struct Masks {
    /// Every credential value the run knows.
    pub redactor: Redactor,
    /// Every variable a stored account names for its key.
    pub key_vars: Vec<String>,
}

impl Masks {
    pub fn new(config: &Config, env: &Env, state: Option<&accounts::State>) -> Masks {
        let key_vars = named_key_vars(state);
        let redactor = known_secrets(config, env, state, &key_vars);
        Masks { redactor, key_vars }
    }

    /// The variables removed from every child: the competing credentials and every
    /// account's own key variable (an attempt sets back only the one it uses).
    pub fn removed_vars(&self) -> Vec<String> {
        CREDENTIAL_VARS
            .iter()
            .map(|s| s.to_string())
            .chain(self.key_vars.iter().cloned())
            .collect()
    }
}

/// The value of an API key, read where rotation says it is; `None` when unset or unreadable.
pub(super) fn key_value(source: &KeySource, env: &Env) -> Option<Secret> {
    match source {
        KeySource::None => None,
        KeySource::Variable(var) => env.non_blank(var).map(Secret::new),
        KeySource::File(path) => super::child::first_line_of(path).ok().map(Secret::new),
    }
}

/// Every variable a stored account names for its key, of any runtime (set-aside records
/// too): removed from every child, so one account's key never reaches another's attempt.
fn named_key_vars(state: Option<&accounts::State>) -> Vec<String> {
    let Some(state) = state else { return Vec::new() };
    let mut vars: Vec<String> = state
        .accounts
        .iter()
        .flat_map(|a| [a.api_key_env.clone(), a.oauth_token_env.clone()])
        .flatten()
        .chain(
            state
                .unreadable_accounts
                .iter()
                .flat_map(|r| ["api_key_env", "oauth_token_env"].map(|k| r.get(k).and_then(serde_json::Value::as_str)))
                .flatten()
                .filter(|v| accounts::is_variable_name(v))
                .map(str::to_string),
        )
        .collect();
    vars.sort();
    vars.dedup();
    vars
}

/// The credential values this run knows: every stored account's tokens (from its login
/// file) and key (from its variable or file), the default login's tokens, and the
/// credential variables of the environment. What the run records or reports is masked
/// with them, not only by shape.
fn known_secrets(config: &Config, env: &Env, state: Option<&accounts::State>, key_vars: &[String]) -> Redactor {
    let mut redactor = Redactor::new();
    let mut logins: Vec<(Runtime, PathBuf)> = [Runtime::Claude, Runtime::Codex]
        .into_iter()
        .filter_map(|rt| config.runtime(rt).map(|s| (rt, s.login_dir.value.clone())))
        .collect();
    for a in state.map(|s| s.accounts.as_slice()).unwrap_or_default() {
        if let Some(dir) = &a.login_dir {
            logins.push((a.runtime, dir.clone()));
        }
        if let Some(key) = key_value(&KeySource::of(a), env) {
            redactor.add(key.expose());
        }
    }
    for (runtime, dir) in logins.into_iter().filter_map(|(rt, dir)| Some((rt.login()?, dir))) {
        let file = crate::credentials::login_file(runtime, &dir);
        // Bounded and link-safe; a login that cannot be read has no values to mask.
        if let Ok(Some(bytes)) = crate::credentials::read_login_file(&dir, &file) {
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                credential_strings(&value, false, &mut |s| redactor.add(s));
            }
        }
    }
    for var in CREDENTIAL_VARS
        .iter()
        .copied()
        .chain(key_vars.iter().map(String::as_str))
    {
        if let Some(value) = env.non_blank(var) {
            redactor.add(value);
        }
    }
    redactor
}

/// Calls `found` with every string in a login file held under a credential-like key
/// (`accessToken`, `refresh_token`, `OPENAI_API_KEY`, …), at any depth.
fn credential_strings(value: &serde_json::Value, under_secret: bool, found: &mut dyn FnMut(&str)) {
    match value {
        serde_json::Value::String(s) if under_secret => found(s),
        serde_json::Value::Array(items) => {
            for item in items {
                credential_strings(item, under_secret, found);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                let k = key.to_ascii_lowercase();
                let secret = ["token", "key", "secret", "password"].iter().any(|n| k.contains(n));
                credential_strings(v, under_secret || secret, found);
            }
        }
        _ => {}
    }
}

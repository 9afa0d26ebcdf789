//! The credentials of one `moonauth run`, in the order they are tried, and the accounts
//! that are out before it starts. Policy (docs/failover.md): the stored OAuth accounts by
//! the pick order, `--account` first; without stored accounts, the configured login when
//! it is usable, else the OAuth token in the environment (`CLAUDE_CODE_OAUTH_TOKEN`).
//! An API key follows only when `api_fallback` is on and every OAuth account that is out
//! is out for quota (not a login problem), and at most one key is tried; the environment's
//! key is that last resort when the store holds no API-key account of the runtime.
//! Resolving a value and where it runs are `run`'s business.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::agents::Runtime;
use crate::error::{Error, Result};
use crate::state::accounts::{availability, Account, AccountKind, Availability, State};

/// A credential the run may use.
#[derive(Debug, Clone)]
pub struct Choice {
    pub alias: String,
    pub kind: AccountKind,
    /// The login directory (OAuth); an API key runs where the previous attempt ran.
    pub login_dir: Option<PathBuf>,
    /// Where an API key's value is.
    pub key: KeySource,
    /// Whether it is a record in the store (or the configured login / environment key).
    pub stored: bool,
    /// An OAuth token instead of a login directory, and where it is (the environment's
    /// variable, or a stored account's `env:VAR` / `file:PATH`): nothing to refresh, and
    /// its fix is a new token, not a login.
    pub token: Option<String>,
}

/// The credentials the environment offers a run: whether the configured login is usable,
/// and the variables that hold an OAuth token and an API key (`None`: not set).
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvCredentials<'a> {
    /// The configured login directory holds a usable login.
    pub login_usable: bool,
    /// The configured login directory holds a login file at all (usable or not).
    pub login_present: bool,
    pub oauth_token_var: Option<&'a str>,
    pub api_key_var: Option<&'a str>,
}

/// Why no API key was tried in a run that ran out of credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyNotUsed {
    /// `MOONAUTH_API_FALLBACK` (or `--api-fallback`) is off.
    FallbackOff,
    /// A credential was refused: an auth failure never falls back to a key.
    AuthFailure,
    /// No API key: none stored for the runtime and none in the environment.
    NoKey,
}

impl KeyNotUsed {
    /// The short code (step output `fallback_reason`: `not-used: <code>`).
    pub fn code(self) -> &'static str {
        match self {
            KeyNotUsed::FallbackOff => "fallback-off",
            KeyNotUsed::AuthFailure => "auth-failure",
            KeyNotUsed::NoKey => "no-api-key",
        }
    }
}

/// Where an API key's value is read from when it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Not an API key.
    None,
    /// This environment variable.
    Variable(String),
    /// The first non-empty line of this file.
    File(PathBuf),
}

impl KeySource {
    /// Where `account`'s key (or OAuth token) is: its variable, else its file (none for
    /// a login).
    pub fn of(account: &Account) -> KeySource {
        let var = account.api_key_env.as_ref().or(account.oauth_token_env.as_ref());
        let file = account.api_key_file.as_ref().or(account.oauth_token_file.as_ref());
        match (var, file) {
            (Some(var), _) => KeySource::Variable(var.clone()),
            (None, Some(path)) => KeySource::File(path.clone()),
            (None, None) => KeySource::None,
        }
    }
}

/// An account that is out before the run starts, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassedOver {
    pub alias: String,
    /// Its last failure's reason, or its availability (`disabled`, `cooling-down`, …).
    pub reason: String,
    /// The end of its cooldown, when it is cooling down.
    pub until: Option<SystemTime>,
    /// The command that makes it usable again.
    pub fix: Option<String>,
}

/// The order of one run's credentials, consumed attempt by attempt with [`Plan::next_credential`].
#[derive(Debug)]
pub struct Plan {
    oauth: VecDeque<Choice>,
    api: VecDeque<Choice>,
    passed_over: Vec<PassedOver>,
    /// Every OAuth account that is out is out for quota (so an API key may follow).
    quota_only: bool,
    api_fallback: bool,
    api_used: bool,
}

impl Plan {
    /// Orders the credentials of `runtime` at `now`: the stored accounts by the pick
    /// policy (OAuth before keys), or without any, the configured login (`default`) when
    /// usable, else the environment's OAuth token; the environment's key last when no key
    /// is stored. `first` is `--account`: an alias no account of the runtime has is an error.
    pub fn new(
        state: Option<&State>,
        runtime: Runtime,
        first: Option<&str>,
        env: &EnvCredentials<'_>,
        api_fallback: bool,
        now: SystemTime,
    ) -> Result<Plan> {
        let env_key_var = env.api_key_var;
        let mut plan = Plan {
            oauth: VecDeque::new(),
            api: VecDeque::new(),
            passed_over: Vec::new(),
            quota_only: true,
            api_fallback,
            api_used: false,
        };
        let stored: Vec<&Account> = state
            .map(|s| s.accounts.iter().filter(|a| a.runtime == runtime).collect())
            .unwrap_or_default();
        match state.filter(|_| !stored.is_empty()) {
            // No store: the configured login (or the environment's OAuth token), and the
            // environment's key as the fallback.
            None => plan.order_environment(env, runtime),
            Some(state) => plan.order_stored(state, runtime, &stored, now),
        }
        // The environment's key is the last resort when the store holds none.
        let key_stored = stored.iter().any(|a| a.kind == AccountKind::ApiKey);
        if let (Some(var), false) = (env_key_var, key_stored) {
            plan.api.push_back(Choice {
                alias: format!("env:{var}"),
                kind: AccountKind::ApiKey,
                login_dir: None,
                key: KeySource::Variable(var.to_string()),
                stored: false,
                token: None,
            });
        }
        if let Some(first) = first {
            plan.start_with(first, runtime, &stored)?;
        }
        Ok(plan)
    }

    /// Without stored accounts: the configured login when it is usable, else the OAuth
    /// token in the environment; a login file that is there but unusable still goes
    /// first when there is no token (it sits out with its fix, as a login problem).
    fn order_environment(&mut self, env: &EnvCredentials<'_>, runtime: Runtime) {
        let default = Choice {
            alias: "default".into(),
            kind: AccountKind::Oauth,
            login_dir: None,
            key: KeySource::None,
            stored: false,
            token: None,
        };
        match (env.login_usable, env.oauth_token_var) {
            (true, _) => self.oauth.push_back(default),
            (false, Some(var)) => self.oauth.push_back(Choice {
                alias: format!("env:{var}"),
                key: KeySource::Variable(var.to_string()),
                token: Some(var.to_string()),
                ..default
            }),
            (false, None) if env.login_present => self.oauth.push_back(default),
            // No login at all is not a refused one: it does not stand in the key's way.
            (false, None) => self.passed_over.push(PassedOver {
                alias: "default".into(),
                reason: "no login".into(),
                until: None,
                fix: Some(match runtime {
                    Runtime::Claude => format!(
                        "{}, or set CLAUDE_CODE_OAUTH_TOKEN to a `claude setup-token` token",
                        crate::agents::account_login_command(runtime, "default")
                    ),
                    _ => crate::agents::account_login_command(runtime, "default"),
                }),
            }),
        }
    }

    fn order_stored(&mut self, state: &State, runtime: Runtime, stored: &[&Account], now: SystemTime) {
        let order = super::eligible(state, runtime, now);
        for a in stored {
            if order.iter().any(|e| e.alias == a.alias) {
                continue;
            }
            let availability = availability(a, now);
            // A disabled account is the operator's choice, not a reason against the key.
            if !matches!(availability, Availability::CoolingDown(_) | Availability::Disabled) {
                self.quota_only = false;
            }
            self.passed_over.push(PassedOver {
                alias: a.alias.clone(),
                reason: match availability {
                    Availability::Disabled => availability.as_str().to_string(),
                    _ => a
                        .last_failure
                        .as_ref()
                        .map(|f| f.reason.clone())
                        .unwrap_or_else(|| availability.as_str().to_string()),
                },
                until: a.cooldown_until.filter(|t| *t > now),
                fix: a.fix(now),
            });
        }
        for a in order {
            let c = Choice {
                alias: a.alias.clone(),
                kind: a.kind,
                login_dir: a.login_dir.clone(),
                key: KeySource::of(a),
                stored: true,
                token: a.is_oauth_token().then(|| a.location()),
            };
            match a.kind {
                AccountKind::Oauth => self.oauth.push_back(c),
                AccountKind::ApiKey => self.api.push_back(c),
            }
        }
    }

    /// Moves `--account` to the front; an account that is out only warns.
    fn start_with(&mut self, first: &str, runtime: Runtime, stored: &[&Account]) -> Result<()> {
        match self.oauth.iter().position(|c| c.alias == first) {
            Some(i) => {
                let c = self.oauth.remove(i).expect("the position was just found");
                self.oauth.push_front(c);
            }
            None => {
                if !stored.iter().any(|a| a.alias == first) && first != "default" {
                    return Err(Error::InvalidFlag {
                        flag: "--account",
                        value: first.to_string(),
                        reason: format!("no {runtime} account has this alias (see `moonauth accounts ls`)"),
                    });
                }
                tracing::warn!("account {first} is not eligible now; starting with the next one");
            }
        }
        Ok(())
    }

    /// The accounts that were out before the run started, with why.
    pub fn passed_over(&self) -> &[PassedOver] {
        &self.passed_over
    }

    /// The next credential to try: each OAuth account in order, then one API key when
    /// the fallback is allowed and every account that was lost was lost to quota.
    pub fn next_credential(&mut self) -> Option<Choice> {
        if let Some(c) = self.oauth.pop_front() {
            return Some(c);
        }
        if self.api_used || !self.api_fallback || !self.quota_only {
            return None;
        }
        let c = self.api.pop_front()?;
        self.api_used = true;
        Some(c)
    }

    /// An OAuth account was lost to its login (refused, or unusable before the start),
    /// not to quota: no API key follows in this run.
    pub fn lost_to_login(&mut self) {
        self.quota_only = false;
    }

    /// A credential an earlier job of the same work already tried (`run --resume-from`):
    /// it is not tried again, so jobs never loop; an earlier auth failure still bars the
    /// key, and an earlier key attempt uses up this run's one key.
    pub fn already_tried(&mut self, alias: &str, kind: AccountKind, outcome: &str) {
        self.oauth.retain(|c| c.alias != alias);
        self.api.retain(|c| c.alias != alias);
        if kind == AccountKind::ApiKey {
            self.api_used = true;
        } else if outcome == "auth-failure" {
            self.quota_only = false;
        }
    }

    /// Why no API key was tried, once the plan has run out; `None` when one was.
    pub fn key_not_used(&self) -> Option<KeyNotUsed> {
        if self.api_used {
            None
        } else if !self.api_fallback {
            Some(KeyNotUsed::FallbackOff)
        } else if !self.quota_only {
            Some(KeyNotUsed::AuthFailure)
        } else {
            Some(KeyNotUsed::NoKey)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::accounts::Credential;
    use crate::time::parse_time;

    fn t0() -> SystemTime {
        parse_time("2026-11-24T12:00:00Z").unwrap()
    }

    fn state() -> State {
        let login = |alias: &str, priority| {
            Account::new(
                alias,
                Runtime::Claude,
                Credential::Login {
                    dir: PathBuf::from(format!("/l/{alias}")),
                    volume: None,
                },
                priority,
            )
        };
        let key = Account::new(
            "key",
            Runtime::Claude,
            Credential::ApiKeyEnv("ANTHROPIC_API_KEY".into()),
            0,
        );
        State {
            accounts: vec![login("a", 0), login("b", 1), login("c", 2), key],
            ..State::default()
        }
    }

    fn aliases(plan: &mut Plan) -> Vec<String> {
        std::iter::from_fn(|| plan.next_credential()).map(|c| c.alias).collect()
    }

    #[test]
    fn oauth_in_pick_order_then_the_key_only_when_every_loss_was_quota() {
        let mut s = state();
        s.record_quota("c", None, t0()).unwrap();
        let none = EnvCredentials::default();
        let mut plan = Plan::new(Some(&s), Runtime::Claude, Some("b"), &none, true, t0()).unwrap();
        assert_eq!(plan.passed_over()[0].alias, "c");
        assert_eq!(plan.passed_over()[0].reason, "usage-limit");
        assert_eq!(aliases(&mut plan), ["b", "a", "key"]);

        let mut plan = Plan::new(Some(&s), Runtime::Claude, None, &none, true, t0()).unwrap();
        assert_eq!(plan.next_credential().unwrap().alias, "a");
        plan.lost_to_login();
        assert_eq!(aliases(&mut plan), ["b"]);

        let mut plan = Plan::new(Some(&s), Runtime::Claude, None, &none, false, t0()).unwrap();
        assert_eq!(aliases(&mut plan), ["a", "b"]);
    }

    #[test]
    fn without_stored_accounts_the_default_login_then_the_environments_key() {
        let env = EnvCredentials {
            login_usable: true,
            login_present: true,
            oauth_token_var: Some("CLAUDE_CODE_OAUTH_TOKEN"),
            api_key_var: Some("ANTHROPIC_API_KEY"),
        };
        let mut plan = Plan::new(None, Runtime::Claude, None, &env, true, t0()).unwrap();
        assert_eq!(aliases(&mut plan), ["default", "env:ANTHROPIC_API_KEY"]);
        let err = Plan::new(None, Runtime::Claude, Some("zz"), &env, true, t0()).unwrap_err();
        assert!(err.to_string().contains("zz"), "{err}");
    }

    #[test]
    fn without_a_usable_login_the_environments_oauth_token_then_the_key() {
        let env = EnvCredentials {
            login_usable: false,
            login_present: false,
            oauth_token_var: Some("CLAUDE_CODE_OAUTH_TOKEN"),
            api_key_var: Some("ANTHROPIC_API_KEY"),
        };
        let mut plan = Plan::new(None, Runtime::Claude, None, &env, true, t0()).unwrap();
        let token = plan.next_credential().unwrap();
        assert_eq!(token.alias, "env:CLAUDE_CODE_OAUTH_TOKEN");
        assert_eq!(token.token.as_deref(), Some("CLAUDE_CODE_OAUTH_TOKEN"));
        assert_eq!(aliases(&mut plan), ["env:ANTHROPIC_API_KEY"]);

        // No login, no token: nothing refused, so the key still follows.
        let env = EnvCredentials {
            oauth_token_var: None,
            ..env
        };
        let mut plan = Plan::new(None, Runtime::Claude, None, &env, true, t0()).unwrap();
        assert_eq!(plan.passed_over()[0].reason, "no login");
        assert_eq!(aliases(&mut plan), ["env:ANTHROPIC_API_KEY"]);
        let mut plan = Plan::new(None, Runtime::Claude, None, &env, false, t0()).unwrap();
        assert_eq!(aliases(&mut plan), Vec::<String>::new());
        assert_eq!(plan.key_not_used(), Some(KeyNotUsed::FallbackOff));
    }

    #[test]
    fn with_a_store_the_environments_key_comes_last_only_when_no_key_is_stored() {
        let env = EnvCredentials {
            api_key_var: Some("ANTHROPIC_API_KEY"),
            ..EnvCredentials::default()
        };
        let mut s = state();
        let mut plan = Plan::new(Some(&s), Runtime::Claude, None, &env, true, t0()).unwrap();
        assert_eq!(aliases(&mut plan), ["a", "b", "c", "key"]);
        s.accounts.retain(|a| a.alias != "key");
        let mut plan = Plan::new(Some(&s), Runtime::Claude, None, &env, true, t0()).unwrap();
        assert_eq!(aliases(&mut plan), ["a", "b", "c", "env:ANTHROPIC_API_KEY"]);
        assert_eq!(plan.key_not_used(), None);

        let mut plan = Plan::new(Some(&s), Runtime::Claude, None, &env, true, t0()).unwrap();
        plan.already_tried("a", AccountKind::Oauth, "auth-failure");
        assert_eq!(aliases(&mut plan), ["b", "c"]);
        assert_eq!(plan.key_not_used(), Some(KeyNotUsed::AuthFailure));
    }
}

//! The credentials of one `moonauth run`, in the order they are tried, and the accounts
//! that are out before it starts. Policy (docs/failover.md): the stored OAuth accounts by
//! the pick order, `--account` first; without stored accounts, the configured login.
//! An API key follows only when `api_fallback` is on and every OAuth account that is out
//! is out for quota (not a login problem), and at most one key is tried. Resolving a key's
//! value and where it runs are `run`'s business.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::agents::Runtime;
use crate::error::{Error, Result};
use crate::state::accounts::{availability, Account, AccountKind, Availability, State};

use super::decide::{Decision, Eligibility};

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
    /// Where `account`'s key is: its variable, else its file (none for a login).
    pub fn of(account: &Account) -> KeySource {
        match (&account.api_key_env, &account.api_key_file) {
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
    /// Orders the credentials of `runtime` at `now`: the stored accounts in the order
    /// of `decision` (rotation's decision over that state: OAuth before keys), or
    /// without any, the configured login (`default`) and the key in `env_key_var`, the
    /// environment variable that holds one. `first` is `--account`: an alias no
    /// account of the runtime has is an error.
    pub fn new(
        stored_state: Option<(&State, &Decision)>,
        runtime: Runtime,
        first: Option<&str>,
        env_key_var: Option<&str>,
        api_fallback: bool,
        now: SystemTime,
    ) -> Result<Plan> {
        let mut plan = Plan {
            oauth: VecDeque::new(),
            api: VecDeque::new(),
            passed_over: Vec::new(),
            quota_only: true,
            api_fallback,
            api_used: false,
        };
        let state = stored_state.map(|(s, _)| s);
        let stored: Vec<&Account> = state
            .map(|s| s.accounts.iter().filter(|a| a.runtime == runtime).collect())
            .unwrap_or_default();
        match stored_state.filter(|_| !stored.is_empty()) {
            // No store: the configured login, and the environment's key as the fallback.
            None => {
                plan.oauth.push_back(Choice {
                    alias: "default".into(),
                    kind: AccountKind::Oauth,
                    login_dir: None,
                    key: KeySource::None,
                    stored: false,
                });
                if let Some(var) = env_key_var {
                    plan.api.push_back(Choice {
                        alias: format!("env:{var}"),
                        kind: AccountKind::ApiKey,
                        login_dir: None,
                        key: KeySource::Variable(var.to_string()),
                        stored: false,
                    });
                }
            }
            Some((state, decision)) => plan.order_stored(state, decision, &stored, now),
        }
        if let Some(first) = first {
            plan.start_with(first, runtime, &stored)?;
        }
        Ok(plan)
    }

    fn order_stored(&mut self, state: &State, decision: &Decision, stored: &[&Account], now: SystemTime) {
        let order: Vec<&Account> = decision.order().filter_map(|c| state.account(&c.alias)).collect();
        for a in stored {
            if order.iter().any(|e| e.alias == a.alias) {
                continue;
            }
            let availability = availability(a, now);
            let out = decision.candidates.iter().find(|c| c.alias == a.alias);
            let unusable_here = out.filter(|c| {
                matches!(
                    &c.eligibility,
                    Eligibility::Out {
                        status: "login-unusable",
                        ..
                    }
                )
            });
            // A disabled account is the operator's choice, not a reason against the key.
            if !matches!(availability, Availability::CoolingDown(_) | Availability::Disabled) {
                self.quota_only = false;
            }
            self.passed_over.push(PassedOver {
                alias: a.alias.clone(),
                reason: match availability {
                    Availability::Disabled => availability.as_str().to_string(),
                    Availability::Ready if unusable_here.is_some() => {
                        unusable_here.map_or_else(String::new, |c| c.reason.clone())
                    }
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
                key: match a.kind {
                    AccountKind::ApiKey => KeySource::of(a),
                    AccountKind::Oauth => KeySource::None,
                },
                stored: true,
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

    fn decided(s: &State) -> Decision {
        let settings = crate::rotation::Settings {
            strategy: crate::source::Sourced::new(
                crate::state::steering::Strategy::Priority,
                crate::source::Source::Default,
            ),
            ..crate::rotation::Settings::default()
        };
        let none = std::collections::BTreeMap::new();
        let inputs = crate::rotation::Inputs {
            now: t0(),
            settings: &settings,
            login_problems: &none,
        };
        crate::rotation::decide(s, Runtime::Claude, &inputs, &mut fastrand::Rng::with_seed(1))
    }

    fn aliases(plan: &mut Plan) -> Vec<String> {
        std::iter::from_fn(|| plan.next_credential()).map(|c| c.alias).collect()
    }

    #[test]
    fn oauth_in_pick_order_then_the_key_only_when_every_loss_was_quota() {
        let mut s = state();
        s.record_quota("c", None, t0()).unwrap();
        let d = decided(&s);
        let mut plan = Plan::new(Some((&s, &d)), Runtime::Claude, Some("b"), None, true, t0()).unwrap();
        assert_eq!(plan.passed_over()[0].alias, "c");
        assert_eq!(plan.passed_over()[0].reason, "usage-limit");
        assert_eq!(aliases(&mut plan), ["b", "a", "key"]);

        let mut plan = Plan::new(Some((&s, &d)), Runtime::Claude, None, None, true, t0()).unwrap();
        assert_eq!(plan.next_credential().unwrap().alias, "a");
        plan.lost_to_login();
        assert_eq!(aliases(&mut plan), ["b"]);

        let mut plan = Plan::new(Some((&s, &d)), Runtime::Claude, None, None, false, t0()).unwrap();
        assert_eq!(aliases(&mut plan), ["a", "b"]);
    }

    #[test]
    fn without_stored_accounts_the_default_login_then_the_environments_key() {
        let mut plan = Plan::new(None, Runtime::Claude, None, Some("ANTHROPIC_API_KEY"), true, t0()).unwrap();
        assert_eq!(aliases(&mut plan), ["default", "env:ANTHROPIC_API_KEY"]);
        let err = Plan::new(None, Runtime::Claude, Some("zz"), None, true, t0()).unwrap_err();
        assert!(err.to_string().contains("zz"), "{err}");
    }
}

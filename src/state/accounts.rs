//! Accounts: the OAuth logins and API keys each runtime can run on, what moonauth
//! remembers about them (cooldowns, failures, last use), and whether each can be used at
//! a given time. Everything here is pure: functions take the state and `now` and return
//! values. Which account goes next is decided above this layer, in `rotation/`; how the
//! state is kept on disk and shared between processes is [`crate::state::store`]'s
//! business.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::agents::Runtime;
use crate::error::{Error, Result};

/// Failure reasons moonauth records (`Failure::reason`); classifiers may add others.
pub mod reason {
    /// A subscription's usage limit (quota) was reached.
    pub const USAGE_LIMIT: &str = "usage-limit";
    /// The credential was refused (expired, revoked or invalid token or key).
    pub const AUTH_FAILURE: &str = "auth-failure";
    /// moonauth could not refresh the login's token.
    pub const REFRESH_FAILED: &str = "refresh-failed";
}

/// The first default cooldown after a quota hit without a reset time.
pub const QUOTA_COOLDOWN_BASE: Duration = Duration::from_secs(5 * 60);
/// The longest default cooldown: repeated hits double the wait up to this, never hours.
pub const QUOTA_COOLDOWN_MAX: Duration = Duration::from_secs(60 * 60);
/// Longest `last_failure.detail` kept, in characters (counted after redaction): the
/// reason is its own field, the detail only a short excerpt to recognise the failure by.
pub const FAILURE_DETAIL_MAX_CHARS: usize = 160;

/// A failure detail as it is stored: redacted (shapes; the caller masks the values it
/// knows first), then cut to [`FAILURE_DETAIL_MAX_CHARS`].
fn stored_detail(detail: &str) -> String {
    crate::redact::truncate(crate::redact::scrub(detail).trim(), FAILURE_DETAIL_MAX_CHARS)
}

/// Refresh failures in a row after which a login needs a new login.
pub const REFRESH_FAILURE_LIMIT: u32 = 3;

/// Everything the store holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Number of committed writes; every commit adds one (lets readers see a change, and tests count lost updates).
    #[serde(default)]
    pub revision: u64,
    /// The accounts, in the order they were added.
    #[serde(default)]
    pub accounts: Vec<Account>,
    /// Fields this version does not know (written by a newer moonauth), kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// Account records this version cannot read (say, a runtime a newer moonauth added):
    /// never picked, never listed, written back as they were.
    #[serde(skip)]
    pub unreadable_accounts: Vec<Value>,
    /// Why each record in `unreadable_accounts` was set aside, for `accounts ls` and warnings.
    #[serde(skip)]
    pub set_aside: Vec<SetAside>,
}

/// A stored account record that was set aside on load: kept in the file as it was,
/// never picked, reported with the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetAside {
    /// Its position in the file's account list (1-based).
    pub record: usize,
    /// Its alias, made safe to print (redacted, control characters escaped, bounded);
    /// `None` when the record has no string alias.
    pub alias: Option<String>,
    /// The rule it breaks, in words (never the offending value).
    pub rule: String,
}

impl std::fmt::Display for SetAside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "account record {}", self.record)?;
        if let Some(alias) = &self.alias {
            write!(f, " ({alias})")?;
        }
        write!(
            f,
            " in the store is set aside and not used: {}; it stays in the file as it is (fix or remove it there)",
            self.rule
        )
    }
}

/// What kind of credential an account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountKind {
    /// A subscription login in a login directory (the CLI's own OAuth files).
    Oauth,
    /// An API key, read from an environment variable or a file when a task runs.
    ApiKey,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Oauth => "oauth",
            AccountKind::ApiKey => "api-key",
        }
    }
}

/// One credential a runtime can run on, and what moonauth remembers about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Unique name (a-z, 0-9, `-`, `_`); also the `--account` of `moonauth login`.
    pub alias: String,
    #[serde(deserialize_with = "deserialize_login_runtime")]
    pub runtime: Runtime,
    pub kind: AccountKind,
    /// OAuth: the login directory as the worker sees it (`CLAUDE_CONFIG_DIR` / `CODEX_HOME`).
    #[serde(default)]
    pub login_dir: Option<PathBuf>,
    /// OAuth: the Docker volume holding the login, when it is one.
    #[serde(default)]
    pub volume: Option<String>,
    /// API key: the variable holding the key (moonauth never stores a key).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// API key: the file holding the key (moonauth never stores a key).
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// OAuth token (Claude's `claude setup-token`): the variable holding it, handed to the
    /// CLI as `CLAUDE_CODE_OAUTH_TOKEN` (moonauth never stores a token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_token_env: Option<String>,
    /// OAuth token: the file holding it (first non-empty line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_token_file: Option<PathBuf>,
    /// Disabled accounts are never picked.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Lower is tried first.
    #[serde(default)]
    pub priority: i32,
    /// Not picked before this time (a usage limit's reset).
    #[serde(default, with = "crate::time::serde_rfc3339_opt")]
    pub cooldown_until: Option<SystemTime>,
    /// Quota hits since the last success; grows the default cooldown.
    #[serde(default)]
    pub consecutive_quota_hits: u32,
    #[serde(default)]
    pub last_failure: Option<Failure>,
    /// The login was refused or cannot be refreshed: never picked until it is logged in again.
    #[serde(default)]
    pub needs_relogin: bool,
    #[serde(default, with = "crate::time::serde_rfc3339_opt")]
    pub last_used: Option<SystemTime>,
    /// The last usage snapshot a run reported, as the CLI gave it.
    #[serde(default)]
    pub usage: Option<Value>,
    /// Token refreshes that failed in a row.
    #[serde(default)]
    pub refresh_failures: u32,
    /// Fields this version does not know, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn enabled_by_default() -> bool {
    true
}

/// Why an account last failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// One of [`reason`], or a classifier's own word.
    pub reason: String,
    /// What happened, for people (redacted).
    #[serde(default)]
    pub detail: String,
    #[serde(with = "crate::time::serde_rfc3339")]
    pub at: SystemTime,
}

/// Where an account's credential comes from, as `moonauth accounts add` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An OAuth login directory (as the worker sees it), optionally a Docker volume.
    Login { dir: PathBuf, volume: Option<String> },
    /// An API key in this environment variable.
    ApiKeyEnv(String),
    /// An API key in this file.
    ApiKeyFile(PathBuf),
    /// A subscription's OAuth token (`claude setup-token`) in this environment variable.
    OauthTokenEnv(String),
    /// A subscription's OAuth token in this file.
    OauthTokenFile(PathBuf),
}

impl Account {
    /// A new, enabled account with no history.
    pub fn new(alias: &str, runtime: Runtime, credential: Credential, priority: i32) -> Account {
        let mut account = Account {
            alias: alias.to_string(),
            runtime,
            kind: AccountKind::Oauth,
            login_dir: None,
            volume: None,
            api_key_env: None,
            api_key_file: None,
            oauth_token_env: None,
            oauth_token_file: None,
            enabled: true,
            priority,
            cooldown_until: None,
            consecutive_quota_hits: 0,
            last_failure: None,
            needs_relogin: false,
            last_used: None,
            usage: None,
            refresh_failures: 0,
            extra: Map::new(),
        };
        match credential {
            Credential::Login { dir, volume } => {
                account.login_dir = Some(dir);
                account.volume = volume;
            }
            Credential::ApiKeyEnv(var) => {
                account.kind = AccountKind::ApiKey;
                account.api_key_env = Some(var);
            }
            Credential::ApiKeyFile(path) => {
                account.kind = AccountKind::ApiKey;
                account.api_key_file = Some(path);
            }
            Credential::OauthTokenEnv(var) => account.oauth_token_env = Some(var),
            Credential::OauthTokenFile(path) => account.oauth_token_file = Some(path),
        }
        account
    }

    /// Whether this is an OAuth token account (no login directory: nothing to refresh).
    pub fn is_oauth_token(&self) -> bool {
        self.kind == AccountKind::Oauth && (self.oauth_token_env.is_some() || self.oauth_token_file.is_some())
    }

    /// Where the credential is, in one token: the login directory, `env:VAR` or `file:PATH`.
    pub fn location(&self) -> String {
        let var = self.api_key_env.as_ref().or(self.oauth_token_env.as_ref());
        let file = self.api_key_file.as_ref().or(self.oauth_token_file.as_ref());
        match (&self.login_dir, var, file) {
            (Some(dir), _, _) => dir.display().to_string(),
            (None, Some(var), _) => format!("env:{var}"),
            (None, None, Some(path)) => format!("file:{}", path.display()),
            (None, None, None) => "-".to_string(),
        }
    }

    /// The command that makes an account that needs attention usable again.
    pub fn fix(&self, now: SystemTime) -> Option<String> {
        match availability(self, now) {
            Availability::Ready | Availability::CoolingDown(_) => None,
            Availability::Disabled => Some(format!("moonauth accounts enable {}", self.alias)),
            Availability::NeedsRelogin => Some(match self.kind {
                // The login clears the mark itself when it can reach this store; from a host
                // whose store is elsewhere (a compose volume), `enable` does.
                // A setup-token has no refresh token: only a new one helps.
                AccountKind::Oauth if self.is_oauth_token() => format!(
                    "run `claude setup-token` and put the new token in {}, then moonauth accounts enable {}",
                    self.location(),
                    self.alias
                ),
                AccountKind::Oauth => format!(
                    "{}, then moonauth accounts enable {}",
                    crate::agents::login_command(self.runtime, Some(&self.alias)),
                    self.alias
                ),
                AccountKind::ApiKey => format!(
                    "put a valid key in {}, then moonauth accounts enable {}",
                    self.location(),
                    self.alias
                ),
            }),
        }
    }
}

/// Whether an account can be picked now, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Ready,
    /// An operator disabled it.
    Disabled,
    /// Its login was refused or cannot be refreshed.
    NeedsRelogin,
    /// It hit a usage limit; usable again at this time.
    CoolingDown(SystemTime),
}

impl Availability {
    /// The word used in reports: `ready`, `disabled`, `needs-relogin`, `cooling-down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Ready => "ready",
            Availability::Disabled => "disabled",
            Availability::NeedsRelogin => "needs-relogin",
            Availability::CoolingDown(_) => "cooling-down",
        }
    }
}

/// Whether `account` can be picked at `now` (disabled wins over needs-relogin over a cooldown).
pub fn availability(account: &Account, now: SystemTime) -> Availability {
    if !account.enabled {
        Availability::Disabled
    } else if account.needs_relogin {
        Availability::NeedsRelogin
    } else {
        match account.cooldown_until {
            Some(until) if until > now => Availability::CoolingDown(until),
            _ => Availability::Ready,
        }
    }
}

/// The default cooldown after the `hits`-th quota hit in a row without a reset time:
/// 5 minutes, doubling on each repeat, at most an hour.
pub fn default_cooldown(hits: u32) -> Duration {
    let doublings = hits.saturating_sub(1).min(16);
    (QUOTA_COOLDOWN_BASE * (1u32 << doublings)).min(QUOTA_COOLDOWN_MAX)
}

/// Checks an alias. Aliases follow the rule of volume account names, because an
/// account's volume is `<runtime>_auth_<alias>` (`moonauth login --account`).
pub fn validate_alias(alias: &str) -> Result<()> {
    crate::agents::validate_account(alias).map_err(|e| match e {
        Error::InvalidFlag { value, reason, .. } => Error::InvalidFlag {
            flag: "ALIAS",
            value,
            reason,
        },
        other => other,
    })
}

/// Whether `name` is an environment variable name (letters, digits and `_`, not
/// starting with a digit): what `--api-key-env` takes.
pub fn is_variable_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The rule a stored record breaks among those `accounts add` applies, or `None`. A
/// hand-edited store must not smuggle in what the command would refuse: an alias with
/// terminal escapes or `../`, a relative login directory, a bad volume name.
pub fn record_problem(account: &Account) -> Option<String> {
    if validate_alias(&account.alias).is_err() {
        return Some("its alias breaks the alias rule (1 to 40 characters from a-z, 0-9, - and _)".into());
    }
    if account.login_dir.as_ref().is_some_and(|d| !d.is_absolute()) {
        return Some("login_dir must be an absolute path (as the worker sees it)".into());
    }
    if account
        .volume
        .as_deref()
        .is_some_and(|v| !crate::config::is_volume_name(v))
    {
        return Some(format!(
            "volume breaks Docker's rule: {}",
            crate::config::VOLUME_NAME_RULE
        ));
    }
    if account.api_key_env.as_deref().is_some_and(|v| !is_variable_name(v)) {
        return Some("api_key_env must be the name of a variable (letters, digits, _)".into());
    }
    if account.api_key_file.as_ref().is_some_and(|p| !p.is_absolute()) {
        return Some("api_key_file must be an absolute path".into());
    }
    if account.kind == AccountKind::ApiKey && account.api_key_env.is_none() && account.api_key_file.is_none() {
        return Some("an api-key account needs api_key_env or api_key_file".into());
    }
    if account.oauth_token_env.as_deref().is_some_and(|v| !is_variable_name(v)) {
        return Some("oauth_token_env must be the name of a variable (letters, digits, _)".into());
    }
    if account.oauth_token_file.as_ref().is_some_and(|p| !p.is_absolute()) {
        return Some("oauth_token_file must be an absolute path".into());
    }
    if account.is_oauth_token() && (account.runtime != Runtime::Claude || account.login_dir.is_some()) {
        return Some("an OAuth token account is a Claude account without a login directory".into());
    }
    None
}

impl State {
    /// The account named `alias`.
    pub fn account(&self, alias: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.alias == alias)
    }

    /// The account named `alias`, to change.
    pub fn account_mut(&mut self, alias: &str) -> Result<&mut Account> {
        self.accounts
            .iter_mut()
            .find(|a| a.alias == alias)
            .ok_or_else(|| Error::UnknownAccount { alias: alias.into() })
    }

    /// Adds an account; aliases are unique across runtimes.
    pub fn add(&mut self, account: Account) -> Result<()> {
        let unreadable_has_it = self
            .unreadable_accounts
            .iter()
            .any(|v| v.get("alias").and_then(Value::as_str) == Some(&account.alias));
        if self.account(&account.alias).is_some() || unreadable_has_it {
            return Err(Error::DuplicateAccount { alias: account.alias });
        }
        self.accounts.push(account);
        Ok(())
    }

    /// Removes an account's record (never its login) and returns it.
    pub fn remove(&mut self, alias: &str) -> Result<Account> {
        let i = self
            .accounts
            .iter()
            .position(|a| a.alias == alias)
            .ok_or_else(|| Error::UnknownAccount { alias: alias.into() })?;
        Ok(self.accounts.remove(i))
    }

    /// Disables an account, or enables it. Enabling also clears a re-login mark and
    /// the refresh-failure count: the operator says the login is good again.
    pub fn set_enabled(&mut self, alias: &str, enabled: bool) -> Result<()> {
        let a = self.account_mut(alias)?;
        a.enabled = enabled;
        if enabled {
            a.needs_relogin = false;
            a.refresh_failures = 0;
        }
        Ok(())
    }

    /// Records a fresh login of the account (`moonauth login --account`): it is usable again.
    pub fn record_login(&mut self, alias: &str) -> Result<()> {
        let a = self.account_mut(alias)?;
        a.needs_relogin = false;
        a.refresh_failures = 0;
        a.last_failure = None;
        Ok(())
    }

    /// Records that a task was given this account.
    pub fn mark_used(&mut self, alias: &str, now: SystemTime) -> Result<()> {
        self.account_mut(alias)?.last_used = Some(now);
        Ok(())
    }

    /// Records a usage-limit hit: a cooldown until `resets_at` when the CLI said when
    /// (and it is ahead), else [`default_cooldown`]. Returns the end of the cooldown.
    pub fn record_quota(&mut self, alias: &str, resets_at: Option<SystemTime>, now: SystemTime) -> Result<SystemTime> {
        let a = self.account_mut(alias)?;
        a.consecutive_quota_hits = a.consecutive_quota_hits.saturating_add(1);
        let (until, detail) = match resets_at {
            Some(reset) if reset > now => (reset, "usage limit reached; the CLI gave the reset time".to_string()),
            _ => {
                let wait = default_cooldown(a.consecutive_quota_hits);
                let detail = format!(
                    "usage limit reached without a reset time; default cooldown {} (hit {} in a row)",
                    humantime::format_duration(wait),
                    a.consecutive_quota_hits
                );
                (now + wait, detail)
            }
        };
        a.cooldown_until = Some(until);
        a.last_failure = Some(Failure {
            reason: reason::USAGE_LIMIT.into(),
            detail,
            at: now,
        });
        Ok(until)
    }

    /// Records that the credential was refused: the account needs a new login and is
    /// not picked until then. `detail` is redacted and cut short before it is kept; a
    /// caller that knows credential values masks them first ([`crate::redact::Redactor`]).
    pub fn record_auth_failure(&mut self, alias: &str, detail: &str, now: SystemTime) -> Result<()> {
        let a = self.account_mut(alias)?;
        a.needs_relogin = true;
        a.last_failure = Some(Failure {
            reason: reason::AUTH_FAILURE.into(),
            detail: stored_detail(detail),
            at: now,
        });
        Ok(())
    }

    /// Records a failed token refresh. After [`REFRESH_FAILURE_LIMIT`] in a row, or at
    /// once when `dead` (the grant was revoked), the account needs a new login.
    /// Returns whether it now does.
    pub fn record_refresh_failure(&mut self, alias: &str, detail: &str, dead: bool, now: SystemTime) -> Result<bool> {
        let a = self.account_mut(alias)?;
        a.refresh_failures = a.refresh_failures.saturating_add(1);
        if dead || a.refresh_failures >= REFRESH_FAILURE_LIMIT {
            a.needs_relogin = true;
        }
        a.last_failure = Some(Failure {
            reason: reason::REFRESH_FAILED.into(),
            detail: stored_detail(detail),
            at: now,
        });
        Ok(a.needs_relogin)
    }

    /// Records a task that finished on this account: the counters, the cooldown and a
    /// re-login mark are cleared (the login evidently works); `last_used` is `now`.
    pub fn record_success(&mut self, alias: &str, now: SystemTime) -> Result<()> {
        let a = self.account_mut(alias)?;
        a.consecutive_quota_hits = 0;
        a.refresh_failures = 0;
        a.cooldown_until = None;
        a.needs_relogin = false;
        a.last_used = Some(now);
        Ok(())
    }
}

/// Accepts only runtimes that have a login (claude, codex).
fn deserialize_login_runtime<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Runtime, D::Error> {
    let s = String::deserialize(d)?;
    crate::agents::parse_login_runtime(&s).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time;

    const MIN: Duration = Duration::from_secs(60);

    fn t0() -> SystemTime {
        parse_time("2026-11-24T12:00:00Z").unwrap()
    }

    fn oauth(alias: &str, priority: i32) -> Account {
        Account::new(
            alias,
            Runtime::Claude,
            Credential::Login {
                dir: PathBuf::from(format!("/home/app/.claude-{alias}")),
                volume: None,
            },
            priority,
        )
    }

    fn state(accounts: Vec<Account>) -> State {
        State {
            accounts,
            ..State::default()
        }
    }

    #[test]
    fn default_cooldown_grows_on_repeats_and_is_capped_at_an_hour() {
        let mut s = state(vec![oauth("a", 0)]);
        let mut now = t0();
        let mut waits = Vec::new();
        for _ in 0..8 {
            let until = s.record_quota("a", None, now).unwrap();
            waits.push(until.duration_since(now).unwrap().as_secs() / 60);
            now = until;
        }
        assert_eq!(waits, [5, 10, 20, 40, 60, 60, 60, 60]);
        assert_eq!(default_cooldown(u32::MAX), QUOTA_COOLDOWN_MAX);
        assert_eq!(default_cooldown(0), QUOTA_COOLDOWN_BASE);
        // A success starts the growth over.
        s.record_success("a", now).unwrap();
        assert_eq!(s.account("a").unwrap().consecutive_quota_hits, 0);
        let until = s.record_quota("a", None, now).unwrap();
        assert_eq!(until.duration_since(now).unwrap(), 5 * MIN);
    }

    #[test]
    fn a_reset_time_in_the_past_falls_back_to_the_default() {
        let mut s = state(vec![oauth("a", 0)]);
        let until = s.record_quota("a", Some(t0() - MIN), t0()).unwrap();
        assert_eq!(until, t0() + 5 * MIN);
        let f = s.account("a").unwrap().last_failure.clone().unwrap();
        assert_eq!(f.reason, reason::USAGE_LIMIT);
        assert_eq!(f.at, t0());
    }

    #[test]
    fn a_long_reset_given_by_the_cli_is_kept() {
        let mut s = state(vec![oauth("a", 0)]);
        let weekly = t0() + Duration::from_secs(3 * 86400);
        assert_eq!(s.record_quota("a", Some(weekly), t0()).unwrap(), weekly);
    }

    #[test]
    fn refresh_failures_mark_relogin_after_the_limit_or_at_once_when_dead() {
        let mut s = state(vec![oauth("a", 0), oauth("b", 0)]);
        assert!(!s.record_refresh_failure("a", "503", false, t0()).unwrap());
        assert!(!s.record_refresh_failure("a", "503", false, t0()).unwrap());
        assert!(s.record_refresh_failure("a", "503", false, t0()).unwrap());
        assert!(s.record_refresh_failure("b", "invalid_grant", true, t0()).unwrap());
        s.record_success("a", t0()).unwrap();
        let a = s.account("a").unwrap();
        assert!(!a.needs_relogin && a.refresh_failures == 0 && a.last_used == Some(t0()));
    }

    #[test]
    fn failure_details_are_redacted() {
        let mut s = state(vec![oauth("a", 0)]);
        let token = "sk-ant-oat01-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        s.record_auth_failure("a", &format!("401 for {token}"), t0()).unwrap();
        let detail = &s.account("a").unwrap().last_failure.as_ref().unwrap().detail;
        assert!(!detail.contains(token), "{detail}");
        s.record_auth_failure("a", &format!("401 {}", "x ".repeat(500)), t0())
            .unwrap();
        let detail = &s.account("a").unwrap().last_failure.as_ref().unwrap().detail;
        assert!(detail.chars().count() <= FAILURE_DETAIL_MAX_CHARS, "{detail}");
    }

    #[test]
    fn aliases_are_unique_and_unknown_ones_are_named() {
        let mut s = state(vec![oauth("a", 0)]);
        let err = s.add(oauth("a", 1)).unwrap_err();
        assert!(matches!(err, Error::DuplicateAccount { .. }));
        assert_eq!(err.exit(), crate::exit::Exit::Usage);
        let err = s.remove("zz").unwrap_err();
        assert!(err.to_string().contains("zz"));
        assert!(validate_alias("Work").is_err());
        assert!(validate_alias("work_2-b").is_ok());
    }
}

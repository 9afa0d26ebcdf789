//! Reading the CLIs' login files and saying what they hold.
//!
//! One typed parser per CLI (`claude::parse`, `codex::parse`: bytes to a login, tokens
//! as [`Secret`](crate::redact::Secret)) is the only reading of a login file; the
//! classifiers (`claude::classify`, `codex::classify`) turn its login and a clock into an
//! [`Inspection`], and `refresh` reads its tokens from the same login. [`inspect_dir`] is
//! the file-system edge that finds, checks and reads the file. Nothing here reports a
//! token: only its metadata.

pub mod claude;
pub mod codex;
pub use crate::time::{
    human_duration, is_far_future, latest_time, rfc3339, time_from_millis, time_from_secs, LATEST_EPOCH_SECS,
};

pub mod apply;
pub mod jwt;
pub mod refresh;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use crate::agents::{codex as codex_cli, LoginRuntime, Runtime};

/// Login files larger than this are refused: real ones are a few kilobytes.
pub const MAX_CREDENTIAL_BYTES: u64 = 256 * 1024;
/// The most moonauth reads of a CLI's settings file (`config.toml`, `.claude.json`, which
/// grows with the projects Claude Code has seen): bounded all the same.
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// What a login directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoginClass {
    /// No login file, or a file with no login in it.
    Missing,
    /// A login file that cannot be parsed; the detail says what is wrong.
    Malformed,
    /// A login file moonauth refuses to read (too large, not a regular file, a link out of the directory, unreadable).
    Refused,
    /// An API key (API billing), from the file or the environment.
    ApiKey,
    /// An OAuth login whose access token is valid beyond the lead.
    OauthValid,
    /// An OAuth login whose access token expires within the lead; the CLI will refresh it.
    OauthExpiringSoon,
    /// An expired OAuth access token with a refresh token: a refresh (`moonauth renew`, or
    /// the CLI itself on a login no one shares) renews it.
    OauthExpiredRefreshable,
    /// An expired OAuth access token with no refresh token: the next request fails.
    OauthExpiredNotRefreshable,
}

impl LoginClass {
    /// Whether a CLI can run with this login.
    pub fn usable(self) -> bool {
        matches!(
            self,
            LoginClass::ApiKey
                | LoginClass::OauthValid
                | LoginClass::OauthExpiringSoon
                | LoginClass::OauthExpiredRefreshable
        )
    }

    /// Whether this is an OAuth (subscription) login.
    pub fn is_oauth(self) -> bool {
        matches!(
            self,
            LoginClass::OauthValid
                | LoginClass::OauthExpiringSoon
                | LoginClass::OauthExpiredRefreshable
                | LoginClass::OauthExpiredNotRefreshable
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LoginClass::Missing => "missing",
            LoginClass::Malformed => "malformed",
            LoginClass::Refused => "refused",
            LoginClass::ApiKey => "api-key",
            LoginClass::OauthValid => "oauth-valid",
            LoginClass::OauthExpiringSoon => "oauth-expiring-soon",
            LoginClass::OauthExpiredRefreshable => "oauth-expired-refreshable",
            LoginClass::OauthExpiredNotRefreshable => "oauth-expired-not-refreshable",
        }
    }
}

/// Why a CLI's parser found no login in a file's bytes. Never holds file content: each
/// caller words it for its own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// Not JSON; where the parser stopped.
    NotJson { line: usize, column: usize },
    /// JSON, but not an object.
    NotObject,
    /// An object without the CLI's login in it (Claude: no `claudeAiOauth`).
    NoLogin,
    /// A field of the wrong shape; the reason names the field.
    Malformed(String),
}

/// The verdict on one login file's bytes, with the metadata a person needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    pub class: LoginClass,
    /// One sentence on what was found; never any part of a token.
    pub detail: String,
    /// Plan or subscription type (`max`, `pro`, `plus`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_tier: Option<String>,
    /// When the access token expires.
    #[serde(serialize_with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<SystemTime>,
    /// When the CLI last refreshed the login (Codex).
    #[serde(serialize_with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub last_refresh: Option<SystemTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The account's e-mail: Codex's id_token, Claude's `.claude.json` (`oauthAccount`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The organization the login belongs to, when the CLI records one (Claude).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Whether a refresh token is present.
    pub refreshable: bool,
}

impl Inspection {
    pub fn new(class: LoginClass, detail: String) -> Self {
        Inspection {
            class,
            detail,
            plan: None,
            rate_limit_tier: None,
            expires_at: None,
            last_refresh: None,
            account_id: None,
            email: None,
            organization: None,
            scopes: None,
            refreshable: false,
        }
    }
}

/// Classifies an OAuth access token by its expiry.
pub(crate) fn oauth_class(
    expires_at: Option<SystemTime>,
    refreshable: bool,
    now: SystemTime,
    lead: Duration,
) -> (LoginClass, String) {
    let Some(exp) = expires_at else {
        return (
            LoginClass::OauthValid,
            "OAuth login; the access token carries no expiry".into(),
        );
    };
    if is_far_future(exp) {
        return (
            LoginClass::OauthValid,
            format!(
                "OAuth login; the access token's expiry lies beyond the year 9999 and is read as far future ({})",
                rfc3339(exp)
            ),
        );
    }
    match exp.duration_since(now) {
        Err(past) => {
            let ago = human_duration(past.duration());
            if refreshable {
                (
                    LoginClass::OauthExpiredRefreshable,
                    format!("OAuth access token expired {ago} ago; its refresh token can renew it"),
                )
            } else {
                (
                    LoginClass::OauthExpiredNotRefreshable,
                    format!("OAuth access token expired {ago} ago and there is no refresh token to renew it"),
                )
            }
        }
        Ok(left) if left <= lead => (
            LoginClass::OauthExpiringSoon,
            format!("OAuth access token expires in {}", human_duration(left)),
        ),
        Ok(left) => (
            LoginClass::OauthValid,
            format!("OAuth login, access token valid for {}", human_duration(left)),
        ),
    }
}

fn opt_time<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// What a login directory holds, for one runtime.
#[derive(Debug, Clone, Serialize)]
pub struct LoginReport {
    pub runtime: Runtime,
    pub dir: PathBuf,
    /// The login file that was (or would be) read.
    pub file: PathBuf,
    #[serde(flatten)]
    pub inspection: Inspection,
    pub usable: bool,
}

/// The login file a runtime's CLI reads in `dir`.
pub fn login_file(runtime: LoginRuntime, dir: &Path) -> PathBuf {
    dir.join(runtime.credentials_file())
}

/// Classifies a login file's bytes for `runtime`.
pub fn classify(runtime: LoginRuntime, bytes: &[u8], now: SystemTime, lead: Duration) -> Inspection {
    match runtime {
        LoginRuntime::Claude => claude::classify(bytes, now, lead),
        LoginRuntime::Codex => codex::classify(bytes, now, lead),
    }
}

/// Inspects the login in `dir` for `runtime` at time `now`.
pub fn inspect_dir(runtime: LoginRuntime, dir: &Path, now: SystemTime, lead: Duration) -> LoginReport {
    let file = login_file(runtime, dir);
    let inspection = match read_login_file(dir, &file) {
        Ok(Some(bytes)) => classify(runtime, &bytes, now, lead),
        Ok(None) if !dir.is_dir() => Inspection::new(
            LoginClass::Missing,
            format!("the login directory {} does not exist", dir.display()),
        ),
        Ok(None) => missing(runtime, dir),
        Err(reason) => Inspection::new(LoginClass::Refused, reason),
    };
    let inspection = match runtime {
        // Who the login belongs to: an unreadable or refused .claude.json says nothing.
        LoginRuntime::Claude => {
            let account = read_guarded(dir, &dir.join(crate::agents::claude::ACCOUNT_FILE), MAX_CONFIG_BYTES)
                .ok()
                .flatten();
            claude::with_account(inspection, account.as_deref())
        }
        LoginRuntime::Codex => inspection,
    };
    LoginReport {
        runtime: runtime.runtime(),
        dir: dir.to_path_buf(),
        file,
        usable: inspection.class.usable(),
        inspection,
    }
}

fn missing(runtime: LoginRuntime, dir: &Path) -> Inspection {
    let config = match runtime {
        // Only to tell a keyring login from none: an unreadable config says nothing.
        LoginRuntime::Codex => read_guarded(dir, &dir.join(codex_cli::CONFIG_FILE), MAX_CONFIG_BYTES)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        LoginRuntime::Claude => None,
    };
    missing_login(runtime, config.as_deref())
}

/// The verdict for a directory with no login file; for Codex, `config_toml` tells whether
/// the login went to an OS keyring instead.
pub fn missing_login(runtime: LoginRuntime, config_toml: Option<&str>) -> Inspection {
    let name = runtime.credentials_file();
    if runtime == LoginRuntime::Codex {
        // A keyring-backed Codex login is invisible to every other container.
        let store = config_toml.and_then(codex::credentials_store);
        if let Some(store @ ("keyring" | "auto")) = store.as_deref() {
            return Inspection::new(
                LoginClass::Missing,
                format!("no {name}: config.toml sets cli_auth_credentials_store = \"{store}\", so the login went to an OS keyring a container cannot read"),
            );
        }
    }
    Inspection::new(LoginClass::Missing, format!("no {name} in the login directory"))
}

/// The files that make up a runtime's login, in the order they are put in place
/// (the credentials file last, so a reader never sees new credentials with old settings).
pub fn login_files(runtime: LoginRuntime) -> &'static [&'static str] {
    runtime.login_files()
}

/// Reads a login file that must stay inside `dir`: `Ok(None)` when absent, `Err(reason)`
/// when refused (too large, not a regular file, a link that leaves the directory).
pub fn read_login_file(dir: &Path, file: &Path) -> Result<Option<Vec<u8>>, String> {
    read_guarded(dir, file, MAX_CREDENTIAL_BYTES)
}

/// Reads any file moonauth takes from a login directory (login, settings, records) under
/// one set of rules: at most `max` bytes; a regular file, never a FIFO or device (opened
/// without blocking); a link only when it stays inside `dir`, and then its target is
/// opened without following any further link.
pub fn read_guarded(dir: &Path, file: &Path, max: u64) -> Result<Option<Vec<u8>>, String> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let meta = match fs::symlink_metadata(file) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {name}: {e}")),
    };
    let mut real = file.to_path_buf();
    if meta.file_type().is_symlink() {
        let target = fs::canonicalize(file).map_err(|_| format!("{name} is a symbolic link to nothing"))?;
        let base = fs::canonicalize(dir).map_err(|e| format!("cannot resolve the login directory: {e}"))?;
        if !target.starts_with(&base) {
            return Err(format!(
                "{name} is a symbolic link that leaves the login directory; refusing to follow it"
            ));
        }
        real = target;
    }
    match crate::fsx::read_file(&real, max) {
        Ok(Some(bytes)) => Ok(Some(bytes)),
        Ok(None) => Ok(None),
        Err(crate::fsx::ReadRefused::TooLarge { size, max, .. }) => Err(format!(
            "{name} is {size} bytes, over the {max} byte limit for a login file"
        )),
        Err(crate::fsx::ReadRefused::NotRegular { kind, .. }) => Err(format!("{name} is not a regular file ({kind})")),
        Err(crate::fsx::ReadRefused::Link { .. }) => Err(format!(
            "{name} changed into a symbolic link while being read; refusing to follow it"
        )),
        Err(crate::fsx::ReadRefused::Io { source, .. }) => Err(format!("cannot read {name}: {source}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[test]
    fn human_durations_show_two_units() {
        assert_eq!(human_duration(Duration::from_secs(0)), "0s");
        assert_eq!(human_duration(Duration::from_secs(59)), "59s");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600 + 12 * 60 + 5)), "3h 12m");
        assert_eq!(human_duration(Duration::from_secs(3600 + 5)), "1h");
        assert_eq!(human_duration(Duration::from_secs(22 * 86_400 + 8 * 3600)), "22d 8h");
    }

    #[test]
    fn refuses_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(".credentials.json"),
            vec![b' '; MAX_CREDENTIAL_BYTES as usize + 1],
        )
        .unwrap();
        let r = inspect_dir(LoginRuntime::Claude, dir.path(), now(), Duration::ZERO);
        assert_eq!(r.inspection.class, LoginClass::Refused);
        assert!(r.inspection.detail.contains("byte limit"));
    }

    #[test]
    fn refuses_directories_and_fifos() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("auth.json")).unwrap();
        let r = inspect_dir(LoginRuntime::Codex, dir.path(), now(), Duration::ZERO);
        assert_eq!(r.inspection.class, LoginClass::Refused);
        assert!(r.inspection.detail.contains("not a regular file"));

        let dir = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&dir.path().join(".credentials.json"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let r = inspect_dir(LoginRuntime::Claude, dir.path(), now(), Duration::ZERO);
        assert_eq!(r.inspection.class, LoginClass::Refused);
    }

    #[test]
    fn refuses_links_that_leave_the_directory_but_follows_links_inside() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("auth.json"), r#"{"OPENAI_API_KEY":"sk-x"}"#).unwrap();
        let dir = tempfile::tempdir().unwrap();
        symlink(outside.path().join("auth.json"), dir.path().join("auth.json")).unwrap();
        let r = inspect_dir(LoginRuntime::Codex, dir.path(), now(), Duration::ZERO);
        assert_eq!(r.inspection.class, LoginClass::Refused);
        assert!(r.inspection.detail.contains("leaves the login directory"));

        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("real.json"), r#"{"OPENAI_API_KEY":"sk-x"}"#).unwrap();
        symlink(dir.path().join("real.json"), dir.path().join("auth.json")).unwrap();
        let r = inspect_dir(LoginRuntime::Codex, dir.path(), now(), Duration::ZERO);
        assert_eq!(r.inspection.class, LoginClass::ApiKey);
    }

    #[test]
    fn settings_files_are_read_under_the_same_guards() {
        // A FIFO named config.toml used to hang inspect and preflight; a link to /dev/zero
        // grew without bound.
        let dir = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&dir.path().join("config.toml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let r = inspect_dir(LoginRuntime::Codex, dir.path(), now(), Duration::ZERO);
        assert_eq!(r.inspection.class, LoginClass::Missing);
        let dir = tempfile::tempdir().unwrap();
        symlink("/dev/zero", dir.path().join("config.toml")).unwrap();
        let r = inspect_dir(LoginRuntime::Codex, dir.path(), now(), Duration::ZERO);
        assert_eq!(r.inspection.class, LoginClass::Missing);
        assert!(read_guarded(dir.path(), &dir.path().join("config.toml"), 10).is_err());
    }

    #[test]
    fn missing_codex_login_mentions_the_keyring_setting() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("config.toml"),
            "cli_auth_credentials_store = \"keyring\"\n",
        )
        .unwrap();
        let r = inspect_dir(LoginRuntime::Codex, dir.path(), now(), Duration::ZERO);
        assert_eq!(r.inspection.class, LoginClass::Missing);
        assert!(r.inspection.detail.contains("keyring"));
    }
}

//! What a renewal leaves in a login directory besides the login: the failure record
//! ([`STATE_FILE`], read by `status` and preflight to say a login needs a new login) and
//! the pending answer ([`PENDING_FILE`], tokens a renewal received but could not write).
//! Reading, writing and judging them; the refresh that writes them is [`super`]'s.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::agents::{LoginRuntime, Runtime};
use crate::credentials;
use crate::credentials::apply;
use crate::credentials::refresh::{self, RefreshError};

/// The record of failed refreshes inside a login directory.
pub const STATE_FILE: &str = ".moonauth-renew.json";
/// After this many failed renewals in a row a login is left alone until it changes.
pub const MAX_CONSECUTIVE_FAILURES: u32 = 3;
const STATE_SCHEMA: &str = "moonauth.renew-state.v1";
/// The most of a failure record moonauth reads (it is a few hundred bytes).
const MAX_STATE_BYTES: u64 = 64 * 1024;
/// A token service's answer that a renewal received but could not write into the login
/// file (full disk, read-only remount, file size limit). It holds tokens: mode 0600, made
/// with `O_EXCL`, read with `O_NOFOLLOW`, never logged. The next renewal applies it.
pub const PENDING_FILE: &str = ".moonauth-pending-refresh.json";
const PENDING_SCHEMA: &str = "moonauth.pending-refresh.v1";
/// A pending answer larger than this is not one moonauth wrote (answers are at most 64 KiB).
const MAX_PENDING_BYTES: u64 = 160 * 1024;

/// What [`PENDING_FILE`] holds. No `Debug`: it holds tokens.
#[derive(Serialize, Deserialize)]
pub(super) struct PendingRefresh {
    pub(super) schema: String,
    pub(super) runtime: String,
    /// When the answer arrived (RFC 3339, micros): its lifetimes count from then.
    pub(super) received_at: String,
    /// A fingerprint of the refresh token spent for it: the answer belongs only to a login
    /// file that still holds that token.
    pub(super) spent_refresh_token: String,
    /// The token service's answer, as it came.
    pub(super) answer: String,
}

pub(super) fn pending_record(runtime: Runtime, sent: &refresh::LoginTokens, answer: &[u8], now: SystemTime) -> Vec<u8> {
    let record = PendingRefresh {
        schema: PENDING_SCHEMA.into(),
        runtime: runtime.as_str().into(),
        received_at: crate::time::rfc3339_micros(now).to_string(),
        spent_refresh_token: fingerprint(sent.refresh_token.expose().as_bytes()),
        answer: String::from_utf8_lossy(answer).into_owned(),
    };
    // Serializing strings into JSON cannot fail.
    serde_json::to_vec(&record).unwrap_or_default()
}

/// Creates [`PENDING_FILE`] with `O_EXCL|O_NOFOLLOW`, mode 0600, through the directory
/// guards of [`crate::fsx`] (when the claimed space could not be used).
pub(super) fn create_pending(dir: &Path, record: &[u8], (uid, gid): (u32, u32)) -> std::io::Result<()> {
    let d = crate::fsx::Dir::open(dir)?;
    let mut f = d.create_exclusive(PENDING_FILE, 0o600)?;
    if nix::unistd::geteuid().is_root() {
        // Only the file just created here is chowned, through its descriptor.
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
    }
    let written = f.write_all(record).and_then(|()| f.sync_all());
    if let Err(e) = written {
        // A partial file would only confuse the next renewal.
        let _ = d.remove_file(PENDING_FILE);
        return Err(e);
    }
    d.sync()
}

/// Reads [`PENDING_FILE`] under [`crate::fsx`]'s rules (never through a link, never a
/// FIFO, bounded): `Ok(None)` when there is none; `Err` says why it was refused.
pub(super) fn read_pending(dir: &Path) -> Result<Option<PendingRefresh>, String> {
    let Some(bytes) = crate::fsx::read_file(&dir.join(PENDING_FILE), MAX_PENDING_BYTES).map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    serde_json::from_slice::<PendingRefresh>(&bytes)
        .ok()
        .filter(|p| p.schema == PENDING_SCHEMA)
        .map(Some)
        .ok_or_else(|| format!("{PENDING_FILE} is not a pending answer moonauth wrote"))
}

pub(super) fn remove_pending(dir: &Path) {
    let removed = crate::fsx::Dir::open(dir).and_then(|d| d.remove_file(PENDING_FILE));
    if let Err(e) = removed {
        tracing::warn!(error = %e, "could not remove {PENDING_FILE}");
    }
}
/// The failure record in a login directory (`.moonauth-renew.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewState {
    pub schema: String,
    pub runtime: String,
    /// Failed renewals in a row, for the login file as it was at the last failure.
    pub consecutive_failures: u32,
    /// The token service refused the refresh token.
    pub dead: bool,
    pub last_error: String,
    /// RFC 3339.
    pub last_failure_at: String,
    /// A fingerprint (FNV-1a 64 of the bytes) of the login file at the last failure:
    /// a different file is a new login and starts with a clean record.
    pub login_fingerprint: String,
}

/// Reads the failure record of a login directory, if there is one.
pub fn read_state(dir: &Path) -> Option<RenewState> {
    let bytes = crate::fsx::read_file(&dir.join(STATE_FILE), MAX_STATE_BYTES).ok()??;
    serde_json::from_slice::<RenewState>(&bytes)
        .ok()
        .filter(|s| s.schema == STATE_SCHEMA)
}

/// Why the login in `dir` needs a new login (or `--force`) before moonauth refreshes it
/// again: dead, or failed too often in a row, and the file unchanged since. `None` when
/// moonauth would still try. For `status` and preflight.
pub fn relogin_needed(runtime: LoginRuntime, dir: &Path) -> Option<String> {
    // The record rarely exists: look for it before reading the login again.
    let state = read_state(dir)?;
    let file = credentials::login_file(runtime, dir);
    let bytes = credentials::read_login_file(dir, &file).ok().flatten()?;
    blocked_by(&Some(state), &bytes)
}

/// Why the login in `dir` must not be used until `moonauth renew` runs: a refresh's
/// answer waits in [`PENDING_FILE`], so the file's refresh token is spent and a CLI that
/// refreshes it would revoke the login. `None` when there is no pending answer. For preflight.
pub fn pending_answer(dir: &Path) -> Option<String> {
    fs::symlink_metadata(dir.join(PENDING_FILE)).ok()?;
    Some(format!(
        "moonauth refreshed this login but could not write the new tokens, which wait in {PENDING_FILE}; the file's refresh token is spent"
    ))
}

/// [`relogin_needed`] from the bytes of the failure record and of the login file (for
/// `status`, which reads them out of a volume).
pub fn relogin_needed_from(state: &[u8], login: &[u8]) -> Option<String> {
    let state = serde_json::from_slice::<RenewState>(state)
        .ok()
        .filter(|s| s.schema == STATE_SCHEMA);
    blocked_by(&state, login)
}

pub(super) fn blocked_by(state: &Option<RenewState>, bytes: &[u8]) -> Option<String> {
    let s = state.as_ref()?;
    if s.login_fingerprint != fingerprint(bytes) {
        return None;
    }
    if s.dead {
        Some(format!(
            "the token service refused this login's refresh token at {} ({}); it needs a new login",
            s.last_failure_at, s.last_error
        ))
    } else if s.consecutive_failures >= MAX_CONSECUTIVE_FAILURES {
        Some(format!(
            "refreshing failed {} times in a row, last at {} ({}); not retried until the login changes",
            s.consecutive_failures, s.last_failure_at, s.last_error
        ))
    } else {
        None
    }
}

/// FNV-1a 64 of the bytes, as hex: enough to tell "the same file" from "a new login".
pub(super) fn fingerprint(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

/// Records a failed renewal; returns the failures in a row for this login file.
pub(super) fn record_failure(dir: &Path, runtime: Runtime, login: &[u8], error: &RefreshError, now: SystemTime) -> u32 {
    let print = fingerprint(login);
    let before = read_state(dir).filter(|s| s.login_fingerprint == print);
    let state = RenewState {
        schema: STATE_SCHEMA.into(),
        runtime: runtime.as_str().into(),
        consecutive_failures: before.map_or(0, |s| s.consecutive_failures) + 1,
        dead: matches!(error, RefreshError::Dead(_)),
        last_error: error.reason().to_string(),
        last_failure_at: credentials::rfc3339(now),
        login_fingerprint: print,
    };
    if let Ok(mut bytes) = serde_json::to_vec_pretty(&state) {
        bytes.push(b'\n');
        let (uid, gid) = fs::metadata(dir).map(|m| (m.uid(), m.gid())).unwrap_or((0, 0));
        if let Err(e) = apply::write_atomic(&dir.join(STATE_FILE), &bytes, uid, gid, 0o600) {
            tracing::warn!(error = %e, "could not record the failed renewal");
        }
    }
    state.consecutive_failures
}

pub(super) fn clear_state(dir: &Path) {
    match fs::remove_file(dir.join(STATE_FILE)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(error = %e, "could not clear the renewal failure record"),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_failure_record_blocks_only_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let login = br#"{"tokens":{}}"#;
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let e = RefreshError::Retryable("HTTP 503".into());
        for n in 1..=3 {
            assert_eq!(relogin_needed(LoginRuntime::Codex, dir.path()), None);
            assert_eq!(record_failure(dir.path(), Runtime::Codex, login, &e, now), n);
        }
        fs::write(dir.path().join("auth.json"), login).unwrap();
        assert!(relogin_needed(LoginRuntime::Codex, dir.path())
            .unwrap()
            .contains("3 times in a row"));
        fs::write(dir.path().join("auth.json"), br#"{"tokens":{"new":1}}"#).unwrap();
        assert_eq!(
            relogin_needed(LoginRuntime::Codex, dir.path()),
            None,
            "a new login is tried again"
        );
        let dead = RefreshError::Dead("HTTP 401 refresh_token_reused".into());
        assert_eq!(
            record_failure(dir.path(), Runtime::Codex, br#"{"tokens":{"new":1}}"#, &dead, now),
            1
        );
        assert!(relogin_needed(LoginRuntime::Codex, dir.path())
            .unwrap()
            .contains("needs a new login"));
        let mode = fs::metadata(dir.path().join(STATE_FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn fingerprints_differ_for_different_files() {
        assert_ne!(fingerprint(b"a"), fingerprint(b"b"));
        assert_eq!(fingerprint(b"a"), fingerprint(b"a"));
    }
}

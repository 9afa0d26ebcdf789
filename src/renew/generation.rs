//! A fleet's one copy of the truth for a shared login: the lease holder publishes each
//! refreshed login as a numbered generation in the fleet's database
//! ([`crate::lease::fleet`]), and every host takes up a newer generation into its own
//! login directory before it runs or refreshes anything, so no host ever refreshes with
//! a refresh token another host already spent.
//!
//! Which generation a directory holds is kept beside the login, in [`MARKER_FILE`]
//! (`<runtime>/<account> <number>`). A newer generation is taken up only when its access
//! token does not expire before the one in the directory (a login made again by hand on
//! this host is not overwritten by an older one). The login file is written under the
//! lease and the CLI's own write locks, atomically, keeping its owner and mode.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::agents::Runtime;
use crate::credentials::{self, apply, refresh};
use crate::fsx::Dir;
use crate::lease::fleet::{login_name, Fleet};
use crate::lease::{self, Lease, LoginKey};

use super::{owner_of, STORAGE_LOCK_WAIT};

/// The file naming the generation a login directory holds.
pub const MARKER_FILE: &str = ".moonauth-generation";

/// The generation of `key` that `dir` holds (0 when none, or when the marker names another login).
pub fn held(dir: &Path, key: &LoginKey) -> i64 {
    let name = login_name(key);
    let Ok(Some(bytes)) = crate::fsx::read_file(&dir.join(MARKER_FILE), 1024) else {
        return 0;
    };
    let text = String::from_utf8_lossy(&bytes);
    match text.trim().split_once(' ') {
        Some((marked, n)) if marked == name => n.parse().unwrap_or(0),
        _ => 0,
    }
}

fn mark(dir: &Path, key: &LoginKey, number: i64, owner: (u32, u32)) -> Result<(), String> {
    let text = format!("{} {number}\n", login_name(key));
    Dir::open(dir)
        .and_then(|d| d.write_atomic(MARKER_FILE, text.as_bytes(), Some(owner), 0o600))
        .map_err(|e| format!("could not write {}: {e}", dir.join(MARKER_FILE).display()))
}

/// Whether the database has a generation of `key` newer than `dir` holds. An unreachable
/// database is "no" (with a warning): the host goes on with what its volume holds.
pub fn newer_published(fleet: &Fleet, key: &LoginKey, dir: &Path) -> bool {
    match fleet.newest_number(key) {
        Ok(Some(n)) => n > held(dir, key),
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(login = %login_name(key), "{e}; going on with the login in {}", dir.display());
            false
        }
    }
}

/// What taking up did.
#[derive(Debug, PartialEq, Eq)]
pub enum TakenUp {
    /// The directory holds the newest generation (or there is none).
    Current,
    /// The directory's login was replaced by generation `n`.
    Replaced(i64),
    /// Generation `n` is older than the directory's login (by expiry): kept as it is.
    KeptLocal(i64),
}

/// Brings the login in `dir` up to the newest generation of `key`, under `lease` (which
/// must be held for `dir`). Errors (the database, a wrong key) are for the caller to
/// report; the directory is then unchanged.
pub fn take_up(lease: &mut Lease, fleet: &Fleet, key: &LoginKey, dir: &Path) -> Result<TakenUp, String> {
    let runtime = key.runtime;
    let login = runtime.require_login().map_err(|e| e.to_string())?;
    let held_now = held(dir, key);
    let Some(generation) = fleet.newest(key).map_err(|e| e.to_string())? else {
        return Ok(TakenUp::Current);
    };
    if generation.number <= held_now {
        return Ok(TakenUp::Current);
    }
    let file = credentials::login_file(login, dir);
    let published = refresh::read_tokens(login, &generation.bytes).map_err(|why| {
        format!(
            "generation {} of {} does not hold a login: {why}",
            generation.number,
            login_name(key)
        )
    })?;
    let current = credentials::read_login_file(dir, &file)?;
    let local = current.as_deref().and_then(|b| refresh::read_tokens(login, b).ok());
    if let Some(local) = &local {
        let older = matches!((published.expires_at, local.expires_at), (Some(p), Some(l)) if p < l);
        if older && local.refresh_token != published.refresh_token {
            tracing::warn!(login = %login_name(key), generation = generation.number, dir = %dir.display(),
                "the published login expires before this directory's; keeping this directory's");
            return Ok(TakenUp::KeptLocal(generation.number));
        }
    }
    let owner = owner_of(&file);
    if current.as_deref() != Some(generation.bytes.as_slice()) {
        write_login(lease, runtime, dir, &file, &generation.bytes, owner)?;
    }
    mark(dir, key, generation.number, owner)?;
    tracing::info!(login = %login_name(key), generation = generation.number, dir = %dir.display(), "took up the fleet's newest login");
    Ok(TakenUp::Replaced(generation.number))
}

/// Publishes the login now in `dir` as the next generation of `key`, under the fleet
/// grant `lease` holds; the number, or why not (a stale grant is refused).
pub fn publish(lease: &Lease, fleet: &Fleet, key: &LoginKey, dir: &Path) -> Result<i64, String> {
    let grant = lease
        .fleet_grant()
        .ok_or_else(|| "no fleet lease is held".to_string())?;
    let login = key.runtime.require_login().map_err(|e| e.to_string())?;
    let file = credentials::login_file(login, dir);
    let bytes = credentials::read_login_file(dir, &file)?
        .ok_or_else(|| format!("{} disappeared before it was published", file.display()))?;
    match fleet.publish(key, grant, &bytes).map_err(|e| e.to_string())? {
        Some(number) => {
            mark(dir, key, number, owner_of(&file))?;
            tracing::info!(login = %login_name(key), generation = number, fencing = grant.fencing(), "published the refreshed login");
            Ok(number)
        }
        None => Err(format!(
            "the fleet lease (fencing {}) expired or was taken over before the publish; the database keeps the newer generation",
            grant.fencing()
        )),
    }
}

/// Writes a published login into `file`, under the CLI's own write locks (Claude Code's
/// storage-write lock, Codex's commit flocks), keeping the file's owner and mode.
fn write_login(
    lease: &mut Lease,
    runtime: Runtime,
    dir: &Path,
    file: &Path,
    bytes: &[u8],
    owner: (u32, u32),
) -> Result<(), String> {
    let cannot = |e: lease::LeaseError| format!("could not take the login's write lock: {e}");
    let mut codex_locks = None;
    if runtime == Runtime::Claude {
        lease.take_storage_lock(dir, STORAGE_LOCK_WAIT).map_err(cannot)?;
    } else {
        codex_locks = Some(lease::codex_commit_locks(dir, STORAGE_LOCK_WAIT).map_err(cannot)?);
    }
    // A link is written through to its target, as a refresh writes it.
    let target = fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let (uid, gid, mode) = match fs::metadata(&target) {
        Ok(meta) => (meta.uid(), meta.gid(), meta.permissions().mode() & 0o777),
        Err(_) => (owner.0, owner.1, 0o600),
    };
    let written = apply::write_atomic(&target, bytes, uid, gid, mode).map_err(|e| e.to_string());
    drop(codex_locks);
    lease.release_storage_lock();
    written
}

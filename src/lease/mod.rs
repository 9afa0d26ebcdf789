//! The refresh lease: who may refresh a login right now, keyed by the login's logical
//! [`LoginKey`] (runtime and account), not by a path. [`Lease::acquire`] chooses where
//! the lease is kept, in one place; today that is always the login directory itself, so
//! every container that mounts the volume shares it (a fleet-wide lease, in PostgreSQL,
//! plugs in at the same seam).
//!
//! Taking a [`Lease`] takes, in this order (a fixed order, so two takers never deadlock):
//! 1. an exclusive `flock` on `<dir>/.moonauth-refresh.lock` — moonauth against moonauth;
//!    the kernel drops it when the holder dies, however it dies;
//! 2. for Claude, the locks Claude Code itself takes before it refreshes, in its own
//!    protocol ([`cli_locks`]): `<dir>/.oauth_refresh.lock`, then `<realpath(dir)>.lock`
//!    when that sibling can be made — moonauth against a running `claude`.
//!
//! The CLIs' own locks (Claude Code's mkdir locks, their takeover from a killed moonauth,
//! Codex's commit flocks) live in [`cli_locks`]. Waiting is bounded; dropping a lock
//! releases it. What was read from the shipped Claude Code is in docs/shared-logins.md.
//! Nothing here reads or writes a credentials file.

pub mod cli_locks;
pub mod fleet;

use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::agents::Runtime;

use cli_locks::{acquire_recorded, Recorder};
pub use cli_locks::{
    codex_commit_locks, release_dead_holders_claude_locks, CodexCommitLocks, DirLock, CLAUDE_REFRESH_LOCK,
    CLAUDE_REFRESH_STALE, CLAUDE_STORAGE_LOCK, CLAUDE_STORAGE_STALE, CODEX_COMMIT_LOCKS, TOUCH_EVERY,
};

/// moonauth's lease file inside a login directory.
pub const LEASE_FILE: &str = ".moonauth-refresh.lock";

/// Why a lock could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseError {
    /// Another holder kept the lock for the whole wait.
    Busy {
        lock: PathBuf,
        waited: Duration,
        /// Who holds it, when it says (moonauth's own lease records pid and host).
        holder: Option<String>,
    },
    /// The lock could not be made or opened.
    Io { lock: PathBuf, reason: String },
}

impl std::fmt::Display for LeaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseError::Busy { lock, waited, holder } => {
                write!(
                    f,
                    "{} stayed locked for {}",
                    lock.display(),
                    crate::credentials::human_duration(*waited)
                )?;
                if let Some(h) = holder {
                    write!(f, " (held by {h})")?;
                }
                Ok(())
            }
            LeaseError::Io { lock, reason } => write!(f, "cannot take {}: {reason}", lock.display()),
        }
    }
}

/// What the lease file says about its holder (for messages, and to recognise a Claude
/// lock a killed moonauth left behind).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct HolderRecord {
    pid: u32,
    host: String,
    /// Each Claude lock directory this holder made, while it holds them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    claude_locks: Vec<LockIdentity>,
}

/// Which directory a lock is: device, inode and birth time (ns since the epoch; 0 when
/// the file system does not tell). The birth time tells our lock from a later one that
/// got the same inode number.
type LockIdentity = (u64, u64, u128);

fn identity(meta: &fs::Metadata) -> LockIdentity {
    let born = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    (meta.dev(), meta.ino(), born)
}

/// Which login a lease is for: its runtime and, when it is a store account, the
/// account's alias. The key names the login wherever it is mounted; where its lease is
/// kept is [`Lease::acquire`]'s choice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LoginKey {
    pub runtime: Runtime,
    /// The store account's alias; `None` for a login that is not in the store (a
    /// configured default login, a `--dir`).
    pub account: Option<String>,
}

impl LoginKey {
    pub fn new(runtime: Runtime, account: Option<String>) -> LoginKey {
        LoginKey { runtime, account }
    }
}

/// The right to refresh one login. Released when dropped (the fleet lease first, then
/// Claude's locks, the flock last).
pub struct Lease {
    /// The fleet-wide lease, when the fleet's database is configured. Declared first, so
    /// it is released first.
    fleet: Option<fleet::FleetGrant>,
    claude_locks: Vec<DirLock>,
    storage_lock: Option<DirLock>,
    file: Flock<File>,
    record: HolderRecord,
}

impl Lease {
    /// Takes the lease of the login `key`, which lives in `dir` on this host, waiting at
    /// most `timeout` in all. This is the one place the lease's backend is chosen: the
    /// flock file in the login's directory (and the CLI's own locks) on this host, then,
    /// when the fleet's database is configured, the fleet lease of `key` on it — so one
    /// process per host waits on the database, and one per fleet refreshes.
    pub fn acquire(
        key: &LoginKey,
        dir: &Path,
        timeout: Duration,
        fleet: Option<&fleet::Fleet>,
    ) -> Result<Lease, LeaseError> {
        let deadline = Instant::now() + timeout;
        let mut lease = Lease::acquire_in_dir(key.runtime, dir, timeout)?;
        if let Some(fleet) = fleet {
            lease.fleet = Some(fleet.acquire(key, deadline, timeout)?);
        }
        Ok(lease)
    }

    /// The fleet lease held with this one, when the fleet's database is configured.
    pub fn fleet_grant(&self) -> Option<&fleet::FleetGrant> {
        self.fleet.as_ref()
    }

    /// The file backend: the flock in the login directory, then the CLI's own locks.
    fn acquire_in_dir(runtime: Runtime, dir: &Path, timeout: Duration) -> Result<Lease, LeaseError> {
        let deadline = Instant::now() + timeout;
        let path = dir.join(LEASE_FILE);
        let file = open_lease_file(dir, &path)?;
        let mut flock = lock_file(file, &path, deadline, timeout)?;
        let mut record = HolderRecord {
            pid: std::process::id(),
            host: hostname(),
            claude_locks: Vec::new(),
        };
        let claude_locks = if runtime == Runtime::Claude {
            cli_locks::take_claude_refresh_locks(dir, &mut flock, &mut record, deadline, timeout)?
        } else {
            write_record(&mut flock, &record);
            Vec::new()
        };
        Ok(Lease {
            fleet: None,
            claude_locks,
            storage_lock: None,
            file: flock,
            record,
        })
    }

    /// Takes Claude Code's `.storage-write.lock` in `dir` (its lock around every write of
    /// `.credentials.json`), waiting at most `wait`; held until [`Lease::release_storage_lock`]
    /// or the end of the lease.
    pub fn take_storage_lock(&mut self, dir: &Path, wait: Duration) -> Result<(), LeaseError> {
        let mut rec = Recorder {
            file: &mut self.file,
            record: &mut self.record,
        };
        let path = dir.join(CLAUDE_STORAGE_LOCK);
        let lock = acquire_recorded(&path, CLAUDE_STORAGE_STALE, Instant::now() + wait, wait, &mut rec)?;
        self.storage_lock = Some(lock);
        Ok(())
    }

    /// Releases Claude Code's storage-write lock, if held.
    pub fn release_storage_lock(&mut self) {
        if let Some(lock) = self.storage_lock.take() {
            let id = lock.identity();
            drop(lock);
            self.record.claude_locks.retain(|x| Some(*x) != id);
            write_record(&mut self.file, &self.record);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // The fleet lease goes first: another host may start while this one unlocks.
        self.fleet.take();
        // Claude's locks go first (storage, then in reverse), the record after them: a kill
        // in between leaves a record naming directories that are gone, which is harmless
        // (a later directory with the same inode has another birth time, or is a live
        // claude's and touched), never a lock nobody may take over.
        self.storage_lock.take();
        while let Some(lock) = self.claude_locks.pop() {
            drop(lock);
        }
        if !self.record.claude_locks.is_empty() {
            self.record.claude_locks.clear();
            write_record(&mut self.file, &self.record);
        }
    }
}

/// Opens (or creates) a lock file in a login directory the worker owns, as moonauth may
/// be root there: a link planted under the lock's name is refused, never followed, and
/// only a file created just now is given to the directory's owner (so the worker's own
/// runs can open it later).
fn open_lease_file(dir: &Path, path: &Path) -> Result<File, LeaseError> {
    let io = |e: std::io::Error| LeaseError::Io {
        lock: path.to_path_buf(),
        reason: e.to_string(),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let handle = crate::fsx::Dir::open(dir).map_err(io)?;
    let (file, created) = handle.open_or_create(&name, 0o600).map_err(io)?;
    if created && nix::unistd::geteuid().is_root() {
        if let Ok(d) = handle.stat() {
            let _ = nix::unistd::fchown(
                std::os::fd::AsRawFd::as_raw_fd(&file),
                Some(nix::unistd::Uid::from_raw(d.st_uid)),
                Some(nix::unistd::Gid::from_raw(d.st_gid)),
            );
        }
    }
    Ok(file)
}

fn lock_file(mut file: File, path: &Path, deadline: Instant, timeout: Duration) -> Result<Flock<File>, LeaseError> {
    let mut pause = Duration::from_millis(5);
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, Errno::EWOULDBLOCK)) | Err((f, Errno::EINTR)) => {
                file = f;
                if Instant::now() >= deadline {
                    let holder = read_record_of(&mut file).map(|r| format!("pid {} on {}", r.pid, r.host));
                    return Err(LeaseError::Busy {
                        lock: path.to_path_buf(),
                        waited: timeout,
                        holder,
                    });
                }
                sleep_until_at_most(deadline, jitter(pause));
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err((_, errno)) => {
                return Err(LeaseError::Io {
                    lock: path.to_path_buf(),
                    reason: errno.desc().to_string(),
                })
            }
        }
    }
}

fn read_record(flock: &mut Flock<File>) -> HolderRecord {
    read_record_of(flock).unwrap_or_default()
}

fn read_record_of(file: &mut File) -> Option<HolderRecord> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(4096).read_to_string(&mut text).ok()?;
    // The first line is the record; anything after it is the tail of an older one.
    serde_json::from_str(text.lines().next()?.trim()).ok()
}

fn write_record(file: &mut File, record: &HolderRecord) {
    // Best effort: the record only improves messages and takeovers; a read-only
    // descriptor (someone else's file) cannot write it.
    let Ok(text) = serde_json::to_string(record) else {
        return;
    };
    // One write of the whole line at offset 0, then the length: a holder killed between
    // the two leaves the new record followed by the tail of an older, longer one, and
    // readers take the first line. (Truncating first could leave an empty record, and
    // then a killed holder's Claude locks would be waited out instead of taken over.)
    let line = format!("{text}\n");
    let _ = file
        .rewind()
        .and_then(|_| file.write_all(line.as_bytes()))
        .and_then(|_| file.set_len(line.len() as u64));
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown host".into())
}

fn untouched_for(meta: &fs::Metadata, age: Duration) -> bool {
    meta.modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|d| d >= age)
}

fn jitter(d: Duration) -> Duration {
    d + Duration::from_micros(fastrand::u64(0..=d.as_micros() as u64 / 2 + 1))
}

fn sleep_until_at_most(deadline: Instant, pause: Duration) {
    let left = deadline.saturating_duration_since(Instant::now());
    std::thread::sleep(pause.min(left));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_cut_short_by_a_kill_still_reads_as_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.path().join("lease"))
            .unwrap();
        let long = HolderRecord {
            pid: 1,
            host: "h".into(),
            claude_locks: vec![(1, 2, 3), (4, 5, 6), (7, 8, 9)],
        };
        write_record(&mut file, &long);
        let short = HolderRecord {
            pid: 2,
            host: "h".into(),
            claude_locks: vec![(10, 11, 12)],
        };
        // What a holder killed between the write and the set_len leaves.
        let line = format!("{}\n", serde_json::to_string(&short).unwrap());
        file.rewind().unwrap();
        file.write_all(line.as_bytes()).unwrap();
        let read = read_record_of(&mut file).expect("the new record reads despite the old tail");
        assert_eq!(read.pid, 2);
        assert_eq!(read.claude_locks, vec![(10, 11, 12)]);
        // And a complete write leaves exactly the record.
        write_record(&mut file, &short);
        assert_eq!(file.metadata().unwrap().len(), line.len() as u64);
    }

    fn key(runtime: Runtime) -> LoginKey {
        LoginKey::new(runtime, None)
    }

    #[test]
    fn a_second_lease_waits_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lease::acquire(&key(Runtime::Codex), dir.path(), Duration::from_secs(1), None).unwrap();
        let err = Lease::acquire(&key(Runtime::Codex), dir.path(), Duration::from_millis(200), None)
            .err()
            .unwrap();
        match err {
            LeaseError::Busy { holder, .. } => {
                assert!(holder.unwrap().contains(&format!("pid {}", std::process::id())))
            }
            other => panic!("{other:?}"),
        }
        drop(first);
        Lease::acquire(&key(Runtime::Codex), dir.path(), Duration::from_millis(200), None).unwrap();
    }

    #[test]
    fn claude_leases_take_and_release_claudes_locks() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("claude");
        fs::create_dir(&dir).unwrap();
        let lease = Lease::acquire(&key(Runtime::Claude), &dir, Duration::from_secs(1), None).unwrap();
        assert!(dir.join(CLAUDE_REFRESH_LOCK).is_dir());
        assert!(root.path().join("claude.lock").is_dir(), "the sibling lock too");
        drop(lease);
        assert!(!dir.join(CLAUDE_REFRESH_LOCK).exists());
        assert!(!root.path().join("claude.lock").exists());
    }

    #[test]
    fn a_claude_lock_left_by_a_killed_moonauth_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join(CLAUDE_REFRESH_LOCK);
        fs::create_dir(&lock).unwrap();
        let meta = fs::metadata(&lock).unwrap();
        let record = HolderRecord {
            pid: 1,
            host: "gone".into(),
            claude_locks: vec![identity(&meta)],
        };
        fs::write(dir.path().join(LEASE_FILE), serde_json::to_string(&record).unwrap()).unwrap();
        let old = nix::sys::time::TimeSpec::from(
            (SystemTime::now() - Duration::from_secs(30))
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap(),
        );
        nix::sys::stat::utimensat(None, &lock, &old, &old, nix::sys::stat::UtimensatFlags::NoFollowSymlink).unwrap();
        let started = Instant::now();
        let lease = Lease::acquire(&key(Runtime::Claude), dir.path(), Duration::from_secs(5), None).unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(lease);
        // A lock moonauth did not record is never taken over early.
        fs::create_dir(&lock).unwrap();
        assert!(Lease::acquire(&key(Runtime::Claude), dir.path(), Duration::from_millis(300), None).is_err());
    }
}

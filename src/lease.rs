//! The refresh lease: who may refresh a login right now. It lives with the login, in
//! its directory, so every container that mounts the volume shares it.
//!
//! Taking a [`Lease`] takes, in this order (a fixed order, so two takers never deadlock):
//! 1. an exclusive `flock` on `<dir>/.moonauth-refresh.lock` — moonauth against moonauth;
//!    the kernel drops it when the holder dies, however it dies;
//! 2. for Claude, the locks Claude Code itself takes before it refreshes, in its own
//!    protocol (a directory made with `mkdir`, kept alive by touching its mtime, stale
//!    after 60 s): `<dir>/.oauth_refresh.lock`, then `<realpath(dir)>.lock` when that
//!    sibling can be made — moonauth against a running `claude`.
//!
//! [`DirLock`] is that mkdir protocol (npm `proper-lockfile`, as Claude Code ships it); the
//! credentials write itself goes under Claude's `.storage-write.lock` (`renew` takes it).
//! Waiting is bounded; dropping a lock releases it. What was read from the shipped Claude
//! Code is in docs/shared-logins.md. Nothing here reads or writes a credentials file.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::runtime::Runtime;

/// moonauth's lease file inside a login directory.
pub const LEASE_FILE: &str = ".moonauth-refresh.lock";
/// Claude Code's refresh lock inside its config directory (2.1.330).
pub const CLAUDE_REFRESH_LOCK: &str = ".oauth_refresh.lock";
/// Claude Code's lock around every write of its credentials file (2.1.330).
pub const CLAUDE_STORAGE_LOCK: &str = ".storage-write.lock";
/// Claude Code considers its refresh lock stale when untouched for this long.
pub const CLAUDE_REFRESH_STALE: Duration = Duration::from_secs(60);
/// Claude Code considers its storage-write lock stale when untouched for this long.
pub const CLAUDE_STORAGE_STALE: Duration = Duration::from_secs(15);
/// How often a held directory lock's mtime is touched (Claude Code touches its own every 5 s).
pub const TOUCH_EVERY: Duration = Duration::from_secs(5);

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
    /// Device and inode of each Claude lock directory this holder made, while it holds them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    claude_locks: Vec<(u64, u64)>,
}

/// The right to refresh one login. Released when dropped (Claude's locks first, the
/// flock last).
pub struct Lease {
    claude_locks: Vec<DirLock>,
    file: Flock<File>,
    record: HolderRecord,
}

impl Lease {
    /// Takes the lease of the login in `dir`, waiting at most `timeout` in all.
    pub fn acquire(runtime: Runtime, dir: &Path, timeout: Duration) -> Result<Lease, LeaseError> {
        let deadline = Instant::now() + timeout;
        let path = dir.join(LEASE_FILE);
        let file = open_lease_file(dir, &path)?;
        let mut flock = lock_file(file, &path, deadline, timeout)?;
        let mut record = HolderRecord {
            pid: std::process::id(),
            host: hostname(),
            claude_locks: Vec::new(),
        };
        let mut claude_locks = Vec::new();
        if runtime == Runtime::Claude {
            let lock_path = dir.join(CLAUDE_REFRESH_LOCK);
            let sibling = sibling_lock(dir);
            // Holding the flock, no other moonauth holds a Claude lock: one that a previous
            // moonauth recorded as its own was left by a holder that died. Take it over
            // instead of waiting out the 60 s stale time.
            let previous = read_record(&mut flock);
            for path in std::iter::once(&lock_path).chain(sibling.as_ref()) {
                if let Ok(meta) = fs::symlink_metadata(path) {
                    let ours = previous.claude_locks.contains(&(meta.dev(), meta.ino()));
                    if meta.is_dir() && ours && untouched_for(&meta, TOUCH_EVERY * 2) {
                        tracing::info!(lock = %path.display(), "taking over a Claude lock a killed moonauth left");
                        let _ = fs::remove_dir(path);
                    }
                }
            }
            let lock = DirLock::acquire(&lock_path, CLAUDE_REFRESH_STALE, deadline, timeout)?;
            record.claude_locks.extend(lock.identity());
            write_record(&mut flock, &record);
            claude_locks.push(lock);
            // Claude Code also locks `<realpath(dir)>.lock`, next to the directory (outside a
            // volume, so shared only within one container); take it when it can be made.
            if let Some(sibling) = sibling {
                match DirLock::acquire(&sibling, CLAUDE_REFRESH_STALE, deadline, timeout) {
                    Ok(lock) => {
                        record.claude_locks.extend(lock.identity());
                        write_record(&mut flock, &record);
                        claude_locks.push(lock)
                    }
                    Err(LeaseError::Io { reason, .. }) => {
                        tracing::debug!(lock = %sibling.display(), %reason, "Claude's sibling lock cannot be made here; skipped");
                    }
                    Err(busy) => return Err(busy),
                }
            }
        } else {
            write_record(&mut flock, &record);
        }
        Ok(Lease {
            claude_locks,
            file: flock,
            record,
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Claude's locks go first (in reverse), then the record is cleared, then the flock.
        while let Some(lock) = self.claude_locks.pop() {
            drop(lock);
        }
        if !self.record.claude_locks.is_empty() {
            self.record.claude_locks.clear();
            write_record(&mut self.file, &self.record);
        }
    }
}

fn open_lease_file(dir: &Path, path: &Path) -> Result<File, LeaseError> {
    let io = |e: std::io::Error| LeaseError::Io {
        lock: path.to_path_buf(),
        reason: e.to_string(),
    };
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => f,
        // Made by another user (root's init, say): a read-only descriptor flocks just as well.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => File::open(path).map_err(io)?,
        Err(e) => return Err(io(e)),
    };
    // Root makes it for the directory's owner, so the worker's own runs can open it later.
    if nix::unistd::geteuid().is_root() {
        if let (Ok(d), Ok(f)) = (fs::metadata(dir), file.metadata()) {
            if (f.uid(), f.gid()) != (d.uid(), d.gid()) {
                let _ = nix::unistd::fchown(
                    std::os::fd::AsRawFd::as_raw_fd(&file),
                    Some(nix::unistd::Uid::from_raw(d.uid())),
                    Some(nix::unistd::Gid::from_raw(d.gid())),
                );
            }
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
    serde_json::from_str(text.trim()).ok()
}

fn write_record(file: &mut File, record: &HolderRecord) {
    // Best effort: the record only improves messages and takeovers; a read-only
    // descriptor (someone else's file) cannot write it.
    let Ok(text) = serde_json::to_string(record) else {
        return;
    };
    let _ = file
        .set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| file.write_all(text.as_bytes()))
        .and_then(|_| file.write_all(b"\n"));
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown host".into())
}

fn sibling_lock(dir: &Path) -> Option<PathBuf> {
    let real = fs::canonicalize(dir).ok()?;
    let mut name = real.file_name()?.to_os_string();
    name.push(".lock");
    Some(real.with_file_name(name))
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

/// A lock in the npm `proper-lockfile` protocol, as Claude Code uses it: the lock is the
/// directory `path`, made with `mkdir`; a holder touches its mtime every few seconds; a
/// lock untouched for longer than its stale time may be removed and taken. Released
/// (removed) when dropped.
pub struct DirLock {
    path: PathBuf,
    identity: Option<(u64, u64)>,
    stop: Arc<AtomicBool>,
    toucher: Option<JoinHandle<()>>,
}

impl DirLock {
    /// Takes the lock at `path`, waiting until `deadline` while someone else holds it.
    pub fn acquire(path: &Path, stale: Duration, deadline: Instant, timeout: Duration) -> Result<DirLock, LeaseError> {
        let mut pause = Duration::from_millis(50);
        loop {
            match try_mkdir(path, stale) {
                Ok(true) => return Ok(DirLock::held(path)),
                Ok(false) => {
                    if Instant::now() >= deadline {
                        return Err(LeaseError::Busy {
                            lock: path.to_path_buf(),
                            waited: timeout,
                            holder: None,
                        });
                    }
                    sleep_until_at_most(deadline, jitter(pause));
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(e) => {
                    return Err(LeaseError::Io {
                        lock: path.to_path_buf(),
                        reason: e.to_string(),
                    })
                }
            }
        }
    }

    fn held(path: &Path) -> DirLock {
        touch(path);
        let identity = fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()));
        let stop = Arc::new(AtomicBool::new(false));
        let toucher = {
            let (path, stop) = (path.to_path_buf(), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("moonauth-lock-touch".into())
                .spawn(move || {
                    // Sleep in short steps so a release does not wait out a whole period.
                    let step = Duration::from_millis(100);
                    let mut since = Duration::ZERO;
                    while !stop.load(Ordering::SeqCst) {
                        std::thread::sleep(step);
                        since += step;
                        if since >= TOUCH_EVERY {
                            touch(&path);
                            since = Duration::ZERO;
                        }
                    }
                })
                .ok()
        };
        DirLock {
            path: path.to_path_buf(),
            identity,
            stop,
            toucher,
        }
    }

    /// Device and inode of the lock directory.
    pub fn identity(&self) -> Option<(u64, u64)> {
        self.identity
    }

    /// The lock directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.toucher.take() {
            let _ = t.join();
        }
        if let Err(e) = fs::remove_dir(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(lock = %self.path.display(), error = %e, "could not release a lock");
            }
        }
    }
}

/// One acquisition attempt: `Ok(true)` when the lock is now ours, `Ok(false)` when held.
/// A stale lock is removed and one more `mkdir` tried, as proper-lockfile does.
fn try_mkdir(path: &Path, stale: Duration) -> std::io::Result<bool> {
    for attempt in 0..2 {
        match fs::create_dir(path) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        if attempt == 1 {
            break;
        }
        match fs::symlink_metadata(path) {
            Ok(meta) if untouched_for(&meta, stale) => {
                tracing::info!(lock = %path.display(), "removing a stale lock");
                match fs::remove_dir(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(_) => return Ok(false),
            // Released between mkdir and stat: try again.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

fn touch(path: &Path) {
    let now = nix::sys::time::TimeSpec::from(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    let _ = nix::sys::stat::utimensat(None, path, &now, &now, nix::sys::stat::UtimensatFlags::NoFollowSymlink);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait() -> (Instant, Duration) {
        let t = Duration::from_millis(300);
        (Instant::now() + t, t)
    }

    #[test]
    fn a_second_lease_waits_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lease::acquire(Runtime::Codex, dir.path(), Duration::from_secs(1)).unwrap();
        let err = Lease::acquire(Runtime::Codex, dir.path(), Duration::from_millis(200))
            .err()
            .unwrap();
        match err {
            LeaseError::Busy { holder, .. } => {
                assert!(holder.unwrap().contains(&format!("pid {}", std::process::id())))
            }
            other => panic!("{other:?}"),
        }
        drop(first);
        Lease::acquire(Runtime::Codex, dir.path(), Duration::from_millis(200)).unwrap();
    }

    #[test]
    fn claude_leases_take_and_release_claudes_locks() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("claude");
        fs::create_dir(&dir).unwrap();
        let lease = Lease::acquire(Runtime::Claude, &dir, Duration::from_secs(1)).unwrap();
        assert!(dir.join(CLAUDE_REFRESH_LOCK).is_dir());
        assert!(root.path().join("claude.lock").is_dir(), "the sibling lock too");
        drop(lease);
        assert!(!dir.join(CLAUDE_REFRESH_LOCK).exists());
        assert!(!root.path().join("claude.lock").exists());
    }

    #[test]
    fn a_live_claude_lock_blocks_and_a_stale_one_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join(CLAUDE_REFRESH_LOCK);
        fs::create_dir(&lock).unwrap();
        let (deadline, t) = wait();
        assert!(matches!(
            DirLock::acquire(&lock, CLAUDE_REFRESH_STALE, deadline, t),
            Err(LeaseError::Busy { .. })
        ));
        // Make it look untouched for two minutes.
        let old = nix::sys::time::TimeSpec::from(
            (SystemTime::now() - Duration::from_secs(120))
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap(),
        );
        nix::sys::stat::utimensat(None, &lock, &old, &old, nix::sys::stat::UtimensatFlags::NoFollowSymlink).unwrap();
        let (deadline, t) = wait();
        let held = DirLock::acquire(&lock, CLAUDE_REFRESH_STALE, deadline, t).unwrap();
        assert!(
            !untouched_for(&fs::metadata(&lock).unwrap(), Duration::from_secs(5)),
            "touched on taking"
        );
        drop(held);
        assert!(!lock.exists());
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
            claude_locks: vec![(meta.dev(), meta.ino())],
        };
        fs::write(dir.path().join(LEASE_FILE), serde_json::to_string(&record).unwrap()).unwrap();
        let old = nix::sys::time::TimeSpec::from(
            (SystemTime::now() - Duration::from_secs(30))
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap(),
        );
        nix::sys::stat::utimensat(None, &lock, &old, &old, nix::sys::stat::UtimensatFlags::NoFollowSymlink).unwrap();
        let started = Instant::now();
        let lease = Lease::acquire(Runtime::Claude, dir.path(), Duration::from_secs(5)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(lease);
        // A lock moonauth did not record is never taken over early.
        fs::create_dir(&lock).unwrap();
        assert!(Lease::acquire(Runtime::Claude, dir.path(), Duration::from_millis(300)).is_err());
    }
}

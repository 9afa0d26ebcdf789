//! The CLIs' own locks, which moonauth takes so that it never refreshes or writes a login
//! at the same time as a running CLI: Claude Code's mkdir locks ([`DirLock`], npm
//! `proper-lockfile` as Claude Code ships it) and their takeover from a killed moonauth,
//! and Codex's commit flocks around its write of `auth.json`. Names, stale times and
//! order are the CLIs' (read from the shipped versions; docs/shared-logins.md). The
//! lease record these locks are written into belongs to [`super`].

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::{
    identity, jitter, lock_file, open_lease_file, read_record, sleep_until_at_most, untouched_for, write_record,
    HolderRecord, LeaseError, LockIdentity, LEASE_FILE,
};

/// Claude Code's refresh lock inside its config directory (2.1.330).
pub const CLAUDE_REFRESH_LOCK: &str = ".oauth_refresh.lock";
/// Claude Code's lock around every write of its credentials file (2.1.330).
pub const CLAUDE_STORAGE_LOCK: &str = ".storage-write.lock";
/// Claude Code considers its refresh lock stale when untouched for this long.
pub const CLAUDE_REFRESH_STALE: Duration = Duration::from_secs(60);
/// Claude Code considers its storage-write lock stale when untouched for this long.
pub const CLAUDE_STORAGE_STALE: Duration = Duration::from_secs(15);
/// The flock files Codex 0.169.0 takes, in this order, around its write of `auth.json`
/// after a refresh (seen with strace: `auth.lock` blocking, then `auth.json.lock`). It
/// takes none around the refresh request itself.
pub const CODEX_COMMIT_LOCKS: [&str; 2] = ["auth.lock", "auth.json.lock"];
/// How often a held directory lock's mtime is touched (Claude Code touches its own every 5 s).
pub const TOUCH_EVERY: Duration = Duration::from_secs(5);

/// Takes Claude Code's refresh locks for the login in `dir`, holding the lease's flock:
/// first takes over the ones a killed moonauth left, then the refresh lock and its
/// sibling, recording each in the lease record before it exists.
pub(super) fn take_claude_refresh_locks(
    dir: &Path,
    flock: &mut Flock<File>,
    record: &mut HolderRecord,
    deadline: Instant,
    timeout: Duration,
) -> Result<Vec<DirLock>, LeaseError> {
    let mut claude_locks = Vec::new();
    let lock_path = dir.join(CLAUDE_REFRESH_LOCK);
    let sibling = sibling_lock(dir);
    // Holding the flock, no other moonauth holds a Claude lock: one that a previous
    // moonauth recorded as its own was left by a holder that died. Take it over
    // instead of waiting out the stale time (60 s, 15 s for the storage lock).
    let previous = read_record(flock);
    remove_recorded_claude_locks(dir, &previous);
    // Forget what the dead holder recorded, and the half-made locks it left.
    write_record(flock, record);
    remove_stale_temp_dirs(dir);
    let mut rec = Recorder { file: flock, record };
    claude_locks.push(acquire_recorded(
        &lock_path,
        CLAUDE_REFRESH_STALE,
        deadline,
        timeout,
        &mut rec,
    )?);
    // Claude Code also locks `<realpath(dir)>.lock`, next to the directory (outside a
    // volume, so shared only within one container); take it when it can be made.
    if let Some(sibling) = sibling {
        match acquire_recorded(&sibling, CLAUDE_REFRESH_STALE, deadline, timeout, &mut rec) {
            Ok(lock) => claude_locks.push(lock),
            Err(LeaseError::Io { reason, .. }) => {
                tracing::debug!(lock = %sibling.display(), %reason, "Claude's sibling lock cannot be made here; skipped");
            }
            Err(busy) => return Err(busy),
        }
    }
    Ok(claude_locks)
}

/// Removes the Claude locks that a killed moonauth left in `dir`, so a running `claude`
/// does not wait out their stale time (60 s). Cheap, and safe to call from any command:
/// it does nothing unless the lease file exists and its flock is free (its holder is gone),
/// and then removes only the lock directories that holder recorded as its own. Returns
/// the locks it removed.
pub fn release_dead_holders_claude_locks(dir: &Path) -> Vec<PathBuf> {
    let Ok(handle) = crate::fsx::Dir::open(dir) else {
        return Vec::new();
    };
    // Never created here: no lease file means no holder ever recorded a lock.
    let Ok(Some((file, _))) = handle.open_regular(LEASE_FILE) else {
        return Vec::new();
    };
    let Ok(mut flock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
        return Vec::new(); // held: its holder is alive and will release its own locks
    };
    let record = read_record(&mut flock);
    if record.claude_locks.is_empty() {
        return Vec::new();
    }
    let removed = remove_recorded_claude_locks(dir, &record);
    // A read-only descriptor cannot clear the record; that only costs a later look.
    write_record(&mut flock, &HolderRecord::default());
    removed
}

/// Removes each Claude lock in `dir` (and its sibling) that `record` names as its
/// holder's; called only while holding the lease's flock, so that holder is dead.
fn remove_recorded_claude_locks(dir: &Path, record: &HolderRecord) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let refresh = dir.join(CLAUDE_REFRESH_LOCK);
    let storage = dir.join(CLAUDE_STORAGE_LOCK);
    let sibling = sibling_lock(dir);
    for path in [&refresh, &storage].into_iter().chain(sibling.as_ref()) {
        if let Ok(meta) = fs::symlink_metadata(path) {
            let id = identity(&meta);
            // Without a birth time only an untouched lock is surely not a live claude's.
            let ours = record.claude_locks.contains(&id) && (id.2 != 0 || untouched_for(&meta, TOUCH_EVERY * 2));
            if meta.is_dir() && ours && fs::remove_dir(path).is_ok() {
                tracing::info!(lock = %path.display(), "removed a Claude lock a killed moonauth left");
                removed.push(path.clone());
            }
        }
    }
    removed
}

/// Codex's commit locks, held while moonauth writes `auth.json`, so the write never
/// interleaves with a running codex's own. Released when dropped.
pub struct CodexCommitLocks {
    _held: Vec<Flock<File>>,
}

/// Takes Codex's commit locks in `dir`, waiting at most `wait` in all.
pub fn codex_commit_locks(dir: &Path, wait: Duration) -> Result<CodexCommitLocks, LeaseError> {
    let deadline = Instant::now() + wait;
    let mut held = Vec::with_capacity(CODEX_COMMIT_LOCKS.len());
    for name in CODEX_COMMIT_LOCKS {
        let path = dir.join(name);
        let file = open_lease_file(dir, &path)?;
        held.push(lock_file(file, &path, deadline, wait)?);
    }
    Ok(CodexCommitLocks { _held: held })
}
/// Writes lock identities into the lease record as they are taken and given up.
pub(super) struct Recorder<'a> {
    pub(super) file: &'a mut File,
    pub(super) record: &'a mut HolderRecord,
}

impl Recorder<'_> {
    fn add(&mut self, id: LockIdentity) {
        self.record.claude_locks.push(id);
        write_record(self.file, self.record);
    }

    fn remove(&mut self, id: LockIdentity) {
        self.record.claude_locks.retain(|x| *x != id);
        write_record(self.file, self.record);
    }
}

/// Prefix of the directories a lock is made as before it is renamed into place.
const TEMP_DIR_PREFIX: &str = ".moonauth-lockdir-";

/// Takes a Claude lock so that the lease record names it before it exists: the lock is
/// made as a temp directory beside it, recorded, then renamed into place without
/// replacing anything (`renameat2(RENAME_NOREPLACE)`, atomic like `mkdir`). A holder
/// killed at any point leaves either no lock, or a lock its successor knows it may take
/// over. Where the file system cannot do that rename, a plain `mkdir` is used.
pub(super) fn acquire_recorded(
    path: &Path,
    stale: Duration,
    deadline: Instant,
    timeout: Duration,
    rec: &mut Recorder<'_>,
) -> Result<DirLock, LeaseError> {
    let io = |e: std::io::Error| LeaseError::Io {
        lock: path.to_path_buf(),
        reason: e.to_string(),
    };
    let parent = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = parent.join(format!(
        "{TEMP_DIR_PREFIX}{name}-{}-{:016x}",
        std::process::id(),
        fastrand::u64(..)
    ));
    fs::create_dir(&temp).map_err(io)?;
    let id = match fs::symlink_metadata(&temp) {
        Ok(m) => identity(&m),
        Err(e) => {
            let _ = fs::remove_dir(&temp);
            return Err(io(e));
        }
    };
    rec.add(id);
    let give_up = |rec: &mut Recorder<'_>| {
        // The record first: it must never name a directory that may be gone.
        rec.remove(id);
        let _ = fs::remove_dir(&temp);
    };
    let mut pause = Duration::from_millis(50);
    let mut removed_stale = false;
    loop {
        match rename_noreplace(&temp, path) {
            Ok(()) => return Ok(DirLock::held(path)),
            Err(Errno::EEXIST) | Err(Errno::ENOTEMPTY) => {}
            Err(Errno::EINVAL) | Err(Errno::ENOSYS) | Err(Errno::EOPNOTSUPP) => {
                give_up(rec);
                let lock = DirLock::acquire(path, stale, deadline, timeout)?;
                if let Some(id) = lock.identity() {
                    rec.add(id);
                }
                return Ok(lock);
            }
            Err(errno) => {
                give_up(rec);
                return Err(io(std::io::Error::from(errno)));
            }
        }
        // Held: stale (untouched too long) locks are removed once, as proper-lockfile does.
        match fs::symlink_metadata(path) {
            Ok(meta) if !removed_stale && untouched_for(&meta, stale) => {
                tracing::info!(lock = %path.display(), "removing a stale lock");
                removed_stale = true;
                let _ = fs::remove_dir(path);
                continue;
            }
            Ok(_) => removed_stale = false,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                give_up(rec);
                return Err(io(e));
            }
        }
        if Instant::now() >= deadline {
            give_up(rec);
            return Err(LeaseError::Busy {
                lock: path.to_path_buf(),
                waited: timeout,
                holder: None,
            });
        }
        sleep_until_at_most(deadline, jitter(pause));
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

fn rename_noreplace(from: &Path, to: &Path) -> Result<(), Errno> {
    use std::os::unix::ffi::OsStrExt;
    let from = std::ffi::CString::new(from.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let to = std::ffi::CString::new(to.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_renameat2,
            nix::libc::AT_FDCWD,
            from.as_ptr(),
            nix::libc::AT_FDCWD,
            to.as_ptr(),
            nix::libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Removes lock directories a killed holder made but never renamed into place. Only
/// called while holding the flock, so none of them is in use.
fn remove_stale_temp_dirs(dir: &Path) {
    let mut places = vec![
        (dir.to_path_buf(), CLAUDE_REFRESH_LOCK.to_string()),
        (dir.to_path_buf(), CLAUDE_STORAGE_LOCK.to_string()),
    ];
    if let Some(sibling) = sibling_lock(dir) {
        if let (Some(parent), Some(name)) = (sibling.parent(), sibling.file_name()) {
            places.push((parent.to_path_buf(), name.to_string_lossy().into_owned()));
        }
    }
    for (parent, lock) in places {
        let prefix = format!("{TEMP_DIR_PREFIX}{lock}-");
        let Ok(entries) = fs::read_dir(&parent) else { continue };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_dir(entry.path());
            }
        }
    }
}

fn sibling_lock(dir: &Path) -> Option<PathBuf> {
    let real = fs::canonicalize(dir).ok()?;
    let mut name = real.file_name()?.to_os_string();
    name.push(".lock");
    Some(real.with_file_name(name))
}
/// A lock in the npm `proper-lockfile` protocol, as Claude Code uses it: the lock is the
/// directory `path`, made with `mkdir`; a holder touches its mtime every few seconds; a
/// lock untouched for longer than its stale time may be removed and taken. Released
/// (removed) when dropped.
pub struct DirLock {
    path: PathBuf,
    identity: Option<LockIdentity>,
    /// Set (under its mutex) on release; the toucher checks it under the same mutex, so
    /// it never touches the path once the lock is given up.
    released: Arc<(Mutex<bool>, Condvar)>,
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
        let identity = fs::symlink_metadata(path).ok().map(|m| identity(&m));
        let released = Arc::new((Mutex::new(false), Condvar::new()));
        let toucher = {
            let (path, released) = (path.to_path_buf(), Arc::clone(&released));
            std::thread::Builder::new()
                .name("moonauth-lock-touch".into())
                .spawn(move || {
                    let (flag, wake) = &*released;
                    let mut done = flag.lock().unwrap_or_else(|p| p.into_inner());
                    loop {
                        // Woken at once on release; otherwise every TOUCH_EVERY.
                        let (guard, timeout) = wake
                            .wait_timeout_while(done, TOUCH_EVERY, |d| !*d)
                            .unwrap_or_else(|p| p.into_inner());
                        done = guard;
                        if *done {
                            return;
                        }
                        if timeout.timed_out() {
                            touch(&path);
                        }
                    }
                })
                .ok()
        };
        DirLock {
            path: path.to_path_buf(),
            identity,
            released,
            toucher,
        }
    }

    /// Device, inode and birth time of the lock directory.
    pub fn identity(&self) -> Option<(u64, u64, u128)> {
        self.identity
    }

    /// The lock directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Release at once (a killed process should hold the lock as briefly as possible);
        // the toucher is stopped first, so it cannot touch a lock someone takes next.
        let (flag, wake) = &*self.released;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        if let Err(e) = fs::remove_dir(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(lock = %self.path.display(), error = %e, "could not release a lock");
            }
        }
        if let Some(t) = self.toucher.take() {
            let _ = t.join();
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
    fn codex_commit_locks_exclude_a_codex_writing_auth_json() {
        let dir = tempfile::tempdir().unwrap();
        let held = codex_commit_locks(dir.path(), Duration::from_secs(1)).unwrap();
        // As codex does: auth.lock with a blocking flock (here: non-blocking, to observe it).
        let f = File::open(dir.path().join("auth.lock")).unwrap();
        let f = match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Err((f, Errno::EWOULDBLOCK)) => f,
            other => panic!("auth.lock was not held: {:?}", other.is_ok()),
        };
        drop(held);
        assert!(Flock::lock(f, FlockArg::LockExclusiveNonblock).is_ok());
        assert!(codex_commit_locks(dir.path(), Duration::from_millis(100)).is_ok());
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
    fn a_dead_holders_claude_locks_are_released_without_a_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join(CLAUDE_REFRESH_LOCK);
        fs::create_dir(&lock).unwrap();
        let record = HolderRecord {
            pid: 1,
            host: "gone".into(),
            claude_locks: vec![identity(&fs::metadata(&lock).unwrap())],
        };
        fs::write(dir.path().join(LEASE_FILE), serde_json::to_string(&record).unwrap()).unwrap();
        // While the lease is held, its holder is alive: nothing is touched.
        let held = Flock::lock(
            File::open(dir.path().join(LEASE_FILE)).unwrap(),
            FlockArg::LockExclusiveNonblock,
        )
        .unwrap();
        assert!(release_dead_holders_claude_locks(dir.path()).is_empty());
        assert!(lock.exists());
        drop(held);
        assert_eq!(release_dead_holders_claude_locks(dir.path()), vec![lock.clone()]);
        assert!(!lock.exists());
        // A lock moonauth did not record (a live claude's) is never removed.
        fs::create_dir(&lock).unwrap();
        assert!(release_dead_holders_claude_locks(dir.path()).is_empty());
        assert!(lock.exists());
        // No lease file: nothing is created.
        let empty = tempfile::tempdir().unwrap();
        assert!(release_dead_holders_claude_locks(empty.path()).is_empty());
        assert!(!empty.path().join(LEASE_FILE).exists());
    }
}

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

use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::agents::Runtime;

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
/// The flock files Codex 0.169.0 takes, in this order, around its write of `auth.json`
/// after a refresh (seen with strace: `auth.lock` blocking, then `auth.json.lock`). It
/// takes none around the refresh request itself.
pub const CODEX_COMMIT_LOCKS: [&str; 2] = ["auth.lock", "auth.json.lock"];
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

/// The right to refresh one login. Released when dropped (Claude's locks first, the
/// flock last).
pub struct Lease {
    claude_locks: Vec<DirLock>,
    storage_lock: Option<DirLock>,
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
            // instead of waiting out the stale time (60 s, 15 s for the storage lock).
            let previous = read_record(&mut flock);
            remove_recorded_claude_locks(dir, &previous);
            // Forget what the dead holder recorded, and the half-made locks it left.
            write_record(&mut flock, &record);
            remove_stale_temp_dirs(dir);
            let mut rec = Recorder {
                file: &mut flock,
                record: &mut record,
            };
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
        } else {
            write_record(&mut flock, &record);
        }
        Ok(Lease {
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
struct Recorder<'a> {
    file: &'a mut File,
    record: &'a mut HolderRecord,
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
fn acquire_recorded(
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
        let lease = Lease::acquire(Runtime::Claude, dir.path(), Duration::from_secs(5)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(lease);
        // A lock moonauth did not record is never taken over early.
        fs::create_dir(&lock).unwrap();
        assert!(Lease::acquire(Runtime::Claude, dir.path(), Duration::from_millis(300)).is_err());
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

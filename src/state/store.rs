//! The state store: the [`State`] every moonauth process on a host shares, kept in
//! `MOONAUTH_STATE_DIR` (in compose, a volume all workers mount). This module knows the
//! files, the format and its versions, crash safety and the cross-process lock; what
//! the state means, and the policy over it, is [`crate::state::accounts`]'s.
//!
//! Files in the directory:
//! - `state.json`: the current state (format version [`VERSION`]);
//! - `state.json.good`: the state before the last write, restored automatically when
//!   `state.json` does not parse (the broken file is kept as `state.json.broken-<time>`);
//! - `state.lock`: the flock every read-modify-write holds.
//!
//! A write never changes a file in place. Under the lock, [`StoreGuard::commit`] first
//! makes the current `state.json` the new `state.json.good` (a hard link renamed into
//! place, so no bytes are copied), then writes `.state.json.tmp`, fsyncs it, renames it
//! over `state.json` and fsyncs the directory. At every point of a crash `state.json`
//! is a complete, fsynced file holding the newest or the previous state, and
//! `state.json.good` holds the previous (or the one before).

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::credentials::apply::sync_dir;
use crate::error::{Error, Result};
use crate::fsx::{Dir, ReadRefused};
use crate::redact;
use crate::state::accounts::{self, Account, Credential, SetAside, State};

/// The format version this moonauth reads and writes.
pub const VERSION: u64 = 2;
/// The current state.
pub const STATE_FILE: &str = "state.json";
/// The last-known-good state (the one before the last write).
pub const GOOD_FILE: &str = "state.json.good";
/// The lock file (its content is never used).
pub const LOCK_FILE: &str = "state.lock";
/// The most of a store file moonauth reads.
pub const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;
/// Prefix of a broken `state.json` kept for inspection.
pub const BROKEN_PREFIX: &str = "state.json.broken-";
/// A reasonable wait for the lock: holders keep it for milliseconds.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

// Fixed temp names are safe because only the lock holder writes them; a writer that
// died leaves one behind, and the next holder truncates or replaces it.
const STATE_TMP: &str = ".state.json.tmp";
const GOOD_TMP: &str = ".state.json.good.tmp";

/// How long [`Store::read_unlocked`] waits for the lock to repair a broken file before
/// it settles for reading the last-known-good copy without repairing.
const REPAIR_LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// A state directory. Cheap to open; every access goes through the files.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// The store, locked: read once when the lock was taken, written by [`commit`](Self::commit).
/// Dropping it without commit writes nothing and releases the lock.
///
/// Never hold one across running a child process: every other worker waits for it.
#[derive(Debug)]
pub struct StoreGuard {
    dir: PathBuf,
    state: State,
    /// `state.json` exists and parsed, so commit may make it the last-known-good copy.
    current_parsed: bool,
    /// The format version of a file written by a newer moonauth, which this one does not overwrite.
    newer_version: Option<u64>,
    // Declared last so it is released last. flock locks belong to the open file: the
    // kernel releases the lock when the holder exits or is killed. Rust opens files with
    // O_CLOEXEC, so no child process inherits (and keeps) it.
    _lock: Flock<File>,
}

impl Store {
    /// Opens the store in `dir`, creating the directory (mode 0700) when it is missing.
    /// Whether a store was ever written in `dir`.
    pub fn exists_in(dir: &Path) -> bool {
        dir.join(STATE_FILE).exists()
    }

    pub fn open(dir: &Path) -> Result<Store> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(format!("create the state directory {}", dir.display()), e))?;
        Ok(Store { dir: dir.to_path_buf() })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the lock, waiting at most `timeout`, and reads the state. A `state.json`
    /// that does not parse is restored from `state.json.good` here.
    pub fn lock(&self, timeout: Duration) -> Result<StoreGuard> {
        let lock = acquire(&self.dir.join(LOCK_FILE), timeout)?;
        let loaded = load(&self.dir, true)?;
        Ok(StoreGuard {
            dir: self.dir.clone(),
            state: loaded.state,
            current_parsed: loaded.current_parsed,
            newer_version: loaded.newer_version,
            _lock: lock,
        })
    }

    /// Reads the state without the lock (for listing). Safe because files are only ever
    /// replaced by rename: a reader sees the old or the new file, never half of one.
    pub fn read_unlocked(&self) -> Result<State> {
        match read_file(&self.dir.join(STATE_FILE))? {
            FileRead::Parsed { decoded, .. } => Ok(decoded.state),
            FileRead::Missing => Ok(load(&self.dir, false)?.state),
            // Rare: take the lock to repair it for everyone; if a holder is slow, just read.
            FileRead::Broken(_) => match self.lock(REPAIR_LOCK_TIMEOUT) {
                Ok(guard) => Ok(guard.state),
                Err(Error::StoreLocked { .. }) => Ok(load(&self.dir, false)?.state),
                Err(e) => Err(e),
            },
        }
    }

    /// Locks, reads, applies `f`, writes and unlocks: one read-modify-write.
    pub fn update<T>(&self, timeout: Duration, f: impl FnOnce(&mut State) -> T) -> Result<T> {
        let mut guard = self.lock(timeout)?;
        let out = f(guard.state_mut());
        guard.commit()?;
        Ok(out)
    }
}

impl StoreGuard {
    /// The state as read under the lock.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The state, to change before [`commit`](Self::commit).
    pub fn state_mut(&mut self) -> &mut State {
        &mut self.state
    }

    /// Writes the state (revision + 1) atomically and durably, then releases the lock.
    pub fn commit(self) -> Result<()> {
        let state_path = self.dir.join(STATE_FILE);
        if let Some(version) = self.newer_version {
            return Err(Error::StoreTooNew {
                path: state_path,
                version,
                supported: VERSION,
            });
        }
        let mut state = self.state;
        state.revision += 1;
        let bytes = encode(&state);
        // Order matters: the current file becomes last-known-good before it is
        // replaced, so a crash between the steps still leaves a good state.json.
        if self.current_parsed {
            keep_as_good(&self.dir)?;
        }
        replace(&self.dir, STATE_TMP, &state_path, &bytes)?;
        sync_dir(&self.dir)
    }
}

/// Waits up to `timeout` for an exclusive flock on `path`, polling without blocking so
/// the wait is bounded.
fn acquire(path: &Path, timeout: Duration) -> Result<Flock<File>> {
    let mut file = open_lock_file(path)?;
    let start = Instant::now();
    let mut pause = Duration::from_micros(50);
    loop {
        file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((file, Errno::EWOULDBLOCK | Errno::EINTR)) => file,
            Err((_, errno)) => return Err(Error::io(format!("lock {}", path.display()), errno.into())),
        };
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(Error::StoreLocked {
                path: path.to_path_buf(),
                waited: timeout,
            });
        }
        // Short, growing, jittered sleeps: holders keep the lock for about a millisecond,
        // and waiters that wake in lockstep would only collide again.
        let jitter = Duration::from_nanos(u64::from(start.elapsed().subsec_nanos()) % (pause.as_nanos() as u64 + 1));
        std::thread::sleep((pause + jitter).min(timeout - waited));
        pause = (pause * 2).min(Duration::from_millis(2));
    }
}

/// Opens the store's lock file, never through a link (the state directory may be the
/// worker's, and moonauth may be root); flock needs only a readable descriptor, so a lock
/// file someone else created will do.
fn open_lock_file(path: &Path) -> Result<File> {
    let (dir, name) = split(path);
    Dir::open(dir)
        .and_then(|d| d.open_or_create(&name, 0o600))
        .map(|(file, _)| file)
        .map_err(|e| Error::io(format!("open {}", path.display()), e))
}

use crate::fsx::split;

/// Reads a store file whole: bounded, never through a link, never a FIFO.
fn read_bounded(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    crate::fsx::read_file(path, MAX_STATE_BYTES).map_err(|refused| match refused {
        ReadRefused::Io { source, .. } => source,
        other => std::io::Error::new(ErrorKind::InvalidData, other.to_string()),
    })
}

/// The state as loaded, with what commit needs to know about the files.
struct Loaded {
    state: State,
    current_parsed: bool,
    newer_version: Option<u64>,
}

/// Reads the state: `state.json`, else `state.json.good`, else empty. With `locked`, a
/// broken `state.json` is moved aside and replaced by the good copy.
fn load(dir: &Path, locked: bool) -> Result<Loaded> {
    let state_path = dir.join(STATE_FILE);
    let good_path = dir.join(GOOD_FILE);
    let reason = match read_file(&state_path)? {
        FileRead::Parsed { decoded, .. } => {
            return Ok(Loaded {
                newer_version: decoded.newer_version(),
                state: decoded.state,
                current_parsed: true,
            })
        }
        FileRead::Missing => None,
        FileRead::Broken(reason) => Some(reason),
    };
    let (decoded, good_bytes) = match (read_file(&good_path)?, &reason) {
        (FileRead::Parsed { decoded, bytes }, _) => (decoded, bytes),
        (FileRead::Missing, None) => {
            return Ok(Loaded {
                state: State::default(),
                current_parsed: false,
                newer_version: None,
            })
        }
        (FileRead::Missing, Some(reason)) => {
            return Err(Error::StoreCorrupt {
                path: state_path,
                reason: format!("{reason}; there is no {GOOD_FILE} to restore"),
            })
        }
        (FileRead::Broken(good_reason), None) => {
            return Err(Error::StoreCorrupt {
                path: good_path,
                reason: format!("{STATE_FILE} is missing and {GOOD_FILE} does not parse: {good_reason}"),
            })
        }
        (FileRead::Broken(good_reason), Some(reason)) => {
            return Err(Error::StoreCorrupt {
                path: state_path,
                reason: format!("{reason}; {GOOD_FILE} does not parse either: {good_reason}"),
            })
        }
    };
    let newer_version = decoded.newer_version();
    match reason {
        None => {
            tracing::warn!(
                "{} is missing; using the last-known-good {GOOD_FILE}",
                state_path.display()
            );
            Ok(Loaded {
                state: decoded.state,
                current_parsed: false,
                newer_version,
            })
        }
        Some(reason) if locked => {
            let broken = dir.join(format!("{BROKEN_PREFIX}{}", broken_stamp(SystemTime::now())));
            fs::rename(&state_path, &broken)
                .map_err(|e| Error::io(format!("move the broken {} aside", state_path.display()), e))?;
            replace(dir, STATE_TMP, &state_path, &good_bytes)?;
            sync_dir(dir)?;
            tracing::warn!(
                "{} did not parse ({reason}); restored it from {GOOD_FILE}; the broken file is kept as {}",
                state_path.display(),
                broken.display()
            );
            Ok(Loaded {
                state: decoded.state,
                current_parsed: true,
                newer_version,
            })
        }
        Some(reason) => {
            tracing::warn!(
                "{} does not parse ({reason}); reading {GOOD_FILE} (the next write repairs it)",
                state_path.display()
            );
            Ok(Loaded {
                state: decoded.state,
                current_parsed: false,
                newer_version,
            })
        }
    }
}

/// A time for file names: RFC 3339 without colons.
fn broken_stamp(now: SystemTime) -> String {
    crate::time::format_time(now).replace(':', "")
}

enum FileRead {
    Missing,
    Parsed { decoded: Decoded, bytes: Vec<u8> },
    Broken(String),
}

fn read_file(path: &Path) -> Result<FileRead> {
    let bytes = match read_bounded(path) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(FileRead::Missing),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(FileRead::Missing),
        Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
    };
    match decode(&bytes) {
        Ok(decoded) => Ok(FileRead::Parsed { decoded, bytes }),
        Err(Undecodable::Broken(reason)) => Ok(FileRead::Broken(reason)),
        // A newer format that this version cannot read is not damage: never replace it.
        Err(Undecodable::TooNew(version)) => Err(Error::StoreTooNew {
            path: path.to_path_buf(),
            version,
            supported: VERSION,
        }),
    }
}

/// A parsed state file.
#[derive(Debug)]
pub struct Decoded {
    pub state: State,
    /// The file's format version (1 for a file without one).
    pub version: u64,
}

impl Decoded {
    fn newer_version(&self) -> Option<u64> {
        (self.version > VERSION).then_some(self.version)
    }
}

/// Why a state file could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum Undecodable {
    /// Not JSON, or not the shape of its version.
    Broken(String),
    /// Written by a newer moonauth in a shape this one does not understand.
    TooNew(u64),
}

/// Parses a state file of any known version; version 1 is migrated. A newer version is
/// read as far as it fits this version's shape (unknown fields are kept).
pub fn decode(bytes: &[u8]) -> std::result::Result<Decoded, Undecodable> {
    let broken = |e: String| Undecodable::Broken(e);
    let mut value: Value = serde_json::from_slice(bytes).map_err(|e| broken(describe(&e)))?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| broken("not a JSON object".into()))?;
    let version = match obj.remove("version") {
        None => 1,
        // Never the value itself: a key pasted into the wrong place would be echoed.
        Some(v) => v
            .as_u64()
            .filter(|v| *v >= 1)
            .ok_or_else(|| broken("\"version\" is not a format version (a whole number from 1)".into()))?,
    };
    let state = match version {
        1 => migrate_v1(value).map_err(broken)?,
        VERSION => decode_v2(value).map_err(broken)?,
        newer => {
            let state = decode_v2(value).map_err(|_| Undecodable::TooNew(newer))?;
            tracing::warn!(
                "the account store was written by a newer moonauth (format {newer}); reading what this version knows, writing nothing"
            );
            state
        }
    };
    Ok(Decoded { state, version })
}

/// Reads the version-2 shape. An account record that does not fit (a runtime or kind
/// a newer moonauth added) is set aside rather than making the whole file "broken":
/// restoring the last-known-good copy would undo that writer's updates.
fn decode_v2(mut value: Value) -> std::result::Result<State, String> {
    let records = match value.as_object_mut().and_then(|o| o.remove("accounts")) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(records)) => records,
        Some(_) => return Err("\"accounts\" is not a list".into()),
    };
    let mut state = State::deserialize(value).map_err(|e| format!("the top level {}", describe(&e)))?;
    for (i, record) in records.into_iter().enumerate() {
        match Account::deserialize(&record) {
            Ok(account) => admit(&mut state, i, account, record),
            Err(e) if record.get("alias").is_some_and(Value::is_string) => {
                let rule = format!("this moonauth cannot read it (it {})", describe(&e));
                set_aside(&mut state, i, record, rule);
            }
            Err(e) => return Err(format!("account record {} has no alias and {}", i + 1, describe(&e))),
        }
    }
    Ok(state)
}

/// Adds a decoded record to the state when it keeps the rules `accounts add` applies
/// ([`accounts::record_problem`]) and its alias is not taken; sets it aside otherwise.
fn admit(state: &mut State, position: usize, account: Account, record: Value) {
    let rule = accounts::record_problem(&account).or_else(|| {
        state
            .account(&account.alias)
            .map(|_| "an earlier record has the same alias".to_string())
    });
    match rule {
        None => state.accounts.push(account),
        Some(rule) => set_aside(state, position, record, rule),
    }
}

/// Keeps a record in the file as it is but out of use, and says so once per load.
fn set_aside(state: &mut State, position: usize, record: Value, rule: String) {
    let aside = SetAside {
        record: position + 1,
        alias: record
            .get("alias")
            .and_then(Value::as_str)
            // Quoted by hand: Debug would escape printable's escapes a second time.
            .map(|a| format!("\"{}\"", redact::printable(a, 48))),
        rule,
    };
    tracing::warn!("{aside}");
    state.set_aside.push(aside);
    state.unreadable_accounts.push(record);
}

/// What is wrong with JSON that did not parse or fit, without the text that was parsed:
/// serde's own messages quote the offending value (`invalid type: string "sk-…"`),
/// which may be a credential pasted into the wrong place. The kind and the position are
/// what a person needs to find it in the file.
fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "could not be read".to_string(),
        Category::Syntax => "is not valid JSON".to_string(),
        Category::Eof => "ends before the JSON does (a truncated file?)".to_string(),
        Category::Data => data_error_kind(&e.to_string()),
    };
    // Values deserialized from an already parsed tree have no position (line 0).
    if e.line() > 0 {
        format!("{what} at line {} column {}", e.line(), e.column())
    } else {
        what
    }
}

/// The kind of a serde data error, from the fixed start of its message. A missing
/// field's name is kept: it comes from moonauth's schema, not from the file.
fn data_error_kind(message: &str) -> String {
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .filter(|n| !n.is_empty() && n.len() <= 32 && n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    {
        return format!("has no field {name}");
    }
    let kinds = [
        ("invalid type", "has a value of the wrong type"),
        ("invalid value", "has a value that is not allowed"),
        ("invalid length", "has a list of the wrong length"),
        ("unknown variant", "has a value that is not one of the allowed words"),
        ("duplicate field", "has a field twice"),
    ];
    kinds
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
        .map_or(
            "has a value this moonauth does not accept (a time, a runtime, …)",
            |(_, kind)| kind,
        )
        .to_string()
}

/// Serializes the state as a version-[`VERSION`] file: `version`, `revision`,
/// `accounts`, then fields this version does not know.
pub fn encode(state: &State) -> Vec<u8> {
    let mut obj = Map::new();
    obj.insert("version".into(), VERSION.into());
    obj.insert("revision".into(), state.revision.into());
    // Accounts serialize infallibly: plain fields, string keys, times as strings.
    let accounts: Vec<Value> = state
        .accounts
        .iter()
        .map(|a| serde_json::to_value(a).expect("an account serializes to JSON"))
        .chain(state.unreadable_accounts.iter().cloned())
        .collect();
    obj.insert("accounts".into(), Value::Array(accounts));
    for (k, v) in &state.extra {
        obj.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let mut bytes = serde_json::to_vec_pretty(&Value::Object(obj)).expect("a JSON value serializes");
    bytes.push(b'\n');
    bytes
}

/// Format version 1: accounts in a map keyed by alias, every account an OAuth login (no `kind`),
/// no priority (the file's order decided), `disabled` instead of `enabled`.
///
/// ```json
/// {"version": 1, "accounts": {"work": {"runtime": "claude", "login_dir": "/home/app/.claude-work",
///   "volume": "claude_auth_work", "disabled": false, "cooldown_until": null, "last_used": null}}}
/// ```
#[derive(Deserialize)]
struct AccountV1 {
    runtime: String,
    #[serde(default)]
    login_dir: Option<PathBuf>,
    #[serde(default)]
    volume: Option<String>,
    #[serde(default)]
    disabled: bool,
    #[serde(default, with = "crate::time::serde_rfc3339_opt")]
    cooldown_until: Option<SystemTime>,
    #[serde(default, with = "crate::time::serde_rfc3339_opt")]
    last_used: Option<SystemTime>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// The fields of a version-2 account record (what [`Account`] reads itself).
const V2_ACCOUNT_FIELDS: [&str; 18] = [
    "alias",
    "runtime",
    "kind",
    "login_dir",
    "volume",
    "api_key_env",
    "api_key_file",
    "oauth_token_env",
    "oauth_token_file",
    "enabled",
    "priority",
    "cooldown_until",
    "consecutive_quota_hits",
    "last_failure",
    "needs_relogin",
    "last_used",
    "usage",
    "refresh_failures",
];

fn migrate_v1(mut value: Value) -> std::result::Result<State, String> {
    // The caller checked that `value` is an object.
    let obj = value.as_object_mut().ok_or("not a JSON object")?;
    let accounts = match obj.remove("accounts") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err("version 1: \"accounts\" is not an object keyed by alias".into()),
    };
    let mut state = State::default();
    for (position, (alias, raw)) in accounts.into_iter().enumerate() {
        // The alias is a key of the file: printed only made safe, and values never.
        let shown = format!("\"{}\"", redact::printable(&alias, 48));
        let v1 = AccountV1::deserialize(raw).map_err(|e| format!("version 1: account {shown} {}", describe(&e)))?;
        let runtime = crate::agents::parse_login_runtime(&v1.runtime).map_err(|_| {
            format!("version 1: account {shown} has a runtime this moonauth does not know (claude or codex)")
        })?;
        let mut account = Account::new(
            &alias,
            runtime,
            Credential::Login {
                dir: PathBuf::new(),
                volume: v1.volume,
            },
            // Version 1 tried accounts in file order; priorities keep that order.
            i32::try_from(position).unwrap_or(i32::MAX),
        );
        account.login_dir = v1.login_dir;
        account.enabled = !v1.disabled;
        account.cooldown_until = v1.cooldown_until;
        account.last_used = v1.last_used;
        account.extra = v1.extra;
        // A version-1 file has no field of these names, but a hand-made one may: kept in
        // `extra`, it would be written next to the real field, twice under one key, and
        // read back as the wrong value (found by tests/store_props.rs).
        account.extra.retain(|key, _| {
            let clashes = V2_ACCOUNT_FIELDS.contains(&key.as_str());
            if clashes {
                tracing::warn!("version 1: account {shown}: dropping its field {key:?}, which version 1 does not have");
            }
            !clashes
        });
        // Set aside as a version-2 record, so it is written back in a shape that reads
        // (and is set aside) again rather than lost. An account always serializes (plain
        // fields, string keys; `encode` relies on the same); the fallback keeps the alias.
        let record = serde_json::to_value(&account).unwrap_or_else(|_| serde_json::json!({ "alias": alias }));
        admit(&mut state, position, account, record);
    }
    state.extra = std::mem::take(obj);
    Ok(state)
}

/// Makes the current `state.json` the last-known-good copy without copying bytes: a
/// hard link to it, renamed over `state.json.good` (copied where hard links fail).
fn keep_as_good(dir: &Path) -> Result<()> {
    let current = dir.join(STATE_FILE);
    let tmp = dir.join(GOOD_TMP);
    let good = dir.join(GOOD_FILE);
    remove_if_present(&tmp)?;
    if let Err(e) = fs::hard_link(&current, &tmp) {
        tracing::debug!("hard link {} failed ({e}); copying", current.display());
        let bytes = read_bounded(&current)
            .and_then(|b| b.ok_or_else(|| ErrorKind::NotFound.into()))
            .map_err(|e| Error::io(format!("read {}", current.display()), e))?;
        return replace(dir, GOOD_TMP, &good, &bytes);
    }
    fs::rename(&tmp, &good).map_err(|e| Error::io(format!("rename into {}", good.display()), e))?;
    // When good already was this very file (a crash came between the two renames last
    // time), rename does nothing and leaves the link behind.
    remove_if_present(&tmp)
}

/// Writes `bytes` to `dir/tmp_name` (mode 0600), fsyncs it and renames it over
/// `target`. The caller fsyncs the directory.
fn replace(dir: &Path, tmp_name: &str, target: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(tmp_name);
    // A fresh file, never one (or a link) left in its place: the directory may be the
    // worker's and moonauth root.
    remove_if_present(&tmp)?;
    let mut file = Dir::open(dir)
        .and_then(|d| d.create_exclusive(tmp_name, 0o600))
        .map_err(|e| Error::io(format!("create {}", tmp.display()), e))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
    fs::rename(&tmp, target).map_err(|e| Error::io(format!("rename into {}", target.display()), e))
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("remove {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::agents::Runtime;
    use crate::state::accounts::AccountKind;

    const T: Duration = Duration::from_secs(1);

    fn account(alias: &str) -> Account {
        Account::new(
            alias,
            Runtime::Claude,
            Credential::Login {
                dir: PathBuf::from("/home/app/.claude"),
                volume: None,
            },
            0,
        )
    }

    fn add(store: &Store, alias: &str) {
        store.update(T, |s| s.add(account(alias))).unwrap().unwrap();
    }

    fn aliases(state: &State) -> Vec<&str> {
        state.accounts.iter().map(|a| a.alias.as_str()).collect()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_missing_store_is_empty_and_its_directory_is_created_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/moonauth");
        let store = Store::open(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(store.read_unlocked().unwrap(), State::default());
        assert_eq!(*store.lock(T).unwrap().state(), State::default());
    }

    #[test]
    fn commit_writes_the_new_state_and_keeps_the_previous_as_good() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        add(&store, "a");
        assert_eq!(
            files(tmp.path()),
            [STATE_FILE, LOCK_FILE],
            "no good copy before a second write"
        );
        add(&store, "b");
        let current = decode(&fs::read(tmp.path().join(STATE_FILE)).unwrap()).unwrap();
        let good = decode(&fs::read(tmp.path().join(GOOD_FILE)).unwrap()).unwrap();
        assert_eq!((current.state.revision, aliases(&current.state)), (2, vec!["a", "b"]));
        assert_eq!((good.state.revision, aliases(&good.state)), (1, vec!["a"]));
        assert_eq!(current.version, VERSION);
        for f in [STATE_FILE, GOOD_FILE, LOCK_FILE] {
            let mode = fs::metadata(tmp.path().join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
        assert_eq!(
            files(tmp.path()),
            [STATE_FILE, GOOD_FILE, LOCK_FILE],
            "no temp files left"
        );
    }

    #[test]
    fn dropping_a_guard_writes_nothing_and_unlocks() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        add(&store, "a");
        {
            let mut guard = store.lock(T).unwrap();
            guard.state_mut().accounts.clear();
            // A second guard in the same process is refused too: flock belongs to the open file.
            let err = store.lock(Duration::from_millis(20)).unwrap_err();
            assert!(matches!(err, Error::StoreLocked { .. }), "{err}");
        }
        assert_eq!(aliases(&store.lock(T).unwrap().state), ["a"]);
        assert_eq!(store.read_unlocked().unwrap().revision, 1);
    }

    #[test]
    fn a_garbage_state_file_is_restored_from_the_last_known_good_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        add(&store, "a");
        add(&store, "b");
        fs::write(tmp.path().join(STATE_FILE), b"{\"version\": 2, \"accounts\": [tru").unwrap();
        // An unlocked read repairs it too (it takes the lock for that).
        let state = store.read_unlocked().unwrap();
        assert_eq!(aliases(&state), ["a"]);
        let broken: Vec<String> = files(tmp.path())
            .into_iter()
            .filter(|f| f.starts_with(BROKEN_PREFIX))
            .collect();
        assert_eq!(broken.len(), 1, "the broken file is kept for inspection");
        assert!(fs::read_to_string(tmp.path().join(&broken[0]))
            .unwrap()
            .ends_with("[tru"));
        let repaired = decode(&fs::read(tmp.path().join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(aliases(&repaired.state), ["a"]);
        // And the store goes on from there.
        add(&store, "c");
        assert_eq!(aliases(&store.read_unlocked().unwrap()), ["a", "c"]);
    }

    #[test]
    fn a_truncated_state_file_is_restored_under_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        add(&store, "a");
        add(&store, "b");
        fs::write(tmp.path().join(STATE_FILE), b"").unwrap();
        let guard = store.lock(T).unwrap();
        assert_eq!(aliases(guard.state()), ["a"]);
        guard.commit().unwrap();
        assert_eq!(store.read_unlocked().unwrap().revision, 2);
    }

    #[test]
    fn a_missing_state_file_falls_back_to_the_good_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        add(&store, "a");
        add(&store, "b");
        fs::remove_file(tmp.path().join(STATE_FILE)).unwrap();
        assert_eq!(aliases(&store.read_unlocked().unwrap()), ["a"]);
        add(&store, "c");
        assert_eq!(aliases(&store.read_unlocked().unwrap()), ["a", "c"]);
    }

    #[test]
    fn when_both_files_are_broken_the_error_names_the_file_and_nothing_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        fs::write(tmp.path().join(STATE_FILE), b"garbage").unwrap();
        fs::write(tmp.path().join(GOOD_FILE), b"more garbage").unwrap();
        for err in [store.read_unlocked().unwrap_err(), store.lock(T).unwrap_err()] {
            assert!(matches!(err, Error::StoreCorrupt { .. }), "{err}");
            assert!(err.to_string().contains(STATE_FILE), "{err}");
            assert!(err.hint().unwrap().contains("state.json.good"));
        }
        assert_eq!(fs::read(tmp.path().join(STATE_FILE)).unwrap(), b"garbage");
        fs::remove_file(tmp.path().join(GOOD_FILE)).unwrap();
        assert!(matches!(store.lock(T).unwrap_err(), Error::StoreCorrupt { .. }));
    }

    #[test]
    fn a_version_1_file_migrates() {
        let v1 = r#"{
          "version": 1,
          "accounts": {
            "work": {"runtime": "claude", "login_dir": "/home/app/.claude-work", "volume": "claude_auth_work",
                     "disabled": false, "cooldown_until": "2026-11-24T13:00:00Z", "last_used": "2026-11-24T11:00:00Z"},
            "old": {"runtime": "codex", "login_dir": "/home/app/.codex-old", "disabled": true, "note": "kept"}
          },
          "fleet": "eu-1"
        }"#;
        let decoded = decode(v1.as_bytes()).unwrap();
        assert_eq!(decoded.version, 1);
        let s = decoded.state;
        assert_eq!(aliases(&s), ["work", "old"]);
        let work = &s.accounts[0];
        assert_eq!(work.kind, AccountKind::Oauth);
        assert_eq!((work.priority, work.enabled), (0, true));
        assert_eq!(work.volume.as_deref(), Some("claude_auth_work"));
        assert_eq!(
            work.cooldown_until,
            Some(crate::time::parse_time("2026-11-24T13:00:00Z").unwrap())
        );
        assert_eq!(
            work.last_used,
            Some(crate::time::parse_time("2026-11-24T11:00:00Z").unwrap())
        );
        let old = &s.accounts[1];
        assert_eq!((old.runtime, old.priority, old.enabled), (Runtime::Codex, 1, false));
        assert_eq!(old.extra["note"], "kept");
        assert_eq!(s.extra["fleet"], "eu-1");

        // Through the store: read as v1, written back as v2 on the next commit.
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(STATE_FILE), v1).unwrap();
        let store = Store::open(tmp.path()).unwrap();
        store.update(T, |s| s.set_enabled("old", true)).unwrap().unwrap();
        let text = fs::read_to_string(tmp.path().join(STATE_FILE)).unwrap();
        let written: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(written["version"], 2);
        assert_eq!(written["accounts"][1]["alias"], "old");
        assert_eq!(written["accounts"][1]["enabled"], true);
        assert_eq!(written["accounts"][1]["note"], "kept");
        assert_eq!(written["fleet"], "eu-1");
        // The v1 file is the last-known-good copy, and still reads.
        let good = decode(&fs::read(tmp.path().join(GOOD_FILE)).unwrap()).unwrap();
        assert_eq!(good.version, 1);
    }

    #[test]
    fn a_file_without_a_version_is_version_1() {
        let d = decode(br#"{"accounts": {"a": {"runtime": "codex"}}}"#).unwrap();
        assert_eq!(d.version, 1);
        assert_eq!(d.state.accounts[0].login_dir, None);
    }

    #[test]
    fn unknown_fields_from_a_newer_writer_are_kept() {
        let mut text = String::from_utf8(encode(&State {
            accounts: vec![account("a")],
            ..State::default()
        }))
        .unwrap();
        text = text.replacen("\"alias\"", "\"weight\": 3, \"alias\"", 1);
        text = text.replacen("\"revision\"", "\"leases\": {\"x\": 1}, \"revision\"", 1);
        let state = decode(text.as_bytes()).unwrap().state;
        let again: Value = serde_json::from_slice(&encode(&state)).unwrap();
        assert_eq!(again["leases"]["x"], 1);
        assert_eq!(again["accounts"][0]["weight"], 3);
    }

    #[test]
    fn an_account_this_version_cannot_read_is_kept_aside_not_restored_over() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        add(&store, "a");
        add(&store, "b");
        let mut file: Value = serde_json::from_slice(&fs::read(tmp.path().join(STATE_FILE)).unwrap()).unwrap();
        file["accounts"][1]["runtime"] = "gemini".into();
        fs::write(tmp.path().join(STATE_FILE), serde_json::to_vec(&file).unwrap()).unwrap();
        let state = store.read_unlocked().unwrap();
        assert_eq!(aliases(&state), ["a"]);
        assert_eq!(state.unreadable_accounts.len(), 1);
        // The alias stays taken, and the record survives a write unchanged.
        let err = store.update(T, |s| s.add(account("b"))).unwrap().unwrap_err();
        assert!(matches!(err, Error::DuplicateAccount { .. }));
        add(&store, "c");
        let written: Value = serde_json::from_slice(&fs::read(tmp.path().join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(written["accounts"][2], file["accounts"][1]);
        assert!(!files(tmp.path()).iter().any(|f| f.starts_with(BROKEN_PREFIX)));
    }

    #[test]
    fn a_newer_version_is_read_but_never_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let newer = r#"{"version": 3, "revision": 9, "accounts": [], "leases": {}}"#;
        fs::write(tmp.path().join(STATE_FILE), newer).unwrap();
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(store.read_unlocked().unwrap().revision, 9);
        let err = store.update(T, |_| ()).unwrap_err();
        assert!(matches!(err, Error::StoreTooNew { version: 3, .. }), "{err}");
        assert_eq!(fs::read_to_string(tmp.path().join(STATE_FILE)).unwrap(), newer);
        // A newer shape this version cannot read is an error, not damage to repair.
        let changed = r#"{"version": 3, "accounts": {"a": 1}}"#;
        fs::write(tmp.path().join(STATE_FILE), changed).unwrap();
        assert!(matches!(store.lock(T).unwrap_err(), Error::StoreTooNew { .. }));
        assert_eq!(fs::read_to_string(tmp.path().join(STATE_FILE)).unwrap(), changed);
    }

    #[test]
    fn leftovers_of_a_crashed_writer_are_harmless() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        add(&store, "a");
        // A writer killed mid-write: a half temp file, and a good copy that is a hard
        // link to state.json (killed between the two renames).
        fs::write(tmp.path().join(STATE_TMP), b"{\"vers").unwrap();
        fs::hard_link(tmp.path().join(STATE_FILE), tmp.path().join(GOOD_TMP)).unwrap();
        fs::hard_link(tmp.path().join(STATE_FILE), tmp.path().join(GOOD_FILE)).unwrap();
        add(&store, "b");
        assert_eq!(aliases(&store.read_unlocked().unwrap()), ["a", "b"]);
        let good = decode(&fs::read(tmp.path().join(GOOD_FILE)).unwrap()).unwrap();
        assert_eq!(aliases(&good.state), ["a"]);
        assert_eq!(files(tmp.path()), [STATE_FILE, GOOD_FILE, LOCK_FILE]);
    }

    #[test]
    fn update_returns_the_closures_value() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let n = store
            .update(T, |s| {
                s.add(account("a")).unwrap();
                s.accounts.len()
            })
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn planted_links_are_never_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("passwd");
        fs::write(&victim, "root:x:0:0").unwrap();
        let store = Store::open(tmp.path()).unwrap();
        add(&store, "a");
        // The temp names are fixed: a worker could point them anywhere.
        std::os::unix::fs::symlink(&victim, tmp.path().join(STATE_TMP)).unwrap();
        std::os::unix::fs::symlink(&victim, tmp.path().join(GOOD_TMP)).unwrap();
        add(&store, "b");
        add(&store, "c");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "root:x:0:0");
        let current = decode(&fs::read(tmp.path().join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(aliases(&current.state), vec!["a", "b", "c"]);

        // A lock file or state file that is a link is refused with a message, not followed.
        fs::remove_file(tmp.path().join(LOCK_FILE)).unwrap();
        std::os::unix::fs::symlink(&victim, tmp.path().join(LOCK_FILE)).unwrap();
        let err = store.update(T, |_| ()).unwrap_err();
        assert!(err.to_string().contains("state.lock"), "{err}");
        fs::remove_file(tmp.path().join(LOCK_FILE)).unwrap();
        fs::remove_file(tmp.path().join(STATE_FILE)).unwrap();
        nix::unistd::mkfifo(
            &tmp.path().join(STATE_FILE),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let err = store.read_unlocked().unwrap_err();
        assert!(
            err.to_string().contains("FIFO"),
            "a FIFO is refused, not waited on: {err}"
        );
        assert_eq!(fs::read_to_string(&victim).unwrap(), "root:x:0:0");
    }
}

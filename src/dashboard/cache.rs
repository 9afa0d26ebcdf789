//! The last state the dashboard read, kept while `state.json` is the same file. Every
//! page polls `GET /api/accounts`, and parsing a store with full usage histories is
//! most of an answer's cost; the store only ever replaces `state.json` by rename, so
//! a file with the same device, inode, size and modification time (to the nanosecond)
//! holds the same state. Anything that cannot be checked is read afresh.
//!
//! The answer itself (`GET /api/accounts`, half a megabyte of JSON with 50 accounts'
//! histories) is kept too, for at most [`ANSWER_TTL`] and only for the same state file
//! and the same clock reading: many pages polling at once then cost one answer a
//! second, not one each. What can change without a write to the store (a login
//! directory, freshness) is at most that old.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::error::Result;
use crate::state::accounts::State;
use crate::state::store::{Store, STATE_FILE};

/// What identifies one version of `state.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn file_id(path: &Path) -> Option<FileId> {
    // Never through a link: the state directory may be a worker's.
    let m = std::fs::symlink_metadata(path).ok().filter(|m| m.is_file())?;
    Some(FileId {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

/// How long an answer is served again.
pub const ANSWER_TTL: Duration = Duration::from_secs(1);

/// One built answer: for which state file and clock reading, when it was built.
struct Answer {
    file: FileId,
    now: SystemTime,
    built: Instant,
    bytes: Bytes,
}

/// The cache of one dashboard.
#[derive(Default)]
pub struct StateCache {
    last: Mutex<Option<(FileId, Arc<State>)>>,
    answer: Mutex<Option<Answer>>,
}

impl StateCache {
    /// The store's state as [`Store::read_unlocked`] reads it, parsed again only when
    /// `state.json` changed.
    pub fn read(&self, store: &Store) -> Result<Arc<State>> {
        let path = store.dir().join(STATE_FILE);
        let before = file_id(&path);
        if let Some(id) = before {
            let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((cached, state)) = last.as_ref().filter(|(cached, _)| *cached == id) {
                debug_assert_eq!(*cached, id);
                return Ok(Arc::clone(state));
            }
        }
        let state = Arc::new(store.read_unlocked()?);
        // Kept only when the file did not change while it was read.
        if let Some(id) = before.filter(|id| file_id(&path) == Some(*id)) {
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((id, Arc::clone(&state)));
        }
        Ok(state)
    }
}

impl StateCache {
    /// The answer `build` makes from the store's state at `now`, built again only when
    /// `state.json` changed, the clock reads another second, or [`ANSWER_TTL`] passed.
    /// Concurrent callers wait for one build instead of each making their own. A store
    /// that is not a file (PostgreSQL) is built afresh every time.
    pub fn answer(
        &self,
        store: &Store,
        now: SystemTime,
        build: impl FnOnce(&State) -> Result<Vec<u8>>,
    ) -> Result<Bytes> {
        let whole_seconds = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut answer = self.answer.lock().unwrap_or_else(|p| p.into_inner());
        let file = file_id(&store.dir().join(STATE_FILE));
        if let (Some(a), Some(file)) = (answer.as_ref(), file) {
            if a.file == file && whole_seconds(a.now) == whole_seconds(now) && a.built.elapsed() < ANSWER_TTL {
                return Ok(a.bytes.clone());
            }
        }
        let state = self.read(store)?;
        let bytes = Bytes::from(build(&state)?);
        // Kept only when the file it was built from is still the current one.
        *answer = file
            .filter(|id| file_id(&store.dir().join(STATE_FILE)) == Some(*id))
            .map(|file| Answer {
                file,
                now,
                built: Instant::now(),
                bytes: bytes.clone(),
            });
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::Runtime;
    use crate::state::accounts::{Account, Credential};

    /// Adds an API-key account `alias` to `store`: one write, a new `state.json`.
    fn add(store: &Store, alias: &str) {
        store
            .update(Duration::from_secs(5), |s| {
                s.add(Account::new(
                    alias,
                    Runtime::Claude,
                    Credential::ApiKeyEnv("K".into()),
                    0,
                ))
            })
            .unwrap()
            .unwrap();
    }

    #[test]
    fn a_write_is_seen_and_an_unchanged_file_is_not_parsed_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cache = StateCache::default();
        let add = |alias: &str| add(&store, alias);
        add("a");
        let first = cache.read(&store).unwrap();
        assert_eq!(first.accounts.len(), 1);
        let again = cache.read(&store).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the same file is not parsed again");
        add("b");
        let after = cache.read(&store).unwrap();
        assert_eq!(after.accounts.len(), 2, "a write is seen at once");
        assert_eq!(after.revision, first.revision + 1);
    }

    #[test]
    fn an_answer_is_built_once_per_state_and_second_and_again_after_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cache = StateCache::default();
        let add = |alias: &str| add(&store, alias);
        add("a");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let builds = std::cell::Cell::new(0);
        let build = |s: &State| {
            builds.set(builds.get() + 1);
            Ok(s.accounts.len().to_string().into_bytes())
        };
        assert_eq!(cache.answer(&store, t, build).unwrap(), "1");
        assert_eq!(cache.answer(&store, t, build).unwrap(), "1");
        assert_eq!(builds.get(), 1, "the same state and second: built once");
        add("b");
        assert_eq!(cache.answer(&store, t, build).unwrap(), "2", "a write is seen at once");
        assert_eq!(builds.get(), 2);
        cache.answer(&store, t + Duration::from_secs(1), build).unwrap();
        assert_eq!(builds.get(), 3, "another second: built again");
    }
}

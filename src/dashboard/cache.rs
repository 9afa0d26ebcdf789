//! The last state the dashboard read, kept while `state.json` is the same file. Every
//! page polls `GET /api/accounts`, and parsing a store with full usage histories is
//! most of an answer's cost; the store only ever replaces `state.json` by rename, so
//! a file with the same device, inode, size and modification time (to the nanosecond)
//! holds the same state. Anything that cannot be checked is read afresh.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

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

/// The cache of one dashboard.
#[derive(Default)]
pub struct StateCache {
    last: Mutex<Option<(FileId, Arc<State>)>>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::Runtime;
    use crate::state::accounts::{Account, Credential};

    #[test]
    fn a_write_is_seen_and_an_unchanged_file_is_not_parsed_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cache = StateCache::default();
        let add = |alias: &str| {
            store
                .update(std::time::Duration::from_secs(5), |s| {
                    s.add(Account::new(
                        alias,
                        Runtime::Claude,
                        Credential::ApiKeyEnv("K".into()),
                        0,
                    ))
                })
                .unwrap()
                .unwrap();
        };
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
}

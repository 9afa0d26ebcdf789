//! The account store under real concurrency and real crashes: many `moonauth`
//! processes updating one store at once, and writers killed with SIGKILL at random
//! moments. Each process is the built binary running `internal store-bench`, whose
//! every operation is one locked read-modify-write (pick an account, mark it used);
//! the store's `revision` counts the writes that landed.
//!
//! Every test runs against both backends ([`Backend`]): the files in a directory, and a
//! PostgreSQL database in a cluster the tests start (tests/support/postgres.rs). The
//! PostgreSQL-only behaviour (schema migrations, a restarted server, leases, the
//! password in messages) is in `store_postgres`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moonauth::agents::Runtime;
use moonauth::state::accounts::{Account, Credential};
use moonauth::state::store::{self, Store};

use crate::support::moonauth_bin;
use crate::support::postgres::{self, Database};

fn moonauth() -> Command {
    let mut cmd = Command::new(moonauth_bin());
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

/// Where a test's store lives: one of the two backends `state::open` chooses between.
pub enum Backend {
    /// The file store in a temp directory.
    File(tempfile::TempDir),
    /// A PostgreSQL database of its own (and a state directory that holds nothing).
    Postgres(Database, tempfile::TempDir),
}

impl Backend {
    /// The file store on tmpfs when there is one (see [`fast_tempdir`]).
    pub fn file() -> Backend {
        Backend::File(fast_tempdir())
    }

    /// The file store on the real disk (for what a crash leaves in the files).
    pub fn file_on_disk() -> Backend {
        Backend::File(tempfile::tempdir().unwrap())
    }

    /// A fresh database, or `None` when PostgreSQL is not installed (and not required).
    pub fn postgres() -> Option<Backend> {
        Some(Backend::Postgres(postgres::database()?, tempfile::tempdir().unwrap()))
    }

    pub fn dir(&self) -> &Path {
        match self {
            Backend::File(dir) | Backend::Postgres(_, dir) => dir.path(),
        }
    }

    /// The variables that make `moonauth` open this store.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![("MOONAUTH_STATE_DIR", self.dir().display().to_string())];
        if let Backend::Postgres(db, _) = self {
            vars.push(("MOONAUTH_STATE_URL", db.url()));
        }
        vars
    }

    /// Puts `bytes` where the state document lives, as another writer (or a person) would:
    /// `state.json`, or the state row.
    pub fn plant(&self, bytes: &[u8]) {
        match self {
            Backend::File(dir) => std::fs::write(dir.path().join(store::STATE_FILE), bytes).unwrap(),
            Backend::Postgres(db, _) => {
                self.open();
                db.client()
                    .execute("UPDATE moonauth_state SET document = $1 WHERE id = 1", &[&bytes])
                    .unwrap();
            }
        }
    }

    /// The state document as stored.
    pub fn raw(&self) -> Vec<u8> {
        match self {
            Backend::File(dir) => std::fs::read(dir.path().join(store::STATE_FILE)).unwrap(),
            Backend::Postgres(db, _) => db
                .client()
                .query_one("SELECT document FROM moonauth_state WHERE id = 1", &[])
                .unwrap()
                .get(0),
        }
    }

    /// The store, opened as `state::open` opens it.
    pub fn open(&self) -> Store {
        match self {
            Backend::File(dir) => Store::open(dir.path()).unwrap(),
            Backend::Postgres(db, dir) => {
                Store::open_postgres(&moonauth::redact::Secret::new(db.url()), dir.path()).unwrap()
            }
        }
    }
}

fn bench(backend: &Backend, ops: u64) -> Child {
    moonauth()
        .args(["internal", "store-bench", "--ops", &ops.to_string()])
        .envs(backend.vars())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn moonauth")
}

/// A store holding two Claude accounts for the bench to pick from.
pub fn seeded(backend: &Backend) -> Store {
    let store = backend.open();
    for alias in ["a", "b"] {
        let account = Account::new(
            alias,
            Runtime::Claude,
            Credential::Login {
                dir: PathBuf::from(format!("/home/app/.claude-{alias}")),
                volume: None,
            },
            0,
        );
        store
            .update(store::DEFAULT_LOCK_TIMEOUT, |s| s.add(account))
            .unwrap()
            .unwrap();
    }
    store
}

/// A temp directory on tmpfs when there is one. The lost-update property is the lock's,
/// not the disk's; on a disk where fsync takes milliseconds, 8,000 durable writes would
/// take over a minute (scripts/bench-store.sh measures both).
fn fast_tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

#[test]
fn sixteen_processes_times_500_updates_lose_nothing_file() {
    sixteen_processes_times_500_updates_lose_nothing(Backend::file());
}

#[test]
fn sixteen_processes_times_500_updates_lose_nothing_postgres() {
    if let Some(backend) = Backend::postgres() {
        sixteen_processes_times_500_updates_lose_nothing(backend);
    }
}

fn sixteen_processes_times_500_updates_lose_nothing(backend: Backend) {
    let store = seeded(&backend);
    let before = store.read_unlocked().unwrap().revision;
    let children: Vec<Child> = (0..16).map(|_| bench(&backend, 500)).collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let state = store.read_unlocked().unwrap();
    assert_eq!(state.revision - before, 16 * 500, "every update landed");
    // Both accounts were picked: the least recently used one goes first.
    assert!(state.accounts.iter().all(|a| a.last_used.is_some()));
}

/// A small deterministic generator (xorshift64*), seeded from the clock and printed,
/// so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn a_thousand_kill_9_during_writes_never_leave_an_unreadable_or_locked_store_file() {
    // On the real disk: this is about what a killed writer leaves in the files.
    kill_9_during_writes(Backend::file_on_disk(), 1000);
}

#[test]
fn kill_9_during_writes_never_leaves_an_unreadable_or_locked_store_postgres() {
    // Fewer rounds: each starts a process that connects and migrates, and the server
    // needs a moment to notice a dead client and roll its transaction back.
    if let Some(backend) = Backend::postgres() {
        kill_9_during_writes(backend, 150);
    }
}

fn kill_9_during_writes(backend: Backend, rounds: usize) {
    let dir = backend.dir();
    let store = seeded(&backend);
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("seed {seed}");
    let mut rng = Rng(seed);
    let mut last = store.read_unlocked().unwrap().revision;
    let started = Instant::now();
    for i in 0..rounds {
        let mut writer = bench(&backend, 1_000_000);
        // Wait until the writer is in its loop (its first write landed), so the kill
        // hits a write rather than process start-up.
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.read_unlocked().unwrap().revision == last {
            assert!(Instant::now() < deadline, "iteration {i}: the writer never wrote");
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_micros(rng.next() % 3000));
        writer.kill().unwrap(); // SIGKILL
        writer.wait().unwrap();

        let reopened = backend.open();
        let state = reopened
            .read_unlocked()
            .unwrap_or_else(|e| panic!("iteration {i}: the store does not load: {e}"));
        // The lock is free: at once for a flock (it dies with its holder); for the
        // database, as soon as the server sees the connection closed and rolls back.
        let guard = match &backend {
            Backend::File(_) => reopened.lock(Duration::ZERO),
            Backend::Postgres(..) => reopened.lock(Duration::from_secs(10)),
        }
        .unwrap_or_else(|e| panic!("iteration {i}: the lock is not free: {e}"));
        match &backend {
            Backend::File(_) => assert_eq!(guard.state(), &state),
            // A COMMIT the writer sent before it died may still land after the read above
            // (the server finishes it): the locked read is that state or a newer one.
            Backend::Postgres(..) => assert!(
                guard.state().revision >= state.revision,
                "iteration {i}: the locked read went back"
            ),
        }
        let state = guard.state().clone();
        drop(guard);
        // A write is whole or absent, and the revision never goes back.
        assert!(state.revision > last, "iteration {i}: revision went back");
        if let Backend::File(_) = &backend {
            // Renames are atomic, so state.json itself always parses.
            let current = store::decode(&std::fs::read(dir.join(store::STATE_FILE)).unwrap())
                .unwrap_or_else(|e| panic!("iteration {i}: state.json does not parse: {e:?}"));
            assert_eq!(current.state.revision, state.revision);
            if let Ok(bytes) = std::fs::read(dir.join(store::GOOD_FILE)) {
                let good = store::decode(&bytes).expect("state.json.good parses");
                assert!(good.state.revision < current.state.revision || good.state == current.state);
            }
        }
        last = state.revision;
    }
    if let Backend::File(_) = &backend {
        let names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            !names.iter().any(|n| n.starts_with(store::BROKEN_PREFIX)),
            "nothing needed a restore: {names:?}"
        );
        assert!(names.len() <= 5, "temp files do not pile up: {names:?}");
    }
    eprintln!(
        "{rounds} kills in {:.1}s; {last} writes landed",
        started.elapsed().as_secs_f64()
    );
}

/// The decision log keeps the newest lines in order, bounded, on both backends.
fn decision_log_is_bounded_and_ordered(backend: Backend) {
    let store = backend.open();
    assert_eq!(store.decisions(10).unwrap(), Vec::<String>::new());
    let total = store::MAX_DECISIONS + store::MAX_DECISIONS / 2 + 7;
    for i in 0..total {
        store.append_decision(&format!("{{\"n\":{i}}}")).unwrap();
    }
    let newest = store.decisions(3).unwrap();
    let n = |i: usize| format!("{{\"n\":{i}}}");
    assert_eq!(newest, [n(total - 3), n(total - 2), n(total - 1)]);
    let all = store.decisions(usize::MAX).unwrap();
    assert!(all.len() <= store::MAX_DECISIONS, "bounded: {} lines", all.len());
    assert!(
        all.len() >= store::MAX_DECISIONS / 2,
        "keeps enough: {} lines",
        all.len()
    );
    let first = total - all.len();
    assert_eq!(
        all,
        (first..total).map(n).collect::<Vec<_>>(),
        "contiguous, newest last"
    );
    // A line is one line: a newline would split one decision into two.
    assert!(store.append_decision("a\nb").is_err());
    assert!(store
        .append_decision(&"x".repeat(store::MAX_DECISION_BYTES + 1))
        .is_err());
    assert_eq!(store.decisions(1).unwrap(), [n(total - 1)]);
    // And the log is not the state: appending changed no revision.
    assert_eq!(store.read_unlocked().unwrap().revision, 0);
}

#[test]
fn decision_log_is_bounded_and_ordered_file() {
    decision_log_is_bounded_and_ordered(Backend::file());
}

#[test]
fn decision_log_is_bounded_and_ordered_postgres() {
    if let Some(backend) = Backend::postgres() {
        decision_log_is_bounded_and_ordered(backend);
    }
}

/// Appends from many processes at once all land (each under the log's own lock).
fn concurrent_decisions_all_land(backend: Backend) {
    let store = backend.open();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let store = store.clone();
            scope.spawn(move || {
                for i in 0..40 {
                    store.append_decision(&format!("{t}-{i}")).unwrap();
                }
            });
        }
    });
    let all = store.decisions(usize::MAX).unwrap();
    assert_eq!(all.len(), 320);
    for t in 0..8 {
        let mine: Vec<&String> = all.iter().filter(|l| l.starts_with(&format!("{t}-"))).collect();
        let expected: Vec<String> = (0..40).map(|i| format!("{t}-{i}")).collect();
        assert_eq!(
            mine,
            expected.iter().collect::<Vec<_>>(),
            "each writer's lines in order"
        );
    }
}

#[test]
fn concurrent_decisions_all_land_file() {
    concurrent_decisions_all_land(Backend::file());
}

#[test]
fn concurrent_decisions_all_land_postgres() {
    if let Some(backend) = Backend::postgres() {
        concurrent_decisions_all_land(backend);
    }
}

/// A guard dropped without commit writes nothing, and a second locker waits for it.
fn a_dropped_guard_writes_nothing_and_the_lock_excludes(backend: Backend) {
    let store = seeded(&backend);
    let before = store.read_unlocked().unwrap();
    {
        let mut guard = store.lock(Duration::from_secs(5)).unwrap();
        guard.state_mut().accounts.clear();
        let err = store.lock(Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, moonauth::error::Error::StoreLocked { .. }), "{err}");
        // The hint fits the backend: fuser for the lock file, pg_stat_activity for the row.
        let hint = err.hint().unwrap();
        match &backend {
            Backend::File(_) => assert!(hint.contains("fuser"), "{hint}"),
            Backend::Postgres(..) => assert!(hint.contains("pg_stat_activity"), "{hint}"),
        }
        assert!(!err.to_string().contains(crate::support::postgres::PASSWORD), "{err}");
    }
    assert_eq!(store.read_unlocked().unwrap(), before);
    store.update(Duration::from_secs(5), |s| s.accounts.pop()).unwrap();
    let after = store.read_unlocked().unwrap();
    assert_eq!((after.revision, after.accounts.len()), (before.revision + 1, 1));
}

#[test]
fn a_dropped_guard_writes_nothing_and_the_lock_excludes_file() {
    a_dropped_guard_writes_nothing_and_the_lock_excludes(Backend::file());
}

#[test]
fn a_dropped_guard_writes_nothing_and_the_lock_excludes_postgres() {
    if let Some(backend) = Backend::postgres() {
        a_dropped_guard_writes_nothing_and_the_lock_excludes(backend);
    }
}

/// A version-1 document (accounts keyed by alias) reads, and the next write stores it as
/// the current version with every unknown field kept: the same codec on both backends.
fn a_version_1_document_migrates_on_the_next_write(backend: Backend) {
    let v1 = r#"{"version": 1, "accounts": {"work": {"runtime": "claude", "login_dir": "/home/app/.claude-work",
        "disabled": true, "note": "kept"}}, "fleet": "eu-1"}"#;
    backend.plant(v1.as_bytes());
    let store = backend.open();
    let state = store.read_unlocked().unwrap();
    assert_eq!(state.accounts[0].alias, "work");
    assert!(!state.accounts[0].enabled);
    store
        .update(Duration::from_secs(5), |s| s.set_enabled("work", true))
        .unwrap()
        .unwrap();
    let written: serde_json::Value = serde_json::from_slice(&backend.raw()).unwrap();
    assert_eq!(written["version"], store::VERSION);
    assert_eq!(written["accounts"][0]["alias"], "work");
    assert_eq!(written["accounts"][0]["enabled"], true);
    assert_eq!(written["accounts"][0]["note"], "kept");
    assert_eq!(written["fleet"], "eu-1");
}

#[test]
fn a_version_1_document_migrates_on_the_next_write_file() {
    a_version_1_document_migrates_on_the_next_write(Backend::file());
}

#[test]
fn a_version_1_document_migrates_on_the_next_write_postgres() {
    if let Some(backend) = Backend::postgres() {
        a_version_1_document_migrates_on_the_next_write(backend);
    }
}

/// A document a newer moonauth wrote is read but never overwritten.
fn a_newer_document_is_read_but_never_overwritten(backend: Backend) {
    let newer = br#"{"version": 9, "revision": 7, "accounts": [], "leases": {}}"#;
    backend.plant(newer);
    let store = backend.open();
    assert_eq!(store.read_unlocked().unwrap().revision, 7);
    let err = store.update(Duration::from_secs(5), |_| ()).unwrap_err();
    assert!(
        matches!(err, moonauth::error::Error::StoreTooNew { version: 9, .. }),
        "{err}"
    );
    assert_eq!(backend.raw(), newer);
}

#[test]
fn a_newer_document_is_read_but_never_overwritten_file() {
    a_newer_document_is_read_but_never_overwritten(Backend::file());
}

#[test]
fn a_newer_document_is_read_but_never_overwritten_postgres() {
    if let Some(backend) = Backend::postgres() {
        a_newer_document_is_read_but_never_overwritten(backend);
    }
}

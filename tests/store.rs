//! The account store under real concurrency and real crashes: many `moonauth`
//! processes updating one store at once, and writers killed with SIGKILL at random
//! moments. Each process is the built binary running `internal store-bench`, whose
//! every operation is one locked read-modify-write (pick an account, mark it used);
//! the store's `revision` counts the writes that landed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moonauth::agents::Runtime;
use moonauth::state::accounts::{Account, Credential};
use moonauth::state::store::{self, Store};

use crate::support::moonauth_bin;

fn moonauth() -> Command {
    let mut cmd = Command::new(moonauth_bin());
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

fn bench(dir: &Path, ops: u64) -> Child {
    moonauth()
        .args(["internal", "store-bench", "--ops", &ops.to_string()])
        .env("MOONAUTH_STATE_DIR", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn moonauth")
}

/// A store holding two Claude accounts for the bench to pick from.
fn seeded(dir: &Path) -> Store {
    let store = Store::open(dir).unwrap();
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
fn sixteen_processes_times_500_updates_lose_nothing() {
    let tmp = fast_tempdir();
    let store = seeded(tmp.path());
    let before = store.read_unlocked().unwrap().revision;
    let children: Vec<Child> = (0..16).map(|_| bench(tmp.path(), 500)).collect();
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
fn a_thousand_kill_9_during_writes_never_leave_an_unreadable_or_locked_store() {
    // On the real disk: this is about what a killed writer leaves in the files.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let store = seeded(dir);
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("seed {seed}");
    let mut rng = Rng(seed);
    let mut last = store.read_unlocked().unwrap().revision;
    let started = Instant::now();
    for i in 0..1000 {
        let mut writer = bench(dir, 1_000_000);
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

        let reopened = Store::open(dir).unwrap();
        let state = reopened
            .read_unlocked()
            .unwrap_or_else(|e| panic!("iteration {i}: the store does not load: {e}"));
        // The lock is free at once: flock dies with its holder.
        let guard = reopened
            .lock(Duration::ZERO)
            .unwrap_or_else(|e| panic!("iteration {i}: the lock is not free: {e}"));
        assert_eq!(guard.state(), &state);
        drop(guard);
        // Renames are atomic, so state.json itself always parses, and it never goes back.
        let current = store::decode(&std::fs::read(dir.join(store::STATE_FILE)).unwrap())
            .unwrap_or_else(|e| panic!("iteration {i}: state.json does not parse: {e:?}"));
        assert!(current.state.revision > last, "iteration {i}: revision went back");
        if let Ok(bytes) = std::fs::read(dir.join(store::GOOD_FILE)) {
            let good = store::decode(&bytes).expect("state.json.good parses");
            assert!(good.state.revision < current.state.revision || good.state == current.state);
        }
        last = current.state.revision;
    }
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with(store::BROKEN_PREFIX)),
        "nothing needed a restore: {names:?}"
    );
    assert!(names.len() <= 5, "temp files do not pile up: {names:?}");
    eprintln!(
        "1000 kills in {:.1}s; {last} writes landed",
        started.elapsed().as_secs_f64()
    );
}

//! Benchmarks of the fleet's PostgreSQL state against the file store (ignored by
//! default; figures go in docs/benchmarks.md, never into an assertion):
//!
//! ```sh
//! cargo nextest run --run-ignored only --no-capture -E 'test(/fleet_bench/)'
//! ```
//!
//! - state read-modify-writes per second, 24 concurrent `internal store-bench` processes;
//! - lease acquire latency (p50/p99) with 24 concurrent clients: 24 logins (the cost of
//!   taking and releasing one), and one login all 24 want (the wait for it);
//! - the time a host needs to take up a new generation (`moonauth renew` on a host whose
//!   copy is stale, against a generation another host published).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use moonauth::agents::Runtime;
use moonauth::config::FleetSettings;
use moonauth::lease::fleet::Fleet;
use moonauth::lease::{Lease, LoginKey};
use moonauth::redact::Secret;
use moonauth::source::{Source, Sourced};

use crate::store::{seeded, Backend};
use crate::support::postgres;
use crate::support::renew::*;

const CLIENTS: usize = 24;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn ops_per_sec(backend: &Backend, ops_each: u64) -> f64 {
    let store = seeded(backend);
    let before = store.read_unlocked().unwrap().revision;
    let started = Instant::now();
    let children: Vec<_> = (0..CLIENTS)
        .map(|_| {
            moonauth_cmd(&[])
                .args(["internal", "store-bench", "--ops", &ops_each.to_string()])
                .envs(backend.vars())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let elapsed = started.elapsed();
    let landed = store.read_unlocked().unwrap().revision - before;
    assert_eq!(landed, CLIENTS as u64 * ops_each, "no lost update");
    landed as f64 / elapsed.as_secs_f64()
}

fn fleet(url: &str) -> Fleet {
    Fleet::new(FleetSettings {
        url: Sourced::new(Secret::new(url), Source::Default),
        key: Some(Sourced::new(Secret::new("b".repeat(40)), Source::Default)),
        lease_ttl: Sourced::new(Duration::from_secs(60), Source::Default),
    })
}

/// `rounds` acquire+release per client, 24 clients; with `shared`, all want one login.
fn lease_latencies(root: &Path, fleet: Option<&Arc<Fleet>>, shared: bool, rounds: usize) -> Vec<Duration> {
    let mut all: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                // A host per client: its own login directory (the host's flock), so only
                // the fleet lease is shared between them.
                let dir = subdir(root, &format!("c{i}"));
                let fleet = fleet.cloned();
                scope.spawn(move || {
                    let account = if shared { "shared".to_string() } else { format!("a{i}") };
                    let key = LoginKey::new(Runtime::Codex, Some(account));
                    // Without a fleet, a shared login is one directory all contend for.
                    let dir = if shared && fleet.is_none() {
                        dir.parent().unwrap().join("c0")
                    } else {
                        dir
                    };
                    // Warm-up, not counted: the connection (SCRAM in a debug build is slow).
                    drop(Lease::acquire(&key, &dir, Duration::from_secs(60), fleet.as_deref()).unwrap());
                    let mut took = Vec::with_capacity(rounds);
                    for _ in 0..rounds {
                        let t = Instant::now();
                        let lease = Lease::acquire(&key, &dir, Duration::from_secs(60), fleet.as_deref()).unwrap();
                        took.push(t.elapsed());
                        drop(lease);
                    }
                    took
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    all.sort_unstable();
    all
}

#[test]
#[ignore = "a benchmark: run with --run-ignored only --no-capture"]
fn fleet_bench_state_and_leases_postgres_vs_file() {
    let db = postgres::database().expect("PostgreSQL is needed for the benchmark");
    eprintln!("24 concurrent clients (debug build of moonauth; cluster with fsync=off, loopback)");
    let file_rate = ops_per_sec(&Backend::file_on_disk(), 100);
    let shm_rate = ops_per_sec(&Backend::file(), 100);
    let pg = Backend::Postgres(db, tempfile::tempdir().unwrap());
    let pg_rate = ops_per_sec(&pg, 100);
    eprintln!(
        "state read-modify-writes/s: file (disk) {file_rate:.0}, file (tmpfs) {shm_rate:.0}, postgres {pg_rate:.0}"
    );

    let Backend::Postgres(db, _) = &pg else { unreachable!() };
    let f = Arc::new(fleet(&db.url()));
    f.store().unwrap();
    for (name, fleet, shared) in [
        ("file, 24 logins", None, false),
        ("postgres, 24 logins", Some(&f), false),
        ("file, 1 login", None, true),
        ("postgres, 1 login", Some(&f), true),
    ] {
        let root = temp_root("bench-lease-");
        let lat = lease_latencies(root.path(), fleet, shared, 40);
        eprintln!(
            "lease acquire, {name}: p50 {} p99 {} ({} acquisitions)",
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            lat.len()
        );
    }
}

#[test]
#[ignore = "a benchmark: run with --run-ignored only --no-capture"]
fn fleet_bench_take_up_of_a_new_generation() {
    let db = postgres::database().expect("PostgreSQL is needed for the benchmark");
    let svc = TokenService::start(Flavor::Codex);
    let root = temp_root("bench-takeup-");
    let a = subdir(root.path(), "a");
    let b = subdir(root.path(), "b");
    let issued = svc.login(SystemTime::now() - Duration::from_secs(30));
    write_codex_login(&a, &issued, SystemTime::now() - Duration::from_secs(86_400));
    let stale = std::fs::read(a.join("auth.json")).unwrap();
    let url = db.url();
    let token_url = svc.token_url();
    let key = "k".repeat(40);
    let renew = |dir: &Path| {
        let mut cmd = moonauth_cmd(&[
            ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", token_url.as_str()),
            ("MOONAUTH_STATE_URL", url.as_str()),
            ("MOONAUTH_STATE_KEY", key.as_str()),
        ]);
        cmd.args(["renew", "codex", "--dir", dir.to_str().unwrap(), "--json"]);
        cmd
    };
    let out = run(&mut renew(&a), Duration::from_secs(60));
    assert!(out.stdout.contains("\"refreshed\""), "{}", out.text());
    let mut took = Vec::new();
    for _ in 0..15 {
        std::fs::write(b.join("auth.json"), &stale).unwrap();
        let _ = std::fs::remove_file(b.join(".moonauth-generation"));
        let t = Instant::now();
        let out = run(&mut renew(&b), Duration::from_secs(60));
        took.push(t.elapsed());
        assert!(out.stdout.contains("\"fresh\""), "{}", out.text());
    }
    let mut fresh = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let out = run(&mut renew(&b), Duration::from_secs(60));
        fresh.push(t.elapsed());
        assert!(out.stdout.contains("\"fresh\""), "{}", out.text());
    }
    // In process, without the process start and the connect: the take-up itself (the
    // host's lease, read the newest generation, open it, write the login and the marker).
    let f = Fleet::new(FleetSettings {
        url: Sourced::new(Secret::new(&url), Source::Default),
        key: Some(Sourced::new(Secret::new(&key), Source::Default)),
        lease_ttl: Sourced::new(Duration::from_secs(60), Source::Default),
    });
    let login = LoginKey::new(Runtime::Codex, None);
    let mut inproc = Vec::new();
    for i in 0..51 {
        std::fs::write(b.join("auth.json"), &stale).unwrap();
        let _ = std::fs::remove_file(b.join(".moonauth-generation"));
        let t = Instant::now();
        let mut lease = Lease::acquire(&login, &b, Duration::from_secs(10), None).unwrap();
        let taken = moonauth::renew::generation::take_up(&mut lease, &f, &login, &b).unwrap();
        drop(lease);
        if i > 0 {
            inproc.push(t.elapsed());
        }
        assert!(matches!(taken, moonauth::renew::generation::TakenUp::Replaced(_)));
    }
    inproc.sort_unstable();
    eprintln!(
        "take-up in process (lease, read, open, write): median {} p99 {}",
        ms(percentile(&inproc, 0.5)),
        ms(percentile(&inproc, 0.99))
    );
    took.sort_unstable();
    fresh.sort_unstable();
    assert_eq!(svc.refreshes(), 1);
    eprintln!(
        "take-up of a new generation (a whole `moonauth renew` on the stale host): median {} p90 {}; the same run with nothing to take up: median {}",
        ms(percentile(&took, 0.5)),
        ms(percentile(&took, 0.9)),
        ms(percentile(&fresh, 0.5))
    );
}

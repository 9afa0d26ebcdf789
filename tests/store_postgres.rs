//! The PostgreSQL backend's own behaviour, against a real cluster the tests start
//! (tests/support/postgres.rs): schema migrations by concurrent first users and a newer
//! schema refused with its exit code; a database restarted while writers run loses no
//! update; an unreachable database is said with the URL's password masked; the fleet
//! refresh lease (one holder, expiry in database time, fencing that grows, a stale
//! holder's publish refused). The tests both backends share are in `store`.

use std::process::{Child, Stdio};
use std::time::Duration;

use moonauth::error::Error;
use moonauth::redact::Secret;
use moonauth::state::postgres::{Fencing, PgStore, SCHEMA_VERSION};

use crate::store::{seeded, Backend};
use crate::support::postgres::{self, PASSWORD};
use crate::support::renew::{moonauth_cmd, run};

fn connect(url: &str) -> moonauth::error::Result<PgStore> {
    PgStore::connect(&Secret::new(url))
}

#[test]
fn concurrent_first_users_migrate_once_and_all_succeed() {
    let Some(db) = postgres::database() else { return };
    let url = db.url();
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|_| scope.spawn(|| connect(&url).map(|s| s.schema_version().unwrap())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in results {
        assert_eq!(r.unwrap(), SCHEMA_VERSION);
    }
    let mut client = db.client();
    let rows = client.query("SELECT version FROM moonauth_schema", &[]).unwrap();
    assert_eq!(rows.len(), 1);
    let state_rows: i64 = client
        .query_one("SELECT count(*) FROM moonauth_state", &[])
        .unwrap()
        .get(0);
    assert_eq!(state_rows, 1, "the migration ran once");
}

#[test]
fn a_newer_schema_is_refused_with_its_exit_code_and_left_alone() {
    let Some(db) = postgres::database() else { return };
    connect(&db.url()).unwrap();
    let mut client = db.client();
    client.batch_execute("UPDATE moonauth_schema SET version = 99").unwrap();
    let err = connect(&db.url()).unwrap_err();
    assert!(matches!(err, Error::StateSchemaTooNew { version: 99, .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("schema version 99"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");

    let tmp = tempfile::tempdir().unwrap();
    let out = run(
        moonauth_cmd(&[
            ("MOONAUTH_STATE_URL", &db.url()),
            ("MOONAUTH_STATE_DIR", tmp.path().to_str().unwrap()),
        ])
        .args(["accounts", "ls"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(21), "{}", out.text());
    assert!(out.stderr.contains("schema version 99"), "{}", out.stderr);
    assert!(!out.text().contains(PASSWORD), "{}", out.text());
    let version: i32 = client
        .query_one("SELECT version FROM moonauth_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, 99, "a newer schema is never migrated down");
}

#[test]
fn an_unreachable_database_is_said_with_the_password_masked() {
    // A port nothing listens on: refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://moon:{PASSWORD}@127.0.0.1:{port}/fleet?connect_timeout=2");
    let err = connect(&url).unwrap_err();
    assert!(matches!(err, Error::StateUnreachable { .. }), "{err}");
    let text = err.to_string();
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(
        text.contains(&format!("postgres://moon:[redacted]@127.0.0.1:{port}/fleet")),
        "{text}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let out = run(
        moonauth_cmd(&[
            ("MOONAUTH_STATE_URL", &url),
            ("MOONAUTH_STATE_DIR", tmp.path().to_str().unwrap()),
        ])
        .args(["accounts", "ls", "--json"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(20), "{}", out.text());
    assert!(!out.text().contains(PASSWORD), "{}", out.text());
    assert!(out.stderr.contains("[redacted]"), "{}", out.stderr);
}

#[test]
fn a_wrong_password_is_an_error_that_does_not_echo_it() {
    let Some(db) = postgres::database() else { return };
    let wrong = "CANARYwrongpw-77aa";
    let url = db.url().replace(PASSWORD, wrong);
    let err = connect(&url).unwrap_err();
    let text = format!("{err} {:?}", err.hint());
    assert!(!text.contains(wrong), "{text}");
    assert!(text.contains("password authentication failed"), "{text}");
}

/// Writers stopping at a database restart and going on after it: every update that was
/// acknowledged is in the state (revision counts them), none twice.
#[test]
fn a_database_restarted_during_writes_loses_no_acknowledged_update() {
    let Some(db) = postgres::private_database() else { return };
    let backend = Backend::Postgres(db, tempfile::tempdir().unwrap());
    let store = seeded(&backend);
    let before = store.read_unlocked().unwrap().revision;
    let children: Vec<Child> = (0..6)
        .map(|_| {
            crate::support::renew::moonauth_cmd(&[])
                .args(["internal", "store-bench", "--ops", "400", "--keep-going"])
                .envs(backend.vars())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let Backend::Postgres(db, _) = &backend else {
        unreachable!()
    };
    // Let them get going, then restart the server under them, twice.
    postgres::wait_until("the writers to write", Duration::from_secs(30), || {
        store.read_unlocked().map(|s| s.revision > before + 50).unwrap_or(false)
    });
    for mode in ["fast", "immediate"] {
        db.cluster.stop(mode);
        std::thread::sleep(Duration::from_millis(300));
        db.cluster.start_again();
        std::thread::sleep(Duration::from_millis(300));
    }
    let (mut landed, mut failed) = (0, 0);
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a writer failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        landed += line["landed"].as_u64().unwrap();
        failed += line["failed"].as_u64().unwrap();
    }
    let after = backend.open().read_unlocked().unwrap().revision;
    eprintln!(
        "{landed} landed, {failed} failed across two restarts; revision +{}",
        after - before
    );
    assert!(failed > 0, "the restarts interrupted some updates");
    // No acknowledged update is lost; an update whose COMMIT reply the restart cut may
    // have landed without being acknowledged, never more than those that failed.
    assert!(
        after - before >= landed,
        "lost updates: {landed} acknowledged, {} in the state",
        after - before
    );
    assert!(after - before <= landed + failed);
}

#[test]
fn the_fleet_lease_has_one_holder_expires_in_database_time_and_fences() {
    let Some(db) = postgres::database() else { return };
    let a = connect(&db.url()).unwrap();
    let b = connect(&db.url()).unwrap();
    let name = "claude/default";
    let first = a.try_lease(name, "host-a:1", Duration::from_secs(60)).unwrap().unwrap();
    assert_eq!(b.try_lease(name, "host-b:2", Duration::from_secs(60)).unwrap(), None);
    assert_eq!(a.lease_holder(name).unwrap().as_deref(), Some("host-a:1"));
    // The holder publishes with its fencing number.
    assert_eq!(a.publish(name, "host-a:1", first, b"sealed-1").unwrap(), Some(1));
    // Released, the next grant has a higher number, and the old one cannot publish.
    a.release_lease(name, "host-a:1", first).unwrap();
    let second = b.try_lease(name, "host-b:2", Duration::from_secs(60)).unwrap().unwrap();
    assert!(second.0 > first.0);
    assert_eq!(a.publish(name, "host-a:1", first, b"stale").unwrap(), None);
    assert_eq!(b.publish(name, "host-b:2", second, b"sealed-2").unwrap(), Some(2));

    // A short lease expires by the database's clock, and then another takes it over; the
    // expired holder (paused past its lease) can no longer publish.
    let other = "codex/work";
    let short = a
        .try_lease(other, "host-a:1", Duration::from_millis(300))
        .unwrap()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(a.publish(other, "host-a:1", short, b"late").unwrap(), None, "expired");
    let taken = b
        .try_lease(other, "host-b:2", Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert!(taken.0 > short.0);
    assert_eq!(a.publish(other, "host-a:1", short, b"late").unwrap(), None);
    assert_eq!(b.newest_generation(other).unwrap(), None);
    assert_eq!(b.publish(other, "host-b:2", taken, b"g1").unwrap(), Some(1));
    let newest = a.newest_generation(other).unwrap().unwrap();
    assert_eq!(
        (newest.generation, newest.fencing, newest.sealed),
        (1, taken.0, b"g1".to_vec())
    );
    let _ = Fencing(0);
}

#[test]
fn many_processes_racing_for_one_lease_get_distinct_growing_fencing_numbers() {
    let Some(db) = postgres::database() else { return };
    connect(&db.url()).unwrap();
    let url = db.url();
    // 8 threads x 25 rounds of take-then-release: every grant's number is unique, and
    // no two hold it at once (each checks it is the holder while it holds it).
    let grants: Vec<i64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let url = url.clone();
                scope.spawn(move || {
                    let store = connect(&url).unwrap();
                    let owner = format!("host-{t}");
                    let mut mine = Vec::new();
                    let deadline = std::time::Instant::now() + Duration::from_secs(60);
                    while mine.len() < 25 {
                        assert!(std::time::Instant::now() < deadline, "starved");
                        if let Some(f) = store.try_lease("claude/x", &owner, Duration::from_secs(30)).unwrap() {
                            assert_eq!(store.lease_holder("claude/x").unwrap().as_deref(), Some(owner.as_str()));
                            mine.push(f.0);
                            store.release_lease("claude/x", &owner, f).unwrap();
                        } else {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = grants.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 200, "every grant has its own fencing number");
}

#[test]
fn sslmode_require_is_refused_with_a_clear_error_not_a_plain_connection() {
    let url = format!("postgres://moon:{PASSWORD}@127.0.0.1:1/fleet?sslmode=require");
    let err = connect(&url).unwrap_err();
    assert_eq!(err.exit(), moonauth::exit::Exit::Usage);
    let text = err.to_string();
    assert!(
        text.contains("sslmode=require") && text.contains("without TLS"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
}

//! Throwaway PostgreSQL clusters for the tests: Debian's `postgresql` (15) binaries,
//! `initdb` into a temp directory, `pg_ctl start` on a free loopback port with the socket
//! in that directory (run as the `postgres` user when the tests run as root: initdb
//! refuses root). One cluster is shared by the tests of a process that overlap (nextest
//! runs each test in its own process, so there one per test); each test gets its own
//! database. The last [`Database`] dropped stops the cluster (`pg_ctl stop -m
//! immediate`), so no server outlives the tests.
//!
//! Without the binaries the tests skip, except under `MOONAUTH_REQUIRE_POSTGRES=1`
//! (`scripts/test` sets it when `CI=true`), where that is a failure.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The password of the clusters' superuser: shaped like a canary, so a test that finds
/// it in a message has found a leak.
pub const PASSWORD: &str = "CANARYdbpw-5f3a9e1c7b";

/// Where Debian's PostgreSQL 15 keeps its server programs.
pub const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// A running cluster.
pub struct Cluster {
    dir: tempfile::TempDir,
    pub port: u16,
    /// The user the server runs as (`postgres` when the tests run as root).
    run_as: Option<(u32, u32)>,
}

/// One test's own database in a running cluster.
pub struct Database {
    pub name: String,
    pub cluster: Arc<Cluster>,
}

static SHARED: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());

/// A fresh database in the shared cluster, or `None` (with a note) when PostgreSQL is
/// not installed and not required.
pub fn database() -> Option<Database> {
    let cluster = {
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        match shared.upgrade() {
            Some(c) => c,
            None => {
                let c = Arc::new(Cluster::start()?);
                *shared = Arc::downgrade(&c);
                c
            }
        }
    };
    Some(cluster.create_database())
}

/// A fresh database in a cluster of its own, for tests that stop or restart the server.
pub fn private_database() -> Option<Database> {
    Some(Arc::new(Cluster::start()?).create_database())
}

fn required() -> bool {
    std::env::var("MOONAUTH_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

impl Cluster {
    /// Starts a new cluster, or `None` when the binaries are missing (and not required).
    pub fn start() -> Option<Cluster> {
        if !Path::new(BIN_DIR).join("initdb").exists() {
            assert!(
                !required(),
                "MOONAUTH_REQUIRE_POSTGRES=1 but {BIN_DIR}/initdb is missing: install postgresql (scripts/test does)"
            );
            eprintln!("skipping: PostgreSQL is not installed ({BIN_DIR}/initdb); scripts/test installs it");
            return None;
        }
        let run_as = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .expect("read the user database")
                .expect("the postgresql package makes a postgres user");
            Some((user.uid.as_raw(), user.gid.as_raw()))
        } else {
            None
        };
        let dir = tempfile::Builder::new().prefix("moonauth-pg-").tempdir().unwrap();
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).unwrap();
        }
        let mut cluster = Cluster { dir, port: 0, run_as };
        let data = cluster.data_dir();
        let out = cluster
            .command("initdb")
            .args(["-D", data.to_str().unwrap(), "-U", "postgres", "--auth-local=trust"])
            .args(["--auth-host=scram-sha-256", "--pwfile", pwfile.to_str().unwrap()])
            .args(["-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        // A free port can be taken by someone else before the server binds it: try a few.
        for attempt in 0..5 {
            cluster.port = free_port();
            if cluster.pg_ctl_start() {
                return Some(cluster);
            }
            eprintln!("postgres did not start on port {} (attempt {attempt})", cluster.port);
        }
        panic!("postgres did not start: {}", cluster.log());
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// A server program, run as the cluster's user, with a clean environment.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(Path::new(BIN_DIR).join(program));
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LC_ALL", "C.UTF-8")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn pg_ctl_start(&self) -> bool {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let status = self
            .command("pg_ctl")
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(self.data_dir())
            .args(["-l"])
            .arg(self.dir.path().join("log"))
            .args(["-o", &options])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run pg_ctl start");
        status.success()
    }

    /// Stops the server at once (as a crash would), or gracefully.
    pub fn stop(&self, mode: &str) {
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-w", "-t", "60", "-m", mode, "-D"])
            .arg(self.data_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Starts a stopped server again on the same port.
    pub fn start_again(&self) {
        assert!(self.pg_ctl_start(), "postgres did not start again: {}", self.log());
    }

    /// The URL of database `name`, over TCP on loopback with the password.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{name}?connect_timeout=3",
            self.port
        )
    }

    /// A client of database `name`.
    pub fn client(&self, name: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(name), postgres::NoTls).expect("connect to the test cluster")
    }

    fn create_database(self: &Arc<Self>) -> Database {
        let name = format!("t_{:016x}", fastrand::u64(..));
        self.client("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a test database");
        Database {
            name,
            cluster: Arc::clone(self),
        }
    }

    /// Runs a server program (`pg_dump`, `psql`) against database `name`; its stdout.
    pub fn run_tool(&self, program: &str, name: &str, args: &[&str]) -> String {
        let out = self
            .command(program)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                name,
            ])
            .args(args)
            .env("PGPASSWORD", PASSWORD)
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop("immediate");
    }
}

impl Database {
    /// This database's URL (with the password; moonauth must never show it).
    pub fn url(&self) -> String {
        self.cluster.url(&self.name)
    }

    pub fn client(&self) -> postgres::Client {
        self.cluster.client(&self.name)
    }

    /// The whole database as `pg_dump` writes it (data included).
    pub fn dump(&self) -> String {
        self.cluster
            .run_tool("pg_dump", &self.name, &["--data-only", "--inserts"])
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Waits (bounded) until `f` holds.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

//! A fleet of hosts sharing one login through the PostgreSQL state (docs/fleet.md):
//! `moonauth renew` processes on several simulated hosts (a host is its own copy of the
//! login directory and its own state directory; the database is shared), against the
//! loopback token service whose refresh tokens rotate and whose grants are revoked on
//! reuse. One refresh per expiry for the whole fleet, no reuse; a holder killed or
//! stopped past its lease; a wrong key; an unreachable database; and no token in clear
//! text in any output or in the database.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime};

use moonauth::redact::Secret;
use moonauth::state::postgres::PgStore;
use serde_json::Value;

use crate::support::postgres::{self, Database, PASSWORD};
use crate::support::renew::*;

const T: Duration = Duration::from_secs(120);
const KEY: &str = "CANARYstatekey-0123456789abcdef0123456789";

fn ago(s: u64) -> SystemTime {
    SystemTime::now() - Duration::from_secs(s)
}

/// One simulated host: its copy of the login, its state directory.
struct Host {
    login: PathBuf,
    state: PathBuf,
}

fn hosts(root: &Path, n: usize) -> Vec<Host> {
    (0..n)
        .map(|i| Host {
            login: subdir(root, &format!("host{i}/login")),
            state: subdir(root, &format!("host{i}/state")),
        })
        .collect()
}

fn write_login(flavor: Flavor, dir: &Path, issued: &Issued) {
    match flavor {
        Flavor::Codex => write_codex_login(dir, issued, ago(30 * 86_400)),
        Flavor::Claude => write_claude_login(dir, issued),
    }
}

fn runtime(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Codex => "codex",
        Flavor::Claude => "claude",
    }
}

fn login_file(flavor: Flavor, dir: &Path) -> PathBuf {
    match flavor {
        Flavor::Codex => dir.join("auth.json"),
        Flavor::Claude => dir.join(".credentials.json"),
    }
}

/// `moonauth renew RUNTIME --dir LOGIN --json` on `host`, with the fleet's variables.
fn renew_on(
    svc: &TokenService,
    db_url: &str,
    host: &Host,
    flavor: Flavor,
    extra: &[(&str, &str)],
) -> std::process::Command {
    let url = svc.token_url();
    let mut vars = vec![
        ("MOONAUTH_CLAUDE_TOKEN_URL", url.as_str()),
        ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", url.as_str()),
        ("MOONAUTH_STATE_URL", db_url),
        ("MOONAUTH_STATE_KEY", KEY),
        ("MOONAUTH_STATE_DIR", host.state.to_str().unwrap()),
    ];
    vars.extend_from_slice(extra);
    let mut cmd = moonauth_cmd(&vars);
    cmd.args([
        "renew",
        runtime(flavor),
        "--dir",
        host.login.to_str().unwrap(),
        "--json",
    ]);
    cmd
}

fn status(out: &str) -> (String, String) {
    let v: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (
        v["logins"][0]["status"].as_str().unwrap_or_default().to_string(),
        v["logins"][0]["detail"].as_str().unwrap_or_default().to_string(),
    )
}

/// No issued token, canary, key or password in clear text anywhere in the database.
fn assert_database_holds_no_secret(db: &Database, svc: &TokenService) {
    let dump = db.dump();
    assert!(dump.contains("moonauth_generations"), "the dump has the tables");
    assert_no_tokens(&dump, svc);
    assert!(!dump.contains(KEY) && !dump.contains(PASSWORD));
}

fn fleet_refreshes_once(flavor: Flavor) {
    let Some(db) = postgres::database() else { return };
    let svc = TokenService::start(flavor);
    svc.set_delay(Duration::from_millis(300));
    let root = temp_root("fleet-");
    let hosts = hosts(root.path(), 3);
    let issued = svc.login(ago(30));
    for h in &hosts {
        write_login(flavor, &h.login, &issued);
    }
    let url = db.url();
    // 3 hosts x 4 processes, all at once, the access token expired everywhere.
    let children: Vec<Child> = hosts
        .iter()
        .flat_map(|h| (0..4).map(move |_| h))
        .map(|h| {
            renew_on(&svc, &url, h, flavor, &[])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut statuses = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_no_tokens(&text, &svc);
        assert!(out.status.success(), "{text}");
        statuses.push(status(&String::from_utf8_lossy(&out.stdout)));
    }
    let names: Vec<&str> = statuses.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(svc.refreshes(), 1, "one refresh for the fleet: {statuses:?}");
    assert_eq!(svc.reuses(), 0, "{statuses:?}");
    assert!(!svc.revoked(issued.grant));
    assert_eq!(names.iter().filter(|s| **s == "refreshed").count(), 1, "{statuses:?}");
    assert!(
        names
            .iter()
            .all(|s| ["refreshed", "refreshed-elsewhere", "fresh"].contains(s)),
        "{statuses:?}"
    );
    // Every host holds the one new login, byte for byte.
    let first = std::fs::read(login_file(flavor, &hosts[0].login)).unwrap();
    for h in &hosts {
        assert_eq!(std::fs::read(login_file(flavor, &h.login)).unwrap(), first);
    }
    let v: Value = serde_json::from_slice(&first).unwrap();
    let access = match flavor {
        Flavor::Codex => v["tokens"]["access_token"].as_str().unwrap().to_string(),
        Flavor::Claude => v["claudeAiOauth"]["accessToken"].as_str().unwrap().to_string(),
    };
    assert!(svc.accepts(&access));
    assert_ne!(access, issued.access_token);
    assert_database_holds_no_secret(&db, &svc);

    // A fourth host that joins later takes the published login up before anything else,
    // and never refreshes with its stale copy.
    let late = &hosts_at(root.path(), 3);
    write_login(flavor, &late.login, &issued);
    let out = run(&mut renew_on(&svc, &url, late, flavor, &[]), T);
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_eq!(status(&out.stdout).0, "fresh", "{}", out.text());
    assert_eq!(std::fs::read(login_file(flavor, &late.login)).unwrap(), first);
    assert_eq!((svc.refreshes(), svc.reuses()), (1, 0));
}

fn hosts_at(root: &Path, i: usize) -> Host {
    Host {
        login: subdir(root, &format!("host{i}/login")),
        state: subdir(root, &format!("host{i}/state")),
    }
}

#[test]
fn three_hosts_times_four_codex_renewals_refresh_once_with_no_reuse() {
    fleet_refreshes_once(Flavor::Codex);
}

#[test]
fn three_hosts_times_four_claude_renewals_refresh_once_with_no_reuse() {
    fleet_refreshes_once(Flavor::Claude);
}

/// Waits (bounded) until the token service has seen `n` token requests.
fn wait_for_requests(svc: &TokenService, n: usize) {
    postgres::wait_until("a token request", Duration::from_secs(60), || svc.token_requests() >= n);
}

#[test]
fn a_holder_stopped_past_its_lease_does_not_publish() {
    let Some(db) = postgres::database() else { return };
    let svc = TokenService::start(Flavor::Codex);
    svc.set_delay(Duration::from_millis(1500));
    let root = temp_root("fleet-stop-");
    let hosts = hosts(root.path(), 1);
    let issued = svc.login(ago(30));
    write_login(Flavor::Codex, &hosts[0].login, &issued);
    let url = db.url();
    let child = renew_on(
        &svc,
        &url,
        &hosts[0],
        Flavor::Codex,
        &[("MOONAUTH_FLEET_LEASE_TTL", "2s")],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // Stopped while its refresh request is in flight, for longer than its lease.
    wait_for_requests(&svc, 1);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_millis(3000));
    // The lease expired by the database's clock: another host can take it over.
    let other = PgStore::connect(&Secret::new(&url)).unwrap();
    let taken = other
        .try_lease("codex/default", "other-host:1", Duration::from_secs(60))
        .unwrap();
    assert!(taken.is_some(), "the stopped holder's lease expired");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_no_tokens(&format!("{stdout}{stderr}"), &svc);
    let (status, detail) = status(&stdout);
    assert_eq!(status, "refreshed", "{stdout}{stderr}");
    assert!(detail.contains("not published to the fleet"), "{detail}");
    assert!(detail.contains("expired or was taken over"), "{detail}");
    assert_eq!(
        other.newest_generation("codex/default").unwrap(),
        None,
        "nothing was published"
    );
}

#[test]
fn a_holder_killed_mid_refresh_leaves_a_lease_another_host_takes_over() {
    let Some(db) = postgres::database() else { return };
    let svc = TokenService::start(Flavor::Claude);
    svc.set_delay(Duration::from_millis(1500));
    let root = temp_root("fleet-kill-");
    let hosts = hosts(root.path(), 2);
    let issued = svc.login(ago(30));
    for h in &hosts {
        write_login(Flavor::Claude, &h.login, &issued);
    }
    let url = db.url();
    let short = [
        ("MOONAUTH_FLEET_LEASE_TTL", "2s"),
        ("MOONAUTH_RENEW_LOCK_TIMEOUT", "30s"),
    ];
    let mut holder = renew_on(&svc, &url, &hosts[0], Flavor::Claude, &short)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_requests(&svc, 1);
    holder.kill().unwrap(); // SIGKILL, mid-refresh
    holder.wait().unwrap();
    // The other host waits out the dead holder's lease (database time), then refreshes.
    let out = run(&mut renew_on(&svc, &url, &hosts[1], Flavor::Claude, &short), T);
    assert_no_tokens(&out.text(), &svc);
    assert!(!out.stdout.contains("stayed locked"), "{}", out.text());
    assert!(
        svc.token_requests() >= 2,
        "the second host contacted the token service: {}",
        out.text()
    );
    // Refreshed — or dead, when the killed holder's request had already rotated the
    // refresh token (the kill's own loss: the answer died with it).
    let (status, _) = status(&out.stdout);
    assert!(status == "refreshed" || status == "dead", "{}", out.text());
}

#[test]
fn a_wrong_key_is_a_clear_error_and_leaves_the_login_alone() {
    let Some(db) = postgres::database() else { return };
    let svc = TokenService::start(Flavor::Codex);
    let root = temp_root("fleet-key-");
    let hosts = hosts(root.path(), 2);
    let issued = svc.login(ago(30));
    for h in &hosts {
        write_login(Flavor::Codex, &h.login, &issued);
    }
    let url = db.url();
    let out = run(&mut renew_on(&svc, &url, &hosts[0], Flavor::Codex, &[]), T);
    assert_eq!(status(&out.stdout).0, "refreshed", "{}", out.text());
    let before = std::fs::read(login_file(Flavor::Codex, &hosts[1].login)).unwrap();
    let wrong = "CANARYwrongkey-ffffffffffffffffffffffffffff";
    let out = run(
        &mut renew_on(&svc, &url, &hosts[1], Flavor::Codex, &[("MOONAUTH_STATE_KEY", wrong)]),
        T,
    );
    assert_no_tokens(&out.text(), &svc);
    assert!(!out.text().contains(wrong));
    let (status, detail) = status(&out.stdout);
    assert_eq!(status, "failed", "{}", out.text());
    assert!(detail.contains("state key"), "{detail}");
    assert_eq!(
        std::fs::read(login_file(Flavor::Codex, &hosts[1].login)).unwrap(),
        before
    );
    assert_eq!(
        (svc.refreshes(), svc.reuses()),
        (1, 0),
        "the stale copy was not refreshed"
    );
}

#[test]
fn with_the_database_unreachable_nothing_is_refreshed_and_the_url_is_masked() {
    let svc = TokenService::start(Flavor::Codex);
    let root = temp_root("fleet-down-");
    let hosts = hosts(root.path(), 1);
    let issued = svc.login(ago(30));
    write_login(Flavor::Codex, &hosts[0].login, &issued);
    let before = std::fs::read(login_file(Flavor::Codex, &hosts[0].login)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://moon:{PASSWORD}@127.0.0.1:{port}/fleet?connect_timeout=2");
    let out = run(&mut renew_on(&svc, &url, &hosts[0], Flavor::Codex, &[]), T);
    assert_no_tokens(&out.text(), &svc);
    let (status, detail) = status(&out.stdout);
    assert_eq!(status, "failed", "{}", out.text());
    assert!(detail.contains("moon:[redacted]@127.0.0.1"), "{detail}");
    assert_eq!(svc.token_requests(), 0, "nothing refreshes without the fleet lease");
    assert_eq!(
        std::fs::read(login_file(Flavor::Codex, &hosts[0].login)).unwrap(),
        before
    );
}

/// `moonauth preflight --json` for a codex worker with a valid login, and `vars`.
fn preflight(vars: &[(&str, &str)]) -> (i32, Value, String) {
    use crate::support::sandbox::{code, json, Sandbox};
    let sb = Sandbox::new();
    sb.stand_ins(&["codex"]);
    let codex = sb.login("codex", "chatgpt-valid");
    let mut cmd = sb.moonauth();
    cmd.args(["preflight", "--json"])
        .env("MOONAUTH_WORKER_RUNTIME", "codex")
        .env("CODEX_HOME", &codex);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.timeout(T).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (code(&out), json(&out), text)
}

fn fleet_check(report: &Value) -> Option<&Value> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "fleet-state")
}

#[test]
fn preflight_says_how_the_fleet_database_is_only_when_one_is_configured() {
    // Without MOONAUTH_STATE_URL there is no such check (and nothing connects).
    let (code, report, _) = preflight(&[]);
    assert_eq!(code, 0);
    assert!(fleet_check(&report).is_none());

    // Unreachable: a warning naming the URL with its password masked; the worker starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("postgres://moon:{PASSWORD}@127.0.0.1:{port}/fleet?connect_timeout=2");
    let (code, report, text) = preflight(&[("MOONAUTH_STATE_URL", &down), ("MOONAUTH_STATE_KEY", KEY)]);
    assert_eq!(code, 0, "{text}");
    let check = fleet_check(&report).unwrap();
    assert_eq!(check["status"], "warn");
    assert!(
        check["detail"].as_str().unwrap().contains("moon:[redacted]@127.0.0.1"),
        "{check}"
    );
    assert!(!text.contains(PASSWORD) && !text.contains(KEY), "{text}");

    let Some(db) = postgres::database() else { return };
    let (code, report, text) = preflight(&[("MOONAUTH_STATE_URL", &db.url()), ("MOONAUTH_STATE_KEY", KEY)]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(fleet_check(&report).unwrap()["status"], "ok", "{text}");
    // Another key than the one the database was set up with fails with its code.
    let other = "CANARYotherkey-000000000000000000000000000";
    let (code, report, text) = preflight(&[("MOONAUTH_STATE_URL", &db.url()), ("MOONAUTH_STATE_KEY", other)]);
    assert_eq!(code, 22, "{text}");
    assert_eq!(fleet_check(&report).unwrap()["status"], "fail");
    assert!(!text.contains(other) && !text.contains(PASSWORD), "{text}");
}

/// Three hosts (three copies of one expired login, three state directories, one
/// database), eight real `codex` workers each through `moonauth run`: every worker
/// finishes, the fleet refreshes once, nothing is reused.
#[test]
fn real_cli_three_hosts_times_eight_codex_runs_finish_with_one_refresh() {
    use crate::renew_real_cli::{all_at_once, codex_exec_args, describe, finished, sandboxed};
    let Some(codex) = real_cli("codex") else { return };
    let Some(db) = postgres::database() else { return };
    let svc = TokenService::start(Flavor::Codex);
    svc.set_delay(Duration::from_millis(300));
    let root = temp_root("fleet-real-");
    let hosts = hosts(root.path(), 3);
    let issued = svc.login(ago(600));
    for h in &hosts {
        write_codex_login(&h.login, &issued, ago(30 * 86_400));
    }
    let home = subdir(root.path(), "home");
    let path = format!(
        "{}:{}",
        codex.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let url = db.url();
    let commands = hosts
        .iter()
        .flat_map(|h| (0..8).map(move |_| h))
        .map(|h| {
            let mut c = sandboxed(crate::support::moonauth_bin(), &home);
            c.env("PATH", &path)
                .env("CODEX_HOME", &h.login)
                .env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", svc.token_url())
                .env("MOONAUTH_STATE_URL", &url)
                .env("MOONAUTH_STATE_KEY", KEY)
                .env("MOONAUTH_STATE_DIR", &h.state)
                .args(["run", "codex", "--"])
                .args(codex_exec_args(&svc));
            c
        })
        .collect();
    let outs = all_at_once(commands);
    let done = finished(&outs);
    eprintln!(
        "3 hosts x 8 moonauth run codex: {done} of 24 finished; {} refreshes, {} reuses",
        svc.refreshes(),
        svc.reuses()
    );
    for o in &outs {
        assert_no_tokens(&o.text(), &svc);
    }
    assert_eq!(done, 24, "{}", describe(&outs));
    assert_eq!(svc.refreshes(), 1, "exactly one refresh for the fleet");
    assert_eq!(svc.reuses(), 0, "no reuse");
    assert!(!svc.revoked(issued.grant));
    assert_database_holds_no_secret(&db, &svc);
}

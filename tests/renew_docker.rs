//! Two containers that share one login volume renew it at the same moment: one refresh,
//! no reuse, and the login stays the worker's (uid 1000, mode 0600). Uses the local
//! test image from scripts/build-test-image.sh (busybox + this moonauth; nothing is
//! pulled) and `--network host`, so the containers reach the loopback token service.
//!
//! Without a Docker engine these tests print a skip notice, unless
//! MOONAUTH_REQUIRE_DOCKER=1, where they fail.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crate::support::moonauth_bin;
use crate::support::renew::*;
use serde_json::Value;

const IMAGE: &str = "moonauth-test-renew:latest";

fn docker_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let up = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !up {
            if std::env::var("MOONAUTH_REQUIRE_DOCKER").as_deref() == Ok("1") {
                panic!("MOONAUTH_REQUIRE_DOCKER=1 but no Docker engine answers (run scripts/docker-up.sh)");
            }
            eprintln!("SKIP: no Docker engine (set MOONAUTH_REQUIRE_DOCKER=1 to make this a failure)");
            return false;
        }
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-test-image.sh");
        let out = Command::new(script)
            .arg("--bin")
            .arg(moonauth_bin())
            .args(["--tag", IMAGE])
            .output()
            .expect("run scripts/build-test-image.sh");
        assert!(
            out.status.success(),
            "building the test image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        true
    })
}

/// A volume removed (with any container on it) when dropped.
struct Volume(String);

impl Volume {
    fn new(tag: &str) -> Volume {
        let name = format!("mt-renew-{tag}-{}-{:08x}", std::process::id(), fastrand::u32(..));
        let ok = Command::new("docker")
            .args(["volume", "create", &name])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "docker volume create");
        Volume(name)
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let ids = Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("volume={}", self.0)])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for id in ids.split_whitespace() {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
        let _ = Command::new("docker").args(["volume", "rm", "-f", &self.0]).output();
    }
}

fn docker(args: &[&str]) -> Output {
    let mut c = Command::new("docker");
    c.args(args);
    run(&mut c, Duration::from_secs(120))
}

/// Puts `bytes` at `path` in the volume, owned by the worker (1000:1000), mode 0600,
/// as `moonauth login` leaves a login.
fn put(volume: &Volume, mount: &str, file: &str, bytes: &[u8]) {
    let mut child = Command::new("docker")
        .args([
            "run",
            "--rm",
            "-i",
            "-v",
            &format!("{}:{mount}", volume.0),
            IMAGE,
            "sh",
            "-c",
        ])
        .arg(format!(
            "cat > {mount}/{file} && chown -R 1000:1000 {mount} && chmod 700 {mount} && chmod 600 {mount}/{file}"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    assert!(child.wait().unwrap().success());
}

fn two_containers_renew_at_once(flavor: Flavor) {
    if !docker_ready() {
        return;
    }
    let svc = TokenService::start(flavor);
    // A slow refresh, so the second container arrives while the first holds the lease.
    svc.set_delay(Duration::from_millis(500));
    let (runtime, mount, file, var) = match flavor {
        Flavor::Codex => (
            "codex",
            "/home/app/.codex",
            "auth.json",
            "CODEX_REFRESH_TOKEN_URL_OVERRIDE",
        ),
        Flavor::Claude => (
            "claude",
            "/home/app/.claude",
            ".credentials.json",
            "MOONAUTH_CLAUDE_TOKEN_URL",
        ),
    };
    let issued = svc.login(SystemTime::now() - Duration::from_secs(60));
    let staging = temp_root("renew-docker-");
    match flavor {
        Flavor::Codex => write_codex_login(
            staging.path(),
            &issued,
            SystemTime::now() - Duration::from_secs(9 * 86_400),
        ),
        Flavor::Claude => write_claude_login(staging.path(), &issued),
    }
    let volume = Volume::new(runtime);
    put(&volume, mount, file, &std::fs::read(staging.path().join(file)).unwrap());

    // Both wait for a start signal in the volume, then renew within ~10 ms of each other.
    let script =
        format!("while [ ! -e {mount}/.go ]; do sleep 0.01; done; exec moonauth renew {runtime} --dir {mount} --json");
    let url = svc.token_url();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let args: Vec<String> = [
                "run",
                "--rm",
                "--network",
                "host",
                "--user",
                "1000:1000",
                "-e",
                &format!("{var}={url}"),
                "-v",
                &format!("{}:{mount}", volume.0),
                IMAGE,
                "sh",
                "-c",
                &script,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            std::thread::spawn(move || {
                let mut c = Command::new("docker");
                c.args(&args);
                run(&mut c, Duration::from_secs(120))
            })
        })
        .collect();
    // Give both containers time to start, then signal them.
    std::thread::sleep(Duration::from_secs(3));
    let go = docker(&[
        "run",
        "--rm",
        "--user",
        "1000:1000",
        "-v",
        &format!("{}:{mount}", volume.0),
        IMAGE,
        "touch",
        &format!("{mount}/.go"),
    ]);
    assert_eq!(go.code, Some(0), "{}", go.text());
    let outs: Vec<Output> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut statuses = Vec::new();
    for o in &outs {
        assert_eq!(o.code, Some(0), "{}", o.text());
        assert_no_tokens(&o.text(), &svc);
        let v: Value = serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.text()));
        statuses.push(v["logins"][0]["status"].as_str().unwrap().to_string());
    }
    statuses.sort();
    eprintln!(
        "{runtime}: two containers: {statuses:?}, {} refresh(es), {} reuse(s)",
        svc.refreshes(),
        svc.reuses()
    );
    assert_eq!(statuses, ["refreshed", "refreshed-elsewhere"]);
    assert_eq!(svc.refreshes(), 1);
    assert_eq!(svc.reuses(), 0);

    let stat = docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:{mount}", volume.0),
        IMAGE,
        "sh",
        "-c",
        &format!("stat -c '%u:%g %a' {mount}/{file}; cat {mount}/{file}"),
    ]);
    assert_eq!(stat.code, Some(0), "{}", stat.text());
    let (first, rest) = stat.stdout.split_once('\n').unwrap();
    assert_eq!(first, "1000:1000 600", "the login stays the worker's");
    let v: Value = serde_json::from_str(rest).unwrap();
    let access = match flavor {
        Flavor::Codex => v["tokens"]["access_token"].as_str().unwrap().to_string(),
        Flavor::Claude => v["claudeAiOauth"]["accessToken"].as_str().unwrap().to_string(),
    };
    assert!(svc.accepts(&access), "the volume holds the new login");
}

#[test]
fn docker_two_containers_on_one_codex_volume_refresh_once() {
    two_containers_renew_at_once(Flavor::Codex);
}

#[test]
fn docker_two_containers_on_one_claude_volume_refresh_once() {
    two_containers_renew_at_once(Flavor::Claude);
}

//! Docker behaviour against the real engine: volumes, sync, status, the interactive
//! login over a real pseudo-terminal, init, and an unreachable engine. Images cannot be
//! pulled: `scripts/build-test-image.sh` builds a local one (busybox, this moonauth,
//! stand-in `claude`/`codex` whose logins write files in the real formats).
//!
//! The apply step brings a static moonauth into its helper container: the tests use
//! MOONAUTH_STATIC_BIN when set (CI builds it once), else build it once per test process
//! with `scripts/build-static.sh`.
//!
//! Without an engine these tests print a skip notice, unless MOONAUTH_REQUIRE_DOCKER=1
//! (CI), where they fail.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::support::{moonauth_bin, static_moonauth, static_moonauth_if_ready};

pub(crate) const IMAGE: &str = "moonauth-test:latest";
/// The test image with moonauth removed: a worker image that lacks it.
const IMAGE_WITHOUT_MOONAUTH: &str = "moonauth-test-no-moonauth:latest";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(path: &str) -> PathBuf {
    repo().join("tests/fixtures").join(path)
}

/// True when an engine answers; builds the test image once per test binary.
pub(crate) fn docker_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let up = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !up {
            if std::env::var("MOONAUTH_REQUIRE_DOCKER").as_deref() == Ok("1") {
                panic!("MOONAUTH_REQUIRE_DOCKER=1 but no Docker engine answers (run scripts/docker-up.sh)");
            }
            eprintln!("SKIP: no Docker engine (set MOONAUTH_REQUIRE_DOCKER=1 to make this a failure)");
            return false;
        }
        let out = Command::new(repo().join("scripts/build-test-image.sh"))
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
        static_moonauth();
        true
    })
}

/// Commits the test image minus /usr/local/bin/moonauth as [`IMAGE_WITHOUT_MOONAUTH`],
/// once per test process (nothing is pulled; the test image may have changed).
fn image_without_moonauth() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let name = format!("mt-strip-moonauth-{}", std::process::id());
        let docker = |args: &[&str]| {
            let out = Command::new("docker").args(args).output().expect("docker");
            assert!(
                out.status.success(),
                "docker {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        docker(&["run", "--name", &name, IMAGE, "rm", "/usr/local/bin/moonauth"]);
        docker(&["commit", &name, IMAGE_WITHOUT_MOONAUTH]);
        docker(&["rm", "-f", &name]);
    });
    IMAGE_WITHOUT_MOONAUTH
}

/// Volumes made by one test; removed when dropped, whatever happened.
pub(crate) struct Volumes(pub(crate) Vec<String>);

impl Volumes {
    pub(crate) fn new(test: &str, n: usize) -> Volumes {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        Volumes(
            (0..n)
                .map(|i| format!("mt-{test}-{}-{seq}-{i}", std::process::id()))
                .collect(),
        )
    }
}

impl Drop for Volumes {
    fn drop(&mut self) {
        for v in &self.0 {
            // Containers created on them first (tests make some on purpose).
            let ids = Command::new("docker")
                .args(["ps", "-aq", "--filter", &format!("volume={v}")])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            for id in ids.split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-f", id]).output();
            }
            let _ = Command::new("docker").args(["volume", "rm", "-f", v]).output();
        }
    }
}

/// moonauth with a clean environment: only what the test sets.
fn cmd(vars: &[(&str, &str)]) -> Command {
    let mut c = Command::new(moonauth_bin());
    c.env_clear();
    c.env("PATH", std::env::var("PATH").unwrap_or_default());
    c.env("MOONAUTH_IMAGE", IMAGE);
    // The static moonauth this process built or was given (scripts/test exports it).
    let given = std::env::var_os("MOONAUTH_STATIC_BIN").filter(|p| !p.is_empty());
    if let Some(bin) = static_moonauth_if_ready().map(|p| p.as_os_str().to_owned()).or(given) {
        c.env("MOONAUTH_STATIC_BIN", bin);
    }
    for (k, v) in vars {
        c.env(k, v);
    }
    c.stdin(Stdio::null());
    c
}

fn run(vars: &[(&str, &str)], args: &[&str]) -> Output {
    let out = cmd(vars).args(args).output().expect("run moonauth");
    assert_no_canary(&out);
    out
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_no_canary(o: &Output) {
    let all = text(o);
    assert!(
        !all.to_lowercase().contains("canary"),
        "a token reached the output:\n{all}"
    );
}

/// Runs a command in a throwaway container of the test image (tests may use the CLI).
pub(crate) fn in_container(volume: &str, mount: &str, script: &str) -> String {
    let out = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &format!("{volume}:{mount}"),
            IMAGE,
            "sh",
            "-c",
            script,
        ])
        .output()
        .expect("docker run");
    assert!(
        out.status.success(),
        "container failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() && e.file_name() != ".keep" {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn docker_unreachable_engine_is_exit_6_with_a_hint() {
    // Needs no engine: that is the point.
    for host in ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:1"] {
        let out = run(&[("DOCKER_HOST", host)], &["status"]);
        assert_eq!(out.status.code(), Some(6), "{host}: {}", text(&out));
        let t = text(&out);
        assert!(t.contains("cannot reach the Docker engine") && t.contains(host), "{t}");
        assert!(t.contains("hint:"), "{t}");
    }
    let out = run(&[("DOCKER_HOST", "ftp://x")], &["volumes", "ls"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("DOCKER_HOST"));
}

#[test]
fn docker_volume_lifecycle_labels_idempotence_and_refusals() {
    if !docker_ready() {
        return;
    }
    let vols = Volumes::new("life", 3);
    let (claude, codex, foreign) = (&vols.0[0], &vols.0[1], &vols.0[2]);
    let env = [
        ("CLAUDE_VOLUME_NAME", claude.as_str()),
        ("CODEX_VOLUME_NAME", codex.as_str()),
    ];

    let out = run(&env, &["volumes", "ensure", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let outcomes: Vec<String> = json(&out)["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes, ["created", "created"]);
    let labels = Command::new("docker")
        .args(["volume", "inspect", "--format", "{{json .Labels}}", claude])
        .output()
        .unwrap();
    let labels: serde_json::Value = serde_json::from_slice(&labels.stdout).unwrap();
    assert_eq!(labels["io.moonauth.managed-by"], "moonauth");
    assert_eq!(labels["io.moonauth.runtime"], "claude");
    assert_eq!(labels["io.moonauth.account"], "default");

    // Idempotent.
    let out = run(&env, &["volumes", "ensure", "--json"]);
    let again: Vec<String> = json(&out)["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(again, ["existed", "existed"]);

    let out = run(&env, &["volumes", "ls"]);
    assert!(text(&out).contains(claude.as_str()) && text(&out).contains(codex.as_str()));

    // rm asks for --force.
    let out = run(&env, &["volumes", "rm", codex]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--force"));

    // rm refuses a volume in use, naming the container.
    let name = format!("{claude}-user");
    let created = Command::new("docker")
        .args(["create", "--name", &name, "-v", &format!("{claude}:/x"), IMAGE, "true"])
        .output()
        .unwrap();
    assert!(created.status.success());
    let out = run(&env, &["volumes", "rm", "--force", claude]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert!(text(&out).contains(&name), "{}", text(&out));
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();

    // rm refuses a volume moonauth did not label.
    assert!(Command::new("docker")
        .args(["volume", "create", foreign])
        .output()
        .unwrap()
        .status
        .success());
    let out = run(&env, &["volumes", "rm", "--force", foreign]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert!(text(&out).contains("not created by moonauth"));

    let out = run(&env, &["volumes", "rm", "--force", codex]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let gone = Command::new("docker")
        .args(["volume", "inspect", codex])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "volume still there");
}

/// The codes of `volumes rm`, against the real engine, are the ones docs/exit-codes.md
/// gives: 2 without --force (whatever the volume's state) and for a name that breaks
/// Docker's rule (nothing is removed), 7 for a volume in use or not moonauth's.
#[test]
fn docker_volumes_rm_exit_codes_match_the_docs() {
    if !docker_ready() {
        return;
    }
    let usage = i32::from(moonauth::exit::Exit::Usage.code());
    let docker_failed = i32::from(moonauth::exit::Exit::DockerFailed.code());
    let doc = std::fs::read_to_string(repo().join("docs/exit-codes.md")).unwrap();
    let line = doc
        .lines()
        .find(|l| l.contains("`moonauth volumes"))
        .expect("docs/exit-codes.md has a line on volumes");
    assert!(
        line.contains(&format!("`rm` gives {usage} without `--force`")),
        "{line}"
    );
    assert!(doc.contains(&format!("{docker_failed} for a volume in use")), "{doc}");

    let vols = Volumes::new("rmcodes", 2);
    let (managed, foreign) = (&vols.0[0], &vols.0[1]);
    let env = [("CLAUDE_VOLUME_NAME", managed.as_str())];
    let out = run(&env, &["volumes", "ensure", "claude"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(Command::new("docker")
        .args(["volume", "create", foreign])
        .output()
        .unwrap()
        .status
        .success());
    let exists = |v: &str| {
        Command::new("docker")
            .args(["volume", "inspect", v])
            .output()
            .unwrap()
            .status
            .success()
    };

    // Without --force: 2, for a managed, an unlabelled and a missing volume alike.
    for v in [managed.as_str(), foreign.as_str(), "mt-rmcodes-never-created"] {
        let out = run(&env, &["volumes", "rm", v]);
        assert_eq!(out.status.code(), Some(usage), "{v}: {}", text(&out));
        assert!(text(&out).contains("--force"), "{}", text(&out));
    }
    // A name that breaks Docker's rule never reaches the API path (where
    // `../volumes/NAME` and `NAME?x=1` would both address NAME).
    for bad in [
        format!("../volumes/{managed}"),
        format!("{managed}?x=1"),
        format!("{managed}/"),
        "_x".to_string(),
        "a".to_string(),
    ] {
        let out = run(&env, &["volumes", "rm", "--force", &bad]);
        assert_eq!(out.status.code(), Some(usage), "{bad}: {}", text(&out));
        assert!(
            text(&out).contains("[a-zA-Z0-9_.-]"),
            "the rule is named: {}",
            text(&out)
        );
        assert!(exists(managed), "{bad} removed {managed}");
    }
    // One bad name among good ones: nothing is removed.
    let out = run(&env, &["volumes", "rm", "--force", managed, "x?x=1"]);
    assert_eq!(out.status.code(), Some(usage), "{}", text(&out));
    assert!(exists(managed));
    // A bad name from the environment is a usage error naming the variable.
    let out = run(
        &[("CLAUDE_VOLUME_NAME", "../volumes/x")],
        &["volumes", "ensure", "claude"],
    );
    assert_eq!(out.status.code(), Some(usage), "{}", text(&out));
    assert!(text(&out).contains("CLAUDE_VOLUME_NAME"), "{}", text(&out));

    // With --force: 7 for an unlabelled volume, 0 for a missing one, 0 when removed.
    let out = run(&env, &["volumes", "rm", "--force", foreign]);
    assert_eq!(out.status.code(), Some(docker_failed), "{}", text(&out));
    let out = run(&env, &["volumes", "rm", "--force", "mt-rmcodes-never-created"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(&env, &["volumes", "rm", "--force", managed]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!exists(managed));
}

#[test]
fn docker_sync_then_status_round_trip_with_owner_and_modes() {
    if !docker_ready() {
        return;
    }
    let vols = Volumes::new("sync", 2);
    let (claude, codex) = (&vols.0[0], &vols.0[1]);
    let env = [
        ("CLAUDE_VOLUME_NAME", claude.as_str()),
        ("CODEX_VOLUME_NAME", codex.as_str()),
    ];

    let home = tempfile::tempdir().unwrap();
    let src = home.path().join(".claude");
    copy_dir(&fixture("claude/valid-max"), &src);
    std::fs::write(src.join("settings.json"), "{\"theme\":\"dark\"}").unwrap();
    std::fs::create_dir_all(src.join("projects/-work")).unwrap();
    std::fs::write(src.join("projects/-work/session.jsonl"), "{}").unwrap();
    std::fs::write(home.path().join(".claude.json"), "{\"hasCompletedOnboarding\":true}").unwrap();

    let out = run(
        &env,
        &["login", "claude", "--sync-from", src.to_str().unwrap(), "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    let v = &report["volumes"][0];
    assert_eq!(v["volume"], claude.as_str());
    assert_eq!(v["login"]["class"], "oauth-valid");
    assert_eq!(v["login"]["plan"], "max");
    assert!(
        text(&out).contains("share one refresh token"),
        "the copy warning is missing"
    );

    let listing = in_container(
        claude,
        "/v",
        "cd /v && stat -c '%n %u %g %a' . .credentials.json .claude.json settings.json && ls -A",
    );
    assert!(listing.contains(". 1000 1000 700"), "{listing}");
    assert!(listing.contains(".credentials.json 1000 1000 600"), "{listing}");
    assert!(listing.contains(".claude.json 1000 1000 600"), "{listing}");
    assert!(listing.contains("settings.json 1000 1000 600"), "{listing}");
    assert!(
        !listing.contains("projects"),
        "transcripts must not be copied: {listing}"
    );
    assert!(!listing.contains(".moonauth-staging"), "staging left behind: {listing}");

    // status reads the same verdict straight from the volume.
    let out = run(&env, &["status", "claude", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["volumes"][0]["login"]["class"], "oauth-valid");

    // A second sync from a source without settings.json removes the stale one.
    std::fs::remove_file(src.join("settings.json")).unwrap();
    let out = run(&env, &["login", "claude", "--sync-from", src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listing = in_container(claude, "/v", "ls -A /v");
    assert!(!listing.contains("settings.json"), "{listing}");
    assert!(listing.contains(".credentials.json"), "{listing}");

    // Codex: the volume keeps its login in a file.
    let src = home.path().join("codex-src");
    copy_dir(&fixture("codex/chatgpt-valid"), &src);
    let out = run(
        &env,
        &["login", "codex", "--sync-from", src.to_str().unwrap(), "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["volumes"][0]["login"]["class"], "oauth-valid");
    let config = in_container(codex, "/v", "cat /v/config.toml; stat -c '%u %a' /v/auth.json");
    assert!(config.contains("cli_auth_credentials_store = \"file\""), "{config}");
    assert!(config.contains("1000 600"), "{config}");

    // Both volumes in one status.
    let out = run(&env, &["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["volumes"].as_array().unwrap().len(), 2);
}

#[test]
fn docker_sync_refuses_keychain_logins_and_keeps_the_old_login() {
    if !docker_ready() {
        return;
    }
    let vols = Volumes::new("refuse", 1);
    let claude = &vols.0[0];
    let env = [("CLAUDE_VOLUME_NAME", claude.as_str())];
    let good = tempfile::tempdir().unwrap();
    copy_dir(&fixture("claude/valid-max"), good.path());
    let out = run(&env, &["login", "claude", "--sync-from", good.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let before = in_container(claude, "/v", "sha256sum /v/.credentials.json");

    // A macOS-style directory: settings but the login in the Keychain.
    let keychain = tempfile::tempdir().unwrap();
    std::fs::write(keychain.path().join("settings.json"), "{}").unwrap();
    let out = run(
        &env,
        &["login", "claude", "--sync-from", keychain.path().to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert!(text(&out).contains("Keychain"), "{}", text(&out));

    // An expired login that cannot refresh is not worth copying either.
    let expired = tempfile::tempdir().unwrap();
    copy_dir(&fixture("claude/expired-no-refresh"), expired.path());
    let out = run(
        &env,
        &["login", "claude", "--sync-from", expired.path().to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));

    assert_eq!(in_container(claude, "/v", "sha256sum /v/.credentials.json"), before);
}

/// Issue 13 #2: `--sync-from` used to run `moonauth internal apply-login` in the worker
/// image, so it failed with "executable file not found" in an image without moonauth and
/// with "MOONAUTH_IMAGE is not set" without one. The static moonauth now brings itself.
#[test]
fn docker_sync_needs_no_worker_image_nor_moonauth_in_one() {
    if !docker_ready() {
        return;
    }
    let vols = Volumes::new("noimage", 2);
    let (claude, codex) = (&vols.0[0], &vols.0[1]);
    let env = [
        ("CLAUDE_VOLUME_NAME", claude.as_str()),
        ("CODEX_VOLUME_NAME", codex.as_str()),
    ];
    let src = tempfile::tempdir().unwrap();
    copy_dir(&fixture("claude/valid-max"), src.path());
    std::fs::write(src.path().join(".claude.json"), "{\"hasCompletedOnboarding\":true}").unwrap();

    // No worker image at all.
    let out = cmd(&env)
        .env_remove("MOONAUTH_IMAGE")
        .args(["login", "claude", "--sync-from", src.path().to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_no_canary(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("MOONAUTH_IMAGE"), "{}", text(&out));
    assert_eq!(json(&out)["volumes"][0]["login"]["class"], "oauth-valid");
    let listing = in_container(
        claude,
        "/v",
        "cd /v && stat -c '%n %u %g %a' . .credentials.json .claude.json && ls -A",
    );
    assert!(listing.contains(". 1000 1000 700"), "{listing}");
    assert!(listing.contains(".credentials.json 1000 1000 600"), "{listing}");
    assert!(listing.contains(".claude.json 1000 1000 600"), "{listing}");
    assert!(!listing.contains(".moonauth-staging"), "staging left behind: {listing}");
    let out = cmd(&env)
        .env_remove("MOONAUTH_IMAGE")
        .args(["status", "claude", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["volumes"][0]["login"]["class"], "oauth-valid");

    // A worker image without moonauth: what failed with "executable file not found".
    let src = tempfile::tempdir().unwrap();
    copy_dir(&fixture("codex/chatgpt-valid"), src.path());
    let image = image_without_moonauth();
    let out = run(
        &[("MOONAUTH_IMAGE", image), env[0], env[1]],
        &["login", "codex", "--sync-from", src.path().to_str().unwrap(), "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("executable file not found"), "{}", text(&out));
    assert_eq!(json(&out)["volumes"][0]["login"]["class"], "oauth-valid");
    let listing = in_container(codex, "/v", "stat -c '%n %u %g %a' /v /v/auth.json /v/config.toml");
    assert!(listing.contains("/v 1000 1000 700"), "{listing}");
    assert!(listing.contains("/v/auth.json 1000 1000 600"), "{listing}");
    assert!(listing.contains("/v/config.toml 1000 1000 600"), "{listing}");
}

/// The apply step of the CLI's own login also runs in the helper container: a worker
/// image needs the CLI, not moonauth.
#[test]
fn docker_interactive_login_in_a_worker_image_without_moonauth() {
    if !docker_ready() {
        return;
    }
    let vols = Volumes::new("nomoonauth", 1);
    let claude = &vols.0[0];
    let image = image_without_moonauth();
    let env = [
        ("CLAUDE_VOLUME_NAME", claude.as_str()),
        ("MOONAUTH_IMAGE", image),
        ("TERM", "xterm"),
    ];
    let mut pty = Pty::spawn(&env, &["login", "claude"]);
    pty.wait_for("Paste code here", Duration::from_secs(60));
    pty.type_keys(b"good\r");
    let (code, screen) = pty.finish(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("oauth-valid"), "{screen}");
    let listing = in_container(claude, "/v", "stat -c '%n %u %g %a' /v /v/.credentials.json; ls -A /v");
    assert!(listing.contains("/v 1000 1000 700"), "{listing}");
    assert!(listing.contains("/v/.credentials.json 1000 1000 600"), "{listing}");
    assert!(!listing.contains(".moonauth-staging"), "{listing}");
}

/// A dynamically linked binary in MOONAUTH_STATIC_BIN is refused before the engine is
/// asked anything (DOCKER_HOST points nowhere), with the variable and the fix named.
#[test]
fn docker_login_refuses_a_dynamic_moonauth_static_bin_and_says_how_to_fix_it() {
    let own = moonauth_bin();
    let mut head = Vec::new();
    std::fs::File::open(own)
        .unwrap()
        .take(64 * 1024)
        .read_to_end(&mut head)
        .unwrap();
    if moonauth::docker::helper::check_static_elf(&head).is_ok() {
        eprintln!("SKIP: this moonauth is itself static, so MOONAUTH_STATIC_BIN is never read");
        return;
    }
    let usage = i32::from(moonauth::exit::Exit::Usage.code());
    let src = tempfile::tempdir().unwrap();
    copy_dir(&fixture("claude/valid-max"), src.path());
    let sync = ["login", "claude", "--sync-from", src.path().to_str().unwrap()];
    let nowhere = ("DOCKER_HOST", "unix:///nonexistent/docker.sock");

    let dynamic = own.to_str().unwrap();
    let out = run(&[nowhere, ("MOONAUTH_STATIC_BIN", dynamic)], &sync);
    assert_eq!(out.status.code(), Some(usage), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains(&format!("MOONAUTH_STATIC_BIN={dynamic}")), "{t}");
    assert!(t.contains("dynamically linked"), "{t}");
    assert!(t.contains("scripts/build-static.sh"), "{t}");

    let out = run(&[nowhere, ("MOONAUTH_STATIC_BIN", "/nonexistent/moonauth")], &sync);
    assert_eq!(out.status.code(), Some(usage), "{}", text(&out));
    assert!(
        text(&out).contains("MOONAUTH_STATIC_BIN=/nonexistent/moonauth"),
        "{}",
        text(&out)
    );

    let out = cmd(&[nowhere])
        .env_remove("MOONAUTH_STATIC_BIN")
        .args(sync)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(usage), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("MOONAUTH_STATIC_BIN is not set") && t.contains("scripts/build-static.sh"),
        "{t}"
    );
}

/// moonauth running on a pseudo-terminal, as a person would run it.
struct Pty {
    child: std::process::Child,
    master: std::fs::File,
    screen: Arc<Mutex<String>>,
}

impl Pty {
    fn spawn(vars: &[(&str, &str)], args: &[&str]) -> Pty {
        let winsize = nix::pty::Winsize {
            ws_row: 40,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&winsize), None).expect("openpty");
        let slave: std::fs::File = pty.slave.into();
        let mut c = cmd(vars);
        c.args(args)
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        let child = c.spawn().expect("spawn moonauth on a pty");
        let master: std::fs::File = pty.master.into();
        let screen = Arc::new(Mutex::new(String::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Pty { child, master, screen }
    }

    fn wait_for(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.screen.lock().unwrap().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{needle:?} did not appear on the terminal:\n{}",
            self.screen.lock().unwrap()
        );
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.master.write_all(keys).unwrap();
        self.master.flush().unwrap();
    }

    fn finish(mut self, within: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                let screen = self.screen.lock().unwrap().clone();
                assert!(
                    !screen.to_lowercase().contains("canary"),
                    "a token reached the terminal:\n{screen}"
                );
                return (status.code(), screen);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("moonauth did not finish:\n{}", self.screen.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn docker_interactive_login_over_a_real_terminal() {
    if !docker_ready() {
        return;
    }
    let vols = Volumes::new("tty", 2);
    let (claude, codex) = (&vols.0[0], &vols.0[1]);
    let env = [
        ("CLAUDE_VOLUME_NAME", claude.as_str()),
        ("CODEX_VOLUME_NAME", codex.as_str()),
        // Must not reach the login container.
        ("ANTHROPIC_API_KEY", "sk-ant-api03-not-for-the-login"),
        ("TERM", "xterm"),
    ];
    let mut pty = Pty::spawn(&env, &["login", "claude"]);
    pty.wait_for("Paste code here", Duration::from_secs(60));
    pty.type_keys(b"good\r");
    let (code, screen) = pty.finish(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{screen}");
    // The lessons of the scripts this replaces: worker uid, keys blanked, HOME in the volume.
    assert!(screen.contains("standin: uid=1000 gid=1000"), "{screen}");
    assert!(screen.contains("standin: ANTHROPIC_API_KEY=no"), "{screen}");
    assert!(screen.contains("standin: home=/home/app/.claude/"), "{screen}");
    assert!(screen.contains("oauth-valid"), "{screen}");
    let listing = in_container(
        claude,
        "/v",
        "stat -c '%n %u %a' /v/.credentials.json /v/.claude.json; ls -A /v",
    );
    assert!(listing.contains("/v/.credentials.json 1000 600"), "{listing}");
    assert!(listing.contains("/v/.claude.json 1000 600"), "{listing}");
    assert!(!listing.contains(".moonauth-staging"), "{listing}");

    let mut pty = Pty::spawn(&env, &["login", "codex"]);
    pty.wait_for("type the result", Duration::from_secs(60));
    pty.type_keys(b"good\r");
    let (code, screen) = pty.finish(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{screen}");
    // Device-code login (the browser callback cannot reach a container), file store set.
    assert!(screen.contains("standin: codex login --device-auth"), "{screen}");
    assert!(screen.contains("standin: file_store=yes"), "{screen}");
    let out = run(&env, &["status", "codex", "--json"]);
    assert_eq!(
        json(&out)["volumes"][0]["login"]["class"],
        "oauth-valid",
        "{}",
        text(&out)
    );
}

#[test]
fn docker_failed_or_aborted_login_leaves_the_old_login_byte_for_byte() {
    if !docker_ready() {
        return;
    }
    let vols = Volumes::new("keep", 1);
    let claude = &vols.0[0];
    let env = [("CLAUDE_VOLUME_NAME", claude.as_str()), ("TERM", "xterm")];
    let good = tempfile::tempdir().unwrap();
    copy_dir(&fixture("claude/valid-max"), good.path());
    std::fs::write(good.path().join(".claude.json"), "{\"keep\":1}").unwrap();
    let out = run(&env, &["login", "claude", "--sync-from", good.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let snapshot = "cd /v && sha256sum .credentials.json .claude.json && stat -c '%n %u %g %a' .credentials.json .claude.json && ls -A";
    let before = in_container(claude, "/v", snapshot);

    // A wrong code: the CLI fails.
    let mut pty = Pty::spawn(&env, &["login", "claude"]);
    pty.wait_for("Paste code here", Duration::from_secs(60));
    pty.type_keys(b"wrong\r");
    let (code, screen) = pty.finish(Duration::from_secs(60));
    assert_eq!(code, Some(8), "{screen}");
    assert!(screen.contains("unchanged"), "{screen}");
    assert_eq!(in_container(claude, "/v", snapshot), before);

    // Ctrl-C at the prompt: the keystroke reaches the container's terminal.
    let mut pty = Pty::spawn(&env, &["login", "claude"]);
    pty.wait_for("Paste code here", Duration::from_secs(60));
    pty.type_keys(&[0x03]);
    let (code, screen) = pty.finish(Duration::from_secs(60));
    assert_eq!(code, Some(8), "{screen}");
    assert_eq!(in_container(claude, "/v", snapshot), before);
}

#[test]
fn docker_login_without_a_terminal_is_exit_9() {
    if !docker_ready() {
        return;
    }
    // The image and the static moonauth are there: only the terminal is missing.
    static_moonauth();
    let out = run(&[("CLAUDE_VOLUME_NAME", "mt-never-created")], &["login", "claude"]);
    assert_eq!(out.status.code(), Some(9), "{}", text(&out));
    assert!(text(&out).contains("--sync-from"), "{}", text(&out));
}

#[test]
fn docker_init_fixes_owner_and_modes_and_changes_nothing_the_second_time() {
    if !docker_ready() {
        return;
    }
    let vols = Volumes::new("init", 2);
    let (claude, codex) = (&vols.0[0], &vols.0[1]);
    // Root-owned, too-open files, as a hand-made volume often is.
    let prepare = "cd /v && printf '{\"claudeAiOauth\":{\"accessToken\":\"a\",\"scopes\":[\"user:inference\"]}}' > .credentials.json && chmod 644 .credentials.json && mkdir -p projects && chmod 755 /v";
    in_container(claude, "/v", prepare);
    let before = in_container(claude, "/v", "sha256sum /v/.credentials.json");
    let init = |extra: &[&str]| {
        let mut args = vec![
            "run".to_string(),
            "--rm".into(),
            "--network".into(),
            "none".into(),
            "-u".into(),
            "0".into(),
            "-v".into(),
            format!("{claude}:/home/app/.claude"),
            "-v".into(),
            format!("{codex}:/home/app/.codex"),
            IMAGE.into(),
            "moonauth".into(),
            "init".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Command::new("docker").args(&args).output().unwrap()
    };
    let first = init(&["--json"]);
    assert!(first.status.success(), "{}", text(&first));
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert!(
        report["dirs"][0]["changes"].as_array().unwrap().len() + report["dirs"][1]["changes"].as_array().unwrap().len()
            > 0
    );

    let listing = in_container(
        claude,
        "/v",
        "stat -c '%n %u %g %a' /v /v/.credentials.json /v/projects",
    );
    assert!(listing.contains("/v 1000 1000 700"), "{listing}");
    assert!(listing.contains("/v/.credentials.json 1000 1000 600"), "{listing}");
    assert!(listing.contains("/v/projects 1000 1000"), "{listing}");
    assert_eq!(
        in_container(claude, "/v", "sha256sum /v/.credentials.json"),
        before,
        "init rewrote credentials"
    );
    let config = in_container(codex, "/v", "cat /v/config.toml; stat -c '%u' /v");
    assert!(
        config.contains("cli_auth_credentials_store = \"file\"") && config.contains("1000"),
        "{config}"
    );

    let second = init(&["--json"]);
    assert!(second.status.success(), "{}", text(&second));
    let report: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    for d in report["dirs"].as_array().unwrap() {
        assert_eq!(d["changes"].as_array().unwrap().len(), 0, "second run changed {d}");
    }
}

#[test]
fn docker_status_of_missing_volumes_says_how_to_fix() {
    if !docker_ready() {
        return;
    }
    let vols = Volumes::new("missing", 1);
    let env = [("CLAUDE_VOLUME_NAME", vols.0[0].as_str())];
    let out = run(&env, &["status", "claude"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("volume does not exist"));
    assert!(text(&out).contains("moonauth login claude"));
}

#[test]
fn docker_login_of_a_stored_account_clears_its_relogin_mark() {
    if !docker_ready() {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap();
    let vols = Volumes::new("relogin", 1);
    let account = format!("acct{}", std::process::id());
    let volume = format!("claude_auth_{account}");
    let _cleanup = Volumes(vec![volume.clone(), vols.0[0].clone()]);
    let env = [("MOONAUTH_STATE_DIR", state_dir)];
    let out = run(
        &env,
        &[
            "accounts",
            "add",
            &account,
            "--runtime",
            "claude",
            "--dir",
            "/home/app/.claude",
            "--volume",
            &volume,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let store = moonauth::state::store::Store::open(state.path()).unwrap();
    store
        .update(Duration::from_secs(5), |s| {
            s.record_auth_failure(&account, "revoked", std::time::SystemTime::now())
        })
        .unwrap()
        .unwrap();
    let flag =
        |store: &moonauth::state::store::Store| store.read_unlocked().unwrap().account(&account).unwrap().needs_relogin;
    assert!(flag(&store));

    let src = tempfile::tempdir().unwrap();
    copy_dir(&fixture("claude/valid-max"), src.path());
    let out = run(
        &env,
        &[
            "login",
            "claude",
            "--account",
            &account,
            "--sync-from",
            src.path().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!flag(&store), "a fresh login must clear the re-login mark");
}

/// FNV-1a 64, as moonauth's refresh fingerprints a login file.
fn fnv1a64(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

#[test]
fn docker_status_shows_a_login_whose_refresh_was_refused_as_needing_a_new_login() {
    if !docker_ready() {
        return;
    }
    let vols = Volumes::new("dead", 1);
    let claude = &vols.0[0];
    let env = [("CLAUDE_VOLUME_NAME", claude.as_str())];
    let src = tempfile::tempdir().unwrap();
    copy_dir(&fixture("claude/valid-max"), src.path());
    let out = run(&env, &["login", "claude", "--sync-from", src.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(&env, &["status", "claude"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The record moonauth renew leaves when the token service refuses the refresh token.
    let login = std::fs::read(src.path().join(".credentials.json")).unwrap();
    let record = serde_json::json!({
        "schema": "moonauth.renew-state.v1",
        "runtime": "claude",
        "consecutive_failures": 1,
        "dead": true,
        "last_error": "invalid_grant",
        "last_failure_at": "2026-11-24T00:00:00Z",
        "login_fingerprint": fnv1a64(&login),
    });
    let mut put = Command::new("docker")
        .args([
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            "-v",
            &format!("{claude}:/v"),
            IMAGE,
        ])
        .args(["sh", "-c", "cat > /v/.moonauth-renew.json"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    put.stdin
        .take()
        .unwrap()
        .write_all(record.to_string().as_bytes())
        .unwrap();
    assert!(put.wait().unwrap().success());

    let out = run(&env, &["status", "claude", "--json"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let v = json(&out);
    assert_eq!(v["volumes"][0]["login"]["usable"], false, "{v}");
    assert!(
        v["volumes"][0]["login"]["detail"]
            .as_str()
            .unwrap()
            .contains("needs a new login"),
        "{v}"
    );
    assert_eq!(v["volumes"][0]["fix"], "moonauth login claude");
}

#[test]
fn docker_status_names_the_claude_account_read_from_the_volume() {
    if !docker_ready() {
        return;
    }
    let vols = Volumes::new("ident", 1);
    let claude = &vols.0[0];
    let env = [("CLAUDE_VOLUME_NAME", claude.as_str())];
    let home = tempfile::tempdir().unwrap();
    // CLAUDE_CONFIG_DIR is the volume, so .claude.json lives in it beside the credentials.
    let src = home.path().join("claude-config");
    copy_dir(&fixture("claude/valid-max"), &src);
    std::fs::write(
        src.join(".claude.json"),
        r#"{"oauthAccount":{"emailAddress":"vol-dev@example.com","organizationName":"Acme Research"}}"#,
    )
    .unwrap();
    let out = run(&env, &["login", "claude", "--sync-from", src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = run(&env, &["status", "claude", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j = json(&out);
    let v = j["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["volume"] == claude.as_str())
        .unwrap()
        .clone();
    assert_eq!(v["login"]["email"], "vol-dev@example.com", "{v:#}");
    assert_eq!(v["login"]["organization"], "Acme Research", "{v:#}");
    let out = run(&env, &["status", "claude"]);
    assert!(
        text(&out).contains("Account: vol-dev@example.com (Acme Research)"),
        "{}",
        text(&out)
    );
}

/// A volume labelled as moonauth's, as another deployment (or an older moonauth) made it.
fn labelled_volume(name: &str, runtime: &str, account: &str) {
    let out = Command::new("docker")
        .args([
            "volume",
            "create",
            "--label",
            "io.moonauth.managed-by=moonauth",
            "--label",
            &format!("io.moonauth.runtime={runtime}"),
            "--label",
            &format!("io.moonauth.account={account}"),
            name,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn docker_volumes_ls_lists_every_labelled_volume_and_the_missing_configured_ones() {
    if !docker_ready() {
        return;
    }
    let vols = Volumes::new("ls", 3);
    let (missing, other_default, long) = (&vols.0[0], &vols.0[1], &vols.0[2]);
    // A long name: the columns must still line up.
    let long = format!("{long}-with-a-name-longer-than-any-column-width");
    let _cleanup = Volumes(vec![long.clone()]);
    // Both carry the default account: `status` (which other tests run at the same time on
    // this engine) reports only this deployment's default volumes, so these stay out of it.
    labelled_volume(other_default, "codex", "default");
    labelled_volume(&long, "claude", "default");
    let env = [("CLAUDE_VOLUME_NAME", missing.as_str())];

    let out = run(&env, &["volumes", "ls", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j = json(&out);
    assert_eq!(j["schema"], "moonauth.volumes-ls.v1");
    assert_eq!(j["ok"], true, "ok matches exit 0: {j:#}");
    assert_eq!(j["exit_code"], 0, "{j:#}");
    let find = |name: &str| {
        j["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["volume"] == name)
            .unwrap_or_else(|| panic!("{name} is not listed: {j:#}"))
            .clone()
    };
    let v = find(other_default);
    assert_eq!(
        (v["runtime"].as_str(), v["account"].as_str()),
        (Some("codex"), Some("default"))
    );
    assert_eq!(
        (v["exists"].as_bool(), v["managed"].as_bool()),
        (Some(true), Some(true))
    );
    let v = find(&long);
    assert_eq!(
        (v["runtime"].as_str(), v["account"].as_str()),
        (Some("claude"), Some("default"))
    );
    let v = find(missing);
    assert_eq!(
        (v["runtime"].as_str(), v["exists"].as_bool()),
        (Some("claude"), Some(false))
    );

    let out = run(&env, &["volumes", "ls"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let header = table.lines().next().unwrap();
    let column = |name: &str| header.find(name).unwrap_or_else(|| panic!("no {name}: {header}"));
    for line in table
        .lines()
        .filter(|l| l.contains(&long) || l.contains(missing.as_str()))
    {
        for (name, cell) in [
            ("RUNTIME", "claude"),
            ("MANAGED", if line.contains(&long) { "yes" } else { "-" }),
        ] {
            assert_eq!(
                line.get(column(name)..column(name) + cell.len()),
                Some(cell),
                "{name} column misaligned:\n{table}"
            );
        }
    }
    let missing_line = table.lines().find(|l| l.starts_with(missing.as_str())).unwrap();
    assert!(missing_line.contains("missing"), "{table}");
}

#[test]
fn docker_account_volumes_derive_from_the_configured_volume_name_and_rm_speaks_json() {
    if !docker_ready() {
        return;
    }
    let vols = Volumes::new("acct", 1);
    let configured = &vols.0[0];
    let account = format!("a{}", std::process::id());
    let derived = format!("{configured}_{account}");
    // Cleaned up whichever name a build derives.
    let _cleanup = Volumes(vec![derived.clone(), format!("claude_auth_{account}")]);
    let env = [("CLAUDE_VOLUME_NAME", configured.as_str())];
    let out = run(&env, &["volumes", "ensure", "claude", "--account", &account, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j = json(&out);
    assert_eq!(j["schema"], "moonauth.volumes-ensure.v1", "{j:#}");
    assert_eq!((j["ok"].as_bool(), j["exit_code"].as_u64()), (Some(true), Some(0)));
    assert_eq!(j["volumes"][0]["name"], derived.as_str(), "{j:#}");

    let out = run(
        &env,
        &["volumes", "rm", "--force", "--json", &derived, "mt-acct-never-created"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j = json(&out);
    assert_eq!(j["schema"], "moonauth.volumes-rm.v1", "{j:#}");
    assert_eq!((j["ok"].as_bool(), j["exit_code"].as_u64()), (Some(true), Some(0)));
    assert_eq!(j["volumes"][0]["outcome"], "removed", "{j:#}");
    assert_eq!(j["volumes"][1]["outcome"], "absent", "{j:#}");
}

#[test]
fn a_failed_login_message_without_a_volume_has_no_gap() {
    let err = moonauth::error::Error::LoginFailed {
        what: "no .credentials.json".into(),
        volume: String::new(),
        hint: None,
    };
    assert_eq!(err.to_string(), "no .credentials.json; the previous login is unchanged");
    let err = moonauth::error::Error::LoginFailed {
        what: "x".into(),
        volume: "claude_auth_volume".into(),
        hint: None,
    };
    assert_eq!(
        err.to_string(),
        "x; the previous login in claude_auth_volume is unchanged"
    );
}

#[test]
fn docker_login_names_a_missing_image_before_asking_for_a_terminal() {
    if !docker_ready() {
        return;
    }
    static_moonauth();
    // No terminal (stdin is /dev/null) and an image the engine does not have: the image
    // is what to fix first, so it is what the person hears (exit 7, not 9).
    let out = cmd(&[("CODEX_VOLUME_NAME", "moonauth-test-never-made")])
        .args(["login", "codex", "--image", "moonauth-missing-image:1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("moonauth-missing-image:1"), "{stderr}");
    assert!(!stderr.contains("terminal"), "{stderr}");
    // With the image present, the missing terminal is what stops it.
    let out = cmd(&[("CODEX_VOLUME_NAME", "moonauth-test-never-made")])
        .args(["login", "codex"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(9), "{}", String::from_utf8_lossy(&out.stderr));
}

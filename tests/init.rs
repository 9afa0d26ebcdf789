//! `moonauth init` on a host directory through the built binary: `--dry-run` reports
//! what it would change and changes nothing; `--yes` is what lets it run on a host.
//! (Whether this machine is a container is decided by `init::container_marker`, unit
//! tested on a temp root; the refusal itself is pinned there too.)

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn init(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("moonauth").unwrap();
    cmd.env_clear()
        .env("CODEX_HOME", root.join("home/app/.codex"))
        .env("CLAUDE_CONFIG_DIR", root.join("claude"))
        .env("MOONAUTH_WORKER_UID", nix::unistd::geteuid().as_raw().to_string())
        .env("MOONAUTH_WORKER_GID", nix::unistd::getegid().as_raw().to_string())
        .current_dir(root)
        .arg("init")
        .args(args);
    cmd
}

/// Every path under `root` with its owner and mode, to compare before and after.
fn snapshot(root: &Path) -> Vec<(String, u32, u32, u32)> {
    let mut out = Vec::new();
    for entry in walk(root) {
        let m = fs::symlink_metadata(&entry).unwrap();
        out.push((entry.display().to_string(), m.uid(), m.gid(), m.mode()));
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut all = vec![dir.to_path_buf()];
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            all.extend(walk(&p));
        } else {
            all.push(p);
        }
    }
    all
}

#[test]
fn init_dry_run_lists_the_changes_and_makes_none() {
    let root = tempfile::tempdir().unwrap();
    let claude = root.path().join("claude");
    fs::create_dir_all(claude.join("projects")).unwrap();
    fs::set_permissions(&claude, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        claude.join(".credentials.json"),
        r#"{"claudeAiOauth":{"accessToken":"a"}}"#,
    )
    .unwrap();
    fs::set_permissions(claude.join(".credentials.json"), fs::Permissions::from_mode(0o644)).unwrap();
    let before = snapshot(root.path());

    let out = init(root.path(), &["--dry-run", "--json"]).assert().success();
    let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(snapshot(root.path()), before, "a dry run changed something");
    assert!(
        !root.path().join("home").exists(),
        "a dry run created the Codex directory"
    );
    assert_eq!(report["dry_run"], true);
    let changes: Vec<(String, String)> = report["dirs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["changes"].as_array().unwrap().clone())
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["what"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |path: &Path, what: &str| {
        changes
            .iter()
            .any(|(p, w)| p == &path.display().to_string() && w == what)
    };
    assert!(has(&claude, "mode 755 -> 700"), "{changes:?}");
    assert!(has(&claude.join(".credentials.json"), "mode 644 -> 600"), "{changes:?}");
    let codex = root.path().join("home/app/.codex");
    assert!(has(&codex, "created directory"), "{changes:?}");
    assert!(
        has(&codex.join("config.toml"), "set cli_auth_credentials_store = \"file\""),
        "{changes:?}"
    );

    let human = init(root.path(), &["--dry-run"]).assert().success();
    let human = String::from_utf8_lossy(&human.get_output().stdout).into_owned();
    assert!(human.contains("would make"), "{human}");
    assert_eq!(snapshot(root.path()), before);

    // The same changes, made for real (--yes: this may run on a host), then none left.
    let made = init(root.path(), &["--yes", "--json"]).assert().success();
    let made: Value = serde_json::from_slice(&made.get_output().stdout).unwrap();
    assert_eq!(made["dry_run"], false);
    assert_eq!(fs::metadata(&claude).unwrap().mode() & 0o777, 0o700);
    let again = init(root.path(), &["--dry-run", "--json"]).assert().success();
    let again: Value = serde_json::from_slice(&again.get_output().stdout).unwrap();
    assert!(
        again["dirs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["changes"].as_array().unwrap().is_empty()),
        "{again}"
    );
}

#[test]
fn init_help_names_yes_and_dry_run() {
    let out = Command::cargo_bin("moonauth")
        .unwrap()
        .args(["init", "--help"])
        .assert()
        .success();
    let help = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(help.contains("--yes") && help.contains("/.dockerenv"), "{help}");
    assert!(help.contains("--dry-run"), "{help}");
}

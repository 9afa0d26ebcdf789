//! `moonauth init`, the compose init service: run as root with the auth volumes
//! mounted, it creates the login directories, hands them to the worker user, fixes
//! modes and makes Codex keep its login in a file. It never deletes a file and never
//! rewrites a credentials file; a second run changes nothing. A dry run reports the
//! same changes and makes none; [`container_marker`] tells a container from a host.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::agents::codex;
use crate::agents::Runtime;
use crate::config::Config;
use crate::credentials;
use crate::credentials::apply;
use crate::error::{Error, Result};
use crate::fsx::{self, Dir, Owned};

/// One change `init` made (or, as non-root, would have needed to make).
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub path: PathBuf,
    pub what: String,
}

/// What `init` did to one login directory.
#[derive(Debug, Clone, Serialize)]
pub struct DirReport {
    /// The runtime whose login directory it is; absent for the account store.
    pub runtime: Option<Runtime>,
    pub dir: PathBuf,
    pub changes: Vec<Change>,
}

/// What init did, per login directory: the report of `moonauth init`.
#[derive(Debug, Serialize)]
pub struct InitReport {
    pub schema: &'static str,
    pub uid: u32,
    pub gid: u32,
    /// `--dry-run`: the changes are what init would make; none was made.
    pub dry_run: bool,
    pub dirs: Vec<DirReport>,
}

/// The rule [`container_marker`] applies, in words for the refusal.
pub const CONTAINER_RULE: &str =
    "no /.dockerenv, no /run/.containerenv, and /proc/1/cgroup names no docker, containerd, kubepods, libpod or lxc";

/// What says that `root` is a container's root filesystem, or `None` on a host: the
/// files Docker (`/.dockerenv`) and Podman (`/run/.containerenv`) put there, else a
/// cgroup path of process 1 that names a container runtime (cgroup v1; under cgroup v2
/// the path is `/` in a container, so the files decide). `root` is `/` except in tests.
pub fn container_marker(root: &Path) -> Option<String> {
    for marker in [".dockerenv", "run/.containerenv"] {
        if root.join(marker).exists() {
            return Some(format!("/{marker}"));
        }
    }
    let cgroup = fs::read_to_string(root.join("proc/1/cgroup")).unwrap_or_default();
    let runtimes = ["docker", "containerd", "kubepods", "libpod", "lxc"];
    cgroup
        .lines()
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .find_map(|path| runtimes.iter().find(|r| path.contains(*r)))
        .map(|r| format!("/proc/1/cgroup names {r}"))
}

/// Refuses to run `init` on a host (no [`container_marker`] under `root`) unless `yes`:
/// the error lists the changes a dry run found, so the person sees what `--yes` does.
pub fn refuse_outside_container(root: &Path, yes: bool, would: &[DirReport]) -> Result<()> {
    if yes || container_marker(root).is_some() {
        return Ok(());
    }
    let mut changes: Vec<String> = would
        .iter()
        .flat_map(|d| &d.changes)
        .map(|c| format!("  {}: {}", c.path.display(), c.what))
        .collect();
    if changes.is_empty() {
        changes.push("  nothing (every directory is ready)".into());
    }
    Err(Error::InitOutsideContainer {
        rule: CONTAINER_RULE.into(),
        changes: changes.join("\n"),
    })
}

/// Prepares the login directory of each runtime for the worker uid/gid; with `dry_run`,
/// reports the same changes and makes none.
pub fn init(config: &Config, runtimes: &[Runtime], dry_run: bool) -> Result<Vec<DirReport>> {
    let uid = config.docker.uid.value;
    let gid = config.docker.gid.value;
    let mut reports = Vec::new();
    for &runtime in runtimes {
        let Some(settings) = config.runtime(runtime) else {
            continue;
        };
        let dir = settings.login_dir.value.clone();
        let mut changes = Vec::new();
        prepare_dir(runtime, &dir, uid, gid, dry_run, &mut changes)?;
        reports.push(DirReport {
            runtime: Some(runtime),
            dir,
            changes,
        });
    }
    // The account store, when one is configured for the fleet (a shared volume).
    if let Some(state) = config
        .state_dir
        .as_ref()
        .filter(|s| s.source != crate::source::Source::Default)
    {
        let mut changes = Vec::new();
        prepare_state_dir(&state.value, uid, gid, dry_run, &mut changes)?;
        reports.push(DirReport {
            runtime: None,
            dir: state.value.clone(),
            changes,
        });
    }
    Ok(reports)
}

fn prepare_state_dir(dir: &Path, uid: u32, gid: u32, dry_run: bool, changes: &mut Vec<Change>) -> Result<()> {
    if !create_missing(dir, uid, gid, dry_run, changes)? {
        return Ok(());
    }
    let handle = open(dir)?;
    own(&handle, None, uid, gid, Some(0o700), dry_run, changes)?;
    own_tree(&handle, uid, gid, dry_run, changes)
}

fn prepare_dir(
    runtime: Runtime,
    dir: &Path,
    uid: u32,
    gid: u32,
    dry_run: bool,
    changes: &mut Vec<Change>,
) -> Result<()> {
    let exists = create_missing(dir, uid, gid, dry_run, changes)?;
    let handle = if exists {
        let handle = open(dir)?;
        own(&handle, None, uid, gid, Some(0o700), dry_run, changes)?;
        own_tree(&handle, uid, gid, dry_run, changes)?;
        let cred = credentials::login_file(runtime.require_login()?, Path::new(""));
        let cred = cred.to_string_lossy();
        if handle
            .stat_entry(&cred)
            .ok()
            .flatten()
            .is_some_and(|st| fsx::kind_of(&st) == "regular file")
        {
            own(&handle, Some(&cred), uid, gid, Some(0o600), dry_run, changes)?;
        }
        Some(handle)
    } else {
        None
    };
    if runtime == Runtime::Codex {
        let path = dir.join(codex::CONFIG_FILE);
        let Some(handle) = handle else {
            // A dry run of a directory still to be created: its config.toml is new too.
            changes.push(Change {
                path,
                what: "set cli_auth_credentials_store = \"file\"".into(),
            });
            return Ok(());
        };
        let current = handle
            .read(codex::CONFIG_FILE, credentials::MAX_CONFIG_BYTES)
            .map_err(|refused| {
                Error::io(
                    format!("read {}", path.display()),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, refused.to_string()),
                )
            })?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        if credentials::codex::with_file_store(current.as_deref()).is_some() {
            if !dry_run {
                apply::ensure_codex_file_store(dir, uid, gid)?;
            }
            changes.push(Change {
                path,
                what: "set cli_auth_credentials_store = \"file\"".into(),
            });
        }
    }
    Ok(())
}

/// Creates `dir` and its missing parents; the ones created here belong to the worker.
/// Returns whether `dir` exists now (a dry run only reports what it would create).
fn create_missing(dir: &Path, uid: u32, gid: u32, dry_run: bool, changes: &mut Vec<Change>) -> Result<bool> {
    let mut missing = Vec::new();
    let mut p = dir.to_path_buf();
    while fs::symlink_metadata(&p).is_err() {
        missing.push(p.clone());
        if !p.pop() {
            break;
        }
    }
    if dry_run && !missing.is_empty() {
        let (euid, egid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
        for created in missing.iter().rev() {
            changes.push(Change {
                path: created.clone(),
                what: "created directory".into(),
            });
            if (euid, egid) != (uid, gid) {
                changes.push(Change {
                    path: created.clone(),
                    what: format!("owner {euid}:{egid} -> {uid}:{gid}"),
                });
            }
        }
        changes.push(Change {
            path: dir.to_path_buf(),
            what: "mode -> 700".into(),
        });
        return Ok(false);
    }
    for created in missing.iter().rev() {
        fs::create_dir(created).map_err(|e| Error::io(format!("create {}", created.display()), e))?;
        changes.push(Change {
            path: created.clone(),
            what: "created directory".into(),
        });
        // Just made here, so it is ours to give away (never through a link: the name
        // is opened as a directory without following one).
        let (parent, name) = (created.parent().unwrap_or(Path::new("/")), created.file_name());
        if let Some(name) = name {
            own(
                &open(parent)?,
                Some(&name.to_string_lossy()),
                uid,
                gid,
                None,
                false,
                changes,
            )?;
        }
    }
    if !fs::metadata(dir).map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Error::io(
            format!("prepare {}", dir.display()),
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "exists and is not a directory"),
        ));
    }
    Ok(true)
}

fn open(dir: &Path) -> Result<Dir> {
    Dir::open(dir).map_err(|e| Error::io(format!("open {}", dir.display()), e))
}

/// Gives `name` in `dir` (or `dir` itself) to the worker, with `mode` when given, and
/// records what changed. Links are left alone, and so are files with other hard links
/// (their other names may be anywhere): both are reported, never followed.
fn own(
    dir: &Dir,
    name: Option<&str>,
    uid: u32,
    gid: u32,
    mode: Option<u32>,
    dry_run: bool,
    changes: &mut Vec<Change>,
) -> Result<()> {
    let path = name.map_or_else(|| dir.path().to_path_buf(), |n| dir.path().join(n));
    let outcome = match name {
        _ if dry_run => would_own(dir, name, uid, gid, mode),
        Some(n) => dir.own_entry(n, uid, gid, mode),
        None => dir.own_self(uid, gid, mode),
    };
    let outcome = outcome.map_err(|e| permission(&path, e))?;
    match outcome {
        Owned::Unchanged => {}
        Owned::Changed {
            uid: old_uid,
            gid: old_gid,
            mode: old_mode,
        } => {
            if (old_uid, old_gid) != (uid, gid) {
                push_once(
                    changes,
                    Change {
                        path: path.clone(),
                        what: format!("owner {old_uid}:{old_gid} -> {uid}:{gid}"),
                    },
                );
            }
            if let Some(mode) = mode.filter(|m| *m != old_mode) {
                push_once(
                    changes,
                    Change {
                        path,
                        what: format!("mode {old_mode:o} -> {mode:o}"),
                    },
                );
            }
        }
        Owned::LeftLink => push_once(
            changes,
            Change {
                path,
                what: "left alone: a symbolic link (never followed)".into(),
            },
        ),
        Owned::LeftHardLinked => push_once(
            changes,
            Change {
                path,
                what: "left alone: a file with other hard links (its other names may be anywhere)".into(),
            },
        ),
    }
    Ok(())
}

/// Records a change once: a dry run sees the login file's owner change twice (from the
/// tree walk and from the login file's own step), since the first is not made.
fn push_once(changes: &mut Vec<Change>, change: Change) {
    if !changes.iter().any(|c| c.path == change.path && c.what == change.what) {
        changes.push(change);
    }
}

/// What [`Dir::own_entry`] (or `own_self`) would do, found by looking only: the same
/// rules (links and hard-linked files left alone, only files and directories owned).
fn would_own(dir: &Dir, name: Option<&str>, uid: u32, gid: u32, mode: Option<u32>) -> io::Result<Owned> {
    let st = match name {
        Some(n) => match dir.stat_entry(n)? {
            Some(st) => st,
            None => return Ok(Owned::Unchanged),
        },
        None => dir.stat()?,
    };
    let kind = fsx::kind_of(&st);
    if kind == "symbolic link" {
        return Ok(Owned::LeftLink);
    }
    if kind != "regular file" && kind != "directory" {
        return Ok(Owned::Unchanged);
    }
    if kind == "regular file" && st.st_nlink > 1 {
        return Ok(Owned::LeftHardLinked);
    }
    let current_mode = st.st_mode & 0o7777;
    let changed = (st.st_uid, st.st_gid) != (uid, gid) || mode.is_some_and(|m| m != current_mode);
    Ok(if changed {
        Owned::Changed {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: current_mode,
        }
    } else {
        Owned::Unchanged
    })
}

/// Gives everything below `dir` to the worker, one directory handle at a time: a
/// directory swapped for a link meanwhile is not entered.
fn own_tree(dir: &Dir, uid: u32, gid: u32, dry_run: bool, changes: &mut Vec<Change>) -> Result<()> {
    let names = dir
        .entries()
        .map_err(|e| Error::io(format!("read {}", dir.path().display()), e))?;
    for name in names {
        own(dir, Some(&name), uid, gid, None, dry_run, changes)?;
        let is_dir = dir
            .stat_entry(&name)
            .ok()
            .flatten()
            .is_some_and(|st| fsx::kind_of(&st) == "directory");
        if is_dir {
            match dir.open_child(&name) {
                Ok(child) => own_tree(&child, uid, gid, dry_run, changes)?,
                // Replaced by a link or removed meanwhile: not entered.
                Err(e) => tracing::debug!(dir = %dir.path().join(&name).display(), error = %e, "not entered"),
            }
        }
    }
    Ok(())
}

fn permission(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        context: format!(
            "cannot give {} to the worker user (moonauth init must run as root: `user: root` in the init service)",
            path.display()
        ),
        source: e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use crate::source::Env;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    fn changes(reports: &[DirReport]) -> Vec<Change> {
        reports.iter().flat_map(|d| d.changes.clone()).collect()
    }

    #[test]
    fn a_container_is_told_by_its_marker_files_or_cgroup_and_a_host_by_none() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(container_marker(root.path()), None);
        fs::create_dir_all(root.path().join("proc/1")).unwrap();
        fs::write(root.path().join("proc/1/cgroup"), "0::/\n1:cpu:/\n").unwrap();
        assert_eq!(container_marker(root.path()), None, "cgroup v2 alone says nothing");
        fs::write(root.path().join("proc/1/cgroup"), "12:pids:/docker/0123abcd\n").unwrap();
        assert_eq!(
            container_marker(root.path()).as_deref(),
            Some("/proc/1/cgroup names docker")
        );
        fs::remove_file(root.path().join("proc/1/cgroup")).unwrap();
        fs::create_dir_all(root.path().join("run")).unwrap();
        fs::write(root.path().join("run/.containerenv"), "").unwrap();
        assert_eq!(container_marker(root.path()).as_deref(), Some("/run/.containerenv"));
        fs::write(root.path().join(".dockerenv"), "").unwrap();
        assert_eq!(container_marker(root.path()).as_deref(), Some("/.dockerenv"));
    }

    #[test]
    fn init_on_a_host_refuses_without_yes_naming_what_it_would_change() {
        let host = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let claude = root.path().join("home/app/.claude");
        let c = config(&root.path().join("home/app/.codex"), &claude);
        let would = init(&c, &[Runtime::Claude], true).unwrap();
        let err = refuse_outside_container(host.path(), false, &would).unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::Usage);
        let text = err.to_string();
        assert!(text.contains("not a container"), "{text}");
        assert!(
            text.contains(&format!("{}: created directory", claude.display())),
            "{text}"
        );
        let hint = err.hint().unwrap_or_default();
        assert!(hint.contains("--yes") && hint.contains("--dry-run"), "{hint}");
        assert!(!claude.exists(), "nothing is made before the refusal");
        refuse_outside_container(host.path(), true, &would).unwrap();
        fs::write(host.path().join(".dockerenv"), "").unwrap();
        refuse_outside_container(host.path(), false, &would).unwrap();
    }

    #[test]
    fn a_dry_run_reports_owner_and_mode_changes_and_makes_none() {
        let root = tempfile::tempdir().unwrap();
        let claude = root.path().join("claude");
        fs::create_dir_all(claude.join("projects")).unwrap();
        fs::set_permissions(&claude, fs::Permissions::from_mode(0o755)).unwrap();
        let cred = claude.join(".credentials.json");
        fs::write(&cred, "{}").unwrap();
        fs::set_permissions(&cred, fs::Permissions::from_mode(0o644)).unwrap();
        // As root, another owner too (the worker uid of the compose file).
        let (uid, gid) = if nix::unistd::geteuid().is_root() {
            ("1000".to_string(), "1000".to_string())
        } else {
            (
                nix::unistd::geteuid().as_raw().to_string(),
                nix::unistd::getegid().as_raw().to_string(),
            )
        };
        let env = Env::from_pairs([
            ("CODEX_HOME", root.path().join("codex").display().to_string()),
            ("CLAUDE_HOME", claude.display().to_string()),
            ("MOONAUTH_WORKER_UID", uid.clone()),
            ("MOONAUTH_WORKER_GID", gid),
        ]);
        let c = Config::resolve(&env, &Overrides::default()).unwrap();
        let before = (fs::metadata(&claude).unwrap(), fs::metadata(&cred).unwrap());
        let said: Vec<String> = changes(&init(&c, &[Runtime::Claude, Runtime::Codex], true).unwrap())
            .iter()
            .map(|c| format!("{}: {}", c.path.display(), c.what))
            .collect();
        let after = (fs::metadata(&claude).unwrap(), fs::metadata(&cred).unwrap());
        assert_eq!((before.0.mode(), before.0.uid()), (after.0.mode(), after.0.uid()));
        assert_eq!((before.1.mode(), before.1.uid()), (after.1.mode(), after.1.uid()));
        assert!(!root.path().join("codex").exists());
        assert!(
            said.contains(&format!("{}: mode 755 -> 700", claude.display())),
            "{said:?}"
        );
        assert!(
            said.contains(&format!("{}: mode 644 -> 600", cred.display())),
            "{said:?}"
        );
        if uid == "1000" {
            assert!(
                said.iter().any(|s| s.starts_with(&format!(
                    "{}: owner 0:0 -> 1000:1000",
                    claude.join("projects").display()
                ))),
                "{said:?}"
            );
        }
        // And a real run makes exactly the changes the dry run listed.
        let made: Vec<String> = changes(&init(&c, &[Runtime::Claude, Runtime::Codex], false).unwrap())
            .iter()
            .map(|c| format!("{}: {}", c.path.display(), c.what))
            .filter(|s| !s.contains("/codex"))
            .collect();
        let listed: Vec<String> = said.into_iter().filter(|s| !s.contains("/codex")).collect();
        assert_eq!(made, listed);
    }

    #[test]
    fn init_prepares_a_configured_state_dir() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("var/lib/moonauth");
        let env = Env::from_pairs([
            ("CODEX_HOME", root.path().join("c").display().to_string()),
            ("MOONAUTH_STATE_DIR", state.display().to_string()),
            ("MOONAUTH_WORKER_UID", nix::unistd::geteuid().as_raw().to_string()),
            ("MOONAUTH_WORKER_GID", nix::unistd::getegid().as_raw().to_string()),
        ]);
        let c = Config::resolve(&env, &Overrides::default()).unwrap();
        let reports = init(&c, &[Runtime::Codex], false).unwrap();
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[1].runtime, None);
        assert_eq!(fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
    }

    fn config(codex: &Path, claude: &Path) -> Config {
        let uid = nix::unistd::geteuid().as_raw().to_string();
        let gid = nix::unistd::getegid().as_raw().to_string();
        let env = Env::from_pairs([
            ("CODEX_HOME", codex.display().to_string()),
            ("CLAUDE_HOME", claude.display().to_string()),
            ("MOONAUTH_WORKER_UID", uid),
            ("MOONAUTH_WORKER_GID", gid),
        ]);
        Config::resolve(&env, &Overrides::default()).unwrap()
    }

    #[test]
    fn init_creates_fixes_and_is_idempotent_without_touching_credentials() {
        let root = tempfile::tempdir().unwrap();
        let codex_dir = root.path().join("home/app/.codex");
        let claude_dir = root.path().join(".claude");
        fs::create_dir(&claude_dir).unwrap();
        fs::set_permissions(&claude_dir, fs::Permissions::from_mode(0o755)).unwrap();
        let creds = br#"{"claudeAiOauth":{"accessToken":"a"}}"#;
        fs::write(claude_dir.join(".credentials.json"), creds).unwrap();
        fs::set_permissions(claude_dir.join(".credentials.json"), fs::Permissions::from_mode(0o644)).unwrap();
        let c = config(&codex_dir, &claude_dir);

        let first = init(&c, &[Runtime::Codex, Runtime::Claude], false).unwrap();
        assert!(codex_dir.is_dir());
        assert!(first.iter().all(|r| !r.changes.is_empty()));
        assert_eq!(fs::read(claude_dir.join(".credentials.json")).unwrap(), creds);
        let mode = fs::metadata(claude_dir.join(".credentials.json")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::metadata(&claude_dir).unwrap().mode() & 0o777, 0o700);
        let config_toml = fs::read_to_string(codex_dir.join("config.toml")).unwrap();
        assert!(config_toml.contains("cli_auth_credentials_store = \"file\""));

        let second = init(&c, &[Runtime::Codex, Runtime::Claude], false).unwrap();
        assert!(second.iter().all(|r| r.changes.is_empty()), "{second:?}");
    }

    #[test]
    fn init_as_root_never_follows_links_nor_gives_away_hard_linked_files() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: needs root");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let outside = root.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let victim = outside.join("passwd");
        fs::write(&victim, "root:x:0:0").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
        let claude_dir = root.path().join("claude");
        fs::create_dir(&claude_dir).unwrap();
        // What a worker could leave in its volume for the next init.
        symlink(&victim, claude_dir.join(".credentials.json")).unwrap();
        symlink(&outside, claude_dir.join("projects")).unwrap();
        fs::hard_link(&victim, claude_dir.join("hard")).unwrap();
        let codex_dir = root.path().join("codex");
        fs::create_dir(&codex_dir).unwrap();
        symlink(&victim, codex_dir.join("config.toml")).unwrap();

        let worker = |codex: &Path, claude: &Path| {
            let env = Env::from_pairs([
                ("CODEX_HOME", codex.display().to_string()),
                ("CLAUDE_HOME", claude.display().to_string()),
                ("MOONAUTH_WORKER_UID", "1000".to_string()),
                ("MOONAUTH_WORKER_GID", "1000".to_string()),
            ]);
            Config::resolve(&env, &Overrides::default()).unwrap()
        };
        let reports = init(&worker(&codex_dir, &claude_dir), &[Runtime::Claude], false).unwrap();
        let meta = fs::metadata(&victim).unwrap();
        assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o777), (0, 0, 0o644));
        assert_eq!(fs::metadata(&outside).unwrap().uid(), 0);
        let said: Vec<_> = reports[0].changes.iter().map(|c| c.what.as_str()).collect();
        assert!(said.iter().any(|w| w.contains("symbolic link")), "{said:?}");
        assert!(said.iter().any(|w| w.contains("hard links")), "{said:?}");
        assert_eq!(fs::metadata(&claude_dir).unwrap().uid(), 1000);

        // Codex's config.toml as a link is refused, not read or written through.
        assert!(init(&worker(&codex_dir, &claude_dir), &[Runtime::Codex], false).is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "root:x:0:0");
    }
}

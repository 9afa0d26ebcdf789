//! `moonauth init`, the compose init service: run as root with the auth volumes
//! mounted, it creates the login directories, hands them to the worker user, fixes
//! modes and makes Codex keep its login in a file. It never deletes a file and never
//! rewrites a credentials file; a second run changes nothing.

use std::fs;
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
    pub dirs: Vec<DirReport>,
}

/// Prepares the login directory of each runtime for the worker uid/gid.
pub fn init(config: &Config, runtimes: &[Runtime]) -> Result<Vec<DirReport>> {
    let uid = config.docker.uid.value;
    let gid = config.docker.gid.value;
    let mut reports = Vec::new();
    for &runtime in runtimes {
        let Some(settings) = config.runtime(runtime) else {
            continue;
        };
        let dir = settings.login_dir.value.clone();
        let mut changes = Vec::new();
        prepare_dir(runtime, &dir, uid, gid, &mut changes)?;
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
        prepare_state_dir(&state.value, uid, gid, &mut changes)?;
        reports.push(DirReport {
            runtime: None,
            dir: state.value.clone(),
            changes,
        });
    }
    Ok(reports)
}

fn prepare_state_dir(dir: &Path, uid: u32, gid: u32, changes: &mut Vec<Change>) -> Result<()> {
    create_missing(dir, uid, gid, changes)?;
    let handle = open(dir)?;
    own(&handle, None, uid, gid, Some(0o700), changes)?;
    own_tree(&handle, uid, gid, changes)
}

fn prepare_dir(runtime: Runtime, dir: &Path, uid: u32, gid: u32, changes: &mut Vec<Change>) -> Result<()> {
    create_missing(dir, uid, gid, changes)?;
    let handle = open(dir)?;
    own(&handle, None, uid, gid, Some(0o700), changes)?;
    own_tree(&handle, uid, gid, changes)?;
    let cred = credentials::login_file(runtime.require_login()?, Path::new(""));
    let cred = cred.to_string_lossy();
    if handle
        .stat_entry(&cred)
        .ok()
        .flatten()
        .is_some_and(|st| fsx::kind_of(&st) == "regular file")
    {
        own(&handle, Some(&cred), uid, gid, Some(0o600), changes)?;
    }
    if runtime == Runtime::Codex {
        let path = dir.join(codex::CONFIG_FILE);
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
            apply::ensure_codex_file_store(dir, uid, gid)?;
            changes.push(Change {
                path,
                what: "set cli_auth_credentials_store = \"file\"".into(),
            });
        }
    }
    Ok(())
}

/// Creates `dir` and its missing parents; the ones created here belong to the worker.
fn create_missing(dir: &Path, uid: u32, gid: u32, changes: &mut Vec<Change>) -> Result<()> {
    let mut missing = Vec::new();
    let mut p = dir.to_path_buf();
    while fs::symlink_metadata(&p).is_err() {
        missing.push(p.clone());
        if !p.pop() {
            break;
        }
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
            own(&open(parent)?, Some(&name.to_string_lossy()), uid, gid, None, changes)?;
        }
    }
    if !fs::metadata(dir).map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Error::io(
            format!("prepare {}", dir.display()),
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "exists and is not a directory"),
        ));
    }
    Ok(())
}

fn open(dir: &Path) -> Result<Dir> {
    Dir::open(dir).map_err(|e| Error::io(format!("open {}", dir.display()), e))
}

/// Gives `name` in `dir` (or `dir` itself) to the worker, with `mode` when given, and
/// records what changed. Links are left alone, and so are files with other hard links
/// (their other names may be anywhere): both are reported, never followed.
fn own(dir: &Dir, name: Option<&str>, uid: u32, gid: u32, mode: Option<u32>, changes: &mut Vec<Change>) -> Result<()> {
    let path = name.map_or_else(|| dir.path().to_path_buf(), |n| dir.path().join(n));
    let outcome = match name {
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
                changes.push(Change {
                    path: path.clone(),
                    what: format!("owner {old_uid}:{old_gid} -> {uid}:{gid}"),
                });
            }
            if let Some(mode) = mode.filter(|m| *m != old_mode) {
                changes.push(Change {
                    path,
                    what: format!("mode {old_mode:o} -> {mode:o}"),
                });
            }
        }
        Owned::LeftLink => changes.push(Change {
            path,
            what: "left alone: a symbolic link (never followed)".into(),
        }),
        Owned::LeftHardLinked => changes.push(Change {
            path,
            what: "left alone: a file with other hard links (its other names may be anywhere)".into(),
        }),
    }
    Ok(())
}

/// Gives everything below `dir` to the worker, one directory handle at a time: a
/// directory swapped for a link meanwhile is not entered.
fn own_tree(dir: &Dir, uid: u32, gid: u32, changes: &mut Vec<Change>) -> Result<()> {
    let names = dir
        .entries()
        .map_err(|e| Error::io(format!("read {}", dir.path().display()), e))?;
    for name in names {
        own(dir, Some(&name), uid, gid, None, changes)?;
        let is_dir = dir
            .stat_entry(&name)
            .ok()
            .flatten()
            .is_some_and(|st| fsx::kind_of(&st) == "directory");
        if is_dir {
            match dir.open_child(&name) {
                Ok(child) => own_tree(&child, uid, gid, changes)?,
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
        let reports = init(&c, &[Runtime::Codex]).unwrap();
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

        let first = init(&c, &[Runtime::Codex, Runtime::Claude]).unwrap();
        assert!(codex_dir.is_dir());
        assert!(first.iter().all(|r| !r.changes.is_empty()));
        assert_eq!(fs::read(claude_dir.join(".credentials.json")).unwrap(), creds);
        let mode = fs::metadata(claude_dir.join(".credentials.json")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::metadata(&claude_dir).unwrap().mode() & 0o777, 0o700);
        let config_toml = fs::read_to_string(codex_dir.join("config.toml")).unwrap();
        assert!(config_toml.contains("cli_auth_credentials_store = \"file\""));

        let second = init(&c, &[Runtime::Codex, Runtime::Claude]).unwrap();
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
        let reports = init(&worker(&codex_dir, &claude_dir), &[Runtime::Claude]).unwrap();
        let meta = fs::metadata(&victim).unwrap();
        assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o777), (0, 0, 0o644));
        assert_eq!(fs::metadata(&outside).unwrap().uid(), 0);
        let said: Vec<_> = reports[0].changes.iter().map(|c| c.what.as_str()).collect();
        assert!(said.iter().any(|w| w.contains("symbolic link")), "{said:?}");
        assert!(said.iter().any(|w| w.contains("hard links")), "{said:?}");
        assert_eq!(fs::metadata(&claude_dir).unwrap().uid(), 1000);

        // Codex's config.toml as a link is refused, not read or written through.
        assert!(init(&worker(&codex_dir, &claude_dir), &[Runtime::Codex]).is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "root:x:0:0");
    }
}

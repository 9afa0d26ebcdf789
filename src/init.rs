//! `moonauth init`, the compose init service: run as root with the auth volumes
//! mounted, it creates the login directories, hands them to the worker user, fixes
//! modes and makes Codex keep its login in a file. It never deletes a file and never
//! rewrites a credentials file; a second run changes nothing.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::apply;
use crate::config::Config;
use crate::credentials::{self, codex};
use crate::error::{Error, Result};
use crate::runtime::Runtime;

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
        .filter(|s| s.source != crate::config::Source::Default)
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
    set_mode(dir, 0o700, changes)?;
    own_tree(dir, uid, gid, changes)
}

fn prepare_dir(runtime: Runtime, dir: &Path, uid: u32, gid: u32, changes: &mut Vec<Change>) -> Result<()> {
    create_missing(dir, uid, gid, changes)?;
    set_mode(dir, 0o700, changes)?;
    own_tree(dir, uid, gid, changes)?;
    let cred = credentials::login_file(runtime, dir);
    if fs::symlink_metadata(&cred).map(|m| m.is_file()).unwrap_or(false) {
        set_mode(&cred, 0o600, changes)?;
    }
    if runtime == Runtime::Codex {
        let path = dir.join(codex::CONFIG_FILE);
        let current = fs::read_to_string(&path).ok();
        if codex::with_file_store(current.as_deref()).is_some() {
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
    while !p.exists() {
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
        own(created, uid, gid, changes)?;
    }
    if !fs::metadata(dir).map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Error::io(
            format!("prepare {}", dir.display()),
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "exists and is not a directory"),
        ));
    }
    Ok(())
}

fn own(path: &Path, uid: u32, gid: u32, changes: &mut Vec<Change>) -> Result<()> {
    let meta = fs::symlink_metadata(path).map_err(|e| Error::io(format!("stat {}", path.display()), e))?;
    if meta.uid() == uid && meta.gid() == gid {
        return Ok(());
    }
    nix::unistd::fchownat(
        None,
        path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| permission(path, e))?;
    changes.push(Change {
        path: path.to_path_buf(),
        what: format!("owner {}:{} -> {uid}:{gid}", meta.uid(), meta.gid()),
    });
    Ok(())
}

fn own_tree(dir: &Path, uid: u32, gid: u32, changes: &mut Vec<Change>) -> Result<()> {
    own(dir, uid, gid, changes)?;
    let entries = fs::read_dir(dir).map_err(|e| Error::io(format!("read {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("read {}", dir.display()), e))?;
        let path = entry.path();
        let ft = entry
            .file_type()
            .map_err(|e| Error::io(format!("stat {}", path.display()), e))?;
        if ft.is_dir() {
            own_tree(&path, uid, gid, changes)?;
        } else {
            own(&path, uid, gid, changes)?;
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32, changes: &mut Vec<Change>) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| Error::io(format!("stat {}", path.display()), e))?;
    let current = meta.mode() & 0o7777;
    if current == mode {
        return Ok(());
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("chmod {}", path.display()), e))?;
    changes.push(Change {
        path: path.to_path_buf(),
        what: format!("mode {current:o} -> {mode:o}"),
    });
    Ok(())
}

fn permission(path: &Path, e: nix::Error) -> Error {
    Error::Io {
        context: format!(
            "cannot give {} to the worker user (moonauth init must run as root: `user: root` in the init service)",
            path.display()
        ),
        source: e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, Overrides};

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
}

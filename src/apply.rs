//! Putting a staged login in place, inside the volume: `moonauth internal apply-login`
//! runs this in a container of the worker image after a login or sync wrote the new
//! files to a staging directory in the same volume. Each file is fsynced, owned by the
//! worker and renamed over the old one (atomic); the credentials file goes last. A
//! failure before the renames leaves the old login exactly as it was.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::credentials::{codex, login_files};
use crate::error::{Error, Result};
use crate::runtime::Runtime;

/// Staging directories start with this, so nothing else is ever removed.
pub const STAGING_PREFIX: &str = ".moonauth-staging-";

/// What an apply did.
#[derive(Debug, Default, Serialize)]
pub struct Applied {
    pub installed: Vec<String>,
    pub removed: Vec<String>,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(context, e)
}

/// Checks that `staging` is a moonauth staging directory directly inside `dir`.
pub fn check_staging(dir: &Path, staging: &Path) -> Result<()> {
    let ok = staging.parent() == Some(dir)
        && staging
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(STAGING_PREFIX));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidFlag {
            flag: "--staging",
            value: staging.display().to_string(),
            reason: format!(
                "must be a {STAGING_PREFIX}* directory directly inside {}",
                dir.display()
            ),
        })
    }
}

/// Moves the login files of `runtime` from `staging` into `dir`. With `prune`, login
/// files that the staging directory lacks are removed from `dir` (a sync mirrors its source).
pub fn apply_login(runtime: Runtime, dir: &Path, staging: &Path, uid: u32, gid: u32, prune: bool) -> Result<Applied> {
    check_staging(dir, staging)?;
    let mut applied = Applied::default();
    let owner = (
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    );
    // First make every staged file durable and owned, so the renames are the only step left.
    let mut staged: Vec<(PathBuf, PathBuf, String)> = Vec::new();
    for name in login_files(runtime) {
        let src = staging.join(name);
        let dst = dir.join(name);
        match fs::symlink_metadata(&src) {
            Ok(m) if m.is_file() => {
                nix::unistd::chown(&src, owner.0, owner.1)
                    .map_err(|e| Error::io(format!("chown {}", src.display()), e.into()))?;
                fs::set_permissions(&src, fs::Permissions::from_mode(0o600))
                    .map_err(io(format!("chmod {}", src.display())))?;
                fs::File::open(&src)
                    .and_then(|f| f.sync_all())
                    .map_err(io(format!("fsync {}", src.display())))?;
                staged.push((src, dst, name.to_string()));
            }
            Ok(_) => {
                return Err(Error::io(
                    format!("staged {name}"),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "not a regular file"),
                ))
            }
            Err(_) => {
                if prune && fs::symlink_metadata(&dst).is_ok() {
                    fs::remove_file(&dst).map_err(io(format!("remove stale {}", dst.display())))?;
                    applied.removed.push(name.to_string());
                }
            }
        }
    }
    for (src, dst, name) in staged {
        fs::rename(&src, &dst).map_err(io(format!("rename {} to {}", src.display(), dst.display())))?;
        applied.installed.push(name);
    }
    if runtime == Runtime::Codex {
        if let Some(name) = ensure_codex_file_store(dir, uid, gid)? {
            applied.installed.push(name);
        }
    }
    sync_dir(dir)?;
    nix::unistd::chown(dir, owner.0, owner.1).map_err(|e| Error::io(format!("chown {}", dir.display()), e.into()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(format!("chmod {}", dir.display())))?;
    discard(staging)?;
    Ok(applied)
}

/// Makes Codex's `config.toml` in `dir` say `cli_auth_credentials_store = "file"`,
/// writing atomically. Returns the file name when it changed it.
pub fn ensure_codex_file_store(dir: &Path, uid: u32, gid: u32) -> Result<Option<String>> {
    let path = dir.join(codex::CONFIG_FILE);
    let current = match fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
    };
    let Some(text) = codex::with_file_store(current.as_deref()) else {
        return Ok(None);
    };
    write_atomic(&path, text.as_bytes(), uid, gid, 0o600)?;
    Ok(Some(codex::CONFIG_FILE.to_string()))
}

/// Writes a file atomically: a temp file in the same directory, fsync, owner and mode,
/// rename over the target, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], uid: u32, gid: u32, mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".moonauth-tmp-")
        .tempfile_in(dir)
        .map_err(io(format!("create a temp file in {}", dir.display())))?;
    tmp.write_all(bytes).map_err(io(format!("write {}", path.display())))?;
    tmp.as_file()
        .sync_all()
        .map_err(io(format!("fsync {}", path.display())))?;
    let owner = (
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    );
    if nix::unistd::geteuid().is_root() {
        nix::unistd::chown(tmp.path(), owner.0, owner.1)
            .map_err(|e| Error::io(format!("chown {}", path.display()), e.into()))?;
    }
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))
        .map_err(io(format!("chmod {}", path.display())))?;
    tmp.persist(path)
        .map_err(|e| Error::io(format!("rename into {}", path.display()), e.error))?;
    sync_dir(dir)
}

/// fsyncs a directory, so a rename in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(format!("fsync {}", dir.display())))
}

/// Removes a staging directory (only ever one with the staging prefix).
pub fn discard(staging: &Path) -> Result<()> {
    let is_staging = staging
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(STAGING_PREFIX));
    if !is_staging {
        return Err(Error::InvalidFlag {
            flag: "--staging",
            value: staging.display().to_string(),
            reason: format!("only {STAGING_PREFIX}* directories are removed"),
        });
    }
    match fs::remove_dir_all(staging) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("remove {}", staging.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> (u32, u32) {
        (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
    }

    #[test]
    fn apply_moves_login_files_and_prunes_stale_ones() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join(format!("{STAGING_PREFIX}x"));
        fs::create_dir(&staging).unwrap();
        fs::write(staging.join(".credentials.json"), "new").unwrap();
        fs::write(dir.path().join(".credentials.json"), "old").unwrap();
        fs::write(dir.path().join("settings.json"), "stale").unwrap();
        fs::create_dir(dir.path().join("projects")).unwrap();
        let (uid, gid) = me();
        let applied = apply_login(Runtime::Claude, dir.path(), &staging, uid, gid, true).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join(".credentials.json")).unwrap(), "new");
        assert!(!dir.path().join("settings.json").exists());
        assert!(dir.path().join("projects").exists(), "only login files are touched");
        assert!(!staging.exists());
        assert_eq!(applied.removed, vec!["settings.json"]);
        let mode = fs::metadata(dir.path().join(".credentials.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn without_prune_other_login_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join(format!("{STAGING_PREFIX}y"));
        fs::create_dir(&staging).unwrap();
        fs::write(staging.join("auth.json"), "{}").unwrap();
        fs::write(dir.path().join("config.toml"), "model = \"x\"\n").unwrap();
        let (uid, gid) = me();
        apply_login(Runtime::Codex, dir.path(), &staging, uid, gid, false).unwrap();
        let config = fs::read_to_string(dir.path().join("config.toml")).unwrap();
        assert!(config.contains("model = \"x\"") && config.contains("cli_auth_credentials_store = \"file\""));
    }

    #[test]
    fn staging_must_be_a_prefixed_child() {
        let dir = tempfile::tempdir().unwrap();
        let (uid, gid) = me();
        let err = apply_login(Runtime::Codex, dir.path(), Path::new("/etc"), uid, gid, false).unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::Usage);
        assert!(discard(Path::new("/tmp/not-staging")).is_err());
    }
}

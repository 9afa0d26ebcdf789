//! Putting a staged login in place, inside the volume: `moonauth internal apply-login`
//! runs this as root in the helper container `login` starts (a static moonauth uploaded
//! into an empty image) after a login or sync wrote the new files to a staging directory
//! in the same volume. Each file is fsynced, owned by the
//! worker and renamed over the old one (atomic); the credentials file goes last. A
//! failure before the renames leaves the old login exactly as it was.

use std::fs;
use std::path::Path;

use serde::Serialize;

use crate::agents::{codex, LoginRuntime};
use crate::credentials::{login_files, MAX_CONFIG_BYTES};
use crate::error::{Error, Result};
use crate::fsx::Dir;

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
///
/// This runs as root in a directory the worker writes: each staged file is read (bounded,
/// never through a link) and written as a new file of moonauth's, owned by the worker, so
/// nothing the worker made is ever chowned and no link is ever followed.
pub fn apply_login(
    runtime: LoginRuntime,
    dir: &Path,
    staging: &Path,
    uid: u32,
    gid: u32,
    prune: bool,
) -> Result<Applied> {
    check_staging(dir, staging)?;
    let mut applied = Applied::default();
    let target = Dir::open(dir).map_err(io(format!("open {}", dir.display())))?;
    let staging_name = staging
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staged = target
        .open_child(&staging_name)
        .map_err(io(format!("open {}", staging.display())))?;
    // First write every staged file beside its target, durable and owned, so the renames
    // are the only step left.
    let mut prepared = Vec::new();
    for name in login_files(runtime) {
        match staged.read(name, MAX_CONFIG_BYTES) {
            Ok(Some(bytes)) => {
                let file = target
                    .prepare(name, &bytes, Some((uid, gid)), 0o600)
                    .map_err(io(format!("write {name} in {}", dir.display())))?;
                prepared.push((file, name.to_string()));
            }
            Ok(None) => {
                if prune && target.stat_entry(name).ok().flatten().is_some() {
                    target
                        .remove_file(name)
                        .map_err(io(format!("remove stale {}", dir.join(name).display())))?;
                    applied.removed.push(name.to_string());
                }
            }
            Err(refused) => {
                return Err(Error::io(
                    format!("staged {name}"),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, refused.to_string()),
                ))
            }
        }
    }
    for (file, name) in prepared {
        file.commit()
            .map_err(io(format!("rename {name} into {}", dir.display())))?;
        applied.installed.push(name);
    }
    if runtime == LoginRuntime::Codex {
        if let Some(name) = ensure_codex_file_store(dir, uid, gid)? {
            applied.installed.push(name);
        }
    }
    target.sync().map_err(io(format!("fsync {}", dir.display())))?;
    target
        .own_self(uid, gid, Some(0o700))
        .map_err(io(format!("give {} to {uid}:{gid}", dir.display())))?;
    discard(staging)?;
    Ok(applied)
}

/// Makes Codex's `config.toml` in `dir` say `cli_auth_credentials_store = "file"`,
/// writing atomically. Returns the file name when it changed it.
pub fn ensure_codex_file_store(dir: &Path, uid: u32, gid: u32) -> Result<Option<String>> {
    let handle = Dir::open(dir).map_err(io(format!("open {}", dir.display())))?;
    let current = handle.read(codex::CONFIG_FILE, MAX_CONFIG_BYTES).map_err(|refused| {
        Error::io(
            format!("read {}", dir.join(codex::CONFIG_FILE).display()),
            std::io::Error::new(std::io::ErrorKind::InvalidData, refused.to_string()),
        )
    })?;
    let current = current.map(|b| String::from_utf8_lossy(&b).into_owned());
    let Some(text) = crate::credentials::codex::with_file_store(current.as_deref()) else {
        return Ok(None);
    };
    handle
        .write_atomic(codex::CONFIG_FILE, text.as_bytes(), Some((uid, gid)), 0o600)
        .map_err(io(format!("write {}", dir.join(codex::CONFIG_FILE).display())))?;
    Ok(Some(codex::CONFIG_FILE.to_string()))
}

/// Writes a file atomically: a new temp file in the same directory (never through a
/// link), fsync, owner (when root) and mode, rename over the target, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], uid: u32, gid: u32, mode: u32) -> Result<()> {
    let (dir, name) = crate::fsx::split(path);
    Dir::open(dir)
        .and_then(|d| d.write_atomic(&name, bytes, Some((uid, gid)), mode))
        .map_err(io(format!("write {}", path.display())))
}

/// fsyncs a directory, so a rename in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    Dir::open(dir)
        .and_then(|d| d.sync())
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
    use std::os::unix::fs::{symlink, PermissionsExt};

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
        let applied = apply_login(LoginRuntime::Claude, dir.path(), &staging, uid, gid, true).unwrap();
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
        apply_login(LoginRuntime::Codex, dir.path(), &staging, uid, gid, false).unwrap();
        let config = fs::read_to_string(dir.path().join("config.toml")).unwrap();
        assert!(config.contains("model = \"x\"") && config.contains("cli_auth_credentials_store = \"file\""));
    }

    #[test]
    fn staging_must_be_a_prefixed_child() {
        let dir = tempfile::tempdir().unwrap();
        let (uid, gid) = me();
        let err = apply_login(LoginRuntime::Codex, dir.path(), Path::new("/etc"), uid, gid, false).unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::Usage);
        assert!(discard(Path::new("/tmp/not-staging")).is_err());
    }

    #[test]
    fn a_staged_link_is_refused_and_the_old_login_stays() {
        let dir = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        fs::write(host.path().join("shadow"), "host secret").unwrap();
        let staging = dir.path().join(format!("{STAGING_PREFIX}l"));
        fs::create_dir(&staging).unwrap();
        symlink(host.path().join("shadow"), staging.join(".credentials.json")).unwrap();
        fs::write(dir.path().join(".credentials.json"), "old").unwrap();
        let (uid, gid) = me();
        let err = apply_login(LoginRuntime::Claude, dir.path(), &staging, uid, gid, true).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read_to_string(dir.path().join(".credentials.json")).unwrap(), "old");
        assert_eq!(fs::read_to_string(host.path().join("shadow")).unwrap(), "host secret");
    }

    #[test]
    fn a_link_in_the_login_directory_is_replaced_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        fs::write(host.path().join("passwd"), "root:x:0:0").unwrap();
        symlink(host.path().join("passwd"), dir.path().join("config.toml")).unwrap();
        let staging = dir.path().join(format!("{STAGING_PREFIX}m"));
        fs::create_dir(&staging).unwrap();
        fs::write(staging.join("auth.json"), "{}").unwrap();
        let (uid, gid) = me();
        // config.toml as a link is refused when read, so the file store cannot be set.
        assert!(apply_login(LoginRuntime::Codex, dir.path(), &staging, uid, gid, false).is_err());
        assert_eq!(fs::read_to_string(host.path().join("passwd")).unwrap(), "root:x:0:0");
        write_atomic(&dir.path().join("config.toml"), b"x", uid, gid, 0o600).unwrap();
        assert_eq!(fs::read_to_string(host.path().join("passwd")).unwrap(), "root:x:0:0");
        assert!(fs::symlink_metadata(dir.path().join("config.toml")).unwrap().is_file());
    }
}

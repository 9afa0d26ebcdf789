//! Files in and out of volumes through the Engine API's archive endpoints, without
//! running anything: a container is created (never started) from an empty image that
//! moonauth imports itself, with the volumes mounted; tar streams go through it.

use std::collections::HashMap;
use std::io::Read;

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType};
use bollard::query_parameters::{
    CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::volumes::LABEL_MANAGED_BY;
use super::{status_of, Engine};
use crate::credentials::MAX_CREDENTIAL_BYTES;
use crate::error::{Error, Result};

/// An image with no files: containers made from it are only ever used for archive calls.
pub const EMPTY_IMAGE: &str = "moonauth-empty:1";

/// Imports [`EMPTY_IMAGE`] from an empty tar stream when the host does not have it (no pull).
pub async fn ensure_empty_image(engine: &Engine) -> Result<()> {
    use std::sync::atomic::Ordering;
    if engine.empty_image_ready.load(Ordering::Relaxed) {
        return Ok(());
    }
    let present = engine
        .call_opt("inspect the empty image", engine.client().inspect_image(EMPTY_IMAGE))
        .await?;
    if present.is_some() {
        engine.empty_image_ready.store(true, Ordering::Relaxed);
        return Ok(());
    }
    let (repo, tag) = EMPTY_IMAGE.split_once(':').expect("the constant has a tag");
    let options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .changes(vec![format!("LABEL {LABEL_MANAGED_BY}=moonauth")])
        .build();
    // An empty archive: two zero blocks.
    let body = bollard::body_full(bytes::Bytes::from(vec![0u8; 1024]));
    let mut stream = engine.client().create_image(Some(options), Some(body), None);
    let import = async {
        while let Some(item) = stream.next().await {
            item?;
        }
        Ok::<(), bollard::errors::Error>(())
    };
    engine.call(format!("import {EMPTY_IMAGE}"), import).await?;
    engine.empty_image_ready.store(true, Ordering::Relaxed);
    Ok(())
}

/// A volume mounted at a path inside a container.
#[derive(Debug, Clone)]
pub struct VolumeMount {
    pub volume: String,
    pub path: String,
    pub read_only: bool,
}

pub(crate) fn mounts(list: &[VolumeMount]) -> Vec<Mount> {
    list.iter()
        .map(|m| Mount {
            target: Some(m.path.clone()),
            source: Some(m.volume.clone()),
            typ: Some(MountType::VOLUME),
            read_only: Some(m.read_only),
            ..Default::default()
        })
        .collect()
}

/// A created, never started container holding volume mounts. Remove it with [`Scratch::remove`].
pub struct Scratch {
    pub id: String,
}

impl Scratch {
    /// Creates the container from [`EMPTY_IMAGE`] (importing it when needed).
    pub async fn create(engine: &Engine, volumes: &[VolumeMount]) -> Result<Scratch> {
        ensure_empty_image(engine).await?;
        let body = ContainerCreateBody {
            image: Some(EMPTY_IMAGE.to_string()),
            cmd: Some(vec!["/never-started".to_string()]),
            network_disabled: Some(true),
            labels: Some(HashMap::from([(LABEL_MANAGED_BY.to_string(), "moonauth".to_string())])),
            host_config: Some(HostConfig {
                mounts: Some(mounts(volumes)),
                // Never started: it needs no log files.
                log_config: Some(HostConfigLogConfig {
                    typ: Some("none".into()),
                    config: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = engine
            .call(
                "create a container to reach the volume",
                engine.client().create_container(None, body),
            )
            .await?;
        Ok(Scratch { id: created.id })
    }

    /// Removes the container (its volumes stay). It never ran, so no kill is needed.
    pub async fn remove(self, engine: &Engine) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::default().force(false).build();
        let action = "remove a container";
        match engine
            .timed(action, engine.client().remove_container(&self.id, Some(options)))
            .await?
        {
            Ok(()) => Ok(()),
            // Gone, or already being removed (a cleanup of the volumes it mounts got there
            // first): either way it is going, which is all this wants.
            Err(e) if matches!(super::status_of(&e), Some(404 | 409)) => Ok(()),
            Err(e) => Err(engine.error(action.into(), &e)),
        }
    }
}

/// Removes a container, forcefully; a container that is already gone is fine.
pub async fn remove_container(engine: &Engine, id: &str) -> Result<()> {
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    engine
        .call_opt(
            "remove a container",
            engine.client().remove_container(id, Some(options)),
        )
        .await
        .map(|_| ())
}

/// A file read out of a container, with its ownership and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub bytes: Vec<u8>,
    pub uid: u64,
    pub gid: u64,
    pub mode: u32,
}

/// Reads one login file out of a container. `Ok(Ok(None))` when absent; `Ok(Err(reason))`
/// when refused (not a regular file, a link, over the size cap).
pub async fn read_file(
    engine: &Engine,
    container: &str,
    path: &str,
) -> Result<std::result::Result<Option<FileEntry>, String>> {
    read_file_max(engine, container, path, MAX_CREDENTIAL_BYTES).await
}

/// [`read_file`] with another size cap (`MAX_CONFIG_BYTES` for a CLI's settings file).
pub async fn read_file_max(
    engine: &Engine,
    container: &str,
    path: &str,
    max: u64,
) -> Result<std::result::Result<Option<FileEntry>, String>> {
    let options = DownloadFromContainerOptionsBuilder::default().path(path).build();
    let mut stream = engine.client().download_from_container(container, Some(options));
    // The tar holds one file plus headers: stop reading well before anything large.
    let cap = usize::try_from(max).unwrap_or(usize::MAX).saturating_add(64 * 1024);
    let collect = async {
        let mut buf = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    buf.extend_from_slice(&bytes);
                    if buf.len() > cap {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Some(buf))
    };
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    let tar = match tokio::time::timeout(engine.timeout, collect).await {
        Err(_) => {
            return Err(Error::DockerUnreachable {
                host: engine.host.clone(),
                reason: format!("reading {path}: no answer"),
            })
        }
        Ok(Err(e)) if status_of(&e) == Some(404) => return Ok(Ok(None)),
        Ok(Err(e)) => return Err(engine.error(format!("read {path} from the volume"), &e)),
        Ok(Ok(None)) => return Ok(Err(format!("{name} is over the {max} byte limit for a login file"))),
        Ok(Ok(Some(tar))) => tar,
    };
    Ok(first_file_max(&tar, &name, max))
}

/// The first entry of a tar stream as a login file, or why it is refused.
pub fn first_file(tar: &[u8], name: &str) -> std::result::Result<Option<FileEntry>, String> {
    first_file_max(tar, name, MAX_CREDENTIAL_BYTES)
}

/// [`first_file`] with another size cap.
pub fn first_file_max(tar: &[u8], name: &str, max: u64) -> std::result::Result<Option<FileEntry>, String> {
    let mut archive = tar::Archive::new(tar);
    let mut entries = archive
        .entries()
        .map_err(|e| format!("unreadable archive for {name}: {e}"))?;
    let Some(entry) = entries.next() else {
        return Ok(None);
    };
    let mut entry = entry.map_err(|e| format!("unreadable archive for {name}: {e}"))?;
    let header = entry.header();
    let kind = header.entry_type();
    if kind.is_symlink() || kind.is_hard_link() {
        return Err(format!("{name} is a link; refusing to follow it"));
    }
    if !kind.is_file() {
        return Err(format!("{name} is not a regular file"));
    }
    let size = header.size().unwrap_or(u64::MAX);
    if size > max {
        return Err(format!(
            "{name} is {size} bytes, over the {max} byte limit for a login file"
        ));
    }
    let uid = header.uid().unwrap_or(0);
    let gid = header.gid().unwrap_or(0);
    let mode = header.mode().unwrap_or(0) & 0o7777;
    let mut bytes = Vec::with_capacity(size as usize);
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| format!("unreadable archive for {name}: {e}"))?;
    Ok(Some(FileEntry { bytes, uid, gid, mode }))
}

/// An entry of a tar stream moonauth builds.
pub enum TarEntry<'a> {
    Dir {
        path: &'a str,
        uid: u32,
        gid: u32,
        mode: u32,
    },
    File {
        path: &'a str,
        bytes: &'a [u8],
        uid: u32,
        gid: u32,
        mode: u32,
    },
}

/// Builds a tar stream with exact ownership and modes.
pub fn tar_of(entries: &[TarEntry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let (path, data): (&str, &[u8]) = match entry {
            TarEntry::Dir { path, uid, gid, mode } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_uid(u64::from(*uid));
                header.set_gid(u64::from(*gid));
                header.set_mode(*mode);
                header.set_size(0);
                (path, &[])
            }
            TarEntry::File {
                path,
                bytes,
                uid,
                gid,
                mode,
            } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_uid(u64::from(*uid));
                header.set_gid(u64::from(*gid));
                header.set_mode(*mode);
                header.set_size(bytes.len() as u64);
                (path, bytes)
            }
        };
        header.set_mtime(mtime);
        // Writing into a Vec cannot fail for I/O reasons; paths are moonauth's own short names.
        builder
            .append_data(&mut header, path, data)
            .expect("appending to an in-memory tar");
    }
    builder.into_inner().expect("finishing an in-memory tar")
}

/// Extracts a tar stream into `dir` of a container (ownership and modes as in the headers).
pub async fn upload(engine: &Engine, container: &str, dir: &str, tar: Vec<u8>) -> Result<()> {
    let options = UploadToContainerOptionsBuilder::default().path(dir).build();
    let body = bollard::body_full(bytes::Bytes::from(tar));
    engine
        .call(
            format!("write into {dir}"),
            engine.client().upload_to_container(container, Some(options), body),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_round_trip_keeps_owner_and_mode() {
        let tar = tar_of(&[TarEntry::File {
            path: ".credentials.json",
            bytes: b"{}",
            uid: 1000,
            gid: 1001,
            mode: 0o600,
        }]);
        let f = first_file(&tar, ".credentials.json").unwrap().unwrap();
        assert_eq!(
            (f.uid, f.gid, f.mode, f.bytes.as_slice()),
            (1000, 1001, 0o600, &b"{}"[..])
        );
    }

    #[test]
    fn directories_and_links_are_refused() {
        let tar = tar_of(&[TarEntry::Dir {
            path: "auth.json",
            uid: 0,
            gid: 0,
            mode: 0o700,
        }]);
        assert!(first_file(&tar, "auth.json")
            .unwrap_err()
            .contains("not a regular file"));

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "auth.json", "/etc/passwd").unwrap();
        let tar = b.into_inner().unwrap();
        assert!(first_file(&tar, "auth.json").unwrap_err().contains("link"));
    }
}

//! moonauth brings itself: the step that puts a staged login in place runs a static
//! moonauth in a container of [`EMPTY_IMAGE`](archive::EMPTY_IMAGE), uploaded through the
//! archive API, so it works with any worker image, or none. This module finds that
//! binary (this moonauth when it is static, else `MOONAUTH_STATIC_BIN`) and runs it;
//! what it does inside the volume is `credentials::apply`'s.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;

use super::archive::{self, TarEntry, VolumeMount, EMPTY_IMAGE};
use super::volumes::LABEL_MANAGED_BY;
use super::{session, Engine};
use crate::agents::COMPETING_CREDENTIALS;
use crate::error::{Error, Result};
use crate::source::Sourced;

/// Where the running executable is read from.
pub const SELF_EXE: &str = "/proc/self/exe";
/// Where the binary lands in the helper container (its root holds nothing else).
pub const IN_CONTAINER: &str = "/moonauth";
/// A moonauth binary larger than this is refused (the static build is about 10 MiB).
pub const MAX_BINARY_BYTES: u64 = 256 * 1024 * 1024;
/// The ELF header and program headers must lie within this many first bytes.
const HEAD_BYTES: u64 = 64 * 1024;
/// Program header type of the dynamic loader's path: its absence makes a binary static.
const PT_INTERP: u32 = 3;

/// A statically linked moonauth, read into memory to be uploaded.
pub struct StaticBinary {
    bytes: Vec<u8>,
    /// Where it came from, for logs.
    pub origin: PathBuf,
}

impl std::fmt::Debug for StaticBinary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StaticBinary({}, {} bytes)", self.origin.display(), self.bytes.len())
    }
}

/// The static moonauth to bring into the helper container: this one when it is static
/// (read from `/proc/self/exe`), else `MOONAUTH_STATIC_BIN`, else [`Error::NoStaticBinary`].
pub fn find(static_bin: Option<&Sourced<PathBuf>>) -> Result<StaticBinary> {
    find_from(Path::new(SELF_EXE), static_bin)
}

/// [`find`] with the running executable's path given (tests).
pub fn find_from(own: &Path, static_bin: Option<&Sourced<PathBuf>>) -> Result<StaticBinary> {
    let own_problem = match load(own) {
        Ok(bytes) => {
            return Ok(StaticBinary {
                bytes,
                origin: own.to_path_buf(),
            })
        }
        Err(problem) => problem,
    };
    let Some(configured) = static_bin else {
        return Err(Error::NoStaticBinary {
            reason: format!(
                "this moonauth ({}) {own_problem}, and MOONAUTH_STATIC_BIN is not set",
                own.display()
            ),
        });
    };
    let path = &configured.value;
    match load(path) {
        Ok(bytes) => Ok(StaticBinary {
            bytes,
            origin: path.clone(),
        }),
        Err(problem) => Err(Error::NoStaticBinary {
            reason: format!(
                "MOONAUTH_STATIC_BIN={} ({}) {problem}",
                path.display(),
                configured.source
            ),
        }),
    }
}

/// Reads `path` when it is a regular, statically linked ELF executable of bounded size;
/// otherwise says what it is instead ("is dynamically linked", …).
fn load(path: &Path) -> std::result::Result<Vec<u8>, String> {
    // O_NONBLOCK: a FIFO named by mistake must not hang the open.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot be opened: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot be read: {e}"))?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    if meta.len() > MAX_BINARY_BYTES {
        return Err(format!(
            "is {} bytes, over the {MAX_BINARY_BYTES} byte limit",
            meta.len()
        ));
    }
    let mut bytes = Vec::new();
    (&file)
        .take(HEAD_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read: {e}"))?;
    check_static_elf(&bytes)?;
    (&file)
        .take(MAX_BINARY_BYTES + 1 - bytes.len() as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if bytes.len() as u64 > MAX_BINARY_BYTES {
        return Err(format!("grew over the {MAX_BINARY_BYTES} byte limit while being read"));
    }
    Ok(bytes)
}

/// `Ok` when `head` (the first bytes of a file) is an ELF executable whose program
/// headers name no interpreter (no `PT_INTERP`): it runs without a dynamic loader or C
/// library, so in any image. Otherwise what it is instead.
pub fn check_static_elf(head: &[u8]) -> std::result::Result<(), String> {
    if head.len() < 16 || head[..4] != *b"\x7fELF" {
        return Err("is not an ELF executable".into());
    }
    let wide = match head[4] {
        1 => false,
        2 => true,
        _ => return Err("is an ELF file of an unknown class".into()),
    };
    let little = match head[5] {
        1 => true,
        2 => false,
        _ => return Err("is an ELF file of an unknown byte order".into()),
    };
    let field = |offset: usize, len: usize| -> std::result::Result<u64, String> {
        let bytes = offset
            .checked_add(len)
            .and_then(|end| head.get(offset..end))
            .ok_or_else(|| format!("has ELF headers beyond its first {HEAD_BYTES} bytes"))?;
        let mut value = 0u64;
        for i in 0..len {
            let b = if little { bytes[len - 1 - i] } else { bytes[i] };
            value = (value << 8) | u64::from(b);
        }
        Ok(value)
    };
    // e_type, e_phoff, e_phentsize, e_phnum (ELF32 and ELF64 layouts).
    let (e_type, phoff, phentsize, phnum, min_entry) = if wide {
        (field(16, 2)?, field(32, 8)?, field(54, 2)?, field(56, 2)?, 56)
    } else {
        (field(16, 2)?, field(28, 4)?, field(42, 2)?, field(44, 2)?, 32)
    };
    // ET_EXEC, or ET_DYN for a static-pie (the musl build is one).
    if e_type != 2 && e_type != 3 {
        return Err("is an ELF file but not an executable".into());
    }
    if phnum == 0 || phnum == 0xffff || phentsize < min_entry {
        return Err("has no usable ELF program headers".into());
    }
    let mut has_interp = false;
    for i in 0..phnum {
        let offset = i
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .and_then(|o| usize::try_from(o).ok())
            .ok_or_else(|| format!("has ELF headers beyond its first {HEAD_BYTES} bytes"))?;
        if field(offset, 4)? == u64::from(PT_INTERP) {
            has_interp = true;
        }
    }
    if has_interp {
        return Err("is dynamically linked (it names a program interpreter)".into());
    }
    Ok(())
}

/// Runs `moonauth ARGS` from `binary` in a fresh container of the empty image as root,
/// with `volumes` mounted, no network and every competing credential variable blank;
/// waits (bounded by the engine timeout) and removes the container whatever happened.
/// A non-zero exit is [`Error::Docker`] with the tail of its output.
pub async fn run(
    engine: &Engine,
    binary: &StaticBinary,
    volumes: &[VolumeMount],
    args: &[String],
    action: &str,
) -> Result<()> {
    archive::ensure_empty_image(engine).await?;
    let mut cmd = vec![IN_CONTAINER.to_string()];
    cmd.extend(args.iter().cloned());
    let body = ContainerCreateBody {
        image: Some(EMPTY_IMAGE.to_string()),
        cmd: Some(cmd),
        user: Some("0:0".into()),
        env: Some(COMPETING_CREDENTIALS.iter().map(|v| format!("{v}=")).collect()),
        working_dir: Some("/".into()),
        network_disabled: Some(true),
        labels: Some(HashMap::from([(LABEL_MANAGED_BY.to_string(), "moonauth".to_string())])),
        host_config: Some(HostConfig {
            mounts: Some(archive::mounts(volumes)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = engine
        .call(
            "create the helper container",
            engine.client().create_container(None, body),
        )
        .await?
        .id;
    let name = IN_CONTAINER.trim_start_matches('/');
    let result = async {
        let tar = archive::tar_of(&[TarEntry::File {
            path: name,
            bytes: &binary.bytes,
            uid: 0,
            gid: 0,
            mode: 0o755,
        }]);
        archive::upload(engine, &id, "/", tar).await?;
        engine
            .call("start the helper container", engine.client().start_container(&id, None))
            .await?;
        let code = match tokio::time::timeout(engine.timeout, session::wait_exit(engine, &id)).await {
            Ok(code) => code?,
            Err(_) => {
                return Err(Error::Docker {
                    action: action.to_string(),
                    reason: format!(
                        "the helper container did not finish within {}",
                        humantime::format_duration(engine.timeout)
                    ),
                    hint: Some("raise MOONAUTH_DOCKER_TIMEOUT if the engine is slow".into()),
                })
            }
        };
        if code == 0 {
            return Ok(());
        }
        let logs = container_logs(engine, &id).await;
        Err(Error::Docker {
            action: action.to_string(),
            reason: format!("moonauth {} exited with {code}: {}", args.join(" "), logs.trim()),
            hint: None,
        })
    }
    .await;
    let removed = archive::remove_container(engine, &id).await;
    result.and(removed)
}

/// The last lines a container wrote, scrubbed of anything that looks like a token.
pub(crate) async fn container_logs(engine: &Engine, id: &str) -> String {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail("20")
        .build();
    let mut stream = engine.client().logs(id, Some(options));
    let collect = async {
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(chunk.as_ref()));
        }
        text
    };
    let text = tokio::time::timeout(engine.timeout, collect).await.unwrap_or_default();
    crate::redact::scrub(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Source;

    /// A minimal ELF64 little-endian header with the given program header types.
    fn elf64(e_type: u16, program_headers: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[16..18].copy_from_slice(&e_type.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(program_headers.len() as u16).to_le_bytes());
        for t in program_headers {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&t.to_le_bytes());
            b.extend(ph);
        }
        b
    }

    #[test]
    fn an_elf_without_an_interpreter_is_static_and_one_with_it_is_not() {
        // PT_LOAD, PT_DYNAMIC, PT_GNU_STACK: a static-pie (ET_DYN) has these and no PT_INTERP.
        assert_eq!(check_static_elf(&elf64(3, &[1, 2, 0x6474_e551])), Ok(()));
        assert_eq!(check_static_elf(&elf64(2, &[1])), Ok(()));
        let dynamic = check_static_elf(&elf64(3, &[6, 3, 1])).unwrap_err();
        assert!(dynamic.contains("dynamically linked"), "{dynamic}");
    }

    #[test]
    fn truncated_or_foreign_files_are_refused_without_panicking() {
        assert!(check_static_elf(b"#!/bin/sh\nexec moonauth\n")
            .unwrap_err()
            .contains("not an ELF"));
        assert!(check_static_elf(&elf64(1, &[1]))
            .unwrap_err()
            .contains("not an executable"));
        let mut cut = elf64(3, &[1, 1]);
        cut.truncate(64 + 56 + 2);
        assert!(check_static_elf(&cut).unwrap_err().contains("beyond"));
        let mut huge = elf64(3, &[1]);
        huge[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(check_static_elf(&huge).is_err());
        for n in 0..80 {
            let _ = check_static_elf(&elf64(3, &[1, 3])[..n]);
        }
    }

    #[test]
    fn a_dynamic_binary_in_moonauth_static_bin_is_refused_naming_the_variable() {
        // The test binary itself is dynamically linked (a glibc build).
        let own = std::env::current_exe().unwrap();
        let err = find_from(&own, None).unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::Usage);
        assert!(err.to_string().contains("MOONAUTH_STATIC_BIN is not set"), "{err}");
        assert!(err.hint().unwrap().contains("scripts/build-static.sh"));

        let configured = Sourced::new(own.clone(), Source::Env("MOONAUTH_STATIC_BIN".into()));
        let err = find_from(&own, Some(&configured)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("MOONAUTH_STATIC_BIN=") && text.contains("dynamically linked"),
            "{text}"
        );

        let dir = tempfile::tempdir().unwrap();
        let missing = Sourced::new(dir.path().join("nope"), Source::Env("MOONAUTH_STATIC_BIN".into()));
        assert!(find_from(&own, Some(&missing))
            .unwrap_err()
            .to_string()
            .contains("cannot be opened"));
        let not_file = Sourced::new(dir.path().to_path_buf(), Source::Env("MOONAUTH_STATIC_BIN".into()));
        assert!(find_from(&own, Some(&not_file))
            .unwrap_err()
            .to_string()
            .contains("not a regular file"));
    }
}

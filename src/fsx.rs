//! Files in directories a worker can write, handled as root safely: every file is opened
//! relative to a handle on its directory with `O_NOFOLLOW` (a link planted in its place is
//! refused, never followed), without blocking on a FIFO, and must be a regular file; reads
//! are bounded; files are created with `O_EXCL` and only a file created here is ever
//! chowned; replacing a file is a temp file, fsync, rename, fsync of the directory.
//!
//! The directory itself is opened as named (an operator's `CODEX_HOME` may well be a link);
//! what lies inside it is the worker's, and never trusted. See docs/security.md.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::unistd::{Gid, Uid, UnlinkatFlags};

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadRefused {
    /// A symbolic link where a file was expected; never followed.
    #[error("{name} is a symbolic link; refusing to follow it")]
    Link { name: String },
    /// A directory, FIFO, device or socket.
    #[error("{name} is not a regular file ({kind})")]
    NotRegular { name: String, kind: &'static str },
    /// Larger than the bound for this kind of file.
    #[error("{name} is {size} bytes, over the {max} byte limit")]
    TooLarge { name: String, size: u64, max: u64 },
    /// Any other I/O error.
    #[error("cannot read {name}: {source}")]
    Io {
        name: String,
        #[source]
        source: io::Error,
    },
}

/// A handle on a directory: every name below is resolved relative to it, one component
/// at a time, so a directory renamed or replaced by a link meanwhile is not followed.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Opens the directory `path` (following a link there: the operator named it).
    pub fn open(path: &Path) -> io::Result<Dir> {
        let fd = open_at(
            None,
            path.as_os_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            0,
        )?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Opens the subdirectory `name`, refusing a link.
    pub fn open_child(&self, name: &str) -> io::Result<Dir> {
        check_name(name)?;
        let fd = open_at(
            Some(&self.fd),
            OsStr::new(name),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            0,
        )?;
        Ok(Dir {
            fd,
            path: self.path.join(name),
        })
    }

    /// The path this handle was opened as (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's own status.
    pub fn stat(&self) -> io::Result<FileStat> {
        nix::sys::stat::fstat(self.fd.as_raw_fd()).map_err(io::Error::from)
    }

    /// The status of `name` itself (a link is reported as a link); `None` when absent.
    pub fn stat_entry(&self, name: &str) -> io::Result<Option<FileStat>> {
        check_name(name)?;
        match nix::sys::stat::fstatat(Some(self.fd.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the regular file `name` to read, refusing links and anything else; `None`
    /// when absent.
    pub fn open_regular(&self, name: &str) -> Result<Option<(File, FileStat)>, ReadRefused> {
        let refused = |source: io::Error| ReadRefused::Io {
            name: name.to_string(),
            source,
        };
        check_name(name).map_err(refused)?;
        let fd = match open_at(Some(&self.fd), OsStr::new(name), read_flags(), 0) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(Errno::ELOOP as i32) => {
                return Err(ReadRefused::Link { name: name.to_string() })
            }
            Err(e) => return Err(refused(e)),
        };
        let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(|e| refused(e.into()))?;
        if kind_of(&st) != "regular file" {
            return Err(ReadRefused::NotRegular {
                name: name.to_string(),
                kind: kind_of(&st),
            });
        }
        Ok(Some((File::from(fd), st)))
    }

    /// Reads the regular file `name` whole, refusing links, non-regular files and files
    /// over `max` bytes; `None` when absent.
    pub fn read(&self, name: &str, max: u64) -> Result<Option<Vec<u8>>, ReadRefused> {
        let Some((file, st)) = self.open_regular(name)? else {
            return Ok(None);
        };
        read_bounded(file, st, name, max).map(Some)
    }

    /// Opens the regular file `name` read-write, creating it (mode `mode`) when absent.
    /// Returns whether it was created here: only then may the caller chown it. A file
    /// someone else made and we may not write is opened read-only (enough for `flock`).
    pub fn open_or_create(&self, name: &str, mode: u32) -> io::Result<(File, bool)> {
        check_name(name)?;
        let create = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | no_follow();
        let (fd, created) = match open_at(Some(&self.fd), OsStr::new(name), create, mode) {
            Ok(fd) => (fd, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                match open_at(Some(&self.fd), OsStr::new(name), OFlag::O_RDWR | no_follow(), 0) {
                    Ok(fd) => (fd, false),
                    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                        (open_at(Some(&self.fd), OsStr::new(name), read_flags(), 0)?, false)
                    }
                    Err(e) => return Err(link_error(name, e)),
                }
            }
            Err(e) => return Err(link_error(name, e)),
        };
        let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
        if kind_of(&st) != "regular file" {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name} is not a regular file ({})", kind_of(&st)),
            ));
        }
        clear_nonblock(&fd)?;
        Ok((File::from(fd), created))
    }

    /// Writes a new file in this directory under a fresh temp name (`O_EXCL`, never
    /// following a link), fsyncs it, and gives it `owner` (it was just made here) and
    /// `mode`. Nothing is visible under `name` until [`Prepared::commit`].
    pub fn prepare(&self, name: &str, bytes: &[u8], owner: Option<(u32, u32)>, mode: u32) -> io::Result<Prepared<'_>> {
        check_name(name)?;
        let temp = format!(".moonauth-tmp-{}-{:016x}", std::process::id(), fastrand::u64(..));
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | no_follow();
        let fd = open_at(Some(&self.fd), OsStr::new(&temp), flags, 0o600)?;
        let prepared = Prepared {
            dir: self,
            temp,
            name: name.to_string(),
            done: false,
        };
        let mut file = File::from(fd);
        clear_nonblock(&file)?;
        file.write_all(bytes)?;
        if let Some((uid, gid)) = owner {
            let st = nix::sys::stat::fstat(file.as_raw_fd())?;
            if (st.st_uid, st.st_gid) != (uid, gid) && nix::unistd::geteuid().is_root() {
                nix::unistd::fchown(file.as_raw_fd(), Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
            }
        }
        nix::sys::stat::fchmod(file.as_raw_fd(), Mode::from_bits_truncate(mode))?;
        file.sync_all()?;
        Ok(prepared)
    }

    /// Replaces `name` with `bytes` atomically: [`Dir::prepare`], rename, fsync of the
    /// directory. A link at `name` is replaced, never followed.
    pub fn write_atomic(&self, name: &str, bytes: &[u8], owner: Option<(u32, u32)>, mode: u32) -> io::Result<()> {
        self.prepare(name, bytes, owner, mode)?.commit()?;
        self.sync()
    }

    /// Creates the file `name` (mode `mode`) for writing, failing when anything, a link
    /// included, is already there.
    pub fn create_exclusive(&self, name: &str, mode: u32) -> io::Result<File> {
        check_name(name)?;
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | no_follow();
        let file = File::from(open_at(Some(&self.fd), OsStr::new(name), flags, mode)?);
        clear_nonblock(&file)?;
        Ok(file)
    }

    /// Removes the file (or link) `name`; absent is fine.
    pub fn remove_file(&self, name: &str) -> io::Result<()> {
        check_name(name)?;
        match nix::unistd::unlinkat(Some(self.fd.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives `name` (a file or directory inside this one, never a link's target) the owner
    /// `uid:gid` and `mode`, through a descriptor opened without following links. A regular
    /// file with other hard links is refused: its other names may be anywhere on the file
    /// system. Returns whether anything changed.
    pub fn own_entry(&self, name: &str, uid: u32, gid: u32, mode: Option<u32>) -> io::Result<Owned> {
        // Only files and directories are opened: opening a device may do something.
        match self.stat_entry(name)? {
            Some(st) if kind_of(&st) == "symbolic link" => return Ok(Owned::LeftLink),
            Some(st) if !matches!(kind_of(&st), "regular file" | "directory") => return Ok(Owned::Unchanged),
            _ => {}
        }
        let flags = OFlag::O_RDONLY | no_follow();
        let fd = match open_at(Some(&self.fd), OsStr::new(name), flags, 0) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(Errno::ELOOP as i32) => return Ok(Owned::LeftLink),
            Err(e) => return Err(e),
        };
        own_fd(&fd, uid, gid, mode)
    }

    /// Gives this directory itself the owner `uid:gid` and `mode`.
    pub fn own_self(&self, uid: u32, gid: u32, mode: Option<u32>) -> io::Result<Owned> {
        own_fd(&self.fd, uid, gid, mode)
    }

    /// The names in this directory (without `.` and `..`).
    pub fn entries(&self) -> io::Result<Vec<String>> {
        let fd = self.fd.try_clone()?;
        let mut dir = nix::dir::Dir::from_fd(fd.as_raw_fd())?;
        // nix's Dir owns the descriptor now.
        std::mem::forget(fd);
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(String::from_utf8_lossy(name).into_owned());
            }
        }
        Ok(names)
    }

    /// fsyncs the directory, so renames in it survive a crash.
    pub fn sync(&self) -> io::Result<()> {
        nix::unistd::fsync(self.fd.as_raw_fd()).map_err(io::Error::from)
    }
}

/// What [`Dir::own_entry`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owned {
    /// Owner and mode were already right.
    Unchanged,
    /// The owner, the mode or both were changed.
    Changed { uid: u32, gid: u32, mode: u32 },
    /// A symbolic link: left alone.
    LeftLink,
    /// A regular file with other hard links: left alone.
    LeftHardLinked,
}

fn own_fd(fd: &OwnedFd, uid: u32, gid: u32, mode: Option<u32>) -> io::Result<Owned> {
    let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
    let kind = kind_of(&st);
    if kind != "regular file" && kind != "directory" {
        return Ok(Owned::Unchanged);
    }
    if kind == "regular file" && st.st_nlink > 1 {
        return Ok(Owned::LeftHardLinked);
    }
    let current_mode = st.st_mode & 0o7777;
    let mut changed = false;
    if (st.st_uid, st.st_gid) != (uid, gid) {
        nix::unistd::fchown(fd.as_raw_fd(), Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
        changed = true;
    }
    if let Some(mode) = mode.filter(|m| *m != current_mode) {
        nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode))?;
        changed = true;
    }
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

/// A file written under a temp name by [`Dir::prepare`], waiting to be renamed into place.
/// Dropped without [`Prepared::commit`], the temp file is removed.
#[derive(Debug)]
pub struct Prepared<'a> {
    dir: &'a Dir,
    temp: String,
    name: String,
    done: bool,
}

impl Prepared<'_> {
    /// Renames the temp file over its target (atomic; a link there is replaced, not
    /// followed). The caller fsyncs the directory.
    pub fn commit(mut self) -> io::Result<()> {
        let fd = self.dir.fd.as_raw_fd();
        nix::fcntl::renameat(Some(fd), self.temp.as_str(), Some(fd), self.name.as_str())?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.dir.remove_file(&self.temp);
        }
    }
}

/// Reads the file at `path` whole under the same rules as [`Dir::read`]: the last
/// component is never followed, never a FIFO or device, at most `max` bytes.
pub fn read_file(path: &Path, max: u64) -> Result<Option<Vec<u8>>, ReadRefused> {
    let (parent, name) = split(path);
    let dir = match Dir::open(parent) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ReadRefused::Io { name, source }),
    };
    dir.read(&name, max)
}

/// A path's directory (`.` for a bare name) and its last component, for the `Dir` calls.
pub fn split(path: &Path) -> (&Path, String) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    (dir, name)
}

fn read_bounded(file: File, st: FileStat, name: &str, max: u64) -> Result<Vec<u8>, ReadRefused> {
    let size = u64::try_from(st.st_size).unwrap_or(0);
    if size > max {
        return Err(ReadRefused::TooLarge {
            name: name.to_string(),
            size,
            max,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ReadRefused::Io {
            name: name.to_string(),
            source,
        })?;
    if bytes.len() as u64 > max {
        return Err(ReadRefused::TooLarge {
            name: name.to_string(),
            size: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

/// What kind of file a status describes, in words.
pub fn kind_of(st: &FileStat) -> &'static str {
    match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => "regular file",
        SFlag::S_IFDIR => "directory",
        SFlag::S_IFLNK => "symbolic link",
        SFlag::S_IFIFO => "FIFO",
        SFlag::S_IFCHR => "character device",
        SFlag::S_IFBLK => "block device",
        SFlag::S_IFSOCK => "socket",
        _ => "unknown file type",
    }
}

/// A single path component: no `/`, not `.` or `..`, not empty.
fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a single file name"),
        ));
    }
    Ok(())
}

fn read_flags() -> OFlag {
    OFlag::O_RDONLY | no_follow()
}

/// Never follow a link, never block on a FIFO's open, never leak into a child.
fn no_follow() -> OFlag {
    OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY
}

fn clear_nonblock(fd: &impl AsRawFd) -> io::Result<()> {
    let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
    let flags = OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))?;
    Ok(())
}

fn link_error(name: &str, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(Errno::ELOOP as i32) {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name} is a symbolic link; refusing to follow it"),
        )
    } else {
        e
    }
}

fn open_at(dir: Option<&OwnedFd>, name: &OsStr, flags: OFlag, mode: u32) -> io::Result<OwnedFd> {
    let raw = nix::fcntl::openat(
        dir.map(|d| d.as_raw_fd()),
        Path::new(name).as_os_str().as_bytes(),
        flags,
        Mode::from_bits_truncate(mode),
    )?;
    // SAFETY: openat just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt};

    #[test]
    fn reads_refuse_links_fifos_and_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host file").unwrap();
        symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        nix::unistd::mkfifo(&dir.path().join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        std::fs::write(dir.path().join("big"), vec![b'x'; 100]).unwrap();
        symlink("/dev/zero", dir.path().join("zero")).unwrap();
        let d = Dir::open(dir.path()).unwrap();
        assert!(matches!(d.read("link", 1000), Err(ReadRefused::Link { .. })));
        assert!(matches!(d.read("zero", 1000), Err(ReadRefused::Link { .. })));
        assert!(matches!(
            d.read("fifo", 1000),
            Err(ReadRefused::NotRegular { kind: "FIFO", .. })
        ));
        assert!(matches!(
            d.read("big", 99),
            Err(ReadRefused::TooLarge { size: 100, .. })
        ));
        assert_eq!(d.read("big", 100).unwrap().unwrap().len(), 100);
        assert!(d.read("absent", 100).unwrap().is_none());
        assert!(d.read("../x", 100).is_err());
    }

    #[test]
    fn open_or_create_refuses_a_planted_link_and_reports_creation() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        symlink(&target, dir.path().join("lock")).unwrap();
        let d = Dir::open(dir.path()).unwrap();
        let err = d.open_or_create("lock", 0o600).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let (_, created) = d.open_or_create("fresh", 0o600).unwrap();
        assert!(created);
        let (_, created) = d.open_or_create("fresh", 0o600).unwrap();
        assert!(!created);
    }

    #[test]
    fn write_atomic_replaces_a_link_instead_of_writing_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        symlink(&target, dir.path().join("auth.json")).unwrap();
        let d = Dir::open(dir.path()).unwrap();
        d.write_atomic("auth.json", b"new", None, 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let meta = std::fs::symlink_metadata(dir.path().join("auth.json")).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(dir.path().join("auth.json")).unwrap(), b"new");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".moonauth-tmp-"))
            .collect();
        assert!(left.is_empty(), "no temp file left behind");
    }

    #[test]
    fn own_entry_leaves_links_and_hard_linked_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        let me = (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
        std::fs::write(dir.path().join("plain"), "x").unwrap();
        std::fs::write(dir.path().join("a"), "x").unwrap();
        std::fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        symlink("/etc/passwd", dir.path().join("link")).unwrap();
        let d = Dir::open(dir.path()).unwrap();
        assert_eq!(d.own_entry("link", me.0, me.1, Some(0o600)).unwrap(), Owned::LeftLink);
        assert_eq!(
            d.own_entry("a", me.0, me.1, Some(0o600)).unwrap(),
            Owned::LeftHardLinked
        );
        assert!(matches!(
            d.own_entry("plain", me.0, me.1, Some(0o600)).unwrap(),
            Owned::Changed { .. }
        ));
        assert_eq!(d.own_entry("plain", me.0, me.1, Some(0o600)).unwrap(), Owned::Unchanged);
        let mut names = d.entries().unwrap();
        names.sort();
        assert_eq!(names, ["a", "b", "link", "plain"]);
    }
}

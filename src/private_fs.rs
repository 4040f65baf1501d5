//! Writing files that matter: atomic replacement (temp file in the same
//! directory, fsync, rename, fsync the directory), 0600 files and 0700
//! directories checked after creation rather than assumed from the umask.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A file being written under a temporary name next to its final path.
/// Dropped without `commit`, the temporary file is removed; the final path
/// is never touched until the rename.
pub struct AtomicFile {
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> Result<Self> {
        let dir = parent_of(dest);
        let name = dest
            .file_name()
            .ok_or_else(|| Error::usage(format!("{} is not a file path", dest.display())))?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            hex(&crate::vault::crypto::random_array::<6>())
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(|e| Error::io("creating", &tmp, e))?;
        check_mode(&file, &tmp, 0o600)?;
        Ok(AtomicFile {
            file: Some(file),
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("file is present until commit")
    }

    /// fsync, then link to `dest` only if nothing is there (no clobber,
    /// even against a file created since the caller checked), fsync the
    /// directory.
    pub fn commit_new(mut self) -> Result<()> {
        let file = self.file.take().expect("file is present until commit");
        file.sync_all()
            .map_err(|e| Error::io("syncing", &self.tmp, e))?;
        drop(file);
        fs::hard_link(&self.tmp, &self.dest).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Error::usage(format!("{} already exists", self.dest.display()))
                    .with_hint("choose another path; an existing vault is never overwritten")
            } else {
                Error::io("creating", &self.dest, e)
            }
        })?;
        let _ = fs::remove_file(&self.tmp);
        self.tmp = PathBuf::new();
        sync_dir(&parent_of(&self.dest))
    }

    /// fsync, rename over `dest`, fsync the directory.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("file is present until commit");
        file.sync_all()
            .map_err(|e| Error::io("syncing", &self.tmp, e))?;
        drop(file);
        fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io("renaming into", &self.dest, e))?;
        // From here the temporary name is gone: nothing for Drop to remove.
        self.tmp = PathBuf::new();
        sync_dir(&parent_of(&self.dest))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            self.file = None;
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Creates `path`, which must not exist (a link there is not followed),
/// as a 0600 file (checked) holding `bytes`, synced.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io("creating", path, e))?;
    check_mode(&file, path, 0o600)?;
    io::Write::write_all(&mut file, bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("writing", path, e))
}

/// Opens for reading a file that lives where others may write (a vault, a
/// kept generation `<vault>.gN`, the guide's `secrets.enc`): the one way
/// safeclaw opens such a file, refusing anything but a regular file.
///
/// - `O_NONBLOCK`: opening a FIFO for reading otherwise waits for a
///   writer, possibly forever, before any check can run; this way the open
///   returns at once and the type check below refuses it. On a regular
///   file the flag changes nothing.
/// - `O_NOFOLLOW`: a symbolic link as the last component fails (`ELOOP`)
///   instead of being followed to wherever it points.
/// - `O_CLOEXEC`: not inherited by the processes safeclaw starts.
///
/// Not for password files: `--password-file <(cmd)` is a pipe on purpose.
pub fn open_regular(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            // ELOOP also means a loop of links further up the path: say
            // "symbolic link" only when the last component is one.
            let is_link = e.raw_os_error() == Some(libc::ELOOP)
                && fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            if is_link {
                Error::usage(format!("{} is a symbolic link", path.display())).with_hint(
                    "safeclaw does not follow a link here; pass the real path of the file (readlink -f shows it)",
                )
            } else {
                Error::io("opening", path, e)
            }
        })?;
    let kind = file
        .metadata()
        .map_err(|e| Error::io("reading", path, e))?
        .file_type();
    if kind.is_file() {
        return Ok(file);
    }
    use std::os::unix::fs::FileTypeExt;
    let what = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "of an unknown type"
    };
    Err(
        Error::usage(format!("{} is {what}, not a regular file", path.display()))
            .with_hint("pass the path of the file itself; nothing was read from it"),
    )
}

/// The directory a path lives in (`.` for a bare file name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing directory", dir, e))
}

/// Fails unless `file` has exactly `mode` in its permission bits.
pub fn check_mode(file: &File, path: &Path, mode: u32) -> Result<()> {
    let actual = file
        .metadata()
        .map_err(|e| Error::io("reading", path, e))?
        .mode()
        & 0o7777;
    if actual != mode {
        return Err(Error::failure(format!(
            "{} has mode {actual:04o}, expected {mode:04o}",
            path.display()
        )));
    }
    Ok(())
}

/// Creates a new directory with mode 0700, checked.
pub fn create_private_dir(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|e| Error::io("creating", path, e))?;
    let meta = fs::symlink_metadata(path).map_err(|e| Error::io("reading", path, e))?;
    if meta.is_dir() && meta.mode() & 0o7777 == 0o700 {
        return Ok(());
    }
    // Through the descriptor: whoever can write the parent may have put a
    // link where the new directory was.
    if !chmod_nofollow(path, Kind::Dir, 0o700)? {
        return Err(Error::failure(format!(
            "{} was replaced by something that is not a directory",
            path.display()
        )));
    }
    Ok(())
}

/// What `chown_nofollow` and `chmod_nofollow` may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// Opens `path` so that its owner or mode can be changed through the
/// descriptor. A directory the container can write (the vault's) may hold
/// a symlink to any host file, planted for root to follow, so the last
/// component is never followed (O_NOFOLLOW: a link fails with ELOOP), a
/// FIFO does not block the open (O_NONBLOCK), and the descriptor must be
/// a regular file or a directory as `kind` says. None, without an error,
/// for anything else, including a path that is gone.
fn open_nofollow(path: &Path, kind: Kind) -> Result<Option<File>> {
    let mut flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    if kind == Kind::Dir {
        flags |= libc::O_DIRECTORY;
    }
    let file = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(file) => file,
        // A link (ELOOP), not a directory (ENOTDIR), a socket (ENXIO), gone.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ELOOP | libc::ENOTDIR | libc::ENXIO | libc::ENOENT)
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(Error::io("opening", path, e)),
    };
    let meta = file.metadata().map_err(|e| Error::io("reading", path, e))?;
    let expected = match kind {
        // One name only: a second hard link to it may be anywhere on the
        // file system (a root-owned file linked in by someone who could),
        // and a change of owner would reach it too.
        Kind::File => meta.file_type().is_file() && meta.nlink() == 1,
        Kind::Dir => meta.file_type().is_dir(),
    };
    Ok(expected.then_some(file))
}

/// Gives `path` to `uid:gid` without following a link: false (and nothing
/// changed) when it is not a regular file or directory as `kind` says.
pub fn chown_nofollow(path: &Path, kind: Kind, uid: u32, gid: u32) -> Result<bool> {
    let Some(file) = open_nofollow(path, kind)? else {
        return Ok(false);
    };
    std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
        .map_err(|e| Error::io("handing over", path, e))?;
    Ok(true)
}

/// Sets the mode of `path` without following a link: false (and nothing
/// changed) when it is not a regular file or directory as `kind` says.
pub fn chmod_nofollow(path: &Path, kind: Kind, mode: u32) -> Result<bool> {
    let Some(file) = open_nofollow(path, kind)? else {
        return Ok(false);
    };
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io("setting the mode of", path, e))?;
    Ok(true)
}

/// A warning when a file holding secrets can be read by others.
pub fn exposure_warning(path: &Path) -> Option<String> {
    let meta = fs::metadata(path).ok()?;
    (meta.mode() & 0o077 != 0).then(|| {
        format!(
            "{} is readable by other users (mode {:04o}); chmod 600 it",
            path.display(),
            meta.mode() & 0o7777
        )
    })
}

/// True when `path` is missing or an empty directory.
pub fn is_absent_or_empty_dir(path: &Path) -> io::Result<bool> {
    match fs::read_dir(path) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_link_is_never_followed_to_its_target() {
        let dir = tempfile::TempDir::new().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"not ours to change").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("vault.g99");
        symlink(&target, &link).unwrap();
        let uid = fs::metadata(&target).unwrap().uid();
        assert!(!chmod_nofollow(&link, Kind::File, 0o666).unwrap());
        assert!(!chown_nofollow(&link, Kind::File, uid + 1, uid + 1).unwrap());
        assert_eq!(mode_of(&target), 0o600);
        assert_eq!(fs::metadata(&target).unwrap().uid(), uid);
        // A link to a directory, expected to be a directory: the same.
        let linked_dir = dir.path().join("linked-dir");
        symlink(dir.path(), &linked_dir).unwrap();
        let before = mode_of(dir.path());
        assert!(!chmod_nofollow(&linked_dir, Kind::Dir, 0o777).unwrap());
        assert_eq!(mode_of(dir.path()), before);
        // What it is asked for is changed.
        assert!(chmod_nofollow(&target, Kind::File, 0o640).unwrap());
        assert_eq!(mode_of(&target), 0o640);
        assert!(!chmod_nofollow(&target, Kind::Dir, 0o700).unwrap());
        assert!(!chmod_nofollow(&dir.path().join("gone"), Kind::File, 0o600).unwrap());
        // A second hard link: the other name could be any file of the
        // file system (found by review).
        let second = dir.path().join("vault.g98");
        fs::hard_link(&target, &second).unwrap();
        assert!(!chown_nofollow(&second, Kind::File, uid + 1, uid + 1).unwrap());
        assert_eq!(fs::metadata(&target).unwrap().uid(), uid);
    }

    #[test]
    fn a_fifo_is_skipped_without_blocking() {
        let dir = tempfile::TempDir::new().unwrap();
        let fifo = dir.path().join("vault.g7");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // A blocking open would wait here for a writer forever.
        assert!(!chown_nofollow(&fifo, Kind::File, 0, 0).unwrap());
        assert!(!chmod_nofollow(&fifo, Kind::File, 0o600).unwrap());
    }

    #[test]
    fn root_hands_over_a_regular_file_and_not_a_links_target() {
        if rustix::process::getuid().as_raw() != 0 {
            eprintln!("skipping: changing a file's owner needs root");
            return;
        }
        let dir = tempfile::TempDir::new().unwrap();
        let vault = dir.path().join("openclaw.vault");
        fs::write(&vault, b"vault").unwrap();
        let target = dir.path().join("elsewhere");
        fs::write(&target, b"root's").unwrap();
        let link = dir.path().join("openclaw.vault.g99");
        symlink(&target, &link).unwrap();
        assert!(chown_nofollow(dir.path(), Kind::Dir, 10001, 10001).unwrap());
        assert!(chown_nofollow(&vault, Kind::File, 10001, 10001).unwrap());
        assert!(!chown_nofollow(&link, Kind::File, 10001, 10001).unwrap());
        assert_eq!(fs::metadata(dir.path()).unwrap().uid(), 10001);
        assert_eq!(fs::metadata(&vault).unwrap().uid(), 10001);
        assert_eq!(fs::metadata(&target).unwrap().uid(), 0);
        assert_eq!(fs::symlink_metadata(&link).unwrap().uid(), 0);
    }
}

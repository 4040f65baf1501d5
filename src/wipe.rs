//! Best-effort removal of a plaintext directory after it was sealed.
//!
//! Honest limits, also shown to the user: overwriting in place reaches the
//! old blocks only on a plain filesystem over a plain disk. SSD wear
//! levelling, copy-on-write filesystems (btrfs, ZFS, APFS), snapshots,
//! journals and backups can all keep copies. Full-disk encryption is the
//! real protection; this only avoids leaving readable files behind.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

pub const LIMITS: &str = "unlinked files may survive on SSDs, copy-on-write filesystems, \
snapshots and backups; only full-disk encryption protects against that";

/// Overwrites every regular file under `root` with zeros, syncs, and
/// removes the whole tree including `root`. Does not follow symlinks.
pub fn wipe_dir(root: &Path) -> Result<()> {
    // Read-only directories and files in the tree must not stop the wipe.
    let _ = fs::set_permissions(root, fs::Permissions::from_mode(0o700));
    let entries = fs::read_dir(root).map_err(|e| Error::io("reading", root, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("reading", root, e))?;
        let path = entry.path();
        let ft = entry
            .file_type()
            .map_err(|e| Error::io("reading", &path, e))?;
        if ft.is_dir() {
            wipe_dir(&path)?;
        } else {
            if ft.is_file() {
                let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o600));
                overwrite(&path).map_err(|e| Error::io("overwriting", &path, e))?;
            }
            fs::remove_file(&path).map_err(|e| Error::io("removing", &path, e))?;
        }
    }
    fs::remove_dir(root).map_err(|e| Error::io("removing", root, e))
}

fn overwrite(path: &Path) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut left = file.metadata()?.len();
    let zeros = vec![0u8; 64 * 1024];
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    file.sync_all()
}

//! The vault's directory as the container mounts it: read-write, named by
//! its resolved path, owned by the container's user.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::private_fs::{self, Kind};

/// The vault's directory on the host and the vault's file name in it, as
/// the container gets them, and the uid:gid the container runs as.
pub struct VaultMount {
    pub dir: PathBuf,
    pub file: String,
    pub uid: u32,
    pub gid: u32,
}

impl VaultMount {
    /// The mount of `vault` (whose directory is resolved), handed to the
    /// container's user.
    pub fn of(vault: &Path) -> Result<VaultMount> {
        let dir = private_fs::parent_of(vault);
        let (uid, gid) = container_user(&dir, vault)?;
        Ok(VaultMount {
            file: file_name_of(vault)?,
            dir,
            uid,
            gid,
        })
    }
}

/// The vault's file name, as the guard is told it (the directory is mounted).
pub fn file_name_of(vault: &Path) -> Result<String> {
    vault
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| Error::usage(format!("{} has no usable file name", vault.display())))
}

/// The container runs as the caller's uid:gid so the vault it writes stays
/// the caller's. Run as root, safeclaw uses an unprivileged uid instead and
/// gives it the vault directory (root can still read it).
///
/// That uid can write the directory, so by the next root start anything in
/// it may be a link planted for root to follow (`openclaw.vault.g99 ->
/// /etc/shadow`): owners are changed through a descriptor opened without
/// following links (`private_fs::chown_nofollow`), and only regular files
/// are generations.
fn container_user(vault_dir: &Path, vault: &Path) -> Result<(u32, u32)> {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    if uid != 0 {
        return Ok((uid, gid));
    }
    let id = crate::runtime::layout::FALLBACK_UID;
    // The links in the directory's own path are the user's choice (the
    // container cannot write its parent): resolved here, so that only a
    // link inside it is refused.
    let vault_dir =
        std::fs::canonicalize(vault_dir).map_err(|e| Error::io("opening", vault_dir, e))?;
    let vault = vault_dir.join(file_name_of(vault)?);
    // A seal killed between keeping the current file as `.gN` (a hard
    // link) and renaming the new one over it leaves two names for one
    // file: drop the redundant one, so the vault has one name again.
    for (n, _) in crate::vault::generations::older(&vault)? {
        crate::vault::generations::unkeep(&vault, n);
    }
    // Both were just opened as a directory and a vault: anything else now
    // (a link, a second hard link) is a swap under our feet, and the guard
    // could not seal anyway.
    for (path, kind) in [(&vault_dir, Kind::Dir), (&vault, Kind::File)] {
        if !private_fs::chown_nofollow(path, kind, id, id)? {
            return Err(Error::failure(format!(
                "{} is not a {} with one name (a symbolic or second hard link?); not handing it to uid {id}",
                path.display(),
                if kind == Kind::Dir {
                    "directory"
                } else {
                    "regular file"
                }
            ))
            .with_hint("check what is in the vault's directory; the container can write it"));
        }
    }
    // A generation swapped for a link since it was listed is skipped.
    for (_, path) in crate::vault::generations::older(&vault)? {
        private_fs::chown_nofollow(&path, Kind::File, id, id)?;
    }
    // The blob stores and their blobs (docs/vault-format.md, "Blobs"):
    // the guard reads them and adds to them. Anything but a directory and
    // regular files of one name in it is skipped, never followed.
    crate::vault::blobs::hand_over(&vault_dir, id, id)?;
    Ok((id, id))
}

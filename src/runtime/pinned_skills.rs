//! The host's side of the pinned skills (docs/skills.md): before a
//! container starts from a vault that pins skills, their files are written
//! from the vault's records (authenticated, checked against their hashes)
//! into the gateway's own directory in safeclaw's home, which the
//! container mounts read-only at `skills::MOUNT`. The guard checks them
//! again before the gateway starts.

use std::path::Path;

use crate::error::{Error, Result};
use crate::skills::{pinned, tree};
use crate::vault::crypto::DataKey;
use crate::vault::VaultFile;

/// Writes the vault's pinned skills for the container `name`; returns the
/// host directory to mount (None: the vault pins none, and a directory
/// left by an earlier start is removed).
pub fn prepare(name: &str, vault: &Path, key: &DataKey) -> Result<Option<String>> {
    let records = VaultFile::open(vault)?.records(key)?;
    let pinned = pinned::load(&records)
        .map_err(|why| Error::damaged(format!("{}: its pinned skills: {why}", vault.display())))?;
    let dir = crate::paths::pinned_skills_dir(name)?;
    if pinned.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(None);
    }
    tree::materialize(&dir, &pinned)?;
    tree::verify(&dir, &pinned).map_err(Error::failure)?;
    Ok(Some(dir.display().to_string()))
}

/// Removes the gateway `name`'s copy of its pinned skills, once its
/// container is gone (a stop, the end of an onboarding session).
/// A name that is not a container's (`..`, a path) removes nothing.
pub fn remove(name: &str) {
    let Ok(dir) = crate::paths::pinned_skills_dir(name) else {
        return;
    };
    if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

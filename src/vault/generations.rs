//! Older generations of a vault, kept next to it as `<vault>.g<N>`: hard
//! links made before each new generation is renamed into place, so keeping
//! one costs no copy and no step can leave the newest file half-written.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where generation `n` of `vault` is kept once a newer one exists.
pub fn path_of(vault: &Path, n: u64) -> PathBuf {
    let mut p = vault.as_os_str().to_owned();
    p.push(format!(".g{n}"));
    PathBuf::from(p)
}

/// The kept older generations of `vault`, newest first, by file name.
/// Only regular files count: generations are hard links made by the guard,
/// and a symlink or FIFO with such a name was planted by someone who can
/// write the directory (the container can), for the host to follow.
pub fn older(vault: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let dir = crate::private_fs::parent_of(vault);
    let Some(name) = vault.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}.g");
    let mut found: Vec<(u64, PathBuf)> = fs::read_dir(&dir)
        .map_err(|e| Error::io("reading", &dir, e))?
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let n = file.strip_prefix(&prefix)?.parse::<u64>().ok()?;
            // The entry's own type (d_type, else lstat): links not followed.
            e.file_type().ok()?.is_file().then(|| (n, e.path()))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    Ok(found)
}

/// Keeps the current file of `vault` (generation `n`) as `<vault>.g<n>`:
/// a staged hard link renamed into place, so a crash leaves either no link
/// or a complete one.
pub fn keep(vault: &Path, n: u64) -> Result<()> {
    let target = path_of(vault, n);
    let mut staged = target.clone().into_os_string();
    staged.push(format!(
        ".tmp-{}",
        crate::private_fs::hex(&super::crypto::random_array::<6>())
    ));
    let staged = PathBuf::from(staged);
    fs::hard_link(vault, &staged).map_err(|e| Error::io("linking", &staged, e))?;
    fs::rename(&staged, &target).map_err(|e| {
        let _ = fs::remove_file(&staged);
        Error::io("keeping the previous generation as", &target, e)
    })
}

/// Undoes `keep(vault, n)` after a failed seal, only if `<vault>.g<n>` is
/// still the very file at `vault` (never an older generation's only copy).
pub fn unkeep(vault: &Path, n: u64) {
    use std::os::unix::fs::MetadataExt;
    let kept = path_of(vault, n);
    if let (Ok(a), Ok(b)) = (fs::symlink_metadata(vault), fs::symlink_metadata(&kept)) {
        if a.dev() == b.dev() && a.ino() == b.ino() {
            let _ = fs::remove_file(&kept);
        }
    }
}

/// Deletes all but the newest `count` older generations; returns how many
/// went (the blocks only they referenced can go too: `blobs`).
pub fn prune(vault: &Path, count: usize) -> Result<usize> {
    let mut removed = 0;
    for (_, path) in older(vault)?.into_iter().skip(count) {
        fs::remove_file(&path).map_err(|e| Error::io("removing", &path, e))?;
        removed += 1;
    }
    Ok(removed)
}

/// Removes the temporaries a killed seal can leave next to `vault`: the
/// new generation's temporary file and a staged link. Only names of our
/// own making are touched.
pub fn remove_stale_temporaries(vault: &Path) {
    let dir = crate::private_fs::parent_of(vault);
    let Some(name) = vault.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    // `.NAME.tmp-X`: a seal's new file; `NAME.gN.tmp-X`: a staged link of
    // `keep`; `.NAME.gN.tmp-X`: a kept generation being re-sealed (rekey).
    let (temp, staged, hidden) = (
        format!(".{name}.tmp-"),
        format!("{name}.g"),
        format!(".{name}.g"),
    );
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let staged_or_hidden = file.starts_with(&staged) || file.starts_with(&hidden);
        if file.starts_with(&temp) || (staged_or_hidden && file.contains(".tmp-")) {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_generations() {
        let dir = tempfile::TempDir::new().unwrap();
        let vault = dir.path().join("openclaw.vault");
        fs::write(&vault, b"3").unwrap();
        fs::write(path_of(&vault, 2), b"2").unwrap();
        fs::write(path_of(&vault, 1), b"1").unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, b"not a generation").unwrap();
        std::os::unix::fs::symlink(&elsewhere, path_of(&vault, 99)).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(path_of(&vault, 98))
            .status()
            .unwrap();
        assert!(fifo.success());
        fs::create_dir(path_of(&vault, 97)).unwrap();
        let found: Vec<u64> = older(&vault).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(found, [2, 1]);
        // Pruning leaves what is not a generation alone (and its target).
        prune(&vault, 0).unwrap();
        assert!(older(&vault).unwrap().is_empty());
        assert!(fs::symlink_metadata(path_of(&vault, 99)).is_ok());
        assert_eq!(fs::read(&elsewhere).unwrap(), b"not a generation");
    }
}

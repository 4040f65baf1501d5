//! `safeclaw vault export`: decrypt into a new 0700 directory, all or nothing.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::{Error, Result};
use crate::printer::Printer;
use crate::private_fs::{self, create_private_dir, hex, parent_of};
use crate::vault::{crypto::random_array, VaultFile, RECORDS_DIR};

use super::settings::VaultExport;
use super::shared;

const TMP_MARK: &str = ".safeclaw-export-";

pub fn run(args: VaultExport, printer: &Printer) -> Result<()> {
    let target = &args.to;
    let name = target
        .file_name()
        .ok_or_else(|| Error::usage(format!("{} is not a directory name", target.display())))?
        .to_owned();
    let existing = match fs::symlink_metadata(target) {
        Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
            return Err(Error::usage(format!(
                "{} exists and is not a directory",
                target.display()
            ))
            .with_hint("choose a new directory name"))
        }
        Ok(_) => {
            let empty = private_fs::is_absent_or_empty_dir(target)
                .map_err(|e| Error::io("reading", target, e))?;
            if !empty && !args.force {
                return Err(Error::usage(format!("{} is not empty", target.display()))
                    .with_hint("choose a new directory, or pass --force to replace its contents"));
            }
            Some(empty)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("reading", target, e)),
    };
    let parent = parent_of(target);

    let vault = open_generation(&args.vault.file, args.generation)?;
    let (key, _) = shared::unlock(&vault, &args.vault.password, printer)?;
    remove_stale_exports(&parent, &name, printer);

    let tmp = sibling(&parent, &name, TMP_MARK);
    create_private_dir(&tmp)?;
    let bar = printer.bar(vault.payload_len(), "exporting");
    let generation = vault.header().generation;
    // The records as files in `.safeclaw/`, where `vault create` reads them
    // back: the export is the user's, who may see them (the state dir the
    // agent reads never holds them).
    let result = vault
        .unpack(&key, &tmp, |n| bar.set_position(n))
        .and_then(|(stats, records)| records.write_dir(&tmp).map(|()| stats));
    bar.finish_and_clear();
    let stats = match result {
        Ok(stats) => stats,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if let Err(e) = put_in_place(&tmp, target, existing, &parent, &name) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    private_fs::sync_dir(&parent)?;

    let records_note = match stats.records {
        0 => String::new(),
        1 => format!(" and 1 record (in {RECORDS_DIR}/)"),
        n => format!(" and {n} records (in {RECORDS_DIR}/)"),
    };
    printer.result(
        &format!(
            "exported {} files, {} directories, {} symlinks ({} bytes){records_note} from generation {generation} into {}",
            stats.files + stats.hardlinks,
            stats.dirs,
            stats.symlinks,
            stats.bytes,
            target.display()
        ),
        json!({ "ok": true, "path": target, "generation": generation, "contents": stats }),
    );
    Ok(())
}

/// The newest generation, or generation `n` from the kept older ones.
fn open_generation(path: &Path, n: Option<u64>) -> Result<VaultFile> {
    let newest = VaultFile::open(path)?;
    let Some(n) = n.filter(|&n| n != newest.header().generation) else {
        return Ok(newest);
    };
    let kept = crate::vault::generations::path_of(path, n);
    if !kept.exists() {
        let have: Vec<String> = crate::vault::generations::older(path)?
            .iter()
            .map(|(g, _)| g.to_string())
            .collect();
        return Err(
            Error::usage(format!("generation {n} of {} is not kept", path.display())).with_hint(
                format!(
                    "the newest is {}; older ones kept: {}",
                    newest.header().generation,
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                ),
            ),
        );
    }
    let vault = VaultFile::open(&kept)?;
    if vault.header().generation != n {
        return Err(Error::damaged(format!(
            "{} says it is generation {}, not {n}",
            kept.display(),
            vault.header().generation
        )));
    }
    Ok(vault)
}

fn sibling(parent: &Path, name: &std::ffi::OsStr, mark: &str) -> PathBuf {
    let mut n = OsString::from(".");
    n.push(name);
    n.push(mark);
    n.push(hex(&random_array::<6>()));
    parent.join(n)
}

/// Renames the finished temporary directory to the target. An empty
/// target is replaced by the rename itself; a non-empty one (`--force`) is
/// moved aside first and removed after.
fn put_in_place(
    tmp: &Path,
    target: &Path,
    existing: Option<bool>,
    parent: &Path,
    name: &std::ffi::OsStr,
) -> Result<()> {
    let aside = match existing {
        Some(false) => {
            let aside = sibling(parent, name, ".safeclaw-old-");
            fs::rename(target, &aside).map_err(|e| Error::io("moving aside", target, e))?;
            Some(aside)
        }
        _ => None,
    };
    fs::rename(tmp, target).map_err(|e| Error::io("renaming into", target, e))?;
    if let Some(aside) = aside {
        fs::remove_dir_all(&aside).map_err(|e| Error::io("removing", &aside, e))?;
    }
    Ok(())
}

/// A killed export (SIGKILL, power cut) can leave its temporary directory
/// with plaintext in it; the next export to the same target removes it.
fn remove_stale_exports(parent: &Path, name: &std::ffi::OsStr, printer: &Printer) {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(TMP_MARK);
    let prefix = prefix.to_string_lossy().into_owned();
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let path = entry.path();
            if fs::remove_dir_all(&path).is_ok() {
                printer.warn(&format!(
                    "removed {} left by an interrupted export",
                    path.display()
                ));
            }
        }
    }
}

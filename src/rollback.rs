//! Rollback awareness: the highest generation this host has seen for each
//! vault, kept in `~/.safeclaw/seen-generations.json`, so that an older
//! copy put in place of a vault is noticed.
//!
//! Limits (docs/vault-format.md): vaults are told apart by their canonical
//! path, and the record is as trustworthy as the home directory it lives
//! in; it catches a restored backup or a swapped file, not an attacker who
//! can also edit the record. The home is never mounted into a container
//! (the vault has a directory of its own, `paths`), and the record is only
//! written from a header whose MAC was checked: a forged header can make a
//! command warn, never raise what is recorded.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::printer::Printer;

const RECORD: &str = "seen-generations.json";
/// Bounds what a damaged record makes us read.
const MAX_RECORD: u64 = 1 << 20;

/// Records `generation` for `vault` and warns if a higher one was seen.
/// Only for a generation read from a header that authenticated with the
/// data key (an unauthenticated one goes to `warn_if_older`). Best effort:
/// a missing home or an unreadable record never fails the command it is
/// part of.
pub fn record_authenticated(vault: &Path, generation: u64, printer: &Printer) {
    if let Some(seen) = record(vault, generation) {
        warn(vault, generation, seen, printer);
    }
}

/// Warns if a higher generation than `generation` was seen for `vault`,
/// writing nothing: for headers read without the key (`vault info`,
/// `status`), which anyone who can write the vault's directory can forge.
pub fn warn_if_older(vault: &Path, generation: u64, printer: &Printer) {
    let Ok(home) = crate::paths::home() else {
        return;
    };
    if let Some(seen) = highest_seen(&home, vault).filter(|&seen| seen > generation) {
        warn(vault, generation, seen, printer);
    }
}

fn warn(vault: &Path, generation: u64, seen: u64, printer: &Printer) {
    printer.warn(&format!(
        "{} is at generation {generation}, but generation {seen} was seen on this host: \
         an older copy may have been put in place (rollback); `safeclaw vault generations` lists what is kept",
        vault.display()
    ));
}

/// The highest generation recorded for `vault` in the record under
/// `home`, without writing anything (`safeclaw audit`).
pub fn highest_seen(home: &Path, vault: &Path) -> Option<u64> {
    let key = record_key(vault)?;
    read_record(&home.join(RECORD)).get(&key).copied()
}

/// A vault's name in the record: its directory resolved, the file name as
/// it is. Not `canonicalize`: a link swapped in place of the vault (the
/// container can write its directory) must not move the record to
/// wherever it points.
fn record_key(vault: &Path) -> Option<String> {
    crate::paths::in_resolved_dir(vault)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

fn read_record(path: &Path) -> BTreeMap<String, u64> {
    // No link followed, no FIFO waited on: the home is private, but a
    // record is no reason to hang a start.
    crate::private_fs::open_regular(path)
        .ok()
        .and_then(|f| {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_RECORD), &mut buf).ok()?;
            serde_json::from_slice(&buf).ok()
        })
        .unwrap_or_default()
}

/// Returns the higher generation seen before, if any; otherwise stores
/// `generation` as the newest seen.
fn record(vault: &Path, generation: u64) -> Option<u64> {
    let key = record_key(vault)?;
    let home = crate::paths::private_home().ok()?;
    let path = home.join(RECORD);
    let mut seen = read_record(&path);
    match seen.get(&key) {
        Some(&before) if before > generation => Some(before),
        Some(&before) if before == generation => None,
        _ => {
            seen.insert(key, generation);
            let mut out = crate::private_fs::AtomicFile::create(&path).ok()?;
            out.file()
                .write_all(&serde_json::to_vec_pretty(&seen).ok()?)
                .ok()?;
            out.commit().ok()?;
            None
        }
    }
}

//! The record of a gateway's last upgrade (docs/upgrade.md): which image
//! it ran before and which it was switched to, the generation sealed
//! before the switch (a copy of which is kept beside the record, out of
//! the retention of `<vault>.gN`), and how far the switch got. Kept in
//! safeclaw's home, which no container sees, and written atomically, so a
//! killed `upgrade` leaves a record that says what to undo.
//!
//! The format is pure (`encode`/`decode` over bytes); the files are below.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What to do when the saved copy cannot serve.
const GIVE_UP: &str = "nothing was changed; to give the rollback up, move the record `upgrades/NAME.json` out of safeclaw's home and start with `--image`; `safeclaw vault generations` lists the vault's kept generations";

/// Bounds what a damaged record makes us read.
const MAX_RECORD: u64 = 64 * 1024;
const FORMAT: u32 = 1;

/// An image as the engine knows it: the reference it was asked for by
/// and the ID that reference named then (a tag can be moved since).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    pub reference: String,
    pub id: String,
}

/// How far an upgrade got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The old gateway was stopped and sealed; the new image may be
    /// running, unconfirmed. A record left so means the upgrade was killed:
    /// the next `start` (or `rollback`) returns to `from`.
    Switching,
    /// The new image was healthy: it is the one the gateway runs.
    Kept,
    /// Returned to `from` with the state of `before`.
    RolledBack,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub format: u32,
    /// The gateway's container name.
    pub name: String,
    /// The vault it runs from (absolute, its directory resolved).
    pub vault: PathBuf,
    pub phase: Phase,
    pub from: ImageRef,
    pub to: ImageRef,
    /// The generation sealed before the switch.
    pub before: u64,
    /// Unix seconds when the upgrade began.
    pub at: u64,
    /// Whether the gateway ran when the upgrade began (it is left as it was).
    pub was_running: bool,
}

impl Record {
    /// The image the gateway runs when nothing else is asked.
    pub fn current(&self) -> &ImageRef {
        match self.phase {
            Phase::Kept => &self.to,
            Phase::Switching | Phase::RolledBack => &self.from,
        }
    }
}

pub fn encode(record: &Record) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(record).expect("a record serializes");
    bytes.push(b'\n');
    bytes
}

/// Reads a record; anything but this format, whole, is refused.
pub fn decode(bytes: &[u8]) -> std::result::Result<Record, String> {
    let record: Record = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if record.format != FORMAT {
        return Err(format!(
            "format {} (this safeclaw reads {FORMAT})",
            record.format
        ));
    }
    if !record.vault.is_absolute() {
        return Err("the vault's path is not absolute".into());
    }
    Ok(record)
}

/// A new record of an upgrade of `name` that is about to switch.
pub fn begin(
    name: &str,
    vault: &Path,
    from: ImageRef,
    to: ImageRef,
    before: u64,
    was_running: bool,
) -> Record {
    Record {
        format: FORMAT,
        name: name.to_string(),
        vault: vault.to_path_buf(),
        phase: Phase::Switching,
        from,
        to,
        before,
        at: crate::vault::now(),
        was_running,
    }
}

/// The record of `name`'s last upgrade: `upgrades/<name>.json`.
fn record_path(name: &str) -> Result<PathBuf> {
    Ok(crate::paths::upgrades_dir(name)?.join(format!("{name}.json")))
}

/// The copy of generation `generation` saved before an upgrade of `name`:
/// `upgrades/<name>.g<N>.before.vault`. Named by its generation, so a new
/// upgrade's copy never replaces the one the current record names.
pub fn saved_path(name: &str, generation: u64) -> Result<PathBuf> {
    Ok(crate::paths::upgrades_dir(name)?.join(format!("{name}.g{generation}.before.vault")))
}

/// The record of `name`'s last upgrade, if there is one.
pub fn load(name: &str) -> Result<Option<Record>> {
    let path = record_path(name)?;
    let record = read(&path)?;
    if let Some(r) = &record {
        if r.name != name {
            return Err(Error::failure(format!(
                "{} records an upgrade of {}, not of {name}",
                path.display(),
                r.name
            ))
            .with_hint("move it away; it was not written by safeclaw"));
        }
    }
    Ok(record)
}

fn read(path: &Path) -> Result<Option<Record>> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    let bytes = crate::io_util::read_bounded(path, MAX_RECORD)?;
    decode(&bytes).map(Some).map_err(|why| {
        Error::failure(format!(
            "{} is not an upgrade record safeclaw can read: {why}",
            path.display()
        ))
        .with_hint("move it away; `safeclaw start --image IMAGE` chooses the image by hand")
    })
}

/// Writes `record` in place of the one before, atomically (0600), then
/// removes the saved copies no record names any more.
pub fn save(record: &Record) -> Result<()> {
    let path = record_path(&record.name)?;
    let mut file = crate::private_fs::AtomicFile::create(&path)?;
    std::io::Write::write_all(file.file(), &encode(record))
        .map_err(|e| Error::io("writing", &path, e))?;
    file.commit()?;
    let keep = (record.phase != Phase::RolledBack).then_some(record.before);
    forget_copies(&record.name, keep);
    Ok(())
}

/// Removes `name`'s saved copies but the one of generation `keep`, and the
/// temporaries a killed copy left. Best effort: a leftover costs disk only.
fn forget_copies(name: &str, keep: Option<u64>) {
    let Ok(dir) = crate::paths::upgrades_dir(name) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let (hidden, file) = match file.strip_prefix('.') {
            Some(f) => (true, f.to_string()),
            None => (false, file),
        };
        // Exactly `NAME.gN.before.vault` (another gateway's name may begin
        // with this one's), or a temporary of it.
        let Some(copy) = copy_generation(name, &file) else {
            continue;
        };
        let temporary = hidden && copy.1;
        if temporary || (!hidden && !copy.1 && Some(copy.0) != keep) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// For `NAME.gN.before.vault` (a saved copy) or `NAME.gN.before.vault.tmp-X`
/// (its temporary), N and whether it is the temporary; None for any other
/// name.
fn copy_generation(name: &str, file: &str) -> Option<(u64, bool)> {
    let rest = file.strip_prefix(name)?.strip_prefix(".g")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let n = rest[..digits].parse().ok()?;
    match rest[digits..].strip_prefix(".before.vault")? {
        "" => Some((n, false)),
        tail if tail.starts_with(".tmp-") => Some((n, true)),
        _ => None,
    }
}

/// An interrupted upgrade (`switching`) recorded for `vault`, if any: until
/// it is recovered, the saved copy is what the vault returns to, so a
/// change of the vault's passwords, secrets or policy now would be undone
/// by the recovery.
pub fn interrupted_for(vault: &Path) -> Result<Option<Record>> {
    let vault = crate::paths::in_resolved_dir(vault)?;
    Ok(all()?
        .into_iter()
        .find(|r| r.phase == Phase::Switching && r.vault == vault))
}

/// Every upgrade record in the home (for `image prune`, which keeps the
/// images they name). One that cannot be read fails the listing: an image
/// it names could otherwise be removed.
pub fn all() -> Result<Vec<Record>> {
    let dir = crate::paths::home()?.join(crate::paths::UPGRADES_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("reading", &dir, e)),
    };
    let mut records = Vec::new();
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().ends_with(".json") {
            records.extend(read(&e.path())?);
        }
    }
    Ok(records)
}

/// Keeps a copy of the vault file at `vault` (generation `generation`,
/// checked again here) as `name`'s saved generation, written under a
/// temporary name, synced and renamed into place (0600). A copy, not a
/// hard link: the vault must have one name, or the start refuses to hand
/// it to the container (a second link is how a planted file would be
/// passed in). A copy that stands alone (`vault::copy_standalone`): every
/// file inline, none in the vault's blob store, which the container can
/// write and which no longer keeps blocks only this copy references.
pub fn save_generation(
    name: &str,
    vault: &Path,
    key: &crate::vault::crypto::DataKey,
    generation: u64,
) -> Result<PathBuf> {
    let saved = saved_path(name, generation)?;
    crate::vault::copy_standalone(vault, key, generation, &saved)?;
    Ok(saved)
}

/// Checks that the saved copy `record` names opens with `key` and is its
/// generation: before anything is stopped for a rollback, so a copy that
/// cannot serve (the key changed since, the file went) costs nothing.
pub fn check_saved(record: &Record, key: &crate::vault::crypto::DataKey) -> Result<PathBuf> {
    let saved = saved_path(&record.name, record.before)?;
    let opened = crate::vault::VaultFile::open(&saved).map_err(|e| {
        let message = format!("the generation saved before the upgrade: {}", e.message);
        Error::new(e.class, message).with_hint(GIVE_UP)
    })?;
    opened.authenticate(key).map_err(|e| {
        Error::new(
            e.class,
            format!(
                "{} does not open with the vault's key: {}",
                saved.display(),
                e.message
            ),
        )
        .with_hint(format!(
            "the vault's key changed since the upgrade (`vault passwd`/`rekey`); {GIVE_UP}"
        ))
    })?;
    if opened.header().generation != record.before {
        return Err(Error::damaged(format!(
            "{} is generation {}, not {}",
            saved.display(),
            opened.header().generation,
            record.before
        ))
        .with_hint(GIVE_UP));
    }
    Ok(saved)
}

/// Only one safeclaw upgrades, rolls back or recovers a gateway at a
/// time: an exclusive lock on `upgrades/<name>.lock`, held until the
/// returned file is dropped (or the process dies, SIGKILL included).
pub fn lock(name: &str) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = crate::paths::upgrades_dir(name)?.join(format!("{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .map_err(|e| Error::io("opening", &path, e))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(Error::usage(format!(
            "another safeclaw is upgrading or rolling back {name}"
        ))
        .with_hint("wait for it to finish; `safeclaw status` shows the gateway")),
        Err(e) => Err(Error::failure(format!("locking {}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        begin(
            "openclaw",
            Path::new("/home/me/.safeclaw/vault/openclaw.vault"),
            ImageRef {
                reference: "safeclaw/openclaw:2026.9.5".into(),
                id: "sha256:aa".into(),
            },
            ImageRef {
                reference: "safeclaw/openclaw:2026.9.6".into(),
                id: "sha256:bb".into(),
            },
            7,
            true,
        )
    }

    #[test]
    fn saved_copies_are_told_apart_from_another_gateways() {
        assert_eq!(
            copy_generation("work", "work.g7.before.vault"),
            Some((7, false))
        );
        assert_eq!(
            copy_generation("work", "work.g7.before.vault.tmp-a1b2"),
            Some((7, true))
        );
        for other in [
            "work.github.g7.before.vault",
            "work.g.before.vault",
            "work.g7.before.vaultx",
            "work.g7x.before.vault",
            "work.json",
        ] {
            assert_eq!(copy_generation("work", other), None, "{other}");
        }
    }

    #[test]
    fn a_record_reads_back_and_names_the_image_of_its_phase() {
        let mut r = sample();
        assert_eq!(decode(&encode(&r)).unwrap(), r);
        assert_eq!(r.current().id, "sha256:aa");
        r.phase = Phase::Kept;
        assert_eq!(decode(&encode(&r)).unwrap().current().id, "sha256:bb");
        r.phase = Phase::RolledBack;
        assert_eq!(r.current().id, "sha256:aa");
    }

    #[test]
    fn anything_but_a_whole_record_of_this_format_is_refused() {
        let good = String::from_utf8(encode(&sample())).unwrap();
        let cases = [
            good.replace("\"format\": 1", "\"format\": 2"),
            good.replace("\"switching\"", "\"done\""),
            good.replace("/home/me", "home/me"),
            good.replace("\"before\": 7,", ""),
            good.replace("\"at\"", "\"extra\": 1, \"at\""),
            good[..good.len() / 2].to_string(),
        ];
        for case in cases {
            assert!(decode(case.as_bytes()).is_err(), "{case}");
        }
    }
}

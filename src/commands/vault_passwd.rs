//! `safeclaw vault passwd` and `safeclaw vault rekey`: a new data key for
//! the vault and every generation kept next to it (docs/vault-format.md,
//! "Changing the password").
//!
//! Rewrapping the data key under a new password is not enough: the kept
//! `.gN` files (and any copy or backup) still carry the old password's
//! slot around the same data key, and that key would open every later
//! generation. So both commands make a new data key, re-seal the current
//! file and each kept generation under it (or delete the kept ones, when
//! asked), and leave one password slot: the new password for `passwd`,
//! the same password with a fresh salt and the chosen KDF cost for `rekey`.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::{Class, Error, Result};
use crate::password::Confirm;
use crate::printer::Printer;
use crate::runtime::engine::Engine;

use crate::vault::crypto::{DataKey, MasterKey, SecretsKey};
use crate::vault::format::{self, KdfParams, Slot};
use crate::vault::{self, crypto, VaultFile};

use super::settings::VaultRekey;
use super::shared;

pub fn run(s: VaultRekey, engine: &Engine, printer: &Printer) -> Result<()> {
    let vault = VaultFile::open(&s.vault.file)?;
    let old_password =
        shared::read_password(&s.vault.password, "vault password", Confirm::Once, printer)?;
    let spinner = printer.spinner("deriving key (Argon2id)");
    let unlocked = vault.unlock_keys(&old_password);
    spinner.finish_and_clear();
    let old = unlocked?;
    let old_key = old.data.clone();
    let other_slots = vault
        .header()
        .slots
        .iter()
        .filter(|s| matches!(s, Slot::Password(_)))
        .count()
        - 1;
    drop(vault);
    refuse_if_running(&s.vault.file, engine, printer)?;
    let kdf = shared::checked_kdf(s.kdf, printer)?;
    let new_password = match &s.new_password {
        Some(source) => shared::read_new_password(source, printer)?,
        None => old_password,
    };

    let mut new = NewKeys {
        master: MasterKey::generate(),
        old_secrets: old.secrets_key(),
        password: new_password,
        kdf,
        master_slot: None,
        data_slot: None,
    };
    let new_key = new.master.data_key();

    // A killed seal or rekey leaves temporaries: a staged link is a whole
    // copy under the old key, so it goes before anything else.
    vault::generations::remove_stale_temporaries(&s.vault.file);
    // The current file first, staged, not committed: a damaged one stops
    // everything before any kept generation is touched (or deleted).
    let kept = vault::generations::older(&s.vault.file)?;
    let bar = printer.bar(kept.len() as u64 + 1, "re-sealing under a new data key");
    let current = VaultFile::open(&s.vault.file)?;
    let (version, slots) = new.for_file(&current, printer)?;
    let current = vault::reseal(current, &old_key, &new_key, version, &slots)?;
    bar.inc(1);
    let generation = current.generation;
    let mut outcome = Outcome::default();
    for (n, path) in &kept {
        if s.drop_generations {
            std::fs::remove_file(path).map_err(|e| Error::io("removing", path, e))?;
            outcome.deleted.push(*n);
        } else {
            rekey_kept(*n, path, &old_key, &mut new, &mut outcome, printer)?;
        }
        bar.inc(1);
    }
    // Last: until this rename the vault opens exactly as before, and a
    // rerun after a crash finds the kept files it already did under a key
    // it cannot open (they open with the new password) and leaves them.
    current.commit()?;
    bar.finish_and_clear();
    // No file is under the old key now: its blob store goes.
    let dir = crate::private_fs::parent_of(&s.vault.file);
    if let Err(e) = vault::blobs::collect_garbage(&dir, &old_key) {
        printer.warn(&format!(
            "the blob store of the old key was not removed: {}",
            e.message
        ));
    }
    crate::rollback::record_authenticated(&s.vault.file, generation, printer);

    for (n, path, why) in &outcome.left {
        printer.warn(&format!(
            "generation {n} ({}) was left as it is: {why}; it is not one of this vault's (if it is a copy of another vault with the same password, the old password still opens it)",
            path.display()
        ));
    }
    for (n, why) in &outcome.damaged {
        printer.warn(&format!(
            "generation {n} was damaged ({why}) and opened with the old password: it was deleted, since it could not be re-sealed"
        ));
    }
    if other_slots > 0 {
        printer.note(&format!(
            "{other_slots} other key slot(s) wrapped the old data key and were removed"
        ));
    }
    let what = if s.new_password.is_some() {
        "password changed"
    } else {
        "rekeyed"
    };
    let kept_text = if s.drop_generations {
        format!("{} kept generation(s) deleted", kept.len())
    } else {
        format!(
            "{} kept generation(s) re-sealed under it",
            outcome.resealed.len()
        )
    };
    printer.result(
        &format!(
            "{what}: {} (generation {generation}) is sealed under a new data key, {kept_text}; \
             the old password and the old key open none of them, but copies made before (backups) still open with the old password",
            s.vault.file.display()
        ),
        json!({
            "ok": true,
            "path": s.vault.file,
            "generation": generation,
            "new_data_key": true,
            "kept_generations": {
                "resealed": outcome.resealed,
                "deleted": outcome.deleted,
                "deleted_damaged": outcome.damaged.iter().map(|(n, why)| json!({ "generation": n, "why": why })).collect::<Vec<_>>(),
                "left": outcome.left.iter().map(|(n, p, why)| json!({ "generation": n, "path": p, "why": why })).collect::<Vec<_>>(),
            },
            "removed_slots": other_slots,
            "kdf": { "algorithm": "argon2id", "memory_kib": kdf.m_kib, "iterations": kdf.t, "parallelism": kdf.p },
        }),
    );
    Ok(())
}

/// What became of the kept generations.
#[derive(Default)]
struct Outcome {
    resealed: Vec<u64>,
    /// Deleted as asked (`--drop-generations`).
    deleted: Vec<u64>,
    /// Under the old key but damaged: they opened with the old password
    /// and could not be re-sealed, so they are gone.
    damaged: Vec<(u64, String)>,
    /// Not under the vault's key at all: not ours to touch.
    left: Vec<(u64, PathBuf, String)>,
}

/// Re-seals one kept generation, or says why not. Only a file whose header
/// authenticates with the old key is one of this vault's: such a file must
/// not survive under the old key, so a damaged one is deleted. Anything
/// else (not a vault, another key: a file put there, or one an interrupted
/// rekey already did) is left and named.
fn rekey_kept(
    n: u64,
    path: &Path,
    old_key: &DataKey,
    new: &mut NewKeys,
    outcome: &mut Outcome,
    printer: &Printer,
) -> Result<()> {
    let file = match VaultFile::open(path) {
        Ok(file) => file,
        Err(e) if matches!(e.class, Class::Damaged | Class::Usage) => {
            outcome.left.push((n, path.to_path_buf(), e.message));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if file.authenticate(old_key).is_err() {
        outcome.left.push((
            n,
            path.to_path_buf(),
            "its header does not authenticate with the vault's key".to_string(),
        ));
        return Ok(());
    }
    let resealed = new.for_file(&file, printer).and_then(|(version, slots)| {
        vault::reseal(file, old_key, &new.master.data_key(), version, &slots)
    });
    match resealed {
        Ok(resealed) => {
            resealed.commit()?;
            outcome.resealed.push(n);
        }
        // The store lacks a block or holds a bad one: the file itself may
        // be whole (a store left behind by a move, restored later), so it is
        // not deleted; the rekey stops, and a rerun finishes it.
        Err(e) if e.hint.as_deref() == Some(vault::blobs::DAMAGE_HINT) => {
            return Err(Error::damaged(format!(
                "generation {n} ({}) cannot be re-sealed: {}",
                path.display(),
                e.message
            ))
            .with_hint(
                "its blob store is missing blocks: restore the vault's whole directory and run this again (the vault still opens with the old password), or pass --drop-generations",
            ));
        }
        Err(e) if e.class == Class::Damaged => {
            std::fs::remove_file(path).map_err(|e| Error::io("removing", path, e))?;
            outcome.damaged.push((n, e.message));
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// The new keys of a rekey and the slots each file gets, by its version.
struct NewKeys {
    master: MasterKey,
    /// Opens the old secrets sections (the old master's).
    old_secrets: Option<SecretsKey>,
    password: crate::password::Password,
    kdf: KdfParams,
    /// The new password's slot around the master key (versions 2, 3) and
    /// around the data key (version 1): each an Argon2 run, made once,
    /// when first needed.
    master_slot: Option<Slot>,
    data_slot: Option<Slot>,
}

impl NewKeys {
    /// The version and slots `file` is re-sealed with.
    fn for_file(&mut self, file: &VaultFile, printer: &Printer) -> Result<(u16, Vec<Slot>)> {
        if file.header().version < format::RECORDS_VERSION {
            let slot = self.slot(false, printer);
            return Ok((file.header().version, vec![slot]));
        }
        let mut slots = vec![self.slot(true, printer)];
        if let Some(sealed) = file.secrets_section() {
            let plain = self
                .old_secrets
                .as_ref()
                .and_then(|k| k.open(sealed))
                .ok_or_else(|| {
                    Error::damaged(format!(
                        "{}: its secrets section does not open with the vault's key",
                        file.path.display()
                    ))
                })?;
            slots.push(Slot::Secrets(self.master.secrets_key().seal(&plain)));
        }
        Ok((format::VERSION, slots))
    }

    fn slot(&mut self, around_master: bool, printer: &Printer) -> Slot {
        let (cached, key) = if around_master {
            (&mut self.master_slot, *self.master.as_bytes())
        } else {
            (&mut self.data_slot, *self.master.data_key().as_bytes())
        };
        let key = zeroize::Zeroizing::new(key);
        cached
            .get_or_insert_with(|| {
                let spinner = printer.spinner("deriving the new key's slot (Argon2id)");
                let wraps = if around_master {
                    crypto::Wraps::MasterKey
                } else {
                    crypto::Wraps::DataKey
                };
                let slot =
                    crypto::wrap_with_password(&key, wraps, self.password.as_bytes(), self.kdf);
                spinner.finish_and_clear();
                Slot::Password(slot)
            })
            .clone()
    }
}

/// A running bot's guard holds the current data key and seals its next
/// generation under it: after a rekey that seal would fail and the state
/// since the last checkpoint would be lost. So no rekey under a running
/// bot. Without an engine there is no bot to ask about: say so.
fn refuse_if_running(vault: &Path, engine: &Engine, printer: &Printer) -> Result<()> {
    super::switch::refuse_while_interrupted(vault, "passwords")?;
    let dir = crate::private_fs::parent_of(vault);
    let dir = std::fs::canonicalize(&dir).map_err(|e| Error::io("reading", &dir, e))?;
    let found = crate::runtime::container::running_with_mount(engine, &dir);
    match found {
        Ok(None) => Ok(()),
        Ok(Some(name)) => Err(Error::usage(format!(
            "{name} is running from this vault: its guard holds the current data key and would seal its next generation under it"
        ))
        .with_hint(format!("`safeclaw stop --name {name}` first, then run this again"))),
        Err(e) if e.class == Class::Engine => {
            printer.warn(
                "no engine answered, so no running bot could be checked for; if one runs from this vault, its next seal will fail: stop it first",
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}

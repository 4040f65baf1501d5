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

use crate::cli::{PasswdArgs, RekeyArgs};
use crate::error::{Class, Error, Result};
use crate::password::{Confirm, Source};
use crate::printer::Printer;
use crate::vault::{self, crypto, crypto::DataKey, format::KdfParams, format::Slot, VaultFile};

/// What `passwd` and `rekey` were asked, resolved.
struct Settings {
    file: PathBuf,
    password: Source,
    /// None: keep the current password (`rekey`).
    new_password: Option<Source>,
    kdf: KdfParams,
    drop_generations: bool,
}

pub fn passwd(args: PasswdArgs, printer: &Printer) -> Result<()> {
    run(
        Settings {
            file: args.file,
            password: args.password.source(),
            new_password: Some(match args.new_password_file {
                Some(path) => Source::File(path),
                None => Source::Prompt,
            }),
            kdf: args.kdf.params(),
            drop_generations: args.drop_generations,
        },
        printer,
    )
}

pub fn rekey(args: RekeyArgs, printer: &Printer) -> Result<()> {
    run(
        Settings {
            file: args.file,
            password: args.password.source(),
            new_password: None,
            kdf: args.kdf.params(),
            drop_generations: args.drop_generations,
        },
        printer,
    )
}

fn run(s: Settings, printer: &Printer) -> Result<()> {
    let vault = VaultFile::open(&s.file)?;
    let old_password = super::read_password(&s.password, "vault password", Confirm::Once, printer)?;
    let spinner = printer.spinner("deriving key (Argon2id)");
    let unlocked = vault.unlock(&old_password);
    spinner.finish_and_clear();
    let (old_key, _) = unlocked?;
    let other_slots = vault.header().slots.len() - 1;
    drop(vault);
    refuse_if_running(&s.file, printer)?;
    let kdf = super::vault_create::checked_kdf(s.kdf, printer)?;
    let new_password = match &s.new_password {
        Some(source) => super::read_new_password(source, printer)?,
        None => old_password,
    };

    let new_key = DataKey::generate();
    let spinner = printer.spinner("deriving the new key's slot (Argon2id)");
    let slots = [Slot::Password(crypto::wrap_with_password(
        &new_key,
        new_password.as_bytes(),
        kdf,
    ))];
    spinner.finish_and_clear();

    // The kept generations first, the current file last: until the last
    // rename the vault still opens as before, and a rerun after a crash
    // finds the kept files it already did under a key it cannot open
    // (they open with the new password) and leaves them.
    let kept = vault::generations::older(&s.file)?;
    let bar = printer.bar(kept.len() as u64 + 1, "re-sealing under a new data key");
    let mut resealed = Vec::new();
    let mut left = Vec::new();
    for (n, path) in &kept {
        if s.drop_generations {
            std::fs::remove_file(path).map_err(|e| Error::io("removing", path, e))?;
        } else {
            match vault::reseal(path, &old_key, &new_key, &slots) {
                Ok(_) => resealed.push(*n),
                // Not a file under the current key: not ours to re-seal (a
                // rerun after an interrupted rekey, or a file put there).
                Err(e) if matches!(e.class, Class::Damaged | Class::Usage) => {
                    left.push((*n, path.clone(), e.message))
                }
                Err(e) => return Err(e),
            }
        }
        bar.inc(1);
    }
    let generation = vault::reseal(&s.file, &old_key, &new_key, &slots)?;
    bar.finish_and_clear();
    crate::rollback::record_authenticated(&s.file, generation, printer);

    for (n, path, why) in &left {
        printer.warn(&format!(
            "generation {n} ({}) was left as it is: {why}; delete it if you do not need it",
            path.display()
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
        format!("{} kept generation(s) re-sealed under it", resealed.len())
    };
    printer.result(
        &format!(
            "{what}: {} (generation {generation}) is sealed under a new data key, {kept_text}; \
             the old password and the old key open none of them, but copies made before (backups) still open with the old password",
            s.file.display()
        ),
        json!({
            "ok": true,
            "path": s.file,
            "generation": generation,
            "new_data_key": true,
            "kept_generations": {
                "resealed": resealed,
                "deleted": if s.drop_generations { kept.iter().map(|(n, _)| *n).collect() } else { Vec::new() },
                "left": left.iter().map(|(n, p, why)| json!({ "generation": n, "path": p, "why": why })).collect::<Vec<_>>(),
            },
            "removed_slots": other_slots,
            "kdf": { "algorithm": "argon2id", "memory_kib": kdf.m_kib, "iterations": kdf.t, "parallelism": kdf.p },
        }),
    );
    Ok(())
}

/// A running bot's guard holds the current data key and seals its next
/// generation under it: after a rekey that seal would fail and the state
/// since the last checkpoint would be lost. So no rekey under a running
/// bot. Without an engine there is no bot to ask about: say so.
fn refuse_if_running(vault: &Path, printer: &Printer) -> Result<()> {
    let dir = crate::private_fs::parent_of(vault);
    let dir = std::fs::canonicalize(&dir).map_err(|e| Error::io("reading", &dir, e))?;
    let found = crate::engine::runtime()?.block_on(async {
        let docker = crate::engine::connect().await?;
        crate::engine::running_with_mount(&docker, &dir).await
    });
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

//! `safeclaw vault create`: seal a plaintext directory into a new vault.

use std::fs;

use serde_json::json;

use crate::error::{Error, Result};
use crate::printer::Printer;
use crate::vault::{self, archive, Records, VaultFile, RECORDS_DIR};
use crate::wipe;

use super::settings::VaultCreate;
use super::shared;

pub fn run(args: VaultCreate, printer: &Printer) -> Result<()> {
    let source = &args.from;
    let out = crate::paths::new_vault(&args.out)?;
    match fs::metadata(source) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::usage(format!(
                "{} is not a directory",
                source.display()
            )))
        }
        Err(e) => return Err(Error::io("reading", source, e)),
    }
    shared::check_new_vault_path(&out)?;
    // `DIR/.safeclaw/` (as `vault export` writes it) holds the records,
    // taken only when asked: a state directory the agent could write
    // could hold one it made (an open egress policy). Read before the
    // password prompt, so a refused one costs nothing.
    let records = if args.with_records {
        Records::read_dir(source)?
    } else {
        Records::new()
    };
    let kdf = shared::checked_kdf(args.kdf, printer)?;
    let password = shared::read_new_password(&args.password, printer)?;

    let bar = printer.bar(archive::content_size(source), "sealing");
    let read_back = args.wipe_source.then(|| password.clone());
    let stats = vault::create(&out, password, kdf, |w| {
        archive::pack(source, &records, w, &mut |n| bar.set_position(n))
    });
    bar.finish_and_clear();
    let stats = stats?;
    // A warning, not a note: with --wipe-source it is gone from the disk
    // too, and the directory need not be OpenClaw's.
    for left_out in &stats.regenerable {
        printer.warn(&format!(
            "left out {left_out}: OpenClaw rebuilds it at start (docs/vault-format.md)"
        ));
    }
    for skipped in &stats.skipped {
        if skipped == archive::SKIPPED_RECORDS_DIR {
            if !args.with_records {
                printer.warn(&format!(
                    "left out {}/{RECORDS_DIR}: safeclaw's records are taken from it only with --with-records",
                    source.display()
                ));
            }
            continue;
        }
        printer.warn(&format!(
            "skipped {skipped}: sockets, FIFOs and devices are not sealed"
        ));
    }

    if let Some(password) = read_back {
        // Only destroy the plaintext once the vault on disk opens with the
        // password and reads back whole.
        let vault = VaultFile::open(&out)?;
        let spinner = printer.spinner("reading the new vault back (Argon2id)");
        let unlocked = vault.unlock(&password);
        spinner.finish_and_clear();
        let (key, _) = unlocked?;
        let check = vault.verify(&key, |_| {})?;
        let sealed = (stats.files, stats.bytes, stats.records);
        if (check.files, check.bytes, check.records) != sealed {
            return Err(Error::failure(
                "the new vault does not read back as sealed; the source was kept",
            ));
        }
        wipe::wipe_dir(source)?;
        printer.warn(&format!(
            "{} was overwritten and removed; {}",
            source.display(),
            wipe::LIMITS
        ));
    }

    let records_note = match stats.records {
        0 => String::new(),
        1 => format!(" and 1 record from {RECORDS_DIR}/"),
        n => format!(" and {n} records from {RECORDS_DIR}/"),
    };
    printer.result(
        &format!(
            "sealed {} files, {} directories, {} symlinks ({} bytes){records_note} into {} (generation 1)",
            stats.files,
            stats.dirs,
            stats.symlinks,
            stats.bytes,
            out.display()
        ),
        json!({
            "ok": true,
            "path": out,
            "generation": 1,
            "contents": stats,
            "source_wiped": args.wipe_source,
        }),
    );
    Ok(())
}

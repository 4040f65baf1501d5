//! `safeclaw vault passwd`: rewrap the data key under a new password.

use serde_json::json;

use crate::cli::PasswdArgs;
use crate::error::Result;
use crate::password::Source;
use crate::printer::Printer;
use crate::vault::{crypto, format::Slot, VaultFile};

pub fn run(args: PasswdArgs, printer: &Printer) -> Result<()> {
    let vault = VaultFile::open(&args.file)?;
    let (key, index) = super::unlock(&vault, &args.password.source(), printer)?;
    let kdf = super::vault_create::checked_kdf(args.kdf.params(), printer)?;
    let new_source = match &args.new_password_file {
        Some(path) => Source::File(path.clone()),
        None => Source::Prompt,
    };
    let new_password = super::read_new_password(&new_source, printer)?;

    let spinner = printer.spinner("deriving key (Argon2id)");
    let slot = crypto::wrap_with_password(&key, new_password.as_bytes(), kdf);
    spinner.finish_and_clear();
    let mut header = vault.header().clone();
    header.slots[index] = Slot::Password(slot);
    let generation = header.generation;
    vault.rewrite_header(&key, &header, &args.file)?;

    printer.result(
        &format!(
            "password changed for {} (payload untouched, generation {generation}); the old password no longer opens it",
            args.file.display()
        ),
        json!({
            "ok": true,
            "path": args.file,
            "generation": generation,
            "kdf": { "algorithm": "argon2id", "memory_kib": kdf.m_kib, "iterations": kdf.t, "parallelism": kdf.p },
        }),
    );
    Ok(())
}

//! `safeclaw vault verify`: authenticate every chunk, check the archive, write nothing.

use serde_json::json;

use crate::error::Result;
use crate::printer::Printer;
use crate::vault::VaultFile;

use super::settings::Unlock;
use super::shared;

pub fn run(args: Unlock, printer: &Printer) -> Result<()> {
    let vault = VaultFile::open(&args.file)?;
    let (key, _) = shared::unlock(&vault, &args.password, printer)?;
    let generation = vault.header().generation;
    crate::rollback::record_authenticated(&args.file, generation, printer);
    let bar = printer.bar(vault.payload_len(), "verifying");
    let stats = vault.verify(&key, |n| bar.set_position(n));
    bar.finish_and_clear();
    let stats = stats?;
    printer.result(
        &format!(
            "ok: {} authenticated (generation {generation}): {} files, {} directories, {} symlinks, {} bytes",
            args.file.display(),
            stats.files + stats.hardlinks,
            stats.dirs,
            stats.symlinks,
            stats.bytes
        ),
        json!({ "ok": true, "path": args.file, "generation": generation, "authenticated": true, "contents": stats }),
    );
    Ok(())
}

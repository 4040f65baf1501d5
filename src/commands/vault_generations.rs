//! `safeclaw vault generations`: the newest and the kept older
//! generations, from their headers (no password; not authenticated).

use std::path::PathBuf;

use serde_json::json;

use crate::error::Result;
use crate::printer::Printer;
use crate::vault::VaultFile;

pub fn run(file: PathBuf, printer: &Printer) -> Result<()> {
    let mut rows = vec![(VaultFile::open(&file)?, file.clone())];
    for (_, path) in crate::vault::generations::older(&file)? {
        rows.push((VaultFile::open(&path)?, path));
    }
    let mut text = String::from("generation  created               bytes       file");
    let mut list = Vec::new();
    for (vault, path) in &rows {
        let h = vault.header();
        let created = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(h.created),
        )
        .to_string();
        text.push_str(&format!(
            "\n{:<11} {created}  {:<11} {}",
            h.generation,
            vault.file_len,
            path.display()
        ));
        list.push(json!({ "generation": h.generation, "created": created, "bytes": vault.file_len, "path": path }));
    }
    // Version 4: the blocks of large files, which the generations share,
    // are beside them (docs/vault-format.md, "Blobs").
    let mut stores = Vec::new();
    for store in crate::vault::blobs::stores_in(&crate::private_fs::parent_of(&file)) {
        text.push_str(&format!(
            "\nshared      {} blocks, {} bytes in {}",
            store.blocks,
            store.bytes,
            store.path.display()
        ));
        stores.push(json!({ "path": store.path, "blocks": store.blocks, "bytes": store.bytes }));
    }
    printer.result(
        &text,
        json!({ "ok": true, "generations": list, "blob_stores": stores }),
    );
    Ok(())
}

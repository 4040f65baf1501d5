//! `safeclaw vault info`: the header, without a password.

use std::path::PathBuf;

use serde_json::json;

use crate::error::Result;
use crate::printer::Printer;
use crate::vault::format::Slot;
use crate::vault::VaultFile;

pub fn run(file: PathBuf, printer: &Printer) -> Result<()> {
    let vault = VaultFile::open(&file)?;
    let h = vault.header();
    crate::rollback::warn_if_older(&file, h.generation, printer);
    let created = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(h.created),
    )
    .to_string();
    let mut slots_json = Vec::new();
    let mut text = format!(
        "vault       {}\nformat      safeclaw vault version {}\ngeneration  {}\ncreated     {created}\n\
         payload     {} bytes in {} chunks of {} bytes\n",
        file.display(),
        h.version,
        h.generation,
        vault.payload_len(),
        vault.chunk_count(),
        h.chunk_size,
    );
    for (i, slot) in h.slots.iter().enumerate() {
        match slot {
            Slot::Password(s) => {
                text.push_str(&format!(
                    "slot {}      password, argon2id m={} KiB t={} p={}{}\n",
                    i + 1,
                    s.kdf.m_kib,
                    s.kdf.t,
                    s.kdf.p,
                    if s.kdf.is_weak() {
                        " (weaker than RFC 9106; run `safeclaw vault passwd` to upgrade)"
                    } else {
                        ""
                    }
                ));
                slots_json.push(json!({
                    "kind": "password",
                    "kdf": { "algorithm": "argon2id", "version": 19,
                             "memory_kib": s.kdf.m_kib, "iterations": s.kdf.t, "parallelism": s.kdf.p },
                    "weak": s.kdf.is_weak(),
                }));
            }
            Slot::Secrets(body) => {
                text.push_str(&format!(
                    "slot {}      secrets, sealed for the egress proxy ({} bytes; `safeclaw secrets list`)\n",
                    i + 1,
                    body.len()
                ));
                slots_json.push(json!({ "kind": "secrets", "bytes": body.len() }));
            }
            Slot::Unknown { kind, body } => {
                text.push_str(&format!(
                    "slot {}      unknown kind {kind} ({} bytes)\n",
                    i + 1,
                    body.len()
                ));
                slots_json.push(json!({ "kind": "unknown", "kind_id": kind, "bytes": body.len() }));
            }
        }
    }
    if h.version >= crate::vault::format::BLOBS_VERSION {
        text.push_str(
            "blocks      files over 16 KiB are in a blob store beside it (safeclaw-blobs-*): back up the whole directory\n",
        );
    }
    text.push_str(
        "note        not authenticated without the password; `safeclaw vault verify` checks it",
    );
    printer.result(
        &text,
        json!({
            "ok": true,
            "path": file,
            "format_version": h.version,
            "generation": h.generation,
            "created": created,
            "created_unix": h.created,
            "chunk_size": h.chunk_size,
            "payload_bytes": vault.payload_len(),
            "chunks": vault.chunk_count(),
            "file_bytes": vault.file_len,
            "slots": slots_json,
            "authenticated": false,
        }),
    );
    Ok(())
}

//! Vault checks from the header alone (no password): readable, today's
//! format, key derivation at least as strong as today's defaults, and no
//! sign of a rollback.

use std::path::Path;

use super::{Area, Finding, Findings, Severity};
use crate::vault::format::{KdfParams, Slot};
use crate::vault::VaultFile;

/// `home`: safeclaw's home, where the rollback record is.
pub fn check(vault: &Path, home: &Path) -> Vec<Finding> {
    let mut out = Findings::new(Area::Vault);
    if !vault.exists() {
        out.add(
            "vault.absent",
            Severity::Info,
            "no vault",
            format!("{} does not exist", vault.display()),
            "safeclaw onboard, or safeclaw vault migrate for the guide's secrets.enc",
            "safeclaw",
        );
        return out.into_vec();
    }
    let file = match VaultFile::open(vault) {
        Ok(f) => f,
        Err(e) => {
            out.add(
                "vault.unreadable",
                Severity::High,
                "the vault's header cannot be read (damaged, or not a safeclaw vault of a version this safeclaw knows)",
                e.message.clone(),
                "restore a kept generation: safeclaw vault generations",
                "docs/vault-format.md",
            );
            return out.into_vec();
        }
    };
    let h = file.header();
    let shown = vault.display();
    for slot in &h.slots {
        let Slot::Password(slot) = slot else { continue };
        let k = slot.kdf;
        let d = KdfParams::DEFAULT;
        let params = format!("argon2id m={} KiB t={} p={}", k.m_kib, k.t, k.p);
        if k.is_weak() {
            out.add(
                "vault.kdf-weak",
                Severity::Medium,
                "the password's key derivation is weaker than RFC 9106 recommends",
                format!("{shown}: {params}"),
                &format!(
                    "safeclaw vault rekey {shown} (a new data key, the vault and its kept generations re-sealed, the slot at m={} KiB t={})",
                    d.m_kib, d.t
                ),
                "RFC 9106 section 4",
            );
        } else if k.m_kib < d.m_kib || k.t < d.t {
            out.add(
                "vault.kdf-below-default",
                Severity::Low,
                "the password's key derivation is weaker than today's defaults",
                format!(
                    "{shown}: {params}; new vaults use m={} KiB t={}",
                    d.m_kib, d.t
                ),
                &format!("safeclaw vault rekey {shown}"),
                "docs/vault-format.md",
            );
        }
    }
    if let Err(e) = crate::paths::check_dedicated_dir_of(vault, Some(home)) {
        out.add(
            "vault.dir-shared",
            Severity::High,
            "the vault's directory, which the container gets read-write, holds more than the vault: \
             the gateway could read and rewrite it (safeclaw's trust records, other vaults, your files)",
            e.message.clone(),
            &e.hint.clone().unwrap_or_default(),
            "docs/vault-format.md (rollback record)",
        );
    }
    if let Some(seen) = crate::rollback::highest_seen(home, vault) {
        if seen > h.generation {
            out.add(
                "vault.rollback",
                Severity::High,
                "the vault is older than one seen before on this host: an old copy was put in place",
                format!("{shown}: generation {}, generation {seen} was seen", h.generation),
                "find out who replaced it; safeclaw vault generations lists the kept ones",
                "docs/vault-format.md (rollback)",
            );
        }
    }
    out.add(
        "vault.format",
        Severity::Info,
        "vault format and generation",
        format!(
            "{shown}: safeclaw vault version {}, generation {}",
            h.version, h.generation
        ),
        "nothing to do",
        "docs/vault-format.md",
    );
    out.into_vec()
}

//! `safeclaw rollback`: back to the image and the state from before the
//! gateway's last upgrade (docs/upgrade.md), after a confirmation of what
//! is dropped from the running state (it stays in the vault as a kept
//! generation). An interrupted upgrade is finished the same way.

use std::io::IsTerminal;

use serde_json::json;

use crate::error::{Error, Result};
use crate::printer::Printer;
use crate::runtime::container;
use crate::runtime::engine::Engine;
use crate::upgrade::{self, Phase};
use crate::vault::VaultFile;

use super::settings::Rollback;
use super::{shared, switch};

pub fn run(s: Rollback, engine: &Engine, printer: &Printer) -> Result<()> {
    let settings = &s.start.bot;
    let name = settings.name.clone();
    switch::refuse_under_pin("go back with NixOS's own rollback")?;
    let _lock = upgrade::lock(&name)?;
    let Some(mut record) = upgrade::load(&name)? else {
        return Err(
            Error::usage(format!("no upgrade of {name} is recorded")).with_hint(
                "rollback returns to the image and state from before `safeclaw upgrade`; `safeclaw vault generations` lists older states",
            ),
        );
    };
    if record.phase == Phase::RolledBack {
        return Err(Error::usage(format!(
            "{name}'s upgrade to {} was rolled back already (to {}, with the state of generation {})",
            record.to.reference, record.from.reference, record.before
        ))
        .with_hint("`safeclaw upgrade --image IMAGE` switches again"));
    }
    if let Some(given) = &s.start.vault {
        let given = crate::paths::in_resolved_dir(given)?;
        if given != record.vault {
            return Err(Error::usage(format!(
                "{name}'s upgrade was recorded for the vault {}, not {}",
                record.vault.display(),
                given.display()
            )));
        }
    }
    switch::refuse_other_vault(engine, &name, &record.vault)?;
    let running = container::is_running(engine, &name)?;
    // The current file may be the failed run's to damage (an interrupted
    // upgrade): the question does without its number then.
    // Read without the key: a number the container could have written.
    let newest = VaultFile::open(&record.vault)
        .map(|v| format!("generation {}, unverified", v.header().generation))
        .unwrap_or_else(|_| "the vault's current file".into());
    let when = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(record.at),
    );
    let since = match (record.phase, running) {
        (Phase::Kept, true) => format!(
            "What changed since stays in the vault ({newest} and the seal of the running gateway), but is not what runs."
        ),
        (Phase::Kept, false) => {
            format!("What changed since stays in the vault ({newest}), but is not what runs.")
        }
        _ => format!(
            "The upgrade was interrupted: its gateway{} is ended without a seal.",
            if running { ", running now," } else { "" }
        ),
    };
    let question = format!(
        "roll {name} back to {} and the state sealed before the upgrade to {} (generation {}, {when})? {since}",
        record.from.reference, record.to.reference, record.before,
    );
    if !s.yes {
        if !std::io::stdin().is_terminal() {
            printer.note(&question);
            return Err(Error::usage(
                "refusing to roll back without confirmation: stdin is not a terminal",
            )
            .with_hint("pass --yes to roll back"));
        }
        if !shared::confirm(&question)? {
            printer.result(
                "nothing changed",
                json!({ "ok": true, "rolled_back": false }),
            );
            return Ok(());
        }
    }
    // After an interrupted upgrade the current file was the failed run's
    // to write: the password opens the saved copy first then.
    let saved = upgrade::saved_path(&name, record.before)?;
    let (first, second) = if record.phase == Phase::Kept {
        (&record.vault, &saved)
    } else {
        (&saved, &record.vault)
    };
    let opened = VaultFile::open(first).or_else(|e| VaultFile::open(second).map_err(|_| e))?;
    let keys = shared::unlock_keys(&opened, &s.start.password, printer)?;
    drop(opened);
    // Before anything is stopped: a copy that cannot serve costs nothing.
    upgrade::check_saved(&record, &keys.data)?;
    let was_running = container::is_running(engine, &name)?;
    // A kept upgrade's gateway is sealed first: its state is the newest
    // generation afterwards, kept. An unconfirmed one is not.
    crate::interrupt::check()?;
    let sealed = if was_running && record.phase == Phase::Kept {
        switch::stop_and_seal(engine, &name, printer)?;
        // The number from the vault's authenticated header, not the one
        // the guard's (forgeable) output gave.
        Some(switch::authenticated_generation(&record.vault, &keys.data)?)
    } else {
        None
    };
    let generation = switch::roll_back(engine, &mut record, &keys, settings, was_running, printer)?;
    printer.result(
        &format!(
            "rolled {name} back to {}: the state of generation {} is now generation {generation}{}{}",
            record.from.reference,
            record.before,
            sealed
                .map(|g| format!("; the state before the rollback is kept as generation {g}"))
                .unwrap_or_default(),
            if was_running { "; running" } else { "" }
        ),
        json!({
            "ok": true, "rolled_back": true, "name": name, "image": record.from,
            "restored_generation": record.before, "generation": generation,
            "sealed_before_rollback": sealed, "running": was_running,
        }),
    );
    Ok(())
}

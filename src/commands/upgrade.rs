//! `safeclaw upgrade --image IMAGE`: the gateway switched to another image
//! without risking its state (docs/upgrade.md). Stopped and sealed (the
//! generation "before the upgrade", also saved beside the upgrade record,
//! out of the vault's retention), started in the new image from that
//! generation, and kept only once healthy; otherwise ended without a
//! seal, that generation sealed again as the newest, and the old image
//! started as it was.

use serde_json::json;

use crate::error::{Error, Result};
use crate::image::image_id;
use crate::image::resolve::resolve;
use crate::printer::Printer;
use crate::runtime::container;
use crate::runtime::engine::Engine;
use crate::upgrade::{self, ImageRef, Phase};
use crate::vault::VaultFile;

use super::settings::Upgrade;
use super::{shared, switch};

pub fn run(s: Upgrade, engine: &Engine, printer: &Printer) -> Result<()> {
    let settings = &s.start.bot;
    let name = settings.name.clone();
    if crate::image::pin::from_env()?.is_some() {
        return Err(Error::usage(
            "this safeclaw comes from Nix: its gateway runs the pinned image",
        )
        .with_hint(
            "upgrade OpenClaw in the flake's lock and rebuild (docs/upgrade.md, \"With Nix\")",
        ));
    }
    if let Some(r) = switch::interrupted(&name)? {
        return Err(Error::usage(format!(
            "an earlier upgrade of {name} to {} was interrupted",
            r.to.reference
        ))
        .with_hint(format!(
            "`safeclaw start` (or `safeclaw rollback`) returns to {} first; then upgrade again",
            r.from.reference
        )));
    }
    let to_reference = resolve(engine, &s.start.image, false, printer)?;
    let docker = engine.docker()?;
    let Some(to_id) = engine.block_on(image_id(docker, &to_reference)) else {
        return Err(
            Error::usage(format!("the image {to_reference} is not in the engine")).with_hint(
                "build or load it first (`safeclaw image build --tag T`, `docker load`)",
            ),
        );
    };
    let was_running = container::is_running(engine, &name)?;
    let from = if was_running {
        let (reference, id) = container::image_of(engine, &name)?
            .ok_or_else(|| Error::failure(format!("{name} went away while being inspected")))?;
        ImageRef { reference, id }
    } else {
        // What a plain start would run now.
        let none = crate::cli::ImageChoice {
            image: None,
            allow_unpinned_image: false,
        };
        let choice = switch::image_choice(&none, &name, engine, printer)?;
        let reference = resolve(engine, &choice, false, printer)?;
        let id = engine
            .block_on(image_id(docker, &reference))
            .ok_or_else(|| {
                Error::usage(format!("{name}'s current image {reference} is not in the engine"))
                    .with_hint("`safeclaw start --image IMAGE` runs another image; there is nothing to return to")
            })?;
        ImageRef { reference, id }
    };
    if crate::image::same_id(&from.id, &to_id) {
        return Err(Error::usage(format!(
            "{name} {} {to_reference} already",
            if was_running { "runs" } else { "starts in" }
        ))
        .with_hint("build or load the new image under another tag, then pass it as --image"));
    }
    let to = ImageRef {
        reference: to_reference.clone(),
        id: to_id,
    };

    let vault = crate::paths::vault(&s.start.vault)?;
    let vault = crate::runtime::bot::vault_to_start(engine, vault, printer)?;
    let opened = VaultFile::open(&vault)?;
    let keys = shared::unlock_keys(&opened, &s.start.password, printer)?;
    drop(opened);

    // 1. The state before: sealed, and saved where no retention reaches.
    if was_running {
        printer.note(&format!("stopping {name} and sealing its state"));
        switch::stop_and_seal(engine, &name, printer)?;
    }
    let current = VaultFile::open(&vault)?;
    current.authenticate(&keys.data)?;
    let before = current.header().generation;
    drop(current);
    crate::rollback::record_authenticated(&vault, before, printer);
    upgrade::save_generation(&name, &vault)?;
    let mut record = upgrade::begin(&name, &vault, from, to, before, was_running);
    upgrade::save(&record)?;

    // 2. The new image, from that generation, until healthy.
    printer.note(&format!(
        "starting {name} in {to_reference} from generation {before}"
    ));
    let started = shared::bot_of(
        settings,
        to_reference.clone(),
        vault.clone(),
        before,
        keys.clone(),
        Vec::new(),
        printer,
    )
    .and_then(|bot| bot.start(engine).map(|_| bot));
    let verdict = match &started {
        Err(e) => Err(format!("it did not start: {}", e.message)),
        Ok(_) => {
            let spinner = printer.spinner("waiting for the new gateway to be healthy");
            let healthy = switch::wait_healthy(engine, &name, s.health_timeout);
            spinner.finish_and_clear();
            healthy
        }
    };

    // 3. Kept, or back to where it was.
    match verdict {
        Ok(took) => {
            record.phase = Phase::Kept;
            upgrade::save(&record)?;
            if let Ok(bot) = &started {
                bot.tell_egress(printer);
            }
            if !was_running {
                switch::stop_and_seal(engine, &name, printer)?;
            }
            printer.result(
                &format!(
                    "upgraded {name}: {} -> {to_reference}, healthy after {:.1} s; the state from before is generation {before} (`safeclaw rollback` returns to it){}",
                    record.from.reference,
                    took.as_secs_f64(),
                    if was_running { "" } else { "; stopped again, as it was" }
                ),
                json!({
                    "ok": true, "name": name, "from": record.from, "to": record.to,
                    "before_generation": before, "healthy_after_ms": took.as_millis() as u64,
                    "running": was_running,
                }),
            );
            Ok(())
        }
        Err(why) => {
            printer.warn(&format!(
                "the gateway in {to_reference} is not healthy: {why}; rolling back"
            ));
            let generation =
                switch::roll_back(engine, &mut record, &keys, settings, was_running, printer)?;
            Err(Error::failure(format!(
                "the upgrade of {name} to {to_reference} failed ({why}): rolled back to {} with the state of generation {before}, now generation {generation}{}",
                record.from.reference,
                if was_running { ", running again" } else { "" }
            ))
            .with_hint(
                "what the failed run sealed is kept as older generations (`safeclaw vault generations`); `safeclaw start --image IMAGE` then `safeclaw logs` shows why it failed",
            ))
        }
    }
}

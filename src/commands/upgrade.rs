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
    switch::refuse_under_pin("upgrade OpenClaw in the flake's lock and rebuild")?;
    let _lock = upgrade::lock(&name)?;
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
    let mut choice = s.start.image.clone();
    if let Some(version) = &s.openclaw {
        // Minutes once (npm's download is cached); before anything stops.
        choice.image = Some(crate::image::twin::build_version(
            engine, version, None, printer,
        )?);
    }
    let to_reference = resolve(engine, &choice, false, printer)?;
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
    switch::refuse_other_vault(engine, &name, &vault)?;
    let opened = VaultFile::open(&vault)?;
    let keys = shared::unlock_keys(&opened, &s.start.password, printer)?;
    drop(opened);

    // 1. The state before: sealed, and saved where no retention reaches.
    let sealed = if was_running {
        printer.note(&format!("stopping {name} and sealing its state"));
        Some(switch::stop_and_seal(engine, &name, printer)?)
    } else {
        None
    };
    let before = switch::authenticated_generation(&vault, &keys.data)?;
    // The seal's number comes from the guard's output, which the gateway
    // can forge; the header's is authenticated. They must agree, and the
    // vault must not be older than what this host has seen.
    let seen = crate::paths::home()
        .ok()
        .and_then(|home| crate::rollback::highest_seen(&home, &vault))
        .unwrap_or(0);
    let stopped = "the gateway is stopped; `safeclaw vault generations` lists what is kept";
    if before < seen {
        return Err(Error::damaged(format!(
            "{} is at generation {before}, but this host saw generation {seen}: an older copy may have been put in place; not upgrading from it",
            vault.display()
        ))
        .with_hint(stopped));
    }
    if let Some(g) = sealed.filter(|g| *g != before) {
        return Err(Error::damaged(format!(
            "the stop reported generation {g}, but {} is at generation {before}: not upgrading from it",
            vault.display()
        ))
        .with_hint(stopped));
    }
    crate::rollback::record_authenticated(&vault, before, printer);
    upgrade::save_generation(&name, &vault, &keys.data, before)?;
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
        // The tag was resolved to an ID before the stop; the container was
        // made by tag: it must run that ID (a tag moved between is not the
        // image the record names).
        Ok(_) => match container::image_of(engine, &name) {
            Ok(Some((_, id))) if crate::image::same_id(&id, &record.to.id) => {
                let spinner = printer.spinner("waiting for the new gateway to be healthy");
                let healthy =
                    switch::wait_healthy(engine, &name, s.health_timeout).and_then(|took| {
                        let critical = switch::openclaw_audit(engine, &name)?;
                        Ok((took, critical))
                    });
                spinner.finish_and_clear();
                healthy
            }
            Ok(other) => Err(format!(
                "it runs {}, not {} ({to_reference} was moved meanwhile)",
                other.map(|(_, id)| id).unwrap_or_else(|| "nothing".into()),
                record.to.id
            )),
            Err(e) => Err(e.message),
        },
    };

    // 3. Kept, or back to where it was.
    match verdict {
        Ok((took, critical)) => {
            for title in &critical {
                printer.warn(&format!(
                    "OpenClaw's security audit of the new gateway: critical: {title} (`safeclaw audit` shows it in full)"
                ));
            }
            if let Ok(bot) = &started {
                bot.tell_egress(printer);
            }
            // Stopped again first when it was not running: a stop that
            // fails leaves the upgrade unconfirmed, which the next start
            // rolls back, rather than kept with a gateway left running.
            if !was_running {
                switch::stop_and_seal(engine, &name, printer)?;
            }
            record.phase = Phase::Kept;
            upgrade::save(&record)?;
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
                    "openclaw_audit_critical": critical,
                    "running": was_running,
                }),
            );
            Ok(())
        }
        Err(why) => {
            printer.warn(&format!(
                "the gateway in {to_reference} is not healthy: {why}; rolling back"
            ));
            // A Ctrl-C that ended the wait asked for this cleanup: it must
            // not cut it short (a second one still stops it).
            crate::interrupt::clear();
            let generation =
                switch::roll_back(engine, &mut record, &keys, settings, was_running, printer)
                    .map_err(|e| {
                        // The state is back once the record says so; only
                        // the old image's start failed then.
                        let (what, hint) = if record.phase == Phase::RolledBack {
                            (
                                "the state was rolled back, but the old image did not start",
                                format!("`safeclaw start --name {name}` starts it (the state of generation {before} is the vault's newest)"),
                            )
                        } else {
                            (
                                "rolling back did not finish",
                                format!(
                                    "the gateway is stopped; `safeclaw start --name {name}` finishes the rollback (to {}, generation {before})",
                                    record.from.reference
                                ),
                            )
                        };
                        Error::new(
                            e.class,
                            format!(
                                "the upgrade of {name} to {to_reference} failed ({why}), and {what}: {}",
                                e.message
                            ),
                        )
                        .with_hint(hint)
                    })?;
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

//! Steps `upgrade`, `rollback` and the start commands share to switch a
//! gateway between images (docs/upgrade.md): which image a start runs
//! after an upgrade, stopping with a seal, waiting for the new gateway's
//! health, and returning to the image and the state from before.

use std::time::{Duration, Instant};

use crate::cli::ImageChoice;
use crate::error::{Error, Result};
use crate::image::{image_id, same_id};
use crate::printer::Printer;
use crate::runtime::bot::{self, BotSettings};
use crate::runtime::engine::Engine;
use crate::runtime::{container, exec};
use crate::upgrade::{self, ImageRef, Phase, Record};
use crate::vault::Keys;

use super::shared;

/// The image a start of `name` runs: `--image` as given; else the one its
/// last upgrade left it on (the new image once kept, the old one after a
/// rollback or an interrupted upgrade), unless that is the default twin,
/// which `resolve` checks and rebuilds as it always does. With a Nix pin,
/// the pinned image (an upgrade is refused there).
pub fn image_choice(
    choice: &ImageChoice,
    name: &str,
    engine: &Engine,
    printer: &Printer,
) -> Result<ImageChoice> {
    if choice.image.is_some() || crate::image::pin::from_env()?.is_some() {
        return Ok(choice.clone());
    }
    let Some(record) = upgrade::load(name)? else {
        return Ok(choice.clone());
    };
    let current = record.current();
    if current.reference == crate::image::twin::DEFAULT_TAG {
        return Ok(choice.clone());
    }
    Ok(ImageChoice {
        image: Some(runnable(engine, current, printer)?),
        allow_unpinned_image: false,
    })
}

/// How to ask the engine for `image`: by its reference while that still
/// names the recorded ID, else by the ID (a tag moved since), else an
/// error (the image is gone).
pub fn runnable(engine: &Engine, image: &ImageRef, printer: &Printer) -> Result<String> {
    let docker = engine.docker()?;
    let by_reference = engine.block_on(image_id(docker, &image.reference));
    if by_reference.is_some_and(|id| same_id(&id, &image.id)) {
        return Ok(image.reference.clone());
    }
    if engine.block_on(image_id(docker, &image.id)).is_some() {
        printer.warn(&format!(
            "{} names another image now; running {}, the one the upgrade record names",
            image.reference, image.id
        ));
        return Ok(image.id.clone());
    }
    Err(Error::usage(format!(
        "the image {} ({}) that the upgrade record names is not in the engine",
        image.reference, image.id
    ))
    .with_hint("`--image IMAGE` runs another; `safeclaw upgrade --image IMAGE` records it"))
}

/// Stops the gateway `name` (the guard drains it and seals) and returns
/// the generation the guard says it sealed, None when it says none; its
/// copy of the pinned skills and its egress proxy go with it.
pub fn stop_sealing(engine: &Engine, name: &str, printer: &Printer) -> Result<Option<u64>> {
    let spinner = printer.spinner("stopping and sealing");
    let sealed = container::id_of(engine, name, "stopping").and_then(|id| {
        container::request_stop(engine, &id, name)?;
        let sealed = container::sealed_generation(engine, &id);
        // Its container found and stopped: its copy of the pinned skills.
        crate::runtime::pinned_skills::remove(name);
        sealed
    });
    // After the gateway: its proxy, if egress was locked.
    let down = bot::stop_egress(engine, name);
    spinner.finish_and_clear();
    let sealed = sealed?;
    down?;
    Ok(sealed)
}

/// `stop_sealing`, where a stop that sealed nothing is an error (the
/// vault's newest generation then being the one before).
pub fn stop_and_seal(engine: &Engine, name: &str, printer: &Printer) -> Result<u64> {
    stop_sealing(engine, name, printer)?.ok_or_else(|| {
        Error::failure(format!("{name} stopped without sealing its state")).with_hint(
            "the vault's newest generation is the one before; `safeclaw start` starts it again",
        )
    })
}

/// The generation of the vault at `vault`, from its header once its MAC
/// checked with `key` (a seal's number read from the guard's output is
/// the gateway's to forge).
pub fn authenticated_generation(
    vault: &std::path::Path,
    key: &crate::vault::crypto::DataKey,
) -> Result<u64> {
    let opened = crate::vault::VaultFile::open(vault)?;
    opened.authenticate(key)?;
    Ok(opened.header().generation)
}

/// Refuses an upgrade or a rollback (`how` says what to do instead) for a
/// safeclaw installed by Nix:
/// its gateway runs the image the flake pins (docs/upgrade.md, "With Nix").
pub fn refuse_under_pin(how: &str) -> Result<()> {
    if crate::image::pin::from_env()?.is_some() {
        return Err(Error::usage(
            "this safeclaw comes from Nix: its gateway runs the pinned image",
        )
        .with_hint(format!("{how} (docs/upgrade.md, \"With Nix\")")));
    }
    Ok(())
}

/// Waits until the gateway `name` is healthy (its image's health check:
/// the gateway's /healthz), at most `timeout`. The error says why not: its
/// container ended, the check failed, the time ran out, or an interrupt.
pub fn wait_healthy(
    engine: &Engine,
    name: &str,
    timeout: Duration,
) -> std::result::Result<Duration, String> {
    let began = Instant::now();
    loop {
        if crate::interrupt::requested() {
            return Err("interrupted".into());
        }
        let inspected = container::inspect(engine, name).map_err(|e| e.message)?;
        let state = inspected.state.clone().unwrap_or_default();
        if state.running != Some(true) {
            return Err(format!(
                "its container ended (exit code {})",
                state.exit_code.unwrap_or(-1)
            ));
        }
        let (health, source) = exec::health(engine, name, &inspected).map_err(|e| e.message)?;
        match (health.as_str(), source) {
            ("healthy", _) => return Ok(began.elapsed()),
            // The engine says so only after its retries and the image's
            // start period; a check run now (Podman without systemd) fails
            // until the gateway listens, which takes OpenClaw seconds.
            ("unhealthy", exec::HealthSource::Engine) => {
                return Err("its health check (the gateway's /healthz) failed".into())
            }
            _ => {}
        }
        if began.elapsed() >= timeout {
            return Err(format!(
                "it was not healthy within {} s (health: {health})",
                timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// How long OpenClaw's own security audit may take in the new gateway
/// (measured: a few seconds for the real one).
const AUDIT_TIMEOUT: Duration = Duration::from_secs(120);

/// OpenClaw's own `security audit --json`, run in the new gateway once it
/// is healthy: it reads the config and state the new release migrated, so
/// one that cannot run, or whose report is not its JSON, fails the
/// upgrade. Returns the titles of its critical findings (reported, not a
/// failure: the old release may have had them too). Its output is hostile:
/// bounded and cleaned by `audit::openclaw::parse`.
pub fn openclaw_audit(engine: &Engine, name: &str) -> std::result::Result<Vec<String>, String> {
    let docker = engine.docker().map_err(|e| e.message)?;
    let cmd = ["openclaw", "security", "audit", "--json"]
        .map(String::from)
        .to_vec();
    // The timer is made inside the runtime (tokio's timers need one).
    let ran = engine.block_on(async {
        tokio::time::timeout(
            AUDIT_TIMEOUT,
            exec::exec_capture(docker, name, cmd, crate::audit::openclaw::MAX_OUTPUT),
        )
        .await
    });
    let (code, out) = match ran {
        Err(_) => {
            return Err(format!(
                "OpenClaw's security audit did not finish within {} s",
                AUDIT_TIMEOUT.as_secs()
            ))
        }
        Ok(Err(e)) => {
            return Err(format!(
                "OpenClaw's security audit did not run: {}",
                e.message
            ))
        }
        Ok(Ok(ran)) => ran,
    };
    let findings = crate::audit::openclaw::parse(&out).map_err(|why| {
        format!("OpenClaw's security audit failed on the new state (exit code {code}): {why}")
    })?;
    Ok(findings
        .into_iter()
        .filter(|f| f.severity == crate::audit::Severity::High)
        .map(|f| f.title)
        .collect())
}

/// Returns the gateway of `record` to its image and state from before the
/// upgrade: the saved generation is checked first, the container running
/// now (if any) is ended without a seal, the saved generation is sealed
/// as the vault's newest (the file before it kept as a generation), the
/// record says so, and, if `start`, the old image is started from it.
/// Returns that generation. Every step is safe to repeat: killed
/// half-way, the record still says what it said, and the next `start` or
/// `rollback` does it again.
///
/// After an upgrade that was kept, safeclaw's records and the vault's
/// slots stay as the user set them since; otherwise (the new image never
/// confirmed) they come from the saved generation, not from the file the
/// failed run could write.
pub fn roll_back(
    engine: &Engine,
    record: &mut Record,
    keys: &Keys,
    settings: &BotSettings,
    start: bool,
    printer: &Printer,
) -> Result<u64> {
    let name = record.name.clone();
    let saved = upgrade::check_saved(record, &keys.data)?;
    container::discard(engine, &name)?;
    crate::runtime::pinned_skills::remove(&name);
    bot::stop_egress(engine, &name)?;
    // Nothing may seal into the vault while it is restored.
    refuse_other_vault(engine, &name, &record.vault)?;
    let floor = crate::paths::home()
        .ok()
        .and_then(|home| crate::rollback::highest_seen(&home, &record.vault))
        .unwrap_or(0);
    let from = match record.phase {
        Phase::Kept => crate::vault::Settings::Current,
        Phase::Switching | Phase::RolledBack => crate::vault::Settings::Earlier,
    };
    let generation = crate::vault::restore_generation(
        &record.vault,
        &saved,
        record.before,
        floor,
        &keys.data,
        settings.keep_generations,
        from,
    )?;
    crate::rollback::record_authenticated(&record.vault, generation, printer);
    record.phase = Phase::RolledBack;
    // Also removes the saved copy: its state is the newest generation now.
    upgrade::save(record)?;
    if start {
        // The image it ran before, as it was: not `resolve`, whose check of
        // the default twin refuses one an older safeclaw built (`up`
        // rebuilds it), which is what a rollback after an update of
        // safeclaw returns to. A Nix pin never gets here
        // (`refuse_under_pin`).
        let image = runnable(engine, &record.from, printer)?;
        let bot = shared::bot_of(
            settings,
            image,
            record.vault.clone(),
            generation,
            keys.clone(),
            Vec::new(),
            printer,
        )?;
        bot.start(engine)?;
    }
    Ok(generation)
}

/// Refuses when a container other than the gateway `name` runs from
/// `vault` (another bot's guard seals into it: switching or restoring it
/// under that guard would race its seals), or when `name` runs from
/// another vault (stopping it and switching `vault` would hand another
/// bot's state to the new image).
pub fn refuse_other_vault(engine: &Engine, name: &str, vault: &std::path::Path) -> Result<()> {
    let dir = crate::private_fs::parent_of(vault);
    let holder = container::running_with_mount(engine, &dir)?;
    if let Some(other) = holder.as_deref().filter(|h| *h != name) {
        return Err(
            Error::usage(format!("{other} is running from {}", vault.display()))
                .with_hint(format!("`safeclaw stop --name {other}` first")),
        );
    }
    if container::is_running(engine, name)? && holder.as_deref() != Some(name) {
        return Err(
            Error::usage(format!("{name} does not run from {}", vault.display())).with_hint(
                format!(
            "pass the vault it runs from as --vault (`docker inspect {name}` shows its mounts)"
        ),
            ),
        );
    }
    Ok(())
}

/// Refuses a change of the vault's `what` while an interrupted upgrade is
/// recorded for it: its recovery returns the vault to the copy saved
/// before the upgrade, slots and records included, and would undo it.
pub fn refuse_while_interrupted(vault: &std::path::Path, what: &str) -> Result<()> {
    match upgrade::interrupted_for(vault)? {
        Some(r) => Err(Error::usage(format!(
            "an interrupted upgrade of {} is recorded for this vault: its recovery would undo a change of the {what}",
            r.name
        ))
        .with_hint(format!(
            "`safeclaw start --name {}` (or `safeclaw rollback --name {}`) recovers it first",
            r.name, r.name
        ))),
        None => Ok(()),
    }
}

/// The record of an upgrade of `name` that was interrupted (killed before
/// its new image was confirmed healthy), if there is one: a start then
/// returns to the image and state from before it (`recover`).
pub fn interrupted(name: &str) -> Result<Option<Record>> {
    Ok(upgrade::load(name)?.filter(|r| r.phase == Phase::Switching))
}

/// Finishes an interrupted upgrade the safe way, before a start: back to
/// the state sealed before it (the new image was never confirmed). The
/// start that follows runs the old image (`image_choice`). Returns the
/// generation to start from.
pub fn recover(
    engine: &Engine,
    mut record: Record,
    vault: &std::path::Path,
    keys: &Keys,
    settings: &BotSettings,
    printer: &Printer,
) -> Result<u64> {
    if record.vault != vault {
        return Err(Error::usage(format!(
            "an interrupted upgrade of {} is recorded for the vault {}, not {}",
            record.name,
            record.vault.display(),
            vault.display()
        ))
        .with_hint(
            "start that vault (it is rolled back first), or `safeclaw rollback --vault` it",
        ));
    }
    crate::interrupt::check()?;
    printer.warn(&format!(
        "the upgrade of {} to {} was interrupted before the new gateway was confirmed healthy: \
         returning to {} and the state sealed before it (generation {})",
        record.name, record.to.reference, record.from.reference, record.before
    ));
    roll_back(engine, &mut record, keys, settings, false, printer)
}

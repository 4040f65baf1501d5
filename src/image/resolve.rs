//! The image a container will run: the pinned one (loaded when the engine
//! does not hold exactly it), another one only when allowed, or the twin.

use super::image_id;
use super::load::load_pinned;
use super::lock::Lock;
use super::pin::{self, Pin, Record};
use super::provenance::{self, plan_default_twin, stale_twin_error, Guard, Provenance, TwinPlan};
use super::twin;
use crate::cli::ImageChoice;
use crate::error::{Error, Result};
use crate::printer::Printer;
use crate::runtime::engine::Engine;

/// The image a container will run, checked: with a pin, the engine must
/// hold exactly the pinned image (it is loaded from the store when it does
/// not) and another `--image` (one whose ID is none the pinned image is
/// known under) is refused unless allowed. Without a pin,
/// `--image` or the twin's tag: a twin under that tag that another
/// safeclaw built (its guard is that safeclaw) is rebuilt when
/// `build_twin` (`up`, which also builds a missing one) and refused
/// otherwise; another `--image` that is such a twin is run with a warning.
pub fn resolve(
    engine: &Engine,
    choice: &ImageChoice,
    build_twin: bool,
    printer: &Printer,
) -> Result<String> {
    let Some(pin) = pin::from_env()? else {
        let image = choice
            .image
            .clone()
            .unwrap_or_else(|| twin::DEFAULT_TAG.to_string());
        if image == twin::DEFAULT_TAG {
            let own = own_hash(printer);
            ensure_default_twin(engine, &image, own, build_twin, printer, || {
                Ok(twin::build(engine, Lock::builtin(), &image, None, None, printer)?.0)
            })?;
        } else {
            warn_if_other_guard(engine, &image, printer);
        }
        return Ok(image);
    };
    if let (Some(image), true) = (&choice.image, choice.allow_unpinned_image) {
        printer.warn(&format!(
            "running {image}, not the pinned image ({})",
            pin.store_path.to_path_string()
        ));
        return Ok(image.clone());
    }
    let record = ensure_pinned(engine, &pin, printer)?;
    let Some(image) = &choice.image else {
        return Ok(record.repo_tag);
    };
    match engine.block_on(image_id(engine.docker()?, image)) {
        Some(id) if record.recognises(&id) => Ok(image.clone()),
        id => Err(Error::usage(format!(
            "refusing to run {image} ({}): it is not the pinned image {} ({})",
            id.as_deref().unwrap_or("not in the engine"),
            record.repo_tag,
            record.image_ids().collect::<Vec<_>>().join(" or ")
        ))
        .with_hint("drop --image to run the pinned image, or add --allow-unpinned-image")),
    }
}

/// This binary's hash, or None (with a warning) when it cannot be read:
/// the default twin's guard then goes unchecked rather than every start
/// failing.
fn own_hash(printer: &Printer) -> Option<&'static str> {
    match provenance::this_safeclaw_sha256() {
        Ok(own) => Some(own),
        Err(e) => {
            printer.warn(&format!(
                "cannot hash this safeclaw ({}): the default image's guard is not checked",
                e.message
            ));
            None
        }
    }
}

/// The default twin `tag`, checked against `own` (this binary's hash;
/// None when unknown, and then only a missing twin is acted on): built when
/// missing and rebuilt when another safeclaw built it, by `build` (which
/// returns what it built, as a line), if `may_build`; else a twin of
/// another safeclaw is refused (`provenance::plan_default_twin`).
pub fn ensure_default_twin(
    engine: &Engine,
    tag: &str,
    own: Option<&str>,
    may_build: bool,
    printer: &Printer,
    build: impl FnOnce() -> Result<String>,
) -> Result<()> {
    // Without an engine there is nothing to run: the command's next step
    // says so, as it did before this check (a build needs one now).
    let docker = match engine.docker() {
        Ok(docker) => docker,
        Err(e) if may_build => return Err(e),
        Err(_) => return Ok(()),
    };
    let labels = engine
        .block_on(docker.inspect_image(tag))
        .ok()
        .map(|i| i.config.and_then(|c| c.labels).unwrap_or_default());
    match plan_default_twin(labels.as_ref(), own, may_build) {
        TwinPlan::Use => return Ok(()),
        TwinPlan::Refuse(theirs) => return Err(stale_twin_error(tag, &theirs)),
        // A few minutes once; the npm download is cached.
        TwinPlan::BuildMissing => printer.note(&format!(
            "{tag} is not in the engine yet: building it (node and OpenClaw from the npm registry, pinned)"
        )),
        TwinPlan::Rebuild(theirs) => printer.note(&format!(
            "{tag} was built by another safeclaw ({}); rebuilding",
            Guard::describe_other(&theirs)
        )),
    }
    let text = build()?;
    printer.note(&text);
    Ok(())
}

/// `--image` naming a twin another safeclaw built: run, as asked, but
/// say why it may fail (its guard may not speak this safeclaw's protocol).
/// This binary is hashed only for a twin.
fn warn_if_other_guard(engine: &Engine, image: &str, printer: &Printer) {
    let Ok(docker) = engine.docker() else { return };
    let Ok(inspected) = engine.block_on(docker.inspect_image(image)) else {
        return;
    };
    let labels = inspected.config.and_then(|c| c.labels).unwrap_or_default();
    let provenance = Provenance::of(&labels);
    if !provenance.is_twin() {
        return;
    }
    let Some(own) = own_hash(printer) else { return };
    if let Guard::Other(theirs) = provenance.guard(own) {
        printer.warn(&format!(
            "{image} was built by another safeclaw ({}); if its guard refuses this safeclaw's settings, \
             rebuild it (`safeclaw image build --tag {image}`)",
            Guard::describe_other(&theirs)
        ));
    }
}

/// The pinned image's record, after making sure the engine holds exactly
/// it: loaded from the store when absent, unrecorded, or replaced.
fn ensure_pinned(engine: &Engine, pin: &Pin, printer: &Printer) -> Result<Record> {
    let docker = engine.docker()?;
    if let Some(record) = pin.read_record() {
        let held = engine.block_on(image_id(docker, &record.repo_tag));
        if held.is_some_and(|id| record.recognises(&id)) {
            return Ok(record);
        }
    }
    printer.note(&format!(
        "loading the pinned image from {}",
        pin.archive().display()
    ));
    let kind = engine.kind()?;
    Ok(engine.block_on(load_pinned(docker, kind, pin, printer))?.0)
}

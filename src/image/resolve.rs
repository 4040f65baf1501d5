//! The image a container will run: the pinned one (loaded when the engine
//! does not hold exactly it), another one only when allowed, or the twin.

use super::image_id;
use super::load::load_pinned;
use super::pin::{self, Pin, Record};
use super::twin;
use crate::cli::ImageChoice;
use crate::error::{Error, Result};
use crate::printer::Printer;
use crate::runtime::engine::Engine;

/// The image a container will run, checked: with a pin, the engine must
/// hold exactly the pinned image (it is loaded from the store when it does
/// not) and another `--image` (one whose ID is none the pinned image is
/// known under) is refused unless allowed. Without a pin,
/// `--image` or the twin's tag; `build_twin` builds a missing twin (`up`).
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
        if build_twin && image == twin::DEFAULT_TAG {
            ensure_twin(engine, &image, printer)?;
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

/// The twin, built here when the engine does not have it yet (a few
/// minutes once; the npm download is cached).
fn ensure_twin(engine: &Engine, image: &str, printer: &Printer) -> Result<()> {
    let docker = engine.docker()?;
    let present = engine.block_on(docker.inspect_image(image)).is_ok();
    if present {
        return Ok(());
    }
    printer.note(&format!(
        "{image} is not in the engine yet: building it (node and OpenClaw from the npm registry, pinned)"
    ));
    let (text, _) = twin::build(engine, image, None, None, printer)?;
    printer.note(&text);
    Ok(())
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

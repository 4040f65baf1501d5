//! `safeclaw image build`: the image twin (`image_twin`), built through the
//! Engine API.

use serde_json::json;

use crate::cli::ImageBuildArgs;
use crate::engine;
use crate::error::{Error, Result};
use crate::image_twin;
use crate::printer::Printer;

/// `up`'s first run: the default image is built here when the engine does
/// not have it yet (a few minutes once; the npm download is cached).
pub fn ensure_default(image: &str, printer: &Printer) -> Result<()> {
    if image != image_twin::DEFAULT_TAG {
        return Ok(());
    }
    let present = engine::runtime()?.block_on(async {
        let docker = engine::connect().await?;
        Ok::<_, Error>(docker.inspect_image(image).await.is_ok())
    })?;
    if present {
        return Ok(());
    }
    printer.note(&format!(
        "{image} is not in the engine yet: building it (node and OpenClaw from the npm registry, pinned)"
    ));
    let (text, _) = assemble(
        &ImageBuildArgs {
            tag: image.to_string(),
            cache: None,
            busybox: None,
        },
        printer,
    )?;
    printer.note(&text);
    Ok(())
}

pub fn build(args: ImageBuildArgs, printer: &Printer) -> Result<()> {
    let (text, json) = assemble(&args, printer)?;
    printer.result(&text, json);
    Ok(())
}

/// Builds the twin; returns the summary as text and JSON.
fn assemble(args: &ImageBuildArgs, printer: &Printer) -> Result<(String, serde_json::Value)> {
    let busybox = image_twin::find_busybox(args.busybox.as_deref())?;
    let safeclaw = std::env::current_exe()
        .map_err(|e| Error::failure(format!("finding safeclaw's own binary: {e}")))?;
    if cfg!(debug_assertions) {
        printer.warn(
            "this safeclaw is a debug build and becomes the image's guard: decrypting the vault \
             at start will be several times slower (cargo run --release -- image build)",
        );
    }
    let cache = image_twin::cache_dir(args.cache.as_deref())?;
    let rt = engine::runtime()?;
    // The engine first: no point downloading 650 MB for nothing.
    let docker = rt.block_on(engine::connect())?;
    let spinner = printer.spinner("installing node and openclaw from the lock (npm ci)");
    let install = image_twin::install(&cache);
    spinner.finish_and_clear();
    let install = install?;
    let recipe = image_twin::recipe(&install, &safeclaw, &busybox)?;
    let bar = printer.bar(0, "building");
    let built = rt.block_on(crate::image_build::build_recipe(
        &docker, &args.tag, &recipe, &bar,
    ));
    bar.finish_and_clear();
    built?;
    let inspected = rt
        .block_on(docker.inspect_image(&args.tag))
        .map_err(|e| engine::failed("inspecting", &args.tag, e))?;
    let id = inspected.id.unwrap_or_default();
    let size = inspected.size.unwrap_or(0);
    Ok((
        format!(
            "built {} ({}, {} MB): openclaw {}, node {}",
            args.tag,
            id,
            size / 1_000_000,
            image_twin::OPENCLAW_VERSION,
            image_twin::NODE_VERSION
        ),
        json!({
            "tag": args.tag,
            "id": id,
            "size": size,
            "openclaw": image_twin::OPENCLAW_VERSION,
            "node": image_twin::NODE_VERSION,
            "lock_sha256": image_twin::lock_digest(),
        }),
    ))
}

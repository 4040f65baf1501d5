//! `safeclaw image build|load|show`.

use serde_json::json;

use crate::cli::{ImageBuildArgs, ImageLoadArgs};
use crate::error::{Error, Result};
use crate::image::identity::Identity;
use crate::image::load::{load_archive, load_pinned, Loaded};
use crate::image::{image_id, pin, twin};
use crate::printer::Printer;
use crate::runtime::engine::Engine;

pub fn load(args: ImageLoadArgs, engine: &Engine, printer: &Printer) -> Result<()> {
    let pin = pin::from_env()?;
    let docker = engine.docker()?;
    let (path, loaded, pinned) = match (&args.from, &pin) {
        (Some(from), _) => {
            let loaded = engine.block_on(load_archive(docker, engine.kind()?, from, printer))?;
            let pinned = pin
                .as_ref()
                .and_then(|p| p.read_record())
                .is_some_and(|r| r.config_digest == loaded.index.config_digest);
            (from.clone(), loaded, pinned)
        }
        (None, Some(pin)) => {
            let (_, loaded) = engine.block_on(load_pinned(docker, engine.kind()?, pin, printer))?;
            (pin.archive().to_path_buf(), loaded, true)
        }
        (None, None) => {
            return Err(
                Error::usage("no image to load: this safeclaw has no pinned image")
                    .with_hint("pass --from ARCHIVE (e.g. the result of `nix build .#image`)"),
            )
        }
    };
    let Loaded {
        index,
        image_id,
        identity,
        manifest_from,
    } = loaded;
    let config = match identity {
        Identity::Config => String::new(),
        Identity::Manifest(_) => format!(", a manifest of the config {}", index.config_digest),
    };
    printer.result(
        &format!(
            "loaded {} as {} ({image_id}{config}){}",
            path.display(),
            index.repo_tags.join(", "),
            if pinned { ": the pinned image" } else { "" }
        ),
        json!({
            "ok": true,
            "archive": path,
            "image_id": image_id,
            "config_digest": index.config_digest,
            "matched_by": identity.kind(),
            "manifest_from": manifest_from,
            "repo_tags": index.repo_tags,
            "pinned": pinned,
        }),
    );
    Ok(())
}

pub fn show(engine: &Engine, printer: &Printer) -> Result<()> {
    let Some(pin) = pin::from_env()? else {
        printer.result(
            &format!(
                "no pinned image (safeclaw was not installed by Nix); containers run --image or {}",
                twin::DEFAULT_TAG
            ),
            json!({ "pinned": false, "default": twin::DEFAULT_TAG }),
        );
        return Ok(());
    };
    let record = pin.read_record();
    let held = match &record {
        Some(r) => engine.block_on(image_id(engine.docker()?, &r.repo_tag)),
        None => None,
    };
    let matches = matches!((&record, &held), (Some(r), Some(h)) if r.recognises(h));
    let store = pin.store_path.to_path_string();
    let text = match &record {
        None => format!(
            "pinned: {store}
not loaded yet (`safeclaw image load`, or any start, loads it)"
        ),
        Some(r) => format!(
            "pinned: {store}
image:  {} ({})
engine: {}",
            r.repo_tag,
            r.image_ids().collect::<Vec<_>>().join(" or "),
            match (&held, matches) {
                (_, true) => "holds exactly this image".to_string(),
                (Some(h), false) =>
                    format!("holds {h} under that name: NOT the pinned image (a start reloads it)"),
                (None, _) => "does not hold it (a start loads it)".to_string(),
            }
        ),
    };
    printer.result(
        &text,
        json!({
            "pinned": true,
            "store_path": store,
            "hash": pin.store_path.hash_part(),
            "archive_present": pin.archive().exists(),
            "repo_tag": record.as_ref().map(|r| &r.repo_tag),
            "config_digest": record.as_ref().map(|r| &r.config_digest),
            "image_ids": record.as_ref().map(|r| r.image_ids().collect::<Vec<_>>()),
            "engine_image_id": held,
            "matches": matches,
        }),
    );
    Ok(())
}

pub fn build(args: ImageBuildArgs, engine: &Engine, printer: &Printer) -> Result<()> {
    let (text, json) = twin::build(
        engine,
        &args.tag,
        args.cache.as_deref(),
        args.busybox.as_deref(),
        printer,
    )?;
    printer.result(&text, json);
    Ok(())
}

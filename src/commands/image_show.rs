//! `safeclaw image show`: the pinned image and whether the engine holds
//! exactly it.

use serde_json::json;

use crate::error::Result;
use crate::image::{image_id, pin, twin};
use crate::printer::Printer;
use crate::runtime::engine::Engine;

pub fn run(engine: &Engine, printer: &Printer) -> Result<()> {
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

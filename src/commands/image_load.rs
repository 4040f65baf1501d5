//! `safeclaw image load`: an image archive into the engine, checked to be
//! exactly the archive's image (default: the pinned one).

use std::path::PathBuf;

use serde_json::json;

use crate::error::{Error, Result};
use crate::image::identity::Identity;
use crate::image::load::{load_archive, load_pinned, Loaded};
use crate::image::pin;
use crate::printer::Printer;
use crate::runtime::engine::Engine;

pub fn run(from: Option<PathBuf>, engine: &Engine, printer: &Printer) -> Result<()> {
    let pin = pin::from_env()?;
    let docker = engine.docker()?;
    let (path, loaded, pinned) = match (&from, &pin) {
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

//! `safeclaw image list`: safeclaw's images in the engine (`image/inventory.rs`).

use serde_json::json;

use crate::error::Result;
use crate::image::{inventory, pin, provenance, twin};
use crate::printer::Printer;
use crate::runtime::engine::Engine;

pub fn run(engine: &Engine, printer: &Printer) -> Result<()> {
    let entries = inventory::current(engine)?;
    let text = if entries.is_empty() {
        format!(
            "no safeclaw images in the engine (`safeclaw image build` builds {})",
            twin::DEFAULT_TAG
        )
    } else {
        inventory::table(&entries)
    };
    let pinned = pin::from_env()?.map(|p| p.store_path.to_path_string());
    printer.result(
        &text,
        json!({
            "images": entries.iter().map(inventory::to_json).collect::<Vec<_>>(),
            "default_tag": twin::DEFAULT_TAG,
            "pin": pinned,
            "safeclaw_sha256": provenance::this_safeclaw_sha256().ok(),
        }),
    );
    Ok(())
}

//! `safeclaw image build`: the twin of the Nix image, built here through
//! the Engine API (`image/twin.rs`).

use crate::error::Result;
use crate::image::twin;
use crate::printer::Printer;
use crate::runtime::engine::Engine;

use super::settings::ImageBuild;

pub fn run(args: ImageBuild, engine: &Engine, printer: &Printer) -> Result<()> {
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

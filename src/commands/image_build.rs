//! `safeclaw image build`: the twin of the Nix image, built here through
//! the Engine API (`image/twin.rs`), from the builtin lock or, with
//! `--openclaw`, from the lock of another OpenClaw version
//! (`image/lock.rs`).

use crate::error::Result;
use crate::image::lock::{self, Lock};
use crate::image::twin;
use crate::printer::Printer;
use crate::runtime::engine::Engine;

use super::settings::ImageBuild;

pub fn run(args: ImageBuild, engine: &Engine, printer: &Printer) -> Result<()> {
    let lock = match &args.openclaw {
        None => Lock::builtin().clone(),
        Some(version) => {
            let cache = twin::cache_dir(args.cache.as_deref())?;
            lock::obtain(version, &cache, printer)?.lock
        }
    };
    let tag = args.tag.unwrap_or_else(|| lock.default_tag());
    let (text, json) = twin::build(
        engine,
        &lock,
        &tag,
        args.cache.as_deref(),
        args.busybox.as_deref(),
        printer,
    )?;
    printer.result(&text, json);
    Ok(())
}

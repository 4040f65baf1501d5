//! `safeclaw start`: the bot's hardened container, detached. The image is
//! resolved first (a refused image costs no password prompt), then the
//! vault is unlocked on the host and its key handed to the guard.

use crate::cli::StartArgs;
use crate::error::Result;
use crate::image::resolve::resolve;
use crate::printer::Printer;
use crate::runtime::engine::Engine;

use super::shared;

pub fn run(args: StartArgs, engine: &Engine, printer: &Printer) -> Result<()> {
    let image = resolve(engine, &args.image, false, printer)?;
    let vault = crate::paths::vault(&args.vault)?;
    let settings = super::bot_settings(&args)?;
    let bot = shared::unlocked_bot(
        &vault,
        &args.password.source(),
        &settings,
        engine,
        image,
        printer,
    )?;
    shared::start_bot(&bot, engine, printer)
}

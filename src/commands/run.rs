//! `safeclaw run`: the bot in the foreground, its output streamed; Ctrl-C
//! stops it and reports the sealed generation. A container that dies on
//! its own is started again from the newest generation (`Bot::supervise`).

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
    let sealed = bot.supervise(engine, printer)?;
    shared::report_sealed(&bot.name, sealed, printer)
}

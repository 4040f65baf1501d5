//! `safeclaw run`: the bot in the foreground, its output streamed; Ctrl-C
//! stops it and reports the sealed generation. A container that dies on
//! its own is started again from the newest generation (`Bot::supervise`).

use crate::error::Result;
use crate::image::resolve::resolve;
use crate::printer::Printer;
use crate::runtime::engine::Engine;

use super::settings::Start;
use super::shared;

pub fn run(s: Start, engine: &Engine, printer: &Printer) -> Result<()> {
    // No upgrade or rollback of this gateway meanwhile (docs/upgrade.md).
    let lock = crate::upgrade::lock(&s.bot.name)?;
    let choice = super::switch::image_choice(&s.image, &s.bot.name, engine, printer)?;
    let image = resolve(engine, &choice, false, printer)?;
    let vault = crate::paths::vault(&s.vault)?;
    let bot = shared::unlocked_bot(&vault, &s.password, &s.bot, engine, image, printer)?;
    // Held while it runs in the foreground, it would make an upgrade say
    // another one is under way: released before the start (a small window
    // in which an upgrade's stop would end this run).
    drop(lock);
    bot.tell_egress(printer);
    let sealed = bot.supervise(engine, printer)?;
    shared::report_sealed(&bot.name, sealed, printer)
}

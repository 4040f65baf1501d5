//! `safeclaw start`: the bot's hardened container, detached. The image is
//! resolved first (a refused image costs no password prompt), then the
//! vault is unlocked on the host and its key handed to the guard.

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
    let started = shared::start_bot(&bot, engine, printer);
    drop(lock);
    started
}

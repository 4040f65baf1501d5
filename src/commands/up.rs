//! `safeclaw up`: the guide in one command. No vault yet: onboard, then
//! start with the key onboarding made (one password prompt in all). A
//! vault: start. Already running: say so.

use serde_json::json;

use crate::error::Result;
use crate::image::resolve::resolve;
use crate::printer::Printer;
use crate::runtime::container;
use crate::runtime::engine::Engine;

use super::settings::Up;
use super::shared;

pub fn run(s: Up, engine: &Engine, printer: &Printer) -> Result<()> {
    let name = &s.start.bot.name;
    // No upgrade or rollback of this gateway meanwhile (docs/upgrade.md).
    let _lock = crate::upgrade::lock(name)?;
    // A gateway an interrupted upgrade left running is ended by the start
    // below (docs/upgrade.md), not taken for the bot.
    if container::is_running(engine, name)? && super::switch::interrupted(name)?.is_none() {
        printer.result(
            &format!("{name} is already running (`safeclaw status` shows it)"),
            json!({ "ok": true, "name": name, "already_running": true }),
        );
        return Ok(());
    }
    let choice = super::switch::image_choice(&s.start.image, name, engine, printer)?;
    let image = resolve(engine, &choice, true, printer)?;
    let vault = crate::paths::vault(&s.start.vault)?;
    if vault.exists() {
        let (password, bot) = (&s.start.password, &s.start.bot);
        let bot = shared::unlocked_bot(&vault, password, bot, engine, image, printer)?;
        return shared::start_bot(&bot, engine, printer);
    }
    // Onboarding takes minutes: find out first that the start would be refused.
    crate::paths::check_dedicated_dir(&vault)?;
    let skills = shared::asked_skills(&s.start.bot)?;
    printer.note(&format!(
        "no vault at {}: onboarding first",
        vault.display()
    ));
    let (vault, keys, generation) = shared::onboard(&s.onboard, engine, &image, printer)?;
    let vault = crate::paths::in_resolved_dir(&vault)?;
    let bot = shared::bot_of(
        &s.start.bot,
        image,
        vault,
        generation,
        keys,
        skills,
        printer,
    )?;
    shared::start_bot(&bot, engine, printer)
}

//! `safeclaw up`: the guide in one command. No vault yet: onboard, then
//! start with the key onboarding made (one password prompt in all). A
//! vault: start. Already running: say so.

use serde_json::json;

use crate::cli::{OnboardArgs, UpArgs};
use crate::error::Result;
use crate::image::resolve::resolve;
use crate::printer::Printer;
use crate::runtime::bot::Bot;
use crate::runtime::container;
use crate::runtime::engine::Engine;

use super::shared;

pub fn run(args: UpArgs, engine: &Engine, printer: &Printer) -> Result<()> {
    let name = args.start.container.name.clone();
    if container::is_running(engine, &name)? {
        printer.result(
            &format!("{name} is already running (`safeclaw status` shows it)"),
            json!({ "ok": true, "name": name, "already_running": true }),
        );
        return Ok(());
    }
    let image = resolve(engine, &args.start.image, true, printer)?;
    let vault = crate::paths::vault(&args.start.vault)?;
    let settings = super::bot_settings(&args.start)?;
    if vault.exists() {
        let source = args.start.password.source();
        let bot = shared::unlocked_bot(&vault, &source, &settings, engine, image, printer)?;
        return shared::start_bot(&bot, engine, printer);
    }
    // Onboarding takes minutes: find out first that the start would be refused.
    crate::paths::check_dedicated_dir(&vault)?;
    printer.note(&format!(
        "no vault at {}: onboarding first",
        vault.display()
    ));
    let onboard = OnboardArgs {
        vault: args.start.vault.clone(),
        image: args.start.image.clone(),
        password: args.start.password.clone(),
        extras: args.extras,
    };
    let (vault, key, generation) = shared::onboard(&onboard, engine, &image, printer)?;
    let vault = crate::paths::in_resolved_dir(&vault)?;
    let bot = Bot::new(&settings, image, vault, generation, key)?;
    shared::start_bot(&bot, engine, printer)
}

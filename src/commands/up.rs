//! `safeclaw up`: the guide in one command. No vault yet: onboard, then
//! start with the key onboarding made (one password prompt in all). A
//! vault: start. Already running: say so.

use serde_json::json;

use crate::cli::{OnboardArgs, UpArgs};
use crate::error::Result;
use crate::printer::Printer;
use crate::runtime::engine::Engine;

pub fn run(args: UpArgs, engine: &Engine, printer: &Printer) -> Result<()> {
    let name = args.start.container.name.clone();
    let running = engine
        .block_on(engine.docker()?.inspect_container(&name, None))
        .ok()
        .and_then(|c| c.state)
        .and_then(|s| s.running)
        .unwrap_or(false);
    if running {
        printer.result(
            &format!("{name} is already running (`safeclaw status` shows it)"),
            json!({ "ok": true, "name": name, "already_running": true }),
        );
        return Ok(());
    }
    let image = crate::image::resolve::resolve(engine, &args.start.image, true, printer)?;
    let vault = crate::paths::vault(&args.start.vault)?;
    if vault.exists() {
        return super::start::run_in(&args.start, engine, image, printer);
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
    let (vault, key, generation) = super::onboard::onboard(&onboard, engine, &image, printer)?;
    super::start::run_with_key(&args.start, engine, image, vault, generation, key, printer)
}

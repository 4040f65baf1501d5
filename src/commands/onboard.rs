//! `safeclaw onboard`: OpenClaw's own onboarding in a throw-away hardened
//! container, its state sealed straight into a new vault (docs/onboard.md,
//! `runtime/onboarding.rs`).

use crate::error::Result;
use crate::image::resolve::resolve;
use crate::printer::Printer;
use crate::runtime::engine::Engine;

use super::settings::Onboard;
use super::shared;

pub fn run(s: Onboard, engine: &Engine, printer: &Printer) -> Result<()> {
    let image = resolve(engine, &s.image, false, printer)?;
    shared::onboard(&s, engine, &image, printer).map(|_| ())
}

//! `safeclaw stop`: the guard drains the gateway and seals its state into
//! the vault's next generation.

use crate::error::Result;
use crate::printer::Printer;
use crate::runtime::container;
use crate::runtime::engine::Engine;

use super::shared;

pub fn run(name: &str, engine: &Engine, printer: &Printer) -> Result<()> {
    let spinner = printer.spinner("stopping and sealing");
    let sealed = container::id_of(engine, name, "stopping").and_then(|id| {
        container::request_stop(engine, &id, name)?;
        container::sealed_generation(engine, &id)
    });
    // After the gateway: its proxy, if egress was locked.
    let down = crate::runtime::bot::stop_egress(engine, name);
    crate::runtime::pinned_skills::remove(name);
    spinner.finish_and_clear();
    let sealed = sealed?;
    down?;
    shared::report_sealed(name, sealed, printer)
}

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
        let sealed = container::sealed_generation(engine, &id);
        // Its container found and stopped: its copy of the pinned skills.
        crate::runtime::pinned_skills::remove(name);
        sealed
    });
    // After the gateway: its proxy, if egress was locked.
    let down = crate::runtime::bot::stop_egress(engine, name);
    spinner.finish_and_clear();
    let sealed = sealed?;
    down?;
    shared::report_sealed(name, sealed, printer)
}

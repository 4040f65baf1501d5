//! `safeclaw stop`: the guard drains the gateway and seals its state into
//! the vault's next generation.

use crate::error::Result;
use crate::printer::Printer;
use crate::runtime::engine::Engine;

use super::{shared, switch};

pub fn run(name: &str, engine: &Engine, printer: &Printer) -> Result<()> {
    let sealed = switch::stop_sealing(engine, name, printer)?;
    shared::report_sealed(name, sealed, printer)
}

//! `safeclaw logs`: the container's output.

use crate::error::Result;
use crate::runtime::engine::Engine;
use crate::runtime::exec;

pub fn run(name: &str, follow: bool, engine: &Engine) -> Result<()> {
    exec::follow_logs(engine, name, follow)
}

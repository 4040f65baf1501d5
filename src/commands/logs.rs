//! `safeclaw logs`: the container's output.

use crate::error::Result;
use crate::runtime::engine::Engine;
use crate::runtime::exec;

use super::settings::Logs;

pub fn run(s: Logs, engine: &Engine) -> Result<()> {
    exec::follow_logs(engine, &s.name, s.follow)
}

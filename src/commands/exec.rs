//! `safeclaw exec`: OpenClaw's own CLI inside the running container, as
//! argv (never a shell string); its exit code is passed on.

use crate::error::{ExitStatus, Result};
use crate::runtime::engine::Engine;
use crate::runtime::exec;

pub fn run(name: &str, args: &[String], engine: &Engine) -> Result<ExitStatus> {
    let code = exec::openclaw(engine, name, args, true)?;
    Ok(ExitStatus::of_child(code))
}

//! `safeclaw exec`: OpenClaw's own CLI inside the running container, as
//! argv (never a shell string); its exit code is passed on.

use crate::cli::ExecArgs;
use crate::error::{ExitStatus, Result};
use crate::runtime::engine::Engine;
use crate::runtime::exec;

pub fn run(args: ExecArgs, engine: &Engine) -> Result<ExitStatus> {
    let code = exec::openclaw(engine, &args.container.name, &args.args, true)?;
    Ok(ExitStatus::of_child(code))
}

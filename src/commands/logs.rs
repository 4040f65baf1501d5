//! `safeclaw logs`: the container's output.

use crate::cli::LogsArgs;
use crate::error::Result;
use crate::runtime::engine::Engine;
use crate::runtime::exec;

pub fn run(args: LogsArgs, engine: &Engine) -> Result<()> {
    exec::follow_logs(engine, &args.container.name, args.follow)
}

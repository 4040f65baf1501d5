//! The command line resolved into settings.

use std::time::Duration;

use crate::cli::StartArgs;
use crate::error::{Error, Result};
use crate::runtime::bot::{BotSettings, ShareRequest};
use crate::runtime::spec::Limits;

/// The bot's container as `start`, `run` and `up` were asked for it.
pub fn bot_settings(args: &StartArgs) -> Result<BotSettings> {
    Ok(BotSettings {
        name: args.container.name.clone(),
        limits: Limits {
            memory_bytes: args.memory_mib << 20,
            nano_cpus: cpus_to_nano(args.cpus)?,
            pids: args.pids,
        },
        publish: args.publish,
        keep_generations: args.keep_generations,
        checkpoint_interval: Duration::from_secs(args.checkpoint_interval),
        drain: Duration::from_secs(args.drain),
        shares: args
            .shares
            .iter()
            .map(|s| ShareRequest::parse(s, |p| Ok(p.to_path_buf())))
            .collect::<Result<_>>()?,
        gateway: args.gateway.clone(),
    })
}

fn cpus_to_nano(cpus: f64) -> Result<i64> {
    if !(0.01..=1024.0).contains(&cpus) {
        return Err(Error::usage(format!("--cpus {cpus} is out of range"))
            .with_hint("use a number of cores such as 1 or 0.5"));
    }
    Ok((cpus * 1e9) as i64)
}

//! `safeclaw pair list|approve`: the guide's pairing step, through
//! OpenClaw's own `pairing` command in the running container. Channel and
//! code are checked before the container is touched; an approval asks the
//! guard for a checkpoint, so it is durable at once.

use crate::error::{Error, ExitStatus, Result};
use crate::runtime::engine::Engine;
use crate::runtime::exec;

use super::settings::Pair;

/// The channels OpenClaw pairs (`openclaw pairing`).
const CHANNELS: [&str; 5] = ["telegram", "discord", "signal", "slack", "whatsapp"];

pub fn run(s: Pair, engine: &Engine) -> Result<ExitStatus> {
    let mut argv = vec!["pairing".to_string()];
    match &s.approve {
        None => {
            argv.push("list".into());
            if let Some(c) = &s.channel {
                argv.extend(["--channel".to_string(), checked_channel(c)?]);
            }
        }
        Some(code) => {
            let channel = checked_channel(s.channel.as_deref().unwrap_or_default())?;
            argv.extend(["approve".to_string(), channel, checked_code(code)?]);
        }
    }
    let code = exec::openclaw(engine, &s.name, &argv, s.approve.is_some())?;
    Ok(ExitStatus::of_child(code))
}

fn checked_channel(c: &str) -> Result<String> {
    let c = c.to_ascii_lowercase();
    if CHANNELS.contains(&c.as_str()) {
        Ok(c)
    } else {
        Err(Error::usage(format!("unknown channel {c:?}"))
            .with_hint(format!("one of: {}", CHANNELS.join(", "))))
    }
}

/// Pairing codes are 8 letters or digits; anything else is refused before
/// the container is touched.
fn checked_code(code: &str) -> Result<String> {
    if code.len() == 8 && code.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(code.to_ascii_uppercase())
    } else {
        Err(Error::usage(format!("{code:?} is not a pairing code"))
            .with_hint("a pairing code is the 8 letters or digits the bot sent you"))
    }
}

//! Steps several commands take, so that no command calls another: asking
//! for passwords and unlocking, checking a new vault's place and cost,
//! starting the bot and onboarding a new vault (`start`, `run`, `up`,
//! `onboard`), and saying what a stop sealed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::egress::stored;
use crate::error::{Error, Result};
use crate::password::{self, Confirm, Password, Source};
use crate::printer::Printer;
use crate::runtime::bot::{self, Bot, BotSettings};
use crate::runtime::engine::Engine;
use crate::runtime::onboarding::{self, Secrets};
use crate::vault::crypto::DataKey;
use crate::vault::format::KdfParams;
use crate::vault::{Keys, VaultFile};

use super::settings::Onboard;

/// A new vault password: asked twice on a prompt, read once from a file
/// or stdin.
pub fn read_new_password(source: &Source, printer: &Printer) -> Result<Password> {
    read_password(source, "new vault password", Confirm::Twice, printer)
}

/// Reads a password, warning when its file is readable by other users.
pub fn read_password(
    source: &Source,
    label: &str,
    confirm: Confirm,
    printer: &Printer,
) -> Result<Password> {
    warn_if_exposed(source, printer);
    let (password, warning) = password::read(source, label, confirm)?;
    if let Some(warning) = warning {
        printer.warn(&warning);
    }
    Ok(password)
}

/// Warns when a password file can be read by other users.
pub fn warn_if_exposed(source: &Source, printer: &Printer) {
    if let Source::File(path) = source {
        if let Some(warning) = crate::private_fs::exposure_warning(path) {
            printer.warn(&warning);
        }
    }
}

/// Asks for the password and unlocks, with a spinner while Argon2 runs.
/// Returns the data key and the index of the slot that opened.
pub fn unlock(vault: &VaultFile, source: &Source, printer: &Printer) -> Result<(DataKey, usize)> {
    let keys = unlock_keys(vault, source, printer)?;
    Ok((keys.data.clone(), keys.slot))
}

/// `unlock`, with every key the password opens (the secrets key too).
pub fn unlock_keys(vault: &VaultFile, source: &Source, printer: &Printer) -> Result<Keys> {
    let password = read_password(source, "vault password", Confirm::Once, printer)?;
    let spinner = printer.spinner("deriving key (Argon2id)");
    let result = vault.unlock_keys(&password);
    spinner.finish_and_clear();
    result
}

/// Opens `vault` (the one `start` runs from: see `bot::vault_to_start`),
/// asks for its password and unlocks it, records the generation it is at,
/// and makes the bot that runs it in `image`.
pub fn unlocked_bot(
    vault: &Path,
    password: &Source,
    settings: &BotSettings,
    engine: &Engine,
    image: String,
    printer: &Printer,
) -> Result<Bot> {
    // The caller holds the gateway's upgrade lock (`upgrade::lock`), so no
    // upgrade is under way: one recorded as switching was interrupted, and
    // the gateway it may have left running is ended below, not a reason
    // to refuse.
    let interrupted = super::switch::interrupted(&settings.name)?;
    if interrupted.is_none() {
        // Before the password is asked, and before the vault is written.
        refuse_if_running(engine, &settings.name)?;
    }
    // `--skill`s are read before the password: a bad one costs none.
    let skills = asked_skills(settings)?;
    let vault = bot::vault_to_start(engine, vault.to_path_buf(), printer)?;
    let Some(record) = interrupted else {
        let opened = VaultFile::open(&vault)?;
        let generation = opened.header().generation;
        let keys = unlock_keys(&opened, password, printer)?;
        // Only now, with the header's MAC checked, may its generation count.
        crate::rollback::record_authenticated(&vault, generation, printer);
        drop(opened);
        return bot_of(settings, image, vault, generation, keys, skills, printer);
    };
    // The failed run could write the vault's directory: the password
    // opens the copy saved before the upgrade, which no container reaches.
    let saved = crate::upgrade::saved_path(&settings.name, record.before)?;
    let opened = VaultFile::open(&saved).or_else(|e| VaultFile::open(&vault).map_err(|_| e))?;
    let keys = unlock_keys(&opened, password, printer)?;
    drop(opened);
    let generation = super::switch::recover(engine, record, &vault, &keys, settings, printer)?;
    bot_of(settings, image, vault, generation, keys, skills, printer)
}

/// The skills `--skill` names, read (and so checked) before any password
/// is asked or onboarding starts.
pub fn asked_skills(settings: &BotSettings) -> Result<Vec<crate::skills::Pinned>> {
    settings
        .skills
        .iter()
        .map(|p| crate::skills::read(p, None, crate::vault::now()))
        .collect()
}

/// The bot of an unlocked vault at `generation`, with the egress policy
/// the vault holds (or its defaults, which the guard then stores), its
/// secrets for the egress proxy's broker, and its pinned skills (`skills`
/// pinned first, as `--skill` asks).
pub fn bot_of(
    settings: &BotSettings,
    image: String,
    vault: PathBuf,
    generation: u64,
    keys: Keys,
    skills: Vec<crate::skills::Pinned>,
    printer: &Printer,
) -> Result<Bot> {
    let generation = super::skills::pin_for_start(
        &vault,
        &keys.data,
        settings.keep_generations,
        skills,
        printer,
    )?
    .unwrap_or(generation);
    let opened = VaultFile::open(&vault)?;
    let (policy, source) = stored::load_or_defaults(&opened, &keys.data)?;
    let broker = crate::secrets::load(&opened, &keys)?
        .filter(|s| !s.0.is_empty())
        .map(|s| crate::secrets::handoff(&s, settings.egress.ca_pem.as_deref()))
        .transpose()?;
    drop(opened);
    let rules = stored::rules_for_start(&policy, settings.egress.mode);
    let skills = crate::runtime::pinned_skills::prepare(&settings.name, &vault, &keys.data)?;
    let mut bot = Bot::new(settings, image, vault, generation, keys.data, rules, broker)?;
    bot.set_egress_policy(policy, source);
    bot.set_pinned_skills(skills);
    Ok(bot)
}

/// Asks `question` on the terminal; only "y" or "yes" is a yes (the end
/// of input is a no). The caller checked that stdin is a terminal.
pub fn confirm(question: &str) -> Result<bool> {
    use std::io::{BufRead, Write};
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{question} [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::failure(format!("reading the answer: {e}")))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// A gateway of that name already runs: nothing to start.
pub fn refuse_if_running(engine: &Engine, name: &str) -> Result<()> {
    if crate::runtime::container::is_running(engine, name)? {
        return Err(Error::usage(format!("{name} is already running"))
            .with_hint("`safeclaw status` shows it; `safeclaw stop` stops it"));
    }
    Ok(())
}

/// Starts the bot, detached, and says so.
pub fn start_bot(bot: &Bot, engine: &Engine, printer: &Printer) -> Result<()> {
    let spinner = printer.spinner("starting the container");
    let started = bot.start(engine);
    spinner.finish_and_clear();
    let id = started?;
    bot.tell_egress(printer);
    let (name, generation) = (&bot.name, bot.generation);
    printer.result(
        &format!(
            "started {name} from {} (generation {generation})",
            bot.vault.display()
        ),
        json!({ "ok": true, "name": name, "id": id, "vault": bot.vault, "generation": generation }),
    );
    Ok(())
}

/// Says what a stop sealed; a stop that sealed nothing is a failure.
pub fn report_sealed(name: &str, sealed: Option<u64>, printer: &Printer) -> Result<()> {
    match sealed {
        Some(generation) => {
            printer.result(
                &format!("stopped {name}; state sealed as generation {generation}"),
                json!({ "ok": true, "name": name, "sealed_generation": generation }),
            );
            Ok(())
        }
        None => Err(
            Error::failure(format!("{name} stopped without sealing its state")).with_hint(
                "the previous generation of the vault is intact; `docker logs` shows what happened",
            ),
        ),
    }
}

/// Onboards into a new vault (`onboard`, and `up` without a vault);
/// returns the vault, its data key and its generation (so `up` starts it
/// without asking for the password again).
pub fn onboard(
    s: &Onboard,
    engine: &Engine,
    image: &str,
    printer: &Printer,
) -> Result<(PathBuf, Keys, u64)> {
    let target = crate::paths::new_vault(&s.vault)?;
    check_new_vault_path(&target)?;
    let target = crate::paths::in_resolved_dir(&target)?;
    if s.openclaw_args.is_empty() && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(Error::usage(
            "the interactive onboarding wizard needs a terminal, and stdin is not one",
        )
        .with_hint(
            "pass OpenClaw's non-interactive flags after `--` (see `safeclaw onboard --help`)",
        ));
    }
    let secrets = read_secrets(s, printer)?;
    let kdf = checked_kdf(s.kdf, printer)?;
    let password = read_new_password(&s.password, printer)?;
    let request = onboarding::Request {
        image,
        target: &target,
        kdf,
        limits: s.limits.clone(),
        secrets: &secrets,
        openclaw_args: &s.openclaw_args,
        egress: &s.egress,
    };
    let (keys, generation) = onboarding::onboard(engine, &request, password, printer)?;
    crate::rollback::record_authenticated(&target, generation, printer);
    if let Err(e) = crate::paths::check_dedicated_dir(&target) {
        printer.warn(&format!(
            "`safeclaw start` will refuse this vault where it is: {}{}",
            e.message,
            e.hint.map(|h| format!(" ({h})")).unwrap_or_default()
        ));
    }
    printer.result(
        &format!(
            "onboarded: OpenClaw's state sealed into {} (generation {generation}); `safeclaw start` runs it",
            target.display()
        ),
        json!({ "ok": true, "vault": target, "generation": generation }),
    );
    Ok((target, keys, generation))
}

fn read_secrets(args: &Onboard, printer: &Printer) -> Result<Secrets> {
    let read = |path: &Path, label: &str| {
        let source = Source::File(path.to_path_buf());
        read_password(&source, label, Confirm::Once, printer)
    };
    Ok(Secrets {
        api_key: args
            .api_key_file
            .as_deref()
            .map(|p| read(p, "API key").map(|k| (args.provider.clone(), k)))
            .transpose()?,
        telegram_token: args
            .telegram_token_file
            .as_deref()
            .map(|p| read(p, "Telegram bot token"))
            .transpose()?,
    })
}

/// Refuses parameters no reader would accept; warns below RFC 9106.
pub fn checked_kdf(kdf: KdfParams, printer: &Printer) -> Result<KdfParams> {
    kdf.check().map_err(|_| {
        Error::usage(format!(
            "invalid Argon2id parameters m={} KiB t={} p={}",
            kdf.m_kib, kdf.t, kdf.p
        ))
        .with_hint(format!(
            "use 1 <= t <= {}, 1 <= p <= {}, 8*p KiB <= m <= {} KiB",
            KdfParams::MAX_T,
            KdfParams::MAX_P,
            KdfParams::MAX_M_KIB
        ))
    })?;
    if kdf.is_weak() {
        printer.warn(&format!(
            "Argon2id m={} KiB t={} is weaker than RFC 9106's recommendation (m=65536 KiB, t=3)",
            kdf.m_kib, kdf.t
        ));
    }
    Ok(kdf)
}

/// A new vault's path: nothing there yet, in an existing directory.
pub fn check_new_vault_path(out: &Path) -> Result<()> {
    match fs::symlink_metadata(out) {
        Ok(_) => {
            return Err(Error::usage(format!("{} already exists", out.display()))
                .with_hint("choose another path; an existing vault is never overwritten"))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("reading", out, e)),
    }
    let out_dir = crate::private_fs::parent_of(out);
    if !out_dir.is_dir() {
        return Err(
            Error::usage(format!("{} is not a directory", out_dir.display()))
                .with_hint("create it first (mkdir -m 700), or choose another --out"),
        );
    }
    Ok(())
}

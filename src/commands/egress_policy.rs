//! `safeclaw egress show`, `allow` and `deny`: the egress policy the vault
//! keeps among safeclaw's records (`egress::stored`, docs/egress.md). A
//! change is sealed as the vault's next generation and used from the next
//! start; while the bot runs, its guard carries the policy it started
//! with into every seal, so a change then would be lost: refused.

use serde_json::json;

use crate::egress::policy::Policy;
use crate::egress::stored;
use crate::error::{Error, Result};
use crate::printer::Printer;
use crate::runtime::engine::Engine;
use crate::vault::VaultFile;

use super::settings::{EgressChange, EgressPolicy};
use super::shared;

/// Which change `run_change` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Allow,
    Deny,
}

pub fn show(s: EgressPolicy, printer: &Printer) -> Result<()> {
    let path = crate::paths::vault(&s.vault)?;
    let vault = VaultFile::open(&path)?;
    let (key, _) = shared::unlock(&vault, &s.password, printer)?;
    let (p, stored) = match stored::load(&vault, &key)? {
        Some(p) => (p, true),
        None => {
            let (rules, _) = stored::defaults(&vault, &key)?;
            (Policy { open: false, rules }, false)
        }
    };
    let rules = stored::shown_rules(&p.rules);
    let mut text = if p.open {
        "egress: open (the gateway can reach anywhere)".to_string()
    } else if rules.is_empty() {
        "egress: locked; nothing allowed".to_string()
    } else {
        format!("egress: locked; allowed:\n  {}", rules.join("\n  "))
    };
    if !stored {
        text.push_str("\n(not stored yet: the first start stores this, from OpenClaw's config)");
    }
    printer.result(
        &text,
        json!({ "ok": true, "vault": path, "stored": stored, "open": p.open, "allow": rules }),
    );
    Ok(())
}

/// `safeclaw egress log --vault`: the decisions the vault keeps (every
/// run's, as of its last seal), one a line (`--json`: as the proxy wrote
/// them).
pub fn log(s: EgressPolicy, printer: &Printer) -> Result<()> {
    use std::io::Write;
    let path = crate::paths::vault(&s.vault)?;
    let vault = VaultFile::open(&path)?;
    let (key, _) = shared::unlock(&vault, &s.password, printer)?;
    let records = vault.records(&key)?;
    let kept = records
        .get(crate::egress::log_file::RECORD)
        .unwrap_or_default();
    let mut out = std::io::stdout().lock();
    for line in kept.split(|&b| b == b'\n') {
        let Ok(event) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let text = if printer.json {
            Some(event.to_string())
        } else {
            super::egress::shown(&event)
        };
        if let Some(text) = text {
            let _ = writeln!(out, "{text}");
        }
    }
    Ok(())
}

pub fn change(s: EgressChange, how: Change, engine: &Engine, printer: &Printer) -> Result<()> {
    let path = crate::paths::vault(&s.policy.vault)?;
    let path = crate::paths::in_resolved_dir(&path)?;
    refuse_while_running(engine, &path, "policy")?;
    let vault = VaultFile::open(&path)?;
    let (key, _) = shared::unlock(&vault, &s.policy.password, printer)?;
    let mut p = match stored::load(&vault, &key)? {
        Some(p) => p,
        None => Policy {
            open: false,
            rules: stored::defaults(&vault, &key)?.0,
        },
    };
    drop(vault);
    let mut already = Vec::new();
    match how {
        Change::Allow => already = stored::allow(&mut p, s.rules.clone())?,
        Change::Deny => stored::deny(&mut p, &s.rules)?,
    }
    let generation = stored::store(&path, &key, s.keep_generations, &p)?;
    crate::rollback::record_authenticated(&path, generation, printer);
    for r in &already {
        printer.note(&format!("{r} was already allowed"));
    }
    let changed = stored::shown_rules(&s.rules);
    let verb = match how {
        Change::Allow => "allowed",
        Change::Deny => "removed",
    };
    printer.result(
        &format!(
            "{verb} {} (vault generation {generation}); used from the next start",
            changed.join(", ")
        ),
        json!({ "ok": true, "vault": path, "generation": generation, verb: changed,
                "allow": stored::shown_rules(&p.rules) }),
    );
    Ok(())
}

/// A running bot's guard seals the records it started with, and its seals
/// race a change for the next generation: a change of `what` now would be
/// lost. An engine that cannot be asked is not taken for "nothing runs":
/// the change would be lost silently.
pub(crate) fn refuse_while_running(
    engine: &Engine,
    vault: &std::path::Path,
    what: &str,
) -> Result<()> {
    super::switch::refuse_while_interrupted(vault, what)?;
    let dir = crate::private_fs::parent_of(vault);
    match crate::runtime::container::running_with_mount(engine, &dir) {
        Ok(None) => Ok(()),
        Ok(Some(name)) => Err(
            Error::usage(format!("{name} is running from this vault")).with_hint(format!(
                "`safeclaw stop --name {name}` first: a running bot seals over a change of the {what}"
            )),
        ),
        Err(e) => Err(Error::new(
            e.class,
            format!(
                "cannot tell whether a bot runs from this vault ({}); the {what} was not changed",
                e.message
            ),
        )
        .with_hint(
            "a running bot would seal over the change: reach the engine it runs on (--engine, DOCKER_HOST), or stop it",
        )),
    }
}

//! The egress policy as the vault keeps it: the record `egress.json` among
//! safeclaw's records (docs/vault-format.md, "Records"), which travel with
//! the state, are authenticated with it, and are never in the gateway's
//! reach: the guard keeps them in its own memory and writes them into every
//! seal. The gateway's `openclaw.json` names its providers, but the agent
//! can rewrite it; so it only proposes the first policy, stored at once.

use std::path::Path;

use zeroize::Zeroizing;

use super::policy::{self, Mode, Policy, Rule};
use crate::error::{Error, Result};
use crate::printer::Printer;
use crate::vault::crypto::DataKey;
use crate::vault::VaultFile;

/// The record's name.
pub const RECORD: &str = "egress.json";
/// OpenClaw's config in its state directory, where the first policy's
/// providers and channels are read from.
const CONFIG_FILE: &str = "openclaw.json";
/// A config larger than this is not read for defaults.
const MAX_CONFIG: u64 = 4 << 20;

/// The vault's policy, or None when it has none yet.
pub fn load(vault: &VaultFile, key: &DataKey) -> Result<Option<Policy>> {
    let records = vault.records(key)?;
    records
        .get(RECORD)
        .map(|bytes| {
            policy::decode(bytes).map_err(|why| {
                Error::damaged(format!("the vault's egress policy is unreadable: {why}"))
            })
        })
        .transpose()
}

/// What the vault's OpenClaw config needs: the rules, and the provider or
/// channel ids safeclaw knows no host for.
pub fn defaults(vault: &VaultFile, key: &DataKey) -> Result<(Vec<Rule>, Vec<String>)> {
    let config: Option<Zeroizing<Vec<u8>>> = vault.state_file(key, CONFIG_FILE, MAX_CONFIG)?;
    // The config holds secrets (tokens): parsed from the zeroizing buffer,
    // only the ids and hosts leave this function.
    let json = config
        .as_deref()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .unwrap_or(serde_json::Value::Null);
    Ok(policy::defaults_from_config(&json))
}

/// Where the policy a start uses came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The vault's record.
    Vault,
    /// The defaults of the vault's config (the vault holds none yet; the
    /// guard stores them at its first seal), and the provider or channel
    /// ids safeclaw knows no host for.
    Defaults { unknown: Vec<String> },
}

/// The vault's policy, or the defaults of its config when it holds none.
pub fn load_or_defaults(vault: &VaultFile, key: &DataKey) -> Result<(Policy, Source)> {
    if let Some(p) = load(vault, key)? {
        return Ok((p, Source::Vault));
    }
    let (rules, unknown) = defaults(vault, key)?;
    Ok((Policy { open: false, rules }, Source::Defaults { unknown }))
}

/// What a start says about its egress policy, once it started: where the
/// policy came from when that needs saying.
pub fn tell(p: &Policy, source: &Source, printer: &Printer) {
    if p.open {
        printer.warn(
            "egress: the vault's policy says open, which safeclaw never writes; kept locked \
             (`--egress open` opens egress for one start)",
        );
    }
    let Source::Defaults { unknown } = source else {
        return;
    };
    let shown = shown_rules(&p.rules);
    printer.note(&format!(
        "egress: the vault had no policy; allowing what its OpenClaw config names: {} \
         (kept in the vault from the first seal; `safeclaw egress show`, `safeclaw egress allow HOST`)",
        if shown.is_empty() {
            "nothing".to_string()
        } else {
            shown.join(", ")
        }
    ));
    if !unknown.is_empty() {
        printer.warn(&format!(
            "egress: safeclaw knows no API host for {}: allow them with `safeclaw egress allow HOST`",
            unknown.join(", ")
        ));
    }
}

/// Writes `p` into the vault as its next generation; returns it.
pub fn store(path: &Path, key: &DataKey, keep: usize, p: &Policy) -> Result<u64> {
    let bytes = policy::encode(p);
    crate::vault::rewrite_records(path, key, keep, |records| records.set(RECORD, bytes))
}

/// The rules the gateway starts with: None when egress is open, which only
/// `--egress open` asks, each time. A stored policy's `open` is not obeyed:
/// no command of safeclaw's writes it, so one found in a vault came from
/// somewhere else (an imported directory), and opening egress silently
/// because of it would be the firewall's undoing.
pub fn rules_for_start(p: &Policy, asked: Option<Mode>) -> Option<Vec<Rule>> {
    match asked {
        Some(Mode::Open) => None,
        Some(Mode::Locked) | None => Some(p.rules.clone()),
    }
}

pub fn shown_rules(rules: &[Rule]) -> Vec<String> {
    rules.iter().map(ToString::to_string).collect()
}

/// `allow`: the rules added (each once, in order); the ones already there
/// are returned apart.
pub fn allow(p: &mut Policy, rules: Vec<Rule>) -> Result<Vec<Rule>> {
    let mut already = Vec::new();
    for r in rules {
        if p.rules.contains(&r) {
            already.push(r);
        } else {
            p.rules.push(r);
        }
    }
    if p.rules.len() > policy::MAX_RULES {
        return Err(Error::usage(format!(
            "an egress policy holds at most {} rules",
            policy::MAX_RULES
        )));
    }
    Ok(already)
}

/// `deny`: removes each rule, all or nothing: a rule the policy does not
/// hold is an error naming what it holds.
pub fn deny(p: &mut Policy, rules: &[Rule]) -> Result<()> {
    if let Some(missing) = rules.iter().find(|r| !p.rules.contains(r)) {
        let held = shown_rules(&p.rules);
        return Err(
            Error::usage(format!("the egress policy has no rule {missing}")).with_hint(
                if held.is_empty() {
                    "it allows nothing".to_string()
                } else {
                    format!("it holds: {}", held.join(", "))
                },
            ),
        );
    }
    p.rules.retain(|r| !rules.contains(r));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[&str]) -> Vec<Rule> {
        list.iter().map(|r| Rule::parse(r).unwrap()).collect()
    }

    #[test]
    fn allow_and_deny_change_the_rules_once() {
        let mut p = Policy {
            open: false,
            rules: rules(&["api.anthropic.com"]),
        };
        let already = allow(
            &mut p,
            rules(&["api.telegram.org", "api.anthropic.com:443"]),
        )
        .unwrap();
        assert_eq!(shown_rules(&already), ["api.anthropic.com:443"]);
        assert_eq!(
            shown_rules(&p.rules),
            ["api.anthropic.com:443", "api.telegram.org:443"]
        );
        let e = deny(&mut p, &rules(&["api.telegram.org", "example.com"])).unwrap_err();
        assert!(
            e.message.contains("no rule example.com:443"),
            "{}",
            e.message
        );
        assert_eq!(p.rules.len(), 2, "all or nothing");
        deny(&mut p, &rules(&["api.telegram.org"])).unwrap();
        assert_eq!(shown_rules(&p.rules), ["api.anthropic.com:443"]);
    }

    #[test]
    fn only_the_command_line_opens_egress() {
        let locked = Policy {
            open: false,
            rules: rules(&["api.anthropic.com"]),
        };
        let open = Policy {
            open: true,
            ..locked.clone()
        };
        assert_eq!(rules_for_start(&locked, None), Some(locked.rules.clone()));
        assert_eq!(rules_for_start(&locked, Some(Mode::Open)), None);
        // Stored open is not obeyed: only the command line opens.
        assert_eq!(rules_for_start(&open, None), Some(locked.rules.clone()));
        assert_eq!(
            rules_for_start(&open, Some(Mode::Locked)),
            Some(locked.rules.clone())
        );
    }
}

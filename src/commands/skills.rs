//! `safeclaw skills add`, `list` and `remove`: the skills the vault pins
//! by hash (docs/skills.md). A change is sealed as the vault's next
//! generation and used from the next start; refused while a bot runs from
//! the vault, whose guard seals the records it started with.

use serde_json::json;

use crate::error::{Error, Result};
use crate::printer::Printer;
use crate::runtime::engine::Engine;
use crate::skills::{self, pinned, Pinned};
use crate::vault::{self, crypto::DataKey, VaultFile};

use super::egress_policy::refuse_while_running;
use super::settings::{EgressPolicy, SkillsChange};
use super::shared;

/// The vault's pinned skills, or why its records are not a consistent set.
fn load(vault: &VaultFile, key: &DataKey) -> Result<Vec<Pinned>> {
    pinned::load(&vault.records(key)?).map_err(|why| {
        Error::damaged(format!(
            "{}: its pinned skills: {why}",
            vault.path.display()
        ))
    })
}

fn kib(bytes: usize) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn row(p: &Pinned) -> serde_json::Value {
    json!({
        "name": p.entry.name,
        "sha256": p.entry.sha256,
        "origin": p.entry.origin,
        "added_at": p.entry.added_at,
        "files": p.bundle.files.len(),
        "bytes": p.bundle.content_bytes(),
        "mounted_at": format!("{}/{}", skills::MOUNT, p.entry.name),
        "loaded_as": format!("{}/skills/{}", crate::runtime::layout::STATE_DIR, p.entry.name),
    })
}

pub fn list(s: EgressPolicy, printer: &Printer) -> Result<()> {
    let path = crate::paths::vault(&s.vault)?;
    let vault = VaultFile::open(&path)?;
    let (key, _) = shared::unlock(&vault, &s.password, printer)?;
    let pinned = load(&vault, &key)?;
    let text = if pinned.is_empty() {
        format!(
            "{} pins no skills (`safeclaw skills add DIR` pins one)",
            path.display()
        )
    } else {
        let lines: Vec<String> = pinned
            .iter()
            .map(|p| {
                format!(
                    "{:<20} {}  {} files, {}  added {}\n  {:<20} from {}",
                    p.entry.name,
                    skills::short_hash(&p.entry.sha256),
                    p.bundle.files.len(),
                    kib(p.bundle.content_bytes()),
                    humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(p.entry.added_at)
                    ),
                    "",
                    p.entry.origin,
                )
            })
            .collect();
        format!(
            "pinned skills (read-only at {}/NAME, OpenClaw's managed skills):\n  {}",
            skills::MOUNT,
            lines.join("\n  ")
        )
    };
    printer.result(
        &text,
        json!({ "ok": true, "vault": path, "skills": pinned.iter().map(row).collect::<Vec<_>>() }),
    );
    Ok(())
}

pub fn add(s: SkillsChange, engine: &Engine, printer: &Printer) -> Result<()> {
    let source = s
        .source
        .as_deref()
        .ok_or_else(|| Error::usage("no skill given"))?;
    // The skill first: a skill that cannot be pinned costs no password.
    let skill = skills::read(source, s.name.as_deref(), vault::now())?;
    let (path, key, mut pinned) = open_for_change(&s, engine, printer)?;
    let name = skill.entry.name.clone();
    let Some(before) = put(&mut pinned, skill.clone()) else {
        printer.result(
            &format!(
                "{name} is pinned already, with the same files ({})",
                skills::short_hash(&skill.entry.sha256)
            ),
            json!({ "ok": true, "vault": path, "changed": false, "skill": row(&skill) }),
        );
        return Ok(());
    };
    let generation = store(&path, &key, s.keep_generations, &pinned, printer)?;
    let replaced = before
        .as_ref()
        .map(|old| format!(", in place of {}", skills::short_hash(old)))
        .unwrap_or_default();
    printer.result(
        &format!(
            "pinned {name} ({}{replaced}): {} files, {} (vault generation {generation}); \
             the gateway loads it from the next start",
            skill.entry.sha256,
            skill.bundle.files.len(),
            kib(skill.bundle.content_bytes()),
        ),
        json!({ "ok": true, "vault": path, "changed": true, "generation": generation,
                "replaced": before, "skill": row(&skill) }),
    );
    Ok(())
}

pub fn remove(s: SkillsChange, engine: &Engine, printer: &Printer) -> Result<()> {
    let name = s.name.clone().unwrap_or_default();
    let (path, key, mut pinned) = open_for_change(&s, engine, printer)?;
    let Some(i) = pinned.iter().position(|p| p.entry.name == name) else {
        let held: Vec<&str> = pinned.iter().map(|p| p.entry.name.as_str()).collect();
        return Err(
            Error::usage(format!("{} pins no skill {name:?}", path.display())).with_hint(
                if held.is_empty() {
                    "it pins none".to_string()
                } else {
                    format!("it pins: {}", held.join(", "))
                },
            ),
        );
    };
    let gone = pinned.remove(i);
    let generation = store(&path, &key, s.keep_generations, &pinned, printer)?;
    printer.result(
        &format!(
            "unpinned {name} (vault generation {generation}); the gateway no longer loads it from the next start"
        ),
        json!({ "ok": true, "vault": path, "generation": generation, "removed": row(&gone) }),
    );
    Ok(())
}

/// Pins `skill` among `pinned`: None when it is pinned already with the
/// same files; else Some of the hash it replaced (None when new).
fn put(pinned: &mut Vec<Pinned>, skill: Pinned) -> Option<Option<String>> {
    match pinned.iter_mut().find(|p| p.entry.name == skill.entry.name) {
        Some(p) if p.entry.sha256 == skill.entry.sha256 => None,
        Some(p) => Some(Some(std::mem::replace(p, skill).entry.sha256)),
        None => {
            pinned.push(skill);
            Some(None)
        }
    }
}

/// `start --skill PATH`: each skill (read already, so a bad one cost no
/// password) pinned in the unlocked vault at `path` before it starts;
/// returns the new generation when that changed anything.
pub fn pin_for_start(
    path: &std::path::Path,
    key: &DataKey,
    keep: usize,
    asked: Vec<Pinned>,
    printer: &Printer,
) -> Result<Option<u64>> {
    if asked.is_empty() {
        return Ok(None);
    }
    let mut pinned = load(&VaultFile::open(path)?, key)?;
    let mut changed = Vec::new();
    for skill in asked {
        let (name, sha) = (skill.entry.name.clone(), skill.entry.sha256.clone());
        if let Some(before) = put(&mut pinned, skill) {
            changed.push(match before {
                Some(old) => format!(
                    "{name} ({}, in place of {})",
                    skills::short_hash(&sha),
                    skills::short_hash(&old)
                ),
                None => format!("{name} ({})", skills::short_hash(&sha)),
            });
        }
    }
    if changed.is_empty() {
        return Ok(None);
    }
    let generation = store(path, key, keep, &pinned, printer)?;
    printer.note(&format!(
        "pinned {} (vault generation {generation})",
        changed.join(", ")
    ));
    Ok(Some(generation))
}

/// The vault (its directory resolved), unlocked, with its pinned skills;
/// refused while a bot runs from it.
fn open_for_change(
    s: &SkillsChange,
    engine: &Engine,
    printer: &Printer,
) -> Result<(std::path::PathBuf, DataKey, Vec<Pinned>)> {
    let path = crate::paths::vault(&s.policy.vault)?;
    let path = crate::paths::in_resolved_dir(&path)?;
    refuse_while_running(engine, &path, "pinned skills")?;
    let vault = VaultFile::open(&path)?;
    let (key, _) = shared::unlock(&vault, &s.policy.password, printer)?;
    let pinned = load(&vault, &key)?;
    Ok((path, key, pinned))
}

fn store(
    path: &std::path::Path,
    key: &DataKey,
    keep: usize,
    pinned: &[Pinned],
    printer: &Printer,
) -> Result<u64> {
    let spinner = printer.spinner("sealing the vault's next generation");
    let generation =
        vault::rewrite_records(path, key, keep, |records| pinned::store(records, pinned));
    spinner.finish_and_clear();
    let generation = generation?;
    crate::rollback::record_authenticated(path, generation, printer);
    Ok(generation)
}

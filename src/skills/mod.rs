//! Pinned skills (docs/skills.md): prompt-injection defences such as the
//! guide's prompt-guard and ACIP, or the owner's own skills, given as files,
//! pinned by hash in the vault, and put where the gateway reads them but
//! cannot change them. Nothing is fetched at run time.
//!
//! - `bundle.rs`: a skill's files as one canonical byte string, its hash,
//!   and the name in a `SKILL.md` (pure);
//! - `pinned.rs`: the records the vault keeps them in (pure over records);
//! - `tree.rs`: reading a directory or archive, writing the read-only copy
//!   the container mounts, checking it, linking it into OpenClaw's managed
//!   skills, and finding `SKILL.md` files in the agent's state.

pub mod bundle;
pub mod pinned;
pub mod tree;

use std::path::Path;

use crate::error::{Error, Result};
pub use pinned::{Entry, Pinned};

/// Where the container mounts the pinned skills, read-only.
pub const MOUNT: &str = crate::constants::PINNED_SKILLS_DIR;

/// The skill at `source` as the pinned skill `name` (None: the name in its
/// `SKILL.md`, else the directory's or archive's name). A name given that
/// differs from the one in `SKILL.md` is refused: OpenClaw shows the
/// skill by that one, and shadowing is looked for by it.
pub fn read(source: &Path, name: Option<&str>, now: u64) -> Result<Pinned> {
    let bundle = tree::read_source(source)?;
    let skill_md = bundle.skill_md();
    // What OpenClaw would skip without a word: pinned, it would not load.
    let unloadable = if skill_md.len() > bundle::MAX_SKILL_MD_BYTES {
        Some(format!(
            "its SKILL.md is {} bytes, more than OpenClaw loads ({})",
            skill_md.len(),
            bundle::MAX_SKILL_MD_BYTES
        ))
    } else if bundle::front_matter_value(skill_md, "description").is_none() {
        Some("its SKILL.md has no `description` in a front matter (`---` lines at its top), which OpenClaw needs to load a skill".into())
    } else {
        None
    };
    if let Some(why) = unloadable {
        return Err(
            Error::usage(format!("{} cannot be pinned: {why}", source.display()))
                .with_hint("see OpenClaw's docs/tools/skills.md, \"SKILL.md format\""),
        );
    }
    let declared = bundle::front_matter_name(skill_md);
    let fallback = || {
        let base = source.file_name()?.to_str()?;
        let base = [".tar.gz", ".tgz", ".tar"]
            .iter()
            .find_map(|ext| base.strip_suffix(ext))
            .unwrap_or(base);
        Some(base.to_string())
    };
    let name = match (name, declared) {
        (Some(given), Some(declared)) if given != declared => {
            return Err(Error::usage(format!(
                "its SKILL.md names it {declared:?}, not {given:?}"
            ))
            .with_hint("OpenClaw shows a skill by the name in its SKILL.md; leave out --name, or change the file"));
        }
        (Some(given), _) => given.to_string(),
        (None, Some(declared)) => declared,
        (None, None) => fallback().ok_or_else(|| {
            Error::usage(format!("{} gives the skill no name", source.display()))
                .with_hint("pass --name NAME")
        })?,
    };
    pinned::check_name(&name).map_err(|why| {
        Error::usage(why).with_hint(
            "pass --name NAME with a plain name (its SKILL.md must not name it otherwise)",
        )
    })?;
    let sha256 = bundle::hash(&bundle::encode(&bundle));
    let origin = std::fs::canonicalize(source)
        .unwrap_or_else(|_| source.to_path_buf())
        .display()
        .to_string();
    let origin: String = origin
        .chars()
        .filter(|c| !c.is_control())
        .take(1024)
        .collect();
    Ok(Pinned {
        entry: Entry {
            name,
            sha256,
            origin,
            added_at: now,
        },
        bundle,
    })
}

/// A skill's hash as lists show it: its first 16 hex digits.
pub fn short_hash(sha256: &str) -> &str {
    let hex = sha256.strip_prefix("sha256:").unwrap_or(sha256);
    &hex[..hex.len().min(16)]
}

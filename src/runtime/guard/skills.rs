//! The pinned skills inside the container (docs/skills.md): checked
//! against the vault's hashes before the gateway starts, linked into
//! OpenClaw's managed skills, and watched at every checkpoint for a skill
//! the agent wrote under a pinned skill's name, and for a mounted copy
//! that changed.

use std::path::{Path, PathBuf};

use super::protocol::{Failure, GuardSettings, Status};
use super::say;
use crate::skills::{self, tree, Pinned};

/// What the guard knows of the pinned skills for the rest of its run.
pub struct Watch {
    pinned: Vec<Pinned>,
    mount: PathBuf,
}

/// Checks the mounted skills against the vault's records and links them
/// into the state; returns what watches them. Fails, so the gateway never
/// starts, when the vault pins a skill the container has no matching copy
/// of.
pub fn install(
    s: &GuardSettings,
    records: &crate::vault::Records,
) -> std::result::Result<Watch, Failure> {
    let (pinned, mount) = check(s, records)?;
    let names: Vec<&str> = pinned.iter().map(|p| p.entry.name.as_str()).collect();
    for tree::Linked::Displaced { name, to } in tree::link(&s.state, &mount, &names)? {
        say(&Status::SkillDisplaced { name, to });
    }
    let watch = Watch { pinned, mount };
    watch.look(&s.state);
    Ok(watch)
}

/// The pinned skills of `records`, each checked against its mounted copy,
/// and where they are mounted; fails when one does not match or has none.
pub fn check(
    s: &GuardSettings,
    records: &crate::vault::Records,
) -> std::result::Result<(Vec<Pinned>, PathBuf), Failure> {
    let pinned = skills::pinned::load(records).map_err(|why| {
        Failure::Other(format!("the vault's pinned skills are unreadable: {why}"))
    })?;
    let mount = match (&s.pinned_skills, pinned.first()) {
        (Some(dir), _) => dir.clone(),
        (None, None) => PathBuf::from(skills::MOUNT),
        (None, Some(p)) => {
            return Err(Failure::Other(format!(
                "the vault pins the skill {} but the container has no copy of it; not starting the gateway",
                p.entry.name
            )))
        }
    };
    if !pinned.is_empty() {
        tree::verify(&mount, &pinned)
            .map_err(|why| Failure::Other(format!("{why}; not starting the gateway")))?;
    }
    Ok((pinned, mount))
}

impl Watch {
    /// Says every mounted copy that no longer matches its hash.
    pub fn check_mount(&self) {
        for p in &self.pinned {
            if tree::verify(&self.mount, std::slice::from_ref(p)).is_err() {
                say(&Status::SkillChanged {
                    name: p.entry.name.clone(),
                });
            }
        }
    }

    /// Says every `SKILL.md` under `state` that carries a pinned skill's
    /// name, and a pinned skill's link in OpenClaw's managed skills that is
    /// no longer safeclaw's. Each time it is asked (every checkpoint), not
    /// once: the engine's log is bounded, and a gateway that floods its
    /// output would otherwise rotate a single report away.
    pub fn look(&self, state: &Path) {
        if self.pinned.is_empty() {
            return;
        }
        let mut found = Vec::new();
        for p in &self.pinned {
            let at = state.join("skills").join(&p.entry.name);
            if std::fs::read_link(&at).ok() != Some(self.mount.join(&p.entry.name)) {
                found.push(Status::SkillShadowed {
                    name: p.entry.name.clone(),
                    path: format!("skills/{} (not safeclaw's link any more)", p.entry.name),
                });
            }
        }
        for f in tree::scan(state) {
            if self.pinned.iter().any(|p| p.entry.name == f.name) {
                found.push(Status::SkillShadowed {
                    name: f.name,
                    path: f.path,
                });
            }
        }
        for status in found {
            say(&status);
        }
    }
}

//! The pinned skills as the vault keeps them: among safeclaw's records
//! (docs/vault-format.md, "Records"), which travel with the state, are
//! authenticated with it, and which the agent can neither read nor change
//! (the guard keeps them in its own memory and writes them into every
//! seal). One record per skill, `skill.<name>`, holding its bundle
//! (`bundle.rs`), and an index, `skills.json`, naming each with its hash,
//! origin and when it was added. Pure over `Records`.

use serde::{Deserialize, Serialize};

use super::bundle::{self, Bundle};
use crate::vault::Records;

/// The index record.
pub const INDEX_RECORD: &str = "skills.json";
/// A skill's bundle is the record `skill.<name>`.
pub const BUNDLE_PREFIX: &str = "skill.";
/// Skills one vault pins.
pub const MAX_SKILLS: usize = 8;
/// Bytes of all bundles and the index together: what is left of the
/// records' 1 MiB (`vault::records::MAX_RECORDS_BYTES`) after the egress
/// policy and the egress log the vault keeps (at most 192 KiB).
pub const MAX_SKILLS_BYTES: usize = 640 * 1024;
/// Bytes of a skill's name: `skill.` and the name fit a record name (64).
pub const MAX_NAME_BYTES: usize = 48;
/// Bytes of an origin (where `skills add` read the skill from).
const MAX_ORIGIN_BYTES: usize = 1024;

/// One pinned skill as the index names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    /// `bundle::hash` of its bundle.
    pub sha256: String,
    /// Where it was read from, as given (a path), for the owner's eyes.
    pub origin: String,
    /// Unix seconds of the `skills add`.
    pub added_at: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Index {
    version: u32,
    skills: Vec<Entry>,
}

const INDEX_VERSION: u32 = 1;

/// A pinned skill: its entry and its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    pub entry: Entry,
    pub bundle: Bundle,
}

/// Checks a skill's name: `[a-z0-9][a-z0-9_-]{0,47}`. It is a directory
/// name in the container, a record name, and what OpenClaw shows; the rule
/// leaves out anything a path or a terminal would read otherwise.
pub fn check_name(name: &str) -> Result<(), String> {
    let plain = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = name.len() <= MAX_NAME_BYTES
        && name.chars().next().is_some_and(plain)
        && name.chars().all(|c| plain(c) || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a skill name safeclaw pins: 1 to {MAX_NAME_BYTES} of a-z, 0-9, '-' and '_', starting with a letter or digit",
            name.chars().take(80).collect::<String>()
        ))
    }
}

fn check_entry(e: &Entry) -> Result<(), String> {
    check_name(&e.name)?;
    let hex = e.sha256.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!("the skill {} has no valid sha256", e.name));
    }
    if e.origin.len() > MAX_ORIGIN_BYTES || e.origin.chars().any(char::is_control) {
        return Err(format!("the skill {}'s origin is not a plain line", e.name));
    }
    Ok(())
}

/// The skills a vault's records pin, each bundle checked against its hash;
/// or why the records are not a consistent set (a damaged vault).
pub fn load(records: &Records) -> Result<Vec<Pinned>, String> {
    let bundles: Vec<&str> = records
        .names()
        .filter(|n| n.starts_with(BUNDLE_PREFIX))
        .collect();
    let Some(index) = records.get(INDEX_RECORD) else {
        return match bundles.first() {
            None => Ok(Vec::new()),
            Some(n) => Err(format!("the record {n} has no entry in {INDEX_RECORD}")),
        };
    };
    let index: Index = serde_json::from_slice(index)
        .map_err(|e| format!("{INDEX_RECORD} is not readable: {e}"))?;
    if index.version != INDEX_VERSION {
        return Err(format!(
            "{INDEX_RECORD} is version {}, this safeclaw reads {INDEX_VERSION}",
            index.version
        ));
    }
    if index.skills.len() > MAX_SKILLS {
        return Err(format!(
            "{INDEX_RECORD} names more than {MAX_SKILLS} skills"
        ));
    }
    let mut pinned: Vec<Pinned> = Vec::with_capacity(index.skills.len());
    for entry in index.skills {
        check_entry(&entry)?;
        if pinned.iter().any(|p| p.entry.name == entry.name) {
            return Err(format!("{INDEX_RECORD} names {} twice", entry.name));
        }
        let record = format!("{BUNDLE_PREFIX}{}", entry.name);
        let bytes = records
            .get(&record)
            .ok_or_else(|| format!("the pinned skill {} has no record {record}", entry.name))?;
        if bundle::hash(bytes) != entry.sha256 {
            return Err(format!(
                "the pinned skill {}'s files do not match its hash",
                entry.name
            ));
        }
        let bundle =
            bundle::decode(bytes).map_err(|why| format!("the skill {}: {why}", entry.name))?;
        pinned.push(Pinned { entry, bundle });
    }
    if let Some(stray) = bundles.iter().find(|n| {
        !pinned
            .iter()
            .any(|p| n.strip_prefix(BUNDLE_PREFIX) == Some(p.entry.name.as_str()))
    }) {
        return Err(format!("the record {stray} has no entry in {INDEX_RECORD}"));
    }
    Ok(pinned)
}

/// Makes `records` pin exactly `pinned` (none: no skill records at all).
pub fn store(records: &mut Records, pinned: &[Pinned]) -> crate::error::Result<()> {
    let refused = |why: String| {
        crate::error::Error::usage(why).with_hint(format!(
            "a vault pins at most {MAX_SKILLS} skills of at most {} KiB together (docs/skills.md)",
            MAX_SKILLS_BYTES / 1024
        ))
    };
    if pinned.len() > MAX_SKILLS {
        return Err(refused(format!(
            "{} skills are more than a vault pins",
            pinned.len()
        )));
    }
    let encoded: Vec<(String, Vec<u8>)> = pinned
        .iter()
        .map(|p| {
            (
                format!("{BUNDLE_PREFIX}{}", p.entry.name),
                bundle::encode(&p.bundle),
            )
        })
        .collect();
    let index = serde_json::to_vec(&Index {
        version: INDEX_VERSION,
        skills: pinned.iter().map(|p| p.entry.clone()).collect(),
    })
    .map_err(|e| crate::error::Error::failure(format!("encoding {INDEX_RECORD}: {e}")))?;
    let total = index.len() + encoded.iter().map(|(_, b)| b.len()).sum::<usize>();
    if total > MAX_SKILLS_BYTES {
        return Err(refused(format!(
            "the pinned skills would take {} KiB",
            total.div_ceil(1024)
        )));
    }
    let old: Vec<String> = records
        .names()
        .filter(|n| n.starts_with(BUNDLE_PREFIX) || *n == INDEX_RECORD)
        .map(str::to_string)
        .collect();
    for n in old {
        records.remove(&n);
    }
    if pinned.is_empty() {
        return Ok(());
    }
    for (name, bytes) in encoded {
        records.set(&name, bytes)?;
    }
    records.set(INDEX_RECORD, index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skills::bundle::File;

    pub(crate) fn skill(name: &str, body: &str) -> Pinned {
        let bundle = Bundle::new(vec![File {
            path: bundle::SKILL_FILE.into(),
            executable: false,
            content: format!("---\nname: {name}\n---\n{body}\n").into_bytes(),
        }])
        .unwrap();
        Pinned {
            entry: Entry {
                name: name.into(),
                sha256: bundle::hash(&bundle::encode(&bundle)),
                origin: format!("/src/{name}"),
                added_at: 1,
            },
            bundle,
        }
    }

    #[test]
    fn skills_round_trip_through_records_and_leave_others_alone() {
        let mut records = Records::new();
        records.set("egress.json", b"{}".to_vec()).unwrap();
        let set = vec![skill("acip", "a"), skill("prompt-guard", "b")];
        store(&mut records, &set).unwrap();
        assert_eq!(load(&records).unwrap(), set);
        store(&mut records, &set[1..]).unwrap();
        assert_eq!(load(&records).unwrap(), set[1..]);
        assert!(records.get("skill.acip").is_none());
        store(&mut records, &[]).unwrap();
        assert_eq!(records.names().collect::<Vec<_>>(), ["egress.json"]);
        assert!(load(&records).unwrap().is_empty());
    }

    #[test]
    fn inconsistent_records_are_refused() {
        let mut records = Records::new();
        store(&mut records, &[skill("acip", "a")]).unwrap();
        // A bundle whose hash is not the index's.
        let mut changed = records.clone();
        let other = bundle::encode(&skill("acip", "changed").bundle);
        changed.set("skill.acip", other).unwrap();
        assert!(load(&changed).unwrap_err().contains("do not match"));
        // A bundle the index does not name, an index naming a missing one.
        let mut stray = records.clone();
        stray.set("skill.other", b"x".to_vec()).unwrap();
        assert!(load(&stray).unwrap_err().contains("no entry"));
        let mut missing = records.clone();
        missing.remove("skill.acip");
        assert!(load(&missing).unwrap_err().contains("no record"));
        let mut bad = records.clone();
        bad.set(
            INDEX_RECORD,
            br#"{"version":1,"skills":[{"name":"../x","sha256":"","origin":"","added_at":0}]}"#
                .to_vec(),
        )
        .unwrap();
        assert!(load(&bad).unwrap_err().contains("not a skill name"));
    }

    #[test]
    fn names_are_plain() {
        for ok in ["acip", "prompt-guard", "a_1"] {
            check_name(ok).unwrap();
        }
        for bad in ["", "-x", "A", "a/b", "a.b", &"a".repeat(49)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_limits_are_refused_before_storing() {
        let mut records = Records::new();
        let many: Vec<Pinned> = (0..=MAX_SKILLS)
            .map(|i| skill(&format!("s{i}"), ""))
            .collect();
        assert!(store(&mut records, &many).is_err());
        assert!(records.is_empty());
    }
}

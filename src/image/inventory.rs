//! safeclaw's images in the engine (`image list`, `image prune`): the
//! twins and Nix images (by their `org.safeclaw.image` label) and the
//! pinned image (by the pin record's IDs), each with what its labels say,
//! which containers use it, and whether it is the pinned image or the
//! default twin. `inventory` and `prune_plan` are pure over what the
//! engine listed; `gather` and `remove` talk to the engine.

use bollard::models::{ContainerSummary, ContainerSummaryStateEnum, ImageSummary};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, RemoveImageOptionsBuilder,
};
use bollard::Docker;

use super::pin::{self, Record};
use super::provenance::{this_safeclaw_sha256, Guard, Labels, Provenance};
use super::twin;
use super::{image_id, same_id};
use crate::error::{Class, Error, Result};
use crate::runtime::engine::Engine;
use crate::runtime::spec::LABEL_MANAGED;

/// An image as the engine lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    /// Its tags (none for a dangling image).
    pub tags: Vec<String>,
    /// Seconds since the epoch.
    pub created: i64,
    /// Bytes.
    pub size: i64,
    pub labels: Labels,
}

impl From<ImageSummary> for Image {
    fn from(s: ImageSummary) -> Image {
        Image {
            id: s.id,
            tags: s
                .repo_tags
                .into_iter()
                .filter(|t| t != "<none>:<none>")
                .collect(),
            created: s.created,
            size: s.size,
            labels: s.labels,
        }
    }
}

/// A container as the engine lists it, running or not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    pub image_id: String,
    pub running: bool,
    /// A gateway safeclaw made (`LABEL_MANAGED`).
    pub managed: bool,
}

impl From<ContainerSummary> for Container {
    fn from(c: ContainerSummary) -> Container {
        Container {
            name: c
                .names
                .and_then(|n| n.into_iter().next())
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            image_id: c.image_id.unwrap_or_default(),
            running: c.state == Some(ContainerSummaryStateEnum::RUNNING),
            managed: c.labels.is_some_and(|l| l.contains_key(LABEL_MANAGED)),
        }
    }
}

/// One of safeclaw's images, and what holds on to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub image: Image,
    pub provenance: Provenance,
    /// Whose guard it holds, against this safeclaw.
    pub guard: Guard,
    /// The image the pin names (its record recognises the ID).
    pub pinned: bool,
    /// The image under the default twin tag.
    pub default_twin: bool,
    /// safeclaw's gateways that run it.
    pub running: Vec<String>,
    /// Every container made from it, running or not (an exited gateway is
    /// the one `start` replaces, and the image a rollback returns to).
    pub containers: Vec<String>,
    /// What the gateways' upgrade records say of it ("openclaw: rollback
    /// target"; docs/upgrade.md).
    pub upgrades: Vec<String>,
}

/// Why an image stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// Containers use it (running or not).
    UsedBy(Vec<String>),
    Pinned,
    DefaultTwin,
    /// An upgrade record names it (what a gateway runs or returns to).
    Upgrade(Vec<String>),
}

impl Keep {
    pub fn describe(&self) -> String {
        match self {
            Keep::UsedBy(names) => format!("used by {}", names.join(", ")),
            Keep::Pinned => "the pinned image".into(),
            Keep::DefaultTwin => "the default twin".into(),
            Keep::Upgrade(roles) => roles.join(", "),
        }
    }
}

/// safeclaw's images among `images`, newest first: those labelled
/// `org.safeclaw.image` and the one `pinned` recognises. `default_id` is
/// the ID of the image under the default twin tag; `own` this binary's
/// hash (None: unknown, every twin's guard is then `Other`).
pub fn inventory(
    images: Vec<Image>,
    containers: &[Container],
    pinned: Option<&Record>,
    default_id: Option<&str>,
    own: Option<&str>,
    upgrades: &[crate::upgrade::Record],
) -> Vec<Entry> {
    let mut entries: Vec<Entry> = images
        .into_iter()
        .filter_map(|image| {
            let provenance = Provenance::of(&image.labels);
            let pinned = pinned.is_some_and(|r| r.image_ids().any(|p| same_id(p, &image.id)));
            let upgrades = upgrade_roles(&image.id, upgrades);
            // An image an upgrade switched to may have been built by other
            // means (no safeclaw label): the record makes it safeclaw's.
            if provenance.kind.is_none() && !pinned && upgrades.is_empty() {
                return None;
            }
            let users = containers
                .iter()
                .filter(|c| same_id(&c.image_id, &image.id));
            let running = users
                .clone()
                .filter(|c| c.running && c.managed)
                .map(|c| c.name.clone())
                .collect();
            let containers = users.map(|c| c.name.clone()).collect();
            Some(Entry {
                guard: provenance.guard(own.unwrap_or_default()),
                default_twin: default_id.is_some_and(|d| same_id(d, &image.id)),
                provenance,
                pinned,
                running,
                containers,
                upgrades,
                image,
            })
        })
        .collect();
    entries.sort_by(|a, b| (b.image.created, &a.image.id).cmp(&(a.image.created, &b.image.id)));
    entries
}

/// Why `entry` stays; empty when `prune` removes it.
pub fn keep_reasons(entry: &Entry) -> Vec<Keep> {
    let mut why = Vec::new();
    if !entry.containers.is_empty() {
        why.push(Keep::UsedBy(entry.containers.clone()));
    }
    if entry.pinned {
        why.push(Keep::Pinned);
    }
    if entry.default_twin {
        why.push(Keep::DefaultTwin);
    }
    if !entry.upgrades.is_empty() {
        why.push(Keep::Upgrade(entry.upgrades.clone()));
    }
    why
}

/// The entries `prune` removes, and those it keeps with why.
pub fn prune_plan(entries: &[Entry]) -> (Vec<&Entry>, Vec<(&Entry, Vec<Keep>)>) {
    let mut remove = Vec::new();
    let mut keep = Vec::new();
    for entry in entries {
        let why = keep_reasons(entry);
        if why.is_empty() {
            remove.push(entry);
        } else {
            keep.push((entry, why));
        }
    }
    (remove, keep)
}

/// Lists the engine's images and containers and makes the inventory;
/// `default_tag` is the default twin's tag.
pub async fn gather(
    docker: &Docker,
    pinned: Option<&Record>,
    default_tag: &str,
    own: Option<&str>,
    upgrades: &[crate::upgrade::Record],
) -> Result<Vec<Entry>> {
    let images = docker
        .list_images(Some(ListImagesOptionsBuilder::new().all(false).build()))
        .await
        .map_err(|e| Error::new(Class::Engine, format!("listing images: {e}")))?;
    let containers = list_containers(docker).await?;
    let default_id = image_id(docker, default_tag).await;
    Ok(inventory(
        images.into_iter().map(Image::from).collect(),
        &containers,
        pinned,
        default_id.as_deref(),
        own,
        upgrades,
    ))
}

/// safeclaw's images as this safeclaw sees them: with its pin's record
/// (none without a pin, or before the pinned archive was first loaded)
/// and its own hash (None when it cannot read itself).
pub fn current(engine: &Engine) -> Result<Vec<Entry>> {
    let record = pin::from_env()?.and_then(|p| p.read_record());
    let own = this_safeclaw_sha256().ok();
    let docker = engine.docker()?;
    let upgrades = crate::upgrade::all()?;
    engine.block_on(gather(
        docker,
        record.as_ref(),
        twin::DEFAULT_TAG,
        own,
        &upgrades,
    ))
}

/// What the upgrade records say of the image `id`: the image a gateway
/// was upgraded to, and the one it returns to on `rollback`.
fn upgrade_roles(id: &str, records: &[crate::upgrade::Record]) -> Vec<String> {
    use crate::upgrade::Phase;
    records
        .iter()
        .filter_map(|r| {
            let role = match r.phase {
                Phase::Kept if same_id(&r.from.id, id) => "rollback target",
                Phase::Kept | Phase::Switching if same_id(&r.to.id, id) => "upgraded to",
                Phase::Switching | Phase::RolledBack if same_id(&r.from.id, id) => {
                    "runs after an upgrade's rollback"
                }
                _ => return None,
            };
            Some(format!("{}: {role}", r.name))
        })
        .collect()
}

/// Every container, running or not.
pub async fn list_containers(docker: &Docker) -> Result<Vec<Container>> {
    let listed = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).build()))
        .await
        .map_err(|e| Error::new(Class::Engine, format!("listing containers: {e}")))?;
    Ok(listed.into_iter().map(Container::from).collect())
}

/// What became of one image `remove` was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Removed,
    /// A container uses it by now: left alone.
    InUse(Vec<String>),
    /// The engine refused or failed: its message.
    Failed(String),
}

/// Removes `entries` from the engine, never forced: each is checked again
/// for containers first (one made since the plan keeps its image), then
/// removed by each of its tags in turn (removing the last one removes the
/// image; the engine refuses one a container uses), or by ID when it has
/// none. An image that is still there afterwards is `Failed`.
pub async fn remove(docker: &Docker, entries: &[&Entry]) -> Result<Vec<(String, Removed)>> {
    let containers = list_containers(docker).await?;
    let mut done = Vec::new();
    for entry in entries {
        let id = &entry.image.id;
        let users: Vec<String> = containers
            .iter()
            .filter(|c| same_id(&c.image_id, id))
            .map(|c| c.name.clone())
            .collect();
        if !users.is_empty() {
            done.push((id.clone(), Removed::InUse(users)));
            continue;
        }
        let names = if entry.image.tags.is_empty() {
            vec![id.clone()]
        } else {
            entry.image.tags.clone()
        };
        let mut failed = None;
        for name in &names {
            let options = RemoveImageOptionsBuilder::new()
                .force(false)
                .noprune(false)
                .build();
            if let Err(e) = docker.remove_image(name, Some(options), None).await {
                failed = Some(format!("removing {name}: {e}"));
                break;
            }
        }
        let gone = docker.inspect_image(id).await.is_err();
        let outcome = match (gone, failed) {
            (true, _) => Removed::Removed,
            (false, Some(why)) => Removed::Failed(why),
            (false, None) => Removed::Failed("the engine still holds it".into()),
        };
        done.push((id.clone(), outcome));
    }
    Ok(done)
}

/// One entry as JSON (`image list --json`, `image prune --json`).
pub fn to_json(entry: &Entry) -> serde_json::Value {
    let p = &entry.provenance;
    serde_json::json!({
        "id": entry.image.id,
        "tags": entry.image.tags,
        "created": rfc3339(entry.image.created),
        "size": entry.image.size,
        "kind": p.kind,
        "openclaw": p.openclaw,
        "node": p.node,
        "lock_sha256": p.lock_sha256,
        "safeclaw_sha256": p.safeclaw_sha256,
        "guard": match entry.guard {
            Guard::This => "this",
            Guard::Other(_) => "other",
            Guard::Unknown => "unknown",
        },
        "pinned": entry.pinned,
        "default": entry.default_twin,
        "running": entry.running,
        "containers": entry.containers,
        "upgrades": entry.upgrades,
    })
}

/// Seconds since the epoch as RFC 3339 (UTC, seconds).
pub fn rfc3339(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The entries as a table, one line each, for people.
pub fn table(entries: &[Entry]) -> String {
    let rows: Vec<[String; 8]> = entries
        .iter()
        .map(|e| {
            let p = &e.provenance;
            let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            [
                if e.image.tags.is_empty() {
                    "<none>".to_string()
                } else {
                    e.image.tags.join(", ")
                },
                super::provenance::short(&e.image.id).to_string(),
                rfc3339(e.image.created).replace('T', " ").replace('Z', ""),
                format!("{} MB", e.image.size / 1_000_000),
                dash(&p.openclaw),
                dash(&p.node),
                match &e.guard {
                    Guard::This => format!(
                        "{} (this)",
                        super::provenance::short(p.safeclaw_sha256.as_deref().unwrap_or_default())
                    ),
                    Guard::Other(Some(h)) => super::provenance::short(h).to_string(),
                    Guard::Other(None) | Guard::Unknown => "-".into(),
                },
                notes(e),
            ]
        })
        .collect();
    let head = [
        "IMAGE", "ID", "CREATED", "SIZE", "OPENCLAW", "NODE", "SAFECLAW", "",
    ]
    .map(String::from);
    let mut widths = [0usize; 8];
    for row in std::iter::once(&head).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    std::iter::once(&head)
        .chain(&rows)
        .map(|row| {
            let line: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            line.join("  ").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What holds on to an entry and whose guard it holds, in words.
pub fn notes(e: &Entry) -> String {
    let mut notes = Vec::new();
    if !e.running.is_empty() {
        notes.push(format!("runs {}", e.running.join(", ")));
    }
    let stopped: Vec<&String> = e
        .containers
        .iter()
        .filter(|c| !e.running.contains(c))
        .collect();
    if !stopped.is_empty() {
        notes.push(format!(
            "used by {}",
            stopped
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if e.pinned {
        notes.push("pinned".into());
    }
    if e.default_twin {
        notes.push("default".into());
    }
    notes.extend(e.upgrades.iter().cloned());
    if let Guard::Other(_) = e.guard {
        notes.push("built by another safeclaw".into());
    }
    notes.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::provenance::{KIND_TWIN, LABEL_IMAGE, LABEL_OPENCLAW, LABEL_SAFECLAW};

    const OWN: &str = "b6e40937883db827c51995e6bb71958c561d16e689348c7db67ff550e515b42a";
    const OLD: &str = "0072ff6d7860255b94e2bee0f5e75c2b5a73ac17196c1eb11d5871afaff385df";

    fn id(n: u8) -> String {
        format!("sha256:{:064x}", n)
    }

    fn twin(n: u8, tag: Option<&str>, guard: &str, created: i64) -> Image {
        Image {
            id: id(n),
            tags: tag.into_iter().map(String::from).collect(),
            created,
            size: 700_000_000,
            labels: [
                (LABEL_IMAGE, KIND_TWIN),
                (LABEL_OPENCLAW, "2026.9.6"),
                (LABEL_SAFECLAW, guard),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        }
    }

    fn container(name: &str, n: u8, running: bool, managed: bool) -> Container {
        Container {
            name: name.into(),
            image_id: id(n),
            running,
            managed,
        }
    }

    fn sample() -> Vec<Entry> {
        let nix_unlabelled = Image {
            id: id(5),
            tags: vec!["safeclaw-openclaw:abc".into()],
            created: 1,
            ..Image::default()
        };
        let someone_elses = Image {
            id: id(6),
            tags: vec!["node:24".into()],
            created: 50,
            ..Image::default()
        };
        let images = vec![
            twin(1, Some("safeclaw/openclaw:2026.9.6"), OWN, 40),
            twin(2, Some("safeclaw/openclaw:old"), OLD, 30),
            twin(3, None, OLD, 20),
            twin(4, Some("safeclaw/openclaw:rollback"), OLD, 10),
            twin(7, Some("safeclaw/openclaw:proxy"), OLD, 5),
            nix_unlabelled,
            someone_elses,
        ];
        let containers = vec![
            container("openclaw", 1, true, true),
            // An exited gateway: the rollback target.
            container("openclaw-old", 4, false, true),
            // Not a gateway (an egress proxy, someone's): still a user.
            container("proxy", 7, true, false),
            container("other", 6, true, false),
        ];
        let record = Record {
            store_path: "/nix/store/x-image".into(),
            repo_tag: "safeclaw-openclaw:abc".into(),
            config_digest: id(5),
            manifest_digests: vec![],
        };
        inventory(
            images,
            &containers,
            Some(&record),
            Some(&id(1)),
            Some(OWN),
            &[],
        )
    }

    #[test]
    fn the_inventory_is_safeclaws_images_with_what_holds_them() {
        let entries = sample();
        let ids: Vec<&str> = entries.iter().map(|e| e.image.id.as_str()).collect();
        // Newest first; someone's node image is not listed.
        assert_eq!(ids, [id(1), id(2), id(3), id(4), id(7), id(5)]);
        let current = &entries[0];
        assert!(current.default_twin && !current.pinned);
        assert_eq!(current.running, ["openclaw"]);
        assert_eq!(current.guard, Guard::This);
        assert_eq!(current.provenance.openclaw.as_deref(), Some("2026.9.6"));
        assert_eq!(entries[1].guard, Guard::Other(Some(OLD.into())));
        let rollback = &entries[3];
        assert!(rollback.running.is_empty());
        assert_eq!(rollback.containers, ["openclaw-old"]);
        // Not a safeclaw gateway: uses the image, does not "run" it.
        assert!(entries[4].running.is_empty());
        assert_eq!(entries[4].containers, ["proxy"]);
        // Listed by the pin record alone.
        let pinned = &entries[5];
        assert!(pinned.pinned && pinned.provenance.kind.is_none());
        assert_eq!(pinned.guard, Guard::Unknown);
        let json = to_json(current);
        assert_eq!(json["guard"], "this");
        assert_eq!(json["default"], true);
        assert_eq!(json["created"], "1970-01-01T00:00:40Z");
    }

    #[test]
    fn prune_keeps_the_used_the_pinned_and_the_default_twin() {
        let entries = sample();
        let (remove, keep) = prune_plan(&entries);
        let removed: Vec<&str> = remove.iter().map(|e| e.image.id.as_str()).collect();
        assert_eq!(removed, [id(2), id(3)]);
        let kept: Vec<(&str, Vec<Keep>)> = keep
            .into_iter()
            .map(|(e, why)| (e.image.id.as_str(), why))
            .collect();
        assert_eq!(
            kept,
            [
                (
                    id(1).as_str(),
                    vec![Keep::UsedBy(vec!["openclaw".into()]), Keep::DefaultTwin]
                ),
                (
                    id(4).as_str(),
                    vec![Keep::UsedBy(vec!["openclaw-old".into()])]
                ),
                (id(7).as_str(), vec![Keep::UsedBy(vec!["proxy".into()])]),
                (id(5).as_str(), vec![Keep::Pinned]),
            ]
        );
        // The default twin is kept even when nothing runs it and another
        // safeclaw built it (`up` rebuilds it; the rebuild removes it).
        let lone = inventory(
            vec![twin(1, Some("safeclaw/openclaw:2026.9.6"), OLD, 1)],
            &[],
            None,
            Some(&id(1)),
            Some(OWN),
            &[],
        );
        assert!(prune_plan(&lone).0.is_empty());
    }

    #[test]
    fn ids_match_with_or_without_their_prefix() {
        assert!(same_id(&id(1), &id(1)[7..]));
        assert!(same_id(&id(1)[7..], &id(1)));
        assert!(!same_id(&id(1), &id(2)));
        assert!(!same_id("", ""));
    }

    #[test]
    fn the_table_says_what_runs_and_what_is_kept() {
        let text = table(&sample());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("IMAGE"), "{text}");
        assert!(lines[1].contains("safeclaw/openclaw:2026.9.6"), "{text}");
        assert!(lines[1].contains("b6e40937883d (this)"), "{text}");
        assert!(lines[1].ends_with("runs openclaw; default"), "{text}");
        assert!(lines[2].contains("0072ff6d7860"), "{text}");
        assert!(lines[2].ends_with("built by another safeclaw"), "{text}");
        assert!(lines[3].starts_with("<none>"), "{text}");
        assert!(lines[4].contains("used by openclaw-old"), "{text}");
        assert!(lines[6].ends_with("pinned"), "{text}");
    }
}

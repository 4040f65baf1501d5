//! The pinned image: the Nix store path of the image archive this safeclaw
//! was built with (the flake's wrapper sets `SAFECLAW_IMAGE`), and the
//! record of what that archive loads as.
//!
//! A store path never changes content, so once an archive has been indexed
//! (`docker_archive`) and loaded, its reference and the image IDs it is
//! known under are recorded under `~/.safeclaw/image-pins/HASH.json`, and
//! later starts only compare the engine's image ID with the record instead
//! of reading 700 MB again. The ID depends on the engine's image store
//! (`image_identity`): the config digest on the classic store, the digest
//! of a manifest naming that config on containerd's; the record keeps the
//! config digest and every manifest digest a load checked, so the image is
//! recognised on either. The record is checked against the pin it claims to
//! describe.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::env_vars;
use crate::error::{Error, Result};
use crate::image::nix_store_path::{StorePath, DEFAULT_STORE_DIR};

#[derive(Debug, Clone)]
pub struct Pin {
    pub store_path: StorePath,
    /// The archive itself (the store path, as given).
    pub archive: PathBuf,
}

/// What a pinned archive loads as, once it has been indexed and loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub store_path: String,
    pub repo_tag: String,
    /// The archive's config digest: the image ID on the classic store.
    /// safeclaw 0.1 wrote it as `image_id`, and only after checking that
    /// the engine's ID was exactly this digest, so such a record still says
    /// the same.
    #[serde(alias = "image_id")]
    pub config_digest: String,
    /// Image IDs on the containerd store: digests of manifests a load read
    /// back from the engine and checked to name `config_digest`, newest
    /// last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifest_digests: Vec<String>,
}

/// Records are a few hundred bytes; anything bigger is not one.
const MAX_RECORD: u64 = 64 * 1024;
/// Manifest digests kept: one per engine the image was loaded into, in
/// practice one or two; the oldest go first.
const MAX_MANIFEST_DIGESTS: usize = 8;

impl Record {
    /// Whether an engine's image ID is this image's, on either store.
    pub fn recognises(&self, image_id: &str) -> bool {
        self.image_ids().any(|id| id == image_id)
    }

    /// Every ID the image is known under: the config digest first.
    pub fn image_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.config_digest.as_str())
            .chain(self.manifest_digests.iter().map(String::as_str))
    }

    /// Remembers a manifest digest checked to name this record's config.
    pub fn add_manifest_digest(&mut self, digest: &str) {
        self.manifest_digests.retain(|d| d != digest);
        self.manifest_digests.push(digest.to_string());
        let excess = self
            .manifest_digests
            .len()
            .saturating_sub(MAX_MANIFEST_DIGESTS);
        self.manifest_digests.drain(..excess);
    }

    /// A record whose digests are all well-formed (a hand-edited one may
    /// not be; it is then ignored and the archive loaded again).
    fn is_well_formed(&self) -> bool {
        self.manifest_digests.len() <= MAX_MANIFEST_DIGESTS
            && self.image_ids().all(crate::image::identity::is_digest)
    }
}

/// The pin from `SAFECLAW_IMAGE`, if set; a value that is not a store path
/// is a usage error (a broken wrapper must not fall back silently).
pub fn from_env() -> Result<Option<Pin>> {
    let Some(value) = std::env::var_os(env_vars::SAFECLAW_IMAGE).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let store_dir = std::env::var(env_vars::NIX_STORE_DIR)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_STORE_DIR.to_string());
    let text = value.to_string_lossy().into_owned();
    let store_path = StorePath::parse(&text, &store_dir).map_err(|why| {
        Error::usage(format!(
            "{} is not a Nix store path: {why}",
            env_vars::SAFECLAW_IMAGE
        ))
        .with_hint("it is set by the Nix package's wrapper; unset it to run without a pinned image")
    })?;
    Ok(Some(Pin {
        store_path,
        archive: PathBuf::from(text),
    }))
}

impl Pin {
    fn record_path(&self) -> Result<PathBuf> {
        Ok(crate::paths::private_home()?
            .join(crate::paths::IMAGE_PINS_DIR)
            .join(format!("{}.json", self.store_path.hash_part())))
    }

    /// The record, if one was written for exactly this store path.
    pub fn read_record(&self) -> Option<Record> {
        let path = self.record_path().ok()?;
        let mut bytes = Vec::new();
        crate::private_fs::open_regular(&path)
            .ok()?
            .take(MAX_RECORD)
            .read_to_end(&mut bytes)
            .ok()?;
        let record: Record = serde_json::from_slice(&bytes).ok()?;
        (record.store_path == self.store_path.to_path_string() && record.is_well_formed())
            .then_some(record)
    }

    pub fn write_record(&self, record: &Record) -> Result<()> {
        let path = self.record_path()?;
        let dir = crate::private_fs::parent_of(&path);
        if !dir.exists() {
            crate::private_fs::create_private_dir(&dir)?;
        }
        let mut file = crate::private_fs::AtomicFile::create(&path)?;
        let bytes = serde_json::to_vec_pretty(record).expect("a record serializes");
        file.file()
            .write_all(&bytes)
            .map_err(|e| Error::io("writing", &path, e))?;
        file.commit()
    }

    pub fn archive(&self) -> &Path {
        &self.archive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const M: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn a_record_of_safeclaw_0_1_still_reads_as_the_config_digest() {
        let old =
            format!(r#"{{"store_path":"/nix/store/x-image","repo_tag":"a:b","image_id":"{C}"}}"#);
        let r: Record = serde_json::from_str(&old).unwrap();
        assert_eq!(r.config_digest, C);
        assert!(r.manifest_digests.is_empty());
        assert!(r.recognises(C) && !r.recognises(M));
        assert!(r.is_well_formed());
    }

    #[test]
    fn a_record_recognises_the_image_on_either_store() {
        let mut r = Record {
            store_path: "/nix/store/x-image".into(),
            repo_tag: "a:b".into(),
            config_digest: C.into(),
            manifest_digests: vec![],
        };
        r.add_manifest_digest(M);
        r.add_manifest_digest(M);
        assert_eq!(r.manifest_digests, [M]);
        assert!(r.recognises(C) && r.recognises(M));
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("config_digest") && text.contains("manifest_digests"));
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
        // Bounded: the oldest go.
        for i in 0..20 {
            r.add_manifest_digest(&format!("sha256:{i:064x}"));
        }
        assert_eq!(r.manifest_digests.len(), MAX_MANIFEST_DIGESTS);
        assert_eq!(
            r.manifest_digests.last().unwrap(),
            &format!("sha256:{:064x}", 19)
        );
        assert!(r.is_well_formed());
        r.manifest_digests[0] = "sha256:not-hex".into();
        assert!(!r.is_well_formed());
    }
}

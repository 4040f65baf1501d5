//! The pinned image: the Nix store path of the image archive this safeclaw
//! was built with (the flake's wrapper sets `SAFECLAW_IMAGE`), and the
//! record of what that archive loads as.
//!
//! A store path never changes content, so once an archive has been indexed
//! (`docker_archive`) its image ID and reference are recorded under
//! `~/.safeclaw/image-pins/HASH.json` and later starts only compare the
//! engine's image ID with the record instead of reading 700 MB again. The
//! record is checked against the pin it claims to describe.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::env_vars;
use crate::error::{Error, Result};
use crate::nix_store_path::{StorePath, DEFAULT_STORE_DIR};

#[derive(Debug, Clone)]
pub struct Pin {
    pub store_path: StorePath,
    /// The archive itself (the store path, as given).
    pub archive: PathBuf,
}

/// What a pinned archive loads as, once it has been indexed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub store_path: String,
    pub repo_tag: String,
    pub image_id: String,
}

/// Records are a few hundred bytes; anything bigger is not one.
const MAX_RECORD: u64 = 64 * 1024;

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
        (record.store_path == self.store_path.to_path_string()).then_some(record)
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

//! The index of a docker-archive (what `docker save` and nixpkgs'
//! `dockerTools` write): its `manifest.json`, and the digest of the image
//! config it names. The config's sha256 is the image ID the engine will
//! give the loaded image, so knowing it before the load is what lets
//! `image load` check that the engine holds exactly this image.
//!
//! The archive is hostile until checked: every entry is read through a
//! bound, layers are hashed by nobody here (the engine checks them against
//! the config's `diff_ids`), and small entries are hashed so the config can
//! be found whatever its place in the stream (nixpkgs writes it last).

use std::collections::BTreeMap;
use std::io::Read;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// manifest.json larger than this is refused.
pub const MAX_MANIFEST: u64 = 1 << 20;
/// Entries up to this size are hashed (image configs are a few KiB).
pub const MAX_CONFIG: u64 = 4 << 20;
/// More entries than this is not an image archive.
pub const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveIndex {
    /// `sha256:HEX` of the config: the image ID after loading.
    pub image_id: String,
    /// `name:tag` references the archive gives the image.
    pub repo_tags: Vec<String>,
    pub layers: usize,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// Reads a whole (uncompressed) docker-archive and indexes it.
pub fn index<R: Read>(reader: R) -> Result<ArchiveIndex, String> {
    let mut archive = tar::Archive::new(reader);
    let mut manifest: Option<Vec<u8>> = None;
    let mut digests: BTreeMap<String, String> = BTreeMap::new();
    let mut count = 0usize;
    for entry in archive
        .entries()
        .map_err(|e| format!("not a tar archive: {}", printable(&e)))?
    {
        let mut entry = entry.map_err(|e| format!("damaged tar archive: {}", printable(&e)))?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(format!(
                "more than {MAX_ENTRIES} entries: not an image archive"
            ));
        }
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| format!("an entry's name is unreadable: {e}"))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let size = entry.size();
        if path == "manifest.json" {
            if size > MAX_MANIFEST {
                return Err(format!(
                    "manifest.json is {size} bytes (limit {MAX_MANIFEST})"
                ));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            (&mut entry)
                .take(MAX_MANIFEST)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("reading manifest.json: {e}"))?;
            manifest = Some(bytes);
        } else if size <= MAX_CONFIG {
            let mut hasher = Sha256::new();
            std::io::copy(&mut (&mut entry).take(MAX_CONFIG), &mut hasher)
                .map_err(|e| format!("reading {path}: {e}"))?;
            digests.insert(path, hex(&hasher.finalize()));
        }
    }
    let manifest = manifest.ok_or("the archive has no manifest.json")?;
    resolve(&manifest, &digests)
}

/// The index from manifest.json's bytes and the digests of small entries:
/// pure, so hostile manifests are tested without tar.
pub fn resolve(
    manifest: &[u8],
    digests: &BTreeMap<String, String>,
) -> Result<ArchiveIndex, String> {
    let entries: Vec<ManifestEntry> =
        serde_json::from_slice(manifest).map_err(|e| format!("manifest.json is not valid: {e}"))?;
    let [entry] = <[ManifestEntry; 1]>::try_from(entries).map_err(|entries| {
        format!(
            "manifest.json lists {} images; a pinned archive holds exactly one",
            entries.len()
        )
    })?;
    let config = entry.config.trim_start_matches("./");
    let digest = digests.get(config).ok_or_else(|| {
        format!("the config {config:?} named by manifest.json is not in the archive")
    })?;
    // The config's file name carries its digest in both layouts
    // (`HEX.json` from docker save and dockerTools, `blobs/sha256/HEX` in
    // OCI layout): a name that disagrees with the content is tampering.
    let named = config
        .strip_suffix(".json")
        .or_else(|| config.strip_prefix("blobs/sha256/"));
    if let Some(named) = named {
        if named.len() == 64 && named != digest {
            return Err(format!(
                "the config {config:?} has digest {digest}: its content was changed"
            ));
        }
    }
    let repo_tags = entry.repo_tags.unwrap_or_default();
    if let Some(bad) = repo_tags.iter().find(|t| !is_reference(t)) {
        return Err(format!(
            "manifest.json names an invalid image reference {bad:?}"
        ));
    }
    if entry.layers.is_empty() {
        return Err("manifest.json lists no layers".into());
    }
    Ok(ArchiveIndex {
        image_id: format!("sha256:{digest}"),
        repo_tags,
        layers: entry.layers.len(),
    })
}

/// A plausible `name:tag` (bounded, printable, no whitespace).
fn is_reference(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.contains(':')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c))
}

/// An error of the tar reader, which may quote the archive's bytes: only
/// printable ASCII, and not much of it, reaches the terminal.
fn printable(e: &dyn std::fmt::Display) -> String {
    let text: String = e
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(120)
        .collect();
    text
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn image(config: &[u8], config_name: Option<&str>, tags: &str) -> Vec<u8> {
        let name = config_name
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}.json", sha(config)));
        let manifest =
            format!(r#"[{{"Config":"{name}","RepoTags":{tags},"Layers":["l1/layer.tar"]}}]"#);
        archive(&[
            ("l1/layer.tar", b"layer bytes"),
            (&name, config),
            ("manifest.json", manifest.as_bytes()),
        ])
    }

    #[test]
    fn the_image_id_is_the_config_digest() {
        let config = br#"{"architecture":"amd64"}"#;
        let got = index(&image(config, None, r#"["safeclaw:abc"]"#)[..]).unwrap();
        assert_eq!(got.image_id, format!("sha256:{}", sha(config)));
        assert_eq!(got.repo_tags, vec!["safeclaw:abc".to_string()]);
        assert_eq!(got.layers, 1);
        let oci = format!("blobs/sha256/{}", sha(config));
        let got = index(&image(config, Some(&oci), "null")[..]).unwrap();
        assert!(got.repo_tags.is_empty());
    }

    #[test]
    fn hostile_archives_are_refused_with_a_reason() {
        let config = br#"{"architecture":"amd64"}"#;
        let lie = format!("{}.json", sha(b"another config"));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (image(config, Some(&lie), r#"["a:b"]"#), "was changed"),
            (
                image(config, None, r#"["no tag here"]"#),
                "invalid image reference",
            ),
            (archive(&[("x", b"y")]), "no manifest.json"),
            (archive(&[("manifest.json", b"{")]), "not valid"),
            (archive(&[("manifest.json", b"[]")]), "lists 0 images"),
            (
                archive(&[(
                    "manifest.json",
                    br#"[{"Config":"missing.json","Layers":["a"]}]"#,
                )]),
                "not in the archive",
            ),
            (b"not a tar archive at all, just text....".repeat(20), "tar"),
        ];
        for (bytes, why) in cases {
            let err = index(&bytes[..]).unwrap_err();
            assert!(err.contains(why), "{err:?} should say {why:?}");
        }
    }

    #[test]
    fn an_oversized_manifest_is_refused_before_it_is_read() {
        let big = vec![b' '; (MAX_MANIFEST + 1) as usize];
        let err = index(&archive(&[("manifest.json", &big)])[..]).unwrap_err();
        assert!(err.contains("limit"), "{err}");
    }
}

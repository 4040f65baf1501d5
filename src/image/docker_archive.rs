//! The index of a docker-archive (what `docker save` and nixpkgs'
//! `dockerTools` write): its `manifest.json`, and the digest of the image
//! config it names. The config commits to every layer (its `diff_ids`), so
//! its digest is the archive's identity, known before the load: it is what
//! lets `image load` check that the engine holds exactly this image
//! (`image_identity`: the engine's image ID is this digest on the classic
//! store, the digest of a manifest naming it on containerd's).
//!
//! The archive is hostile until checked: every entry is read through a
//! bound, and every file entry is hashed as it streams past, so the config
//! can be found whatever its place in the stream (nixpkgs writes it last)
//! and the manifest containerd will write for the archive can be predicted
//! (`image_identity::containerd_manifest`). Layers are not checked here:
//! the engine checks them against the config's `diff_ids`.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// manifest.json larger than this is refused.
pub const MAX_MANIFEST: u64 = 1 << 20;
/// A config larger than this is refused (image configs are a few KiB).
pub const MAX_CONFIG: u64 = 4 << 20;
/// More entries than this is not an image archive.
pub const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveIndex {
    /// `sha256:HEX` of the config.
    pub config_digest: String,
    /// `name:tag` references the archive gives the image.
    pub repo_tags: Vec<String>,
    pub layers: usize,
    /// The manifest containerd's importer writes for an archive without an
    /// OCI layout (dockerTools, `docker save` of the classic store), as it
    /// writes it when its content store holds none of the layers
    /// compressed; None for an OCI layout or a layer that is no plain file
    /// (a symlink). Only a shortcut: the check reads the engine's own
    /// manifest when this is not it.
    pub containerd_manifest: Option<Vec<u8>>,
}

/// A file entry of the archive, as streamed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// sha256 of its bytes, lowercase hex.
    pub sha256: String,
    pub size: u64,
    /// Starts with a gzip or zstd header (what containerd tells apart).
    pub compressed: bool,
}

/// The first two bytes of a gzip member (RFC 1952).
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// gzip's and zstd's magic numbers, the compressions containerd detects.
const COMPRESSED_MAGIC: [&[u8]; 2] = [&GZIP_MAGIC, &[0x28, 0xb5, 0x2f, 0xfd]];
/// The file that makes an archive an OCI layout, which containerd imports
/// by its own index instead of writing a manifest.
const OCI_LAYOUT: &str = "oci-layout";

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
    let mut files: BTreeMap<String, Entry> = BTreeMap::new();
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
        } else {
            let hashed = hash_entry(&mut entry).map_err(|e| format!("reading {path}: {e}"))?;
            files.insert(path, hashed);
        }
    }
    let manifest = manifest.ok_or("the archive has no manifest.json")?;
    resolve(&manifest, &files)
}

/// Hashes an entry as it streams past (the tar reader has to read it
/// anyway), noting whether it starts like a compressed stream.
fn hash_entry(entry: &mut impl Read) -> std::io::Result<Entry> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let head = crate::io_util::read_full(entry, &mut buf)?;
    let compressed = COMPRESSED_MAGIC.iter().any(|m| buf[..head].starts_with(m));
    hasher.update(&buf[..head]);
    let mut size = head as u64;
    loop {
        match entry.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Entry {
        sha256: hex(&hasher.finalize()),
        size,
        compressed,
    })
}

/// The index from manifest.json's bytes and the other file entries: pure,
/// so hostile manifests are tested without tar.
pub fn resolve(manifest: &[u8], files: &BTreeMap<String, Entry>) -> Result<ArchiveIndex, String> {
    let entries: Vec<ManifestEntry> =
        serde_json::from_slice(manifest).map_err(|e| format!("manifest.json is not valid: {e}"))?;
    let [entry] = <[ManifestEntry; 1]>::try_from(entries).map_err(|entries| {
        format!(
            "manifest.json lists {} images; a pinned archive holds exactly one",
            entries.len()
        )
    })?;
    let config = entry.config.trim_start_matches("./");
    let config_entry = files
        .get(config)
        .filter(|c| c.size <= MAX_CONFIG)
        .ok_or_else(|| {
            format!("the config {config:?} named by manifest.json is not in the archive")
        })?;
    let digest = &config_entry.sha256;
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
    let config_digest = crate::image::identity::sha256_digest(digest);
    // What containerd's importer would describe: each layer by the file the
    // manifest names (a symlink or a missing one: no prediction).
    let layers: Option<Vec<_>> = entry
        .layers
        .iter()
        .map(|l| {
            files.get(l.trim_start_matches("./")).map(|f| {
                (
                    crate::image::identity::sha256_digest(&f.sha256),
                    f.size,
                    f.compressed,
                )
            })
        })
        .collect();
    let containerd_manifest = match layers {
        Some(layers) if !files.contains_key(OCI_LAYOUT) => Some(
            crate::image::identity::containerd_manifest(&config_digest, config_entry.size, &layers),
        ),
        _ => None,
    };
    Ok(ArchiveIndex {
        config_digest,
        repo_tags,
        layers: entry.layers.len(),
        containerd_manifest,
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
    fn the_identity_is_the_config_digest() {
        let config = br#"{"architecture":"amd64"}"#;
        let got = index(&image(config, None, r#"["safeclaw:abc"]"#)[..]).unwrap();
        assert_eq!(got.config_digest, format!("sha256:{}", sha(config)));
        assert_eq!(got.repo_tags, vec!["safeclaw:abc".to_string()]);
        assert_eq!(got.layers, 1);
        let oci = format!("blobs/sha256/{}", sha(config));
        let got = index(&image(config, Some(&oci), "null")[..]).unwrap();
        assert!(got.repo_tags.is_empty());
    }

    #[test]
    fn the_manifest_containerd_writes_is_predicted_for_a_legacy_archive_only() {
        let config = br#"{"architecture":"amd64"}"#;
        let got = index(&image(config, None, r#"["a:b"]"#)[..]).unwrap();
        let manifest = got.containerd_manifest.expect("a legacy archive");
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(manifest["config"]["digest"], got.config_digest);
        assert_eq!(manifest["config"]["size"], config.len());
        let layer = &manifest["layers"][0];
        assert_eq!(layer["digest"], format!("sha256:{}", sha(b"layer bytes")));
        assert_eq!(layer["size"], b"layer bytes".len());
        assert_eq!(
            layer["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar"
        );

        // A gzip layer is typed as one.
        let name = format!("{}.json", sha(config));
        let gz = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0];
        let manifest_json =
            format!(r#"[{{"Config":"{name}","RepoTags":["a:b"],"Layers":["l.tar.gz"]}}]"#);
        let with_gzip = archive(&[
            ("l.tar.gz", &gz),
            (&name, config),
            ("manifest.json", manifest_json.as_bytes()),
        ]);
        let got = index(&with_gzip[..]).unwrap().containerd_manifest.unwrap();
        assert!(String::from_utf8(got).unwrap().contains("diff.tar.gzip"));

        // An OCI layout is imported by its own index: nothing to predict.
        let manifest_json =
            format!(r#"[{{"Config":"{name}","RepoTags":["a:b"],"Layers":["l1/layer.tar"]}}]"#);
        let oci = archive(&[
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
            ("l1/layer.tar", b"layer bytes"),
            (&name, config),
            ("manifest.json", manifest_json.as_bytes()),
        ]);
        assert_eq!(index(&oci[..]).unwrap().containerd_manifest, None);

        // A layer that is no file (a symlink in docker save's output): none.
        let manifest_json =
            format!(r#"[{{"Config":"{name}","RepoTags":["a:b"],"Layers":["gone/layer.tar"]}}]"#);
        let linked = archive(&[(&name, config), ("manifest.json", manifest_json.as_bytes())]);
        assert_eq!(index(&linked[..]).unwrap().containerd_manifest, None);
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

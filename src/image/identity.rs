//! Whether the engine's image is an archive's image, on either of Docker's
//! image stores. The image ID does not mean the same thing on both:
//!
//! - the classic store (Docker Engine up to 28 by default; Podman's IDs
//!   are the same): the ID is the sha256 of the image's config;
//! - the containerd image store (the default of Docker Engine >= 29 and
//!   Docker Desktop >= 4.34): the ID is the digest of the image's root
//!   descriptor, a manifest (or an index). For a docker-archive without an
//!   OCI index, what nixpkgs' dockerTools writes, containerd writes that
//!   manifest itself during the load, and its bytes depend on the engine's
//!   state as well as on the archive (a layer its content store already
//!   holds compressed is named by the compressed blob), so the ID cannot be
//!   computed from the archive beforehand.
//!
//! On both, the ID is the digest of the blob the engine holds as the image's
//! root, so the match is exact when that blob is known: either the ID is the
//! archive's config digest (the root is that config), or it is the digest of
//! a manifest, hashed here, whose `config` is the archive's config. That
//! manifest is the one predicted from the archive (`containerd_manifest`)
//! when its digest is the ID, else the engine's own, read back from an
//! export of the image. The config names every layer by its `diff_id`,
//! which the engine checks when it unpacks a layer; nothing else decides
//! what runs. An index is refused (which of its manifests runs depends on
//! the platform), as is anything whose bytes do not hash to the ID.

use std::io::Read;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The one digest algorithm images use here.
const SHA256: &str = "sha256:";
/// A manifest larger than this is not read (the OCI distribution spec has
/// registries accept manifests up to 4 MiB; ours are under 1 KiB per layer).
pub const MAX_ROOT_BLOB: u64 = 4 << 20;
/// Manifests of one image: Docker's schema 2 and OCI's.
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
];
/// Manifests of several images, one per platform.
const INDEX_TYPES: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
];

/// Media types containerd's importer gives what it describes (its
/// `images.MediaTypeDockerSchema2*`).
const DOCKER_MANIFEST: &str = MANIFEST_TYPES[0];
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// How the engine's image was recognised as the archive's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Its ID is the config digest (the classic store).
    Config,
    /// Its ID is the digest of this manifest, which names the config (the
    /// containerd store).
    Manifest(String),
}

impl Identity {
    /// For messages and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Identity::Config => "config",
            Identity::Manifest(_) => "manifest",
        }
    }
}

/// `sha256:` and 64 lowercase hex digits, as the Engine API writes digests.
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix(SHA256).is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// `sha256:HEX` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    sha256_digest(&crate::private_fs::hex(&Sha256::digest(bytes)))
}

/// `sha256:HEX` from a sha256 in hex.
pub fn sha256_digest(hex: &str) -> String {
    format!("{SHA256}{hex}")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: Option<u32>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    manifests: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
}

/// The config digest a single-image manifest names.
pub fn manifest_config(bytes: &[u8]) -> Result<String, String> {
    let m: Manifest =
        serde_json::from_slice(bytes).map_err(|e| format!("not an image manifest: {e}"))?;
    let media_type = m.media_type.as_deref();
    if m.manifests.is_some() || media_type.is_some_and(|t| INDEX_TYPES.contains(&t)) {
        return Err("an index of several manifests: which one runs depends on the platform".into());
    }
    if m.schema_version != Some(2) {
        return Err(format!(
            "a manifest of schema version {:?}, not 2",
            m.schema_version
        ));
    }
    // OCI lets a manifest omit its media type; present, it must be one of
    // a single image.
    if let Some(t) = media_type.filter(|t| !MANIFEST_TYPES.contains(t)) {
        return Err(format!("a {t:?}, not an image manifest"));
    }
    let config = m.config.ok_or("a manifest without a config")?.digest;
    if !is_digest(&config) {
        return Err(format!("a manifest naming the config {config:?}"));
    }
    Ok(config)
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DockerManifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: DockerDescriptor<'a>,
    layers: Vec<DockerDescriptor<'a>>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DockerDescriptor<'a> {
    media_type: &'a str,
    digest: &'a str,
    size: u64,
}

/// The manifest containerd's importer (`images/archive.ImportIndex`, in
/// containerd 1.6 to 2.x) writes for an archive without an OCI layout: Go's
/// `json.Marshal` of schema version, media type, config and layers, in that
/// order, compact; each layer the archive's file as it is (digest, size),
/// typed by whether it starts compressed. The importer writes other bytes
/// when its content store already holds a layer compressed (it names that
/// blob instead), which is why this is only ever compared, by digest, with
/// what the engine reports.
pub fn containerd_manifest(
    config_digest: &str,
    config_size: u64,
    layers: &[(String, u64, bool)],
) -> Vec<u8> {
    let manifest = DockerManifest {
        schema_version: 2,
        media_type: DOCKER_MANIFEST,
        config: DockerDescriptor {
            media_type: DOCKER_CONFIG,
            digest: config_digest,
            size: config_size,
        },
        layers: layers
            .iter()
            .map(|(digest, size, compressed)| DockerDescriptor {
                media_type: if *compressed {
                    DOCKER_LAYER_GZIP
                } else {
                    DOCKER_LAYER
                },
                digest,
                size: *size,
            })
            .collect(),
    };
    serde_json::to_vec(&manifest).expect("a manifest serializes")
}

/// Whether the engine's image `engine_id` is the one whose config digest is
/// `config_digest`. `root` is the blob the engine returned for `engine_id`
/// (`find_blob`), needed only when the ID is not the config digest.
pub fn verify(
    engine_id: &str,
    config_digest: &str,
    root: Option<&[u8]>,
) -> Result<Identity, String> {
    if engine_id == config_digest {
        return Ok(Identity::Config);
    }
    let Some(root) = root else {
        return Err(format!(
            "its ID {engine_id} is not the config digest {config_digest}, and the engine \
             exported no blob of that digest to check"
        ));
    };
    // Only bytes that are the ID are read as a manifest.
    let actual = digest_of(root);
    if actual != engine_id {
        return Err(format!(
            "the engine exported {actual} for its ID {engine_id}"
        ));
    }
    let named = manifest_config(root).map_err(|why| format!("its ID {engine_id} is {why}"))?;
    if named != config_digest {
        return Err(format!(
            "its ID {engine_id} is a manifest of the config {named}, not {config_digest}"
        ));
    }
    Ok(Identity::Manifest(engine_id.to_string()))
}

/// The entry of an image export (`GET /images/{name}/get`, a tar) whose
/// sha256 is `digest`, read until it is found. Entries larger than
/// `MAX_ROOT_BLOB` are skipped unread; nothing else is kept in memory.
pub fn find_blob<R: Read>(reader: R, digest: &str) -> Result<Option<Vec<u8>>, String> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| format!("the export is not a tar archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("the export is damaged: {e}"))?;
        if !entry.header().entry_type().is_file() || entry.size() > MAX_ROOT_BLOB {
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        (&mut entry)
            .take(MAX_ROOT_BLOB)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading the export: {e}"))?;
        if digest_of(&bytes) == digest {
            return Ok(Some(bytes));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "sha256:8b218b094f56c1f3480c8988b0b26e7f574f2853a7dc7a8304af4eecbc2839bc";
    const LAYER: &str = "sha256:d35db041d65790bb80f3c32236bc04523366e94c7d99d881bb1725d806b12cec";

    /// The manifest Docker 26's containerd store wrote when it loaded a
    /// dockerTools-style archive (config and one uncompressed layer), as
    /// `docker save` returned it; its digest was the image ID.
    const MEASURED: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:8b218b094f56c1f3480c8988b0b26e7f574f2853a7dc7a8304af4eecbc2839bc","size":468},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar","digest":"sha256:d35db041d65790bb80f3c32236bc04523366e94c7d99d881bb1725d806b12cec","size":10240}]}"#;
    const MEASURED_ID: &str =
        "sha256:ec08424e1e3d9e79e865c1e82df31030167ca6b04d228bbd145d25e18a8eeedb";

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o444);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn the_measured_containerd_manifest_is_recognised() {
        assert_eq!(digest_of(MEASURED.as_bytes()), MEASURED_ID);
        assert_eq!(
            verify(MEASURED_ID, CONFIG, Some(MEASURED.as_bytes())),
            Ok(Identity::Manifest(MEASURED_ID.into()))
        );
    }

    #[test]
    fn the_containerd_manifest_is_predicted_byte_for_byte() {
        let predicted = containerd_manifest(CONFIG, 468, &[(LAYER.into(), 10240, false)]);
        assert_eq!(String::from_utf8(predicted).unwrap(), MEASURED);
        let gzip = containerd_manifest(CONFIG, 468, &[(LAYER.into(), 10240, true)]);
        assert!(String::from_utf8(gzip).unwrap().contains(DOCKER_LAYER_GZIP));
    }

    #[test]
    fn the_config_digest_as_id_needs_no_manifest() {
        assert_eq!(verify(CONFIG, CONFIG, None), Ok(Identity::Config));
        assert_eq!(Identity::Config.kind(), "config");
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        let other_config = MEASURED.replace("8b218b", "8b218c");
        let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        let bare_index = r#"{"schemaVersion":2,"manifests":[]}"#;
        let v1 = r#"{"schemaVersion":1,"config":{"digest":"sha256:00"}}"#;
        let odd_type = MEASURED.replace("distribution.manifest.v2", "container.image.v1");
        let no_config = r#"{"schemaVersion":2,"layers":[]}"#;
        let bad_digest = r#"{"schemaVersion":2,"config":{"digest":"sha256:XYZ"}}"#;
        let cases: Vec<(String, &str)> = vec![
            (other_config, "not sha256:8b218b"),
            (index.into(), "depends on the platform"),
            (bare_index.into(), "depends on the platform"),
            (v1.into(), "schema version Some(1)"),
            (odd_type, "not an image manifest"),
            (no_config.into(), "without a config"),
            (bad_digest.into(), "naming the config"),
            (String::from("not json"), "not an image manifest"),
        ];
        for (root, why) in cases {
            let id = digest_of(root.as_bytes());
            let err = verify(&id, CONFIG, Some(root.as_bytes())).unwrap_err();
            assert!(err.contains(why), "{err:?} should say {why:?}");
        }
        // Bytes that are not the ID are never read as a manifest.
        let err = verify(LAYER, CONFIG, Some(MEASURED.as_bytes())).unwrap_err();
        assert!(err.contains("exported"), "{err}");
        let err = verify(MEASURED_ID, CONFIG, None).unwrap_err();
        assert!(err.contains("no blob"), "{err}");
    }

    #[test]
    fn the_blob_is_found_in_an_export_by_its_digest_wherever_it_is() {
        let big = vec![0u8; (MAX_ROOT_BLOB + 1) as usize];
        let export = tar_of(&[
            ("blobs/sha256/big", &big),
            ("blobs/sha256/config", b"{}"),
            ("blobs/sha256/manifest", MEASURED.as_bytes()),
            ("index.json", b"{}"),
        ]);
        assert_eq!(
            find_blob(&export[..], MEASURED_ID).unwrap().as_deref(),
            Some(MEASURED.as_bytes())
        );
        assert_eq!(find_blob(&export[..], CONFIG).unwrap(), None);
        // A blob above the bound is not read, even if it is the one asked for.
        assert_eq!(find_blob(&export[..], &digest_of(&big)).unwrap(), None);
        assert!(find_blob(
            &b"not a tar archive, just text...".repeat(20)[..],
            MEASURED_ID
        )
        .unwrap_err()
        .contains("export"));
    }

    #[test]
    fn digests_are_checked_for_form() {
        assert!(is_digest(CONFIG));
        assert!(!is_digest(&CONFIG.to_uppercase()));
        assert!(!is_digest("sha256:abc"));
        assert!(!is_digest(&CONFIG.replace("sha256", "sha512")));
    }
}

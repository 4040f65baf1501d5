//! The pinned image on a real engine: a docker-archive placed at a store
//! path (under a test `NIX_STORE_DIR`), named by `SAFECLAW_IMAGE` as the
//! flake's wrapper does, is loaded, checked to be the archive's image,
//! started, and an image that is not it is refused. Archives come laid out
//! as nixpkgs' dockerTools writes them and as `docker save` does. Runs on
//! either image store (the engine is asked which; the image ID is the
//! config digest on the classic one, a manifest's digest on containerd's),
//! so CI runs it against both engines. Skips without an engine outside CI.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bollard::query_parameters::{RemoveImageOptionsBuilder, TagImageOptionsBuilder};
use bollard::Docker;
use common::*;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

// A valid Nix base-32 hash part (see nix_store_path's vectors).
const HASH: &str = "cx2j60ggrnmqjrs54c0yzkdbi5kla8q1";

struct Pinned {
    dir: TempDir,
    archive: PathBuf,
    image: String,
    other: String,
    name: String,
}

impl Pinned {
    fn cmd(&self) -> assert_cmd::Command {
        let mut c = safeclaw();
        c.env("SAFECLAW_HOME", self.dir.path().join("home"))
            .env("NIX_STORE_DIR", self.dir.path().join("store"))
            .env("SAFECLAW_IMAGE", &self.archive);
        c
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cmd().arg("--json").args(args).assert().success();
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    }

    fn start(&self, extra: &[&str]) -> assert_cmd::assert::Assert {
        self.cmd()
            .args(["start", "--name", &self.name, "--password-file"])
            .arg(self.dir.path().join("pw"))
            .args(extra)
            .assert()
    }
}

fn remove_image(rt: &tokio::runtime::Runtime, docker: &Docker, image: &str) {
    let _ = rt.block_on(docker.remove_image(
        image,
        Some(RemoveImageOptionsBuilder::new().force(true).build()),
        None,
    ));
}

fn image_id(rt: &tokio::runtime::Runtime, docker: &Docker, image: &str) -> Option<String> {
    rt.block_on(docker.inspect_image(image))
        .ok()
        .and_then(|i| i.id)
}

/// `docker save` of `image` through the Engine API, as it comes.
fn save(rt: &tokio::runtime::Runtime, docker: &Docker, image: &str, to: &Path) {
    let mut file = fs::File::create(to).unwrap();
    rt.block_on(async {
        let mut stream = docker.export_image(image);
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk.unwrap()).unwrap();
        }
    });
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Every regular file of a tar archive (gzip or not), in order.
fn tar_files(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut bytes = fs::read(path).unwrap();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut plain)
            .unwrap();
        bytes = plain;
    }
    let mut out = Vec::new();
    for e in tar::Archive::new(&bytes[..]).entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type().is_file() {
            let path = e.path().unwrap().display().to_string();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.push((path, data));
        }
    }
    out
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// The one image `manifest.json` of an archive describes.
fn manifest_entry(files: &BTreeMap<String, Vec<u8>>) -> ManifestEntry {
    let mut entries: Vec<ManifestEntry> = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(entries.len(), 1, "one image in the archive");
    entries.remove(0)
}

/// The config digest of an archive, computed here independently of
/// safeclaw: the sha256 of the entry manifest.json names.
fn config_digest(archive: &Path) -> String {
    let files: BTreeMap<_, _> = tar_files(archive).into_iter().collect();
    sha256(&files[&manifest_entry(&files).config])
}

/// A `docker save` archive rewritten the way nixpkgs' dockerTools
/// (`stream_layered_image.py`) writes one: each layer uncompressed as
/// `DIFF_ID/layer.tar`, the config as `HEX.json`, manifest.json last, no
/// OCI index, no `repositories`; gzip as buildLayeredImage leaves it. The
/// config is the saved one, byte for byte.
fn repack_like_dockertools(saved: &Path, to: &Path) {
    let files: BTreeMap<_, _> = tar_files(saved).into_iter().collect();
    let entry = manifest_entry(&files);
    let config = &files[&entry.config];
    let mut out = tar::Builder::new(flate2::write::GzEncoder::new(
        fs::File::create(to).unwrap(),
        flate2::Compression::fast(),
    ));
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o444);
        h.set_mtime(1);
        h.set_cksum();
        out.append_data(&mut h, name, data).unwrap();
    };
    let mut layers = Vec::new();
    for layer in &entry.layers {
        let stored = &files[layer];
        let mut plain = Vec::new();
        if stored.starts_with(&[0x1f, 0x8b]) {
            flate2::read::GzDecoder::new(&stored[..])
                .read_to_end(&mut plain)
                .unwrap();
        } else {
            plain.clone_from(stored);
        }
        let name = format!("{}/layer.tar", &sha256(&plain)["sha256:".len()..]);
        if !layers.contains(&name) {
            add(&name, &plain);
        }
        layers.push(name);
    }
    let config_name = format!("{}.json", &sha256(config)["sha256:".len()..]);
    add(&config_name, config);
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": entry.repo_tags,
        "Layers": layers,
    }]);
    add(
        "manifest.json",
        &serde_json::to_vec_pretty(&manifest).unwrap(),
    );
    out.into_inner().unwrap().finish().unwrap();
}

/// The engine's ID for `image`, checked here independently of safeclaw to
/// be the archive's image: on the classic store the config digest itself;
/// on the containerd store the digest of a manifest (read from the
/// engine's own export) that names the config.
fn engine_id_of(
    rt: &tokio::runtime::Runtime,
    docker: &Docker,
    image: &str,
    config: &str,
) -> String {
    let id = image_id(rt, docker, image).expect("the image is in the engine");
    match image_store(rt, docker) {
        ImageStore::Classic => assert_eq!(id, config, "the classic store's ID is the config's"),
        ImageStore::Containerd => {
            let dir = TempDir::new().unwrap();
            let saved = dir.path().join("saved.tar");
            save(rt, docker, image, &saved);
            let manifest = tar_files(&saved)
                .into_iter()
                .find(|(_, data)| sha256(data) == id)
                .map(|(_, data)| data)
                .expect("the export holds the blob the ID names");
            let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
            assert_eq!(manifest["config"]["digest"], config, "{manifest}");
        }
    }
    id
}

/// How the pinned archive is laid out.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// As nixpkgs' dockerTools writes it (the real pin).
    DockerTools,
    /// As `docker save` returns it: the legacy layout on the classic store,
    /// an OCI layout with manifest.json on the containerd store.
    Saved,
}

fn with_pinned(layout: Layout, test: impl FnOnce(&tokio::runtime::Runtime, &Docker, &Pinned)) {
    let Some((rt, docker)) = engine() else { return };
    // Both tests of this file run at once in one process: names differ.
    let id = format!("{}-{layout:?}", std::process::id()).to_lowercase();
    let dir = TempDir::new().unwrap();
    let p = Pinned {
        archive: dir
            .path()
            .join(format!("store/{HASH}-safeclaw-openclaw-image.tar.gz")),
        image: format!("safeclaw-pinned:test-{id}"),
        other: format!("safeclaw-unpinned:test-{id}"),
        name: format!("sc-pin-{id}"),
        dir,
    };
    let _made = Cleanup::new(&rt, &docker)
        .container(&p.name)
        .image(&p.image)
        .image(&p.other);
    build_standin(&rt, &docker, &p.image);
    let other = safeclaw::image::build::Recipe {
        files: standin_files(),
        labels: [("test".to_string(), "not the pinned one".to_string())].into(),
        ..Default::default()
    };
    rt.block_on(safeclaw::image::build::build_recipe(
        &docker,
        &p.other,
        &other,
        &indicatif::ProgressBar::hidden(),
    ))
    .unwrap();
    fs::create_dir(p.dir.path().join("store")).unwrap();
    let saved = p.dir.path().join("saved.tar");
    save(&rt, &docker, &p.image, &saved);
    match layout {
        Layout::DockerTools => repack_like_dockertools(&saved, &p.archive),
        Layout::Saved => {
            let mut gz = flate2::write::GzEncoder::new(
                fs::File::create(&p.archive).unwrap(),
                flate2::Compression::fast(),
            );
            std::io::copy(&mut fs::File::open(&saved).unwrap(), &mut gz).unwrap();
            gz.finish().unwrap();
        }
    }
    fs::remove_file(&saved).unwrap();
    remove_image(&rt, &docker, &p.image);
    let home = p.dir.path().join("home");
    private_dir(&home);
    let state = p.dir.path().join("state");
    fs::create_dir(&state).unwrap();
    fs::write(state.join("openclaw.json"), "{}").unwrap();
    write_password(p.dir.path(), "pw", "pin-test-password");
    create_vault(
        &state,
        &home.join("openclaw.vault"),
        &p.dir.path().join("pw"),
    );
    test(&rt, &docker, &p)
}

/// What `image load` says matched the image to the archive, on this engine.
fn matched_by(rt: &tokio::runtime::Runtime, docker: &Docker) -> &'static str {
    match image_store(rt, docker) {
        ImageStore::Classic => "config",
        ImageStore::Containerd => "manifest",
    }
}

#[test]
fn the_pinned_image_is_loaded_checked_by_id_and_others_are_refused() {
    with_pinned(Layout::DockerTools, |rt, docker, p| {
        let config = config_digest(&p.archive);

        let shown = p.json(&["image", "show"]);
        assert_eq!(shown["pinned"], true);
        assert_eq!(shown["hash"], HASH);
        assert_eq!(shown["matches"], false);
        assert!(shown["config_digest"].is_null(), "{shown}");

        let loaded = p.json(&["image", "load"]);
        let expected = engine_id_of(rt, docker, &p.image, &config);
        assert_eq!(loaded["image_id"], expected.as_str(), "{loaded}");
        assert_eq!(loaded["config_digest"], config.as_str());
        assert_eq!(loaded["matched_by"], matched_by(rt, docker));
        assert_eq!(loaded["pinned"], true);
        let shown = p.json(&["image", "show"]);
        assert_eq!(shown["matches"], true, "{shown}");
        // Podman's export names it fully qualified; Docker's as it was tagged.
        let repo_tag = shown["repo_tag"].as_str().unwrap();
        assert_eq!(
            repo_tag
                .strip_prefix("docker.io/library/")
                .unwrap_or(repo_tag),
            p.image.as_str(),
            "{shown}"
        );
        assert_eq!(shown["engine_image_id"], expected.as_str());

        // Another image under the pinned name is seen, and a start loads
        // the pinned one back before running it.
        rt.block_on(
            docker.tag_image(
                &p.other,
                Some(
                    TagImageOptionsBuilder::new()
                        .repo("safeclaw-pinned")
                        .tag(p.image.split_once(':').unwrap().1)
                        .build(),
                ),
            ),
        )
        .unwrap();
        let shown = p.json(&["image", "show"]);
        assert_eq!(shown["matches"], false, "{shown}");
        p.start(&[])
            .success()
            .stderr(predicates::str::contains("loading the pinned image"));
        // A second load may get another ID on the containerd store (the
        // manifest it writes depends on what its content store holds):
        // whatever it is, it is checked again.
        let expected = engine_id_of(rt, docker, &p.image, &config);
        let running = rt
            .block_on(docker.inspect_container(&p.name, None))
            .unwrap();
        assert_eq!(running.image.as_deref(), Some(&*expected));
        safeclaw()
            .args(["stop", "--name", &p.name])
            .assert()
            .success();

        // An image that is not the pinned one is refused before any
        // password is read, and no container is made (the stopped one is
        // still the pinned one's).
        p.start(&["--image", &p.other])
            .code(2)
            .stderr(predicates::str::contains("not the pinned image"))
            .stderr(predicates::str::contains("--allow-unpinned-image"));
        let left = rt
            .block_on(docker.inspect_container(&p.name, None))
            .unwrap();
        assert_eq!(left.image.as_deref(), Some(&*expected), "no new container");
        // The pinned image by its ID is the pinned image.
        p.start(&["--image", &expected]).success();
        safeclaw()
            .args(["stop", "--name", &p.name])
            .assert()
            .success();
        // Told otherwise, it runs, with a warning.
        p.start(&["--image", &p.other, "--allow-unpinned-image"])
            .success()
            .stderr(predicates::str::contains("not the pinned image"));
        safeclaw()
            .args(["stop", "--name", &p.name])
            .assert()
            .success();
    });
}

#[test]
fn a_docker_save_archive_and_a_record_of_0_1_are_recognised() {
    with_pinned(Layout::Saved, |rt, docker, p| {
        let config = config_digest(&p.archive);
        let loaded = p.json(&["image", "load"]);
        let expected = engine_id_of(rt, docker, &p.image, &config);
        assert_eq!(loaded["image_id"], expected.as_str(), "{loaded}");
        assert_eq!(loaded["config_digest"], config.as_str());
        assert_eq!(loaded["matched_by"], matched_by(rt, docker));
        // On the containerd store an OCI layout is imported by its own
        // index, which safeclaw does not predict: the engine's manifest is
        // read back from an export.
        let from = match image_store(rt, docker) {
            ImageStore::Classic => serde_json::Value::Null,
            ImageStore::Containerd => "engine".into(),
        };
        assert_eq!(loaded["manifest_from"], from, "{loaded}");
        assert_eq!(p.json(&["image", "show"])["matches"], true);

        let record_path = p.dir.path().join(format!("home/image-pins/{HASH}.json"));
        let record: serde_json::Value =
            serde_json::from_slice(&fs::read(&record_path).unwrap()).unwrap();
        assert_eq!(record["config_digest"], config.as_str());
        let manifests = match image_store(rt, docker) {
            ImageStore::Classic => serde_json::json!(null),
            ImageStore::Containerd => serde_json::json!([expected]),
        };
        assert_eq!(record["manifest_digests"], manifests, "{record}");

        // safeclaw 0.1 recorded the config digest as `image_id`: it is
        // still the image on the classic store, and on the containerd store
        // the next load replaces the record.
        let old = serde_json::json!({
            "store_path": record["store_path"],
            "repo_tag": record["repo_tag"],
            "image_id": config,
        });
        fs::write(&record_path, serde_json::to_vec(&old).unwrap()).unwrap();
        let shown = p.json(&["image", "show"]);
        assert_eq!(shown["config_digest"], config.as_str());
        assert_eq!(
            shown["matches"],
            image_store(rt, docker) == ImageStore::Classic,
            "{shown}"
        );
        p.json(&["image", "load"]);
        assert_eq!(p.json(&["image", "show"])["matches"], true);
    });
}

/// A dockerTools-style archive of one layer no engine has seen (so no
/// content store holds it compressed) and its config, gzip; returns the
/// config digest.
fn fresh_dockertools_archive(to: &Path, tag: &str) -> String {
    let mut layer = tar::Builder::new(Vec::new());
    let unique = format!("{tag} {:?}", std::time::SystemTime::now());
    let mut h = tar::Header::new_gnu();
    h.set_size(unique.len() as u64);
    h.set_mode(0o444);
    h.set_cksum();
    layer
        .append_data(&mut h, "fresh", unique.as_bytes())
        .unwrap();
    let layer = layer.into_inner().unwrap();
    let diff_id = sha256(&layer);
    let config = serde_json::to_vec_pretty(&serde_json::json!({
        "created": "1970-01-01T00:00:01+00:00",
        "architecture": "amd64",
        "os": "linux",
        "config": { "Cmd": ["/fresh"] },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    }))
    .unwrap();
    let config_digest = sha256(&config);
    let hex = |d: &str| d["sha256:".len()..].to_string();
    let layer_name = format!("{}/layer.tar", hex(&diff_id));
    let config_name = format!("{}.json", hex(&config_digest));
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name, "RepoTags": [tag], "Layers": [layer_name],
    }]))
    .unwrap();
    let mut out = tar::Builder::new(flate2::write::GzEncoder::new(
        fs::File::create(to).unwrap(),
        flate2::Compression::fast(),
    ));
    for (name, data) in [
        (&layer_name, &layer),
        (&config_name, &config),
        (&"manifest.json".to_string(), &manifest),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o444);
        h.set_cksum();
        out.append_data(&mut h, name, &data[..]).unwrap();
    }
    out.into_inner().unwrap().finish().unwrap();
    config_digest
}

#[test]
fn a_fresh_dockertools_archive_is_matched_without_reading_the_image_back() {
    let Some((rt, docker)) = engine() else { return };
    let dir = TempDir::new().unwrap();
    let tag = format!("safeclaw-fresh:test-{}", std::process::id());
    let archive = dir.path().join("fresh.tar.gz");
    let config = fresh_dockertools_archive(&archive, &tag);
    let _made = Cleanup::new(&rt, &docker).image(&tag);
    // Named relative to a subdirectory, as a user types it.
    fs::create_dir(dir.path().join("sub")).unwrap();
    let out = safeclaw()
        .current_dir(dir.path().join("sub"))
        .args(["--json", "image", "load", "--from", "../fresh.tar.gz"])
        .assert()
        .success();
    let loaded: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        fs::canonicalize(loaded["archive"].as_str().unwrap()).unwrap(),
        fs::canonicalize(&archive).unwrap()
    );
    assert_eq!(loaded["config_digest"], config.as_str());
    assert_eq!(
        loaded["image_id"],
        engine_id_of(&rt, &docker, &tag, &config).as_str()
    );
    assert_eq!(loaded["matched_by"], matched_by(&rt, &docker));
    // On the containerd store the manifest it wrote is the one predicted
    // from the archive: no export of the image was needed.
    let from = match image_store(&rt, &docker) {
        ImageStore::Classic => serde_json::Value::Null,
        ImageStore::Containerd => "archive".into(),
    };
    assert_eq!(loaded["manifest_from"], from, "{loaded}");
}

#[test]
fn a_damaged_archive_or_a_bad_pin_is_a_clear_error() {
    let Some((_rt, _docker)) = engine() else {
        return;
    };
    let dir = TempDir::new().unwrap();
    let store = dir.path().join("store");
    fs::create_dir(&store).unwrap();
    let run = |pin: &Path, args: &[&str]| {
        safeclaw()
            .env("SAFECLAW_HOME", dir.path().join("home"))
            .env("NIX_STORE_DIR", &store)
            .env("SAFECLAW_IMAGE", pin)
            .args(args)
            .assert()
    };
    // Not a store path: the hash part holds an 'e', outside Nix's alphabet.
    run(
        &store.join("ex2j60ggrnmqjrs54c0yzkdbi5kla8q1-image.tar.gz"),
        &["image", "show"],
    )
    .code(2)
    .stderr(predicates::str::contains("not Nix base-32"));
    // A store path whose archive is not an image archive.
    let junk = store.join(format!("{HASH}-image.tar.gz"));
    fs::write(&junk, b"this is no image archive at all".repeat(100)).unwrap();
    run(&junk, &["image", "load"])
        .failure()
        .stderr(predicates::str::contains(junk.display().to_string()));
    assert!(!dir
        .path()
        .join(format!("home/image-pins/{HASH}.json"))
        .exists());
    // Missing archive: named, with its path.
    fs::remove_file(&junk).unwrap();
    run(&junk, &["image", "load"])
        .failure()
        .stderr(predicates::str::contains(junk.display().to_string()));
}

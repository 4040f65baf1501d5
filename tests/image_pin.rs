//! The pinned image on a real engine: a docker-archive placed at a store
//! path (under a test `NIX_STORE_DIR`), named by `SAFECLAW_IMAGE` as the
//! flake's wrapper does, is loaded, checked by image ID, started, and an
//! image that is not it is refused. Skips without an engine outside CI.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use bollard::query_parameters::{
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
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

/// `docker save` of `image` through the Engine API, gzip-compressed as
/// dockerTools.buildLayeredImage writes it.
fn save_gzip(rt: &tokio::runtime::Runtime, docker: &Docker, image: &str, to: &Path) {
    let mut gz =
        flate2::write::GzEncoder::new(fs::File::create(to).unwrap(), flate2::Compression::fast());
    rt.block_on(async {
        let mut stream = docker.export_image(image);
        while let Some(chunk) = stream.next().await {
            gz.write_all(&chunk.unwrap()).unwrap();
        }
    });
    gz.finish().unwrap();
}

fn with_pinned(test: impl FnOnce(&tokio::runtime::Runtime, &Docker, &Pinned)) {
    let Some((rt, docker)) = engine() else { return };
    let pid = std::process::id();
    let dir = TempDir::new().unwrap();
    let p = Pinned {
        archive: dir
            .path()
            .join(format!("store/{HASH}-safeclaw-openclaw-image.tar.gz")),
        image: format!("safeclaw-pinned:test-{pid}"),
        other: format!("safeclaw-unpinned:test-{pid}"),
        name: format!("sc-pin-{pid}"),
        dir,
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        build_standin(&rt, &docker, &p.image);
        let other = safeclaw::image_build::Recipe {
            files: standin_files(),
            labels: [("test".to_string(), "not the pinned one".to_string())].into(),
            ..Default::default()
        };
        rt.block_on(safeclaw::image_build::build_recipe(
            &docker,
            &p.other,
            &other,
            &indicatif::ProgressBar::hidden(),
        ))
        .unwrap();
        fs::create_dir(p.dir.path().join("store")).unwrap();
        save_gzip(&rt, &docker, &p.image, &p.archive);
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
    }));
    let _ = rt.block_on(docker.remove_container(
        &p.name,
        Some(RemoveContainerOptionsBuilder::new().force(true).build()),
    ));
    remove_image(&rt, &docker, &p.image);
    remove_image(&rt, &docker, &p.other);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn the_pinned_image_is_loaded_checked_by_id_and_others_are_refused() {
    with_pinned(|rt, docker, p| {
        // The config digest, computed here independently of safeclaw.
        let expected = {
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(
                fs::File::open(&p.archive).unwrap(),
            ));
            let mut configs = Vec::new();
            for e in tar.entries().unwrap() {
                let mut e = e.unwrap();
                let path = e.path().unwrap().display().to_string();
                if path.ends_with(".json") && path != "manifest.json" {
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
                    configs.push(format!("sha256:{:x}", Sha256::digest(&bytes)));
                }
            }
            assert_eq!(configs.len(), 1, "docker save wrote one config");
            configs.remove(0)
        };

        let shown = p.json(&["image", "show"]);
        assert_eq!(shown["pinned"], true);
        assert_eq!(shown["hash"], HASH);
        assert_eq!(shown["matches"], false);
        assert!(shown["image_id"].is_null(), "{shown}");

        let loaded = p.json(&["image", "load"]);
        assert_eq!(loaded["image_id"], expected.as_str());
        assert_eq!(loaded["pinned"], true);
        assert_eq!(image_id(rt, docker, &p.image).as_deref(), Some(&*expected));
        let shown = p.json(&["image", "show"]);
        assert_eq!(shown["matches"], true, "{shown}");
        assert_eq!(shown["repo_tag"], p.image.as_str());

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

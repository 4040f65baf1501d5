//! `safeclaw skills add/list/remove` as a user runs them: relative paths,
//! from a subdirectory, a CRLF password file; directories and tarballs;
//! what cannot be pinned refused before the password is asked. (The
//! container's side: tests/runtime.rs, tests/guard.rs, tests/openclaw_e2e.rs.)

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use tempfile::TempDir;

fn skill_dir(root: &Path, name: &str, body: &str) {
    fs::create_dir_all(root.join("scripts")).unwrap();
    fs::write(
        root.join("SKILL.md"),
        format!("---\nname: {name}\ndescription: test skill\n---\n{body}\n"),
    )
    .unwrap();
    fs::write(root.join("scripts/scan.sh"), "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(
        root.join("scripts/scan.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}

fn json(out: &assert_cmd::assert::Assert) -> serde_json::Value {
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

#[test]
fn what_cannot_be_pinned_is_refused_before_the_password() {
    let t = TempDir::new().unwrap();
    let add = |source: &Path, extra: &[&str]| {
        // No password input at all: a refusal must come first.
        safeclaw()
            .current_dir(t.path())
            .arg("skills")
            .arg("add")
            .arg(source)
            .args(extra)
            .args(["--vault", "nowhere.vault"])
            .assert()
            .code(2)
            .get_output()
            .stderr
            .clone()
    };
    let err = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    let none = t.path().join("no-skill");
    fs::create_dir(&none).unwrap();
    fs::write(none.join("README.md"), "hi").unwrap();
    assert!(err(add(&none, &[])).contains("a skill has a SKILL.md at its top"));

    let linked = t.path().join("linked");
    skill_dir(&linked, "linked", "x");
    std::os::unix::fs::symlink("/etc/hostname", linked.join("scripts/host")).unwrap();
    assert!(err(add(&linked, &[])).contains("\"scripts/host\" is a symbolic link"));

    let named = t.path().join("named");
    skill_dir(&named, "acip-test", "x");
    let e = err(add(&named, &["--name", "other"]));
    assert!(e.contains("names it \"acip-test\", not \"other\""), "{e}");

    let zip = t.path().join("s.zip");
    fs::write(&zip, b"PK\x03\x04rest").unwrap();
    let e = err(add(&zip, &[]));
    assert!(e.contains("zip archive") && e.contains("unzip -d"), "{e}");

    let bad_name = t.path().join("Bad Name");
    fs::create_dir(&bad_name).unwrap();
    fs::write(bad_name.join("SKILL.md"), "no front matter").unwrap();
    let e = err(add(&bad_name, &[]));
    assert!(
        e.contains("has no `description`"),
        "OpenClaw would not load it: {e}"
    );
    fs::write(bad_name.join("SKILL.md"), "---\ndescription: x\n---\n").unwrap();
    let e = err(add(&bad_name, &[]));
    assert!(
        e.contains("is not a skill name") && e.contains("--name"),
        "{e}"
    );
}

#[test]
fn add_list_replace_and_remove_from_a_subdirectory() {
    let Some((_rt, _docker)) = engine() else {
        return;
    };
    let t = TempDir::new().unwrap();
    let tree = t.path().join("tree");
    openclaw_like_tree(&tree);
    let pw = write_password(t.path(), "pw", "skills password");
    fs::create_dir(t.path().join("vault")).unwrap();
    create_vault(&tree, &t.path().join("vault/v.vault"), &pw);
    skill_dir(&t.path().join("downloads/acip-main"), "acip-test", "first");
    let sub = t.path().join("work/sub");
    fs::create_dir_all(&sub).unwrap();
    pw_file(&sub, "pw-crlf", b"skills password\r\n");
    let run = |args: &[&str]| {
        let mut cmd = safeclaw();
        cmd.current_dir(&sub).arg("--json").args(args).args([
            "--vault",
            "../../vault/v.vault",
            "--password-file",
            "pw-crlf",
        ]);
        cmd.assert()
    };

    let v = json(&run(&["skills", "add", "../../downloads/acip-main"]).success());
    assert_eq!(v["changed"], true, "{v}");
    assert_eq!(v["skill"]["name"], "acip-test");
    assert_eq!(v["skill"]["files"], 2);
    let first = v["skill"]["sha256"].as_str().unwrap().to_string();
    assert!(
        v["skill"]["origin"]
            .as_str()
            .unwrap()
            .ends_with("downloads/acip-main"),
        "{v}"
    );
    let listed = json(&run(&["skills", "list"]).success());
    assert_eq!(listed["skills"][0]["sha256"], first.as_str());
    assert_eq!(
        listed["skills"][0]["mounted_at"],
        "/pinned-skills/acip-test"
    );
    assert_eq!(listed["skills"][0]["loaded_as"], "/state/skills/acip-test");

    // The same files as a GitHub-style tarball: the same hash, no change.
    let status = std::process::Command::new("tar")
        .current_dir(t.path().join("downloads"))
        .args(["czf", "acip.tar.gz", "acip-main"])
        .status()
        .unwrap();
    assert!(status.success());
    let v = json(&run(&["skills", "add", "../../downloads/acip.tar.gz"]).success());
    assert_eq!(v["changed"], false, "{v}");

    // Changed files: pinned anew, the old hash said.
    skill_dir(&t.path().join("downloads/acip-main"), "acip-test", "second");
    let v = json(&run(&["skills", "add", "../../downloads/acip-main"]).success());
    assert_eq!(v["replaced"], first.as_str(), "{v}");
    assert_ne!(v["skill"]["sha256"], first.as_str());

    // The state is untouched; the skill travels among safeclaw's records.
    let export = t.path().join("export");
    export_cmd(t.path().join("vault/v.vault"), &export, &pw)
        .assert()
        .success();
    let mut exported = snapshot(&export);
    let records: Vec<_> = exported
        .keys()
        .filter(|p| p.starts_with(".safeclaw"))
        .cloned()
        .collect();
    for r in &records {
        exported.remove(r);
    }
    let records: Vec<String> = records.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(
        records,
        [
            ".safeclaw",
            ".safeclaw/skill.acip-test",
            ".safeclaw/skills.json"
        ]
    );
    assert!(exported == snapshot(&tree), "the state changed");

    let out = run(&["skills", "remove", "nope"]).code(2);
    let e = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        e.contains("pins no skill \"nope\"") && e.contains("it pins: acip-test"),
        "{e}"
    );
    run(&["skills", "remove", "acip-test"]).success();
    let listed = json(&run(&["skills", "list"]).success());
    assert_eq!(listed["skills"], serde_json::json!([]));
}

#[test]
fn a_stop_of_a_name_that_is_a_path_removes_nothing() {
    // `--name ..` once removed the home's directory of that name, the
    // vault's with it.
    let home = TempDir::new().unwrap();
    fs::create_dir_all(home.path().join("vault")).unwrap();
    fs::write(home.path().join("vault/openclaw.vault"), "kept").unwrap();
    fs::create_dir_all(home.path().join("pinned-skills")).unwrap();
    for name in ["..", "../vault", "."] {
        safeclaw()
            .env("SAFECLAW_HOME", home.path())
            .args(["stop", "--name", name])
            .assert()
            .failure();
    }
    assert_eq!(
        fs::read_to_string(home.path().join("vault/openclaw.vault")).unwrap(),
        "kept"
    );
}

//! A real upgrade of the real OpenClaw (docs/upgrade.md): a vault onboarded
//! on 2026.9.5, its state written (config through OpenClaw's CLI, a memory
//! file), upgraded to 2026.9.6 with `safeclaw upgrade --openclaw`, state
//! intact and the gateway healthy; then an image whose gateway never
//! becomes healthy is rolled back by itself, to 2026.9.6 with nothing lost.
//!
//! Ignored by `cargo test`: it downloads a second OpenClaw (about 650 MB
//! from the npm registry) and builds two images, about ten minutes here,
//! which CI's budget does not hold next to the journey of
//! `tests/openclaw_e2e.rs`. Run it by hand:
//! `cargo test --test openclaw_upgrade -- --ignored`.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;
use predicates::prelude::*;
use tempfile::TempDir;

const OLDER: &str = "2026.9.5";
const NEWER: &str = "2026.9.6";

#[test]
#[ignore = "downloads a second OpenClaw and builds two images (~10 min): run with --ignored"]
fn a_real_upgrade_keeps_the_state_and_a_broken_release_rolls_back() {
    let Some((rt, docker)) = engine() else { return };
    let began = Instant::now();
    let nonce = safeclaw::private_fs::hex(&safeclaw::vault::crypto::random_array::<4>());
    let name = format!("sc-realup-{nonce}");
    let broken = format!("safeclaw-standin:realup-broken-{nonce}");
    let older_tag = format!("safeclaw/openclaw:{OLDER}");
    let _made = Cleanup::new(&rt, &docker)
        .container(&name)
        .image(&broken)
        .image(&older_tag);
    let dir = TempDir::new().unwrap();
    let home = dir.path().join("home");
    private_dir(&home);
    write_password(dir.path(), "pw", &format!("realup-{nonce}"));
    let sc = || {
        let mut c = safeclaw();
        c.env("SAFECLAW_HOME", &home).current_dir(dir.path());
        c
    };
    let openclaw = |args: &[&str]| -> String {
        let out = sc()
            .args(["exec", "--name", &name, "--"])
            .args(args)
            .assert()
            .success();
        String::from_utf8_lossy(&out.get_output().stdout).into_owned()
    };

    // The older release, pinned by a lock resolved from the registry.
    sc().args(["image", "build", "--openclaw", OLDER])
        .timeout(Duration::from_secs(1200))
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("openclaw {OLDER}")));
    eprintln!("{OLDER} built after {:.0} s", began.elapsed().as_secs_f64());

    sc().args(["onboard", "--image", &older_tag, "--password-file", "pw"])
        .args(FAST_KDF)
        .args(ONBOARD_NON_INTERACTIVE)
        .assert()
        .success();
    sc().args(["start", "--name", &name, "--image", &older_tag])
        .args(["--checkpoint-interval", "0", "--password-file", "pw"])
        .assert()
        .success();
    wait_healthy(&rt, &docker, &name);
    assert!(openclaw(&["--version"]).contains(OLDER));
    openclaw(&["config", "set", "agents.defaults.timeoutSeconds", "321"]);
    let (code, _) = exec_raw(
        &rt,
        &docker,
        &name,
        &[
            "sh",
            "-c",
            "echo 'The owner likes tea.' > /state/workspace/MEMORY.md",
        ],
    );
    assert_eq!(code, 0);
    eprintln!(
        "onboarded and written after {:.0} s",
        began.elapsed().as_secs_f64()
    );

    // The upgrade: the newer release's twin built, the state sealed, the
    // new gateway healthy on it.
    let upgraded = sc()
        .args(["--json", "upgrade", "--name", &name, "--openclaw", NEWER])
        .args(["--checkpoint-interval", "0", "--password-file", "pw"])
        .timeout(Duration::from_secs(1200))
        .assert()
        .success();
    let result: serde_json::Value = serde_json::from_slice(&upgraded.get_output().stdout).unwrap();
    eprintln!(
        "upgraded after {:.0} s: healthy {} ms after its start",
        began.elapsed().as_secs_f64(),
        result["healthy_after_ms"]
    );
    assert_eq!(
        result["to"]["reference"],
        format!("safeclaw/openclaw:{NEWER}")
    );
    assert!(openclaw(&["--version"]).contains(NEWER));
    assert!(openclaw(&["config", "get", "agents.defaults.timeoutSeconds"]).contains("321"));
    let (_, memory) = exec_raw(&rt, &docker, &name, &["cat", "/state/workspace/MEMORY.md"]);
    assert_eq!(memory, "The owner likes tea.\n");
    sc().args(["status", "--name", &name])
        .assert()
        .success()
        .stdout(predicate::str::contains("health healthy"));

    // A broken release (the stand-in, never healthy, rewriting the state):
    // rolled back by itself to NEWER, nothing lost.
    let mut files = standin_files();
    files.insert(
        "/etc/openclaw-standin-unhealthy".into(),
        safeclaw::image::build::Entry::Symlink("1".into()),
    );
    rt.block_on(safeclaw::image::build::build(&docker, &broken, &files))
        .unwrap();
    sc().args(["upgrade", "--name", &name, "--image", &broken])
        .args(["--health-timeout", "20", "--checkpoint-interval", "0"])
        .args(["--password-file", "pw"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("rolled back to"));
    wait_healthy(&rt, &docker, &name);
    assert!(openclaw(&["--version"]).contains(NEWER));
    assert!(openclaw(&["config", "get", "agents.defaults.timeoutSeconds"]).contains("321"));
    let (code, _) = exec_raw(
        &rt,
        &docker,
        &name,
        &["sh", "-c", "test -e /state/migrated"],
    );
    assert_ne!(code, 0, "the broken release's migration was kept");
    sc().args(["stop", "--name", &name]).assert().success();
    let left = fs::read_dir(home.join("upgrades")).unwrap().count();
    eprintln!(
        "done after {:.0} s ({left} files in upgrades/)",
        began.elapsed().as_secs_f64()
    );
}

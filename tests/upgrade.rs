//! `safeclaw upgrade` and `safeclaw rollback` on a real engine, with
//! stand-in images built here (docs/upgrade.md): a healthy upgrade is
//! kept and is what a plain start runs; `rollback` returns to the image
//! and the state from before; an image whose gateway never becomes healthy
//! (and rewrites the state, as a newer OpenClaw's migration would) is
//! rolled back on its own with nothing lost; and `safeclaw upgrade` killed
//! (SIGKILL) at any moment leaves a state that `start` or `rollback`
//! recovers, with the newest good generation.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bollard::Docker;
use common::*;
use predicates::prelude::*;
use tempfile::TempDir;

/// A vault, the gateway's name, and three images: `old` and `new`
/// (healthy stand-ins, each marking the state with its tag) and `broken`
/// (never healthy). Removed when dropped, however the test ends.
struct Fixture<'a> {
    _made: Cleanup<'a>,
    dir: TempDir,
    name: String,
    old: String,
    new: String,
    broken: String,
}

impl<'a> Fixture<'a> {
    fn new(rt: &'a tokio::runtime::Runtime, docker: &'a Docker, tag: &str) -> Self {
        let pid = std::process::id();
        let name = format!("sc-up-{tag}-{pid}");
        let [old, new, broken] =
            ["old", "new", "broken"].map(|v| format!("safeclaw-standin:up-{tag}-{v}-{pid}"));
        let made = Cleanup::new(rt, docker)
            .container(&name)
            .image(&old)
            .image(&new)
            .image(&broken);
        let dir = TempDir::new().unwrap();
        let state = dir.path().join("state");
        fs::create_dir(&state).unwrap();
        fs::write(state.join("openclaw.json"), "{}").unwrap();
        fs::create_dir(dir.path().join("vaults")).unwrap();
        // A password file as an editor on Windows leaves it.
        pw_file(dir.path(), "pw", b"upgrade-password\r\n");
        create_vault(
            &state,
            &dir.path().join("vaults/v.sclaw"),
            &dir.path().join("pw"),
        );
        build_standin(rt, docker, &old);
        build_standin(rt, docker, &new);
        let mut files = standin_files();
        for (path, target) in [
            ("/etc/safeclaw-test-image", broken.as_str()),
            ("/etc/openclaw-standin-unhealthy", "1"),
        ] {
            files.insert(
                path.into(),
                safeclaw::image::build::Entry::Symlink(target.to_string()),
            );
        }
        rt.block_on(safeclaw::image::build::build(docker, &broken, &files))
            .unwrap();
        Fixture {
            _made: made,
            dir,
            name,
            old,
            new,
            broken,
        }
    }

    /// `safeclaw ARGS --name N --vault vaults/v.sclaw --password-file
    /// ../pw`, run from a subdirectory, as a user would.
    fn cmd(&self, args: &[&str]) -> assert_cmd::Command {
        let sub = self.dir.path().join("work");
        let _ = fs::create_dir(&sub);
        let mut c = safeclaw();
        c.current_dir(&sub)
            .args(args)
            .args(["--name", &self.name, "--vault", "../vaults/v.sclaw"])
            .args(["--password-file", "../pw"]);
        c
    }

    fn vault(&self) -> PathBuf {
        self.dir.path().join("vaults/v.sclaw")
    }

    /// `safeclaw upgrade` to the broken image, as a process of its own (to
    /// be signalled), no stdin, its output to `output()`'s.
    fn spawn_upgrade_to_broken(
        &self,
        health_timeout: &str,
        output: fn() -> Stdio,
    ) -> std::process::Child {
        std::process::Command::new(env!("CARGO_BIN_EXE_safeclaw"))
            .env("SAFECLAW_HOME", test_home())
            .args(["upgrade", "--name", &self.name, "--image", &self.broken])
            .args(["--health-timeout", health_timeout, "--vault"])
            .arg(self.vault())
            .arg("--password-file")
            .arg(self.dir.path().join("pw"))
            .stdin(Stdio::null())
            .stdout(output())
            .stderr(output())
            .spawn()
            .unwrap()
    }

    /// Writes `text` at `path` in the gateway's state, through OpenClaw's
    /// CLI (the stand-in's `write`): `exec` then asks for a checkpoint.
    fn write_state(&self, path: &str, text: &str) {
        safeclaw()
            .args(["exec", "--name", &self.name, "--", "write", path, text])
            .assert()
            .success();
    }

    /// Asserts that the gateway runs the image `id`.
    fn assert_runs(&self, rt: &tokio::runtime::Runtime, docker: &Docker, id: &str) {
        assert_eq!(self.running_image(rt, docker).as_deref(), Some(id));
    }

    fn stop(&self) {
        safeclaw()
            .args(["stop", "--name", &self.name])
            .assert()
            .success();
    }

    /// The ID of the image the gateway runs, None when it does not run.
    fn running_image(&self, rt: &tokio::runtime::Runtime, docker: &Docker) -> Option<String> {
        let c = rt
            .block_on(docker.inspect_container(&self.name, None))
            .ok()?;
        c.state?.running?.then_some(c.image?)
    }

    fn image_id(&self, rt: &tokio::runtime::Runtime, docker: &Docker, image: &str) -> String {
        rt.block_on(docker.inspect_image(image))
            .unwrap()
            .id
            .unwrap()
    }

    /// The newest generation's state, exported into `to`.
    fn exported(&self, to: &str) -> PathBuf {
        let out = self.dir.path().join(to);
        export_cmd(self.vault(), out.clone(), self.dir.path().join("pw"))
            .assert()
            .success();
        out
    }

    fn generation(&self) -> u64 {
        safeclaw::vault::VaultFile::open(&self.vault())
            .unwrap()
            .header()
            .generation
    }

    fn record(&self) -> Option<serde_json::Value> {
        let path = test_home().join(format!("upgrades/{}.json", self.name));
        let bytes = fs::read(path).ok()?;
        Some(serde_json::from_slice(&bytes).unwrap())
    }

    fn phase(&self) -> Option<String> {
        self.record()
            .map(|r| r["phase"].as_str().unwrap().to_string())
    }
}

fn with_fixture(tag: &str, test: impl FnOnce(&tokio::runtime::Runtime, &Docker, &Fixture)) {
    let Some((rt, docker)) = engine() else { return };
    let f = Fixture::new(&rt, &docker, tag);
    test(&rt, &docker, &f);
}

fn log_of(dir: &Path) -> String {
    fs::read_to_string(dir.join("gateway.log")).unwrap()
}

#[test]
fn a_healthy_upgrade_is_kept_and_rollback_returns_to_the_image_and_state_before() {
    with_fixture("kept", |rt, docker, f| {
        let (old_id, new_id) = (
            f.image_id(rt, docker, &f.old),
            f.image_id(rt, docker, &f.new),
        );
        assert_ne!(old_id, new_id, "the two stand-ins must be two images");
        f.cmd(&["start", "--image", &f.old]).assert().success();
        wait_healthy(rt, docker, &f.name);
        // Unknown images and the image it already runs are refused before
        // anything is stopped.
        f.cmd(&["upgrade", "--image", "safeclaw-standin:no-such-image"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("not in the engine"));
        f.cmd(&["upgrade", "--image", &f.old])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("runs"));
        f.assert_runs(rt, docker, &old_id);
        f.cmd(&["rollback", "--yes"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("no upgrade"));

        // A release that is healthy but cannot read the state (OpenClaw's
        // own security audit fails on it) is rolled back too.
        f.write_state("/state/audit-breaks", "yes");
        f.cmd(&["upgrade", "--image", &f.new])
            .assert()
            .code(1)
            .stderr(predicate::str::contains(
                "security audit failed on the new state",
            ));
        f.assert_runs(rt, docker, &old_id);
        f.write_state("/state/audit-breaks", "no");
        let upgraded = f
            .cmd(&["--json", "upgrade", "--image", &f.new])
            .assert()
            .success();
        let result: serde_json::Value =
            serde_json::from_slice(&upgraded.get_output().stdout).unwrap();
        let before = result["before_generation"].as_u64().unwrap();
        assert_eq!(result["to"]["reference"], f.new.as_str());
        f.assert_runs(rt, docker, &new_id);
        assert_eq!(f.phase().as_deref(), Some("kept"));
        // `image prune` keeps what the record names.
        let listed = safeclaw()
            .args(["--json", "image", "list"])
            .assert()
            .success();
        let listed: serde_json::Value =
            serde_json::from_slice(&listed.get_output().stdout).unwrap();
        let upgrades_of = |id: &str| {
            listed["images"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["id"] == id)
                .map(|i| i["upgrades"].to_string())
                .unwrap_or_default()
        };
        assert!(upgrades_of(&old_id).contains("rollback target"), "{listed}");

        // A plain start runs the image the upgrade kept.
        f.stop();
        f.cmd(&["start"]).assert().success();
        f.assert_runs(rt, docker, &new_id);
        wait_healthy(rt, docker, &f.name);
        let log = log_of(&f.exported("after-upgrade"));
        assert!(
            log.contains(&format!("in {}", f.old)) && log.contains(&format!("in {}", f.new)),
            "{log}"
        );

        // Without a terminal, rollback asks for --yes and changes nothing.
        let newest = f.generation();
        f.cmd(&["rollback"])
            .write_stdin("y\n")
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--yes"));
        assert_eq!(f.generation(), newest);
        f.assert_runs(rt, docker, &new_id);

        let rolled = f.cmd(&["--json", "rollback", "--yes"]).assert().success();
        let rolled: serde_json::Value =
            serde_json::from_slice(&rolled.get_output().stdout).unwrap();
        assert_eq!(rolled["restored_generation"].as_u64(), Some(before));
        let sealed = rolled["sealed_before_rollback"].as_u64().unwrap();
        assert_eq!(rolled["generation"].as_u64(), Some(sealed + 1));
        f.assert_runs(rt, docker, &old_id);
        assert_eq!(f.phase().as_deref(), Some("rolled-back"));
        wait_healthy(rt, docker, &f.name);
        f.stop();
        // The state is the one from before the upgrade (no line of the new
        // image), and what the new image wrote is kept, as the generation
        // sealed before the rollback.
        let log = log_of(&f.exported("after-rollback"));
        assert!(!log.contains(&format!("in {}", f.new)), "{log}");
        let kept = safeclaw::vault::generations::path_of(&f.vault(), sealed);
        assert!(kept.is_file(), "{}", kept.display());
        f.cmd(&["rollback", "--yes"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("rolled back already"));
        // And a plain start now runs the old image again.
        f.cmd(&["start"]).assert().success();
        f.assert_runs(rt, docker, &old_id);
        f.stop();
    });
}

#[test]
fn an_upgrade_that_never_becomes_healthy_is_rolled_back_with_nothing_lost() {
    with_fixture("broken", |rt, docker, f| {
        let old_id = f.image_id(rt, docker, &f.old);
        f.cmd(&["start", "--image", &f.old]).assert().success();
        wait_healthy(rt, docker, &f.name);
        f.write_state("/state/notes.txt", "keep me");
        let began = Instant::now();
        f.cmd(&["upgrade", "--image", &f.broken, "--health-timeout", "8"])
            .assert()
            .code(1)
            .stderr(
                predicate::str::contains("rolled back to")
                    .and(predicate::str::contains("not healthy within 8 s")),
            );
        eprintln!(
            "failed upgrade rolled back in {:.1} s",
            began.elapsed().as_secs_f64()
        );
        // Running again in the old image, from the state sealed before.
        f.assert_runs(rt, docker, &old_id);
        assert_eq!(f.phase().as_deref(), Some("rolled-back"));
        wait_healthy(rt, docker, &f.name);
        f.stop();
        let out = f.exported("after");
        assert_eq!(
            fs::read_to_string(out.join("notes.txt")).unwrap(),
            "keep me"
        );
        assert!(
            !out.join("migrated").exists(),
            "the failed run's migration was sealed"
        );
        let log = log_of(&out);
        assert_eq!(log.matches(&format!("in {}", f.old)).count(), 2, "{log}");
        // A later plain start runs the old image, not the broken one.
        f.cmd(&["start"]).assert().success();
        f.assert_runs(rt, docker, &old_id);
        // Ctrl-C while the new gateway is awaited: rolled back all the
        // same (the signal does not cut the rollback short).
        let broken_id = f.image_id(rt, docker, &f.broken);
        let child = f.spawn_upgrade_to_broken("300", Stdio::piped);
        let until = Instant::now() + Duration::from_secs(60);
        while f.running_image(rt, docker).as_deref() != Some(broken_id.as_str()) {
            assert!(Instant::now() < until, "the broken image never ran");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("(interrupted): rolled back to"), "{stderr}");
        f.assert_runs(rt, docker, &old_id);
        f.stop();
        let out = f.exported("after-interrupt");
        assert_eq!(
            fs::read_to_string(out.join("notes.txt")).unwrap(),
            "keep me"
        );
        assert!(!out.join("migrated").exists());
        f.cmd(&["start"]).assert().success();
        f.stop();
    });
}

/// `safeclaw upgrade` to the broken image, SIGKILLed at spread moments
/// (unlocking, stopping and sealing, starting the new image, waiting for
/// its health, rolling back). After each: `start --image OLD`, or
/// `rollback --yes` when an interrupted upgrade is recorded (every other
/// trial), brings the gateway back in the old image with the state that
/// was sealed before the upgrade, healthy; the vault authenticates whole.
#[test]
fn kill_9_of_upgrade_at_any_step_is_recovered_by_start_or_rollback() {
    let trials: u64 = std::env::var("SAFECLAW_UPGRADE_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(6);
    with_fixture("kill", |rt, docker, f| {
        let old_id = f.image_id(rt, docker, &f.old);
        let mut phases = Vec::new();
        for trial in 0..trials {
            if f.running_image(rt, docker).is_none() {
                f.cmd(&["start", "--image", &f.old]).assert().success();
            }
            wait_healthy(rt, docker, &f.name);
            let note = format!("note {trial}");
            f.write_state("/state/notes.txt", &note);
            let child = f.spawn_upgrade_to_broken("5", Stdio::null);
            // Spread over the upgrade's ~10 s: 0.2 s to 9.2 s.
            let delay = Duration::from_millis(200 + trial * 9000 / trials.max(1));
            std::thread::sleep(delay);
            std::process::Command::new("kill")
                .args(["-KILL", &child.id().to_string()])
                .status()
                .unwrap();
            let _ = child.wait_with_output();
            std::thread::sleep(Duration::from_millis(300));
            let phase = f.phase();
            let running = f.running_image(rt, docker);
            phases.push(format!(
                "{:.1}s:{}/{}",
                delay.as_secs_f64(),
                phase.as_deref().unwrap_or("none"),
                match &running {
                    None => "stopped",
                    Some(id) if *id == old_id => "old",
                    Some(_) => "new",
                }
            ));
            // A plain start, as a user would type it, once a record names
            // the image; before the first record only `--image` can.
            let start: &[&str] = if phase.is_some() {
                &["start"]
            } else {
                &["start", "--image", &f.old]
            };
            if phase.as_deref() == Some("switching") {
                // Interrupted: what runs (if anything) is the unconfirmed
                // new image, which both recoveries end without a seal.
                if trial % 2 == 1 {
                    f.cmd(&["rollback", "--yes"]).assert().success();
                    if running.is_none() {
                        f.cmd(start).assert().success();
                    }
                } else {
                    f.cmd(start)
                        .assert()
                        .success()
                        .stderr(predicate::str::contains("was interrupted"));
                }
            } else {
                // Killed before the switch (the engine may still be
                // stopping the old gateway: `stop` waits for that), or
                // after the upgrade rolled back by itself: a stop and a
                // start from the newest generation.
                let _ = safeclaw().args(["stop", "--name", &f.name]).output();
                f.cmd(start).assert().success();
            }
            // The upgrade rolled back on its own, or was recovered: the old
            // image runs, with what was written before the upgrade.
            assert_eq!(
                f.running_image(rt, docker).as_deref(),
                Some(old_id.as_str()),
                "trial {trial}: {phases:?}"
            );
            assert_ne!(f.phase().as_deref(), Some("switching"), "trial {trial}");
            wait_healthy(rt, docker, &f.name);
            f.stop();
            let out = f.exported(&format!("trial-{trial}"));
            assert_eq!(
                fs::read_to_string(out.join("notes.txt")).unwrap(),
                note,
                "trial {trial}: {phases:?}"
            );
            assert!(!out.join("migrated").exists(), "trial {trial}: {phases:?}");
            // No temporary left, and no saved copy but the one the record
            // names (none after a rollback).
            let names = |dir: PathBuf| -> Vec<String> {
                fs::read_dir(dir)
                    .map(|d| {
                        d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let mut left = names(f.dir.path().join("vaults"));
            left.extend(names(test_home().join("upgrades")));
            left.retain(|n| n.contains(&f.name) || n.contains("v.sclaw"));
            assert!(
                left.iter()
                    .all(|n| !n.contains(".tmp-") && !n.ends_with(".before.vault")),
                "trial {trial}: {left:?}"
            );
        }
        eprintln!("kill -9 of upgrade at (delay:record/gateway): {phases:?}");
    });
}

/// `vault::restore_generation` on its own (no engine): the failed run's
/// checkpoints are kept beside the vault and its current file damaged, as
/// the container that could write the vault's directory may leave them.
/// The restore is numbered above every generation that authenticates, the
/// damaged file is set aside (not unlinked), and the state is the saved
/// one; keeping the current settings from a file that does not
/// authenticate is refused with nothing changed.
#[test]
fn a_restore_is_numbered_above_every_generation_and_sets_aside_a_damaged_file() {
    use safeclaw::vault::{self, Settings, VaultFile};
    let dir = TempDir::new().unwrap();
    let state = dir.path().join("state");
    fs::create_dir(&state).unwrap();
    fs::write(state.join("memory.md"), "before the upgrade").unwrap();
    fs::create_dir(dir.path().join("vaults")).unwrap();
    let path = dir.path().join("vaults/v.sclaw");
    let pw = write_password(dir.path(), "pw", "restore-password");
    create_vault(&state, &path, &pw);
    let key = VaultFile::open(&path)
        .unwrap()
        .unlock(&safeclaw::password::Password::new(b"restore-password").unwrap())
        .unwrap()
        .0;
    let saved = dir.path().join("saved.vault");
    fs::copy(&path, &saved).unwrap();
    // The failed release's checkpoints: generations 2 and 3.
    fs::write(state.join("memory.md"), "migrated by the failed release").unwrap();
    for _ in 0..2 {
        vault::seal_next_generation(&path, &key, &state, 5, &Default::default()).unwrap();
    }
    assert_eq!(VaultFile::open(&path).unwrap().header().generation, 3);
    // Keeping the current settings needs a current file that authenticates.
    fs::write(&path, b"not a vault any more").unwrap();
    let refused = vault::restore_generation(&path, &saved, 1, 0, &key, 5, Settings::Current);
    assert!(refused.is_err());
    assert_eq!(fs::read(&path).unwrap(), b"not a vault any more");
    // The saved copy's settings: restored above the kept generation 2.
    let restored =
        vault::restore_generation(&path, &saved, 1, 0, &key, 5, Settings::Earlier).unwrap();
    assert_eq!(restored, 3);
    let aside: Vec<String> = fs::read_dir(dir.path().join("vaults"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("v.sclaw.unverified-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let out = dir.path().join("out");
    export_cmd(path.clone(), out.clone(), pw).assert().success();
    assert_eq!(
        fs::read_to_string(out.join("memory.md")).unwrap(),
        "before the upgrade"
    );
    // A kept checkpoint numbered above the floor lifts the next number.
    fs::write(
        vault::generations::path_of(&path, 9),
        fs::read(vault::generations::path_of(&path, 2)).unwrap(),
    )
    .unwrap();
    let again = vault::restore_generation(&path, &saved, 1, 0, &key, 5, Settings::Current).unwrap();
    assert_eq!(
        again, 4,
        "a copy of generation 2 named .g9 does not authenticate as 9"
    );
}

//! The guard on its own, outside any container: the key protocol, its
//! failure modes, the gateway's exit status, signal forwarding, and the
//! seal of the state into the next generation.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use safeclaw::guard;
use safeclaw::password::Password;
use safeclaw::vault::{crypto::DataKey, VaultFile};
use tempfile::TempDir;

struct Setup {
    dir: TempDir,
}

impl Setup {
    fn new() -> Self {
        let dir = TempDir::new().unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir(&tree).unwrap();
        fs::write(tree.join("openclaw.json"), "{}").unwrap();
        let pw = write_password(dir.path(), "pw", "guard password");
        create_vault(&tree, &dir.path().join("v.vault"), &pw);
        fs::create_dir(dir.path().join("state")).unwrap();
        Setup { dir }
    }

    fn vault(&self) -> PathBuf {
        self.dir.path().join("v.vault")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn key(&self) -> DataKey {
        let v = VaultFile::open(&self.vault()).unwrap();
        v.unlock(&Password::new(b"guard password").unwrap())
            .unwrap()
            .0
    }

    fn spawn(&self, gateway: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_safeclaw"))
            .arg("guard")
            .arg("--vault")
            .arg(self.vault())
            .arg("--state")
            .arg(self.state())
            .args(["--key-timeout", "2", "--"])
            .args(gateway)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn generation(&self) -> u64 {
        VaultFile::open(&self.vault()).unwrap().header().generation
    }
}

/// Writes `bytes` to the guard's stdin and closes it, as the host does.
fn give(child: &mut Child, bytes: &[u8]) {
    child.stdin.take().unwrap().write_all(bytes).unwrap();
}

fn finish(child: Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn is_empty(dir: &Path) -> bool {
    fs::read_dir(dir).unwrap().next().is_none()
}

#[test]
fn a_malformed_key_line_is_refused() {
    let s = Setup::new();
    let mut child = s.spawn(&["true"]);
    give(&mut child, b"hello\n");
    let (code, out) = finish(child);
    assert_eq!(code, Some(1));
    assert_eq!(
        out,
        "safeclaw-guard: error: stdin did not carry a well-formed key line\n"
    );
    assert!(is_empty(&s.state()));
}

#[test]
fn no_key_in_time_is_refused() {
    let s = Setup::new();
    let mut child = s.spawn(&["true"]);
    let _stdin_kept_open = child.stdin.take();
    let start = Instant::now();
    let (code, out) = finish(child);
    assert_eq!(code, Some(1));
    assert_eq!(
        out,
        "safeclaw-guard: error: no key arrived on stdin in time\n"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_wrong_key_decrypts_nothing_and_exits_3() {
    let s = Setup::new();
    let mut child = s.spawn(&["true"]);
    let line = guard::key_line(&DataKey::generate());
    give(&mut child, line.as_bytes());
    let (code, out) = finish(child);
    assert_eq!(code, Some(guard::EXIT_WRONG_KEY));
    assert_eq!(
        out,
        "safeclaw-guard: error: the key does not open the vault\n"
    );
    assert!(is_empty(&s.state()));
    assert_eq!(s.generation(), 1);
}

#[test]
fn the_gateways_changes_are_sealed_and_its_status_passed_on() {
    let s = Setup::new();
    let mut child = s.spawn(&[
        "sh",
        "-c",
        "echo written > \"$OPENCLAW_STATE_DIR/memory.md\"; exit 7",
    ]);
    give(&mut child, guard::key_line(&s.key()).as_bytes());
    let (code, out) = finish(child);
    assert_eq!(code, Some(7));
    assert_eq!(
        out,
        "safeclaw-guard: ready generation=1\nsafeclaw-guard: sealed generation=2\n"
    );
    assert_eq!(s.generation(), 2);
    let pw = s.dir.path().join("pw");
    safeclaw()
        .args(["vault", "export"])
        .arg(s.vault())
        .arg("--to")
        .arg(s.dir.path().join("out"))
        .arg("--password-file")
        .arg(&pw)
        .assert()
        .success();
    assert_eq!(
        fs::read_to_string(s.dir.path().join("out/memory.md")).unwrap(),
        "written\n"
    );
    // The generation it replaced stays readable.
    let previous = VaultFile::open(&safeclaw::vault::previous_path(&s.vault())).unwrap();
    assert_eq!(previous.header().generation, 1);
}

#[test]
fn sigterm_is_forwarded_and_the_state_still_sealed() {
    let s = Setup::new();
    let mut child = s.spawn(&["sleep", "30"]);
    give(&mut child, guard::key_line(&s.key()).as_bytes());
    // Wait until the gateway runs (the state was decrypted).
    let start = Instant::now();
    while !s.state().join("openclaw.json").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the guard never unpacked"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let (code, out) = finish(child);
    assert_eq!(code, Some(128 + 15), "{out}");
    assert!(
        out.ends_with("safeclaw-guard: sealed generation=2\n"),
        "{out}"
    );
    assert_eq!(s.generation(), 2);
}

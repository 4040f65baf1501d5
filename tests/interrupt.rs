//! SIGTERM/SIGINT in the middle of long work: exit 130, temporary files
//! and half-written plaintext removed, existing files untouched.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tempfile::TempDir;

/// 256 MiB of incompressible data, so the work takes long enough to interrupt.
fn big_tree(root: &Path) {
    fs::create_dir_all(root).unwrap();
    let mut state = 0x2545F4914F6CDD1Du64;
    let mut buf = vec![0u8; 1 << 20];
    for f in 0..8 {
        let mut data = Vec::with_capacity(32 << 20);
        for _ in 0..32 {
            for b in buf.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b.copy_from_slice(&state.to_le_bytes());
            }
            data.extend_from_slice(&buf);
        }
        fs::write(root.join(format!("blob{f}")), data).unwrap();
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// Starts `args`, waits until a name starting with `marker` appears in
/// `dir`, sends `signal`, and returns the exit code.
fn interrupt_when(
    dir: &Path,
    marker: &str,
    signal: &str,
    args: &[&std::ffi::OsStr],
) -> Option<i32> {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("safeclaw"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !names(dir).iter().any(|n| n.starts_with(marker)) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{marker} never appeared"
        );
        if child.try_wait().unwrap().is_some() {
            panic!("finished before it could be interrupted; make the tree bigger");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(30));
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap().code()
}

#[test]
fn sigterm_during_create_and_sigint_during_export_leave_nothing() {
    let dir = TempDir::new().unwrap();
    let base = dir.path();
    big_tree(&base.join("state"));
    let pw = write_password(base, "pw", "correct horse");
    let vault = base.join("v.vault");

    let mut create: Vec<&std::ffi::OsStr> =
        vec!["vault".as_ref(), "create".as_ref(), "--from".as_ref()];
    let state = base.join("state");
    create.extend([
        state.as_os_str(),
        "--out".as_ref(),
        vault.as_os_str(),
        "--password-file".as_ref(),
        pw.as_os_str(),
    ]);
    create.extend(FAST_KDF.iter().map(std::ffi::OsStr::new));
    let code = interrupt_when(base, ".v.vault.tmp-", "-TERM", &create);
    assert_eq!(code, Some(130));
    assert_eq!(names(base), ["pw", "state"], "create left something behind");

    create_vault(&state, &vault, &pw);
    let before = fs::read(&vault).unwrap();
    let out = base.join("out");
    let export: Vec<&std::ffi::OsStr> = vec![
        "vault".as_ref(),
        "export".as_ref(),
        vault.as_os_str(),
        "--to".as_ref(),
        out.as_os_str(),
        "--password-file".as_ref(),
        pw.as_os_str(),
    ];
    let code = interrupt_when(base, ".out.safeclaw-export-", "-INT", &export);
    assert_eq!(code, Some(130));
    // The vault and its blob store (the state has files over 16 KiB).
    let mut left = names(base);
    left.retain(|n| !n.starts_with(safeclaw::vault::blobs::STORE_PREFIX));
    assert_eq!(
        left,
        ["pw", "state", "v.vault"],
        "export left plaintext behind"
    );
    assert_eq!(fs::read(&vault).unwrap(), before);
}

//! A vault written by an earlier build (tests/fixtures/golden-v1.vault, made
//! with argon2 0.5, password "golden-password", Argon2id m=256 KiB t=2 p=4)
//! must open forever: format version 1 is frozen. If this test fails, the
//! format or the KDF changed incompatibly.

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;
use tempfile::TempDir;

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden-v1.vault")
}

#[test]
fn the_golden_v1_vault_still_opens_with_the_same_content() {
    let dir = TempDir::new().unwrap();
    let pw = write_password(dir.path(), "pw", "golden-password");
    safeclaw()
        .args(["vault", "export"])
        .arg(golden())
        .arg("--to")
        .arg(dir.path().join("out"))
        .arg("--password-file")
        .arg(&pw)
        .assert()
        .success();
    let out = dir.path().join("out");
    assert_eq!(
        fs::read_to_string(out.join("openclaw.json")).unwrap(),
        "{\"gateway\":{\"auth\":{\"token\":\"golden-token\"}}}\n"
    );
    assert_eq!(
        fs::read_to_string(out.join("workspace/MEMORY.md")).unwrap(),
        "The owner likes tea.\n"
    );
    assert_eq!(
        fs::read_link(out.join("memory-link")).unwrap(),
        PathBuf::from("workspace/MEMORY.md")
    );
    assert!(out.join("empty").is_dir());
    assert_eq!(listing(&out).len(), 5);
}

#[test]
fn the_golden_v1_header_reads_as_documented() {
    let info = safeclaw()
        .args(["vault", "info", "--json"])
        .arg(golden())
        .output()
        .unwrap();
    assert!(info.status.success());
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["generation"], 1);
    assert_eq!(v["slots"][0]["kdf"]["memory_kib"], 256);
    assert_eq!(v["slots"][0]["kdf"]["iterations"], 2);
    assert_eq!(v["slots"][0]["kdf"]["parallelism"], 4);
}

/// Vaults from before records existed read as having none, through the
/// prefix reader and through a full unpack alike.
#[test]
fn the_golden_v1_vault_has_no_records() {
    use safeclaw::password::Password;
    use safeclaw::vault::VaultFile;
    let vault = VaultFile::open(&golden()).unwrap();
    let (key, _) = vault
        .unlock(&Password::new(b"golden-password").unwrap())
        .unwrap();
    assert!(vault.records(&key).unwrap().is_empty());
    let dir = TempDir::new().unwrap();
    let (stats, records) = vault.unpack(&key, dir.path(), |_| {}).unwrap();
    assert!(records.is_empty());
    assert_eq!((stats.files, stats.records), (2, 0));
}

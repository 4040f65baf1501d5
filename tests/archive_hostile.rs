//! A vault whose archive was made by someone hostile (who knows a
//! password) is refused whole: nothing is written, inside or outside the
//! target, and `verify` refuses it too.

mod common;

use std::fs;
use std::path::Path;

use common::raw_tar::{entry, tar, Raw};
use common::*;
use predicates::prelude::*;
use safeclaw::password::Password;
use safeclaw::vault::format::KdfParams;
use safeclaw::vault::{self, crypto::DataKey, Replace};
use tempfile::TempDir;

fn seal_tar(dest: &Path, tar_bytes: &[u8]) {
    let key = DataKey::generate();
    let password = Password::new(b"correct horse").unwrap();
    let header = vault::new_header(
        &key,
        &password,
        KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        },
    );
    // `write` compresses; the closure gives the tar stream.
    vault::write(dest, Replace::Never, &key, &header, |w| {
        std::io::Write::write_all(w, tar_bytes)
            .map_err(|e| safeclaw::error::Error::failure(e.to_string()))
    })
    .unwrap();
}

/// Seals `entries`, then exports and verifies through the CLI: both must
/// refuse with `reason` and leave the directory exactly as it was.
fn assert_refused(entries: &[Raw], reason: &str) {
    assert_refused_with(entries, &format!("error: refused archive entry: {reason}"));
}

fn assert_refused_with(entries: &[Raw], stderr: &str) {
    let dir = TempDir::new().unwrap();
    let base = dir.path();
    let pw = write_password(base, "pw", "correct horse");
    fs::create_dir(base.join("outside")).unwrap();
    fs::write(base.join("outside/secret"), "untouched").unwrap();
    let vault_path = base.join("v.vault");
    seal_tar(&vault_path, &tar(entries));
    let before = snapshot(base);

    export_cmd(&vault_path, base.join("target"), &pw)
        .assert()
        .code(4)
        .stdout("")
        .stderr(predicate::str::contains(stderr));
    assert_eq!(snapshot(base), before, "export changed the filesystem");

    safeclaw()
        .args(["vault", "verify"])
        .arg(&vault_path)
        .arg("--password-file")
        .arg(&pw)
        .assert()
        .code(4)
        .stderr(predicate::str::contains(stderr));
}

const FILE: u8 = b'0';
const HARD: u8 = b'1';
const SYM: u8 = b'2';
const CHR: u8 = b'3';
const BLK: u8 = b'4';
const DIR: u8 = b'5';
const FIFO: u8 = b'6';

#[test]
fn absolute_paths() {
    assert_refused(
        &[entry("/tmp/safeclaw-pwned", FILE, "", b"x")],
        "\"/tmp/safeclaw-pwned\" is an absolute path",
    );
    assert!(!Path::new("/tmp/safeclaw-pwned").exists());
}

#[test]
fn parent_components() {
    assert_refused(
        &[entry("../outside/secret", FILE, "", b"pwned")],
        "\"../outside/secret\" contains '..'",
    );
    assert_refused(
        &[entry("a/../../outside/secret", FILE, "", b"pwned")],
        "\"a/../../outside/secret\" contains '..'",
    );
}

/// Links pointing anywhere are kept as inert data (OpenClaw itself links
/// into its install, `/opt/openclaw/...`): created last, as stored, never
/// followed, and nothing is written outside the target.
#[test]
fn symlinks_leaving_the_root_are_kept_as_links_and_never_followed() {
    let dir = TempDir::new().unwrap();
    let base = dir.path();
    let pw = write_password(base, "pw", "correct horse");
    fs::create_dir(base.join("outside")).unwrap();
    fs::write(base.join("outside/secret"), "untouched").unwrap();
    let vault_path = base.join("v.vault");
    seal_tar(
        &vault_path,
        &tar(&[
            entry("abs", SYM, "/opt/openclaw/skills", b""),
            entry("d/", DIR, "", b""),
            entry("d/up", SYM, "../../outside", b""),
            entry("a", SYM, ".", b""),
            entry("b", SYM, "a/..", b""),
        ]),
    );
    export_cmd(&vault_path, base.join("target"), &pw)
        .assert()
        .success();
    let t = base.join("target");
    for (link, target) in [
        ("abs", "/opt/openclaw/skills"),
        ("d/up", "../../outside"),
        ("a", "."),
        ("b", "a/.."),
    ] {
        assert_eq!(fs::read_link(t.join(link)).unwrap(), Path::new(target));
    }
    assert_eq!(
        fs::read_to_string(base.join("outside/secret")).unwrap(),
        "untouched"
    );
    assert_eq!(fs::read_dir(base.join("outside")).unwrap().count(), 1);
}

#[test]
fn writes_through_a_symlink() {
    // The link itself stays inside, but a later entry would write through it.
    assert_refused(
        &[
            entry("sub/", DIR, "", b""),
            entry("l", SYM, "sub", b""),
            entry("l/x", FILE, "", b"x"),
        ],
        "\"l/x\" is under a non-directory",
    );
    assert_refused(
        &[
            entry("l", SYM, "../outside", b""),
            entry("l/secret", FILE, "", b"pwned"),
        ],
        "\"l/secret\" is under a non-directory",
    );
}

#[test]
fn hard_links() {
    assert_refused(
        &[entry("h", HARD, "../outside/secret", b"")],
        "\"../outside/secret\" contains '..'",
    );
    assert_refused(
        &[entry("h", HARD, "/etc/passwd", b"")],
        "\"/etc/passwd\" is an absolute path",
    );
    assert_refused(
        &[
            entry("h", HARD, "later", b""),
            entry("later", FILE, "", b"x"),
        ],
        "hard link \"h\" does not point to a file extracted before it",
    );
}

#[test]
fn devices_and_fifos() {
    assert_refused(&[entry("null", CHR, "", b"")], "\"null\" is a device node");
    assert_refused(&[entry("sda", BLK, "", b"")], "\"sda\" is a device node");
    assert_refused(&[entry("pipe", FIFO, "", b"")], "\"pipe\" is a FIFO");
    assert_refused(
        &[entry("dump", b'D', "", b"")],
        "\"dump\" has unsupported type",
    );
    // The tar reader itself rejects this sparse header as malformed.
    assert_refused_with(
        &[entry("sparse", b'S', "", b"")],
        "error: the archive is malformed\n",
    );
}

#[test]
fn duplicates_and_the_root() {
    assert_refused(
        &[
            entry("a", FILE, "", b"first"),
            entry("a", FILE, "", b"second"),
        ],
        "\"a\" appears twice",
    );
    assert_refused(
        &[entry("./", FILE, "", b"")],
        "\"./\" is not a directory but names the root",
    );
}

#[test]
fn a_benign_archive_with_the_same_builder_is_accepted() {
    // Guards the harness itself: the raw builder makes archives we accept.
    let dir = TempDir::new().unwrap();
    let base = dir.path();
    let pw = write_password(base, "pw", "correct horse");
    let vault_path = base.join("v.vault");
    seal_tar(
        &vault_path,
        &tar(&[
            entry("./", DIR, "", b""),
            entry("./d/", DIR, "", b""),
            entry("./d/f", FILE, "", b"hello"),
            entry("./d/h", HARD, "d/f", b""),
            entry("./l", SYM, "d/f", b""),
        ]),
    );
    export_cmd(&vault_path, base.join("target"), &pw)
        .assert()
        .success();
    assert_eq!(fs::read(base.join("target/l")).unwrap(), b"hello");
    assert_eq!(fs::read(base.join("target/d/h")).unwrap(), b"hello");
}

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
use safeclaw::vault::{self, crypto::MasterKey, Replace};
use tempfile::TempDir;

fn seal_tar(dest: &Path, tar_bytes: &[u8]) {
    let master = MasterKey::generate();
    let key = master.data_key();
    let password = Password::new(b"correct horse").unwrap();
    let header = vault::new_header(
        &master,
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

/// A tar of one empty file whose path has `components` components, carried
/// by a GNU long name header as tar writes it.
fn deep_name_tar(components: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(0o600);
    let name = "a/".repeat(components - 1) + "f";
    b.append_data(&mut h, name, std::io::empty()).unwrap();
    b.into_inner().unwrap()
}

/// The CLI with its heap (the data segment limit, which counts malloc's
/// arenas and anonymous mappings) capped at `mib` MiB: past it an
/// allocation fails and the process aborts.
fn safeclaw_within_mib(mib: u64) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -d {} && exec \"$0\" \"$@\"", mib * 1024))
        .arg(env!("CARGO_BIN_EXE_safeclaw"))
        .env_remove("NO_COLOR")
        .env_remove("SAFECLAW_IMAGE")
        .env("SAFECLAW_HOME", test_home());
    cmd
}

/// Issue 12: a 350-byte authenticated vault whose one entry has a 32,000
/// component name took 1 GB and 9 s to verify (every ancestor of the name
/// was stored in full). It is now refused at once by its length, in
/// bounded memory, by verify and export alike.
#[test]
fn a_name_of_32000_components_is_refused_at_once_in_bounded_memory() {
    let dir = TempDir::new().unwrap();
    let base = dir.path();
    let pw = write_password(base, "pw", "correct horse");
    let vault_path = base.join("deep.vault");
    seal_tar(&vault_path, &deep_name_tar(32_000));
    assert!(fs::metadata(&vault_path).unwrap().len() < 1024);
    let expected = format!(
        "error: refused archive: the path \"{}\"... is 63999 bytes long; the limit is 4096\n",
        "a/".repeat(50)
    );
    let before = snapshot(base);
    for args in [
        vec!["vault", "verify"],
        vec!["vault", "export", "--to", "target"],
    ] {
        let started = std::time::Instant::now();
        safeclaw_within_mib(200)
            .current_dir(base)
            .args(&args)
            .arg(&vault_path)
            .arg("--password-file")
            .arg(&pw)
            .timeout(std::time::Duration::from_secs(30))
            .assert()
            .code(4)
            .stderr(predicate::str::starts_with(expected.clone()));
        let took = started.elapsed();
        assert!(took.as_secs_f64() < 3.0, "{args:?} took {took:?}");
    }
    assert_eq!(snapshot(base), before, "export changed the filesystem");
}

/// A tree at the limits (a path of MAX_DEPTH components, and one of
/// nearly PATH_MAX bytes in 255-byte names) seals and exports unchanged.
#[test]
fn a_tree_at_the_limits_round_trips() {
    use safeclaw::vault::archive::{MAX_DEPTH, MAX_PATH_BYTES};
    let dir = TempDir::new().unwrap();
    let base = dir.path();
    let tree = base.join("t");
    let deepest = vec!["d"; MAX_DEPTH - 1].join("/");
    fs::create_dir_all(tree.join(&deepest)).unwrap();
    fs::write(tree.join(&deepest).join("f"), "deep").unwrap();
    let long: Vec<String> = (0..15)
        .map(|i| format!("{i:02}{}", "n".repeat(253)))
        .collect();
    let long = long.join("/");
    assert!(long.len() > MAX_PATH_BYTES - 512 && long.len() <= MAX_PATH_BYTES);
    fs::create_dir_all(tree.join(&long)).unwrap();
    fs::write(tree.join(&long).join("f"), "long").unwrap();
    let pw = write_password(base, "pw", "correct horse");
    let vault_path = base.join("v.vault");
    create_vault(&tree, &vault_path, &pw);
    export_cmd(&vault_path, base.join("o"), &pw)
        .assert()
        .success();
    assert_eq!(snapshot(&base.join("o")), snapshot(&tree));
}

/// A tree beyond the limits is refused when sealing: safeclaw never writes
/// a vault it would refuse to read back.
#[test]
fn a_tree_beyond_the_depth_limit_is_not_sealed() {
    use safeclaw::vault::archive::MAX_DEPTH;
    let dir = TempDir::new().unwrap();
    let base = dir.path();
    let tree = base.join("t");
    fs::create_dir_all(tree.join(vec!["d"; MAX_DEPTH + 1].join("/"))).unwrap();
    let pw = write_password(base, "pw", "correct horse");
    let vault_path = base.join("v.vault");
    create_cmd(&tree, &vault_path)
        .arg("--password-file")
        .arg(&pw)
        .args(FAST_KDF)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "error: {} cannot be sealed: the path \"{}\"... has 257 components; the limit is 256\n",
            tree.display(),
            "d/".repeat(50)
        )));
    assert!(!vault_path.exists());
}

//! `safeclaw vault migrate` against legacy files made at test time by the
//! real `openssl` CLI, exactly as the guide's section 5 makes them.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::raw_tar::{entry, tar};
use common::*;
use predicates::prelude::*;
use tempfile::TempDir;

/// The guide's layout: openclaw-secure/{config.tar.gz, data/secrets.enc},
/// made from an OpenClaw-shaped tree with `tar -czf` and `openssl enc`.
struct Guide {
    dir: TempDir,
}

impl Guide {
    /// `openssl_args` replace the guide's `-pbkdf2 -iter 100000`;
    /// `pass` is openssl's `-pass` argument.
    fn new(openssl_args: &[&str], pass: &str) -> Self {
        let dir = TempDir::new().unwrap();
        let root = dir.path().join("openclaw-secure");
        openclaw_like_tree(&root.join("data"));
        openclaw_like_tree(&dir.path().join("reference"));
        run(Command::new("tar")
            .args(["-czf", "config.tar.gz", "-C", "data", "."])
            .current_dir(&root));
        Self::encrypt(&root, openssl_args, pass);
        // The guide's wipe: rm -rf data/* config.tar.gz, then mv.
        fs::remove_dir_all(root.join("data")).unwrap();
        fs::create_dir(root.join("data")).unwrap();
        fs::remove_file(root.join("config.tar.gz")).unwrap();
        fs::rename(root.join("secrets.enc"), root.join("data/secrets.enc")).unwrap();
        write_password(dir.path(), "new-pw", "new vault password");
        Guide { dir }
    }

    /// A tar.gz built from raw entries instead of a tree.
    fn from_tar(tar_bytes: Vec<u8>, pass: &str) -> Self {
        let dir = TempDir::new().unwrap();
        let root = dir.path().join("openclaw-secure");
        fs::create_dir_all(root.join("data")).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &tar_bytes).unwrap();
        fs::write(root.join("config.tar.gz"), gz.finish().unwrap()).unwrap();
        Self::encrypt(&root, &["-pbkdf2", "-iter", "100000"], pass);
        fs::remove_file(root.join("config.tar.gz")).unwrap();
        fs::rename(root.join("secrets.enc"), root.join("data/secrets.enc")).unwrap();
        write_password(dir.path(), "new-pw", "new vault password");
        Guide { dir }
    }

    fn encrypt(root: &Path, openssl_args: &[&str], pass: &str) {
        run(Command::new("openssl")
            .args(["enc", "-aes-256-cbc", "-salt"])
            .args(openssl_args)
            .args(["-in", "config.tar.gz", "-out", "secrets.enc", "-pass", pass])
            .current_dir(root));
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn legacy(&self) -> PathBuf {
        self.path("openclaw-secure/data/secrets.enc")
    }
    fn out(&self) -> PathBuf {
        self.path("v.vault")
    }

    fn migrate(&self, legacy_password_file: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
        safeclaw()
            .args(["vault", "migrate"])
            .arg(self.legacy())
            .arg("--out")
            .arg(self.out())
            .arg("--password-file")
            .arg(legacy_password_file)
            .args(extra)
            .args(FAST_KDF)
            .assert()
    }

    /// Exports the new vault and compares it with the original tree.
    fn assert_vault_matches_the_tree(&self, password_file: &Path) {
        safeclaw()
            .args(["vault", "export"])
            .arg(self.out())
            .arg("--to")
            .arg(self.path("exported"))
            .arg("--password-file")
            .arg(password_file)
            .assert()
            .success();
        assert_eq!(
            snapshot(&self.path("reference")),
            snapshot(&self.path("exported"))
        );
    }

    /// Nothing created, the legacy file untouched.
    fn assert_nothing_written(&self, before: &[PathBuf]) {
        assert!(!self.out().exists());
        assert_eq!(&listing(self.dir.path()), before);
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_guides_own_file_migrates_and_is_renamed() {
    let g = Guide::new(&["-pbkdf2", "-iter", "100000"], "pass:guide password");
    let pw = pw_file(g.dir.path(), "pw", b"guide password\n");
    g.migrate(
        &pw,
        &["--new-password-file", g.path("new-pw").to_str().unwrap()],
    )
    .success()
    .stdout(predicate::str::contains(
        "(openssl -pbkdf2 -iter 100000 -md sha256)",
    ))
    .stdout(predicate::str::contains(
        "; verified; the legacy file is now",
    ));
    assert!(!g.legacy().exists());
    assert!(g.path("openclaw-secure/data/secrets.enc.migrated").exists());
    g.assert_vault_matches_the_tree(&g.path("new-pw"));
    // The old password does not open the new vault.
    safeclaw()
        .args(["vault", "verify"])
        .arg(g.out())
        .arg("--password-file")
        .arg(&pw)
        .assert()
        .code(3);
}

#[test]
fn every_openssl_variant_real_users_have() {
    // (openssl options, extra migrate flags)
    let cases: [(&[&str], &[&str]); 8] = [
        (&["-pbkdf2", "-iter", "100000", "-a"], &[]),
        (&["-pbkdf2", "-iter", "100000", "-a", "-A"], &[]),
        (&["-pbkdf2"], &[]), // OpenSSL's default 10000
        (&["-pbkdf2", "-iter", "5000"], &["--iter", "5000"]),
        (
            &["-pbkdf2", "-iter", "100000", "-md", "sha1"],
            &["--md", "sha1"],
        ),
        (&[], &[]),             // EVP_BytesToKey, sha256
        (&["-md", "md5"], &[]), // OpenSSL < 1.1.0
        (&["-md", "sha1"], &["--md", "sha1", "--no-pbkdf2"]),
    ];
    for (openssl_args, flags) in cases {
        let g = Guide::new(openssl_args, "pass:variant password");
        let pw = pw_file(g.dir.path(), "pw", b"variant password\n");
        let mut args = vec!["--keep-password"];
        args.extend_from_slice(flags);
        let out = g.migrate(&pw, &args).get_output().clone();
        assert!(
            out.status.success(),
            "{openssl_args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        g.assert_vault_matches_the_tree(&pw);
    }
}

#[test]
fn an_unusual_iteration_count_needs_its_flag_and_the_error_says_so() {
    let g = Guide::new(&["-pbkdf2", "-iter", "5000"], "pass:pw");
    let pw = pw_file(g.dir.path(), "pw", b"pw\n");
    let before = listing(g.dir.path());
    g.migrate(&pw, &["--keep-password"]).code(3).stderr(predicate::str::ends_with(format!(
        "error: the password does not open {} (tried openssl -pbkdf2 -iter 100000 -md sha256; \
         -pbkdf2 -iter 10000 -md sha256; -md sha256 (no -pbkdf2); -md md5 (no -pbkdf2))\n  \
         hint: check the password; if the file was made with other options pass them (--iter N, --md sha256|sha1|md5, --no-pbkdf2); \
         made with an OpenSSL older than 1.1.0? try --md md5 --no-pbkdf2\n",
        g.legacy().display()
    )));
    g.assert_nothing_written(&before);
}

#[test]
fn password_files_are_read_as_openssl_reads_them() {
    // Made with `-pass file:` from a CRLF file: the password ends in CR.
    let g = Guide::new(&["-pbkdf2", "-iter", "100000"], "pass:placeholder");
    let crlf = pw_file(g.dir.path(), "crlf", b"crlf password\r\n");
    Guide::encrypt_again(&g, &format!("file:{}", crlf.display()));
    g.migrate(&crlf, &["--keep-password"])
        .success()
        .stderr(predicate::str::contains("ends in CR"))
        // The kept legacy file opens with the same password, at openssl's cost.
        .stderr(predicate::str::contains(
            "secrets.enc.migrated opens with the same password",
        ));
    // The new vault's password is one a user can give again: the same
    // CRLF file, the line typed on stdin, an LF file. (On 4212b1f it was
    // "crlf password\r", which none of them produces: locked out.)
    g.assert_vault_matches_the_tree(&crlf);
    let lf = pw_file(g.dir.path(), "lf", b"crlf password\n");
    safeclaw()
        .args(["vault", "verify"])
        .arg(g.out())
        .arg("--password-file")
        .arg(&lf)
        .assert()
        .success();
    safeclaw()
        .args(["vault", "verify"])
        .arg(g.out())
        .arg("--password-stdin")
        .write_stdin("crlf password\n")
        .assert()
        .success();

    // Typed at openssl's prompt (no CR), given to us in a CRLF file.
    let g = Guide::new(&["-pbkdf2", "-iter", "100000"], "pass:typed password");
    let crlf = pw_file(g.dir.path(), "crlf", b"typed password\r\n");
    g.migrate(
        &crlf,
        &["--new-password-file", g.path("new-pw").to_str().unwrap()],
    )
    .success();
    g.assert_vault_matches_the_tree(&g.path("new-pw"));
}

impl Guide {
    /// Re-encrypts the reference tree's tar.gz over data/secrets.enc.
    fn encrypt_again(g: &Guide, pass: &str) {
        let root = g.path("openclaw-secure");
        run(Command::new("tar")
            .args(["-czf", "config.tar.gz", "-C"])
            .arg(g.path("reference"))
            .arg(".")
            .current_dir(&root));
        Guide::encrypt(&root, &["-pbkdf2", "-iter", "100000"], pass);
        fs::remove_file(root.join("config.tar.gz")).unwrap();
        fs::rename(root.join("secrets.enc"), root.join("data/secrets.enc")).unwrap();
    }
}

#[test]
fn wrong_password_writes_nothing() {
    let g = Guide::new(&["-pbkdf2", "-iter", "100000"], "pass:right");
    let wrong = pw_file(g.dir.path(), "wrong", b"wrong\n");
    let before = listing(g.dir.path());
    g.migrate(&wrong, &["--keep-password"])
        .code(3)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "\nerror: the password does not open {}",
            g.legacy().display()
        )));
    g.assert_nothing_written(&before);
}

#[test]
fn damaged_files_are_damage_and_write_nothing() {
    let g = Guide::new(&["-pbkdf2", "-iter", "100000"], "pass:pw");
    let pw = pw_file(g.dir.path(), "pw", b"pw\n");
    let good = fs::read(g.legacy()).unwrap();
    let len = good.len();
    // (bytes, expected stderr start)
    let truncated = "is damaged: the ciphertext is truncated (not a whole number of AES blocks)";
    let mut flipped = good.clone();
    flipped[len / 2] ^= 0x10;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good[..20].to_vec(), "is truncated: it ends before any data"),
        (good[..len - 5].to_vec(), truncated),
        (good[..len - 16].to_vec(), "is damaged"),
        (good[..len / 2 / 16 * 16].to_vec(), "is damaged"),
        (flipped, "is damaged"),
        (
            b"{\"gateway\": \"plaintext json\"}".to_vec(),
            "is not a file made by `openssl enc -salt`",
        ),
    ];
    for (bytes, expected) in cases {
        fs::write(g.legacy(), &bytes).unwrap();
        let before = listing(g.dir.path());
        let out = g
            .migrate(&pw, &["--keep-password"])
            .code(4)
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("\nerror: {}", g.legacy().display()))
                && stderr.contains(expected),
            "expected {expected:?}, got {stderr}"
        );
        assert_eq!(fs::read(g.legacy()).unwrap(), bytes, "legacy file changed");
        g.assert_nothing_written(&before);
    }
}

#[test]
fn hostile_entries_in_the_tar_gz_are_refused() {
    let cases = [
        (
            tar(&[
                entry("./", b'5', "", b""),
                entry("../x", b'0', "", b"pwned"),
            ]),
            "\"../x\" contains '..'",
        ),
        (
            tar(&[entry("/tmp/safeclaw-migrate-pwned", b'0', "", b"x")]),
            "is an absolute path",
        ),
        (
            tar(&[
                entry("./l", b'2', "../outside", b""),
                entry("./l/secret", b'0', "", b"pwned"),
            ]),
            "is under a non-directory",
        ),
    ];
    for (bytes, reason) in cases {
        let g = Guide::from_tar(bytes, "pass:pw");
        let pw = pw_file(g.dir.path(), "pw", b"pw\n");
        let before = listing(g.dir.path());
        g.migrate(&pw, &["--keep-password"])
            .code(4)
            .stderr(predicate::str::contains(format!(
                "error: {}: refused archive entry: ",
                g.legacy().display()
            )))
            .stderr(predicate::str::contains(reason));
        g.assert_nothing_written(&before);
    }
    assert!(!Path::new("/tmp/safeclaw-migrate-pwned").exists());
}

#[test]
fn leftovers_are_reported_and_remove_legacy_says_what_it_does() {
    let g = Guide::new(&["-pbkdf2", "-iter", "100000"], "pass:pw");
    let pw = pw_file(g.dir.path(), "pw", b"pw\n");
    fs::write(g.path("openclaw-secure/config.tar.gz"), "plaintext archive").unwrap();
    fs::write(g.path("openclaw-secure/data/openclaw.json"), "{}").unwrap();
    let secure = fs::canonicalize(g.path("openclaw-secure")).unwrap();
    g.migrate(&pw, &["--keep-password", "--remove-legacy", "--json"])
        .success()
        .stderr(predicate::str::contains(format!(
            "warning: plaintext left by the guide: {}",
            secure.join("config.tar.gz").display()
        )))
        .stderr(predicate::str::contains(format!(
            "warning: plaintext left by the guide: {}",
            secure.join("data/openclaw.json").display()
        )))
        .stderr(predicate::str::contains(
            "was deleted; on SSDs and copy-on-write filesystems its blocks may survive",
        ))
        .stdout(predicate::str::contains("\"verified\": true"));
    assert!(!g.legacy().exists());
    assert!(!g.path("openclaw-secure/data/secrets.enc.migrated").exists());
}

#[test]
fn the_default_output_is_the_private_home() {
    let g = Guide::new(&["-pbkdf2", "-iter", "100000"], "pass:pw");
    let pw = pw_file(g.dir.path(), "pw", b"pw\n");
    let home = g.path("home/.safeclaw");
    safeclaw()
        .env("SAFECLAW_HOME", &home)
        .args(["vault", "migrate", "--keep-password", "--password-file"])
        .arg(&pw)
        .arg(g.legacy().with_file_name("secrets.enc"))
        .args(FAST_KDF)
        .assert()
        .success();
    let meta = fs::metadata(&home).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o700
    );
    assert!(home.join("vault/openclaw.vault").is_file());
}

#[test]
fn garbage_that_passes_the_key_check_never_migrates() {
    // What a wrong key that slipped past the first-block check would give:
    // a gzip magic, then noise; and a valid gzip of something not tar.
    let mut noise = b"\x1f\x8b\x08\x00".to_vec();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    noise.extend((0..5000).map(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as u8
    }));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &noise[4..]).unwrap();
    let not_tar = gz.finish().unwrap();
    for (content, what) in [(noise, "not gzip"), (not_tar, "not tar")] {
        let dir = TempDir::new().unwrap();
        let root = dir.path().join("openclaw-secure");
        fs::create_dir_all(root.join("data")).unwrap();
        fs::write(root.join("config.tar.gz"), &content).unwrap();
        Guide::encrypt(&root, &["-pbkdf2", "-iter", "100000"], "pass:pw");
        fs::rename(root.join("secrets.enc"), root.join("data/secrets.enc")).unwrap();
        fs::remove_file(root.join("config.tar.gz")).unwrap();
        let g = Guide { dir };
        let pw = pw_file(g.dir.path(), "pw", b"pw\n");
        let before = listing(g.dir.path());
        let out = g
            .migrate(&pw, &["--keep-password"])
            .code(4)
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("error: {} is damaged", g.legacy().display())),
            "{what}: {stderr}"
        );
        g.assert_nothing_written(&before);
    }
}

/// Issue 12: a FIFO in place of `secrets.enc` hung `vault migrate` in
/// open(); it and a symbolic link are refused at once, nothing written.
#[test]
fn a_fifo_or_a_link_in_place_of_the_legacy_file_is_refused_at_once() {
    let dir = TempDir::new().unwrap();
    let pw = write_password(dir.path(), "pw", "guide password");
    let fifo = dir.path().join("secrets.enc");
    mkfifo(&fifo);
    let link = dir.path().join("link.enc");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    for (legacy, expected) in [
        (&fifo, "is a FIFO (named pipe), not a regular file"),
        (&link, "is a symbolic link"),
    ] {
        safeclaw()
            .args(["vault", "migrate"])
            .arg(legacy)
            .arg("--out")
            .arg(dir.path().join("v.vault"))
            .arg("--password-file")
            .arg(&pw)
            .args(FAST_KDF)
            .timeout(std::time::Duration::from_secs(10))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!(
                "error: {} {expected}\n",
                legacy.display()
            )));
    }
    assert!(!dir.path().join("v.vault").exists());
}

/// As a guide user types it, in `openclaw-secure/`: the legacy file, the
/// new vault and the password files as relative paths.
#[test]
fn relative_paths_from_the_guides_directory() {
    let g = Guide::new(&["-pbkdf2", "-iter", "100000"], "pass:guide password");
    pw_file(g.dir.path(), "pw", b"guide password\n");
    private_dir(&g.path("vaults"));
    safeclaw()
        .current_dir(g.path("openclaw-secure"))
        .args([
            "vault",
            "migrate",
            "data/secrets.enc",
            "--out",
            "../vaults/m.vault",
        ])
        .args([
            "--password-file",
            "../pw",
            "--new-password-file",
            "../new-pw",
        ])
        .args(FAST_KDF)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "the legacy file is now {}",
            fs::canonicalize(g.path("openclaw-secure"))
                .unwrap()
                .join("data/secrets.enc.migrated")
                .display()
        )));
    assert!(g.path("vaults/m.vault").is_file());
    assert!(!g.path("openclaw-secure/m.vault").exists());
}

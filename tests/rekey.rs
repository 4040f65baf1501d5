//! `vault passwd` and `vault rekey` revoke: after them no file safeclaw
//! leaves behind opens with the old password, and no key obtainable with
//! the old password opens any generation, kept or written afterwards.
//! (On 4212b1f passwd only rewrapped the current file's slot: the old
//! password still opened every `.gN`, and the data key never changed.)

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use predicates::prelude::*;
use safeclaw::error::Class;
use safeclaw::password::Password;
use safeclaw::vault::{self, crypto::DataKey, VaultFile};
use tempfile::TempDir;

const OLD: &str = "old horse";
const NEW: &str = "new battery";

/// A vault at generation 4 with generations 1 to 3 kept beside it, and a
/// copy of generation 4 made before any password change (a backup).
struct Setup {
    dir: TempDir,
}

impl Setup {
    fn new() -> Self {
        let dir = TempDir::new().unwrap();
        let p = dir.path();
        openclaw_like_tree(&p.join("state"));
        write_password(p, "old", OLD);
        write_password(p, "new", NEW);
        private_dir(&p.join("vault"));
        let s = Setup { dir };
        create_vault(&s.path("state"), &s.vault(), &s.path("old"));
        let key = s.key_of(&s.vault(), OLD).unwrap();
        for _ in 0..3 {
            vault::seal_next_generation(&s.vault(), &key, &s.path("state"), 5, &Default::default())
                .unwrap();
        }
        fs::copy(s.vault(), s.path("backup.vault")).unwrap();
        s
    }

    fn vault(&self) -> PathBuf {
        self.dir.path().join("vault/v.vault")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The vault and every kept generation.
    fn files(&self) -> Vec<PathBuf> {
        let mut all = vec![self.vault()];
        all.extend(
            vault::generations::older(&self.vault())
                .unwrap()
                .into_iter()
                .map(|(_, p)| p),
        );
        all
    }

    /// `vault passwd` to the password in "new", with the one in `current`.
    fn passwd(&self, current: &str) -> assert_cmd::assert::Assert {
        safeclaw()
            .args(["vault", "passwd"])
            .arg(self.vault())
            .arg("--password-file")
            .arg(self.path(current))
            .arg("--new-password-file")
            .arg(self.path("new"))
            .args(FAST_KDF)
            .assert()
    }

    /// `vault rekey --drop-generations` with the old password.
    fn rekey_dropping(&self, global: &[&str]) -> assert_cmd::assert::Assert {
        safeclaw()
            .args(global)
            .args(["vault", "rekey"])
            .arg(self.vault())
            .arg("--password-file")
            .arg(self.path("old"))
            .arg("--drop-generations")
            .args(FAST_KDF)
            .assert()
    }

    fn key_of(&self, file: &Path, password: &str) -> Result<DataKey, Class> {
        VaultFile::open(file)
            .unwrap()
            .unlock(&Password::new(password.as_bytes()).unwrap())
            .map(|(k, _)| k)
            .map_err(|e| e.class)
    }
}

fn opens_with_key(file: &Path, key: &DataKey) -> bool {
    VaultFile::open(file).unwrap().authenticate(key).is_ok()
}

#[test]
fn passwd_revokes_the_old_password_and_the_old_key_everywhere() {
    let s = Setup::new();
    let old_key = s.key_of(&s.path("backup.vault"), OLD).unwrap();
    assert_eq!(s.files().len(), 4);
    s.passwd("old")
        .success()
        .stdout(predicate::str::contains("3 kept generation(s) re-sealed"));

    let files = s.files();
    assert_eq!(files.len(), 4, "kept generations are re-sealed, not lost");
    let new_key = s.key_of(&s.vault(), NEW).unwrap();
    for (i, file) in files.iter().enumerate() {
        assert_eq!(
            s.key_of(file, OLD).err(),
            Some(Class::WrongPassword),
            "{file:?}"
        );
        assert!(
            !opens_with_key(file, &old_key),
            "{file:?} opens with the old key"
        );
        assert!(opens_with_key(file, &new_key), "{file:?}");
        // Same generation numbers and content as before.
        let g = VaultFile::open(file).unwrap().header().generation;
        assert_eq!(g, 4 - i as u64);
        let out = s.path(&format!("out{g}"));
        export_cmd(file, &out, s.path("new")).assert().success();
        assert_eq!(snapshot(&out), snapshot(&s.path("state")));
    }

    // A generation written afterwards (as the guard does, with the key the
    // new password gives) does not open with the key the old one gave.
    let next = vault::seal_next_generation(
        &s.vault(),
        &new_key,
        &s.path("state"),
        5,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(next, 5);
    assert!(!opens_with_key(&s.vault(), &old_key));
    // The backup made before still opens with the old password: that is
    // what the command says it cannot reach.
    assert!(s.key_of(&s.path("backup.vault"), OLD).is_ok());
}

#[test]
fn rekey_keeps_the_password_and_can_drop_the_kept_generations() {
    let s = Setup::new();
    let old_key = s.key_of(&s.vault(), OLD).unwrap();
    let out = s.rekey_dropping(&["--json"]).success();
    let result: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        result["kept_generations"]["deleted"],
        serde_json::json!([3, 2, 1])
    );
    assert_eq!(s.files(), vec![s.vault()]);
    let new_key = s.key_of(&s.vault(), OLD).unwrap();
    assert_ne!(new_key.as_bytes(), old_key.as_bytes());
    assert!(!opens_with_key(&s.vault(), &old_key));
}

#[test]
fn a_kept_file_that_is_not_under_the_key_is_left_and_named() {
    let s = Setup::new();
    // A planted "generation": another vault, another key.
    let planted = vault::generations::path_of(&s.vault(), 9);
    create_vault(&s.path("state"), &planted, &s.path("new"));
    s.passwd("old")
        .success()
        .stderr(predicate::str::contains("generation 9"))
        .stderr(predicate::str::contains("was left as it is"));
    // Untouched: it still opens with what opened it before, and nothing
    // else of the vault opens with the old password.
    assert!(s.key_of(&planted, NEW).is_ok());
    for file in s.files().iter().filter(|f| **f != planted) {
        assert_eq!(s.key_of(file, OLD).err(), Some(Class::WrongPassword));
    }
}

#[test]
fn wrong_old_password_changes_nothing() {
    let s = Setup::new();
    let before: Vec<Vec<u8>> = s.files().iter().map(|f| fs::read(f).unwrap()).collect();
    s.passwd("new").code(3);
    let after: Vec<Vec<u8>> = s.files().iter().map(|f| fs::read(f).unwrap()).collect();
    assert_eq!(before, after);
}

/// A damaged current file stops the rekey before any kept generation is
/// touched: with `--drop-generations` they would otherwise be deleted and
/// only the damaged file left (found by review).
#[test]
fn a_damaged_current_file_touches_no_kept_generation() {
    let s = Setup::new();
    let mut bytes = fs::read(s.vault()).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 1;
    fs::write(s.vault(), &bytes).unwrap();
    let before: Vec<Vec<u8>> = s.files().iter().map(|f| fs::read(f).unwrap()).collect();
    s.rekey_dropping(&[]).code(4);
    let after: Vec<Vec<u8>> = s.files().iter().map(|f| fs::read(f).unwrap()).collect();
    assert_eq!(before.len(), 4);
    assert_eq!(before, after);
    let names: Vec<String> = fs::read_dir(s.path("vault"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // The vault's files and its one blob store: none for the new key left.
    let stores = names
        .iter()
        .filter(|n| n.starts_with(vault::blobs::STORE_PREFIX))
        .count();
    assert_eq!((names.len(), stores), (5, 1), "temporaries left: {names:?}");
}

/// A kept generation under the old key whose payload is damaged cannot be
/// re-sealed; left there it would still open with the old password, so it
/// is deleted and said. A temporary a killed seal or rekey left (a whole
/// copy under the old key) goes too (found by review).
#[test]
fn a_damaged_kept_generation_and_stale_copies_do_not_outlive_the_old_password() {
    let s = Setup::new();
    let g1 = vault::generations::path_of(&s.vault(), 1);
    let bytes = fs::read(&g1).unwrap();
    fs::write(&g1, &bytes[..bytes.len() - 1]).unwrap();
    let staged = s.path("vault/v.vault.g2.tmp-0123456789ab");
    let hidden = s.path("vault/.v.vault.g3.tmp-0123456789ab");
    fs::copy(vault::generations::path_of(&s.vault(), 2), &staged).unwrap();
    fs::copy(vault::generations::path_of(&s.vault(), 3), &hidden).unwrap();
    s.passwd("old")
        .success()
        .stderr(predicate::str::contains("generation 1 was damaged"))
        .stderr(predicate::str::contains("it was deleted"));
    assert!(!g1.exists() && !staged.exists() && !hidden.exists());
    // The new key's blob store; the old key's is gone.
    let (stores, left): (Vec<PathBuf>, Vec<PathBuf>) = fs::read_dir(s.path("vault"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .partition(|p| p.is_dir());
    assert_eq!((left.len(), stores.len()), (3, 1), "{left:?} {stores:?}");
    for file in left {
        assert_eq!(
            s.key_of(&file, OLD).err(),
            Some(Class::WrongPassword),
            "{file:?}"
        );
    }
}

/// The secrets slot survives a password change, sealed again under the new
/// master key: `secrets list` reads it with the new password, and nothing
/// the old password opens (the backup made before) opens it now.
#[test]
fn passwd_carries_the_secrets_under_the_new_master_key() {
    let s = Setup::new();
    let key_file = pw_file(s.dir.path(), "key", b"sk-ant-api03-KEEPME\n");
    safeclaw()
        .args(["secrets", "set", "anthropic", "--vault-only", "--from-file"])
        .arg(&key_file)
        .arg("--vault")
        .arg(s.vault())
        .arg("--password-file")
        .arg(s.path("old"))
        .assert()
        .success();
    let list = |password: &str| secrets_list(safeclaw(), Some(&s.vault()), &s.path(password));
    let before = list("old");
    s.passwd("old").success();
    let after = list("new");
    assert_eq!(before["secrets"], after["secrets"], "{after}");
    let v = VaultFile::open(&s.vault()).unwrap();
    assert_eq!(v.header().version, vault::format::VERSION);
    let keys = v
        .unlock_keys(&Password::new(NEW.as_bytes()).unwrap())
        .unwrap();
    let section = v.secrets_section().unwrap();
    let plain = keys.secrets_key().unwrap().open(section).unwrap();
    assert!(String::from_utf8_lossy(&plain).contains("sk-ant-api03-KEEPME"));
    // The data key (what a guard holds) opens neither the section nor
    // gives the master key.
    let as_secrets_key =
        vault::crypto::MasterKey::from(zeroize::Zeroizing::new(*keys.data.as_bytes()))
            .secrets_key();
    assert!(as_secrets_key.open(section).is_none());
}

/// A version 2 vault (its slot wraps the data key, which its guard holds)
/// cannot keep secrets; `vault rekey` moves it and its kept generations to
/// the current version (a master key since 3), after which it can.
#[test]
fn rekey_moves_a_version_2_vault_to_a_master_key() {
    let dir = TempDir::new().unwrap();
    let p = dir.path();
    openclaw_like_tree(&p.join("state"));
    write_password(p, "pw", OLD);
    private_dir(&p.join("vault"));
    let path = p.join("vault/v.vault");
    let master = vault::crypto::MasterKey::generate();
    let key = master.data_key();
    let mut header = vault::new_header(
        &master,
        &Password::new(OLD.as_bytes()).unwrap(),
        vault::format::KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        },
    );
    header.version = 2;
    header.slots = vec![vault::format::Slot::Password(
        vault::crypto::wrap_with_password(
            key.as_bytes(),
            vault::crypto::Wraps::DataKey,
            OLD.as_bytes(),
            vault::format::KdfParams {
                m_kib: 64,
                t: 1,
                p: 1,
            },
        ),
    )];
    let state = p.join("state");
    vault::write(&path, vault::Replace::Never, &key, &header, |w| {
        vault::archive::pack(&state, &Default::default(), w, &mut |_| {}).map(|_| ())
    })
    .unwrap();
    // A guard's seal keeps version 2: its slot still wraps the data key.
    vault::seal_next_generation(&path, &key, &state, 5, &Default::default()).unwrap();
    assert_eq!(VaultFile::open(&path).unwrap().header().version, 2);
    let set = || {
        safeclaw()
            .args([
                "secrets",
                "set",
                "openai",
                "--vault-only",
                "--from-stdin",
                "--vault",
            ])
            .arg(&path)
            .arg("--password-file")
            .arg(p.join("pw"))
            .write_stdin("sk-proj-REAL\n")
            .assert()
    };
    set()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot keep secrets from the gateway",
        ))
        .stderr(predicate::str::contains("vault rekey"));
    safeclaw()
        .args(["vault", "rekey"])
        .arg(&path)
        .arg("--password-file")
        .arg(p.join("pw"))
        .args(FAST_KDF)
        .assert()
        .success();
    for file in [path.clone(), vault::generations::path_of(&path, 1)] {
        let v = VaultFile::open(&file).unwrap();
        assert_eq!(v.header().version, vault::format::VERSION, "{file:?}");
        let keys = v
            .unlock_keys(&Password::new(OLD.as_bytes()).unwrap())
            .unwrap();
        assert!(keys.master.is_some());
        assert!(
            !opens_with_key(&file, &key),
            "{file:?} opens with the old key"
        );
    }
    set().success();
    let out = p.join("out");
    export_cmd(&path, &out, p.join("pw")).assert().success();
    assert_eq!(snapshot(&out), snapshot(&state));
}

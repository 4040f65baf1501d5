//! Version 4's blob store (docs/vault-format.md, "Blobs"): generations
//! share the blocks of their large files, a seal writes only the blocks
//! the store lacks, what no file references any more goes, and the store
//! is read as hostile (it lives where the container can write).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use safeclaw::error::Class;
use safeclaw::password::Password;
use safeclaw::vault::{self, blobs, crypto::DataKey, format, VaultFile};
use tempfile::TempDir;

const PW: &str = "blob horse";
const MIB: usize = 1 << 20;

/// A vault made by `vault create` in a directory of its own, of a tree
/// with a 3.5 MiB file of noise (4 blocks), a 20 KiB note (1 block) and
/// small inline files.
struct Setup {
    dir: TempDir,
    key: DataKey,
}

impl Setup {
    fn new() -> Self {
        let dir = TempDir::new().unwrap();
        let p = dir.path();
        fs::create_dir_all(p.join("state/memory")).unwrap();
        fs::write(p.join("state/db.sqlite"), noise(7 * MIB / 2, 1)).unwrap();
        fs::write(p.join("state/memory/note.md"), vec![b'n'; 20 * 1024]).unwrap();
        fs::write(p.join("state/config.json"), b"{\"small\": true}").unwrap();
        write_password(p, "pw", PW);
        private_dir(&p.join("vault"));
        create_vault(&p.join("state"), &p.join("vault/v.vault"), &p.join("pw"));
        let key = VaultFile::open(&p.join("vault/v.vault"))
            .unwrap()
            .unlock(&Password::new(PW.as_bytes()).unwrap())
            .unwrap()
            .0;
        Setup { dir, key }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn vault(&self) -> PathBuf {
        self.path("vault/v.vault")
    }

    fn store(&self) -> PathBuf {
        blobs::store_path(&self.path("vault"), &self.key.blob_keys())
    }

    fn blobs(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.store())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Rewrites 1 MiB of the big file in place (its second block).
    fn change_one_block(&self, seed: u64) {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(self.path("state/db.sqlite"))
            .unwrap();
        f.seek(SeekFrom::Start(MIB as u64)).unwrap();
        f.write_all(&noise(MIB, seed)).unwrap();
    }

    fn seal(&self, keep: usize) -> u64 {
        vault::seal_next_generation(
            &self.vault(),
            &self.key,
            &self.path("state"),
            keep,
            &Default::default(),
        )
        .unwrap()
    }

    /// `vault export` of `file` into `to`: the assertion.
    fn export(&self, file: &Path, to: &str) -> assert_cmd::assert::Assert {
        export_cmd(file, self.path(to), self.path("pw")).assert()
    }

    fn verify(&self, file: &Path) -> Result<(), (Class, String)> {
        VaultFile::open(file)
            .unwrap()
            .verify(&self.key, |_| {})
            .map(|_| ())
            .map_err(|e| (e.class, e.message))
    }
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    common::noise(len, seed)
}

#[test]
fn large_files_go_to_the_store_and_come_back_whole() {
    let s = Setup::new();
    let v = VaultFile::open(&s.vault()).unwrap();
    assert_eq!(v.header().version, format::VERSION);
    assert_eq!(format::VERSION, 4);
    // 4 blocks of the big file and 1 of the note; the small file inline.
    assert_eq!(s.blobs().len(), 5, "{:?}", s.blobs());
    assert!(
        fs::metadata(s.vault()).unwrap().len() < 16 * 1024,
        "the vault file holds references, not the 3.5 MiB"
    );
    let mode = fs::metadata(s.store()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    for blob in s.blobs() {
        let mode = fs::metadata(s.store().join(&blob))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{blob}");
    }
    s.export(&s.vault(), "out").success();
    assert_eq!(snapshot(&s.path("state")), snapshot(&s.path("out")));
}

#[test]
fn a_generation_costs_the_blocks_that_changed() {
    let s = Setup::new();
    let before = s.blobs();
    s.change_one_block(2);
    let g2 = s.seal(5);
    assert_eq!(g2, 2);
    let after = s.blobs();
    assert_eq!(after.len(), before.len() + 1, "one new block: {after:?}");
    assert!(
        before.iter().all(|b| after.contains(b)),
        "generation 1 keeps its blocks"
    );
    // Nothing changed: nothing new.
    s.seal(5);
    assert_eq!(s.blobs(), after);

    // Each generation exports as it was sealed.
    let g1 = vault::generations::path_of(&s.vault(), 1);
    s.export(&g1, "g1").success();
    s.export(&s.vault(), "g3").success();
    assert_eq!(
        fs::read(s.path("g3/db.sqlite")).unwrap(),
        fs::read(s.path("state/db.sqlite")).unwrap()
    );
    let old = fs::read(s.path("g1/db.sqlite")).unwrap();
    assert_eq!(&old[MIB..2 * MIB], &noise(7 * MIB / 2, 1)[MIB..2 * MIB]);
    assert_ne!(old, fs::read(s.path("state/db.sqlite")).unwrap());
}

#[test]
fn generations_and_info_show_the_store_without_a_password() {
    let s = Setup::new();
    s.change_one_block(2);
    s.seal(5);
    let out = generations_json(&s.vault());
    assert_eq!(out["generations"].as_array().unwrap().len(), 2);
    let stores = out["blob_stores"].as_array().unwrap();
    assert_eq!(stores.len(), 1, "{out}");
    assert_eq!(stores[0]["blocks"], 6);
    assert!(stores[0]["bytes"].as_u64().unwrap() > 4 * MIB as u64);
    safeclaw()
        .args(["vault", "info"])
        .arg(s.vault())
        .assert()
        .success()
        .stdout(predicates::str::contains("back up the whole directory"));
}

#[test]
fn blocks_no_kept_generation_references_are_removed() {
    let s = Setup::new();
    let first = s.blobs();
    s.change_one_block(2);
    s.seal(1); // keeps generation 1
    s.change_one_block(4);
    s.seal(1); // keeps generation 2 only: generation 1's changed block goes
    let now = s.blobs();
    assert_eq!(now.len(), first.len() + 1, "{now:?}");
    assert!(s.verify(&s.vault()).is_ok());
    assert!(s
        .verify(&vault::generations::path_of(&s.vault(), 2))
        .is_ok());
    // No temporaries left behind.
    assert!(now.iter().all(|b| b.len() == 64), "{now:?}");
}

#[test]
fn nothing_is_removed_while_a_kept_file_cannot_be_read() {
    let s = Setup::new();
    s.change_one_block(2);
    s.seal(5);
    let before = s.blobs();
    // A kept file whose payload is damaged: its references are unknown.
    let g1 = vault::generations::path_of(&s.vault(), 1);
    let mut bytes = fs::read(&g1).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::remove_file(&g1).unwrap();
    fs::write(&g1, &bytes).unwrap();
    let err = blobs::collect_garbage(&s.path("vault"), &s.key).unwrap_err();
    assert_eq!(err.class, Class::Damaged);
    assert_eq!(s.blobs(), before);
    // Gone altogether, it holds nothing back.
    fs::remove_file(&g1).unwrap();
    let collected = blobs::collect_garbage(&s.path("vault"), &s.key).unwrap();
    assert_eq!(collected.removed, 1);
}

#[test]
fn a_missing_or_changed_blob_is_damage_and_nothing_is_exported() {
    let s = Setup::new();
    let blobs = s.blobs();
    let (a, b) = (s.store().join(&blobs[0]), s.store().join(&blobs[1]));

    // Swapped for another blob of the same store.
    let saved = fs::read(&a).unwrap();
    fs::copy(&b, &a).unwrap();
    let (class, message) = s.verify(&s.vault()).unwrap_err();
    assert_eq!(class, Class::Damaged);
    assert!(message.contains("does not authenticate"), "{message}");
    s.export(&s.vault(), "out1")
        .code(4)
        .stderr(predicates::str::contains(
            "restore the vault's whole directory",
        ));
    assert!(!s.path("out1").exists());

    // A flipped bit.
    let mut flipped = saved.clone();
    flipped[20] ^= 1;
    fs::write(&a, &flipped).unwrap();
    assert_eq!(s.verify(&s.vault()).unwrap_err().0, Class::Damaged);

    // Missing.
    fs::remove_file(&a).unwrap();
    let (class, message) = s.verify(&s.vault()).unwrap_err();
    assert_eq!(class, Class::Damaged);
    assert!(message.contains("missing"), "{message}");

    // A link to the real blob elsewhere is not followed.
    fs::write(s.path("elsewhere"), &saved).unwrap();
    std::os::unix::fs::symlink(s.path("elsewhere"), &a).unwrap();
    let (class, message) = s.verify(&s.vault()).unwrap_err();
    assert_eq!(class, Class::Damaged);
    assert!(message.contains("symbolic link"), "{message}");

    // A FIFO does not hang the reader.
    fs::remove_file(&a).unwrap();
    mkfifo(&a);
    assert_eq!(s.verify(&s.vault()).unwrap_err().0, Class::Damaged);

    // Larger than any blob can be: refused before it is read.
    fs::remove_file(&a).unwrap();
    let f = fs::File::create(&a).unwrap();
    f.set_len(64 * MIB as u64).unwrap();
    let (class, message) = s.verify(&s.vault()).unwrap_err();
    assert_eq!(class, Class::Damaged);
    assert!(message.contains("larger"), "{message}");

    // Put back, all is well.
    fs::remove_file(&a).unwrap();
    fs::write(&a, &saved).unwrap();
    assert!(s.verify(&s.vault()).is_ok());
}

#[test]
fn a_store_that_is_a_link_or_missing_is_damage() {
    let s = Setup::new();
    let store = s.store();
    let moved = s.path("moved-store");
    fs::rename(&store, &moved).unwrap();
    let (class, message) = s.verify(&s.vault()).unwrap_err();
    assert_eq!(class, Class::Damaged);
    assert!(message.contains("blob store"), "{message}");
    std::os::unix::fs::symlink(&moved, &store).unwrap();
    let (class, message) = s.verify(&s.vault()).unwrap_err();
    assert_eq!(class, Class::Damaged);
    assert!(message.contains("not a directory"), "{message}");
    // A seal does not write through it either.
    s.change_one_block(9);
    let err =
        vault::seal_next_generation(&s.vault(), &s.key, &s.path("state"), 5, &Default::default())
            .unwrap_err();
    assert!(err.message.contains("blob store"), "{}", err.message);
    assert_eq!(VaultFile::open(&s.vault()).unwrap().header().generation, 1);
}

#[test]
fn a_version_3_vault_opens_and_its_next_generation_is_version_4() {
    let dir = TempDir::new().unwrap();
    let p = dir.path();
    fs::create_dir_all(p.join("state")).unwrap();
    fs::write(p.join("state/big"), noise(2 * MIB + 5, 4)).unwrap();
    fs::write(p.join("state/small"), b"small").unwrap();
    private_dir(&p.join("vault"));
    let path = p.join("vault/v.vault");
    // Version 3 as it was written: the whole state in the file.
    let master = vault::crypto::MasterKey::generate();
    let key = master.data_key();
    let password = Password::new(PW.as_bytes()).unwrap();
    let mut header = vault::new_header(&master, &password, FAST);
    header.version = 3;
    let tree = vault::archive::OpenTree::open(&p.join("state")).unwrap();
    vault::write(&path, vault::Replace::Never, &key, &header, |w| {
        vault::archive::pack_tree(&tree, &Default::default(), w, &mut |_| {}).map(|_| ())
    })
    .unwrap();
    // Written by this build, version 3 is still inline: no store.
    let store = blobs::store_path(&p.join("vault"), &key.blob_keys());
    assert!(!store.exists());
    assert!(fs::metadata(&path).unwrap().len() > 2 * MIB as u64);
    write_password(p, "pw", PW);
    export_cmd(&path, p.join("out3"), p.join("pw"))
        .assert()
        .success();
    assert_eq!(snapshot(&p.join("state")), snapshot(&p.join("out3")));

    vault::seal_next_generation(&path, &key, &p.join("state"), 5, &Default::default()).unwrap();
    let next = VaultFile::open(&path).unwrap();
    assert_eq!(next.header().version, 4);
    assert!(store.is_dir());
    assert!(fs::metadata(&path).unwrap().len() < 64 * 1024);
    export_cmd(&path, p.join("out4"), p.join("pw"))
        .assert()
        .success();
    assert_eq!(snapshot(&p.join("state")), snapshot(&p.join("out4")));
    // The kept version 3 file still opens, from itself alone.
    let g1 = vault::generations::path_of(&path, 1);
    assert_eq!(VaultFile::open(&g1).unwrap().header().version, 3);
    export_cmd(&g1, p.join("out-g1"), p.join("pw"))
        .assert()
        .success();
}

#[test]
fn a_standalone_copy_needs_no_store() {
    let s = Setup::new();
    let copy = s.path("saved.vault");
    vault::copy_standalone(&s.vault(), &s.key, 1, &copy).unwrap();
    assert!(fs::metadata(&copy).unwrap().len() > 3 * MIB as u64);
    fs::rename(s.store(), s.path("gone")).unwrap();
    s.export(&copy, "out").success();
    assert_eq!(snapshot(&s.path("state")), snapshot(&s.path("out")));
    // Of the generation asked for only.
    let err = vault::copy_standalone(&s.vault(), &s.key, 2, &s.path("other.vault")).unwrap_err();
    assert_eq!(err.class, Class::Damaged);
    assert!(!s.path("other.vault").exists());
}

#[test]
fn rekey_moves_every_generation_to_a_new_store_and_removes_the_old() {
    let s = Setup::new();
    s.change_one_block(2);
    s.seal(5);
    let old_store = s.store();
    write_password(s.dir.path(), "new", "new battery");
    safeclaw()
        .args(["vault", "passwd"])
        .arg(s.vault())
        .arg("--password-file")
        .arg(s.path("pw"))
        .arg("--new-password-file")
        .arg(s.path("new"))
        .args(FAST_KDF)
        .assert()
        .success();
    assert!(!old_store.exists(), "the old key's store is gone");
    let key = VaultFile::open(&s.vault())
        .unwrap()
        .unlock(&Password::new(b"new battery").unwrap())
        .unwrap()
        .0;
    let new_store = blobs::store_path(&s.path("vault"), &key.blob_keys());
    assert_eq!(fs::read_dir(&new_store).unwrap().count(), 6);
    let g1 = vault::generations::path_of(&s.vault(), 1);
    export_cmd(&g1, s.path("g1"), s.path("new"))
        .assert()
        .success();
    export_cmd(s.vault(), s.path("g2"), s.path("new"))
        .assert()
        .success();
    assert_eq!(snapshot(&s.path("state")), snapshot(&s.path("g2")));
}

#[test]
fn large_records_round_trip_and_a_records_change_writes_no_block() {
    let s = Setup::new();
    let big = noise(100 * 1024, 5);
    vault::rewrite_records(&s.vault(), &s.key, 5, |r| r.set("skill.big", big.clone())).unwrap();
    let before = s.blobs();
    vault::rewrite_records(&s.vault(), &s.key, 5, |r| {
        r.set("egress.json", b"{}".to_vec())
    })
    .unwrap();
    assert_eq!(s.blobs(), before);
    let records = VaultFile::open(&s.vault())
        .unwrap()
        .records(&s.key)
        .unwrap();
    assert_eq!(records.get("skill.big").map(|v| v.to_vec()), Some(big));
    assert!(s.verify(&s.vault()).is_ok());
}

const FAST: format::KdfParams = format::KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

#[test]
fn a_seal_writes_again_a_blob_someone_overwrote() {
    let s = Setup::new();
    // The container cannot make a blob, but it can ruin one; a seal must
    // not reference it as it is.
    let victim = s.store().join(&s.blobs()[0]);
    let len = fs::metadata(&victim).unwrap().len() as usize;
    fs::write(&victim, vec![0u8; len]).unwrap();
    assert_eq!(s.verify(&s.vault()).unwrap_err().0, Class::Damaged);
    s.seal(5);
    assert!(
        s.verify(&s.vault()).is_ok(),
        "the seal wrote the block again"
    );
    // Generation 1 references the same block: whole again too.
    assert!(s
        .verify(&vault::generations::path_of(&s.vault(), 1))
        .is_ok());
}

#[test]
fn rekey_stops_rather_than_delete_a_generation_whose_store_is_missing() {
    let s = Setup::new();
    s.change_one_block(2);
    s.seal(5);
    let g1 = vault::generations::path_of(&s.vault(), 1);
    let g1_bytes = fs::read(&g1).unwrap();
    fs::rename(s.store(), s.path("store-aside")).unwrap();
    write_password(s.dir.path(), "new", "new battery");
    safeclaw()
        .args(["vault", "rekey"])
        .arg(s.vault())
        .arg("--password-file")
        .arg(s.path("pw"))
        .args(FAST_KDF)
        .assert()
        .code(4)
        .stderr(predicates::str::contains(
            "restore the vault's whole directory",
        ));
    // Nothing was deleted, and with the store back everything opens.
    assert_eq!(fs::read(&g1).unwrap(), g1_bytes);
    fs::rename(s.path("store-aside"), s.store()).unwrap();
    assert!(s.verify(&s.vault()).is_ok());
    assert!(s.verify(&g1).is_ok());
}

#[test]
fn the_vault_directory_may_hold_a_store_but_nothing_else_by_that_name() {
    let s = Setup::new();
    assert!(safeclaw::paths::check_dedicated_dir_of(&s.vault(), None).is_ok());
    // A file with the prefix is not a store: the container would get it.
    fs::write(s.path("vault/safeclaw-blobs-notes.txt"), b"mine").unwrap();
    let err = safeclaw::paths::check_dedicated_dir_of(&s.vault(), None).unwrap_err();
    assert!(
        err.message.contains("safeclaw-blobs-notes.txt"),
        "{}",
        err.message
    );
}

#[test]
fn garbage_collection_reads_a_file_once_however_many_links_it_has() {
    let s = Setup::new();
    for i in 0..5 {
        fs::hard_link(s.vault(), s.path(&format!("vault/v.vault.unverified-{i}"))).unwrap();
    }
    let collected = blobs::collect_garbage(&s.path("vault"), &s.key).unwrap();
    assert_eq!((collected.files, collected.removed), (1, 0));
}

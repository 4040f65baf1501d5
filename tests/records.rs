//! safeclaw's records in whole vaults: read from the payload's first
//! chunks only, changed on the host without touching the state, and
//! carried through `vault export` and `vault create`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use predicates::prelude::PredicateBooleanExt;
use safeclaw::error::{Class, Error};
use safeclaw::password::Password;
use safeclaw::vault::format::KdfParams;
use safeclaw::vault::{
    self, archive, crypto::DataKey, crypto::MasterKey, generations, Records, Replace, VaultFile,
    RECORDS_DIR,
};
use tempfile::TempDir;

const FAST: KdfParams = KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

fn password() -> Password {
    Password::new(b"correct horse").unwrap()
}

fn records() -> Records {
    let mut r = Records::new();
    r.set(
        "egress.json",
        br#"{"allow":["api.anthropic.com"]}"#.to_vec(),
    )
    .unwrap();
    r.set("broker.json", b"sk-ant-SECRET".to_vec()).unwrap();
    r
}

/// A vault at `dir/v.vault` of an OpenClaw-like state plus 3 MiB of
/// files small enough to stay in the payload (version 4 puts larger ones
/// in the blob store), sealed with `records`; returns its path and key.
fn sealed(dir: &Path, records: &Records) -> (PathBuf, DataKey) {
    let tree = dir.join("tree");
    openclaw_like_tree(&tree);
    fs::create_dir(tree.join("small")).unwrap();
    for i in 0..192 {
        let inline = vault::blobs::INLINE_MAX as usize;
        fs::write(
            tree.join(format!("small/{i}")),
            noise(inline, NOISE_SEED + 2 * i),
        )
        .unwrap();
    }
    let path = dir.join("v.vault");
    let master = MasterKey::generate();
    let key = master.data_key();
    let header = vault::new_header(&master, &password(), FAST);
    vault::write(&path, Replace::Never, &key, &header, |w| {
        archive::pack(&tree, records, w, &mut |_| {})
    })
    .unwrap();
    (path, key)
}

fn manifest(path: &Path, key: &DataKey) -> Vec<archive::Item> {
    let vault = VaultFile::open(path).unwrap();
    let mode = vault.records_dir();
    let payload = vault.payload(key, |_| {}).unwrap();
    archive::manifest(payload, mode).unwrap().1
}

#[test]
fn records_come_from_the_payloads_start_even_when_its_tail_is_cut() {
    let dir = TempDir::new().unwrap();
    let (path, key) = sealed(dir.path(), &records());
    let vault = VaultFile::open(&path).unwrap();
    assert_eq!(vault.records(&key).unwrap(), records());
    // The same handle still reads the whole payload after that.
    assert_eq!(vault.verify(&key, |_| {}).unwrap().records, 2);

    // Cut the last 200 KB: every chunk that is left still authenticates.
    let len = fs::metadata(&path).unwrap().len();
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 200_000).unwrap();
    let vault = VaultFile::open(&path).unwrap();
    assert_eq!(vault.records(&key).unwrap(), records());
    let err = vault.verify(&key, |_| {}).unwrap_err();
    assert_eq!(err.class, Class::Damaged, "{}", err.message);

    // A wrong key reads nothing.
    let err = VaultFile::open(&path)
        .unwrap()
        .records(&DataKey::generate())
        .unwrap_err();
    assert_eq!(err.class, Class::Damaged);
}

#[test]
fn a_vault_without_records_has_empty_records() {
    let dir = TempDir::new().unwrap();
    let (path, key) = sealed(dir.path(), &Records::new());
    assert!(VaultFile::open(&path)
        .unwrap()
        .records(&key)
        .unwrap()
        .is_empty());
}

#[test]
fn rewrite_records_changes_the_records_and_nothing_else() {
    let dir = TempDir::new().unwrap();
    let (path, key) = sealed(dir.path(), &records());
    let before = VaultFile::open(&path).unwrap().header().clone();
    let state = manifest(&path, &key);

    let generation = vault::rewrite_records(&path, &key, 5, |r| {
        assert_eq!(*r, records());
        r.set("egress.json", br#"{"allow":[]}"#.to_vec())?;
        assert!(r.remove("broker.json"));
        r.set("skills.json", b"[]".to_vec())
    })
    .unwrap();
    assert_eq!(generation, 2);

    let after = VaultFile::open(&path).unwrap();
    let h = after.header().clone();
    assert_eq!(h.generation, 2);
    assert_eq!((&h.slots, h.chunk_size), (&before.slots, before.chunk_size));
    assert_ne!(h.payload_salt, before.payload_salt);
    let got = after.records(&key).unwrap();
    assert_eq!(
        got.names().collect::<Vec<_>>(),
        ["egress.json", "skills.json"]
    );
    assert_eq!(got.get("egress.json"), Some(&br#"{"allow":[]}"#[..]));
    // The state is byte for byte the same (paths, modes, SHA-256, links).
    assert_eq!(manifest(&path, &key), state);
    assert!(!state.is_empty());
    VaultFile::open(&path)
        .unwrap()
        .verify(&key, |_| {})
        .unwrap();
    // The generation replaced is kept, with its own records.
    let kept = generations::path_of(&path, 1);
    assert_eq!(
        VaultFile::open(&kept).unwrap().records(&key).unwrap(),
        records()
    );
    assert_eq!(manifest(&kept, &key), state);
}

#[test]
fn a_failed_rewrite_leaves_the_vault_as_it_was() {
    let dir = TempDir::new().unwrap();
    let (path, key) = sealed(dir.path(), &records());
    let bytes = fs::read(&path).unwrap();
    let names = || listing(dir.path());
    let before = names();

    let err = vault::rewrite_records(&path, &key, 5, |_| Err(Error::failure("changed my mind")))
        .unwrap_err();
    assert_eq!(err.message, "changed my mind");
    let err = vault::rewrite_records(&path, &key, 5, |r| r.set("Not A Name", vec![])).unwrap_err();
    assert!(err.message.contains("cannot be stored"), "{}", err.message);
    let err = vault::rewrite_records(&path, &DataKey::generate(), 5, |_| Ok(())).unwrap_err();
    assert_eq!(err.class, Class::Damaged);
    // A payload damaged past the records: found only while copying, and
    // the current file is still not replaced.
    let mut cut = bytes.clone();
    cut.truncate(bytes.len() - 100_000);
    fs::write(&path, &cut).unwrap();
    let err = vault::rewrite_records(&path, &key, 5, |_| Ok(())).unwrap_err();
    assert_eq!(err.class, Class::Damaged, "{}", err.message);
    assert_eq!(fs::read(&path).unwrap(), cut);
    fs::write(&path, &bytes).unwrap();

    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(names(), before, "a temporary or a kept generation was left");
}

#[test]
fn rewrite_refuses_records_it_did_not_find_at_the_start() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("v.vault");
    let master = MasterKey::generate();
    let key = master.data_key();
    let header = vault::new_header(&master, &password(), FAST);
    // Not as safeclaw writes it: a record after a state entry.
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [("f", &b"state"[..]), (".safeclaw/late", &b"value"[..])] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        b.append_data(&mut h, name, data).unwrap();
    }
    let tar = b.into_inner().unwrap();
    vault::write(&path, Replace::Never, &key, &header, |w| {
        w.write_all(&tar).map_err(|e| Error::failure(e.to_string()))
    })
    .unwrap();
    let bytes = fs::read(&path).unwrap();
    assert!(VaultFile::open(&path)
        .unwrap()
        .records(&key)
        .unwrap()
        .is_empty());
    let err = vault::rewrite_records(&path, &key, 5, |_| Ok(())).unwrap_err();
    assert!(
        err.message.contains("after other entries"),
        "{}",
        err.message
    );
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert!(!generations::path_of(&path, 1).exists());
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn export_shows_the_records_and_create_reads_them_back() {
    let dir = TempDir::new().unwrap();
    let base = dir.path();
    let pw = write_password(base, "pw", "correct horse");
    let tree = base.join("tree");
    openclaw_like_tree(&tree);
    fs::create_dir(tree.join(RECORDS_DIR)).unwrap();
    fs::write(tree.join(".safeclaw/egress.json"), b"{\"allow\":[]}").unwrap();
    // As an export writes them, so the export below equals the tree.
    fs::set_permissions(tree.join(RECORDS_DIR), fs::Permissions::from_mode(0o700)).unwrap();
    let record = tree.join(".safeclaw/egress.json");
    fs::set_permissions(&record, fs::Permissions::from_mode(0o600)).unwrap();
    // Without --with-records the directory is left out, and said so: a
    // state dir the agent wrote could hold records it made.
    let plain = base.join("plain.vault");
    create_cmd(&tree, &plain)
        .arg("--password-file")
        .arg(&pw)
        .args(FAST_KDF)
        .assert()
        .success()
        .stderr(
            predicates::str::contains("left out")
                .and(predicates::str::contains("only with --with-records")),
        );
    let plain_key = VaultFile::open(&plain)
        .unwrap()
        .unlock(&password())
        .unwrap()
        .0;
    assert!(VaultFile::open(&plain)
        .unwrap()
        .records(&plain_key)
        .unwrap()
        .is_empty());
    let first = base.join("first.vault");
    create_vault_with_records(&tree, &first, &pw)
        .stdout(predicates::str::contains("and 1 record from .safeclaw/"))
        .stderr(predicates::str::contains("skipped").not());
    let key = VaultFile::open(&first)
        .unwrap()
        .unlock(&password())
        .unwrap()
        .0;
    let mut expected = Records::new();
    expected
        .set("egress.json", b"{\"allow\":[]}".to_vec())
        .unwrap();
    assert_eq!(
        VaultFile::open(&first).unwrap().records(&key).unwrap(),
        expected
    );
    // The state dir a guard would unpack into never gets them.
    let state = base.join("state");
    fs::create_dir(&state).unwrap();
    let (_, got) = VaultFile::open(&first)
        .unwrap()
        .unpack(&key, &state, |_| {})
        .unwrap();
    assert_eq!(got, expected);
    assert!(!state.join(RECORDS_DIR).exists());

    let out = base.join("out");
    export_cmd(&first, &out, &pw)
        .assert()
        .success()
        .stdout(predicates::str::contains("and 1 record (in .safeclaw/)"));
    assert_eq!(mode(&out.join(RECORDS_DIR)), 0o700);
    assert_eq!(mode(&out.join(".safeclaw/egress.json")), 0o600);
    // Not assert_eq: the tree's contents would fill the screen.
    assert!(
        snapshot(&out) == snapshot(&tree),
        "the export differs from the tree"
    );

    let second = base.join("second.vault");
    create_vault_with_records(&out, &second, &pw);
    let key = VaultFile::open(&second)
        .unwrap()
        .unlock(&password())
        .unwrap()
        .0;
    assert_eq!(
        VaultFile::open(&second).unwrap().records(&key).unwrap(),
        expected
    );
}

#[test]
fn create_refuses_a_records_dir_it_should_not_follow() {
    let dir = TempDir::new().unwrap();
    let base = dir.path();
    let pw = write_password(base, "pw", "correct horse");
    let tree = base.join("tree");
    openclaw_like_tree(&tree);
    std::os::unix::fs::symlink("/etc", tree.join(RECORDS_DIR)).unwrap();
    let out = base.join("v.vault");
    create_cmd(&tree, &out)
        .arg("--with-records")
        .arg("--password-file")
        .arg(&pw)
        .args(FAST_KDF)
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            ".safeclaw is not a directory (a symbolic link is not followed)",
        ));
    assert!(!out.exists());
}

/// A vault as safeclaw wrote before records existed (format version 1):
/// whatever stood under `/state/.safeclaw` was packed with the state, so
/// an agent could have planted an "open" policy there, or entries no
/// record may be. The version says they are the state's: never records,
/// never extracted, never a reason to refuse the vault; the next
/// generation (version 2) carries only the records safeclaw gives it.
#[test]
fn a_version_1_vault_s_safeclaw_is_the_state_s_never_records() {
    let dir = TempDir::new().unwrap();
    // Version 1: the slot wraps the data key itself.
    let master = MasterKey::generate();
    let key = master.data_key();
    let mut header = vault::new_header(&master, &password(), FAST);
    header.version = 1;
    header.slots = vec![vault::format::Slot::Password(
        vault::crypto::wrap_with_password(
            key.as_bytes(),
            vault::crypto::Wraps::DataKey,
            password().as_bytes(),
            FAST,
        ),
    )];
    let path = dir.path().join("v1.vault");
    let planted = br#"{"version":1,"open":true,"allow":["0.0.0.0/0:443"]}"#;
    vault::write(&path, Replace::Never, &key, &header, |w| {
        let mut b = tar::Builder::new(w);
        let mut add = |name: &str, kind: tar::EntryType, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(if kind == tar::EntryType::Directory {
                0o700
            } else {
                0o600
            });
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, data).unwrap();
        };
        add(".safeclaw", tar::EntryType::Directory, b"");
        add(".safeclaw/egress.json", tar::EntryType::Regular, planted);
        add(".safeclaw/sub", tar::EntryType::Directory, b"");
        add(".safeclaw/sub/Not-A-Record", tar::EntryType::Regular, b"x");
        add("openclaw.json", tar::EntryType::Regular, b"{}");
        b.into_inner()
            .map(|_| ())
            .map_err(|e| Error::failure(e.to_string()))
    })
    .unwrap();
    let v = VaultFile::open(&path).unwrap();
    assert_eq!(v.header().version, 1);
    assert!(v.records(&key).unwrap().is_empty());
    let out = dir.path().join("state");
    fs::create_dir(&out).unwrap();
    let (stats, got) = VaultFile::open(&path)
        .unwrap()
        .unpack(&key, &out, |_| {})
        .unwrap();
    assert!(got.is_empty());
    assert_eq!(stats.files, 1, "{stats:?}");
    assert_eq!(listing(&out), [PathBuf::from("openclaw.json")]);
    VaultFile::open(&path)
        .unwrap()
        .verify(&key, |_| {})
        .unwrap();

    let generation =
        vault::rewrite_records(&path, &key, 5, |r| r.set("egress.json", b"{}".to_vec())).unwrap();
    assert_eq!(generation, 2);
    let v = VaultFile::open(&path).unwrap();
    // Records now, and the same key schedule: the slot still wraps the
    // data key, so not version 3.
    assert_eq!(v.header().version, vault::format::RECORDS_VERSION);
    assert_eq!(v.unlock(&password()).unwrap().0.as_bytes(), key.as_bytes());
    let r = v.records(&key).unwrap();
    assert_eq!(r.names().collect::<Vec<_>>(), ["egress.json"]);
    assert_eq!(r.get("egress.json"), Some(&b"{}"[..]));
    let names: Vec<PathBuf> = manifest(&path, &key)
        .into_iter()
        .map(|i| match i {
            archive::Item::File { path, .. } | archive::Item::Dir { path, .. } => path,
            archive::Item::Symlink { path, .. } | archive::Item::Hardlink { path, .. } => path,
        })
        .collect();
    assert_eq!(names, [PathBuf::from("openclaw.json")]);
    // The old generation is still version 1, read the same way.
    let kept = generations::path_of(&path, 1);
    assert_eq!(VaultFile::open(&kept).unwrap().header().version, 1);
}

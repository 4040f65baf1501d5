//! Round trips over generated trees: whatever a directory holds (files of
//! any size, nested and empty dirs, unicode names, modes, symlinks inside
//! the tree), export gives back exactly the same tree.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::snapshot;
use proptest::prelude::*;
use safeclaw::password::Password;
use safeclaw::vault::format::KdfParams;
use safeclaw::vault::{self, archive, crypto::MasterKey, Records, Replace, VaultFile};
use tempfile::TempDir;

#[derive(Debug, Clone)]
enum Spec {
    File {
        path: Vec<String>,
        len: usize,
        seed: u8,
        mode: u32,
    },
    Dir {
        path: Vec<String>,
        mode: u32,
    },
    Link {
        path: Vec<String>,
        target: Vec<String>,
    },
}

fn name() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-z]{1,8}",
        "[a-zA-Z0-9 ._-]{1,12}",
        Just("日記".to_string()),
        Just("café ☕".to_string()),
        "[a-z]{100,140}",
    ]
    .prop_filter("not . or ..", |s| s != "." && s != "..")
    .boxed()
}

fn spec() -> impl Strategy<Value = Spec> {
    let path = || prop::collection::vec(name(), 1..4);
    prop_oneof![
        (
            path(),
            prop_oneof![0usize..100, 60_000usize..140_000],
            any::<u8>(),
            prop::sample::select(vec![0o600u32, 0o644, 0o755, 0o400])
        )
            .prop_map(|(path, len, seed, mode)| Spec::File {
                path,
                len,
                seed,
                mode
            }),
        (path(), prop::sample::select(vec![0o700u32, 0o755, 0o500]))
            .prop_map(|(path, mode)| Spec::Dir { path, mode }),
        (path(), prop::collection::vec(name(), 1..3))
            .prop_map(|(path, target)| Spec::Link { path, target }),
    ]
}

/// Materialises specs; later specs that collide with earlier ones are skipped.
fn build(root: &Path, specs: &[Spec]) {
    fs::create_dir(root).unwrap();
    let mut dirs = Vec::new();
    for s in specs {
        let (path, parent_ok) = match s {
            Spec::File { path, .. } | Spec::Dir { path, .. } | Spec::Link { path, .. } => {
                let p: PathBuf = path.iter().collect();
                let parent = root.join(p.parent().unwrap());
                let ok = fs::create_dir_all(&parent).is_ok();
                (root.join(p), ok)
            }
        };
        if !parent_ok || fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        match s {
            Spec::File {
                len, seed, mode, ..
            } => {
                let data: Vec<u8> = (0..*len)
                    .map(|i| (i as u8).wrapping_mul(*seed | 1).wrapping_add(*seed))
                    .collect();
                fs::write(&path, data).unwrap();
                fs::set_permissions(&path, fs::Permissions::from_mode(*mode)).unwrap();
            }
            Spec::Dir { mode, .. } => {
                fs::create_dir(&path).unwrap();
                dirs.push((path, *mode));
            }
            Spec::Link { target, .. } => {
                // Relative to the link's own directory, staying inside the tree.
                let t: PathBuf = target.iter().collect();
                std::os::unix::fs::symlink(t, &path).unwrap();
            }
        }
    }
    for (path, mode) in dirs.into_iter().rev() {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn seal_then_export_gives_back_the_same_tree(
        specs in prop::collection::vec(spec(), 0..25),
        values in prop::collection::btree_map("[a-z0-9][a-z0-9._-]{0,10}", prop::collection::vec(any::<u8>(), 0..300), 0..4),
    ) {
        let dir = TempDir::new().unwrap();
        let src = dir.path().join("src");
        build(&src, &specs);
        let mut records = Records::new();
        for (name, value) in values {
            records.set(&name, value).unwrap();
        }
        let master = MasterKey::generate();
        let key = master.data_key();
        let password = Password::new(b"pw").unwrap();
        let header = vault::new_header(&master, &password, KdfParams { m_kib: 64, t: 1, p: 1 });
        let path = dir.path().join("v.vault");
        let packed = vault::write(&path, Replace::Never, &key, &header, |w| archive::pack(&src, &records, w, &mut |_| {})).unwrap();

        let v = VaultFile::open(&path).unwrap();
        let (key2, _) = v.unlock(&password).unwrap();
        let checked = v.verify(&key2, |_| {}).unwrap();
        prop_assert_eq!(&checked, &packed);

        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        prop_assert_eq!(&VaultFile::open(&path).unwrap().records(&key2).unwrap(), &records);
        let (unpacked, got) = VaultFile::open(&path).unwrap().unpack(&key2, &out, |_| {}).unwrap();
        prop_assert_eq!(&unpacked, &packed);
        prop_assert_eq!(&got, &records);
        prop_assert_eq!(snapshot(&src), snapshot(&out));
        // Let TempDir clean up read-only directories.
        for root in [&src, &out] {
            for e in walk(root) { let _ = fs::set_permissions(e, fs::Permissions::from_mode(0o700)); }
        }
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let p = out[i].clone();
        if fs::symlink_metadata(&p)
            .map(|m| m.is_dir())
            .unwrap_or(false)
        {
            let _ = fs::set_permissions(&p, fs::Permissions::from_mode(0o700));
            if let Ok(rd) = fs::read_dir(&p) {
                out.extend(rd.flatten().map(|e| e.path()));
            }
        }
        i += 1;
    }
    out
}

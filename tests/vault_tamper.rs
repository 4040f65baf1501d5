//! Any change to a vault file is detected, and classified as damage, not as
//! a wrong password.

mod common;

use std::fs;
use std::path::Path;

use safeclaw::error::Class;
use safeclaw::password::Password;
use safeclaw::vault::format::KdfParams;
use safeclaw::vault::{self, archive, crypto::MasterKey, Replace, VaultFile};
use tempfile::TempDir;

const FAST: KdfParams = KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};
const SEALED_CHUNK: usize = 65536 + 16;

fn password() -> Password {
    Password::new(b"correct horse").unwrap()
}

/// Seals `payload` (raw tar bytes, or anything) as a vault at `dest`.
fn seal_bytes(dest: &Path, payload: &[u8]) {
    let master = MasterKey::generate();
    let key = master.data_key();
    let header = vault::new_header(&master, &password(), FAST);
    vault::write(dest, Replace::Never, &key, &header, |w| {
        std::io::Write::write_all(w, payload)
            .map_err(|e| safeclaw::error::Error::failure(e.to_string()))
    })
    .unwrap();
}

/// Opens, unlocks and verifies: the class of the first failure, if any.
fn check(path: &Path) -> Result<archive::Stats, Class> {
    let v = VaultFile::open(path).map_err(|e| e.class)?;
    let (key, _) = v.unlock(&password()).map_err(|e| e.class)?;
    v.verify(&key, |_| {}).map_err(|e| e.class)
}

fn header_len(bytes: &[u8]) -> usize {
    u16::from_be_bytes([bytes[10], bytes[11]]) as usize
}

/// A tar of one file of `len` incompressible bytes (so chunks are many).
fn tar_of_random(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    getrandom_fill(&mut data);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(len as u64);
    h.set_mode(0o600);
    b.append_data(&mut h, "blob", &data[..]).unwrap();
    b.into_inner().unwrap()
}

fn getrandom_fill(buf: &mut [u8]) {
    let mut state = 0x9E3779B97F4A7C15u64;
    for b in buf.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *b = state as u8;
    }
}

#[test]
fn every_single_byte_flip_of_a_small_vault_is_rejected_as_damage() {
    let dir = TempDir::new().unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("openclaw.json"), br#"{"token":"MARKER"}"#).unwrap();
    let path = dir.path().join("v.vault");
    let master = MasterKey::generate();
    let key = master.data_key();
    let header = vault::new_header(&master, &password(), FAST);
    vault::write(&path, Replace::Never, &key, &header, |w| {
        archive::pack(&tree, &Default::default(), w, &mut |_| {})
    })
    .unwrap();
    assert!(check(&path).is_ok());

    let good = fs::read(&path).unwrap();
    let bad_path = dir.path().join("bad.vault");
    for i in 0..good.len() {
        for mask in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[i] ^= mask;
            fs::write(&bad_path, &bad).unwrap();
            assert_eq!(
                check(&bad_path).err(),
                Some(Class::Damaged),
                "flip {mask:#04x} at byte {i} of {} not caught as damage",
                good.len()
            );
        }
    }
}

#[test]
fn truncation_at_and_between_chunk_boundaries_is_rejected() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("v.vault");
    seal_bytes(&path, &tar_of_random(3 * 65536 + 1000));
    let good = fs::read(&path).unwrap();
    let h = header_len(&good);
    let chunks = (good.len() - h).div_ceil(SEALED_CHUNK);
    assert!(chunks >= 4, "want several chunks, got {chunks}");
    let mut cuts = vec![
        0,
        5,
        11,
        12,
        h - 1,
        h,
        h + 1,
        h + 15,
        h + 16,
        good.len() - 1,
    ];
    for c in 1..chunks {
        let at = h + c * SEALED_CHUNK;
        cuts.extend([at - 1, at, at + 1, at - SEALED_CHUNK / 2]);
    }
    let cut_path = dir.path().join("cut.vault");
    for cut in cuts {
        fs::write(&cut_path, &good[..cut]).unwrap();
        assert_eq!(
            check(&cut_path).err(),
            Some(Class::Damaged),
            "cut at {cut} accepted"
        );
    }
    // Bytes appended after the last chunk.
    let mut longer = good.clone();
    longer.extend_from_slice(&[0u8; 16]);
    fs::write(&cut_path, &longer).unwrap();
    assert_eq!(check(&cut_path).err(), Some(Class::Damaged));
}

#[test]
fn swapped_dropped_and_duplicated_chunks_are_rejected() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("v.vault");
    seal_bytes(&path, &tar_of_random(3 * 65536 + 1000));
    let good = fs::read(&path).unwrap();
    let h = header_len(&good);
    let chunk =
        |i: usize| &good[h + i * SEALED_CHUNK..(h + (i + 1) * SEALED_CHUNK).min(good.len())];
    let head = &good[..h];
    let variants = [
        [head, chunk(1), chunk(0), chunk(2), chunk(3)].concat(),
        [head, chunk(0), chunk(2), chunk(1), chunk(3)].concat(),
        [head, chunk(0), chunk(2), chunk(3)].concat(),
        [head, chunk(0), chunk(1), chunk(1), chunk(2), chunk(3)].concat(),
        [head, chunk(0), chunk(1), chunk(2)].concat(),
    ];
    let bad_path = dir.path().join("bad.vault");
    for (i, bad) in variants.iter().enumerate() {
        fs::write(&bad_path, bad).unwrap();
        assert_eq!(
            check(&bad_path).err(),
            Some(Class::Damaged),
            "variant {i} accepted"
        );
    }
}

#[test]
fn a_payload_moved_under_another_vaults_header_is_rejected() {
    let dir = TempDir::new().unwrap();
    let (a, b) = (dir.path().join("a.vault"), dir.path().join("b.vault"));
    seal_bytes(&a, &tar_of_random(1000));
    seal_bytes(&b, &tar_of_random(1000));
    let (a, b) = (fs::read(a).unwrap(), fs::read(b).unwrap());
    let spliced = [&a[..header_len(&a)], &b[header_len(&b)..]].concat();
    let path = dir.path().join("spliced.vault");
    fs::write(&path, spliced).unwrap();
    assert_eq!(check(&path).err(), Some(Class::Damaged));
}

#[test]
fn wrong_password_is_its_own_class() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("v.vault");
    seal_bytes(&path, &tar_of_random(100));
    let v = VaultFile::open(&path).unwrap();
    let err = v
        .unlock(&Password::new(b"correct horsf").unwrap())
        .unwrap_err();
    assert_eq!(err.class, Class::WrongPassword);
}

#[test]
fn authenticated_garbage_is_damage_not_success() {
    // Not zstd at all, and zstd of something that is not tar.
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("v.vault");
    let master = MasterKey::generate();
    let key = master.data_key();
    let header = vault::new_header(&master, &password(), FAST);
    vault::write(&path, Replace::Never, &key, &header, |w| {
        std::io::Write::write_all(w, &[0x42; 5000])
            .map_err(|e| safeclaw::error::Error::failure(e.to_string()))
    })
    .unwrap();
    assert_eq!(check(&path).err(), Some(Class::Damaged));
}

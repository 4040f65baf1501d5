//! Nix store paths and Nix's base-32, as pure functions over strings.
//!
//! A store path is `STORE_DIR/HASH-NAME`: HASH is 32 characters of Nix's
//! base-32 (160 bits; the alphabet drops e, o, u and t), NAME at most 211
//! characters of `[A-Za-z0-9+-._?=]` not starting with a dot. These are the
//! rules of Nix's own `StorePath` (libstore/path.cc); `nix-compat` on
//! crates.io is an empty placeholder, so they are written out here and
//! tested against `nix-hash --to-base32`.

use std::fmt;

/// Nix's base-32 alphabet.
const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// The hash part of a store path: 20 bytes, 32 characters.
pub const HASH_BYTES: usize = 20;
pub const HASH_CHARS: usize = 32;
/// Nix's limit on the name part.
pub const MAX_NAME: usize = 211;
/// Where Nix keeps its store unless `NIX_STORE_DIR` says otherwise.
pub const DEFAULT_STORE_DIR: &str = "/nix/store";

/// Encoded length of `n` bytes.
pub fn encoded_len(n: usize) -> usize {
    (n * 8).div_ceil(5)
}

/// Nix's base-32 of `bytes` (least significant bits last, as Nix prints).
pub fn encode(bytes: &[u8]) -> String {
    let len = encoded_len(bytes.len());
    let mut out = String::with_capacity(len);
    for n in (0..len).rev() {
        let b = n * 5;
        let (i, j) = (b / 8, b % 8);
        let low = bytes[i] >> j;
        let high = if i + 1 < bytes.len() {
            bytes[i + 1].checked_shl(8 - j as u32).unwrap_or(0)
        } else {
            0
        };
        out.push(ALPHABET[((low | high) & 0x1f) as usize] as char);
    }
    out
}

/// Decodes Nix's base-32 into exactly `N` bytes; `None` on a character
/// outside the alphabet, a wrong length, or bits beyond `N` bytes.
pub fn decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != encoded_len(N) {
        return None;
    }
    let mut out = [0u8; N];
    for (n, c) in s.bytes().rev().enumerate() {
        let digit = ALPHABET.iter().position(|&a| a == c)? as u16;
        let b = n * 5;
        let (i, j) = (b / 8, b % 8);
        let wide = digit << j;
        out[i] |= (wide & 0xff) as u8;
        let carry = (wide >> 8) as u8;
        if i + 1 < N {
            out[i + 1] |= carry;
        } else if carry != 0 {
            return None;
        }
    }
    Some(out)
}

/// A parsed, validated store path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePath {
    store_dir: String,
    hash: [u8; HASH_BYTES],
    name: String,
}

/// Why a path is not a store path; shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StorePath {
    /// Parses `path` as a direct child of `store_dir` (no trailing slash,
    /// no sub-path: the pin names a whole store object).
    pub fn parse(path: &str, store_dir: &str) -> Result<StorePath, Invalid> {
        let store_dir = store_dir.trim_end_matches('/');
        let base = path
            .strip_prefix(store_dir)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| Invalid(format!("{path:?} is not in the Nix store {store_dir}")))?;
        if base.contains('/') {
            return Err(Invalid(format!(
                "{path:?} is inside a store object, not a store object itself"
            )));
        }
        let (hash, name) = base
            .split_once('-')
            .ok_or_else(|| Invalid(format!("{base:?} has no HASH-NAME form")))?;
        if hash.len() != HASH_CHARS {
            return Err(Invalid(format!(
                "the hash part {hash:?} is {} characters, not {HASH_CHARS}",
                hash.len()
            )));
        }
        let hash = decode::<HASH_BYTES>(hash).ok_or_else(|| {
            Invalid(format!(
                "the hash part {hash:?} is not Nix base-32 (alphabet {})",
                std::str::from_utf8(ALPHABET).unwrap_or_default()
            ))
        })?;
        check_name(name)?;
        Ok(StorePath {
            store_dir: store_dir.to_string(),
            hash,
            name: name.to_string(),
        })
    }

    /// The 32-character hash part, as it appears in the path.
    pub fn hash_part(&self) -> String {
        encode(&self.hash)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn to_path_string(&self) -> String {
        format!("{}/{}-{}", self.store_dir, self.hash_part(), self.name)
    }
}

fn check_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() {
        return Err(Invalid("the store path has an empty name".into()));
    }
    if name.len() > MAX_NAME {
        return Err(Invalid(format!(
            "the name is {} characters; Nix allows {MAX_NAME}",
            name.len()
        )));
    }
    if name.starts_with('.') {
        return Err(Invalid(format!("the name {name:?} starts with a dot")));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+-._?=".contains(*c)))
    {
        return Err(Invalid(format!(
            "the name {name:?} holds {c:?}, which Nix does not allow"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Vectors from Nix 2.8: `nix-hash --type sha1|sha256 --to-base32 HEX`.
    const VECTORS: [(&str, &str); 4] = [
        (
            "0000000000000000000000000000000000000000",
            "00000000000000000000000000000000",
        ),
        (
            "0123456789abcdef0123456789abcdef01234567",
            "cx2j60ggrnmqjrs54c0yzkdbi5kla8q1",
        ),
        (
            "ffffffffffffffffffffffffffffffffffffffff",
            "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        ),
        (
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73",
        ),
    ];

    #[test]
    fn base32_matches_nix() {
        for (h, b32) in VECTORS {
            assert_eq!(encode(&hex(h)), b32);
        }
        assert_eq!(
            decode::<20>(VECTORS[1].1).unwrap().to_vec(),
            hex(VECTORS[1].0)
        );
        assert_eq!(
            decode::<32>(VECTORS[3].1).unwrap().to_vec(),
            hex(VECTORS[3].0)
        );
        // `nix-hash --type sha1 --to-base16 0123456789abcdfghijklmnpqrsvwxyz`
        assert_eq!(
            decode::<20>("0123456789abcdfghijklmnpqrsvwxyz")
                .unwrap()
                .to_vec(),
            hex("df77be75c6d7563a6584cf35b65442c714324400")
        );
    }

    #[test]
    fn base32_rejects_what_nix_rejects() {
        assert!(decode::<20>("e0000000000000000000000000000000").is_none());
        assert!(decode::<20>("0000000000000000000000000000000").is_none());
        assert!(decode::<20>("000000000000000000000000000000000").is_none());
        // 52 characters carry 260 bits: a top digit over 256 bits is invalid.
        let over = format!("z{}", "0".repeat(51));
        assert!(decode::<32>(&over).is_none());
    }

    #[test]
    fn store_paths_parse_and_reject() {
        let p = StorePath::parse(
            "/nix/store/cx2j60ggrnmqjrs54c0yzkdbi5kla8q1-safeclaw-openclaw.tar.gz",
            DEFAULT_STORE_DIR,
        )
        .unwrap();
        assert_eq!(p.hash_part(), "cx2j60ggrnmqjrs54c0yzkdbi5kla8q1");
        assert_eq!(p.name(), "safeclaw-openclaw.tar.gz");
        assert_eq!(
            p.to_path_string(),
            "/nix/store/cx2j60ggrnmqjrs54c0yzkdbi5kla8q1-safeclaw-openclaw.tar.gz"
        );
        for bad in [
            "/tmp/cx2j60ggrnmqjrs54c0yzkdbi5kla8q1-x",
            "/nix/store/cx2j60ggrnmqjrs54c0yzkdbi5kla8q1",
            "/nix/store/cx2j60ggrnmqjrs54c0yzkdbi5kla8q-x",
            "/nix/store/ex2j60ggrnmqjrs54c0yzkdbi5kla8q1-x",
            "/nix/store/cx2j60ggrnmqjrs54c0yzkdbi5kla8q1-",
            "/nix/store/cx2j60ggrnmqjrs54c0yzkdbi5kla8q1-.hidden",
            "/nix/store/cx2j60ggrnmqjrs54c0yzkdbi5kla8q1-a b",
            "/nix/store/cx2j60ggrnmqjrs54c0yzkdbi5kla8q1-x/bin/safeclaw",
            "/nix/storeX/cx2j60ggrnmqjrs54c0yzkdbi5kla8q1-x",
        ] {
            assert!(StorePath::parse(bad, DEFAULT_STORE_DIR).is_err(), "{bad}");
        }
        let long = format!(
            "/nix/store/cx2j60ggrnmqjrs54c0yzkdbi5kla8q1-{}",
            "a".repeat(MAX_NAME + 1)
        );
        assert!(StorePath::parse(&long, DEFAULT_STORE_DIR).is_err());
        assert!(StorePath::parse("/tmp/s/cx2j60ggrnmqjrs54c0yzkdbi5kla8q1-x", "/tmp/s/").is_ok());
    }
}

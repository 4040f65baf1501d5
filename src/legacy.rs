//! The guide's legacy `secrets.enc` (docs/legacy-format.md), read-only:
//! `openssl enc -aes-256-cbc -salt [-pbkdf2 [-iter N]] [-md D] [-a [-A]]`
//! over a tar.gz. Key derivation is pure; decoding and decryption are
//! `Read` adapters so a file of any size streams in constant memory.

use std::io::{self, Read};

use aes::cipher::{BlockDecryptMut, KeyIvInit};
use zeroize::Zeroizing;

pub const MAGIC: &[u8; 8] = b"Salted__";
/// base64 of "Salted__" starts with these ten characters.
const BASE64_MAGIC: &[u8; 10] = b"U2FsdGVkX1";
pub const SALT_LEN: usize = 8;
const BLOCK: usize = 16;

/// `-md`: the digest of PBKDF2's HMAC or of EVP_BytesToKey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Md {
    Sha256,
    Sha1,
    Md5,
}

impl Md {
    pub fn name(self) -> &'static str {
        match self {
            Md::Sha256 => "sha256",
            Md::Sha1 => "sha1",
            Md::Md5 => "md5",
        }
    }

    pub fn parse(s: &str) -> Option<Md> {
        match s.to_ascii_lowercase().as_str() {
            "sha256" => Some(Md::Sha256),
            "sha1" => Some(Md::Sha1),
            "md5" => Some(Md::Md5),
            _ => None,
        }
    }
}

/// How `openssl enc` turned the password into key and IV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kdf {
    /// `-pbkdf2 -iter N` (OpenSSL 1.1.1 and later).
    Pbkdf2 { iter: u32 },
    /// No `-pbkdf2`: EVP_BytesToKey with one round, the historic default.
    BytesToKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub kdf: Kdf,
    pub md: Md,
}

impl Settings {
    /// The guide's own command: `-pbkdf2 -iter 100000` (digest sha256).
    pub const GUIDE: Settings = Settings {
        kdf: Kdf::Pbkdf2 { iter: 100_000 },
        md: Md::Sha256,
    };

    /// Tried in order when the user names no setting: the guide's, then
    /// OpenSSL's defaults with `-pbkdf2` alone, without it (1.1.0+), and
    /// before 1.1.0 (md5).
    pub const COMMON: [Settings; 4] = [
        Settings::GUIDE,
        Settings {
            kdf: Kdf::Pbkdf2 { iter: 10_000 },
            md: Md::Sha256,
        },
        Settings {
            kdf: Kdf::BytesToKey,
            md: Md::Sha256,
        },
        Settings {
            kdf: Kdf::BytesToKey,
            md: Md::Md5,
        },
    ];

    /// As `openssl enc` options.
    pub fn describe(&self) -> String {
        match self.kdf {
            Kdf::Pbkdf2 { iter } => format!("-pbkdf2 -iter {iter} -md {}", self.md.name()),
            Kdf::BytesToKey => format!("-md {} (no -pbkdf2)", self.md.name()),
        }
    }
}

/// AES-256 key and CBC IV, wiped on drop.
pub struct KeyIv(Zeroizing<[u8; 48]>);

/// Derives key and IV exactly as `openssl enc` does.
pub fn derive(password: &[u8], salt: &[u8; SALT_LEN], s: Settings) -> KeyIv {
    let mut out = Zeroizing::new([0u8; 48]);
    match s.kdf {
        Kdf::Pbkdf2 { iter } => match s.md {
            Md::Sha256 => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iter, out.as_mut()),
            Md::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, iter, out.as_mut()),
            Md::Md5 => pbkdf2::pbkdf2_hmac::<md5::Md5>(password, salt, iter, out.as_mut()),
        },
        Kdf::BytesToKey => {
            let hash = |data: &[&[u8]]| -> Zeroizing<Vec<u8>> {
                fn run<D: sha2::Digest>(data: &[&[u8]]) -> Vec<u8> {
                    let mut d = D::new();
                    for part in data {
                        d.update(part);
                    }
                    d.finalize().to_vec()
                }
                Zeroizing::new(match s.md {
                    Md::Sha256 => run::<sha2::Sha256>(data),
                    Md::Sha1 => run::<sha1::Sha1>(data),
                    Md::Md5 => run::<md5::Md5>(data),
                })
            };
            // D_1 = H(password | salt), D_i = H(D_{i-1} | password | salt).
            let mut filled = 0;
            let mut prev = Zeroizing::new(Vec::new());
            while filled < out.len() {
                prev = hash(&[&prev, password, salt]);
                let n = prev.len().min(out.len() - filled);
                out[filled..filled + n].copy_from_slice(&prev[..n]);
                filled += n;
            }
        }
    }
    KeyIv(out)
}

impl KeyIv {
    fn decryptor(&self) -> cbc::Decryptor<aes::Aes256> {
        cbc::Decryptor::new(self.0[..32].into(), self.0[32..].into())
    }

    /// Whether the first ciphertext block decrypts to a gzip header
    /// (1f 8b 08): a wrong key passes with probability 2^-24.
    pub fn opens(&self, first_block: &[u8; BLOCK]) -> bool {
        let mut block = *first_block;
        self.decryptor().decrypt_block_mut((&mut block).into());
        block[..3] == [0x1f, 0x8b, 0x08]
    }
}

/// What is wrong with a legacy file's framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyError {
    /// Neither `Salted__` nor its base64 form at the start.
    NotOpenssl,
    /// Ends before the salt and one block of ciphertext.
    TooShort,
}

/// The start of a legacy file: its salt, its first ciphertext block (to
/// test keys), and a reader of the whole ciphertext from its first block.
pub struct Opened {
    pub salt: [u8; SALT_LEN],
    pub first_block: [u8; BLOCK],
    pub base64: bool,
    pub ciphertext: Box<dyn Read + Send>,
}

/// Reads the header of a legacy file from `input`, binary or base64.
pub fn open(mut input: impl Read + Send + 'static) -> io::Result<Result<Opened, LegacyError>> {
    let mut prefix = [0u8; 10];
    let got = crate::io_util::read_full(&mut input, &mut prefix)?;
    let prefix_read = io::Cursor::new(prefix[..got].to_vec());
    let (mut body, base64): (Box<dyn Read + Send>, bool) = if got >= 8 && &prefix[..8] == MAGIC {
        (Box::new(prefix_read.chain(input)), false)
    } else if got == 10 && &prefix == BASE64_MAGIC {
        let text = NoWhitespace(prefix_read.chain(input));
        let engine = &base64::engine::general_purpose::STANDARD;
        (
            Box::new(base64::read::DecoderReader::new(text, engine)),
            true,
        )
    } else {
        return Ok(Err(LegacyError::NotOpenssl));
    };
    let mut head = [0u8; 8 + SALT_LEN + BLOCK];
    if crate::io_util::read_full(&mut body, &mut head)? < head.len() {
        return Ok(Err(LegacyError::TooShort));
    }
    if &head[..8] != MAGIC {
        return Ok(Err(LegacyError::NotOpenssl));
    }
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&head[8..16]);
    let mut first_block = [0u8; BLOCK];
    first_block.copy_from_slice(&head[16..]);
    Ok(Ok(Opened {
        salt,
        first_block,
        base64,
        ciphertext: Box::new(io::Cursor::new(first_block.to_vec()).chain(body)),
    }))
}

/// Drops ASCII whitespace: `openssl -a` wraps lines at 64 columns.
struct NoWhitespace<R>(R);

impl<R: Read> Read for NoWhitespace<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.0.read(buf)?;
            if n == 0 {
                return Ok(0);
            }
            let mut kept = 0;
            for i in 0..n {
                if !buf[i].is_ascii_whitespace() {
                    buf[kept] = buf[i];
                    kept += 1;
                }
            }
            if kept > 0 {
                return Ok(kept);
            }
        }
    }
}

/// Why CBC decryption failed. Carried inside `io::Error` (InvalidData).
#[derive(Debug)]
pub enum CbcError {
    /// The ciphertext is not a whole number of blocks.
    Truncated,
    /// The last block's PKCS#7 padding is wrong: damage or a wrong key.
    BadPadding,
}

impl std::fmt::Display for CbcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CbcError::Truncated => {
                f.write_str("the ciphertext is truncated (not a whole number of AES blocks)")
            }
            CbcError::BadPadding => f.write_str("the last block's padding is invalid"),
        }
    }
}

impl std::error::Error for CbcError {}

/// AES-256-CBC decryption as a `Read`, PKCS#7 padding checked and removed.
/// Holds back the last decrypted block until the end is known.
pub struct CbcReader<R> {
    inner: R,
    dec: cbc::Decryptor<aes::Aes256>,
    /// Decrypted bytes ready to hand out: `plain[pos..ready]`; after
    /// `ready`, up to one held-back block.
    plain: Zeroizing<Vec<u8>>,
    pos: usize,
    ready: usize,
    /// Ciphertext bytes not yet a whole block.
    partial: Vec<u8>,
    done: bool,
}

impl<R: Read> CbcReader<R> {
    pub fn new(inner: R, key: &KeyIv) -> Self {
        CbcReader {
            inner,
            dec: key.decryptor(),
            plain: Zeroizing::new(Vec::with_capacity(64 * 1024 + BLOCK)),
            pos: 0,
            ready: 0,
            partial: Vec::with_capacity(BLOCK),
            done: false,
        }
    }

    fn fail(e: CbcError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    fn fill(&mut self) -> io::Result<()> {
        // Keep the held-back block, drop what was handed out.
        let held: Vec<u8> = self.plain[self.ready..].to_vec();
        self.plain.clear();
        self.plain.extend_from_slice(&held);
        self.pos = 0;
        self.ready = 0;
        let start = self.plain.len();
        self.plain.extend_from_slice(&self.partial);
        self.partial.clear();
        let mut chunk = [0u8; 64 * 1024];
        let n = loop {
            match self.inner.read(&mut chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        self.plain.extend_from_slice(&chunk[..n]);
        if n == 0 {
            self.done = true;
        }
        let whole = (self.plain.len() - start) / BLOCK * BLOCK;
        let tail = self.plain.split_off(start + whole);
        self.partial.extend_from_slice(&tail);
        for block in self.plain[start..].chunks_exact_mut(BLOCK) {
            self.dec.decrypt_block_mut(block.into());
        }
        if self.done {
            if !self.partial.is_empty() || self.plain.is_empty() {
                return Err(Self::fail(CbcError::Truncated));
            }
            let pad = *self.plain.last().expect("not empty") as usize;
            let len = self.plain.len();
            if pad == 0 || pad > BLOCK || self.plain[len - pad..].iter().any(|&b| b as usize != pad)
            {
                return Err(Self::fail(CbcError::BadPadding));
            }
            self.ready = len - pad;
        } else {
            self.ready = self.plain.len().saturating_sub(BLOCK);
        }
        Ok(())
    }
}

impl<R: Read> Read for CbcReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.ready {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            self.fill()?;
        }
        let n = out.len().min(self.ready - self.pos);
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers printed by OpenSSL 3.0 itself:
    /// `openssl enc -aes-256-cbc OPTIONS -S 0102030405060708 -pass pass:password -P`.
    #[test]
    fn key_and_iv_match_openssl() {
        let cases = [
            (
                Settings {
                    kdf: Kdf::BytesToKey,
                    md: Md::Md5,
                },
                "e7b0971e52ca5cc8d0539fb3412f6316f7ba2e6ee293d9f3457b99436b51ce02",
                "8d450e2ed75a84a923d4eac9fe49226b",
            ),
            (
                Settings {
                    kdf: Kdf::BytesToKey,
                    md: Md::Sha256,
                },
                "2435177f1410536baad2acc155c0f94783d58384573cb0f72157443606285d3f",
                "f96efc044e0f1613bf324245c95e7411",
            ),
            (
                Settings {
                    kdf: Kdf::Pbkdf2 { iter: 1000 },
                    md: Md::Sha1,
                },
                "ed1b5a43d3a86504dd13c9da7606bd355d25993c97977a6f86bbd53baa2741e0",
                "882f4181b2afde4472481eb1e1b2079a",
            ),
            (
                Settings::GUIDE,
                "21c6c7025397618f1423d559f6a9c7573538162c1ab7250be6b09b7bb1912124",
                "51840018bfd23164f00f0ac45cec8911",
            ),
        ];
        for (settings, key, iv) in cases {
            let k = derive(b"password", &[1, 2, 3, 4, 5, 6, 7, 8], settings);
            assert_eq!(
                crate::private_fs::hex(&k.0[..32]),
                key,
                "{}",
                settings.describe()
            );
            assert_eq!(
                crate::private_fs::hex(&k.0[32..]),
                iv,
                "{}",
                settings.describe()
            );
        }
    }

    #[test]
    fn framing_errors() {
        assert_eq!(
            open(io::Cursor::new(b"hello world, not openssl".to_vec()))
                .unwrap()
                .err(),
            Some(LegacyError::NotOpenssl)
        );
        assert_eq!(
            open(io::Cursor::new(b"Salted__12345678short".to_vec()))
                .unwrap()
                .err(),
            Some(LegacyError::TooShort)
        );
        assert_eq!(
            open(io::Cursor::new(Vec::new())).unwrap().err(),
            Some(LegacyError::NotOpenssl)
        );
    }
}

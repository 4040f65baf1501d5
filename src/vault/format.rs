//! The vault header (docs/vault-format.md): pure parse and serialise over
//! bytes. No I/O and no key material here; `crypto.rs` computes the MAC and
//! wraps keys, `mod.rs` reads files.

use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 8] = b"SAFECLAW";
/// The format version safeclaw writes: 4, whose payload stores large
/// files as references to blocks in a blob store shared by the vault's
/// generations (docs/vault-format.md, "Blobs"). Its header is version 3's:
/// password slots wrap a master key (the data key and the secrets key are
/// derived from it) and may hold a secrets section ("Keys"). Version 2's
/// payload began with safeclaw's records (`.safeclaw/`, "Records"); 3's
/// and 4's do too.
pub const VERSION: u16 = 4;
/// The first version whose payload may reference blocks in a blob store.
pub const BLOBS_VERSION: u16 = 4;
/// The first version whose slots wrap a master key.
pub const MASTER_KEY_VERSION: u16 = 3;
/// The first version whose payload begins with safeclaw's records.
pub const RECORDS_VERSION: u16 = 2;
/// The oldest version read: 1, whose payload is the state alone (a
/// `.safeclaw` in it is the state's, written by whoever could write the
/// state, and is never taken for records).
pub const MIN_VERSION: u16 = 1;
/// Magic, version and header length: enough to know how much more to read.
pub const PREFIX_LEN: usize = 12;
pub const MIN_HEADER_LEN: usize = FIXED_LEN + SLOT_PREFIX_LEN + CHECKSUM_LEN + MAC_LEN;
/// Bounds what a reader allocates for a header before anything is checked.
pub const MAX_HEADER_LEN: usize = 16384;
/// The most a secrets section may hold (sealed): a handful of API keys
/// and tokens with their hosts fit many times over.
pub const MAX_SECRETS_LEN: usize = 12 * 1024;
pub const MAX_SLOTS: usize = 8;
pub const CHECKSUM_LEN: usize = 32;
pub const MAC_LEN: usize = 32;
pub const SALT_LEN: usize = 32;
pub const WRAPPED_KEY_LEN: usize = 32 + 16;
pub const DEFAULT_CHUNK_SIZE: u32 = 64 * 1024;
pub const MIN_CHUNK_SIZE: u32 = 4 * 1024;
pub const MAX_CHUNK_SIZE: u32 = 1024 * 1024;

const FIXED_LEN: usize = 65;
const SLOT_PREFIX_LEN: usize = 3;
pub const SLOT_KIND_PASSWORD: u8 = 1;
/// The secrets section (version 3): sealed under the secrets key, opaque
/// to whoever holds only the data key (the guard), which copies it.
pub const SLOT_KIND_SECRETS: u8 = 2;
const PASSWORD_SLOT_BODY_LEN: usize = 12 + SALT_LEN + WRAPPED_KEY_LEN;

/// Argon2id parameters of a password slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes over memory.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// Used for new slots: stronger than RFC 9106's second recommendation
    /// (64 MiB, t=3, p=4) and about a second on this project's 2-core machines.
    pub const DEFAULT: KdfParams = KdfParams {
        m_kib: 512 * 1024,
        t: 3,
        p: 4,
    };
    /// RFC 9106 section 4, second recommended option: the floor below which
    /// creation warns.
    pub const RFC9106_SECOND: KdfParams = KdfParams {
        m_kib: 64 * 1024,
        t: 3,
        p: 4,
    };
    /// A reader refuses anything above these before allocating.
    pub const MAX_M_KIB: u32 = 2 * 1024 * 1024;
    pub const MAX_T: u32 = 16;
    pub const MAX_P: u32 = 16;
    /// A reader also refuses a header whose password slots together cost
    /// more (memory in KiB times passes) than one slot at the caps: it
    /// tries the slots one after another, so without this a header of 8
    /// slots at the caps cost 8 times the worst case the caps promise
    /// (measured: 107 s and 2.1 GB before "wrong password").
    pub const MAX_TOTAL_COST: u64 = Self::MAX_M_KIB as u64 * Self::MAX_T as u64;

    /// What deriving with these parameters costs: memory in KiB times
    /// passes (the lanes share the same memory and passes).
    pub fn cost(&self) -> u64 {
        u64::from(self.m_kib) * u64::from(self.t)
    }

    /// Checks the caps (hostile headers) and Argon2's own rules.
    pub fn check(&self) -> Result<(), FormatError> {
        if self.m_kib > Self::MAX_M_KIB || self.t > Self::MAX_T || self.p > Self::MAX_P {
            return Err(FormatError::KdfOverCaps(*self));
        }
        // Widened: a hostile p must not overflow (found by the header fuzzer).
        if self.t == 0 || self.p == 0 || u64::from(self.m_kib) < 8 * u64::from(self.p) {
            Err(FormatError::Damaged("invalid key derivation parameters"))
        } else {
            Ok(())
        }
    }

    /// True when weaker than RFC 9106's second recommendation in memory or passes.
    pub fn is_weak(&self) -> bool {
        self.m_kib < Self::RFC9106_SECOND.m_kib || self.t < Self::RFC9106_SECOND.t
    }
}

/// A key slot: one way to recover the data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    Password(PasswordSlot),
    /// Not a way to the key: the vault's secrets, sealed under the secrets
    /// key (`crypto::SecretsKey::seal`). At most one, version 3 only.
    Secrets(Vec<u8>),
    /// A kind this version does not know; kept byte for byte.
    Unknown {
        kind: u8,
        body: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordSlot {
    pub kdf: KdfParams,
    pub salt: [u8; SALT_LEN],
    pub wrapped_key: [u8; WRAPPED_KEY_LEN],
}

impl PasswordSlot {
    /// The bytes the wrapped key is bound to (AES-GCM associated data):
    /// kind, length, parameters and salt.
    pub fn aad(kdf: &KdfParams, salt: &[u8; SALT_LEN]) -> Vec<u8> {
        let mut out = Vec::with_capacity(SLOT_PREFIX_LEN + 12 + SALT_LEN);
        out.push(SLOT_KIND_PASSWORD);
        out.extend_from_slice(&(PASSWORD_SLOT_BODY_LEN as u16).to_be_bytes());
        out.extend_from_slice(&kdf.m_kib.to_be_bytes());
        out.extend_from_slice(&kdf.t.to_be_bytes());
        out.extend_from_slice(&kdf.p.to_be_bytes());
        out.extend_from_slice(salt);
        out
    }
}

/// The header fields, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `VERSION` for what safeclaw writes now; a re-seal that copies a
    /// payload as it is (`passwd`, `rekey`) keeps the version it had.
    pub version: u16,
    pub generation: u64,
    /// Unix seconds of this generation's seal.
    pub created: u64,
    pub chunk_size: u32,
    pub payload_salt: [u8; SALT_LEN],
    pub slots: Vec<Slot>,
}

/// A header as read: the fields plus the exact bytes the MAC covers, so the
/// MAC is checked over what was parsed, never over a re-serialised copy.
#[derive(Debug, Clone)]
pub struct ParsedHeader {
    pub header: Header,
    /// Total header length; the payload starts here.
    pub len: usize,
    /// `bytes[..len - MAC_LEN]`.
    pub mac_input: Vec<u8>,
    pub mac: [u8; MAC_LEN],
}

/// What can be wrong with a header, before any key is involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// The magic bytes differ: some other file.
    NotAVault,
    /// A format version this build does not read.
    UnsupportedVersion(u16),
    /// Structurally wrong or the checksum does not match.
    Damaged(&'static str),
    /// Argon2 parameters above the reader's caps.
    KdfOverCaps(KdfParams),
    /// The password slots together cost more than `MAX_TOTAL_COST`.
    KdfTotalOverCaps { slots: usize, cost: u64 },
}

/// Reads the 12-byte prefix: checks magic and version, returns the header
/// length to read next (bounded by MAX_HEADER_LEN).
pub fn header_len(prefix: &[u8]) -> Result<usize, FormatError> {
    if prefix.len() < PREFIX_LEN {
        return Err(if MAGIC.starts_with(prefix) && !prefix.is_empty() {
            FormatError::Damaged("file ends inside the header")
        } else {
            FormatError::NotAVault
        });
    }
    if &prefix[..8] != MAGIC {
        return Err(FormatError::NotAVault);
    }
    let version = u16::from_be_bytes([prefix[8], prefix[9]]);
    if !(MIN_VERSION..=VERSION).contains(&version) {
        return Err(FormatError::UnsupportedVersion(version));
    }
    let len = u16::from_be_bytes([prefix[10], prefix[11]]) as usize;
    if !(MIN_HEADER_LEN..=MAX_HEADER_LEN).contains(&len) {
        return Err(FormatError::Damaged("header length out of range"));
    }
    Ok(len)
}

/// Parses a whole header (`bytes` is exactly the header, as `header_len`
/// announced it). Checks structure, checksum and KDF caps; not the MAC.
pub fn parse(bytes: &[u8]) -> Result<ParsedHeader, FormatError> {
    let len = header_len(bytes)?;
    if bytes.len() != len {
        return Err(FormatError::Damaged("file ends inside the header"));
    }
    let body_end = len - CHECKSUM_LEN - MAC_LEN;
    let checksum = Sha256::digest(&bytes[..body_end]);
    if checksum.as_slice() != &bytes[body_end..body_end + CHECKSUM_LEN] {
        return Err(FormatError::Damaged("header checksum mismatch"));
    }
    let mut r = Reader {
        bytes: &bytes[..body_end],
        pos: PREFIX_LEN,
    };
    let version = u16::from_be_bytes([bytes[8], bytes[9]]);
    let generation = r.u64()?;
    let created = r.u64()?;
    let chunk_size = r.u32()?;
    let payload_salt = r.array::<SALT_LEN>()?;
    let slot_count = r.u8()? as usize;
    if generation == 0 {
        return Err(FormatError::Damaged("generation 0"));
    }
    if !chunk_size.is_power_of_two() || !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(FormatError::Damaged("chunk size out of range"));
    }
    if slot_count == 0 || slot_count > MAX_SLOTS {
        return Err(FormatError::Damaged("slot count out of range"));
    }
    let mut slots = Vec::with_capacity(slot_count);
    for _ in 0..slot_count {
        let kind = r.u8()?;
        let body_len = r.u16()? as usize;
        let body = r.take(body_len)?;
        slots.push(parse_slot(kind, body)?);
    }
    if r.pos != body_end {
        return Err(FormatError::Damaged("bytes after the last slot"));
    }
    let sections = slots
        .iter()
        .filter(|s| matches!(s, Slot::Secrets(_)))
        .count();
    if sections > usize::from(version >= MASTER_KEY_VERSION) {
        return Err(FormatError::Damaged("a secrets section where none may be"));
    }
    check_total_cost(&slots)?;
    let mut mac = [0u8; MAC_LEN];
    mac.copy_from_slice(&bytes[len - MAC_LEN..]);
    Ok(ParsedHeader {
        header: Header {
            version,
            generation,
            created,
            chunk_size,
            payload_salt,
            slots,
        },
        len,
        mac_input: bytes[..len - MAC_LEN].to_vec(),
        mac,
    })
}

/// Refuses password slots that together cost more than one slot at the caps.
fn check_total_cost(slots: &[Slot]) -> Result<(), FormatError> {
    let costs: Vec<u64> = slots
        .iter()
        .filter_map(|s| match s {
            Slot::Password(p) => Some(p.kdf.cost()),
            Slot::Secrets(_) | Slot::Unknown { .. } => None,
        })
        .collect();
    // Each cost is at most 2^35 (after the per-slot caps), so 8 cannot overflow.
    let cost = costs.iter().sum();
    if cost > KdfParams::MAX_TOTAL_COST {
        return Err(FormatError::KdfTotalOverCaps {
            slots: costs.len(),
            cost,
        });
    }
    Ok(())
}

fn parse_slot(kind: u8, body: &[u8]) -> Result<Slot, FormatError> {
    if kind == SLOT_KIND_SECRETS {
        if body.len() > MAX_SECRETS_LEN {
            return Err(FormatError::Damaged("the secrets section is too long"));
        }
        return Ok(Slot::Secrets(body.to_vec()));
    }
    if kind != SLOT_KIND_PASSWORD {
        return Ok(Slot::Unknown {
            kind,
            body: body.to_vec(),
        });
    }
    if body.len() != PASSWORD_SLOT_BODY_LEN {
        return Err(FormatError::Damaged("password slot has the wrong length"));
    }
    let mut r = Reader {
        bytes: body,
        pos: 0,
    };
    let kdf = KdfParams {
        m_kib: r.u32()?,
        t: r.u32()?,
        p: r.u32()?,
    };
    kdf.check()?;
    Ok(Slot::Password(PasswordSlot {
        kdf,
        salt: r.array()?,
        wrapped_key: r.array()?,
    }))
}

/// Serialises everything the MAC covers (fields, slots, checksum). The caller
/// appends the MAC. Errors only on a header no reader would accept.
pub fn serialize_mac_input(h: &Header) -> Result<Vec<u8>, FormatError> {
    if h.slots.is_empty() || h.slots.len() > MAX_SLOTS {
        return Err(FormatError::Damaged("slot count out of range"));
    }
    let mut out = Vec::with_capacity(MIN_HEADER_LEN + 100 * h.slots.len());
    out.extend_from_slice(MAGIC);
    if !(MIN_VERSION..=VERSION).contains(&h.version) {
        return Err(FormatError::UnsupportedVersion(h.version));
    }
    out.extend_from_slice(&h.version.to_be_bytes());
    out.extend_from_slice(&[0, 0]); // length, filled below
    out.extend_from_slice(&h.generation.to_be_bytes());
    out.extend_from_slice(&h.created.to_be_bytes());
    out.extend_from_slice(&h.chunk_size.to_be_bytes());
    out.extend_from_slice(&h.payload_salt);
    out.push(h.slots.len() as u8);
    for slot in &h.slots {
        match slot {
            Slot::Password(s) => {
                out.extend_from_slice(&PasswordSlot::aad(&s.kdf, &s.salt));
                out.extend_from_slice(&s.wrapped_key);
            }
            Slot::Secrets(body) => {
                if body.len() > MAX_SECRETS_LEN {
                    return Err(FormatError::Damaged("the secrets section is too long"));
                }
                out.push(SLOT_KIND_SECRETS);
                out.extend_from_slice(&(body.len() as u16).to_be_bytes());
                out.extend_from_slice(body);
            }
            Slot::Unknown { kind, body } => {
                let body_len =
                    u16::try_from(body.len()).map_err(|_| FormatError::Damaged("slot too long"))?;
                out.push(*kind);
                out.extend_from_slice(&body_len.to_be_bytes());
                out.extend_from_slice(body);
            }
        }
    }
    let len = out.len() + CHECKSUM_LEN + MAC_LEN;
    if len > MAX_HEADER_LEN {
        return Err(FormatError::Damaged("header too long"));
    }
    out[10..12].copy_from_slice(&(len as u16).to_be_bytes());
    let checksum = Sha256::digest(&out);
    out.extend_from_slice(&checksum);
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(FormatError::Damaged("slot runs past the header end"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, FormatError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(slots: Vec<Slot>) -> Header {
        Header {
            version: VERSION,
            generation: 7,
            created: 1_790_000_000,
            chunk_size: DEFAULT_CHUNK_SIZE,
            payload_salt: [9; SALT_LEN],
            slots,
        }
    }

    fn password_slot(kdf: KdfParams) -> Slot {
        Slot::Password(PasswordSlot {
            kdf,
            salt: [1; SALT_LEN],
            wrapped_key: [2; WRAPPED_KEY_LEN],
        })
    }

    fn encode(h: &Header) -> Vec<u8> {
        let mut bytes = serialize_mac_input(h).unwrap();
        bytes.extend_from_slice(&[0xAA; MAC_LEN]);
        bytes
    }

    #[test]
    fn round_trip_keeps_every_field_and_unknown_slots() {
        let h = sample(vec![
            password_slot(KdfParams::DEFAULT),
            Slot::Unknown {
                kind: 200,
                body: b"future".to_vec(),
            },
        ]);
        let bytes = encode(&h);
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.header, h);
        assert_eq!(parsed.len, bytes.len());
        assert_eq!(parsed.mac, [0xAA; MAC_LEN]);
        assert_eq!(parsed.mac_input, bytes[..bytes.len() - MAC_LEN]);
        assert_eq!(header_len(&bytes[..PREFIX_LEN]).unwrap(), bytes.len());
    }

    #[test]
    fn hostile_kdf_parameters_are_refused_while_parsing() {
        for kdf in [
            KdfParams {
                m_kib: 64 * 1024 * 1024,
                t: 3,
                p: 4,
            }, // 64 GiB
            KdfParams {
                m_kib: 65536,
                t: u32::MAX,
                p: 4,
            },
            KdfParams {
                m_kib: 65536,
                t: 3,
                p: 1 << 20,
            },
        ] {
            let bytes = encode(&sample(vec![password_slot(kdf)]));
            assert_eq!(parse(&bytes).unwrap_err(), FormatError::KdfOverCaps(kdf));
        }
        // p = 2^30 once overflowed `8 * p` before the caps were checked.
        let huge_p = KdfParams {
            m_kib: 64,
            t: 1,
            p: 1 << 30,
        };
        assert_eq!(huge_p.check(), Err(FormatError::KdfOverCaps(huge_p)));
        let zero_t = encode(&sample(vec![password_slot(KdfParams {
            m_kib: 65536,
            t: 0,
            p: 1,
        })]));
        assert!(matches!(parse(&zero_t), Err(FormatError::Damaged(_))));
    }

    #[test]
    fn password_slots_together_are_capped_like_one_slot() {
        let at_caps = KdfParams {
            m_kib: KdfParams::MAX_M_KIB,
            t: KdfParams::MAX_T,
            p: 4,
        };
        let half = KdfParams {
            t: KdfParams::MAX_T / 2,
            ..at_caps
        };
        // One slot at the caps, or two at half, is what the caps promise.
        for slots in [vec![at_caps], vec![half, half]] {
            let h = sample(slots.into_iter().map(password_slot).collect());
            assert!(parse(&encode(&h)).is_ok());
        }
        // Unknown slots derive nothing and do not count.
        let mut slots = vec![password_slot(at_caps)];
        slots.extend((0..7).map(|k| Slot::Unknown {
            kind: 100 + k,
            body: vec![0; 10],
        }));
        assert!(parse(&encode(&sample(slots))).is_ok());
        // Any more is refused while parsing, before any derivation.
        for (slots, cost) in [
            (vec![at_caps; MAX_SLOTS], 8 * KdfParams::MAX_TOTAL_COST),
            (
                vec![at_caps, KdfParams::RFC9106_SECOND],
                KdfParams::MAX_TOTAL_COST + KdfParams::RFC9106_SECOND.cost(),
            ),
        ] {
            let n = slots.len();
            let h = sample(slots.into_iter().map(password_slot).collect());
            assert_eq!(
                parse(&encode(&h)).unwrap_err(),
                FormatError::KdfTotalOverCaps { slots: n, cost }
            );
        }
    }

    #[test]
    fn every_byte_flip_of_the_checksummed_part_is_caught() {
        let bytes = encode(&sample(vec![password_slot(KdfParams::DEFAULT)]));
        for i in 0..bytes.len() - MAC_LEN {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(parse(&b).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn one_secrets_slot_in_version_3_and_none_elsewhere() {
        let with = |version: u16, sections: usize, len: usize| {
            let mut slots = vec![password_slot(KdfParams::DEFAULT)];
            slots.extend((0..sections).map(|_| Slot::Secrets(vec![7; len])));
            let h = Header {
                version,
                ..sample(slots)
            };
            serialize_mac_input(&h).map(|mut b| {
                b.extend_from_slice(&[0xAA; MAC_LEN]);
                parse(&b)
            })
        };
        let ok = with(3, 1, MAX_SECRETS_LEN).unwrap().unwrap();
        assert_eq!(ok.header.slots[1], Slot::Secrets(vec![7; MAX_SECRETS_LEN]));
        assert!(ok.len > 4096, "the header grows past version 2's cap");
        assert!(with(3, 0, 0).unwrap().is_ok());
        for (version, sections) in [(3, 2), (2, 1), (1, 1)] {
            assert_eq!(
                with(version, sections, 40).unwrap().unwrap_err(),
                FormatError::Damaged("a secrets section where none may be"),
                "version {version}, {sections} sections"
            );
        }
        assert!(with(3, 1, MAX_SECRETS_LEN + 1).is_err());
    }

    #[test]
    fn prefix_classification() {
        assert_eq!(header_len(b"hello world!"), Err(FormatError::NotAVault));
        assert_eq!(header_len(b""), Err(FormatError::NotAVault));
        assert!(matches!(header_len(b"SAFEC"), Err(FormatError::Damaged(_))));
        assert_eq!(
            header_len(b"SAFECLAW\x00\x05\x01\x00"),
            Err(FormatError::UnsupportedVersion(5))
        );
        assert_eq!(
            header_len(b"SAFECLAW\x00\x00\x01\x00"),
            Err(FormatError::UnsupportedVersion(0))
        );
        // Both versions read (1: no records; 2: records first).
        assert_eq!(header_len(b"SAFECLAW\x00\x01\x01\x00"), Ok(256));
        assert_eq!(header_len(b"SAFECLAW\x00\x02\x01\x00"), Ok(256));
        assert!(matches!(
            header_len(b"SAFECLAW\x00\x01\xff\xff"),
            Err(FormatError::Damaged("header length out of range"))
        ));
    }

    #[test]
    fn truncated_header_is_damaged_not_a_panic() {
        let bytes = encode(&sample(vec![password_slot(KdfParams::DEFAULT)]));
        for cut in PREFIX_LEN..bytes.len() {
            assert!(matches!(parse(&bytes[..cut]), Err(FormatError::Damaged(_))));
        }
    }
}

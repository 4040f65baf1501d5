//! Key material of a vault: the data key, password slots (Argon2id +
//! AES-256-GCM key wrap), the header MAC and per-generation payload keys,
//! and since format version 3 the master key a slot wraps, from which the
//! data key and the secrets key are derived (docs/vault-format.md, "Keys").
//! Every key lives in a type that is zeroized on drop.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::format::{KdfParams, PasswordSlot, MAC_LEN, SALT_LEN, WRAPPED_KEY_LEN};

pub const KEY_LEN: usize = 32;

/// The vault's random data key. Wrapped by each slot; never stored in clear.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; KEY_LEN]);

/// A key derived for one generation's payload.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct PayloadKey([u8; KEY_LEN]);

impl PayloadKey {
    pub fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.0).into())
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    pub fn generate() -> Self {
        DataKey(random_array())
    }

    /// For the container hand-off: the raw bytes, to be written and dropped.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        DataKey(bytes)
    }

    pub fn header_mac(&self, mac_input: &[u8]) -> [u8; MAC_LEN] {
        self.mac(mac_input).finalize().into_bytes().into()
    }

    /// Constant-time comparison of the header MAC.
    pub fn verify_header_mac(&self, mac_input: &[u8], mac: &[u8; MAC_LEN]) -> bool {
        self.mac(mac_input).verify_slice(mac).is_ok()
    }

    fn mac(&self, mac_input: &[u8]) -> Hmac<Sha256> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        Hkdf::<Sha256>::new(None, &self.0)
            .expand(b"safeclaw-vault v1 header mac", key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 length");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_ref())
            .expect("HMAC accepts any key length");
        mac.update(mac_input);
        mac
    }

    /// The payload key of one generation (salt fresh per generation).
    pub fn payload_key(
        &self,
        salt: &[u8; SALT_LEN],
        generation: u64,
        chunk_size: u32,
    ) -> PayloadKey {
        let mut info = Vec::with_capacity(40);
        info.extend_from_slice(b"safeclaw-vault v1 payload");
        info.extend_from_slice(&generation.to_be_bytes());
        info.extend_from_slice(&chunk_size.to_be_bytes());
        let mut key = [0u8; KEY_LEN];
        Hkdf::<Sha256>::new(Some(salt), &self.0)
            .expand(&info, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        PayloadKey(key)
    }
}

impl DataKey {
    /// Version 4's keys for the blob store (docs/vault-format.md, "Blobs").
    pub fn blob_keys(&self) -> BlobKeys {
        let derive = |info: &[u8]| {
            let mut key = [0u8; KEY_LEN];
            Hkdf::<Sha256>::new(None, &self.0)
                .expand(info, &mut key)
                .expect("32 bytes is a valid HKDF-SHA256 length");
            key
        };
        let store = derive(b"safeclaw-vault v4 store name");
        BlobKeys {
            id: derive(b"safeclaw-vault v4 blob id"),
            seal: derive(b"safeclaw-vault v4 blob key"),
            store: store[..STORE_NAME_LEN]
                .try_into()
                .expect("a prefix of 32 bytes"),
        }
    }
}

/// Bytes of the store's name that come from the data key.
const STORE_NAME_LEN: usize = 8;
/// The associated data of a blob: it can be nothing else.
const BLOB_AAD: &[u8] = b"safeclaw-vault v4 blob";
/// A blob's id: the keyed BLAKE3 hash of its plaintext.
pub type BlobId = [u8; 32];

/// What the data key derives for the blob store: the key that names a
/// block (keyed BLAKE3, so names tell nothing about contents to whoever
/// lacks the key), the key each blob's own key comes from, and the
/// store's name, so every file under one data key finds the same store.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BlobKeys {
    id: [u8; KEY_LEN],
    seal: [u8; KEY_LEN],
    store: [u8; STORE_NAME_LEN],
}

impl BlobKeys {
    /// The id of a block of plaintext.
    pub fn id_of(&self, block: &[u8]) -> BlobId {
        blake3::keyed_hash(&self.id, block).into()
    }

    /// The store's directory name (next to the vault file).
    pub fn store_name(&self) -> String {
        format!(
            "{}{}",
            super::blobs::STORE_PREFIX,
            crate::private_fs::hex(&self.store)
        )
    }

    /// Each blob has a key of its own, derived from its id: two blobs never
    /// share a key, and a blob under another id's name does not open.
    fn cipher(&self, id: &BlobId) -> Aes256Gcm {
        let mut info = Vec::with_capacity(BLOB_AAD.len() + id.len());
        info.extend_from_slice(BLOB_AAD);
        info.extend_from_slice(id);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        Hkdf::<Sha256>::new(None, &self.seal)
            .expand(&info, key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 length");
        Aes256Gcm::new(key.as_ref().into())
    }

    /// A random nonce followed by the AES-256-GCM ciphertext of `plain`
    /// under blob `id`'s key. The nonce is random, not fixed, although the
    /// key is the id's alone: a block written again by another zstd could
    /// compress to other bytes.
    pub fn seal(&self, id: &BlobId, plain: &[u8]) -> Vec<u8> {
        seal_with_random_nonce(&self.cipher(id), BLOB_AAD, plain)
    }

    /// The plaintext of a blob `seal` made for `id`, or None.
    pub fn open(&self, id: &BlobId, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        open_with_nonce(&self.cipher(id), BLOB_AAD, sealed)
    }
}

/// What a version-3 password slot wraps. The data key (handed to the
/// guard inside the gateway's container) and the secrets key (never
/// handed to it: only the host and the egress proxy see what it opens)
/// are derived from it, so holding the data key opens nothing of the
/// secrets (docs/secrets.md).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; KEY_LEN]);

/// Opens the vault's secrets section (`Slot::Secrets`).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretsKey([u8; KEY_LEN]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn generate() -> Self {
        MasterKey(random_array())
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub fn data_key(&self) -> DataKey {
        DataKey(self.derive(b"safeclaw-vault v3 data key"))
    }

    pub fn secrets_key(&self) -> SecretsKey {
        SecretsKey(self.derive(b"safeclaw-vault v3 secrets key"))
    }

    fn derive(&self, info: &[u8]) -> [u8; KEY_LEN] {
        let mut key = [0u8; KEY_LEN];
        Hkdf::<Sha256>::new(None, &self.0)
            .expand(info, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        key
    }
}

/// The associated data of the secrets section: it can be nothing else.
const SECRETS_AAD: &[u8] = b"safeclaw-vault v3 secrets";
const NONCE_LEN: usize = 12;

impl SecretsKey {
    /// Nonce (random: a section is sealed a handful of times per key)
    /// followed by the AES-256-GCM ciphertext of `plain`.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        seal_with_random_nonce(&Aes256Gcm::new((&self.0).into()), SECRETS_AAD, plain)
    }

    /// The plaintext of a section `seal` made, or None if it was not made
    /// under this key or was changed.
    pub fn open(&self, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        open_with_nonce(&Aes256Gcm::new((&self.0).into()), SECRETS_AAD, sealed)
    }
}

/// A random nonce followed by the AES-256-GCM ciphertext of `plain`: for
/// what is sealed a bounded number of times under one key (a secrets
/// section, a blob under its id's key).
fn seal_with_random_nonce(cipher: &Aes256Gcm, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = random_array();
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        .expect("AES-GCM encryption of a bounded input cannot fail");
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// The plaintext of what `seal_with_random_nonce` made, or None if it was
/// not made under this key and associated data, or was changed.
fn open_with_nonce(cipher: &Aes256Gcm, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
        .ok()
        .map(Zeroizing::new)
}

/// Argon2id(password, salt) -> key-encryption key. The parameters must have
/// passed `KdfParams::check` (the parser does that for every slot it reads).
fn derive_kek(password: &[u8], kdf: &KdfParams, salt: &[u8; SALT_LEN]) -> Zeroizing<[u8; KEY_LEN]> {
    let params = argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, Some(KEY_LEN))
        .expect("parameters were checked against Argon2's rules");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut kek = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(password, salt, kek.as_mut())
        .expect("password and salt lengths are within Argon2's limits");
    kek
}

/// What a password slot wraps, by the vault's version: the data key in
/// versions 1 and 2, the master key since 3. A master key's slot binds
/// that in its associated data, so a slot that wraps a data key (which
/// the guard holds) never opens as a master key's: with the version in
/// the header only, a guard could re-seal a vault as version 3 around
/// such a slot, and the host would derive its secrets key from a key the
/// guard knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wraps {
    DataKey,
    MasterKey,
}

impl Wraps {
    pub fn of_version(version: u16) -> Wraps {
        if version >= super::format::MASTER_KEY_VERSION {
            Wraps::MasterKey
        } else {
            Wraps::DataKey
        }
    }
}

/// The associated data of a master key's slot, after the slot's own.
const MASTER_SLOT_AAD: &[u8] = b"safeclaw-vault v3 master key";

fn slot_aad(kdf: &KdfParams, salt: &[u8; SALT_LEN], wraps: Wraps) -> Vec<u8> {
    let mut aad = PasswordSlot::aad(kdf, salt);
    if wraps == Wraps::MasterKey {
        aad.extend_from_slice(MASTER_SLOT_AAD);
    }
    aad
}

/// A new password slot for `key` (a data key in versions 1 and 2, a
/// master key since 3: `MasterKey::as_bytes`; `wraps` says which), with a
/// fresh salt.
pub fn wrap_with_password(
    key: &[u8; KEY_LEN],
    wraps: Wraps,
    password: &[u8],
    kdf: KdfParams,
) -> PasswordSlot {
    let salt: [u8; SALT_LEN] = random_array();
    let kek = derive_kek(password, &kdf, &salt);
    let aad = slot_aad(&kdf, &salt, wraps);
    // A KEK wraps exactly one key (fresh salt), so a fixed nonce never repeats.
    let wrapped = Aes256Gcm::new(kek.as_ref().into())
        .encrypt(
            Nonce::from_slice(&[0u8; 12]),
            Payload {
                msg: key,
                aad: &aad,
            },
        )
        .expect("AES-GCM encryption of 32 bytes cannot fail");
    let mut wrapped_key = [0u8; WRAPPED_KEY_LEN];
    wrapped_key.copy_from_slice(&wrapped);
    PasswordSlot {
        kdf,
        salt,
        wrapped_key,
    }
}

/// The key `slot` wraps, if `password` opens it and it wraps what `wraps`
/// says (by the vault's version: `VaultFile::unlock_keys`).
pub fn unwrap_with_password(
    slot: &PasswordSlot,
    wraps: Wraps,
    password: &[u8],
) -> Option<Zeroizing<[u8; KEY_LEN]>> {
    let kek = derive_kek(password, &slot.kdf, &slot.salt);
    let aad = slot_aad(&slot.kdf, &slot.salt, wraps);
    let plain = Zeroizing::new(
        Aes256Gcm::new(kek.as_ref().into())
            .decrypt(
                Nonce::from_slice(&[0u8; 12]),
                Payload {
                    msg: &slot.wrapped_key,
                    aad: &aad,
                },
            )
            .ok()?,
    );
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&plain);
    Some(key)
}

impl From<Zeroizing<[u8; KEY_LEN]>> for DataKey {
    fn from(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        DataKey(*bytes)
    }
}

impl From<Zeroizing<[u8; KEY_LEN]>> for MasterKey {
    fn from(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        MasterKey(*bytes)
    }
}

pub fn random_array<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::getrandom(&mut out).expect("the OS random number generator failed");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    #[test]
    fn wrap_unwrap_and_wrong_password() {
        let key = DataKey::generate();
        let slot = wrap_with_password(key.as_bytes(), Wraps::DataKey, b"correct horse", FAST);
        let back = unwrap_with_password(&slot, Wraps::DataKey, b"correct horse").unwrap();
        assert_eq!(&*back, key.as_bytes());
        assert!(unwrap_with_password(&slot, Wraps::DataKey, b"correct horsf").is_none());
        // A data key's slot is no master key's, nor the other way round.
        assert!(unwrap_with_password(&slot, Wraps::MasterKey, b"correct horse").is_none());
        let master = wrap_with_password(key.as_bytes(), Wraps::MasterKey, b"correct horse", FAST);
        assert!(unwrap_with_password(&master, Wraps::MasterKey, b"correct horse").is_some());
        assert!(unwrap_with_password(&master, Wraps::DataKey, b"correct horse").is_none());
        let mut tampered = slot.clone();
        tampered.kdf.t = 2;
        assert!(unwrap_with_password(&tampered, Wraps::DataKey, b"correct horse").is_none());
    }

    #[test]
    fn payload_keys_differ_per_salt_and_generation() {
        let key = DataKey::generate();
        let a = key.payload_key(&[1; SALT_LEN], 1, 65536);
        let b = key.payload_key(&[2; SALT_LEN], 1, 65536);
        let c = key.payload_key(&[1; SALT_LEN], 2, 65536);
        assert_ne!(a.0, b.0);
        assert_ne!(a.0, c.0);
    }

    #[test]
    fn header_mac_detects_changes() {
        let key = DataKey::generate();
        let mac = key.header_mac(b"header bytes");
        assert!(key.verify_header_mac(b"header bytes", &mac));
        assert!(!key.verify_header_mac(b"header bytez", &mac));
        assert!(!DataKey::generate().verify_header_mac(b"header bytes", &mac));
    }

    #[test]
    fn the_data_key_opens_nothing_of_the_secrets() {
        let master = MasterKey::generate();
        let (data, secrets) = (master.data_key(), master.secrets_key());
        assert_ne!(data.as_bytes(), master.as_bytes());
        assert_ne!(&data.0, &secrets.0);
        // Derived, not random: the same master gives the same keys.
        assert_eq!(master.data_key().as_bytes(), data.as_bytes());
        let sealed = secrets.seal(b"sk-ant-real");
        assert_eq!(
            &**master.secrets_key().open(&sealed).unwrap(),
            b"sk-ant-real"
        );
        // Under the data key (what the guard holds) it does not open.
        assert!(SecretsKey(*data.as_bytes()).open(&sealed).is_none());
        let mut changed = sealed.clone();
        *changed.last_mut().unwrap() ^= 1;
        assert!(secrets.open(&changed).is_none());
        assert!(secrets.open(&sealed[..11]).is_none());
    }
}

//! The vault: an authenticated, versioned, encrypted archive of a state
//! directory (docs/vault-format.md).
//!
//! - `format`: the header, pure functions over bytes;
//! - `crypto`: data key, password slots, header MAC, payload keys;
//! - `stream`: STREAM chunked AEAD over `Read`/`Write`;
//! - `archive`: tar packing and hostile-input-aware extraction;
//! - `records`: safeclaw's records, carried in the archive out of the
//!   agent's reach;
//! - `regenerable`: what OpenClaw rebuilds, left out of every seal;
//! - `blobs`, `refs`: version 4's blob store, which generations share,
//!   and the references to it that replace large files in the archive;
//! - this file: files on disk, composed from the above.

pub mod archive;
pub mod blobs;
pub mod crypto;
pub mod format;
pub mod generations;
pub mod records;
pub mod refs;
pub mod regenerable;
pub mod stream;

pub use records::{Records, RECORDS_DIR};

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Class, Error, Result};
use crate::password::Password;
use crate::private_fs::AtomicFile;
use crypto::{DataKey, MasterKey};

/// What a password opens (`VaultFile::unlock_keys`).
#[derive(Clone)]
pub struct Keys {
    /// Opens the payload; the guard's key.
    pub data: DataKey,
    /// Version 3 and later: what the slot wraps. Never leaves the host.
    pub master: Option<MasterKey>,
    /// The index of the slot that opened.
    pub slot: usize,
}

impl Keys {
    /// Opens the secrets section (version 3 and later).
    pub fn secrets_key(&self) -> Option<crypto::SecretsKey> {
        self.master.as_ref().map(MasterKey::secrets_key)
    }
}
use format::{FormatError, Header, ParsedHeader, Slot};

/// zstd level for new payloads: fast, and far better than gzip's ratio.
const ZSTD_LEVEL: i32 = 3;
const ZSTD_WORKERS: u32 = 2;
const ZSTD_JOB_SIZE: u32 = 1 << 20;
/// Readers refuse zstd frames that need a larger window (bounds memory).
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// An opened vault file: header parsed and checked, nothing decrypted.
pub struct VaultFile {
    pub path: PathBuf,
    pub parsed: ParsedHeader,
    pub file_len: u64,
    file: File,
}

/// What the error of a version this safeclaw does not read says (a file
/// of a newer safeclaw may reference blocks: `blobs::collect_garbage`).
pub const NEWER_VERSION: &str = "this safeclaw reads version";

/// Hint for a header whose key derivation is over the caps.
const KDF_CAPS_HINT: &str = "the header is damaged or hostile; nothing was derived or allocated";

/// Turns a header problem into the error users see.
fn format_error(path: &Path, e: FormatError) -> Error {
    let shown = path.display();
    match e {
        FormatError::NotAVault => Error::damaged(format!("{shown} is not a safeclaw vault"))
            .with_hint("check the path; a vault starts with the bytes SAFECLAW"),
        FormatError::UnsupportedVersion(v) => Error::damaged(format!(
            "{shown} is vault format version {v}; {NEWER_VERSION} {}",
            format::VERSION
        ))
        .with_hint("use a newer safeclaw"),
        FormatError::Damaged(what) => Error::damaged(format!("{shown} is damaged: {what}"))
            .with_hint("restore the vault from a backup; this file cannot be trusted"),
        FormatError::KdfOverCaps(k) => Error::damaged(format!(
            "{shown} asks for key derivation beyond the safety caps (m={} KiB, t={}, p={}; caps m<={} KiB, t<={}, p<={})",
            k.m_kib,
            k.t,
            k.p,
            format::KdfParams::MAX_M_KIB,
            format::KdfParams::MAX_T,
            format::KdfParams::MAX_P
        ))
        .with_hint(KDF_CAPS_HINT),
        FormatError::KdfTotalOverCaps { slots, cost } => Error::damaged(format!(
            "{shown} asks for key derivation beyond the safety caps in total: its {slots} password slots together ask for memory x passes = {cost} KiB; the cap is {} KiB (one slot at m={} KiB, t={})",
            format::KdfParams::MAX_TOTAL_COST,
            format::KdfParams::MAX_M_KIB,
            format::KdfParams::MAX_T
        ))
        .with_hint(KDF_CAPS_HINT),
    }
}

impl VaultFile {
    /// Opens and parses the header. Needs no password.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = crate::private_fs::open_regular(path)?;
        let meta = file.metadata().map_err(|e| Error::io("reading", path, e))?;
        let mut prefix = Vec::with_capacity(format::PREFIX_LEN);
        (&mut file)
            .take(format::PREFIX_LEN as u64)
            .read_to_end(&mut prefix)
            .map_err(|e| Error::io("reading", path, e))?;
        let len = format::header_len(&prefix).map_err(|e| format_error(path, e))?;
        let mut bytes = prefix;
        (&mut file)
            .take((len - format::PREFIX_LEN) as u64)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("reading", path, e))?;
        let parsed = format::parse(&bytes).map_err(|e| format_error(path, e))?;
        Ok(VaultFile {
            path: path.to_path_buf(),
            parsed,
            file_len: meta.len(),
            file,
        })
    }

    pub fn header(&self) -> &Header {
        &self.parsed.header
    }

    /// The device and inode of the file opened (not of what its path names
    /// now).
    pub fn identity(&self) -> Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let meta = self
            .file
            .metadata()
            .map_err(|e| Error::io("reading", &self.path, e))?;
        Ok((meta.dev(), meta.ino()))
    }

    /// Encrypted payload bytes (tags included).
    pub fn payload_len(&self) -> u64 {
        self.file_len.saturating_sub(self.parsed.len as u64)
    }

    /// Number of STREAM chunks the payload length implies.
    pub fn chunk_count(&self) -> u64 {
        let sealed = self.header().chunk_size as u64 + stream::TAG_LEN as u64;
        self.payload_len().div_ceil(sealed).max(1)
    }

    /// Recovers the data key with a password and authenticates the header.
    /// Also returns the index of the slot that opened.
    pub fn unlock(&self, password: &Password) -> Result<(DataKey, usize)> {
        let keys = self.unlock_keys(password)?;
        Ok((keys.data.clone(), keys.slot))
    }

    /// Recovers every key a password opens and authenticates the header:
    /// from version 3 on, the master key and what it derives; before, the
    /// data key the slot wraps.
    pub fn unlock_keys(&self, password: &Password) -> Result<Keys> {
        let mut had_slot = false;
        for (index, slot) in self.header().slots.iter().enumerate() {
            let Slot::Password(slot) = slot else { continue };
            had_slot = true;
            let wraps = crypto::Wraps::of_version(self.header().version);
            if let Some(raw) = crypto::unwrap_with_password(slot, wraps, password.as_bytes()) {
                let (data, master) = if self.header().version >= format::MASTER_KEY_VERSION {
                    let master = MasterKey::from(raw);
                    (master.data_key(), Some(master))
                } else {
                    (DataKey::from(raw), None)
                };
                if !data.verify_header_mac(&self.parsed.mac_input, &self.parsed.mac) {
                    return Err(Error::damaged(format!(
                        "{}: the header was modified (authentication failed)",
                        self.path.display()
                    ))
                    .with_hint("restore the vault from a backup; this file cannot be trusted"));
                }
                return Ok(Keys {
                    data,
                    master,
                    slot: index,
                });
            }
        }
        if !had_slot {
            return Err(Error::failure(format!(
                "{} has no password slot this safeclaw can open",
                self.path.display()
            )));
        }
        Err(Error::new(
            Class::WrongPassword,
            format!("wrong password for {}", self.path.display()),
        )
        .with_hint("try again; a vault password cannot be recovered"))
    }

    /// The sealed secrets section, if the header holds one (authenticate
    /// the header first: `unlock_keys` or `authenticate`).
    pub fn secrets_section(&self) -> Option<&[u8]> {
        self.header().slots.iter().find_map(|s| match s {
            Slot::Secrets(body) => Some(body.as_slice()),
            _ => None,
        })
    }

    /// Checks that `key` is this vault's data key (the header MAC).
    pub fn authenticate(&self, key: &DataKey) -> Result<()> {
        if key.verify_header_mac(&self.parsed.mac_input, &self.parsed.mac) {
            Ok(())
        } else {
            Err(Error::damaged(format!(
                "{}: the header does not authenticate with this key",
                self.path.display()
            )))
        }
    }

    /// The decrypted, decompressed payload (a tar stream). `on_read` gets
    /// the number of encrypted bytes consumed so far, for progress.
    ///
    /// Decryption runs on a thread of its own, a few chunks ahead of
    /// decompression and tar parsing, so two cores share the work. Chunks
    /// cross over a bounded channel in zeroizing buffers.
    pub fn payload<'a>(
        self,
        key: &DataKey,
        on_read: impl FnMut(u64) + 'a,
    ) -> Result<Box<dyn Read + 'a>> {
        let blobs = self.blobs(key);
        let manifest = self.manifest(key, on_read)?;
        Ok(match blobs {
            Some(blobs) => Box::new(refs::Rehydrate::new(manifest, blobs)),
            None => Box::new(manifest),
        })
    }

    /// The payload as it is stored: in version 4, with references to the
    /// blob store where large files were.
    fn manifest<'a>(
        mut self,
        key: &DataKey,
        on_read: impl FnMut(u64) + 'a,
    ) -> Result<impl Read + 'a> {
        self.file
            .seek(SeekFrom::Start(self.parsed.len as u64))
            .map_err(|e| Error::io("reading", &self.path, e))?;
        decrypt(self.file, &self.parsed.header, key, on_read)
    }

    /// Where this file's blocks are read from: its blob store, for a
    /// version that has one.
    fn blobs(&self, key: &DataKey) -> Option<blobs::Reader> {
        (self.header().version >= format::BLOBS_VERSION)
            .then(|| blobs::Reader::new(&crate::private_fs::parent_of(&self.path), key.blob_keys()))
    }

    /// Calls `each` with every blob id the payload references (none before
    /// version 4), reading it to its last chunk but no blob.
    pub fn referenced_blobs(
        self,
        key: &DataKey,
        each: &mut dyn FnMut(crypto::BlobId),
    ) -> Result<()> {
        if self.header().version < format::BLOBS_VERSION {
            return Ok(());
        }
        let manifest = self.manifest(key, |_| {})?;
        refs::referenced(manifest, each).map_err(|e| archive::classify_read_error(e, "payload"))
    }

    /// safeclaw's records in this vault (`records.rs`), reading only the
    /// payload's first chunks: records come first in the archive, and
    /// reading stops at the first entry that is not one. Every chunk read
    /// is authenticated; the truncation of the stream's end is not
    /// noticed here (it is by `verify`, `unpack` and every seal).
    pub fn records(&self, key: &DataKey) -> Result<Records> {
        archive::leading_records(self.payload_prefix(key)?, self.records_dir())
    }

    /// The decrypted payload for a reader that may stop early (records,
    /// one file): authenticated header, then chunks as read. Positioned
    /// reads on a clone of the file: a clone shares the file offset, and
    /// the decryption thread may still be reading ahead after the reader
    /// is dropped.
    fn payload_prefix(&self, key: &DataKey) -> Result<Box<dyn Read>> {
        self.authenticate(key)?;
        let file = self
            .file
            .try_clone()
            .map_err(|e| Error::io("reading", &self.path, e))?;
        let at = PositionedReader {
            file,
            pos: self.parsed.len as u64,
        };
        let manifest = decrypt(at, self.header(), key, |_| {})?;
        Ok(match self.blobs(key) {
            Some(blobs) => Box::new(refs::Rehydrate::new(manifest, blobs)),
            None => Box::new(manifest),
        })
    }

    /// What `.safeclaw` entries of this vault's payload are: its records
    /// from format version 2 on, the state's own before.
    pub fn records_dir(&self) -> archive::RecordsDir {
        archive::RecordsDir::of_version(self.header().version)
    }

    /// The content of one file of the state (`name`, relative to its root,
    /// at most `max` bytes), reading the payload only as far as it; None
    /// when the state has no such regular file.
    pub fn state_file(
        &self,
        key: &DataKey,
        name: &str,
        max: u64,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
        archive::find_file(self.payload_prefix(key)?, Path::new(name), max)
    }

    /// Calls `visit` with each regular file of the state (`archive::each_file`),
    /// reading the payload to its end, so every chunk is authenticated.
    pub fn each_file(
        self,
        key: &DataKey,
        visit: impl FnMut(&Path, u64, &mut dyn Read) -> Result<archive::Flow>,
    ) -> Result<()> {
        let mut payload = self.payload(key, |_| {})?;
        archive::each_file(&mut payload, visit)?;
        drain(&mut payload)
    }

    /// Authenticates every chunk and applies every extraction rule to the
    /// archive, writing nothing.
    pub fn verify(self, key: &DataKey, on_read: impl FnMut(u64)) -> Result<archive::Stats> {
        let mode = self.records_dir();
        let mut payload = self.payload(key, on_read)?;
        let stats = archive::check(&mut payload, mode)?;
        drain(&mut payload)?;
        Ok(stats)
    }

    /// Extracts the state into `dest` (an empty private directory the
    /// caller made) and returns it with safeclaw's records, which are not
    /// written there.
    pub fn unpack(
        self,
        key: &DataKey,
        dest: &Path,
        on_read: impl FnMut(u64),
    ) -> Result<(archive::Stats, Records)> {
        let mode = self.records_dir();
        let mut payload = self.payload(key, on_read)?;
        let unpacked = archive::unpack(&mut payload, dest, mode, &mut |_| {})?;
        drain(&mut payload)?;
        Ok(unpacked)
    }
}

/// Decrypts and decompresses the payload read from `source` (positioned
/// at its first chunk) on a thread of its own, a few chunks ahead of
/// decompression and tar parsing, so two cores share the work. Chunks
/// cross over a bounded channel in zeroizing buffers.
fn decrypt<'a, R: Read + Send + 'static>(
    source: R,
    h: &Header,
    key: &DataKey,
    mut on_read: impl FnMut(u64) + 'a,
) -> Result<impl Read + 'a> {
    let payload_key = key.payload_key(&h.payload_salt, h.generation, h.chunk_size);
    let chunk_size = h.chunk_size;
    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Option<(Plain, u64)>>>(8);
    std::thread::Builder::new()
        .name("vault-decrypt".into())
        .spawn(move || {
            let counted = Progress {
                inner: source,
                done: 0,
            };
            let mut chunks = stream::StreamReader::new(counted, &payload_key, chunk_size);
            loop {
                let mut buf = Plain(Zeroizing::new(vec![0u8; chunk_size as usize]));
                let (message, more) = match crate::io_util::read_full(&mut chunks, &mut buf.0) {
                    // Explicit: a disconnect without it means the
                    // thread died, which must not read as a clean end.
                    Ok(0) => (Ok(None), false),
                    Ok(n) => {
                        buf.0.truncate(n);
                        (Ok(Some((buf, chunks.get_ref().done))), true)
                    }
                    Err(e) => (Err(e), false),
                };
                // A send fails when the reader is gone: stop quietly.
                if tx.send(message).is_err() || !more {
                    return;
                }
            }
        })
        .map_err(|e| Error::failure(format!("starting the decryption thread: {e}")))?;
    let plain = ChannelReader {
        rx,
        current: Plain(Zeroizing::new(Vec::new())),
        pos: 0,
        report: move |n| on_read(n),
        finished: false,
    };
    let mut decoder = zstd::stream::read::Decoder::new(plain)
        .map_err(|e| Error::failure(format!("starting zstd: {e}")))?;
    decoder
        .window_log_max(ZSTD_WINDOW_LOG_MAX)
        .map_err(|e| Error::failure(format!("configuring zstd: {e}")))?;
    Ok(decoder)
}

/// Reads a file from `pos` on with `pread`, leaving the file offset alone.
struct PositionedReader {
    file: File,
    pos: u64,
}

impl Read for PositionedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(&self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads the rest of the payload so that every chunk up to the one flagged
/// last is authenticated, even when tar stopped at its end marker.
fn drain(payload: &mut impl Read) -> Result<()> {
    io::copy(payload, &mut io::sink())
        .map(|_| ())
        .map_err(|e| archive::classify_read_error(e, "payload"))
}

/// Copies a payload as it is into a new one (re-sealed under another
/// key or salt), its read errors classified.
fn copy_payload(payload: &mut dyn Read, w: &mut dyn Write) -> Result<()> {
    io::copy(payload, w)
        .map(|_| ())
        .map_err(|e| archive::classify_read_error(e, "payload"))
}

/// Header bytes including the MAC.
fn encode_header(key: &DataKey, header: &Header) -> Result<Vec<u8>> {
    let mut bytes = format::serialize_mac_input(header)
        .map_err(|_| Error::failure("internal error: the new header is not valid"))?;
    let mac = key.header_mac(&bytes);
    bytes.extend_from_slice(&mac);
    Ok(bytes)
}

/// A new header for a first generation with one password slot around
/// `master` (the payload is then sealed under `master.data_key()`).
pub fn new_header(master: &MasterKey, password: &Password, kdf: format::KdfParams) -> Header {
    Header {
        version: format::VERSION,
        generation: 1,
        created: now(),
        chunk_size: format::DEFAULT_CHUNK_SIZE,
        payload_salt: crypto::random_array(),
        slots: vec![Slot::Password(crypto::wrap_with_password(
            master.as_bytes(),
            crypto::Wraps::MasterKey,
            password.as_bytes(),
            kdf,
        ))],
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Seals `dir` as the next generation of the vault at `path`, with the
/// same data key and slots and a fresh payload salt, and `records` as its
/// records (a `.safeclaw` in `dir` is not sealed: see `archive::pack`).
/// The generation being replaced is kept as `<path>.g<N>` (a hard link:
/// nothing is copied and the swap is atomic), and only the newest `keep`
/// older ones are left. `dir` must not be a link. Returns the new
/// generation.
pub fn seal_next_generation(
    path: &Path,
    key: &DataKey,
    dir: &Path,
    keep: usize,
    records: &Records,
) -> Result<u64> {
    let tree = archive::OpenTree::open(dir)?;
    seal_next_generation_of(path, key, &tree, keep, records)
}

/// `seal_next_generation` of a directory opened before (the guard opens
/// its checkpoint copy while the gateway is frozen).
pub fn seal_next_generation_of(
    path: &Path,
    key: &DataKey,
    dir: &archive::OpenTree,
    keep: usize,
    records: &Records,
) -> Result<u64> {
    let current = VaultFile::open(path)?;
    current.authenticate(key)?;
    let old = current.header().clone();
    drop(current);
    write_next_generation(path, key, old, keep, |w| {
        archive::pack_tree(dir, records, w, &mut |_| {}).map(|_| ())
    })
}

/// Changes the records of the vault at `path` (host side): authenticates
/// it with `key`, reads its records, lets `change` edit them, and writes
/// the next generation (as `seal_next_generation` does: same header but
/// for generation, creation time and payload salt; the replaced one kept
/// per `keep`) whose payload is the new records followed by every other
/// entry of the current archive, copied through unchanged as it streams by
/// (memory does not depend on the state's size). Nothing replaces the
/// current file until the new one is complete and the old payload was
/// authenticated to its last chunk. Returns the new generation.
///
/// The caller makes sure no guard runs from this vault meanwhile: a
/// guard seals the records it holds in memory, so its next seal would
/// undo the change.
pub fn rewrite_records(
    path: &Path,
    key: &DataKey,
    keep: usize,
    change: impl FnOnce(&mut Records) -> Result<()>,
) -> Result<u64> {
    let current = VaultFile::open(path)?;
    current.authenticate(key)?;
    let before = current.records(key)?;
    let mut records = before.clone();
    change(&mut records)?;
    let old = current.header().clone();
    let shown = current.path.display().to_string();
    let mode = current.records_dir();
    let mut payload = current.payload(key, |_| {})?;
    write_next_generation(path, key, old, keep, |w| {
        let (_, found) = archive::rewrite(&mut payload, mode, &records, w)?;
        drain(&mut payload)?;
        // safeclaw writes records first; ones further on (someone else's
        // archive) were not read at the start, so `change` saw too few.
        if found != before {
            return Err(Error::damaged(format!(
                "{shown} holds safeclaw's records after other entries of its archive"
            ))
            .with_hint("safeclaw never writes a vault so; nothing was changed"));
        }
        Ok(())
    })
}

/// Where a restored generation takes safeclaw's records and the header's
/// slots from (`restore_generation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settings {
    /// The current file's: what the user set since stays (a rollback by
    /// hand, after an upgrade was kept).
    Current,
    /// The earlier file's: nothing can have been set since, and the
    /// current file is the failed run's to write (an upgrade that never
    /// became healthy, or was interrupted).
    Earlier,
}

/// Seals the state of `earlier` (a vault file under the same data key, at
/// generation `expected`: the copy `upgrade` keeps out of the container's
/// reach) as a new generation of the vault at `path`, numbered above the
/// current file's, `floor` (the highest generation this host has seen)
/// and `expected`, with the records and slots `settings` says. The
/// current file is kept as `<path>.g<N>` if it authenticates; if it does
/// not (deleted, damaged or swapped by the container that could write its
/// directory), `earlier` alone makes the new file and it is replaced.
/// `earlier`'s payload is authenticated to its last chunk before anything
/// replaces the current file. Returns the new generation.
///
/// The caller makes sure no guard runs from this vault meanwhile.
pub fn restore_generation(
    path: &Path,
    earlier: &Path,
    expected: u64,
    floor: u64,
    key: &DataKey,
    keep: usize,
    settings: Settings,
) -> Result<u64> {
    let old = VaultFile::open(earlier)?;
    old.authenticate(key).map_err(|e| {
        let message = format!(
            "{} does not open with the vault's key: {}",
            earlier.display(),
            e.message
        );
        Error::new(e.class, message).with_hint(
            "it was kept before the vault's key changed (`vault passwd`/`rekey`), or it was modified",
        )
    })?;
    expect_generation(&old, expected, "it was replaced since; nothing was changed")?;
    // The current file: trusted only if it authenticates. Missing, not a
    // vault, or failing its check with the key: set aside below (never
    // unlinked). Any other failure to read it (I/O, a signal) stops here.
    let current = match VaultFile::open(path) {
        Ok(c) => match c.authenticate(key) {
            Ok(()) => Some(c),
            Err(e) if matches!(e.class, Class::Damaged | Class::WrongPassword) => None,
            Err(e) => return Err(e),
        },
        Err(e) if matches!(e.class, Class::Damaged) => None,
        Err(_) if fs::symlink_metadata(path).is_err() => None,
        Err(e) => return Err(e),
    };
    if current.is_none() && settings == Settings::Current {
        return Err(Error::damaged(format!(
            "{} does not authenticate with the vault's key: the settings set since the upgrade cannot be kept",
            path.display()
        ))
        .with_hint("nothing was changed; `safeclaw vault verify` says what is wrong with it"));
    }
    let current_generation = current.as_ref().map(|c| c.header().generation);
    let (base, records) = match &current {
        Some(c) if settings == Settings::Current => (c.header().clone(), c.records(key)?),
        _ => (old.header().clone(), old.records(key)?),
    };
    drop(current);
    // Above every generation there is: the current file, what this host
    // saw, and every kept `<path>.gN` that authenticates (a failed run's
    // checkpoints among them: numbered below them, the restore would be
    // pruned before them, and one moved over the vault later would pass
    // for newer).
    // By the authenticated header's number: a file's name is the
    // container's to choose.
    let kept = generations::older(path)?
        .into_iter()
        .filter_map(|(_, p)| {
            let v = VaultFile::open(&p).ok()?;
            v.authenticate(key).ok()?;
            Some(v.header().generation)
        })
        .max()
        .unwrap_or(0);
    let generation = current_generation
        .unwrap_or(0)
        .max(floor)
        .max(expected)
        .max(kept)
        .checked_add(1)
        .ok_or_else(|| Error::damaged("the vault's generation number is exhausted"))?;
    if current_generation.is_none() && fs::symlink_metadata(path).is_ok() {
        // What stood there stays readable beside it, under a name of its
        // own; the rename moves a link itself, never what it points to.
        let mut aside = path.as_os_str().to_owned();
        aside.push(format!(".unverified-{}", now()));
        fs::rename(path, &aside).map_err(|e| Error::io("setting aside", path, e))?;
    }
    let header = Header {
        version: next_version(base.version),
        generation,
        created: now(),
        payload_salt: crypto::random_array(),
        ..base
    };
    let mode = old.records_dir();
    let mut payload = old.payload(key, |_| {})?;
    if let Some(g) = current_generation {
        generations::keep(path, g)?;
    }
    let written = write(path, Replace::Atomically, key, &header, |w| {
        archive::rewrite(&mut payload, mode, &records, w)?;
        drain(&mut payload)
    });
    if let Err(e) = written {
        if let Some(g) = current_generation {
            generations::unkeep(path, g);
        }
        return Err(e);
    }
    // The restore is in place: a prune that fails costs disk, not it.
    if generations::prune(path, keep).is_ok_and(|n| n > 0) {
        collect_garbage(path, key);
    }
    Ok(generation)
}

/// Replaces the secrets section of the vault at `path` (host side; None
/// removes it): the next generation, its payload the current one's, read
/// to its last chunk and copied through, its password slots as they were.
/// Version 3 only: before it, the slots wrap the data key the guard holds,
/// and a section under it would be open to the gateway's container.
///
/// The caller makes sure no guard runs from this vault meanwhile: its next
/// seal would race this one for the generation.
pub fn rewrite_secrets(
    path: &Path,
    key: &DataKey,
    keep: usize,
    section: Option<Vec<u8>>,
) -> Result<u64> {
    let current = VaultFile::open(path)?;
    current.authenticate(key)?;
    if current.header().version < format::MASTER_KEY_VERSION {
        return Err(Error::usage(format!(
            "{} is vault format version {}, whose password slot opens the guard's key: it cannot keep secrets from the gateway",
            path.display(),
            current.header().version
        ))
        .with_hint("`safeclaw vault rekey` moves it to the current version (a new key for it and its kept generations)"));
    }
    let mut old = current.header().clone();
    old.slots.retain(|s| !matches!(s, Slot::Secrets(_)));
    old.slots.extend(section.map(Slot::Secrets));
    let mut payload = current.payload(key, |_| {})?;
    write_next_generation(path, key, old, keep, |w| copy_payload(&mut payload, w))
}

/// The version a new payload of a file at `version` is written as: with
/// records first, so at least 2; and with a blob store from 3 on, whose
/// key schedule (what the slots wrap) 4 keeps. Versions 1 and 2, whose
/// slots wrap the data key, keep their key schedule until `vault rekey`.
fn next_version(version: u16) -> u16 {
    if version >= format::MASTER_KEY_VERSION {
        format::VERSION
    } else {
        version.max(format::RECORDS_VERSION)
    }
}

/// Removes the blocks no file under `key` next to `path` references any
/// more, after a generation was pruned. Best effort: a failure (a kept
/// file that does not read to its end) leaves blocks behind, which costs
/// disk, not the seal that just finished.
fn collect_garbage(path: &Path, key: &DataKey) {
    let _ = blobs::collect_garbage(&crate::private_fs::parent_of(path), key);
}

/// Writes the generation after `old` at `path` under `key`, its payload
/// made by `fill` (a tar stream), keeping the replaced file as
/// `<path>.g<N>` and the newest `keep` older ones.
fn write_next_generation(
    path: &Path,
    key: &DataKey,
    old: Header,
    keep: usize,
    fill: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<u64> {
    // A new payload, written with records first, so at least the records'
    // version; the key schedule (what the slots wrap) stays as it was.
    let header = Header {
        version: next_version(old.version),
        generation: old.generation + 1,
        created: now(),
        payload_salt: crypto::random_array(),
        ..old
    };
    generations::keep(path, old.generation)?;
    let written = write(path, Replace::Atomically, key, &header, fill);
    if let Err(e) = written {
        // The link just made is the current file under a second name;
        // left there, generation N would be listed as older than itself.
        generations::unkeep(path, old.generation);
        return Err(e);
    }
    if generations::prune(path, keep)? > 0 {
        collect_garbage(path, key);
    }
    Ok(header.generation)
}

/// A vault file re-sealed under a new key, complete under a temporary
/// name next to it: `commit` renames it over the original, dropping it
/// removes it and leaves the original as it was.
pub struct Resealed {
    file: AtomicFile,
    pub generation: u64,
}

impl Resealed {
    pub fn commit(self) -> Result<()> {
        self.file.commit()
    }
}

/// Re-seals the vault file `current` (opened, authenticated with
/// `old_key`) under `new_key` with `slots` as `version` (the payload is
/// the same in versions 2 and 3, which differ in what the slots wrap):
/// same generation and creation time, a fresh payload salt. The payload is read through to its last
/// chunk, so a damaged file fails whole; nothing replaces the original
/// until `Resealed::commit`.
pub fn reseal(
    current: VaultFile,
    old_key: &DataKey,
    new_key: &DataKey,
    version: u16,
    slots: &[Slot],
) -> Result<Resealed> {
    current.authenticate(old_key)?;
    let path = current.path.clone();
    let header = Header {
        version,
        payload_salt: crypto::random_array(),
        slots: slots.to_vec(),
        ..current.header().clone()
    };
    let mut payload = current.payload(old_key, |_| {})?;
    let shape = header.clone();
    let (file, ()) = write_staged(
        &path,
        Storage::Blobs,
        new_key,
        &shape,
        || Ok(header),
        |w| copy_payload(&mut payload, w),
    )?;
    Ok(Resealed {
        file,
        generation: shape.generation,
    })
}

/// Where a new payload of version 4 puts its large files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    /// In the blob store next to the file, shared by its generations.
    Blobs,
    /// In the file itself: a copy that must stand alone.
    Inline,
}

/// Refuses `file` (authenticated) unless its header says generation
/// `expected`: the one a record names.
fn expect_generation(file: &VaultFile, expected: u64, hint: &str) -> Result<()> {
    let generation = file.header().generation;
    if generation != expected {
        return Err(Error::damaged(format!(
            "{} is generation {generation}, not the generation {expected} that was recorded",
            file.path.display()
        ))
        .with_hint(hint));
    }
    Ok(())
}

/// Copies the vault file `src` (authenticated with `key`, at generation
/// `expected`) to `dest` as a file that stands alone: every file of the
/// state inline, none in a blob store, which `dest`'s directory does not
/// have (the copy `upgrade` keeps out of the container's reach). Same
/// header but for a fresh payload salt; `src` is read to its last chunk
/// and every block it references is authenticated before `dest` appears.
pub fn copy_standalone(src: &Path, key: &DataKey, expected: u64, dest: &Path) -> Result<()> {
    let from = VaultFile::open(src)?;
    from.authenticate(key)?;
    expect_generation(
        &from,
        expected,
        "it was replaced meanwhile; nothing was copied",
    )?;
    let header = Header {
        payload_salt: crypto::random_array(),
        ..from.header().clone()
    };
    let mut payload = from.payload(key, |_| {})?;
    let (out, ()) = write_staged(
        dest,
        Storage::Inline,
        key,
        &header.clone(),
        || Ok(header),
        |w| copy_payload(&mut payload, w),
    )?;
    out.commit()
}

/// Whether `write` may replace an existing file at its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Fail if the destination exists (new vaults).
    Never,
    /// Rename over it (new generations of an existing vault).
    Atomically,
}

/// Seals `fill`'s output (a tar stream) as the payload of a vault written
/// atomically to `dest`: header, then zstd, then STREAM. The previous file
/// at `dest`, if any, stays intact until the final rename.
pub fn write<T>(
    dest: &Path,
    replace: Replace,
    key: &DataKey,
    header: &Header,
    fill: impl FnOnce(&mut dyn Write) -> Result<T>,
) -> Result<T> {
    write_late_header(dest, replace, key, header, || Ok(header.clone()), fill)
}

/// Creates a new vault (generation 1, one password slot) at `dest`.
///
/// The payload is encrypted under the random data key; only the header's
/// slot needs Argon2. So Argon2 runs on its own thread while the payload is
/// sealed, and the header is written last: the file is a private temporary
/// until the final link, so nobody sees it without its header.
pub fn create<T>(
    dest: &Path,
    password: Password,
    kdf: format::KdfParams,
    fill: impl FnOnce(&mut dyn Write) -> Result<T>,
) -> Result<T> {
    create_with_key(dest, &MasterKey::generate(), None, password, kdf, fill)
}

/// `create` with a master key the caller keeps (onboarding hands its data
/// key to the guard without a second Argon2 run) and, when given, a
/// secrets section sealed under its secrets key.
pub fn create_with_key<T>(
    dest: &Path,
    master: &MasterKey,
    secrets: Option<Vec<u8>>,
    password: Password,
    kdf: format::KdfParams,
    fill: impl FnOnce(&mut dyn Write) -> Result<T>,
) -> Result<T> {
    let placeholder_slot = Slot::Password(format::PasswordSlot {
        kdf,
        salt: [0; format::SALT_LEN],
        wrapped_key: [0; format::WRAPPED_KEY_LEN],
    });
    let with_secrets = |first: Slot| {
        let mut slots = vec![first];
        slots.extend(secrets.clone().map(Slot::Secrets));
        slots
    };
    let shape = Header {
        version: format::VERSION,
        generation: 1,
        created: now(),
        chunk_size: format::DEFAULT_CHUNK_SIZE,
        payload_salt: crypto::random_array(),
        slots: with_secrets(placeholder_slot),
    };
    let wrap = {
        let master = master.clone();
        std::thread::Builder::new()
            .name("argon2".into())
            .spawn(move || {
                crypto::wrap_with_password(
                    master.as_bytes(),
                    crypto::Wraps::MasterKey,
                    password.as_bytes(),
                    kdf,
                )
            })
            .map_err(|e| Error::failure(format!("starting the key derivation thread: {e}")))?
    };
    let finish = || {
        let slot = wrap
            .join()
            .map_err(|_| Error::failure("the key derivation thread failed"))?;
        Ok(Header {
            slots: with_secrets(Slot::Password(slot)),
            ..shape.clone()
        })
    };
    write_late_header(
        dest,
        Replace::Never,
        &master.data_key(),
        &shape,
        finish,
        fill,
    )
}

/// `write`, with the header produced by `header` after the payload is
/// sealed. `shape` fixes the header's length and the payload key's inputs
/// (salt, generation, chunk size); the final header must agree with it.
fn write_late_header<T>(
    dest: &Path,
    replace: Replace,
    key: &DataKey,
    shape: &Header,
    header: impl FnOnce() -> Result<Header>,
    fill: impl FnOnce(&mut dyn Write) -> Result<T>,
) -> Result<T> {
    let (out, value) = write_staged(dest, Storage::Blobs, key, shape, header, fill)?;
    match replace {
        Replace::Never => out.commit_new()?,
        Replace::Atomically => out.commit()?,
    }
    Ok(value)
}

/// `write_late_header` up to, not including, the final rename: the sealed
/// file is complete under its temporary name, and dropping the returned
/// `AtomicFile` removes it.
fn write_staged<T>(
    dest: &Path,
    storage: Storage,
    key: &DataKey,
    shape: &Header,
    header: impl FnOnce() -> Result<Header>,
    fill: impl FnOnce(&mut dyn Write) -> Result<T>,
) -> Result<(AtomicFile, T)> {
    let mut store = match storage {
        Storage::Blobs if shape.version >= format::BLOBS_VERSION => Some(blobs::Writer::open(
            &crate::private_fs::parent_of(dest),
            key.blob_keys(),
        )?),
        _ => None,
    };
    let mut out = AtomicFile::create(dest)?;
    let io_err = |e: io::Error| Error::io("writing", dest, e);
    let header_len = encode_header(key, shape)?.len();
    out.file()
        .write_all(&vec![0u8; header_len])
        .map_err(io_err)?;
    let payload_key = key.payload_key(&shape.payload_salt, shape.generation, shape.chunk_size);
    let file = io::BufWriter::with_capacity(256 * 1024, out.file().try_clone().map_err(io_err)?);
    let chunks = stream::StreamWriter::new(file, &payload_key, shape.chunk_size);
    let mut encoder = zstd::stream::write::Encoder::new(chunks, ZSTD_LEVEL).map_err(io_err)?;
    // Two workers compress while this thread reads and encrypts. Small jobs
    // keep zstd's buffers near 12 MB instead of 60 MB (default 8 MiB jobs).
    encoder.multithread(ZSTD_WORKERS).map_err(io_err)?;
    encoder
        .set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))
        .map_err(io_err)?;
    let value = match store.as_mut() {
        Some(store) => {
            let mut dehydrate = refs::Dehydrate::new(&mut encoder, store);
            let value = fill(&mut dehydrate)?;
            dehydrate.finish().map_err(io_err)?;
            value
        }
        None => fill(&mut encoder)?,
    };
    let chunks = encoder.finish().map_err(io_err)?;
    let file = chunks.finish().map_err(io_err)?;
    file.into_inner().map_err(|e| io_err(e.into_error()))?;

    let header = header()?;
    let bytes = encode_header(key, &header)?;
    let same_payload_key = (header.payload_salt, header.generation, header.chunk_size)
        == (shape.payload_salt, shape.generation, shape.chunk_size);
    if bytes.len() != header_len || !same_payload_key {
        return Err(Error::failure(
            "internal error: the final header does not match its shape",
        ));
    }
    std::os::unix::fs::FileExt::write_all_at(out.file(), &bytes, 0).map_err(io_err)?;
    // The blocks are on disk before the file that references them is.
    if let Some(store) = store.as_mut() {
        store.commit()?;
    }
    Ok((out, value))
}

/// Counts bytes read from the vault file (for progress) and stops on a signal.
struct Progress<R> {
    inner: R,
    done: u64,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if crate::interrupt::requested() {
            return Err(crate::interrupt::io_error());
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        Ok(n)
    }
}

/// Decrypted bytes in flight between the two threads.
struct Plain(Zeroizing<Vec<u8>>);

/// The consuming end of the decryption thread, as a `Read`.
struct ChannelReader<F> {
    rx: std::sync::mpsc::Receiver<io::Result<Option<(Plain, u64)>>>,
    current: Plain,
    pos: usize,
    report: F,
    /// Set at the end marker or after an error: nothing more will come.
    finished: bool,
}

impl<F: FnMut(u64)> Read for ChannelReader<F> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.0.len() {
            if self.finished {
                return Ok(0);
            }
            match self.rx.recv() {
                Err(_) => {
                    return Err(io::Error::other(
                        "the decryption thread stopped unexpectedly",
                    ))
                }
                Ok(Ok(None)) => self.finished = true,
                Ok(Err(e)) => {
                    self.finished = true;
                    return Err(e);
                }
                Ok(Ok(Some((plain, done)))) => {
                    (self.report)(done);
                    self.current = plain;
                    self.pos = 0;
                }
            }
        }
        let n = out.len().min(self.current.0.len() - self.pos);
        out[..n].copy_from_slice(&self.current.0[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::format::KdfParams;

    const FAST: KdfParams = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    fn empty(w: &mut dyn Write) -> Result<()> {
        tar::Builder::new(w)
            .finish()
            .map_err(|e| Error::failure(format!("tar: {e}")))
    }

    /// A guard of a version 2 vault holds the key its slot wraps. With it
    /// alone (no password) it re-seals the vault as version 3 keeping that
    /// slot: the host must not take the slot's key for a master key, or
    /// the secrets it seals next open with a key the guard derives.
    #[test]
    fn a_version_2_slot_is_never_taken_for_a_version_3_master_key() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("v.vault");
        let password = Password::new(b"pw").unwrap();
        // An honest version 2 vault: its slot wraps the data key K.
        let k = MasterKey::generate().data_key();
        let mut header = new_header(&MasterKey::generate(), &password, FAST);
        header.version = 2;
        header.slots = vec![Slot::Password(crypto::wrap_with_password(
            k.as_bytes(),
            crypto::Wraps::DataKey,
            b"pw",
            FAST,
        ))];
        write(&path, Replace::Never, &k, &header, empty).unwrap();

        // The guard, with K only, forges version 3 around the same slot.
        let fake_master = MasterKey::from(Zeroizing::new(*k.as_bytes()));
        let current = VaultFile::open(&path).unwrap();
        let slots = current.header().slots.clone();
        reseal(current, &k, &fake_master.data_key(), 3, &slots)
            .unwrap()
            .commit()
            .unwrap();

        let forged = VaultFile::open(&path).unwrap();
        assert_eq!(forged.header().version, 3);
        if let Ok(keys) = forged.unlock_keys(&password) {
            let sealed = keys
                .secrets_key()
                .expect("version 3")
                .seal(b"sk-ant-api03-REAL");
            assert!(
                fake_master.secrets_key().open(&sealed).is_none(),
                "the host sealed the secrets under a key the guard derives from its data key"
            );
        }
    }
}

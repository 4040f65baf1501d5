//! Version 4's blob store (docs/vault-format.md, "Blobs"): the contents
//! of a state's larger files, cut into blocks of `BLOCK` bytes, each
//! sealed once into a file named by its keyed hash. Generations share the
//! blocks they have in common, so keeping one costs what changed, and a
//! seal writes only blocks the store does not hold yet.
//!
//! The store is a directory next to the vault, named from the data key
//! (`crypto::BlobKeys::store_name`): every file under one key (the vault,
//! its kept generations, a rekey's temporaries) finds the same store, and
//! files under another key another one. It lives where the container can
//! write, so it is read as hostile: opened without following links,
//! entries type-checked on the descriptor, sizes bounded before reading,
//! every blob authenticated under its own id's key.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use rustix::fs::{Mode, OFlags};
use zeroize::Zeroizing;

use super::crypto::{BlobId, BlobKeys, DataKey};
use crate::error::{Class, Error, Result};

/// Plaintext bytes per block (the last block of a file holds the rest).
pub const BLOCK: usize = 1 << 20;
/// Files up to this size stay inline in the archive: a block of their
/// own would cost a file per note and config.
pub const INLINE_MAX: u64 = 16 * 1024;
/// A file's size in a reference (`refs`) is at most this: 2^20 blocks.
pub const MAX_FILE: u64 = (BLOCK as u64) << 20;
/// Where a store's directory name starts; the rest is from the key.
pub const STORE_PREFIX: &str = "safeclaw-blobs-";
/// zstd level for blocks, as for whole payloads.
const ZSTD_LEVEL: i32 = 3;
/// A blob's temporary name starts so (never 64 hex digits).
const TEMP_PREFIX: &str = ".tmp-";
/// The most entries a store is read with, and the most distinct blocks
/// the files next to it may reference together: 2 TiB of distinct data.
/// What a reader holds for them (a set of ids, about 40 bytes each) is
/// bounded so, whatever the container put in the store or the files.
pub const MAX_BLOBS: usize = 1 << 21;

fn too_many(what: &Path) -> Error {
    Error::damaged(format!(
        "{} holds more than {MAX_BLOBS} blocks, more than a vault can reference",
        what.display()
    ))
    .with_hint("something other than safeclaw filled it; nothing was removed")
}

/// The most bytes a blob file can hold: nonce, tag and zstd's bound for
/// one block. Checked on the descriptor before anything is read.
pub fn max_blob_len() -> u64 {
    12 + 16 + zstd::zstd_safe::compress_bound(BLOCK) as u64
}

/// What is wrong with a blob, carried in an `io::Error` through the
/// archive readers (`archive::classify_read_error` reports it as damage).
#[derive(Debug)]
pub struct BlobError(pub String);

impl std::fmt::Display for BlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BlobError {}

fn damaged(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, BlobError(what))
}

/// A failure of this machine while blocks were sealed or read on threads
/// of their own (no thread, a full disk, a panic): never damage, so no
/// caller takes the file for damaged (`vault rekey` deletes those).
#[derive(Debug)]
pub struct ThreadFailure(pub String);

impl std::fmt::Display for ThreadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ThreadFailure {}

pub(crate) fn thread_failure(what: impl std::fmt::Display) -> io::Error {
    io::Error::other(ThreadFailure(what.to_string()))
}

/// The hint of every error about a blob or the store, which `vault
/// passwd`/`rekey` tell apart from damage to a file itself (a missing
/// store is no reason to delete a kept generation).
pub const DAMAGE_HINT: &str =
    "its blob store is part of it: restore the vault's whole directory from a backup";

/// What this process saw of a blob file it wrote or authenticated: the
/// inode and its change time, which no one can set back (an overwrite or a
/// `touch` changes it). A seal reuses a blob without reading it only while
/// its file is still that one; any other blob of that name is authenticated
/// first (the container can write the store, and disks rot), and written
/// again if it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: i64,
    ctime: (i64, i64),
}

impl Stamp {
    // The field types of `stat` differ between architectures.
    #[allow(clippy::unnecessary_cast)]
    fn of(st: &rustix::fs::Stat) -> Self {
        Stamp {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: st.st_size as i64,
            ctime: (st.st_ctime as i64, st.st_ctime_nsec as i64),
        }
    }
}

/// Blobs this process authenticated or wrote, by id (ids under two keys
/// never meet: they are keyed hashes). At most `MAX_BLOBS`, then forgotten.
static TRUSTED: LazyLock<Mutex<HashMap<BlobId, Stamp>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn trust(id: &BlobId, stamp: Stamp) {
    let mut trusted = TRUSTED.lock().unwrap_or_else(|e| e.into_inner());
    if trusted.len() >= MAX_BLOBS {
        trusted.clear();
    }
    trusted.insert(*id, stamp);
}

fn trusted(id: &BlobId, stamp: Stamp) -> bool {
    let trusted = TRUSTED.lock().unwrap_or_else(|e| e.into_inner());
    trusted.get(id) == Some(&stamp)
}

/// Reads and authenticates blob `id` (exactly `len` bytes of plaintext)
/// in the open store `dir`, and remembers its file as trusted.
fn read_blob(
    dir: &OwnedFd,
    keys: &BlobKeys,
    id: &BlobId,
    len: usize,
) -> io::Result<Zeroizing<Vec<u8>>> {
    let name = crate::private_fs::hex(id);
    let fd = rustix::fs::openat(
        dir,
        name.as_str(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => damaged(format!("blob {name} is missing")),
        _ if e == rustix::io::Errno::LOOP => damaged(format!("blob {name} is a symbolic link")),
        _ => e.into(),
    })?;
    let st = rustix::fs::fstat(&fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(damaged(format!("blob {name} is not a regular file")));
    }
    let size = st.st_size as u64;
    if size > max_blob_len() {
        return Err(damaged(format!(
            "blob {name} is larger than a block can be"
        )));
    }
    let mut sealed = Vec::with_capacity(size as usize);
    std::fs::File::from(fd)
        .take(size)
        .read_to_end(&mut sealed)?;
    let compressed = keys
        .open(id, &sealed)
        .ok_or_else(|| damaged(format!("blob {name} does not authenticate")))?;
    let plain = Zeroizing::new(
        zstd::bulk::decompress(&compressed, len)
            .map_err(|_| damaged(format!("blob {name} does not decompress to its size")))?,
    );
    if plain.len() != len {
        return Err(damaged(format!("blob {name} does not hold its size")));
    }
    // A change time this close to now may be shared by a later write in
    // the same clock tick (coarse timestamps): such a file is read again
    // next time rather than trusted.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    #[allow(clippy::unnecessary_cast)]
    let changed = st.st_ctime as i128 * 1_000_000_000 + st.st_ctime_nsec as i128;
    if now - changed > 2_000_000_000 {
        trust(id, Stamp::of(&st));
    }
    Ok(plain)
}

/// The store's path for files under `keys` in `vault_dir`.
pub fn store_path(vault_dir: &Path, keys: &BlobKeys) -> PathBuf {
    vault_dir.join(keys.store_name())
}

/// Opens `vault_dir` (the user's path, followed) and in it the directory
/// `name` without following a link.
fn open_store_dir(vault_dir: &Path, name: &str) -> io::Result<OwnedFd> {
    let dir = rustix::fs::open(
        vault_dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(rustix::fs::openat(
        &dir,
        name,
        super::archive::DIR_NOFOLLOW,
        Mode::empty(),
    )?)
}

/// A store opened for reading, opened at the first blob asked for (a
/// vault of version 4 with every file inline needs none).
pub struct Reader {
    vault_dir: PathBuf,
    keys: BlobKeys,
    dir: Option<OwnedFd>,
    last: Option<(BlobId, Zeroizing<Vec<u8>>)>,
}

impl Reader {
    pub fn new(vault_dir: &Path, keys: BlobKeys) -> Self {
        Reader {
            vault_dir: vault_dir.to_path_buf(),
            keys,
            dir: None,
            last: None,
        }
    }

    /// A reader of the same store, for another thread.
    pub fn another(&self) -> Self {
        Reader::new(&self.vault_dir, self.keys.clone())
    }

    /// The block `id`, which must be exactly `len` bytes. The last block
    /// read is kept: a reference naming one block many times (a file of
    /// zeros, or a hostile one) costs a copy per time, not a decryption.
    pub fn read(&mut self, id: &BlobId, len: usize) -> io::Result<Zeroizing<Vec<u8>>> {
        if let Some((last, plain)) = &self.last {
            if last == id && plain.len() == len {
                return Ok(plain.clone());
            }
        }
        if self.dir.is_none() {
            let name = self.keys.store_name();
            let opened = open_store_dir(&self.vault_dir, &name).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => damaged(format!(
                    "its blob store {name} is missing from {}",
                    self.vault_dir.display()
                )),
                _ if e.raw_os_error() == Some(libc::ELOOP)
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
                {
                    damaged(format!("its blob store {name} is not a directory"))
                }
                _ => e,
            })?;
            self.dir = Some(opened);
        }
        let dir = self.dir.as_ref().expect("opened above");
        let plain = read_blob(dir, &self.keys, id, len)?;
        self.last = Some((*id, plain.clone()));
        Ok(plain)
    }
}

/// A store opened for a seal: blocks it lacks are sealed into temporaries,
/// which `commit` makes durable and then names. A blob's name so never
/// appears before its content is on disk, so a crash cannot leave a named
/// blob that a later seal would trust and reference. Dropped without
/// `commit`, the temporaries are removed. The store's directory is made
/// (0700) at the first blob it lacks: a vault whose files are all inline
/// has none.
pub struct Writer {
    vault_dir: PathBuf,
    path: PathBuf,
    dir: Option<Arc<OwnedFd>>,
    /// Compress, encrypt and write new blocks while this thread hashes the
    /// next ones (started at the first new block).
    sealers: Option<Sealers>,
    keys: BlobKeys,
    present: HashSet<BlobId>,
    /// Written by this writer (pending, or named by `commit`).
    written: HashSet<BlobId>,
    pending: Vec<(String, BlobId)>,
    /// The store's directory was made by this writer: dropped without a
    /// commit, it goes again (a failed `vault create` leaves nothing).
    made: bool,
    committed: bool,
    /// Blocks written so far, and of them the ones the store lacked.
    pub blocks: u64,
    pub new_blocks: u64,
}

impl Writer {
    /// Opens the store for `keys` in `vault_dir`, if there is one, and
    /// lists the blobs it holds.
    pub fn open(vault_dir: &Path, keys: BlobKeys) -> Result<Self> {
        let mut writer = Writer {
            vault_dir: vault_dir.to_path_buf(),
            path: store_path(vault_dir, &keys),
            dir: None,
            sealers: None,
            keys,
            present: HashSet::new(),
            written: HashSet::new(),
            pending: Vec::new(),
            made: false,
            committed: false,
            blocks: 0,
            new_blocks: 0,
        };
        if std::fs::symlink_metadata(&writer.path).is_ok() {
            writer.open_dir()?;
        }
        Ok(writer)
    }

    /// Opens the store's directory (made if missing), checks that it is
    /// private, and lists the blobs in it.
    fn open_dir(&mut self) -> Result<()> {
        let path = self.path.clone();
        let io_err = |e: io::Error| Error::io("opening the blob store", &path, e);
        if std::fs::symlink_metadata(&path).is_err() {
            crate::private_fs::create_private_dir(&path)?;
            self.made = true;
        }
        let dir = open_store_dir(&self.vault_dir, &self.keys.store_name()).map_err(io_err)?;
        let st = rustix::fs::fstat(&dir).map_err(|e| io_err(e.into()))?;
        if st.st_mode & 0o077 != 0 {
            return Err(Error::failure(format!(
                "{} has mode {:04o}; a blob store must be 0700",
                path.display(),
                st.st_mode & 0o7777
            ))
            .with_hint("chmod 700 it; nothing was written"));
        }
        let present = &mut self.present;
        each_entry(&dir, &mut |name, is_file| {
            if let (Some(id), true) = (parse_id(name), is_file) {
                present.insert(id);
            }
            Ok(())
        })
        .map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => too_many(&path),
            _ => io_err(e),
        })?;
        self.dir = Some(Arc::new(dir));
        Ok(())
    }

    pub fn keys(&self) -> &BlobKeys {
        &self.keys
    }

    /// Whether the store's file for `id` is a good blob: one this process
    /// wrote or authenticated and that has not changed since, or one that
    /// authenticates now. A bad one is written again by `put`.
    fn holds(&self, id: &BlobId, len: usize) -> bool {
        let dir = self.dir.as_ref().expect("opened by put");
        let name = crate::private_fs::hex(id);
        let Ok(st) = rustix::fs::statat(dir, name.as_str(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        else {
            return false;
        };
        trusted(id, Stamp::of(&st)) || read_blob(dir, &self.keys, id, len).is_ok()
    }

    /// Stores `block` under `id` unless the store holds it.
    pub fn put(&mut self, id: &BlobId, block: &[u8]) -> io::Result<()> {
        self.blocks += 1;
        if self.dir.is_none() {
            self.open_dir().map_err(|e| io::Error::other(e.message))?;
        }
        if self.written.contains(id) || (self.present.contains(id) && self.holds(id, block.len())) {
            return Ok(());
        }
        self.written.insert(*id);
        self.new_blocks += 1;
        let temp = format!(
            "{TEMP_PREFIX}{}",
            crate::private_fs::hex(&super::crypto::random_array::<8>())
        );
        self.pending.push((temp.clone(), *id));
        let dir = self.dir.clone().expect("opened above");
        let keys = &self.keys;
        let sealers = self
            .sealers
            .get_or_insert_with(|| Sealers::start(dir, keys));
        sealers.send(Job {
            temp,
            id: *id,
            block: Zeroizing::new(block.to_vec()),
        })
    }

    /// Makes every blob written durable, then names it, then syncs the
    /// store's directory: before the archive that references them is
    /// renamed into place.
    pub fn commit(&mut self) -> Result<()> {
        if let Some(sealers) = self.sealers.take() {
            sealers
                .finish()
                .map_err(|e| Error::io("writing the blob store", &self.path, e))?;
        }
        let Some(dir) = self.dir.as_deref() else {
            self.committed = true;
            return Ok(());
        };
        if self.pending.is_empty() {
            self.committed = true;
            return Ok(());
        }
        let io_err =
            |e: rustix::io::Errno| Error::io("writing the blob store", &self.path, e.into());
        rustix::fs::syncfs(dir).map_err(io_err)?;
        for (temp, id) in std::mem::take(&mut self.pending) {
            let name = crate::private_fs::hex(&id);
            // Not trusted from here: the container could have rewritten the
            // temporary meanwhile. The next seal authenticates it once.
            rustix::fs::renameat(dir, temp.as_str(), dir, name.as_str()).map_err(io_err)?;
        }
        rustix::fs::fsync(dir).map_err(io_err)?;
        crate::private_fs::sync_dir(&self.vault_dir)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // The sealers end before their temporaries are removed.
        if let Some(sealers) = self.sealers.take() {
            let _ = sealers.finish();
        }
        if let Some(dir) = self.dir.as_deref() {
            for (temp, _) in &self.pending {
                let _ = rustix::fs::unlinkat(dir, temp.as_str(), rustix::fs::AtFlags::empty());
            }
        }
        if self.made && !self.committed {
            // Only if empty: a concurrent writer's blobs are never lost.
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// A new block for the sealers: its temporary's name, id and plaintext.
struct Job {
    temp: String,
    id: BlobId,
    block: Zeroizing<Vec<u8>>,
}

/// Threads that compress, encrypt and write new blocks (one per core, two
/// at most), fed over a short channel, so memory stays at a few blocks.
/// The first error any of them meets is kept and stops the seal. Without
/// a thread (a process limit), blocks are sealed on the caller's.
struct Sealers {
    jobs: Option<std::sync::mpsc::SyncSender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    failed: Arc<Mutex<Option<io::Error>>>,
    inline: Option<(Arc<OwnedFd>, BlobKeys, zstd::bulk::Compressor<'static>)>,
}

impl Sealers {
    fn start(dir: Arc<OwnedFd>, keys: &BlobKeys) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(2);
        let rx = Arc::new(Mutex::new(rx));
        let failed = Arc::new(Mutex::new(None));
        let count = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
        let threads: Vec<_> = (0..count)
            .filter_map(|_| {
                let (rx, dir, keys, failed) =
                    (rx.clone(), dir.clone(), keys.clone(), failed.clone());
                std::thread::Builder::new()
                    .name("blob-sealer".into())
                    .spawn(move || {
                        let mut zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
                        loop {
                            let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                            let Ok(job) = job else { return };
                            let sealed = match zstd.as_mut() {
                                Some(zstd) => seal_blob(&dir, &keys, zstd, &job),
                                None => Err(thread_failure("zstd could not start")),
                            };
                            if let Err(e) = sealed {
                                failed
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .get_or_insert(e);
                            }
                        }
                    })
                    .ok()
            })
            .collect();
        let inline = match threads.is_empty() {
            true => zstd::bulk::Compressor::new(ZSTD_LEVEL)
                .ok()
                .map(|zstd| (dir, keys.clone(), zstd)),
            false => None,
        };
        Sealers {
            jobs: Some(tx),
            threads,
            failed,
            inline,
        }
    }

    fn send(&mut self, job: Job) -> io::Result<()> {
        if let Some((dir, keys, zstd)) = self.inline.as_mut() {
            return seal_blob(dir, keys, zstd, &job);
        }
        // The error stays for `finish`: a caller that retries still fails.
        if let Some(e) = self
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            return Err(thread_failure(format!("sealing a block: {e}")));
        }
        let sent = self.jobs.as_ref().and_then(|tx| tx.send(job).ok());
        sent.ok_or_else(|| thread_failure("the threads that seal blocks stopped"))
    }

    /// Waits for every block sent to be written; the first error, if any.
    fn finish(mut self) -> io::Result<()> {
        // Closing the channel ends each thread after the jobs queued.
        self.jobs = None;
        let panicked = self
            .threads
            .drain(..)
            .map(|t| t.join().is_err())
            .fold(false, |a, p| a | p);
        match self.failed.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(e) => Err(e),
            None if panicked => Err(thread_failure("a thread that seals blocks failed")),
            None => Ok(()),
        }
    }
}

/// Compresses, encrypts and writes one new block to its temporary.
fn seal_blob(
    dir: &OwnedFd,
    keys: &BlobKeys,
    zstd: &mut zstd::bulk::Compressor<'static>,
    job: &Job,
) -> io::Result<()> {
    let compressed = Zeroizing::new(zstd.compress(&job.block)?);
    let sealed = keys.seal(&job.id, &compressed);
    let fd = rustix::fs::openat(
        dir,
        job.temp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    io::Write::write_all(&mut std::fs::File::from(fd), &sealed)
}

/// Hands every blob store in `vault_dir` and the blobs in it to
/// `uid:gid` (a root `start`, for the container's user), through
/// descriptors only: each store opened without following a link, each
/// blob opened relative to it without following one, and given only if
/// it is a regular file with one name. Nothing is looked up by path below
/// `vault_dir`, which the container can write.
pub fn hand_over(vault_dir: &Path, uid: u32, gid: u32) -> Result<()> {
    let err = |e: io::Error| Error::io("handing over the blob store in", vault_dir, e);
    let entries = std::fs::read_dir(vault_dir).map_err(err)?;
    for entry in entries {
        let name = entry
            .map_err(err)?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if !is_store_name(&name) {
            continue;
        }
        let Ok(store) = open_store_dir(vault_dir, &name) else {
            continue;
        };
        let chown =
            |fd: OwnedFd| std::os::unix::fs::fchown(std::fs::File::from(fd), Some(uid), Some(gid));
        chown(store.try_clone().map_err(err)?).map_err(err)?;
        each_entry(&store, &mut |blob, is_file| {
            if !is_file {
                return Ok(());
            }
            let fd = rustix::fs::openat(
                &store,
                blob,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let st = rustix::fs::fstat(&fd)?;
            let regular = rustix::fs::FileType::from_raw_mode(st.st_mode)
                == rustix::fs::FileType::RegularFile;
            if regular && st.st_nlink == 1 {
                chown(fd)?;
            }
            Ok(())
        })
        .map_err(err)?;
    }
    Ok(())
}

/// Moves the store of `keys` from `from` (a staging directory) to `to`,
/// if there is one: before the vault file that needs it.
pub fn move_store(from: &Path, to: &Path, keys: &BlobKeys) -> Result<()> {
    let source = store_path(from, keys);
    if std::fs::symlink_metadata(&source).is_err() {
        return Ok(());
    }
    let target = store_path(to, keys);
    std::fs::rename(&source, &target)
        .map_err(|e| Error::io("moving the blob store to", &target, e))?;
    crate::private_fs::sync_dir(to)
}

/// A blob store found next to a vault, without the key (which names it).
pub struct StoreUsage {
    pub path: PathBuf,
    pub blocks: u64,
    pub bytes: u64,
}

/// Whether `name` is a blob store's: the prefix and 16 lowercase hex
/// digits, as `BlobKeys::store_name` makes it.
pub fn is_store_name(name: &str) -> bool {
    name.strip_prefix(STORE_PREFIX).is_some_and(|rest| {
        rest.len() == 16 && rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// The names of the blob stores in `dir`: directories (by the entry's own
/// type, a link is not one) named as `is_store_name` says. None if `dir`
/// cannot be read.
pub fn store_names_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| is_store_name(name))
        .collect()
}

/// The blob stores in `dir` and what they hold on disk, for `vault
/// generations` and the hand-over to the container: directories named so,
/// opened without following a link, their regular files counted (by
/// `fstatat` without following). Read without a key, so not authenticated.
pub fn stores_in(dir: &Path) -> Vec<StoreUsage> {
    let mut found = Vec::new();
    for name in store_names_in(dir) {
        let Ok(store) = open_store_dir(dir, &name) else {
            continue;
        };
        let (mut blocks, mut bytes) = (0, 0);
        let counted = each_entry(&store, &mut |blob, is_file| {
            if is_file {
                let st = rustix::fs::statat(&store, blob, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
                blocks += 1;
                bytes += st.st_size as u64;
            }
            Ok(())
        });
        if counted.is_ok() {
            found.push(StoreUsage {
                path: dir.join(&name),
                blocks,
                bytes,
            });
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// Removes every blob store in `dir` (a staging directory being dropped).
pub fn remove_stores_in(dir: &Path) {
    for name in store_names_in(dir) {
        // std's remove_dir_all does not follow links inside.
        let _ = std::fs::remove_dir_all(dir.join(name));
    }
}

/// Calls `visit` with each name in an open directory and whether it is a
/// regular file (from the entry's own type, or `fstatat` without
/// following), allocating nothing per name; `InvalidData` after
/// `MAX_BLOBS` and a few (the container can fill the store).
fn each_entry(
    dir: &OwnedFd,
    visit: &mut dyn FnMut(&str, bool) -> io::Result<()>,
) -> io::Result<()> {
    let mut seen = 0usize;
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        seen += 1;
        if seen > MAX_BLOBS + 16 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "too many entries",
            ));
        }
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if name == "." || name == ".." {
            continue;
        }
        let kind = match entry.file_type() {
            rustix::fs::FileType::Unknown => {
                let st = rustix::fs::statat(
                    dir.as_fd(),
                    entry.file_name(),
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                )?;
                rustix::fs::FileType::from_raw_mode(st.st_mode)
            }
            k => k,
        };
        visit(name, kind == rustix::fs::FileType::RegularFile)?;
    }
    Ok(())
}

/// A blob's id from its file name: exactly 64 lowercase hex digits.
fn parse_id(name: &str) -> Option<BlobId> {
    if name.len() != 64 {
        return None;
    }
    let mut id = [0u8; 32];
    for (i, pair) in name.as_bytes().chunks(2).enumerate() {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        id[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(id)
}

/// What `collect_garbage` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Collected {
    /// Files in the directory that authenticate with the key.
    pub files: usize,
    /// Blobs they reference, and blobs (and temporaries) removed.
    pub live: usize,
    pub removed: usize,
}

/// Removes from the store of `key` in `vault_dir` every blob that no file
/// there references. The files that count are every regular file in the
/// directory that opens as a vault and authenticates with `key` (the
/// vault, its kept generations, a copy the user made there), but a seal's
/// temporaries. If any of them cannot be read to its end, nothing is
/// removed: its references are unknown. The caller makes sure no seal
/// runs meanwhile (one writer per vault).
///
/// With no file left under `key` (after `vault rekey`, called with the old
/// key), the whole store goes.
pub fn collect_garbage(vault_dir: &Path, key: &DataKey) -> Result<Collected> {
    let keys = key.blob_keys();
    let store = store_path(vault_dir, &keys);
    let name = keys.store_name();
    let dir = match open_store_dir(vault_dir, &name) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Collected::default()),
        r => r.map_err(|e| Error::io("opening the blob store", &store, e))?,
    };
    let mut live = HashSet::new();
    let mut files = 0;
    // Each file once: hard links to it cost the container nothing.
    let mut read = HashSet::new();
    let entries = std::fs::read_dir(vault_dir).map_err(|e| Error::io("reading", vault_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("reading", vault_dir, e))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if !is_file || file.contains(".tmp-") {
            continue;
        }
        let vault = match super::VaultFile::open(&entry.path()) {
            Ok(vault) => vault,
            // Not a vault, or a header no key opens: it references nothing.
            // A newer version's file may: then nothing is removed.
            Err(e) if e.class == Class::Damaged && !e.message.contains(super::NEWER_VERSION) => {
                continue
            }
            Err(e) => return Err(e),
        };
        if vault.authenticate(key).is_err() {
            continue;
        }
        // The file opened, not the name: it may have been swapped since.
        if !read.insert(vault.identity()?) {
            continue;
        }
        files += 1;
        let mut over = false;
        vault.referenced_blobs(key, &mut |id| {
            over |= live.len() >= MAX_BLOBS && !live.contains(&id);
            if !over {
                live.insert(id);
            }
        })?;
        if over {
            return Err(too_many(vault_dir));
        }
    }
    let mut removed = 0;
    each_entry(&dir, &mut |entry, is_file| {
        // Only files: a directory there is not safeclaw's.
        let stale = is_file
            && match parse_id(entry) {
                Some(id) => !live.contains(&id),
                None => entry.starts_with(TEMP_PREFIX),
            };
        if stale {
            rustix::fs::unlinkat(&dir, entry, rustix::fs::AtFlags::empty())?;
            removed += 1;
        }
        Ok(())
    })
    .map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => too_many(&store),
        _ => Error::io("removing blobs from", &store, e),
    })?;
    if files == 0 && live.is_empty() {
        // Empty now unless someone put something else there: then it stays.
        let _ = rustix::fs::unlinkat(
            rustix::fs::CWD,
            store.as_path(),
            rustix::fs::AtFlags::REMOVEDIR,
        );
    }
    Ok(Collected {
        files,
        live: live.len(),
        removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_lowercase_hex_digits_and_nothing_else() {
        let id = [0xa5u8; 32];
        assert_eq!(parse_id(&crate::private_fs::hex(&id)), Some(id));
        assert_eq!(parse_id(&"A5".repeat(32)), None);
        assert_eq!(parse_id(&"a5".repeat(31)), None);
        assert_eq!(parse_id(".tmp-00"), None);
    }
}

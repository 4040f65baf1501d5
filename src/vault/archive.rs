//! The tar layer of the payload (docs/vault-format.md, "Plaintext"): packs a
//! directory without following links, and checks or extracts an archive as
//! hostile input: nothing outside the target, no devices, no writes through
//! links. safeclaw's records (`super::records`) travel in the same archive
//! under `.safeclaw/`, written first, and never touch the disk.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use zeroize::Zeroizing;

use super::records::{self, Records, RECORDS_DIR};
use super::regenerable::is_regenerable;
use crate::error::{Error, Result};
use crate::interrupt;

/// Counts of what a pack, check or unpack went through.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Bytes of regular-file content.
    pub bytes: u64,
    /// safeclaw's records (not part of the state, never on disk).
    #[serde(skip_serializing_if = "is_zero")]
    pub records: u64,
    /// Entries left out: when packing, sockets, FIFOs, devices and a
    /// `.safeclaw` at the top of the tree; when reading, `.safeclaw`
    /// entries taken as the state's own (`SKIPPED_FOREIGN_RECORDS`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// When packing: the paths of `regenerable::REGENERABLE` that were
    /// there and left out (OpenClaw rebuilds them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub regenerable: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What `Stats::skipped` says of a `.safeclaw` at the top of a packed tree:
/// the name is reserved for safeclaw's records, so whatever is there (the
/// agent can plant one in the state dir) is neither packed nor followed.
pub const SKIPPED_RECORDS_DIR: &str = ".safeclaw (reserved for safeclaw's records)";
/// What `Stats::skipped` says of `.safeclaw` entries read as the state's
/// own (a version 1 vault's, someone else's archive): left out.
pub const SKIPPED_FOREIGN_RECORDS: &str =
    ".safeclaw (a name reserved for safeclaw's records; not taken from this archive)";

/// Limits on what one archive may hold (docs/vault-format.md, "Limits").
/// Readers refuse an archive beyond them before it can make them allocate
/// without bound, and `pack` refuses to seal a directory beyond them, so
/// safeclaw never writes a vault it would not read back.
///
/// Bytes of one entry's path, and of a link's target: Linux's PATH_MAX.
pub const MAX_PATH_BYTES: usize = 4096;
/// Components of one entry's path. Real trees, node_modules included, stay
/// under a few dozen levels; each level costs a lookup for every entry
/// below it, and a directory check on extraction.
pub const MAX_DEPTH: usize = 256;
/// Entries in one archive: ten times a large node_modules tree.
pub const MAX_ENTRIES: u64 = 1_000_000;
/// Bound on the memory the names bookkeeping of one archive takes, as
/// charged by `Names` (see `NAME_OVERHEAD` and `KEPT_OVERHEAD`): enough
/// for `MAX_ENTRIES` entries of ordinary names.
pub const MAX_NAMES_MEMORY: usize = 256 * 1024 * 1024;
/// What one distinct path costs in the names table besides its last
/// component's bytes: a hash-table slot of 24 bytes plus a control byte,
/// at a load between 7/16 and 7/8 and, while the table grows, with the old
/// table alive too (at most 86 bytes), and the key's own allocation
/// (4 bytes of parent number, malloc's header and rounding: at most 27
/// bytes, 32 at least). A unit test holds the table to this charge.
const NAME_OVERHEAD: usize = 128;
/// What one path (or path and link target) costs besides its bytes while
/// it waits in a list until the end of the archive: a list slot of at most
/// 72 bytes, three times while the list grows (old and new buffers), and
/// malloc's share of two allocations (at most 32 bytes each). A unit test
/// holds the lists' element sizes to this.
const KEPT_OVERHEAD: usize = 288;
/// Bytes the tar reader may consume between two entries: the header
/// blocks, padding and the GNU long name, GNU long link and PAX extension
/// data that come before an entry. tar 0.4 reads the last three into memory
/// whole, whatever size their header claims, before the caller sees the
/// entry; this is what bounds that allocation.
pub const MAX_ENTRY_HEADER_BYTES: u64 = 1024 * 1024;

/// An error while writing the new archive into the vault.
fn write_error(e: io::Error) -> Error {
    if interrupt::is_io_error(&e) {
        Error::interrupted()
    } else {
        Error::failure(format!(
            "writing the vault: {}",
            crate::error::io_reason(&e)
        ))
    }
}

/// Bytes of file content under `root` (for a progress bar), not following
/// links, as `pack` would seal it.
pub fn content_size(root: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            // Not packed (see `pack`), so not counted.
            if dir == root && entry.file_name() == RECORDS_DIR {
                continue;
            }
            let path = entry.path();
            if path.strip_prefix(root).is_ok_and(is_regenerable) {
                continue;
            }
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(m) if m.is_file() => total += m.len(),
                _ => {}
            }
        }
    }
    total
}

/// A directory to pack, already open. The guard opens its checkpoint copy
/// while the gateway is still frozen: a link swapped in for the copy's
/// root afterwards is then not followed (the walk below it never looks a
/// path up either: `pack_dir`).
pub struct OpenTree {
    fd: OwnedFd,
    path: PathBuf,
}

/// Opens a directory for reading, never through a link (the tree the seal
/// walks; the guard's checkpoint copy).
pub const DIR_NOFOLLOW: rustix::fs::OFlags = rustix::fs::OFlags::RDONLY
    .union(rustix::fs::OFlags::DIRECTORY)
    .union(rustix::fs::OFlags::NOFOLLOW)
    .union(rustix::fs::OFlags::CLOEXEC);

impl OpenTree {
    /// Opens `path`, which must be a directory and not a link to one.
    pub fn open(path: &Path) -> Result<Self> {
        Self::with(path, DIR_NOFOLLOW)
    }

    fn with(path: &Path, flags: rustix::fs::OFlags) -> Result<Self> {
        let fd = rustix::fs::open(path, flags, rustix::fs::Mode::empty())
            .map_err(|e| Error::io("reading", path, e.into()))?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }
}

/// Writes a tar of `records` and then of the directory `root` into `out`,
/// the tree's entries in sorted order. A `.safeclaw` at the top of the tree
/// is skipped, whatever it is, and so is what OpenClaw rebuilds
/// (`regenerable::REGENERABLE`). `progress` is called with the number of
/// content bytes read so far. `root` is the caller's choice: a link to it
/// is followed (`vault create --from` a link); below it, none is.
pub fn pack(
    root: &Path,
    records: &Records,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<Stats> {
    pack_tree(
        &OpenTree::with(root, DIR_NOFOLLOW.difference(rustix::fs::OFlags::NOFOLLOW))?,
        records,
        out,
        progress,
    )
}

/// `pack` of a directory already open.
pub fn pack_tree(
    tree: &OpenTree,
    records: &Records,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<Stats> {
    let mut builder = tar::Builder::new(out);
    builder.mode(tar::HeaderMode::Complete);
    let mut walk = Walk {
        root: &tree.path,
        stats: Stats::default(),
        names: Names::new(),
        done: 0,
        progress,
    };
    walk.stats.records = append_records(&mut builder, records, &mut walk.names)?;
    pack_dir(&mut builder, &mut walk, &tree.fd, Path::new(""))?;
    builder.into_inner().map_err(write_error)?;
    Ok(walk.stats)
}

/// Writes `records` as the archive's first entries: the directory
/// `.safeclaw/` (0700), then one regular file `.safeclaw/NAME` (0600) per
/// record, times 0, so that a reader of the payload's prefix
/// (`leading_records`) finds them without decrypting the state. Nothing at
/// all for no records: such an archive is byte for byte what safeclaw wrote
/// before records existed. Returns the number written.
fn append_records<W: Write>(
    builder: &mut tar::Builder<W>,
    records: &Records,
    names: &mut Names,
) -> Result<u64> {
    if records.is_empty() {
        return Ok(0);
    }
    // The writers' side of the readers' bookkeeping. Records are within
    // far smaller bounds of their own, so this cannot refuse in practice.
    let refused = |r: Refusal| {
        Error::failure(format!(
            "safeclaw's records cannot be sealed: {}",
            r.message()
        ))
    };
    let dir = Path::new(RECORDS_DIR);
    names.dir(dir).map_err(refused)?;
    let mut header = tar::Header::new_gnu();
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_mode(0o700);
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    builder
        .append_data(&mut header, dir, io::empty())
        .map_err(write_error)?;
    for (name, value) in records.iter() {
        let path = dir.join(name);
        names.file(&path).map_err(refused)?;
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(value.len() as u64);
        builder
            .append_data(&mut header, &path, value)
            .map_err(write_error)?;
    }
    Ok(records.len() as u64)
}

/// What `pack` carries through its walk.
struct Walk<'a> {
    root: &'a Path,
    stats: Stats,
    /// The readers' bookkeeping, run while sealing so that a directory
    /// beyond their limits is refused now rather than sealed unreadable.
    names: Names,
    done: u64,
    progress: &'a mut dyn FnMut(u64),
}

/// How much of a file is read at once while sealing: a version 4 block,
/// which the blob store's writer then hashes where it lies.
const CONTENT_READ: usize = super::blobs::BLOCK;

impl Walk<'_> {
    fn refused(&self, r: Refusal) -> Error {
        Error::failure(format!(
            "{} cannot be sealed: {}",
            self.root.display(),
            r.message()
        ))
        .with_hint(format!(
            "a vault holds at most {MAX_ENTRIES} entries, paths of {MAX_PATH_BYTES} bytes and \
             {MAX_DEPTH} levels (docs/vault-format.md, \"Limits\"); move what is not needed out of the directory"
        ))
    }
}

/// Packs the entries of the open directory `dir` (at `rel` under the
/// root), sorted by name. The tree may be written by someone else while it
/// is read (the guard's checkpoint copy, which processes of the gateway's
/// user can reach), so nothing is looked up by a path from the root: each
/// entry's type comes from `fstatat` without following (AT_SYMLINK_NOFOLLOW)
/// relative to `dir`, a directory or file is opened relative to `dir` with
/// O_NOFOLLOW and its type checked again on the descriptor, and a link is
/// read with `readlinkat`. An entry swapped for another type in between is
/// refused, never followed.
fn pack_dir<W: Write>(
    builder: &mut tar::Builder<W>,
    walk: &mut Walk<'_>,
    dir: &OwnedFd,
    rel: &Path,
) -> Result<()> {
    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    use rustix::io::Errno;
    let root = walk.root;
    let here = root.join(rel);
    let mut names: Vec<CString> = Vec::new();
    for entry in
        rustix::fs::Dir::read_from(dir).map_err(|e| Error::io("reading", &here, e.into()))?
    {
        let entry = entry.map_err(|e| Error::io("reading", &here, e.into()))?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    // A directory renamed in while it is listed can be listed twice.
    names.dedup();
    for name in names {
        interrupt::check()?;
        let name_os = OsStr::from_bytes(name.as_bytes());
        if rel.as_os_str().is_empty() && name_os == RECORDS_DIR {
            // Not even its type is looked at: a link is not followed, a
            // directory not entered. The records come from the caller.
            walk.stats.skipped.push(SKIPPED_RECORDS_DIR.into());
            continue;
        }
        let rel = rel.join(name_os);
        if is_regenerable(&rel) {
            // Like `.safeclaw`: left out whatever it is, not looked at.
            walk.stats.regenerable.push(rel.display().to_string());
            continue;
        }
        let path = root.join(&rel);
        let changed = || {
            Error::failure(format!(
                "{} changed while it was being sealed",
                path.display()
            ))
            .with_hint("stop whatever writes to that directory and try again")
        };
        let meta =
            rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| match e {
                Errno::NOENT => changed(),
                e => Error::io("reading", &path, e.into()),
            })?;
        // Opens the entry relative to `dir`, never through a link, and
        // checks that it is still of the type it had.
        let open = |flags: OFlags, expected: FileType| -> Result<(OwnedFd, rustix::fs::Stat)> {
            let fd = rustix::fs::openat(
                dir,
                &name,
                flags
                    | OFlags::RDONLY
                    | OFlags::NOFOLLOW
                    | OFlags::NONBLOCK
                    | OFlags::CLOEXEC
                    | OFlags::NOCTTY,
                Mode::empty(),
            )
            .map_err(|e| match e {
                Errno::LOOP | Errno::NOTDIR | Errno::NOENT | Errno::NXIO => changed(),
                e => Error::io("reading", &path, e.into()),
            })?;
            let now = rustix::fs::fstat(&fd).map_err(|e| Error::io("reading", &path, e.into()))?;
            if FileType::from_raw_mode(now.st_mode) != expected {
                return Err(changed());
            }
            Ok((fd, now))
        };
        // Mode and time of a directory or file from the inode whose
        // content is packed (`open`'s fstat).
        let set_meta = |header: &mut tar::Header, st: &rustix::fs::Stat| {
            header.set_mode(st.st_mode & 0o777);
            header.set_mtime(st.st_mtime.max(0) as u64);
        };
        let mut header = tar::Header::new_gnu();
        set_meta(&mut header, &meta);
        header.set_uid(0);
        header.set_gid(0);
        match FileType::from_raw_mode(meta.st_mode) {
            FileType::Directory => {
                walk.names.dir(&rel).map_err(|r| walk.refused(r))?;
                let (sub, now) = open(OFlags::DIRECTORY, FileType::Directory)?;
                set_meta(&mut header, &now);
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder
                    .append_data(&mut header, &rel, io::empty())
                    .map_err(write_error)?;
                walk.stats.dirs += 1;
                pack_dir(builder, walk, &sub, &rel)?;
            }
            FileType::Symlink => {
                let target =
                    rustix::fs::readlinkat(dir, &name, Vec::new()).map_err(|e| match e {
                        Errno::INVAL | Errno::NOENT => changed(),
                        e => Error::io("reading", &path, e.into()),
                    })?;
                let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                walk.names
                    .symlink(&rel, &target)
                    .map_err(|r| walk.refused(r))?;
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder
                    .append_link(&mut header, &rel, &target)
                    .map_err(write_error)?;
                walk.stats.symlinks += 1;
            }
            FileType::RegularFile => {
                walk.names.file(&rel).map_err(|r| walk.refused(r))?;
                let (fd, now) = open(OFlags::empty(), FileType::RegularFile)?;
                set_meta(&mut header, &now);
                let file = File::from(fd);
                let len = file
                    .metadata()
                    .map_err(|e| Error::io("reading", &path, e))?
                    .len();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(len);
                let mut counted = Counted {
                    count: 0,
                    done: &mut walk.done,
                    progress: &mut *walk.progress,
                };
                // The header (and a long name's) through tar, the content
                // and its padding here.
                builder
                    .append_data(&mut header, &rel, io::empty())
                    .map_err(write_error)?;
                copy_content(file.take(len), builder.get_mut(), &mut counted).map_err(|e| {
                    if interrupt::is_io_error(&e) {
                        Error::interrupted()
                    } else if e.kind() == io::ErrorKind::UnexpectedEof {
                        Error::failure(format!(
                            "{} shrank while it was being sealed",
                            path.display()
                        ))
                        .with_hint("stop whatever writes to that directory and try again")
                    } else {
                        Error::failure(format!(
                            "sealing {}: {}",
                            path.display(),
                            crate::error::io_reason(&e)
                        ))
                    }
                })?;
                if counted.count != len {
                    return Err(Error::failure(format!(
                        "{} shrank while it was being sealed",
                        path.display()
                    ))
                    .with_hint("stop whatever writes to that directory and try again"));
                }
                walk.stats.files += 1;
                walk.stats.bytes += len;
            }
            // Sockets, FIFOs and devices: not sealed, and not opened.
            _ => walk.stats.skipped.push(rel.display().to_string()),
        }
    }
    Ok(())
}

/// Copies what `file` holds into `to`, `CONTENT_READ` bytes at a time,
/// then zeros to the tar block's end. A file larger than that is read on a
/// thread of its own, a block ahead, so that reading the next block and
/// hashing this one (version 4's writer hashes every block of a large
/// file) share the two cores: a checkpoint of a 100 MB state is both.
fn copy_content(file: io::Take<File>, to: &mut dyn Write, counted: &mut Counted) -> io::Result<()> {
    let pad = |to: &mut dyn Write, copied: u64| {
        to.write_all(&[0u8; 512][..((512 - copied % 512) % 512) as usize])
    };
    if file.limit() <= CONTENT_READ as u64 {
        let mut buffer = Zeroizing::new(vec![0u8; file.limit() as usize]);
        let n = crate::io_util::read_full(&mut { file }, &mut buffer)?;
        counted.add(n)?;
        to.write_all(&buffer[..n])?;
        return pad(to, n as u64);
    }
    type Filled = io::Result<(Zeroizing<Vec<u8>>, usize)>;
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Filled>(1);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Zeroizing<Vec<u8>>>();
        for _ in 0..2 {
            let _ = empty_tx.send(Zeroizing::new(vec![0u8; CONTENT_READ]));
        }
        scope.spawn(move || {
            let mut file = file;
            // Ends when this side's channels close, or after the last read.
            while let Ok(mut buffer) = empty_rx.recv() {
                let read = crate::io_util::read_full(&mut file, &mut buffer);
                let last = !matches!(read, Ok(n) if n > 0);
                if full_tx.send(read.map(|n| (buffer, n))).is_err() || last {
                    return;
                }
            }
        });
        // The channels are dropped on return, early or not, which ends the
        // thread before the scope waits for it.
        let mut copied = 0u64;
        loop {
            let (buffer, n) = full_rx
                .recv()
                .map_err(|_| io::Error::other("the reading thread stopped"))??;
            if n == 0 {
                return pad(to, copied);
            }
            counted.add(n)?;
            to.write_all(&buffer[..n])?;
            copied += n as u64;
            let _ = empty_tx.send(buffer);
        }
    })
}

/// Counts what was sealed of one file, for progress, and stops on a signal.
struct Counted<'a> {
    count: u64,
    done: &'a mut u64,
    progress: &'a mut dyn FnMut(u64),
}

impl Counted<'_> {
    fn add(&mut self, n: usize) -> io::Result<()> {
        if interrupt::requested() {
            return Err(crate::interrupt::io_error());
        }
        self.count += n as u64;
        *self.done += n as u64;
        (self.progress)(*self.done);
        Ok(())
    }
}

/// What an archive entry is allowed to become, after validation.
enum Plan {
    /// The `./` entry of the root itself: nothing to do.
    Root,
    Dir {
        path: PathBuf,
        mode: u32,
        mtime: u64,
    },
    File {
        path: PathBuf,
        mode: u32,
        mtime: u64,
    },
    Symlink {
        path: PathBuf,
        target: PathBuf,
    },
    Hardlink {
        path: PathBuf,
        target: PathBuf,
    },
}

/// Refuses an archive: `what` names the entry and the rule it broke.
fn hostile(what: String) -> Error {
    Error::damaged(format!("refused archive entry: {what}")).with_hint(
        "the vault holds an entry that could write outside its directory; nothing was extracted",
    )
}

/// Refuses an archive beyond the limits (`MAX_PATH_BYTES` and the rest).
fn over_limit(what: String) -> Error {
    Error::damaged(format!("refused archive: {what}")).with_hint(
        "the vault's archive is beyond the limits a reader accepts (docs/vault-format.md, \"Limits\"); nothing was extracted",
    )
}

/// A name as errors show it: quoted, and cut short, since a hostile name
/// can be a megabyte long.
fn quoted(raw: &[u8]) -> String {
    const SHOWN: usize = 100;
    if raw.len() <= SHOWN {
        format!("{:?}", String::from_utf8_lossy(raw))
    } else {
        format!("{:?}...", String::from_utf8_lossy(&raw[..SHOWN]))
    }
}

/// A path inside the root, as normal components only. `None` for the root.
fn safe_relative(raw: &[u8]) -> Result<Option<PathBuf>> {
    let shown = quoted(raw);
    if raw.is_empty() {
        return Err(hostile("empty path".into()));
    }
    if raw.contains(&0) {
        return Err(hostile(format!("{shown} contains a NUL byte")));
    }
    let path = Path::new(OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err(hostile(format!("{shown} contains '..'"))),
            Component::RootDir | Component::Prefix(_) => {
                return Err(hostile(format!("{shown} is an absolute path")))
            }
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

fn plan(entry: &tar::Entry<'_, impl Read>) -> Result<Plan> {
    let header = entry.header();
    let raw_path = entry.path_bytes();
    let shown = quoted(&raw_path);
    let damaged = |e: io::Error| classify_read_error(e, "archive's header");
    let mode = header.mode().map_err(damaged)? & 0o777;
    let mtime = header.mtime().map_err(damaged)?;
    let kind = header.entry_type();
    let Some(path) = safe_relative(&raw_path)? else {
        return if kind.is_dir() {
            Ok(Plan::Root)
        } else {
            Err(hostile(format!(
                "{shown} is not a directory but names the root"
            )))
        };
    };
    let link_target = || -> Result<PathBuf> {
        let t = entry
            .link_name_bytes()
            .ok_or_else(|| hostile(format!("{shown} is a link without a target")))?;
        if t.is_empty() || t.contains(&0) {
            return Err(hostile(format!(
                "{shown} has an empty or invalid link target"
            )));
        }
        Ok(PathBuf::from(OsStr::from_bytes(&t)))
    };
    Ok(match kind {
        tar::EntryType::Directory => Plan::Dir { path, mode, mtime },
        tar::EntryType::Regular | tar::EntryType::Continuous => Plan::File { path, mode, mtime },
        tar::EntryType::Symlink => Plan::Symlink {
            target: link_target()?,
            path,
        },
        tar::EntryType::Link => {
            let raw = link_target()?;
            let target = safe_relative(raw.as_os_str().as_bytes())?
                .ok_or_else(|| hostile(format!("{shown} is a hard link to the root")))?;
            Plan::Hardlink { path, target }
        }
        tar::EntryType::Char | tar::EntryType::Block => {
            return Err(hostile(format!("{shown} is a device node")))
        }
        tar::EntryType::Fifo => return Err(hostile(format!("{shown} is a FIFO"))),
        other => return Err(hostile(format!("{shown} has unsupported type {other:?}"))),
    })
}

/// What `.safeclaw` entries of an archive are, as the format version of
/// the vault they come from says (docs/vault-format.md, "Records").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordsDir {
    /// Version 2: safeclaw's records, under their rules.
    Records,
    /// Version 1: the state's own, written by whoever could write the
    /// state (an agent, under a safeclaw that packed them): never taken for
    /// records and never extracted; skipped whatever they are.
    Foreign,
}

impl RecordsDir {
    /// What a vault of format `version` holds under `.safeclaw`.
    pub fn of_version(version: u16) -> Self {
        if version >= super::format::RECORDS_VERSION {
            RecordsDir::Records
        } else {
            RecordsDir::Foreign
        }
    }
}

/// What an entry under `RECORDS_DIR` is, once checked.
enum RecordEntry {
    /// `.safeclaw` itself.
    Dir,
    /// `.safeclaw/NAME`, a valid record name.
    File(String),
}

/// Whether the entry `plan` is one of safeclaw's records. Refuses, as
/// hostile, anything under `RECORDS_DIR` that safeclaw never writes there:
/// a link, a nested directory, a device, a file deeper than one level or
/// with a name breaking the rules; and a hard link into it, which would
/// point at something never extracted.
fn record_entry(plan: &Plan) -> Result<Option<RecordEntry>> {
    let (path, is_dir, is_file) = match plan {
        Plan::Root => return Ok(None),
        Plan::Dir { path, .. } => (path, true, false),
        Plan::File { path, .. } => (path, false, true),
        Plan::Symlink { path, .. } => (path, false, false),
        Plan::Hardlink { path, target } => {
            if first_is_records(target) {
                return Err(hostile(format!(
                    "hard link {} points into {RECORDS_DIR}, where only safeclaw's records are",
                    quoted(path.as_os_str().as_bytes())
                )));
            }
            (path, false, false)
        }
    };
    if !first_is_records(path) {
        return Ok(None);
    }
    let mut parts = path.components().skip(1);
    match (parts.next(), parts.next()) {
        (None, _) if is_dir => Ok(Some(RecordEntry::Dir)),
        (Some(name), None) if is_file => {
            let raw = name.as_os_str().as_bytes();
            let name = records::check_name(raw).map_err(|why| {
                hostile(format!(
                    "{RECORDS_DIR}/{} is not a record: {why}",
                    records::shown(raw)
                ))
            })?;
            Ok(Some(RecordEntry::File(name.to_owned())))
        }
        _ => Err(hostile(format!(
            "{} is under {RECORDS_DIR}, which holds only safeclaw's records, regular files one level deep",
            quoted(path.as_os_str().as_bytes())
        ))),
    }
}

fn first_is_records(path: &Path) -> bool {
    path.components().next().map(|c| c.as_os_str()) == Some(OsStr::new(RECORDS_DIR))
}

/// Takes the entry `plan` into `records` if it is one of safeclaw's
/// records, under the same names bookkeeping as every entry; true when it
/// was (the caller then does nothing else with it). A record's size is
/// checked against the limits before anything is allocated for it, and its
/// value is read into zeroizing memory of exactly that size.
fn take_record<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    plan: &Plan,
    names: &mut Names,
    records: &mut Records,
    stats: &mut Stats,
    mode: RecordsDir,
) -> Result<bool> {
    if mode == RecordsDir::Foreign {
        let under = |p: &Path| first_is_records(p);
        let skipped = match plan {
            Plan::Root => false,
            Plan::Hardlink { path, target } => under(path) || under(target),
            Plan::Dir { path, .. } | Plan::File { path, .. } | Plan::Symlink { path, .. } => {
                under(path)
            }
        };
        if skipped && !stats.skipped.iter().any(|s| s == SKIPPED_FOREIGN_RECORDS) {
            stats.skipped.push(SKIPPED_FOREIGN_RECORDS.to_string());
        }
        return Ok(skipped);
    }
    match record_entry(plan)? {
        None => Ok(false),
        Some(RecordEntry::Dir) => {
            names
                .dir(Path::new(RECORDS_DIR))
                .map_err(Refusal::in_archive)?;
            Ok(true)
        }
        Some(RecordEntry::File(name)) => {
            let path = Path::new(RECORDS_DIR).join(&name);
            // Duplicates are refused here, before the size is looked at.
            names.file(&path).map_err(Refusal::in_archive)?;
            let len = entry.size();
            if let Some(why) = records.room_problem(&name, len) {
                return Err(over_limit(format!(
                    "safeclaw's record {} is beyond the limits: {why}",
                    records::shown(name.as_bytes())
                )));
            }
            let mut value = Zeroizing::new(vec![0u8; len as usize]);
            entry
                .read_exact(&mut value)
                .map_err(|e| classify_read_error(e, "archive content"))?;
            records.insert_checked(name, value);
            stats.records += 1;
            Ok(true)
        }
    }
}

/// Maps an error met while reading the payload (stream, zstd, tar) to a
/// class: an OS read error is a failure; anything else means the content is
/// not what a writer makes, so the vault is damaged.
pub fn classify_read_error(e: io::Error, context: &str) -> Error {
    if interrupt::is_io_error(&e) {
        return Error::interrupted();
    }
    if let Some(inner) = e.get_ref() {
        if let Some(s) = inner.downcast_ref::<super::stream::StreamError>() {
            return Error::damaged(format!("the vault is damaged or was modified: {s}"))
                .with_hint("restore the vault from a backup; this file cannot be trusted");
        }
        if let Some(f) = inner.downcast_ref::<super::blobs::ThreadFailure>() {
            return Error::failure(format!("the vault could not be read or written: {f}"));
        }
        if let Some(b) = inner.downcast_ref::<super::blobs::BlobError>() {
            return Error::damaged(format!("the vault is damaged or was modified: {b}"))
                .with_hint(super::blobs::DAMAGE_HINT);
        }
        if let Some(c) = inner.downcast_ref::<crate::legacy::CbcError>() {
            return Error::damaged(format!("is damaged: {c}")).with_hint(
                "its start decrypted with this password but the rest did not; restore it from a backup",
            );
        }
    }
    match e.kind() {
        io::ErrorKind::InvalidData
        | io::ErrorKind::InvalidInput
        | io::ErrorKind::UnexpectedEof
        // No parser detail: tar and zstd quote the bytes they choke on,
        // which here are decrypted content.
        | io::ErrorKind::Other => Error::damaged(format!("the {context} is malformed"))
            .with_hint("the data decrypted but is not a valid archive; restore the file from a backup"),
        _ => Error::failure(format!("reading failed: {}", crate::error::io_reason(&e))),
    }
}

/// Why `Names` refused an entry.
#[derive(Debug)]
enum Refusal {
    /// An extraction rule: a duplicate, a path under a non-directory, a
    /// hard link to nothing extracted before.
    Rule(String),
    /// One of the limits (`MAX_PATH_BYTES` and the rest).
    Limit(String),
}

impl Refusal {
    fn message(&self) -> &str {
        match self {
            Refusal::Rule(m) | Refusal::Limit(m) => m,
        }
    }

    /// As a reader reports it.
    fn in_archive(self) -> Error {
        match self {
            Refusal::Rule(m) => hostile(m),
            Refusal::Limit(m) => over_limit(m),
        }
    }
}

/// The names an archive has used so far, and what each is: the rules on
/// duplicates and on parents, and the limits, are the same for `check`,
/// `unpack` and `pack`.
///
/// Names form a tree: a path is found by walking from the root one
/// component at a time, so each distinct path stores one component, not
/// itself in full (storing every ancestor in full made a path of n
/// components cost O(n^2) bytes). Everything kept is charged against
/// `MAX_NAMES_MEMORY`.
struct Names {
    /// Key: the parent's node number (4 bytes, big-endian) then the
    /// component's bytes. The root is node 0 and has no key.
    nodes: HashMap<Box<[u8]>, Node>,
    entries: u64,
    /// Bytes charged so far (`NAME_OVERHEAD`, `KEPT_OVERHEAD`).
    charged: usize,
    /// `MAX_NAMES_MEMORY`; smaller in unit tests.
    budget: usize,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    id: u32,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
}

impl Names {
    fn new() -> Self {
        Self::with_budget(MAX_NAMES_MEMORY)
    }

    fn with_budget(budget: usize) -> Self {
        Names {
            nodes: HashMap::new(),
            entries: 0,
            charged: 0,
            budget,
        }
    }

    /// A directory entry. `unpack` keeps each one until the end to set its
    /// mode last; every caller charges that, so `check` refuses exactly
    /// what `unpack` would.
    fn dir(&mut self, path: &Path) -> Result<(), Refusal> {
        self.add(path, Kind::Dir)?;
        self.keep(path.as_os_str().len())
    }

    fn file(&mut self, path: &Path) -> Result<(), Refusal> {
        self.add(path, Kind::File)
    }

    /// A symbolic link entry, kept (with its target) until the end because
    /// links are created last.
    fn symlink(&mut self, path: &Path, target: &Path) -> Result<(), Refusal> {
        Self::check_len(target, "the link target")?;
        self.add(path, Kind::Symlink)?;
        self.keep(path.as_os_str().len() + target.as_os_str().len())
    }

    fn hardlink(&mut self, path: &Path, target: &Path) -> Result<(), Refusal> {
        Self::check_len(target, "the link target")?;
        if self.find(target).map(|n| n.kind) != Some(Kind::File) {
            return Err(Refusal::Rule(format!(
                "hard link {} does not point to a file extracted before it",
                quoted(path.as_os_str().as_bytes())
            )));
        }
        self.add(path, Kind::File)
    }

    /// Charges a path (or path and target) of `bytes` that a caller keeps
    /// in a list until the end of the archive.
    fn keep(&mut self, bytes: usize) -> Result<(), Refusal> {
        self.charge(bytes + KEPT_OVERHEAD)
    }

    fn charge(&mut self, bytes: usize) -> Result<(), Refusal> {
        self.charged += bytes;
        if self.charged > self.budget {
            return Err(Refusal::Limit(format!(
                "its names need more than {} MiB of memory to check",
                self.budget >> 20
            )));
        }
        Ok(())
    }

    fn check_len(path: &Path, what: &str) -> Result<(), Refusal> {
        let len = path.as_os_str().len();
        if len > MAX_PATH_BYTES {
            return Err(Refusal::Limit(format!(
                "{what} {} is {len} bytes long; the limit is {MAX_PATH_BYTES}",
                quoted(path.as_os_str().as_bytes())
            )));
        }
        Ok(())
    }

    fn key(parent: u32, component: &OsStr) -> Vec<u8> {
        let mut key = Vec::with_capacity(4 + component.len());
        key.extend_from_slice(&parent.to_be_bytes());
        key.extend_from_slice(component.as_bytes());
        key
    }

    /// The node of `path`, if the archive has named it.
    fn find(&self, path: &Path) -> Option<Node> {
        let mut node = Node {
            id: 0,
            kind: Kind::Dir,
        };
        for c in path.components() {
            node = *self
                .nodes
                .get(Self::key(node.id, c.as_os_str()).as_slice())?;
        }
        Some(node)
    }

    fn add(&mut self, path: &Path, kind: Kind) -> Result<(), Refusal> {
        let shown = || quoted(path.as_os_str().as_bytes());
        Self::check_len(path, "the path")?;
        let depth = path.components().count();
        if depth > MAX_DEPTH {
            return Err(Refusal::Limit(format!(
                "the path {} has {depth} components; the limit is {MAX_DEPTH}",
                shown()
            )));
        }
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(Refusal::Limit(format!(
                "it has more than {MAX_ENTRIES} entries"
            )));
        }
        let mut parent = 0;
        for (i, c) in path.components().enumerate() {
            let last = i + 1 == depth;
            let key = Self::key(parent, c.as_os_str());
            match self.nodes.get(key.as_slice()) {
                None => {
                    self.charge(key.len() + NAME_OVERHEAD)?;
                    // Fits: the charge bounds the node count far below 2^32.
                    let id = self.nodes.len() as u32 + 1;
                    let kind = if last { kind } else { Kind::Dir };
                    self.nodes.insert(key.into_boxed_slice(), Node { id, kind });
                    parent = id;
                }
                Some(n) if last => {
                    return if n.kind == Kind::Dir && kind == Kind::Dir {
                        Ok(())
                    } else {
                        Err(Refusal::Rule(format!("{} appears twice", shown())))
                    };
                }
                Some(n) if n.kind == Kind::Dir => parent = n.id,
                Some(_) => {
                    return Err(Refusal::Rule(format!(
                        "{} is under a non-directory",
                        shown()
                    )))
                }
            }
        }
        Ok(())
    }
}

/// One entry of an archive's content, for comparing two archives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Dir {
        path: PathBuf,
        mode: u32,
    },
    File {
        path: PathBuf,
        mode: u32,
        len: u64,
        sha256: [u8; 32],
    },
    Symlink {
        path: PathBuf,
        target: PathBuf,
    },
    Hardlink {
        path: PathBuf,
        target: PathBuf,
    },
}

/// Reads the whole archive, applying every extraction rule (records
/// included), writing nothing.
pub fn check<R: Read>(input: R, mode: RecordsDir) -> Result<Stats> {
    scan(input, None, false, mode).map(|(stats, _, _)| stats)
}

/// The content of an archive (paths, modes, SHA-256 of every file, link
/// targets), after the same checks as `check`. safeclaw's records are not
/// part of it (they are counted in the stats): two archives of the same
/// state have the same manifest whatever their records.
pub fn manifest<R: Read>(input: R, mode: RecordsDir) -> Result<(Stats, Vec<Item>)> {
    scan(input, None, true, mode).map(|(stats, items, _)| (stats, items))
}

/// Copies an archive from someone else's tar (the guide's `tar -czf`)
/// into safeclaw's form, entry by entry, under every extraction rule:
/// owners dropped, modes masked, names normalised, hostile entries refused.
/// Returns what was copied, as `manifest` would read it back. A `.safeclaw`
/// in it is left out (`SKIPPED_FOREIGN_RECORDS` in the stats): that name is
/// reserved for safeclaw's records, and someone else's archive holds none.
pub fn transcode<R: Read>(input: R, out: &mut dyn Write) -> Result<(Stats, Vec<Item>)> {
    let mut builder = tar::Builder::new(out);
    let (stats, items, _) = scan(input, Some(&mut builder), true, RecordsDir::Foreign)?;
    builder.into_inner().map_err(write_error)?;
    Ok((stats, items))
}

/// Copies the archive `input` into `out` with `records` in place of its
/// own: `records` first (as `pack` writes them), then every other entry
/// of `input` as it is, under every extraction rule, streaming. Returns
/// what was copied and the records `input` held (all of them, wherever
/// they were), so the caller can tell they were the ones it replaced.
pub fn rewrite<R: Read>(
    input: R,
    mode: RecordsDir,
    records: &Records,
    out: &mut dyn Write,
) -> Result<(Stats, Records)> {
    let mut builder = tar::Builder::new(out);
    // Bookkeeping for the new records alone: `scan` applies the rules to
    // the copied entries, and a copied `.safeclaw` is impossible (skipped).
    let written = append_records(&mut builder, records, &mut Names::new())?;
    let (mut stats, _, old) = scan(input, Some(&mut builder), false, mode)?;
    builder.into_inner().map_err(write_error)?;
    stats.records = written;
    Ok((stats, old))
}

/// safeclaw's records at the start of an archive: the leading `.safeclaw`
/// entries, up to the first entry outside it (or the end), under every
/// rule `unpack` applies to them. Reads no further, so a vault's records
/// cost the first chunks of its payload, not its whole state. Records
/// placed after other entries (never by safeclaw) are not seen here.
pub fn leading_records<R: Read>(input: R, mode: RecordsDir) -> Result<Records> {
    if mode == RecordsDir::Foreign {
        return Ok(Records::new());
    }
    let meter = Cell::new(None);
    let mut archive = tar::Archive::new(Metered {
        inner: input,
        left: &meter,
    });
    let (mut stats, mut names, mut records) = (Stats::default(), Names::new(), Records::new());
    let mut entries = archive
        .entries()
        .map_err(|e| classify_read_error(e, "archive"))?;
    while let Some(mut entry) = next_entry(&mut entries, &meter)? {
        interrupt::check()?;
        let plan = plan(&entry)?;
        let record = matches!(plan, Plan::Root)
            || take_record(
                &mut entry,
                &plan,
                &mut names,
                &mut records,
                &mut stats,
                mode,
            )?;
        if !record {
            break;
        }
        skip_rest(&mut entry)?;
    }
    Ok(records)
}

/// The content of the regular file `wanted` (a path relative to the
/// archive's root), read as far as it: None when the archive has no such
/// file. Every entry before it gets the readers' checks; a file larger
/// than `max` bytes is an error before anything is allocated for it.
pub fn find_file<R: Read>(
    input: R,
    wanted: &Path,
    max: u64,
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
    let mut found = None;
    each_file(input, |path, len, content| {
        if path != wanted {
            return Ok(Flow::Next);
        }
        if len > max {
            return Err(Error::failure(format!(
                "{} in the vault is {len} bytes, more than the {max} read",
                wanted.display()
            )));
        }
        found = Some(read_content(content, path, len)?);
        Ok(Flow::Stop)
    })?;
    Ok(found)
}

/// What `each_file`'s visitor wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Next,
    Stop,
}

/// Calls `visit` with each regular file of the archive (its path, its
/// length as the header says, and a reader of its content, which it may
/// leave unread), in archive order, under every reader's check of every
/// entry, until it says `Stop` or the archive ends.
pub fn each_file<R: Read>(
    input: R,
    mut visit: impl FnMut(&Path, u64, &mut dyn Read) -> Result<Flow>,
) -> Result<()> {
    let meter = Cell::new(None);
    let mut archive = tar::Archive::new(Metered {
        inner: input,
        left: &meter,
    });
    let mut names = Names::new();
    let mut entries = archive
        .entries()
        .map_err(|e| classify_read_error(e, "archive"))?;
    while let Some(mut entry) = next_entry(&mut entries, &meter)? {
        interrupt::check()?;
        match plan(&entry)? {
            Plan::Root => {}
            Plan::Dir { path, .. } => names.dir(&path).map_err(Refusal::in_archive)?,
            Plan::File { path, .. } => {
                names.file(&path).map_err(Refusal::in_archive)?;
                let len = entry.size();
                if visit(&path, len, &mut entry)? == Flow::Stop {
                    return Ok(());
                }
            }
            Plan::Symlink { path, target } => {
                names.symlink(&path, &target).map_err(Refusal::in_archive)?
            }
            Plan::Hardlink { path, target } => names
                .hardlink(&path, &target)
                .map_err(Refusal::in_archive)?,
        }
        skip_rest(&mut entry)?;
    }
    Ok(())
}

/// Reads a file's content of `len` bytes (as its header says, checked by
/// the caller against its bound) into zeroizing memory.
pub fn read_content(
    content: &mut dyn Read,
    path: &Path,
    len: u64,
) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(len as usize));
    content
        .take(len)
        .read_to_end(&mut out)
        .map_err(|e| classify_read_error(e, "archive content"))?;
    if out.len() as u64 != len {
        return Err(Error::damaged(format!(
            "the archive entry {:?} is shorter than its header says",
            path.display().to_string()
        )));
    }
    Ok(out)
}

/// The tar reader's input. While `left` holds a count (between entries,
/// see `next_entry`) at most that many more bytes may be read; while it is
/// `None` (an entry's content, read by the caller in bounded buffers)
/// reads are not limited.
struct Metered<'a, R> {
    inner: R,
    left: &'a Cell<Option<u64>>,
}

/// The error `Metered` stops the tar reader with.
#[derive(Debug)]
struct HeadersTooLarge;

impl std::fmt::Display for HeadersTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "an entry's headers (GNU long name or link, PAX extensions) exceed {} KiB",
            MAX_ENTRY_HEADER_BYTES >> 10
        )
    }
}

impl std::error::Error for HeadersTooLarge {}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(left) = self.left.get() else {
            return self.inner.read(buf);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        if left == 0 {
            return Err(io::Error::other(HeadersTooLarge));
        }
        let max = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left.set(Some(left - n as u64));
        Ok(n)
    }
}

/// The next entry, with what the tar reader may read to reach it bounded
/// by `MAX_ENTRY_HEADER_BYTES` (the caller has read the previous entry's
/// content to its end, see `skip_rest`, so only headers are left).
fn next_entry<'a, R: Read>(
    entries: &mut tar::Entries<'a, R>,
    meter: &Cell<Option<u64>>,
) -> Result<Option<tar::Entry<'a, R>>> {
    meter.set(Some(MAX_ENTRY_HEADER_BYTES));
    let next = entries.next();
    meter.set(None);
    match next {
        None => Ok(None),
        Some(Ok(entry)) => Ok(Some(entry)),
        Some(Err(e)) => {
            if let Some(too_large) = e
                .get_ref()
                .and_then(|i| i.downcast_ref::<HeadersTooLarge>())
            {
                return Err(over_limit(too_large.to_string()));
            }
            Err(classify_read_error(e, "archive"))
        }
    }
}

/// Reads what is left of an entry's content (a directory or link entry
/// that claims a size), so the tar reader need not skip it under the meter.
fn skip_rest(entry: &mut impl Read) -> Result<()> {
    io::copy(entry, &mut io::sink())
        .map(|_| ())
        .map_err(|e| classify_read_error(e, "archive content"))
}

/// The one loop behind `check`, `manifest`, `transcode` and `rewrite`.
/// safeclaw's records are read into the `Records` returned, never copied.
fn scan<R: Read>(
    input: R,
    mut copy_to: Option<&mut tar::Builder<&mut dyn Write>>,
    hash: bool,
    mode: RecordsDir,
) -> Result<(Stats, Vec<Item>, Records)> {
    let meter = Cell::new(None);
    let mut archive = tar::Archive::new(Metered {
        inner: input,
        left: &meter,
    });
    let mut stats = Stats::default();
    let mut names = Names::new();
    let mut items = Vec::new();
    let mut records = Records::new();
    let mut entries = archive
        .entries()
        .map_err(|e| classify_read_error(e, "archive"))?;
    while let Some(mut entry) = next_entry(&mut entries, &meter)? {
        interrupt::check()?;
        let plan = plan(&entry)?;
        if take_record(
            &mut entry,
            &plan,
            &mut names,
            &mut records,
            &mut stats,
            mode,
        )? {
            skip_rest(&mut entry)?;
            continue;
        }
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(0);
        match plan {
            Plan::Root => {}
            Plan::Dir { path, mode, mtime } => {
                names.dir(&path).map_err(Refusal::in_archive)?;
                stats.dirs += 1;
                if let Some(b) = copy_to.as_deref_mut() {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(mode);
                    header.set_mtime(mtime);
                    b.append_data(&mut header, &path, io::empty())
                        .map_err(write_error)?;
                }
                if hash {
                    names
                        .keep(path.as_os_str().len())
                        .map_err(Refusal::in_archive)?;
                    items.push(Item::Dir { path, mode });
                }
            }
            Plan::File { path, mode, mtime } => {
                names.file(&path).map_err(Refusal::in_archive)?;
                if hash {
                    names
                        .keep(path.as_os_str().len())
                        .map_err(Refusal::in_archive)?;
                }
                let len = entry.size();
                let mut hashing = Hashing {
                    inner: &mut entry,
                    sha: hash.then(sha2::Sha256::default),
                    count: 0,
                };
                match copy_to.as_deref_mut() {
                    Some(b) => {
                        header.set_entry_type(tar::EntryType::Regular);
                        header.set_mode(mode);
                        header.set_mtime(mtime);
                        header.set_size(len);
                        b.append_data(&mut header, &path, &mut hashing)
                            .map_err(|e| {
                                if e.kind() == io::ErrorKind::InvalidData
                                    || e.kind() == io::ErrorKind::UnexpectedEof
                                {
                                    classify_read_error(e, "archive content")
                                } else {
                                    write_error(e)
                                }
                            })?;
                    }
                    None => {
                        io::copy(&mut hashing, &mut io::sink())
                            .map_err(|e| classify_read_error(e, "archive content"))?;
                    }
                }
                let (count, sha) = (hashing.count, hashing.sha);
                if count != len {
                    return Err(Error::damaged(format!(
                        "the archive entry {:?} is shorter than its header says",
                        path.display().to_string()
                    )));
                }
                stats.files += 1;
                stats.bytes += count;
                if let Some(sha) = sha {
                    items.push(Item::File {
                        path,
                        mode,
                        len,
                        sha256: sha2::Digest::finalize(sha).into(),
                    });
                }
            }
            Plan::Symlink { path, target } => {
                names.symlink(&path, &target).map_err(Refusal::in_archive)?;
                if let Some(b) = copy_to.as_deref_mut() {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    b.append_link(&mut header, &path, &target)
                        .map_err(write_error)?;
                }
                if hash {
                    names
                        .keep(path.as_os_str().len() + target.as_os_str().len())
                        .map_err(Refusal::in_archive)?;
                    items.push(Item::Symlink {
                        path: path.clone(),
                        target: target.clone(),
                    });
                }
                stats.symlinks += 1;
            }
            Plan::Hardlink { path, target } => {
                names
                    .hardlink(&path, &target)
                    .map_err(Refusal::in_archive)?;
                if let Some(b) = copy_to.as_deref_mut() {
                    header.set_entry_type(tar::EntryType::Link);
                    b.append_link(&mut header, &path, &target)
                        .map_err(write_error)?;
                }
                if hash {
                    names
                        .keep(path.as_os_str().len() + target.as_os_str().len())
                        .map_err(Refusal::in_archive)?;
                    items.push(Item::Hardlink { path, target });
                }
                stats.hardlinks += 1;
            }
        }
        skip_rest(&mut entry)?;
    }
    Ok((stats, items, records))
}

/// Counts and optionally hashes what is read through it.
struct Hashing<R> {
    inner: R,
    sha: Option<sha2::Sha256>,
    count: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(sha) = &mut self.sha {
            sha2::Digest::update(sha, &buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

/// A directory `unpack` sets the mode and time of at the end: path, mode, mtime.
type KeptDir = (Box<Path>, u32, u64);
/// A symbolic link `unpack` creates at the end: path, target.
type KeptLink = (Box<Path>, Box<Path>);

/// Extracts into `dest`, an empty directory the caller created privately.
/// Symlinks are data: made last, with their targets as stored (OpenClaw
/// links into its own install, e.g. `/opt/openclaw/...`), so no write of
/// this function ever goes through one and none is ever followed. On error the caller removes `dest`.
///
/// safeclaw's records (entries under `.safeclaw`, wherever they are) are
/// returned, never written to `dest`: `dest` is the state dir the agent
/// can read and write.
pub fn unpack<R: Read>(
    input: R,
    dest: &Path,
    mode: RecordsDir,
    progress: &mut dyn FnMut(u64),
) -> Result<(Stats, Records)> {
    let meter = Cell::new(None);
    let mut archive = tar::Archive::new(Metered {
        inner: input,
        left: &meter,
    });
    let mut stats = Stats::default();
    let mut names = Names::new();
    // Kept until the end, charged to `names` (`Names::dir`, `Names::symlink`).
    let mut links: Vec<KeptLink> = Vec::new();
    let mut dirs: Vec<KeptDir> = Vec::new();
    let mut records = Records::new();
    let mut entries = archive
        .entries()
        .map_err(|e| classify_read_error(e, "archive"))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    while let Some(mut entry) = next_entry(&mut entries, &meter)? {
        interrupt::check()?;
        let plan = plan(&entry)?;
        if take_record(
            &mut entry,
            &plan,
            &mut names,
            &mut records,
            &mut stats,
            mode,
        )? {
            skip_rest(&mut entry)?;
            continue;
        }
        match plan {
            Plan::Root => {}
            Plan::Dir { path, mode, mtime } => {
                names.dir(&path).map_err(Refusal::in_archive)?;
                make_dirs(dest, &path)?;
                dirs.push((path.into_boxed_path(), mode, mtime));
                stats.dirs += 1;
            }
            Plan::File { path, mode, mtime } => {
                names.file(&path).map_err(Refusal::in_archive)?;
                if let Some(parent) = path.parent() {
                    make_dirs(dest, parent)?;
                }
                let full = dest.join(&path);
                let mut file = create_new_file(&full, &path)?;
                let mut written = 0u64;
                loop {
                    let n = entry
                        .read(&mut buf)
                        .map_err(|e| classify_read_error(e, "archive content"))?;
                    if n == 0 {
                        break;
                    }
                    file.write_all(&buf[..n])
                        .map_err(|e| Error::io("writing", &full, e))?;
                    written += n as u64;
                    total += n as u64;
                    progress(total);
                    interrupt::check()?;
                }
                file.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(|e| Error::io("setting the mode of", &full, e))?;
                let t = filetime::FileTime::from_unix_time(mtime as i64, 0);
                filetime::set_file_handle_times(&file, None, Some(t))
                    .map_err(|e| Error::io("setting the time of", &full, e))?;
                stats.files += 1;
                stats.bytes += written;
            }
            Plan::Symlink { path, target } => {
                names.symlink(&path, &target).map_err(Refusal::in_archive)?;
                links.push((path.into_boxed_path(), target.into_boxed_path()));
                stats.symlinks += 1;
            }
            Plan::Hardlink { path, target } => {
                names
                    .hardlink(&path, &target)
                    .map_err(Refusal::in_archive)?;
                if let Some(parent) = path.parent() {
                    make_dirs(dest, parent)?;
                }
                let full = dest.join(&path);
                fs::hard_link(dest.join(&target), &full)
                    .map_err(|e| Error::io("creating", &full, e))?;
                stats.hardlinks += 1;
            }
        }
        skip_rest(&mut entry)?;
    }
    links.sort();
    for (path, target) in links {
        if let Some(parent) = path.parent() {
            make_dirs(dest, parent)?;
        }
        let full = dest.join(&path);
        std::os::unix::fs::symlink(&target, &full).map_err(|e| Error::io("creating", &full, e))?;
    }
    // Deepest first, so a read-only directory is closed after its children.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0.components().count()));
    for (path, mode, mtime) in dirs {
        let full = dest.join(&path);
        fs::set_permissions(&full, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("setting the mode of", &full, e))?;
        let t = filetime::FileTime::from_unix_time(mtime as i64, 0);
        filetime::set_file_mtime(&full, t)
            .map_err(|e| Error::io("setting the time of", &full, e))?;
    }
    Ok((stats, records))
}

/// Creates `rel` and its parents under `dest` (0700), checking that every
/// existing component is a real directory, never a link.
fn make_dirs(dest: &Path, rel: &Path) -> Result<()> {
    let mut at = dest.to_path_buf();
    for c in rel.components() {
        at.push(c);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => {
                return Err(hostile(format!(
                    "{:?} is used as a directory but is not one",
                    rel.display().to_string()
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::DirBuilder::new()
                .mode(0o700)
                .create(&at)
                .map_err(|e| Error::io("creating", &at, e))?,
            Err(e) => return Err(Error::io("reading", &at, e)),
        }
    }
    Ok(())
}

fn create_new_file(full: &Path, rel: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(full)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                hostile(format!("{:?} appears twice", rel.display().to_string()))
            } else {
                Error::io("creating", full, e)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::super::records::{MAX_RECORDS, MAX_RECORD_BYTES};
    use super::*;

    #[test]
    fn paths_are_normal_components_only() {
        assert_eq!(safe_relative(b"./a/b").unwrap(), Some(PathBuf::from("a/b")));
        assert_eq!(safe_relative(b"./").unwrap(), None);
        assert!(safe_relative(b"/etc/passwd").is_err());
        assert!(safe_relative(b"a/../../b").is_err());
        assert!(safe_relative(b"").is_err());
    }

    fn limit_message(r: Result<(), Refusal>) -> String {
        match r {
            Err(Refusal::Limit(m)) => m,
            Err(Refusal::Rule(m)) => panic!("a rule, not a limit: {m}"),
            Ok(()) => panic!("accepted"),
        }
    }

    #[test]
    fn path_length_and_depth_are_capped() {
        let mut names = Names::new();
        let longest = "n".repeat(MAX_PATH_BYTES);
        names.file(Path::new(&longest)).unwrap();
        let m = limit_message(names.file(Path::new(&format!("{longest}x"))));
        assert!(m.contains("4097 bytes long; the limit is 4096"), "{m}");

        let deepest = vec!["d"; MAX_DEPTH].join("/");
        names.file(Path::new(&deepest)).unwrap();
        let m = limit_message(names.file(Path::new(&format!("{deepest}/x"))));
        assert!(m.contains("has 257 components; the limit is 256"), "{m}");

        let m = limit_message(names.symlink(Path::new("l"), Path::new(&format!("{longest}x"))));
        assert!(m.contains("the link target \"nnn"), "{m}");
    }

    #[test]
    fn entries_are_capped() {
        let mut names = Names::new();
        // The same directory again costs no name, only an entry.
        for _ in 0..MAX_ENTRIES {
            names.add(Path::new("d"), Kind::Dir).unwrap();
        }
        let m = limit_message(names.add(Path::new("d"), Kind::Dir));
        assert_eq!(m, "it has more than 1000000 entries");
    }

    #[test]
    fn the_names_budget_is_enforced() {
        let budget = 1 << 20;
        let mut names = Names::with_budget(budget);
        let mut refused = None;
        for i in 0..100_000 {
            match names.file(Path::new(&format!("dir-{i}/{}", "f".repeat(200)))) {
                Ok(()) => assert!(names.charged <= budget),
                Err(r) => {
                    refused = Some(limit_message(Err(r)));
                    break;
                }
            }
        }
        assert_eq!(
            refused.as_deref(),
            Some("its names need more than 1 MiB of memory to check")
        );
        // Lists kept until the end are charged to the same budget.
        let mut names = Names::with_budget(budget);
        let m = limit_message((0..).try_for_each(|_| names.dir(Path::new("same"))));
        assert!(m.contains("1 MiB"), "{m}");
    }

    /// Holds `NAME_OVERHEAD` to what the table really allocates: the slots
    /// of the hash table (at their worst, right after it grew, with the old
    /// table counted too) and the keys' allocations, for every size up to
    /// 50,000 names, stay within what was charged (plus the fixed cost of a
    /// small table).
    #[test]
    fn the_names_table_stays_within_its_charge() {
        let slot = std::mem::size_of::<(Box<[u8]>, Node)>() + 1;
        let alloc = |n: usize| (n + 8).div_ceil(16).max(2) * 16;
        let mut names = Names::new();
        let mut keys = 0;
        for i in 0..50_000u32 {
            let name = format!("{:x}", i % 4096);
            // Two levels, so parents other than the root are exercised.
            names
                .file(Path::new(&format!("{:x}/{name}", i / 4096)))
                .unwrap();
            keys += alloc(4 + name.len());
            if i % 4096 == 0 {
                keys += alloc(4 + format!("{:x}", i / 4096).len());
            }
            let buckets = (names.nodes.capacity() * 8 / 7).next_power_of_two();
            let table = buckets * slot + buckets / 2 * slot;
            assert!(
                table + keys <= names.charged + 1024,
                "{} names: {} bytes allocated, {} charged",
                names.nodes.len(),
                table + keys,
                names.charged
            );
        }
    }

    #[test]
    fn kept_lists_stay_within_their_charge() {
        use std::mem::size_of;
        for slot in [
            size_of::<KeptDir>(),
            size_of::<KeptLink>(),
            size_of::<Item>(),
        ] {
            assert!(3 * slot + 2 * 32 <= KEPT_OVERHEAD, "{slot}");
        }
        assert!(size_of::<(Box<[u8]>, Node)>() <= 24);
    }

    fn long_name_tar(name_len: usize) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o600);
        b.append_data(&mut h, "a/".repeat(name_len / 2) + "f", io::empty())
            .unwrap();
        b.into_inner().unwrap()
    }

    fn pax_tar(record_len: usize) -> Vec<u8> {
        let value = "v".repeat(record_len);
        let mut record = format!(" comment={value}\n");
        // The length field counts itself.
        let digits = (record.len() + 8).to_string().len();
        record = format!("{}{record}", record.len() + digits);
        let mut out = Vec::new();
        let mut x = tar::Header::new_ustar();
        x.set_path("pax").unwrap();
        x.set_entry_type(tar::EntryType::XHeader);
        x.set_size(record.len() as u64);
        x.set_cksum();
        out.extend_from_slice(x.as_bytes());
        out.extend_from_slice(record.as_bytes());
        out.resize(out.len().div_ceil(512) * 512, 0);
        let mut f = tar::Header::new_ustar();
        f.set_path("f").unwrap();
        f.set_size(0);
        f.set_mode(0o600);
        f.set_cksum();
        out.extend_from_slice(f.as_bytes());
        out.extend_from_slice(&[0; 1024]);
        out
    }

    #[test]
    fn extension_headers_are_bounded_before_tar_reads_them_whole() {
        // Within the bound, a long name is read and then refused by its length.
        let err = check(&long_name_tar(64_000)[..], RecordsDir::Records).unwrap_err();
        assert!(
            err.message
                .contains("is 64001 bytes long; the limit is 4096"),
            "{}",
            err.message
        );
        assert_eq!(err.class, crate::error::Class::Damaged);
        // Beyond it, the tar reader is stopped while it reads.
        for tar in [long_name_tar(2 << 20), pax_tar(2 << 20)] {
            let err = check(&tar[..], RecordsDir::Records).unwrap_err();
            assert_eq!(
                err.message,
                "refused archive: an entry's headers (GNU long name or link, PAX extensions) exceed 1024 KiB"
            );
            assert_eq!(err.class, crate::error::Class::Damaged);
        }
        // A PAX header of ordinary size still reads.
        assert_eq!(
            check(&pax_tar(100)[..], RecordsDir::Records).unwrap().files,
            1
        );
    }

    fn some_records() -> Records {
        let mut r = Records::new();
        r.set("egress.json", b"{\"allow\":[\"api.example\"]}".to_vec())
            .unwrap();
        r.set("broker.json", b"sk-SECRET".to_vec()).unwrap();
        r
    }

    fn packed(root: &Path, records: &Records) -> (Stats, Vec<u8>) {
        let mut out = Vec::new();
        let stats = pack(root, records, &mut out, &mut |_| {}).unwrap();
        (stats, out)
    }

    /// The paths and types of an archive's entries, in order.
    fn entries_of(tar: &[u8]) -> Vec<(String, tar::EntryType)> {
        tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
                (path, e.header().entry_type())
            })
            .collect()
    }

    fn state(root: &Path) {
        fs::create_dir_all(root.join("workspace")).unwrap();
        fs::write(root.join("openclaw.json"), "{}").unwrap();
        fs::write(root.join("workspace/MEMORY.md"), "tea").unwrap();
    }

    #[test]
    fn one_file_is_found_bounded_and_a_hostile_archive_is_still_refused() {
        let tmp = tempfile::TempDir::new().unwrap();
        let root = tmp.path().join("state");
        state(&root);
        let (_, tar) = packed(&root, &some_records());
        let found = find_file(&tar[..], Path::new("workspace/MEMORY.md"), 64).unwrap();
        assert_eq!(found.as_deref().map(Vec::as_slice), Some(&b"tea"[..]));
        assert!(find_file(&tar[..], Path::new("missing.json"), 64)
            .unwrap()
            .is_none());
        // A directory of that name is not the file.
        assert!(find_file(&tar[..], Path::new("workspace"), 64)
            .unwrap()
            .is_none());
        let e = find_file(&tar[..], Path::new("workspace/MEMORY.md"), 2).unwrap_err();
        assert!(e.message.contains("more than the 2 read"), "{}", e.message);
        // Claimed far beyond the bound, with no data: refused, not allocated.
        let mut huge = Vec::new();
        raw(&mut huge, "openclaw.json", b'0', "", 1 << 40, b"");
        let e = find_file(&huge[..], Path::new("openclaw.json"), 4 << 20).unwrap_err();
        assert!(e.message.contains("more than"), "{}", e.message);
        // The readers' rules hold on the way to it.
        let hostile = raw_tar(&[
            ("../escape", b'0', "", b"x"),
            ("openclaw.json", b'0', "", b"{}"),
        ]);
        assert!(find_file(&hostile[..], Path::new("openclaw.json"), 64).is_err());
    }

    #[test]
    fn a_directory_swapped_for_a_link_while_it_is_packed_is_not_followed() {
        let tmp = tempfile::TempDir::new().unwrap();
        let root = tmp.path().join("state");
        fs::create_dir_all(root.join("workspace")).unwrap();
        fs::write(root.join("workspace/a.md"), "first").unwrap();
        fs::write(root.join("workspace/b.md"), "inside").unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("b.md"), "outside").unwrap();
        // While workspace/a.md is read, workspace becomes a link to
        // `outside`: what the gateway's user could do from outside the
        // frozen process group. By path, b.md would now be outside's.
        let mut swapped = false;
        let mut out = Vec::new();
        pack(&root, &Records::new(), &mut out, &mut |_| {
            if !swapped {
                swapped = true;
                fs::rename(root.join("workspace"), root.join("moved")).unwrap();
                std::os::unix::fs::symlink(&outside, root.join("workspace")).unwrap();
            }
        })
        .unwrap();
        assert!(swapped);
        let b = find_file(&out[..], Path::new("workspace/b.md"), 64).unwrap();
        assert_eq!(b.as_deref().map(Vec::as_slice), Some(&b"inside"[..]));
    }

    #[test]
    fn an_open_tree_is_not_a_link_and_stays_the_directory_it_opened() {
        let tmp = tempfile::TempDir::new().unwrap();
        let root = tmp.path().join("state");
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join("openclaw.json"), "{}").unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&root, &link).unwrap();
        assert!(OpenTree::open(&link).is_err());
        // Opened, then the path is swapped for a link elsewhere: the pack
        // is still of the directory that was opened.
        let tree = OpenTree::open(&root).unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("openclaw.json"), "outside").unwrap();
        fs::rename(&root, tmp.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, &root).unwrap();
        let mut out = Vec::new();
        pack_tree(&tree, &Records::new(), &mut out, &mut |_| {}).unwrap();
        let found = find_file(&out[..], Path::new("openclaw.json"), 64).unwrap();
        assert_eq!(found.as_deref().map(Vec::as_slice), Some(&b"{}"[..]));
        // `pack` of a path follows a link the caller gave (vault create).
        let mut out = Vec::new();
        pack(&link, &Records::new(), &mut out, &mut |_| {}).unwrap();
    }

    #[test]
    fn what_openclaw_rebuilds_is_neither_packed_nor_counted_nor_followed() {
        let tmp = tempfile::TempDir::new().unwrap();
        let root = tmp.path().join("state");
        state(&root);
        let assets = root.join("cache/control-ui-assets/abc/assets");
        fs::create_dir_all(&assets).unwrap();
        fs::write(assets.join("index.js"), vec![b'x'; 4096]).unwrap();
        // Beside it in cache/, and the same name deeper: both kept.
        fs::write(root.join("cache/models.json"), "[]").unwrap();
        fs::create_dir_all(root.join("workspace/cache/control-ui-assets")).unwrap();
        fs::write(root.join("workspace/cache/control-ui-assets/note"), "mine").unwrap();
        let (stats, tar) = packed(&root, &Records::new());
        let paths: Vec<String> = entries_of(&tar).into_iter().map(|(p, _)| p).collect();
        assert!(
            !paths
                .iter()
                .any(|p| p.starts_with("cache/control-ui-assets")),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"cache/models.json".to_string()),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"workspace/cache/control-ui-assets/note".to_string()),
            "{paths:?}"
        );
        assert_eq!(stats.regenerable, ["cache/control-ui-assets"]);
        assert!(stats.skipped.is_empty(), "{:?}", stats.skipped);
        assert_eq!(stats.bytes, content_size(&root));
        assert_eq!(stats.bytes, 2 + 3 + 2 + 4);
        // A link in its place is not followed (nor archived as a link).
        fs::remove_dir_all(root.join("cache/control-ui-assets")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("cache/control-ui-assets")).unwrap();
        let (stats, tar) = packed(&root, &Records::new());
        assert_eq!(stats.symlinks, 0);
        assert!(!entries_of(&tar)
            .iter()
            .any(|(p, _)| p.starts_with("cache/control-ui-assets")));
    }

    #[test]
    fn records_are_packed_first_and_round_trip_off_the_disk() {
        let tmp = tempfile::TempDir::new().unwrap();
        let root = tmp.path().join("state");
        state(&root);
        let records = some_records();
        let (stats, tar) = packed(&root, &records);
        assert_eq!((stats.records, stats.files, stats.dirs), (2, 2, 1));
        let kinds: Vec<_> = entries_of(&tar);
        use tar::EntryType as T;
        assert_eq!(
            kinds,
            [
                (".safeclaw".into(), T::Directory),
                (".safeclaw/broker.json".into(), T::Regular),
                (".safeclaw/egress.json".into(), T::Regular),
                ("openclaw.json".into(), T::Regular),
                ("workspace".into(), T::Directory),
                ("workspace/MEMORY.md".into(), T::Regular),
            ]
        );
        for e in tar::Archive::new(&tar[..]).entries().unwrap().take(3) {
            let h = e.unwrap().header().clone();
            let mode = h.mode().unwrap();
            assert!(mode == 0o700 || mode == 0o600, "{mode:o}");
            assert_eq!(h.mtime().unwrap(), 0);
        }

        let dest = tmp.path().join("dest");
        fs::create_dir(&dest).unwrap();
        let (unpacked, got) = unpack(&tar[..], &dest, RecordsDir::Records, &mut |_| {}).unwrap();
        assert_eq!(got, records);
        assert_eq!(
            unpacked,
            Stats {
                skipped: vec![],
                regenerable: vec![],
                ..stats.clone()
            }
        );
        assert!(!dest.join(RECORDS_DIR).exists());
        assert_eq!(
            fs::read_to_string(dest.join("workspace/MEMORY.md")).unwrap(),
            "tea"
        );
        assert_eq!(check(&tar[..], RecordsDir::Records).unwrap(), unpacked);
        assert_eq!(
            leading_records(&tar[..], RecordsDir::Records).unwrap(),
            records
        );
        // The manifest is the state's alone: the same with other records.
        let (_, with) = manifest(&tar[..], RecordsDir::Records).unwrap();
        let (_, without) =
            manifest(&packed(&root, &Records::new()).1[..], RecordsDir::Records).unwrap();
        assert_eq!(with, without);
        assert!(with.iter().all(|i| !format!("{i:?}").contains(RECORDS_DIR)));
    }

    #[test]
    fn no_records_write_no_records_entry() {
        let tmp = tempfile::TempDir::new().unwrap();
        state(tmp.path());
        let (stats, tar) = packed(tmp.path(), &Records::new());
        assert_eq!(stats.records, 0);
        assert_eq!(entries_of(&tar)[0].0, "openclaw.json");
        assert!(leading_records(&tar[..], RecordsDir::Records)
            .unwrap()
            .is_empty());
        // An archive without records has no records, wherever read.
        let dest = tmp.path().join("dest");
        fs::create_dir(&dest).unwrap();
        assert!(unpack(&tar[..], &dest, RecordsDir::Records, &mut |_| {})
            .unwrap()
            .1
            .is_empty());
    }

    #[test]
    fn a_safeclaw_planted_in_the_state_is_neither_packed_nor_followed() {
        let tmp = tempfile::TempDir::new().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("passwd"), "root:x:0:0").unwrap();
        type Plant<'a> = &'a dyn Fn(&Path);
        let plant: [(&str, Plant); 4] = [
            ("a directory", &|p: &Path| {
                fs::create_dir(p).unwrap();
                fs::write(p.join("egress.json"), "{\"allow\":[\"*\"]}").unwrap();
            }),
            ("a file", &|p: &Path| fs::write(p, "planted").unwrap()),
            ("a link to a directory outside", &|p: &Path| {
                std::os::unix::fs::symlink(&outside, p).unwrap()
            }),
            ("a link to /etc", &|p: &Path| {
                std::os::unix::fs::symlink("/etc", p).unwrap()
            }),
        ];
        for (what, plant) in plant {
            for records in [Records::new(), some_records()] {
                let root = tmp.path().join("state");
                let _ = fs::remove_dir_all(&root);
                state(&root);
                plant(&root.join(RECORDS_DIR));
                let (stats, tar) = packed(&root, &records);
                assert_eq!(stats.skipped, [SKIPPED_RECORDS_DIR], "{what}");
                let paths: Vec<String> = entries_of(&tar).into_iter().map(|e| e.0).collect();
                let expected: Vec<String> =
                    records.names().map(|n| format!(".safeclaw/{n}")).collect();
                let under: Vec<&String> = paths
                    .iter()
                    .filter(|p| p.starts_with(".safeclaw/"))
                    .collect();
                assert_eq!(under, expected.iter().collect::<Vec<_>>(), "{what}");
                assert!(!paths.iter().any(|p| p.contains("passwd")), "{what}");
                let dest = tmp.path().join("dest");
                let _ = fs::remove_dir_all(&dest);
                fs::create_dir(&dest).unwrap();
                let (_, got) = unpack(&tar[..], &dest, RecordsDir::Records, &mut |_| {}).unwrap();
                assert_eq!(got, records, "{what}");
                assert!(
                    fs::symlink_metadata(dest.join(RECORDS_DIR)).is_err(),
                    "{what}"
                );
            }
        }
    }

    /// A raw tar entry: a GNU header written by hand (any name, type and
    /// claimed size) followed by `data`.
    fn raw(out: &mut Vec<u8>, name: &str, kind: u8, link: &str, size: u64, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_mode(0o600);
        h.set_size(size);
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }

    fn raw_tar(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, kind, link, data) in entries {
            raw(&mut out, name, *kind, link, data.len() as u64, data);
        }
        out.extend_from_slice(&[0; 1024]);
        out
    }

    /// Every reader refuses `tar` as damaged with `message` in its error,
    /// and `unpack` writes nothing of `.safeclaw`. The prefix reader too, unless the
    /// hostile entry comes after a state entry (where it stops reading).
    fn refused_everywhere(tar: &[u8], message: &str) {
        let tmp = tempfile::TempDir::new().unwrap();
        let mut errors = vec![
            check(tar, RecordsDir::Records).unwrap_err(),
            manifest(tar, RecordsDir::Records).unwrap_err(),
            unpack(tar, tmp.path(), RecordsDir::Records, &mut |_| {}).unwrap_err(),
            rewrite(tar, RecordsDir::Records, &Records::new(), &mut io::sink()).unwrap_err(),
        ];
        let mut archive = tar::Archive::new(tar);
        let first = archive.entries().unwrap().next().unwrap().unwrap();
        if first.path_bytes().starts_with(b".safeclaw")
            || first.path_bytes().starts_with(b"./.safeclaw")
        {
            errors.push(leading_records(tar, RecordsDir::Records).unwrap_err());
        }
        for e in errors {
            assert_eq!(e.class, crate::error::Class::Damaged, "{}", e.message);
            assert!(
                e.message.contains(message),
                "{:?} lacks {message:?}",
                e.message
            );
        }
        assert!(fs::symlink_metadata(tmp.path().join(RECORDS_DIR)).is_err());
    }

    const FILE: u8 = b'0';
    const HARD: u8 = b'1';
    const SYM: u8 = b'2';
    const CHR: u8 = b'3';
    const DIR: u8 = b'5';
    const FIFO: u8 = b'6';

    #[test]
    fn hostile_entries_under_safeclaw_are_refused() {
        let under = "which holds only safeclaw's records";
        for (entries, message) in [
            (vec![(".safeclaw/x", SYM, "/etc/passwd", &b""[..])], under),
            (vec![(".safeclaw", SYM, "/etc", &b""[..])], under),
            (vec![(".safeclaw", FILE, "", &b"x"[..])], under),
            (
                vec![
                    (".safeclaw/", DIR, "", &b""[..]),
                    (".safeclaw/sub/", DIR, "", &b""[..]),
                ],
                under,
            ),
            (vec![(".safeclaw/sub/x", FILE, "", &b"x"[..])], under),
            (
                vec![
                    ("f", FILE, "", &b"x"[..]),
                    (".safeclaw/x", HARD, "f", &b""[..]),
                ],
                under,
            ),
            (
                vec![
                    (".safeclaw/x", FILE, "", &b"x"[..]),
                    ("f", HARD, ".safeclaw/x", &b""[..]),
                ],
                "points into .safeclaw",
            ),
            (
                vec![(".safeclaw/tty", CHR, "", &b""[..])],
                "is a device node",
            ),
            (vec![(".safeclaw/p", FIFO, "", &b""[..])], "is a FIFO"),
            (
                vec![(".safeclaw/Egress.json", FILE, "", &b"x"[..])],
                "is not a record",
            ),
            (
                vec![(".safeclaw/.hidden", FILE, "", &b"x"[..])],
                "is not a record",
            ),
            (
                vec![("./.safeclaw/a b", FILE, "", &b"x"[..])],
                "is not a record",
            ),
            (
                vec![
                    (".safeclaw/a", FILE, "", &b"1"[..]),
                    (".safeclaw/a", FILE, "", &b"2"[..]),
                ],
                "appears twice",
            ),
        ] {
            refused_everywhere(&raw_tar(&entries), message);
        }
        // The same path outside is just state.
        let tmp = tempfile::TempDir::new().unwrap();
        let tar = raw_tar(&[("safeclaw/sub/x", FILE, "", b"x")]);
        unpack(&tar[..], tmp.path(), RecordsDir::Records, &mut |_| {}).unwrap();
    }

    #[test]
    fn records_beyond_the_limits_are_refused_before_allocating() {
        // A header claiming a huge size, and no content at all: refused
        // on the claim, not after trying to read (or allocate) it.
        for size in [MAX_RECORD_BYTES + 1, 1 << 40, u64::MAX >> 2] {
            let mut tar = Vec::new();
            raw(&mut tar, ".safeclaw/big", FILE, "", size, b"");
            refused_everywhere(&tar, "a record is at most 256 KiB");
        }
        // The total: four records at the size limit fill it.
        let full = vec![7u8; MAX_RECORD_BYTES as usize];
        let mut tar = Vec::new();
        for n in 0..4 {
            raw(
                &mut tar,
                &format!(".safeclaw/r{n}"),
                FILE,
                "",
                full.len() as u64,
                &full,
            );
        }
        let mut over = tar.clone();
        raw(&mut over, ".safeclaw/r4", FILE, "", 1, b"x");
        over.extend_from_slice(&[0; 1024]);
        refused_everywhere(&over, "all of them together are at most 1024 KiB");
        tar.extend_from_slice(&[0; 1024]);
        assert_eq!(
            leading_records(&tar[..], RecordsDir::Records)
                .unwrap()
                .len(),
            4
        );
        // The count.
        let names: Vec<String> = (0..=MAX_RECORDS)
            .map(|n| format!(".safeclaw/r{n}"))
            .collect();
        let many: Vec<(&str, u8, &str, &[u8])> = names
            .iter()
            .map(|n| (n.as_str(), FILE, "", &b""[..]))
            .collect();
        refused_everywhere(&raw_tar(&many), "at most 32 records");
        assert_eq!(
            leading_records(&raw_tar(&many[..MAX_RECORDS])[..], RecordsDir::Records)
                .unwrap()
                .len(),
            32
        );
        // A record shorter than its header says: the archive is malformed.
        let mut short = Vec::new();
        raw(&mut short, ".safeclaw/r", FILE, "", 100, b"abc");
        let e = leading_records(&short[..512 + 3], RecordsDir::Records).unwrap_err();
        assert_eq!(e.class, crate::error::Class::Damaged);
    }

    #[test]
    fn records_anywhere_are_read_by_unpack_and_the_prefix_stops_at_the_state() {
        let tar = raw_tar(&[
            ("f", FILE, "", b"state"),
            (".safeclaw/", DIR, "", b""),
            (".safeclaw/late", FILE, "", b"value"),
        ]);
        let tmp = tempfile::TempDir::new().unwrap();
        let (stats, records) =
            unpack(&tar[..], tmp.path(), RecordsDir::Records, &mut |_| {}).unwrap();
        assert_eq!((stats.files, stats.records), (1, 1));
        assert_eq!(records.get("late"), Some(&b"value"[..]));
        assert!(!tmp.path().join(RECORDS_DIR).exists());
        assert!(leading_records(&tar[..], RecordsDir::Records)
            .unwrap()
            .is_empty());
    }

    /// A reader that fails once `limit` bytes were read: what the prefix
    /// reader reads must stay below it.
    struct FailsAfter<R> {
        inner: R,
        limit: usize,
    }

    impl<R: Read> Read for FailsAfter<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.limit == 0 {
                return Err(io::Error::other("read too far"));
            }
            let max = buf.len().min(self.limit);
            let n = self.inner.read(&mut buf[..max])?;
            self.limit -= n;
            Ok(n)
        }
    }

    #[test]
    fn the_prefix_reader_reads_no_further_than_the_first_state_entry() {
        let tmp = tempfile::TempDir::new().unwrap();
        let root = tmp.path().join("state");
        fs::create_dir(&root).unwrap();
        fs::write(root.join("big"), vec![1u8; 1 << 20]).unwrap();
        let records = some_records();
        let (_, tar) = packed(&root, &records);
        // The directory's header, two records of a header and one block
        // of content each, and the header of "big".
        let limit = 512 + 2 * 1024 + 512;
        let prefix = FailsAfter {
            inner: &tar[..],
            limit,
        };
        assert_eq!(
            leading_records(prefix, RecordsDir::Records).unwrap(),
            records
        );
        let whole = FailsAfter {
            inner: &tar[..],
            limit,
        };
        assert!(check(whole, RecordsDir::Records).is_err());
    }

    #[test]
    fn rewrite_replaces_the_records_and_copies_the_state() {
        let tmp = tempfile::TempDir::new().unwrap();
        let root = tmp.path().join("state");
        state(&root);
        std::os::unix::fs::symlink("openclaw.json", root.join("link")).unwrap();
        let old = some_records();
        let (_, tar) = packed(&root, &old);
        let mut new = Records::new();
        new.set("egress.json", b"{}".to_vec()).unwrap();
        let mut out = Vec::new();
        let (stats, found) = rewrite(&tar[..], RecordsDir::Records, &new, &mut out).unwrap();
        assert_eq!(found, old);
        assert_eq!((stats.records, stats.files, stats.symlinks), (1, 2, 1));
        assert_eq!(entries_of(&out)[1].0, ".safeclaw/egress.json");
        assert_eq!(leading_records(&out[..], RecordsDir::Records).unwrap(), new);
        assert_eq!(
            manifest(&out[..], RecordsDir::Records).unwrap().1,
            manifest(&tar[..], RecordsDir::Records).unwrap().1
        );
        // Records found later in the input are returned, not copied.
        let late = raw_tar(&[("f", FILE, "", b"x"), (".safeclaw/late", FILE, "", b"v")]);
        let mut out = Vec::new();
        let (_, found) =
            rewrite(&late[..], RecordsDir::Records, &Records::new(), &mut out).unwrap();
        assert_eq!(found.get("late"), Some(&b"v"[..]));
        assert_eq!(entries_of(&out).len(), 1);
    }

    #[test]
    fn transcode_leaves_out_a_safeclaw_of_someone_elses_tar() {
        // Whatever it is: records in form, a link, a nested directory.
        let tar = raw_tar(&[
            (".safeclaw/egress.json", FILE, "", b"{}"),
            (".safeclaw/link", b'2', "/etc/passwd", b""),
            (".safeclaw/sub/f", FILE, "", b"x"),
            ("openclaw.json", FILE, "", b"{}"),
        ]);
        let mut out = Vec::new();
        let (stats, items) = transcode(&tar[..], &mut out).unwrap();
        assert_eq!(stats.skipped, [SKIPPED_FOREIGN_RECORDS]);
        assert_eq!(items.len(), 1);
        assert_eq!(
            entries_of(&out),
            [("openclaw.json".to_string(), tar::EntryType::Regular)]
        );
    }

    #[test]
    fn a_directory_entry_with_content_is_skipped_outside_the_meter() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(3 << 20);
        h.set_mode(0o700);
        b.append_data(&mut h, "d", io::repeat(0).take(3 << 20))
            .unwrap();
        let tar = b.into_inner().unwrap();
        assert_eq!(check(&tar[..], RecordsDir::Records).unwrap().dirs, 1);
    }
}

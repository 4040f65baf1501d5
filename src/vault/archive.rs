//! The tar layer of the payload (docs/vault-format.md, "Plaintext"): packs a
//! directory without following links, and checks or extracts an archive as
//! hostile input: nothing outside the target, no devices, no writes through
//! links.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

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
    /// Source entries left out (sockets, FIFOs, devices), packing only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

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

/// Bytes of file content under `root` (for a progress bar), not following links.
pub fn content_size(root: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) if m.is_file() => total += m.len(),
                _ => {}
            }
        }
    }
    total
}

/// Writes a tar of the directory `root` into `out`, entries in sorted order.
/// `progress` is called with the number of content bytes read so far.
pub fn pack(root: &Path, out: &mut dyn Write, progress: &mut dyn FnMut(u64)) -> Result<Stats> {
    let mut builder = tar::Builder::new(out);
    builder.mode(tar::HeaderMode::Complete);
    let mut stats = Stats::default();
    let mut done = 0u64;
    pack_dir(
        &mut builder,
        root,
        Path::new(""),
        &mut stats,
        &mut done,
        progress,
    )?;
    builder.into_inner().map_err(write_error)?;
    Ok(stats)
}

fn pack_dir<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    stats: &mut Stats,
    done: &mut u64,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<OsString> = fs::read_dir(&dir)
        .map_err(|e| Error::io("reading", &dir, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(|e| Error::io("reading", &dir, e))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        interrupt::check()?;
        let rel = rel.join(&name);
        let path = root.join(&rel);
        let meta = fs::symlink_metadata(&path).map_err(|e| Error::io("reading", &path, e))?;
        let ft = meta.file_type();
        let mut header = tar::Header::new_gnu();
        header.set_mode(meta.mode() & 0o777);
        header.set_mtime(meta.mtime().max(0) as u64);
        header.set_uid(0);
        header.set_gid(0);
        if ft.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            builder
                .append_data(&mut header, &rel, io::empty())
                .map_err(write_error)?;
            stats.dirs += 1;
            pack_dir(builder, root, &rel, stats, done, progress)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(|e| Error::io("reading", &path, e))?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder
                .append_link(&mut header, &rel, &target)
                .map_err(write_error)?;
            stats.symlinks += 1;
        } else if ft.is_file() {
            // O_NOFOLLOW: the entry was a regular file a moment ago; refuse
            // to follow a link swapped in since.
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|e| Error::io("reading", &path, e))?;
            let len = file
                .metadata()
                .map_err(|e| Error::io("reading", &path, e))?
                .len();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(len);
            let mut counted = Counted {
                inner: file.take(len),
                count: 0,
                done,
                progress,
            };
            builder
                .append_data(&mut header, &rel, &mut counted)
                .map_err(|e| {
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
            stats.files += 1;
            stats.bytes += len;
        } else {
            stats.skipped.push(rel.display().to_string());
        }
    }
    Ok(())
}

struct Counted<'a, R> {
    inner: R,
    count: u64,
    done: &'a mut u64,
    progress: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if interrupt::requested() {
            return Err(crate::interrupt::io_error());
        }
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        *self.done += n as u64;
        (self.progress)(*self.done);
        Ok(n)
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

/// A path inside the root, as normal components only. `None` for the root.
fn safe_relative(raw: &[u8]) -> Result<Option<PathBuf>> {
    let shown = String::from_utf8_lossy(raw);
    if raw.is_empty() {
        return Err(hostile("empty path".into()));
    }
    if raw.contains(&0) {
        return Err(hostile(format!("{shown:?} contains a NUL byte")));
    }
    let path = Path::new(OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err(hostile(format!("{shown:?} contains '..'"))),
            Component::RootDir | Component::Prefix(_) => {
                return Err(hostile(format!("{shown:?} is an absolute path")))
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
    let shown = String::from_utf8_lossy(&raw_path).into_owned();
    let damaged = |e: io::Error| classify_read_error(e, "archive's header");
    let mode = header.mode().map_err(damaged)? & 0o777;
    let mtime = header.mtime().map_err(damaged)?;
    let kind = header.entry_type();
    let Some(path) = safe_relative(&raw_path)? else {
        return if kind.is_dir() {
            Ok(Plan::Root)
        } else {
            Err(hostile(format!(
                "{shown:?} is not a directory but names the root"
            )))
        };
    };
    let link_target = || -> Result<PathBuf> {
        let t = entry
            .link_name_bytes()
            .ok_or_else(|| hostile(format!("{shown:?} is a link without a target")))?;
        if t.is_empty() || t.contains(&0) {
            return Err(hostile(format!(
                "{shown:?} has an empty or invalid link target"
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
                .ok_or_else(|| hostile(format!("{shown:?} is a hard link to the root")))?;
            Plan::Hardlink { path, target }
        }
        tar::EntryType::Char | tar::EntryType::Block => {
            return Err(hostile(format!("{shown:?} is a device node")))
        }
        tar::EntryType::Fifo => return Err(hostile(format!("{shown:?} is a FIFO"))),
        other => return Err(hostile(format!("{shown:?} has unsupported type {other:?}"))),
    })
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

/// The names an archive has used so far, and what each is: the rules on
/// duplicates and on parents are the same for `check` and `unpack`.
#[derive(Default)]
struct Names {
    kinds: HashMap<PathBuf, Kind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
}

impl Names {
    fn add(&mut self, path: &Path, kind: Kind) -> Result<()> {
        let shown = || format!("{:?}", path.display().to_string());
        for parent in path.ancestors().skip(1) {
            if parent.as_os_str().is_empty() {
                break;
            }
            match self.kinds.get(parent) {
                None => {
                    self.kinds.insert(parent.to_path_buf(), Kind::Dir);
                }
                Some(Kind::Dir) => {}
                Some(_) => return Err(hostile(format!("{} is under a non-directory", shown()))),
            }
        }
        match self.kinds.get(path) {
            None => {
                self.kinds.insert(path.to_path_buf(), kind);
                Ok(())
            }
            Some(Kind::Dir) if kind == Kind::Dir => Ok(()),
            Some(_) => Err(hostile(format!("{} appears twice", shown()))),
        }
    }

    fn hardlink(&mut self, path: &Path, target: &Path) -> Result<()> {
        if self.kinds.get(target) != Some(&Kind::File) {
            return Err(hostile(format!(
                "hard link {:?} does not point to a file extracted before it",
                path.display().to_string()
            )));
        }
        self.add(path, Kind::File)
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

/// Reads the whole archive, applying every extraction rule, writing nothing.
pub fn check<R: Read>(input: R) -> Result<Stats> {
    scan(input, None, false).map(|(stats, _)| stats)
}

/// The content of an archive (paths, modes, SHA-256 of every file, link
/// targets), after the same checks as `check`.
pub fn manifest<R: Read>(input: R) -> Result<(Stats, Vec<Item>)> {
    scan(input, None, true)
}

/// Copies an archive from someone else's tar (the guide's `tar -czf`)
/// into safeclaw's form, entry by entry, under every extraction rule:
/// owners dropped, modes masked, names normalised, hostile entries refused.
/// Returns what was copied, as `manifest` would read it back.
pub fn transcode<R: Read>(input: R, out: &mut dyn Write) -> Result<(Stats, Vec<Item>)> {
    let mut builder = tar::Builder::new(out);
    let result = scan(input, Some(&mut builder), true)?;
    builder.into_inner().map_err(write_error)?;
    Ok(result)
}

/// The one loop behind `check`, `manifest` and `transcode`.
fn scan<R: Read>(
    input: R,
    mut copy_to: Option<&mut tar::Builder<&mut dyn Write>>,
    hash: bool,
) -> Result<(Stats, Vec<Item>)> {
    let mut archive = tar::Archive::new(input);
    let mut stats = Stats::default();
    let mut names = Names::default();
    let mut items = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| classify_read_error(e, "archive"))?;
    for entry in entries {
        interrupt::check()?;
        let mut entry = entry.map_err(|e| classify_read_error(e, "archive"))?;
        let plan = plan(&entry)?;
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(0);
        match plan {
            Plan::Root => {}
            Plan::Dir { path, mode, mtime } => {
                names.add(&path, Kind::Dir)?;
                stats.dirs += 1;
                if let Some(b) = copy_to.as_deref_mut() {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(mode);
                    header.set_mtime(mtime);
                    b.append_data(&mut header, &path, io::empty())
                        .map_err(write_error)?;
                }
                if hash {
                    items.push(Item::Dir { path, mode });
                }
            }
            Plan::File { path, mode, mtime } => {
                names.add(&path, Kind::File)?;
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
                names.add(&path, Kind::Symlink)?;
                if let Some(b) = copy_to.as_deref_mut() {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    b.append_link(&mut header, &path, &target)
                        .map_err(write_error)?;
                }
                if hash {
                    items.push(Item::Symlink {
                        path: path.clone(),
                        target: target.clone(),
                    });
                }
                stats.symlinks += 1;
            }
            Plan::Hardlink { path, target } => {
                names.hardlink(&path, &target)?;
                if let Some(b) = copy_to.as_deref_mut() {
                    header.set_entry_type(tar::EntryType::Link);
                    b.append_link(&mut header, &path, &target)
                        .map_err(write_error)?;
                }
                if hash {
                    items.push(Item::Hardlink { path, target });
                }
                stats.hardlinks += 1;
            }
        }
    }
    Ok((stats, items))
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

/// Extracts into `dest`, an empty directory the caller created privately.
/// Symlinks are data: made last, with their targets as stored (OpenClaw
/// links into its own install, e.g. `/opt/openclaw/...`), so no write of
/// this function ever goes through one and none is ever followed. On error the caller removes `dest`.
pub fn unpack<R: Read>(input: R, dest: &Path, progress: &mut dyn FnMut(u64)) -> Result<Stats> {
    let mut archive = tar::Archive::new(input);
    let mut stats = Stats::default();
    let mut names = Names::default();
    let mut links: HashMap<PathBuf, PathBuf> = HashMap::new();
    let mut dirs: Vec<(PathBuf, u32, u64)> = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| classify_read_error(e, "archive"))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    for entry in entries {
        interrupt::check()?;
        let mut entry = entry.map_err(|e| classify_read_error(e, "archive"))?;
        match plan(&entry)? {
            Plan::Root => {}
            Plan::Dir { path, mode, mtime } => {
                names.add(&path, Kind::Dir)?;
                make_dirs(dest, &path)?;
                dirs.push((path, mode, mtime));
                stats.dirs += 1;
            }
            Plan::File { path, mode, mtime } => {
                names.add(&path, Kind::File)?;
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
                names.add(&path, Kind::Symlink)?;
                links.insert(path, target);
                stats.symlinks += 1;
            }
            Plan::Hardlink { path, target } => {
                names.hardlink(&path, &target)?;
                if let Some(parent) = path.parent() {
                    make_dirs(dest, parent)?;
                }
                let full = dest.join(&path);
                fs::hard_link(dest.join(&target), &full)
                    .map_err(|e| Error::io("creating", &full, e))?;
                stats.hardlinks += 1;
            }
        }
    }
    let mut sorted: Vec<_> = links.into_iter().collect();
    sorted.sort();
    for (path, target) in sorted {
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
    Ok(stats)
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
    use super::*;

    #[test]
    fn paths_are_normal_components_only() {
        assert_eq!(safe_relative(b"./a/b").unwrap(), Some(PathBuf::from("a/b")));
        assert_eq!(safe_relative(b"./").unwrap(), None);
        assert!(safe_relative(b"/etc/passwd").is_err());
        assert!(safe_relative(b"a/../../b").is_err());
        assert!(safe_relative(b"").is_err());
    }
}

//! Checkpoints of the running gateway's state: the gateway's process
//! group frozen (SIGSTOP) while the state dir is copied into the
//! checkpoint tmpfs, thawed (SIGCONT), and the copy sealed into the
//! vault's next generation on a thread of its own, one seal at a time.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rustix::process::{Pid, Signal};

use super::protocol::{GuardSettings, Status};
use super::say;
use crate::error::{Error, Result};
use crate::vault::{self, archive, crypto::DataKey, Records};
use rustix::fs::{Mode, OFlags};

/// Periodic and on-demand checkpoints of the running gateway's state.
pub struct Checkpoints<'a> {
    settings: &'a GuardSettings,
    key: &'a DataKey,
    /// The records the guard unpacked, shared with each seal's thread
    /// (never copied out of their zeroizing buffers).
    records: Arc<Records>,
    gateway: Pid,
    /// The pinned skills, looked at in each checkpoint's copy.
    skills: Arc<super::skills::Watch>,
    /// The seal of the previous checkpoint, still running in the background.
    sealing: Option<std::thread::JoinHandle<()>>,
    last: Instant,
}

impl<'a> Checkpoints<'a> {
    pub fn new(
        settings: &'a GuardSettings,
        key: &'a DataKey,
        records: Arc<Records>,
        gateway: Pid,
        skills: Arc<super::skills::Watch>,
    ) -> Self {
        Checkpoints {
            settings,
            key,
            records,
            gateway,
            skills,
            sealing: None,
            last: Instant::now(),
        }
    }

    /// A periodic checkpoint is due (never with a zero interval).
    pub fn due(&self) -> bool {
        let every = self.settings.checkpoint_interval;
        !every.is_zero() && self.last.elapsed() >= every
    }

    /// Waits for a background seal to finish (before the next one or the final one).
    pub fn wait(&mut self) {
        if let Some(handle) = self.sealing.take() {
            let _ = handle.join();
        }
    }

    /// A seal is still running: a new checkpoint waits (one at a time).
    pub fn busy(&self) -> bool {
        self.sealing.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Freezes the gateway's process group, copies the state dir, thaws it,
    /// and seals the copy into a new generation on a thread of its own.
    pub fn take(&mut self) {
        self.last = Instant::now();
        self.wait();
        let staging = self.settings.checkpoint_dir.join("state");
        remove_copy(&staging);
        let started = Instant::now();
        let _ = rustix::process::kill_process_group(self.gateway, Signal::STOP);
        // Still frozen: the gateway's user can write the copy too, and must
        // not tidy it up before it is looked at, nor swap the copy's root
        // for a link before it is opened for the seal.
        let copied = copy_tree(&self.settings.state, &staging).and_then(|()| {
            self.skills.look(&staging);
            vault::archive::OpenTree::open(&staging)
        });
        let _ = rustix::process::kill_process_group(self.gateway, Signal::CONT);
        let pause = started.elapsed();
        let tree = match copied {
            Ok(tree) => tree,
            Err(e) => {
                say(&Status::CheckpointSkipped(e.message));
                remove_copy(&staging);
                return;
            }
        };
        let (vault, key, keep, records) = (
            self.settings.vault.clone(),
            self.key.clone(),
            self.settings.keep_generations,
            super::records_for_seal(&self.records, self.settings),
        );
        let skills = Arc::clone(&self.skills);
        self.sealing = Some(std::thread::spawn(move || {
            let sealing = Instant::now();
            match vault::seal_next_generation_of(&vault, &key, &tree, keep, &records) {
                Ok(generation) => say(&Status::Checkpoint {
                    generation,
                    pause,
                    seal: sealing.elapsed(),
                }),
                Err(e) => say(&Status::CheckpointFailed(e.message)),
            }
            skills.check_mount();
            remove_copy(&staging);
        }));
    }
}

/// Copies a directory tree (files, directories, symlinks) as it is now,
/// but for what OpenClaw rebuilds: the seal would leave it out, so the
/// gateway is not kept frozen while it is copied.
///
/// Both trees are hostile ground: a process of the gateway's user that the
/// freeze did not reach (one that left the process group) can swap an
/// entry for a link between two looks at it, in the state or in the copy.
/// So every step is relative to an open directory and takes the type from
/// the descriptor it opened: nothing is opened through a link (O_NOFOLLOW;
/// a link is read with readlinkat and copied as a link), nothing is
/// created where something already is (O_EXCL, mkdirat), and FIFOs,
/// sockets and devices are left out (the seal would skip them too).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let source = rustix::fs::open(from, archive::DIR_NOFOLLOW, Mode::empty())
        .map_err(|e| Error::io("reading", from, e.into()))?;
    std::fs::create_dir(to).map_err(|e| Error::io("creating", to, e))?;
    let target = rustix::fs::open(to, archive::DIR_NOFOLLOW, Mode::empty())
        .map_err(|e| Error::io("creating", to, e.into()))?;
    copy_dir(&source, &target, to, Path::new(""), &mut 0)
}

/// Copies the entries of the open directory `from` into the open
/// directory `to`; `to_root` and `rel` only name things in errors and
/// match `REGENERABLE`. `entries` counts what was copied so far: the copy
/// stops at the vault's limits (`archive::MAX_ENTRIES`, `MAX_DEPTH`,
/// `MAX_PATH_BYTES`), which the seal would refuse anyway, so a tree the
/// agent made deep or keeps filling cannot hold the gateway frozen.
fn copy_dir(
    from: &OwnedFd,
    to: &OwnedFd,
    to_root: &Path,
    rel: &Path,
    entries: &mut u64,
) -> Result<()> {
    use rustix::fs::FileType;
    use rustix::io::Errno;
    let listing = rustix::fs::Dir::read_from(from)
        .map_err(|e| Error::io("reading", &to_root.join(rel), e.into()))?;
    for entry in listing {
        let entry = entry.map_err(|e| Error::io("reading", &to_root.join(rel), e.into()))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let rel = rel.join(OsStr::from_bytes(name.to_bytes()));
        if vault::regenerable::is_regenerable(&rel) {
            continue;
        }
        *entries += 1;
        if *entries > archive::MAX_ENTRIES
            || rel.components().count() > archive::MAX_DEPTH
            || rel.as_os_str().len() > archive::MAX_PATH_BYTES
        {
            return Err(Error::failure(format!(
                "the state is beyond what a vault holds ({} entries, {} levels, paths of {} bytes) at {}",
                archive::MAX_ENTRIES,
                archive::MAX_DEPTH,
                archive::MAX_PATH_BYTES,
                rel.display()
            )));
        }
        // FIFOs, sockets and devices are not sealed: not even opened.
        if !matches!(
            entry.file_type(),
            FileType::Directory | FileType::RegularFile | FileType::Symlink | FileType::Unknown
        ) {
            continue;
        }
        let dst = to_root.join(&rel);
        let copy_err = |e: Errno| Error::io("copying", &dst, e.into());
        // O_NONBLOCK: a FIFO swapped in since the listing opens at once
        // (and is then left out by the type check below).
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
        let src = match rustix::fs::openat(from, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            // A link: copied as a link, never followed.
            Err(Errno::LOOP) => {
                let target = rustix::fs::readlinkat(from, name, Vec::new()).map_err(copy_err)?;
                rustix::fs::symlinkat(target.as_c_str(), to, name).map_err(copy_err)?;
                continue;
            }
            // A socket, or gone since it was listed.
            Err(Errno::NXIO | Errno::NOENT) => continue,
            Err(e) => return Err(copy_err(e)),
        };
        let stat = rustix::fs::fstat(&src).map_err(copy_err)?;
        let mode = Mode::from_raw_mode(stat.st_mode & 0o777);
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => {
                rustix::fs::mkdirat(to, name, Mode::RWXU).map_err(copy_err)?;
                let sub = rustix::fs::openat(to, name, archive::DIR_NOFOLLOW, Mode::empty())
                    .map_err(copy_err)?;
                copy_dir(&src, &sub, to_root, &rel, entries)?;
                rustix::fs::fchmod(&sub, mode).map_err(copy_err)?;
            }
            FileType::RegularFile => {
                let out = rustix::fs::openat(
                    to,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::RUSR | Mode::WUSR,
                )
                .map_err(copy_err)?;
                let mut out = std::fs::File::from(out);
                // No more than it had when it was opened: a file the agent
                // keeps growing is cut there (the seal checks sizes again).
                let len = u64::try_from(stat.st_size).unwrap_or(0);
                std::io::copy(&mut std::fs::File::from(src).take(len), &mut out)
                    .map_err(|e| Error::io("copying", &dst, e))?;
                rustix::fs::fchmod(&out, mode).map_err(copy_err)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Removes a checkpoint's copy, also when the agent made a directory in it
/// read-only (a 0555 directory is copied with its mode, and its owner
/// cannot empty it then).
fn remove_copy(path: &Path) {
    if let Ok(dir) = rustix::fs::open(path, archive::DIR_NOFOLLOW, Mode::empty()) {
        open_up(&dir, 0);
    }
    let _ = std::fs::remove_dir_all(path);
}

/// Makes `dir` and every directory under it 0700, through descriptors,
/// never through a link, down to the copy's depth limit.
fn open_up(dir: &OwnedFd, depth: usize) {
    if rustix::fs::fchmod(dir, Mode::RWXU).is_err() || depth >= archive::MAX_DEPTH {
        return;
    }
    let Ok(listing) = rustix::fs::Dir::read_from(dir) else {
        return;
    };
    for entry in listing.flatten() {
        let name = entry.file_name();
        if name == c"." || name == c".." || entry.file_type() != rustix::fs::FileType::Directory {
            continue;
        }
        if let Ok(sub) = rustix::fs::openat(dir, name, archive::DIR_NOFOLLOW, Mode::empty()) {
            open_up(&sub, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_leaves_out_what_openclaw_rebuilds_and_keeps_the_rest() {
        let tmp = tempfile::TempDir::new().unwrap();
        let (from, to) = (tmp.path().join("state"), tmp.path().join("staging"));
        std::fs::create_dir_all(from.join("cache/control-ui-assets/abc")).unwrap();
        std::fs::write(from.join("cache/control-ui-assets/abc/a.js"), "x").unwrap();
        std::fs::write(from.join("cache/keep.json"), "{}").unwrap();
        std::fs::create_dir_all(from.join("workspace")).unwrap();
        std::fs::write(from.join("workspace/MEMORY.md"), "tea").unwrap();
        std::os::unix::fs::symlink("MEMORY.md", from.join("workspace/link")).unwrap();
        std::fs::create_dir_all(from.join("workspace/cache/control-ui-assets")).unwrap();
        std::fs::write(from.join("workspace/cache/control-ui-assets/n"), "mine").unwrap();
        // Modes kept; a FIFO left out without blocking; a link to a file
        // outside copied as the link, not as what it points to.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            from.join("workspace"),
            std::fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        std::fs::set_permissions(
            from.join("workspace/MEMORY.md"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, from.join("fifo"), rustix::fs::Mode::RUSR).unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "not the state's").unwrap();
        std::os::unix::fs::symlink(&outside, from.join("out")).unwrap();
        copy_tree(&from, &to).unwrap();
        assert!(!to.join("cache/control-ui-assets").exists());
        assert!(std::fs::symlink_metadata(to.join("fifo")).is_err());
        assert_eq!(std::fs::read_link(to.join("out")).unwrap(), outside);
        let mode = |p: &str| std::fs::metadata(to.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            (mode("workspace"), mode("workspace/MEMORY.md")),
            (0o750, 0o640)
        );
        assert_eq!(
            std::fs::read(to.join("workspace/cache/control-ui-assets/n")).unwrap(),
            b"mine"
        );
        // A link in its place is neither followed nor copied.
        std::fs::remove_dir_all(from.join("cache/control-ui-assets")).unwrap();
        std::os::unix::fs::symlink("/etc", from.join("cache/control-ui-assets")).unwrap();
        std::fs::remove_dir_all(&to).unwrap();
        copy_tree(&from, &to).unwrap();
        assert!(std::fs::symlink_metadata(to.join("cache/control-ui-assets")).is_err());
        assert_eq!(std::fs::read(to.join("cache/keep.json")).unwrap(), b"{}");
        assert_eq!(
            std::fs::read(to.join("workspace/MEMORY.md")).unwrap(),
            b"tea"
        );
        assert_eq!(
            std::fs::read_link(to.join("workspace/link")).unwrap(),
            Path::new("MEMORY.md")
        );
    }

    /// Opens `path` as `copy_dir` takes a directory.
    fn dir(path: &Path) -> OwnedFd {
        rustix::fs::open(path, archive::DIR_NOFOLLOW, Mode::empty()).unwrap()
    }

    #[test]
    fn the_copy_never_writes_through_a_link_planted_in_it() {
        let tmp = tempfile::TempDir::new().unwrap();
        let (from, to) = (tmp.path().join("state"), tmp.path().join("staging"));
        std::fs::create_dir_all(from.join("workspace")).unwrap();
        std::fs::write(from.join("openclaw.json"), "{\"token\":1}").unwrap();
        std::fs::write(from.join("workspace/MEMORY.md"), "tea").unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("vault"), "sealed").unwrap();
        for (planted, at) in [
            (outside.join("vault"), "openclaw.json"),
            (outside.clone(), "workspace"),
        ] {
            let _ = std::fs::remove_dir_all(&to);
            std::fs::create_dir(&to).unwrap();
            std::os::unix::fs::symlink(&planted, to.join(at)).unwrap();
            let e = copy_dir(&dir(&from), &dir(&to), &to, Path::new(""), &mut 0).unwrap_err();
            assert!(e.message.contains(at), "{}", e.message);
            assert_eq!(std::fs::read(outside.join("vault")).unwrap(), b"sealed");
            assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
        }
    }

    #[test]
    fn a_tree_beyond_the_vaults_limits_is_not_copied_and_a_read_only_copy_is_removed() {
        let tmp = tempfile::TempDir::new().unwrap();
        let (from, to) = (tmp.path().join("state"), tmp.path().join("staging"));
        let mut deep = from.clone();
        for _ in 0..=archive::MAX_DEPTH {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        let e = copy_tree(&from, &to).unwrap_err();
        assert!(
            e.message.contains("beyond what a vault holds"),
            "{}",
            e.message
        );
        // The agent's 0555 directories, copied with their mode, still go.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(to.join("d/d"), std::fs::Permissions::from_mode(0o555)).unwrap();
        std::fs::set_permissions(to.join("d"), std::fs::Permissions::from_mode(0o555)).unwrap();
        // (As root, as tests run here, any mode would do for the removal:
        // so the modes are checked.)
        open_up(&dir(&to), 0);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&to.join("d")), mode(&to.join("d/d"))), (0o700, 0o700));
        remove_copy(&to);
        assert!(std::fs::symlink_metadata(&to).is_err());
    }
}

//! Checkpoints of the running gateway's state: the gateway's process
//! group frozen (SIGSTOP) while the state dir is copied into the
//! checkpoint tmpfs, thawed (SIGCONT), and the copy sealed into the
//! vault's next generation on a thread of its own, one seal at a time.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rustix::process::{Pid, Signal};

use super::protocol::{GuardSettings, Status};
use super::say;
use crate::error::{Error, Result};
use crate::vault::{self, crypto::DataKey, Records};

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
        let _ = std::fs::remove_dir_all(&staging);
        let started = Instant::now();
        let _ = rustix::process::kill_process_group(self.gateway, Signal::STOP);
        let copied = copy_tree(&self.settings.state, &staging);
        // Still frozen: the gateway's user can write the copy too, and must
        // not tidy it up before it is looked at.
        if copied.is_ok() {
            self.skills.look(&staging);
        }
        let _ = rustix::process::kill_process_group(self.gateway, Signal::CONT);
        let pause = started.elapsed();
        if let Err(e) = copied {
            say(&Status::CheckpointSkipped(e.message));
            let _ = std::fs::remove_dir_all(&staging);
            return;
        }
        let (vault, key, keep, records) = (
            self.settings.vault.clone(),
            self.key.clone(),
            self.settings.keep_generations,
            super::records_for_seal(&self.records, self.settings),
        );
        let skills = Arc::clone(&self.skills);
        self.sealing = Some(std::thread::spawn(move || {
            let sealing = Instant::now();
            match vault::seal_next_generation(&vault, &key, &staging, keep, &records) {
                Ok(generation) => say(&Status::Checkpoint {
                    generation,
                    pause,
                    seal: sealing.elapsed(),
                }),
                Err(e) => say(&Status::CheckpointFailed(e.message)),
            }
            skills.check_mount();
            let _ = std::fs::remove_dir_all(&staging);
        }));
    }
}

/// Copies a directory tree (files, directories, symlinks) as it is now,
/// but for what OpenClaw rebuilds: the seal would leave it out, so the
/// gateway is not kept frozen while it is copied.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    copy_dir(from, to, Path::new(""))
}

fn copy_dir(from_root: &Path, to_root: &Path, rel: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let (from, to) = (from_root.join(rel), to_root.join(rel));
    std::fs::create_dir(&to).map_err(|e| Error::io("creating", &to, e))?;
    let entries = std::fs::read_dir(&from).map_err(|e| Error::io("reading", &from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("reading", &from, e))?;
        let rel = rel.join(entry.file_name());
        if vault::regenerable::is_regenerable(&rel) {
            continue;
        }
        let (src, dst) = (from_root.join(&rel), to_root.join(&rel));
        let ft = entry
            .file_type()
            .map_err(|e| Error::io("reading", &src, e))?;
        if ft.is_dir() {
            copy_dir(from_root, to_root, &rel)?;
            let mode = std::fs::metadata(&src)
                .map_err(|e| Error::io("reading", &src, e))?
                .permissions()
                .mode();
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io("copying", &dst, e))?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&src).map_err(|e| Error::io("reading", &src, e))?;
            std::os::unix::fs::symlink(target, &dst).map_err(|e| Error::io("copying", &dst, e))?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst).map_err(|e| Error::io("copying", &dst, e))?;
        }
    }
    Ok(())
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
        copy_tree(&from, &to).unwrap();
        assert!(!to.join("cache/control-ui-assets").exists());
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
}

//! The egress log kept in the vault: the proxy writes each decision (one
//! JSON line, as on its standard output) to a file in its socket's
//! directory, which the gateway's container sees read-only; the guard
//! reads it at every seal and keeps the newest lines as the record
//! `egress-log.jsonl` among the vault's records, with those of earlier
//! runs. So the log travels with the state, is authenticated with it, and
//! outlives the proxy's container (whose engine log goes with it).
//!
//! Bounded everywhere: the file is rotated at `FILE_MAX` (one older file
//! kept), and the record holds at most `RECORD_MAX` bytes of the newest
//! whole lines.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The record's name among the vault's records.
pub const RECORD: &str = "egress-log.jsonl";
/// The file the proxy appends to, in its socket's directory.
pub const FILE_NAME: &str = "egress.log";
/// The file it was rotated to, one generation back.
pub const ROTATED_NAME: &str = "egress.log.1";
/// The file is rotated past this size.
pub const FILE_MAX: u64 = 1 << 20;
/// The record keeps at most this many bytes (below a record's limit).
pub const RECORD_MAX: usize = 192 << 10;

/// The newest whole lines of `older` followed by `newer`, at most `max`
/// bytes: lines are dropped from the front, never cut.
pub fn tail(older: &[u8], newer: &[u8], max: usize) -> Vec<u8> {
    let mut all = Vec::with_capacity(older.len() + newer.len() + 1);
    all.extend_from_slice(older);
    if !all.is_empty() && !all.ends_with(b"\n") {
        all.push(b'\n');
    }
    all.extend_from_slice(newer);
    if all.len() <= max {
        return all;
    }
    let from = all.len() - max;
    // Start after the first line break at or past `from`: a whole line.
    match all[from..].iter().position(|&b| b == b'\n') {
        Some(i) => all[from + i + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// The proxy's side: appends lines, rotating past `FILE_MAX`.
pub struct Writer {
    path: PathBuf,
    file: File,
    written: u64,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

impl Writer {
    pub fn open(path: &Path) -> std::io::Result<Writer> {
        let file = open_append(path)?;
        let written = file.metadata()?.len();
        Ok(Writer {
            path: path.to_path_buf(),
            file,
            written,
        })
    }

    /// Appends one line (a newline is added).
    pub fn line(&mut self, line: &str) -> std::io::Result<()> {
        let len = line.len() as u64 + 1;
        if self.written + len > FILE_MAX {
            std::fs::rename(&self.path, self.path.with_file_name(ROTATED_NAME))?;
            self.file = open_append(&self.path)?;
            self.written = 0;
        }
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.file.write_all(&bytes)?;
        self.written += len;
        Ok(())
    }
}

/// The guard's side: this run's lines, from the rotated file and the
/// current one in `dir`, each opened without following a link, a regular
/// file only, at most `FILE_MAX` bytes read from each. Missing or refused
/// files give nothing: the log is evidence, never a reason not to seal.
pub fn read_run(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for name in [ROTATED_NAME, FILE_NAME] {
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(dir.join(name));
        let Ok(file) = opened else { continue };
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        let mut bytes = Vec::new();
        if file.take(FILE_MAX).read_to_end(&mut bytes).is_ok() {
            out.extend_from_slice(&bytes);
        }
    }
    out
}

/// The records a seal writes: `base` (as unpacked) with this run's log
/// lines from `dir` added to the record of earlier runs'.
pub fn with_run_log(base: &crate::vault::Records, dir: &Path) -> crate::vault::Records {
    let mut records = base.clone();
    let run = read_run(dir);
    if run.is_empty() {
        return records;
    }
    let kept = tail(base.get(RECORD).unwrap_or_default(), &run, RECORD_MAX);
    // Within the limits by construction; a refusal keeps the older record.
    let _ = records.set(RECORD, kept);
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_newest_whole_lines() {
        assert_eq!(tail(b"a\n", b"b\n", 100), b"a\nb\n");
        // An older record cut without its newline gets one.
        assert_eq!(tail(b"a", b"b\n", 100), b"a\nb\n");
        assert_eq!(tail(b"", b"b\n", 100), b"b\n");
        let t = tail(b"first line\nsecond\n", b"third\n", 12);
        assert_eq!(t, b"third\n", "never half a line");
        assert_eq!(tail(b"", b"no newline at all", 4), b"");
    }

    #[test]
    fn the_file_rotates_and_the_guard_reads_both_and_never_a_link() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut w = Writer::open(&dir.path().join(FILE_NAME)).unwrap();
        let line = "x".repeat(1000);
        for _ in 0..1100 {
            w.line(&line).unwrap();
        }
        let rotated = std::fs::metadata(dir.path().join(ROTATED_NAME)).unwrap();
        assert!(rotated.len() <= FILE_MAX);
        let run = read_run(dir.path());
        assert_eq!(run.len(), 1100 * 1001, "both files, every line");

        let mut base = crate::vault::Records::new();
        base.set(RECORD, b"earlier\n".to_vec()).unwrap();
        let sealed = with_run_log(&base, dir.path());
        let kept = sealed.get(RECORD).unwrap();
        assert!(kept.len() <= RECORD_MAX && kept.ends_with(b"\n"));
        assert!(kept.starts_with(line.as_bytes()), "the newest lines");

        let other = tempfile::TempDir::new().unwrap();
        std::fs::write(other.path().join("secret"), "no").unwrap();
        let links = tempfile::TempDir::new().unwrap();
        std::os::unix::fs::symlink(other.path().join("secret"), links.path().join(FILE_NAME))
            .unwrap();
        assert!(read_run(links.path()).is_empty());
        assert_eq!(with_run_log(&base, links.path()), base);
    }
}

//! The image's small tools besides the guard: the onboarding container's
//! idle "gateway", storing a secret from stdin in the state dir, the
//! audit's search of the state for real keys, and the health check. Each answers with its exit status only.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{flag_on, STOP_SIGNALS};
use crate::error::{Class, Error, ExitStatus, Result};

/// How long an onboarding container lives at most: if the host's
/// `safeclaw onboard` was killed, nobody stops it, and its guard holds a key.
const IDLE_LIMIT: Duration = Duration::from_secs(2 * 3600);

/// `safeclaw idle`: the onboarding container's "gateway", so the guard
/// holds the key and the state dir while `safeclaw onboard` runs OpenClaw's
/// own commands in it with exec; ends (status 0) on SIGTERM, or with
/// status 1 after `IDLE_LIMIT` (the guard then seals and exits).
pub fn idle() -> ExitStatus {
    let started = Instant::now();
    let Ok(stop) = flag_on(&STOP_SIGNALS) else {
        return ExitStatus::Reported(Class::Failure);
    };
    while !stop.load(Ordering::Relaxed) {
        if started.elapsed() >= IDLE_LIMIT {
            return ExitStatus::Reported(Class::Failure);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    ExitStatus::Success
}

/// Bound on a secret given to `write-secret`.
const SECRET_MAX: usize = 64 * 1024;

/// `safeclaw write-secret PATH`: stdin (one secret, at most 64 KiB, one
/// trailing newline dropped) into a 0600 file under the state dir, written
/// atomically. The secret never appears in an argv or an environment.
pub fn write_secret(path: &Path) -> Result<ExitStatus> {
    let state = std::env::var_os(crate::env_vars::OPENCLAW_STATE_DIR)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(crate::runtime::layout::STATE_DIR));
    if !path.starts_with(&state) || path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(Error::usage(format!(
            "{} is not under the state dir {}",
            path.display(),
            state.display()
        )));
    }
    let mut secret = crate::password::read_all_zeroizing(crate::password::RawStdin, SECRET_MAX + 1)
        .map_err(|e| Error::failure(format!("reading the secret from stdin: {e}")))?;
    if secret.len() > SECRET_MAX {
        return Err(Error::usage("the secret is longer than 64 KiB"));
    }
    if secret.last() == Some(&b'\n') {
        secret.pop();
    }
    if secret.is_empty() {
        return Err(Error::usage("the secret is empty"));
    }
    let dir = crate::private_fs::parent_of(path);
    if !dir.exists() {
        crate::private_fs::create_private_dir(&dir)?;
    }
    let mut out = crate::private_fs::AtomicFile::create(path)?;
    out.file()
        .write_all(&secret)
        .map_err(|e| Error::io("writing", path, e))?;
    out.commit()?;
    Ok(ExitStatus::Success)
}

/// What `scan-secrets` reads at most: of one file, and in all.
const SCAN_FILE_MAX: u64 = 64 << 20;
const SCAN_TOTAL_MAX: u64 = 1 << 30;
/// Findings printed at most.
const SCAN_FINDINGS_MAX: usize = 100;

/// `safeclaw scan-secrets DIR`, in the gateway's container for `audit`:
/// one JSON line `{"path", "kind"}` per file under DIR that holds what
/// looks like a real API key or bot token (`audit::secrets::shape`; never
/// the value). Links are not followed and only regular files are read
/// (the directory is the agent's), each up to 64 MiB, 1 GiB in all.
pub fn scan_secrets(dir: &Path) -> Result<ExitStatus> {
    let mut budget = SCAN_TOTAL_MAX;
    let mut found = 0;
    let mut out = std::io::stdout().lock();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                pending.push(path);
                continue;
            }
            if !meta.is_file() || budget == 0 {
                continue;
            }
            let Ok(file) = crate::private_fs::open_regular(&path) else {
                continue;
            };
            let mut bytes = zeroize::Zeroizing::new(Vec::new());
            let limit = SCAN_FILE_MAX.min(budget);
            if file.take(limit).read_to_end(&mut bytes).is_err() {
                continue;
            }
            budget -= bytes.len() as u64;
            for kind in crate::audit::secrets::shapes_in_bytes(&bytes) {
                // Lossy: a name that is not UTF-8 would fail `json!` (a panic).
                let line = serde_json::json!({ "path": path.to_string_lossy(), "kind": kind });
                let _ = writeln!(out, "{line}");
                found += 1;
                if found >= SCAN_FINDINGS_MAX {
                    return Ok(ExitStatus::Success);
                }
            }
        }
    }
    Ok(ExitStatus::Success)
}

/// `safeclaw health`: the gateway's `/healthz`, for the engine's
/// HEALTHCHECK: success when it answers 200, a failure (exit 1) otherwise.
pub fn health(addr: &str) -> ExitStatus {
    let check = || -> std::io::Result<bool> {
        let mut conn = std::net::TcpStream::connect(addr)?;
        conn.set_read_timeout(Some(Duration::from_secs(3)))?;
        write!(
            conn,
            "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )?;
        let mut head = [0u8; 64];
        let n = conn.read(&mut head)?;
        Ok(head[..n].starts_with(b"HTTP/1.1 200") || head[..n].starts_with(b"HTTP/1.0 200"))
    };
    match check() {
        Ok(true) => ExitStatus::Success,
        _ => ExitStatus::Reported(Class::Failure),
    }
}

/// `safeclaw scan-skills STATE PINNED`, for `audit` (run in the gateway's
/// container): one JSON object, `pinned` (each directory under PINNED,
/// with the hash of its files, or why it has none) and `found` (every
/// `SKILL.md` in STATE with the name OpenClaw gives it). Names and paths
/// only; no content.
pub fn scan_skills(state: &Path, pinned: &Path) -> Result<ExitStatus> {
    use crate::skills::{bundle, tree};
    let mut mounted = Vec::new();
    if let Ok(entries) = std::fs::read_dir(pinned) {
        for e in entries
            .flatten()
            .take(crate::skills::pinned::MAX_SKILLS * 4)
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let hash = tree::read_dir(&e.path()).map(|b| bundle::hash(&bundle::encode(&b)));
            mounted.push(match hash {
                Ok(h) => serde_json::json!({ "name": name, "sha256": h }),
                Err(why) => serde_json::json!({ "name": name, "error": why }),
            });
        }
    }
    let found: Vec<_> = tree::scan(state)
        .into_iter()
        .map(|f| serde_json::json!({ "path": f.path, "name": f.name }))
        .collect();
    let line = serde_json::json!({ "pinned": mounted, "found": found });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").map_err(|e| Error::failure(format!("writing: {e}")))?;
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    /// The state is the agent's: a file name that is not UTF-8 (which a
    /// JSON string cannot hold as it is) must not stop the scan.
    #[test]
    fn a_file_name_that_is_not_utf8_does_not_stop_the_scan() {
        let dir = tempfile::TempDir::new().unwrap();
        let key = format!("sk-ant-api03-{}", "A".repeat(90));
        let name = std::ffi::OsStr::from_bytes(b"k\xff.txt");
        std::fs::write(dir.path().join(name), &key).unwrap();
        assert!(matches!(
            scan_secrets(dir.path()).unwrap(),
            ExitStatus::Success
        ));
    }
}

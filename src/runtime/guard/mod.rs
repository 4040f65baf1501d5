//! The guard: safeclaw as PID 1 inside the container (docs/guard.md).
//!
//! It reads the vault's data key from stdin (the host writes it over an
//! attach made before start), makes itself non-dumpable, decrypts the vault
//! into the tmpfs state dir, runs the gateway as its child, forwards
//! SIGTERM/SIGINT, reaps every zombie (it is PID 1), and when the gateway
//! has exited seals the state dir into the vault's next generation.
//!
//! Signal policy: SIGTERM and SIGINT set the guard's own stop flag (not the
//! CLI's cancel flag of `interrupt.rs`, which would abort the seal); the
//! guard forwards one SIGTERM to the gateway, waits up to the drain budget,
//! then kills the gateway's process group and seals anyway. SIGUSR1 asks
//! for a checkpoint. A second signal is ignored by the kernel for PID 1, so the stop
//! budget is the engine's (`docker stop -t`), after which SIGKILL ends
//! everything and the previous generation stays the newest.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};
use zeroize::Zeroizing;

use crate::error::{Class, Error, Result};
use crate::vault::{self, crypto::DataKey, VaultFile};

/// What the host writes, then closes stdin: `safeclaw-key-v1 <64 hex>\n`.
pub const KEY_PREFIX: &str = "safeclaw-key-v1 ";
/// Bounds what the guard reads from stdin.
const KEY_LINE_MAX: usize = 128;
/// Status lines on stdout, read by the host through the attach.
pub const READY: &str = "safeclaw-guard: ready generation=";
pub const FAILED: &str = "safeclaw-guard: error: ";
pub const SEALED: &str = "safeclaw-guard: sealed generation=";
pub const CHECKPOINT: &str = "safeclaw-guard: checkpoint generation=";
/// Exit code when the key does not open the vault.
pub const EXIT_WRONG_KEY: i32 = 3;

/// Encodes the key line the host sends.
pub fn key_line(key: &DataKey) -> Zeroizing<String> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Digit by digit into the zeroizing string: a `hex()` String would be
    // an unwiped copy of the key.
    let mut line = Zeroizing::new(String::with_capacity(KEY_LINE_MAX));
    line.push_str(KEY_PREFIX);
    for b in key.as_bytes() {
        line.push(DIGITS[usize::from(b >> 4)] as char);
        line.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    line.push('\n');
    line
}

fn parse_key_line(line: &[u8]) -> Option<DataKey> {
    let text = std::str::from_utf8(line).ok()?.trim_end_matches('\n');
    let hex = text.strip_prefix(KEY_PREFIX)?;
    if hex.len() != 64 {
        return None;
    }
    let mut key = Zeroizing::new([0u8; 32]);
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(DataKey::from_bytes(*key))
}

/// Reads the key line from stdin, at most `KEY_LINE_MAX` bytes, within
/// `timeout`. The reading thread is left behind on timeout; the guard
/// exits right after, so it does not matter.
fn read_key(timeout: Duration) -> Result<DataKey> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // fd 0 directly into one zeroizing buffer: std's `Stdin` would keep
        // a copy of the key line in its never-wiped global buffer.
        let r = crate::password::read_all_zeroizing(crate::password::RawStdin, KEY_LINE_MAX);
        let _ = tx.send(r);
    });
    let buf = rx
        .recv_timeout(timeout)
        .map_err(|_| Error::failure("no key arrived on stdin in time"))?
        .map_err(|e| Error::failure(format!("reading the key from stdin: {e}")))?;
    parse_key_line(&buf).ok_or_else(|| Error::failure("stdin did not carry a well-formed key line"))
}

pub struct Settings {
    pub vault: PathBuf,
    pub state: PathBuf,
    pub key_timeout: Duration,
    /// Older generations kept by each seal.
    pub keep: usize,
    /// How often to checkpoint the running state (None: only on SIGUSR1).
    pub checkpoint_interval: Option<Duration>,
    /// Where a checkpoint's copy is staged (a tmpfs in the container).
    pub checkpoint_dir: PathBuf,
    /// How long the gateway may drain after SIGTERM before SIGKILL.
    pub drain: Duration,
    pub command: Vec<String>,
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs the guard; returns the process exit code.
pub fn run(settings: Settings) -> i32 {
    match guard(&settings) {
        Ok(code) => code,
        Err(e) => {
            say(&format!("{FAILED}{}", e.message));
            if e.class == Class::WrongPassword {
                EXIT_WRONG_KEY
            } else {
                1
            }
        }
    }
}

/// A flag set when any of `signals` arrives.
fn flag_on(signals: &[i32]) -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for &sig in signals {
        signal_hook::flag::register(sig, Arc::clone(&flag))
            .map_err(|e| Error::failure(format!("installing signal handlers: {e}")))?;
    }
    Ok(flag)
}

const STOP_SIGNALS: [i32; 2] = [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT];

fn guard(s: &Settings) -> Result<i32> {
    let stop = flag_on(&STOP_SIGNALS)?;
    let checkpoint_now = flag_on(&[signal_hook::consts::SIGUSR1])?;
    // Before the key exists in this process: no core dumps, no ptrace and
    // no /proc/PID/mem for processes of the same uid (the gateway).
    crate::no_dumps::forbid()?;
    // Outside a PID namespace (tests, a bare `safeclaw guard`) orphans of
    // the gateway come back to the guard as they would to PID 1, so the
    // final seal can wait for every one of them.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| Error::failure(format!("becoming the gateway's subreaper: {e}")))?;
    let key = read_key(s.key_timeout)?;
    let vault = VaultFile::open(&s.vault)?;
    vault
        .authenticate(&key)
        .map_err(|_| Error::new(Class::WrongPassword, "the key does not open the vault"))?;
    // A seal killed half-way (SIGKILL, power cut) leaves temporaries only.
    vault::generations::remove_stale_temporaries(&s.vault);
    let generation = vault.header().generation;
    vault.unpack(&key, &s.state, |_| {})?;

    let (program, args) = s
        .command
        .split_first()
        .ok_or_else(|| Error::usage("no gateway command given"))?;
    // Its own process group, so a checkpoint freezes all of its processes.
    let child = Command::new(program)
        .args(args)
        .env(crate::env_vars::OPENCLAW_STATE_DIR, &s.state)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::failure(format!("starting {program}: {e}")))?;
    let child_pid = Pid::from_child(&child);
    say(&format!("{READY}{generation}"));

    let mut checkpoints = Checkpoints {
        settings: s,
        key: &key,
        gateway: child_pid,
        sealing: None,
        last: Instant::now(),
    };
    let status = supervise(child_pid, &stop, &checkpoint_now, &mut checkpoints, s.drain);
    end_the_rest(child_pid);
    checkpoints.wait();
    let sealed = vault::seal_next_generation(&s.vault, &key, &s.state, s.keep)?;
    say(&format!("{SEALED}{sealed}"));
    Ok(status)
}

/// Periodic and on-demand checkpoints of the running gateway's state.
struct Checkpoints<'a> {
    settings: &'a Settings,
    key: &'a DataKey,
    gateway: Pid,
    /// The seal of the previous checkpoint, still running in the background.
    sealing: Option<std::thread::JoinHandle<()>>,
    last: Instant,
}

impl Checkpoints<'_> {
    fn due(&self) -> bool {
        self.settings
            .checkpoint_interval
            .is_some_and(|every| self.last.elapsed() >= every)
    }

    /// Waits for a background seal to finish (before the next one or the final one).
    fn wait(&mut self) {
        if let Some(handle) = self.sealing.take() {
            let _ = handle.join();
        }
    }

    /// Freezes the gateway's process group, copies the state dir, thaws it,
    /// and seals the copy into a new generation on a thread of its own.
    /// A seal is still running: a new checkpoint waits (one at a time).
    fn busy(&self) -> bool {
        self.sealing.as_ref().is_some_and(|h| !h.is_finished())
    }

    fn take(&mut self) {
        self.last = Instant::now();
        self.wait();
        let staging = self.settings.checkpoint_dir.join("state");
        let _ = std::fs::remove_dir_all(&staging);
        let started = Instant::now();
        let _ = rustix::process::kill_process_group(self.gateway, Signal::STOP);
        let copied = copy_tree(&self.settings.state, &staging);
        let _ = rustix::process::kill_process_group(self.gateway, Signal::CONT);
        let pause = started.elapsed();
        if let Err(e) = copied {
            say(&format!(
                "safeclaw-guard: checkpoint skipped: {}",
                e.message
            ));
            let _ = std::fs::remove_dir_all(&staging);
            return;
        }
        let (vault, key, keep) = (
            self.settings.vault.clone(),
            self.key.clone(),
            self.settings.keep,
        );
        self.sealing = Some(std::thread::spawn(move || {
            let sealed = std::time::Instant::now();
            match vault::seal_next_generation(&vault, &key, &staging, keep) {
                Ok(generation) => say(&format!(
                    "{CHECKPOINT}{generation} pause_ms={:.1} seal_ms={}",
                    pause.as_secs_f64() * 1000.0,
                    sealed.elapsed().as_millis()
                )),
                Err(e) => say(&format!("safeclaw-guard: checkpoint failed: {}", e.message)),
            }
            let _ = std::fs::remove_dir_all(&staging);
        }));
    }
}

/// Copies a directory tree (files, directories, symlinks) as it is now.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir(to).map_err(|e| Error::io("creating", to, e))?;
    let entries = std::fs::read_dir(from).map_err(|e| Error::io("reading", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("reading", from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ft = entry
            .file_type()
            .map_err(|e| Error::io("reading", &src, e))?;
        if ft.is_dir() {
            copy_tree(&src, &dst)?;
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

/// Forwards one SIGTERM on a stop request, takes checkpoints when due or
/// asked (SIGUSR1), reaps every child (PID 1 adopts orphans), and returns
/// the gateway's exit code once it has exited.
fn supervise(
    child: Pid,
    stop: &AtomicBool,
    checkpoint_now: &AtomicBool,
    checkpoints: &mut Checkpoints,
    drain: Duration,
) -> i32 {
    let mut forwarded: Option<Instant> = None;
    let mut escalated = false;
    loop {
        if stop.load(Ordering::Relaxed) && forwarded.is_none() {
            let _ = rustix::process::kill_process(child, Signal::TERM);
            forwarded = Some(Instant::now());
        }
        // A gateway that does not drain in time is killed, so the seal still
        // happens within the engine's stop budget (OpenClaw's own drain can
        // take minutes). SQLite's WAL is made to survive exactly this.
        if !escalated && forwarded.is_some_and(|t| t.elapsed() >= drain) {
            say(&format!(
                "safeclaw-guard: the gateway did not stop within {} s; killing it, then sealing",
                drain.as_secs()
            ));
            let _ = rustix::process::kill_process_group(child, Signal::KILL);
            escalated = true;
        }
        let wanted = checkpoint_now.load(Ordering::Relaxed) || checkpoints.due();
        if forwarded.is_none() && wanted && !checkpoints.busy() {
            checkpoint_now.store(false, Ordering::Relaxed);
            checkpoints.take();
        }
        loop {
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((pid, status))) if pid == child => {
                    return status
                        .exit_status()
                        .or_else(|| status.terminating_signal().map(|s| 128 + s))
                        .unwrap_or(1);
                }
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How long processes the gateway left behind get to exit after SIGTERM.
const LEFTOVER_GRACE: Duration = Duration::from_secs(3);

/// Ends what the gateway left behind once its first process has exited:
/// the rest of its group (a shell's children, workers) and any orphan it
/// made. The final seal reads the state dir, so nothing may still write
/// to it: a straggler would tear a file or delete one mid-read.
fn end_the_rest(group: Pid) {
    let _ = rustix::process::kill_process_group(group, Signal::TERM);
    let deadline = Instant::now() + LEFTOVER_GRACE;
    let mut killed = false;
    loop {
        match rustix::process::wait(WaitOptions::NOHANG) {
            Ok(Some(_)) => continue,
            // No child left at all: the state dir is ours alone.
            Err(_) => return,
            Ok(None) => {}
        }
        if Instant::now() >= deadline {
            if killed {
                say("safeclaw-guard: processes of the gateway outlived SIGKILL; sealing anyway");
                return;
            }
            let _ = rustix::process::kill_process_group(group, Signal::KILL);
            for pid in own_children() {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The guard's live children, from /proc (those that left the gateway's
/// group: a daemonising worker is re-parented to the guard).
fn own_children() -> Vec<Pid> {
    let me = rustix::process::getpid().as_raw_nonzero().get();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // Fields after the command (which may hold spaces and parens):
            // state, then the parent's pid.
            let rest = &stat[stat.rfind(')')? + 1..];
            let ppid: i32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == me).then(|| Pid::from_raw(pid)).flatten()
        })
        .collect()
}

/// How long an onboarding container lives at most: if the host's
/// `safeclaw onboard` was killed, nobody stops it, and its guard holds a key.
const IDLE_LIMIT: Duration = Duration::from_secs(2 * 3600);

/// `safeclaw idle`: the onboarding container's "gateway", so the guard
/// holds the key and the state dir while `safeclaw onboard` runs OpenClaw's
/// own commands in it with exec; ends (status 0) on SIGTERM, or with
/// status 1 after `IDLE_LIMIT` (the guard then seals and exits).
pub fn idle() -> i32 {
    let started = Instant::now();
    let Ok(stop) = flag_on(&STOP_SIGNALS) else {
        return 1;
    };
    while !stop.load(Ordering::Relaxed) {
        if started.elapsed() >= IDLE_LIMIT {
            return 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    0
}

/// Bound on a secret given to `write-secret`.
const SECRET_MAX: usize = 64 * 1024;

/// `safeclaw write-secret PATH`: stdin (one secret, at most 64 KiB, one
/// trailing newline dropped) into a 0600 file under the state dir, written
/// atomically. The secret never appears in an argv or an environment.
pub fn write_secret(path: &std::path::Path) -> Result<()> {
    let state = std::env::var_os(crate::env_vars::OPENCLAW_STATE_DIR)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(crate::runtime::layout::STATE_DIR));
    if !path.starts_with(&state)
        || path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
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
    out.commit()
}

/// `safeclaw health`: the gateway's `/healthz`, for the engine's HEALTHCHECK.
pub fn health(addr: &str) -> i32 {
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
        Ok(true) => 0,
        _ => 1,
    }
}

impl From<crate::cli::GuardArgs> for Settings {
    fn from(a: crate::cli::GuardArgs) -> Self {
        Settings {
            vault: a.vault,
            state: a.state,
            key_timeout: Duration::from_secs(a.key_timeout),
            keep: a.keep,
            checkpoint_interval: (a.checkpoint_ms > 0)
                .then(|| Duration::from_millis(a.checkpoint_ms)),
            checkpoint_dir: a.checkpoint_dir,
            drain: Duration::from_secs(a.drain_secs),
            command: a.command,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_line_round_trip_and_rejects() {
        let key = DataKey::generate();
        let line = key_line(&key);
        assert_eq!(
            parse_key_line(line.as_bytes()).unwrap().as_bytes(),
            key.as_bytes()
        );
        assert!(parse_key_line(b"safeclaw-key-v1 abc\n").is_none());
        assert!(parse_key_line(b"other-prefix 00\n").is_none());
        let bad_hex = format!("{KEY_PREFIX}{}\n", "zz".repeat(32));
        assert!(parse_key_line(bad_hex.as_bytes()).is_none());
    }
}

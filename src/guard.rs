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
//! guard forwards one SIGTERM to the gateway and waits for it. A second signal is ignored by the kernel for PID 1, so the stop
//! budget is the engine's (`docker stop -t`), after which SIGKILL ends
//! everything and the previous generation stays the newest.

use std::io::{Read, Write};
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
/// Exit code when the key does not open the vault.
pub const EXIT_WRONG_KEY: i32 = 3;

/// Encodes the key line the host sends.
pub fn key_line(key: &DataKey) -> Zeroizing<String> {
    let mut line = Zeroizing::new(String::with_capacity(KEY_LINE_MAX));
    line.push_str(KEY_PREFIX);
    line.push_str(&crate::private_fs::hex(key.as_bytes()));
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
        let mut buf = Zeroizing::new(Vec::with_capacity(KEY_LINE_MAX));
        let r = std::io::stdin()
            .lock()
            .take(KEY_LINE_MAX as u64)
            .read_to_end(&mut buf);
        let _ = tx.send(r.map(|_| buf));
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

fn guard(s: &Settings) -> Result<i32> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| Error::failure(format!("installing signal handlers: {e}")))?;
    }
    // Before the key exists in this process: no core dumps, no ptrace and
    // no /proc/PID/mem for processes of the same uid (the gateway).
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| Error::failure(format!("making the guard non-dumpable: {e}")))?;
    let key = read_key(s.key_timeout)?;
    let vault = VaultFile::open(&s.vault)?;
    vault
        .authenticate(&key)
        .map_err(|_| Error::new(Class::WrongPassword, "the key does not open the vault"))?;
    let generation = vault.header().generation;
    vault.unpack(&key, &s.state, |_| {})?;

    let (program, args) = s
        .command
        .split_first()
        .ok_or_else(|| Error::usage("no gateway command given"))?;
    let child = Command::new(program)
        .args(args)
        .env("OPENCLAW_STATE_DIR", &s.state)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| Error::failure(format!("starting {program}: {e}")))?;
    let child_pid = Pid::from_child(&child);
    say(&format!("{READY}{generation}"));

    let status = supervise(child_pid, &stop);
    let sealed = vault::seal_next_generation(&s.vault, &key, &s.state)?;
    say(&format!("{SEALED}{sealed}"));
    Ok(status)
}

/// Forwards one SIGTERM on a stop request, reaps every child (PID 1 adopts
/// orphans), and returns the gateway's exit code once it has exited.
fn supervise(child: Pid, stop: &AtomicBool) -> i32 {
    let mut forwarded: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) && forwarded.is_none() {
            let _ = rustix::process::kill_process(child, Signal::TERM);
            forwarded = Some(Instant::now());
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

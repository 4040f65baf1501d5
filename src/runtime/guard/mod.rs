//! The guard: safeclaw as PID 1 inside the container (docs/guard.md).
//!
//! It reads the vault's data key from stdin (the host writes it over an
//! attach made before start), makes itself non-dumpable, decrypts the vault
//! into the tmpfs state dir, runs the gateway as its child, forwards
//! SIGTERM/SIGINT, reaps every zombie (it is PID 1), and when the gateway
//! has exited seals the state dir into the vault's next generation.
//! safeclaw's records (`vault::records`) come out of the vault into the
//! guard's memory and go back into every generation it seals; a
//! `.safeclaw` the gateway writes into the state is never sealed.
//!
//! Signal policy: SIGTERM and SIGINT set the guard's own stop flag (not the
//! CLI's cancel flag of `interrupt.rs`, which would abort the seal); the
//! guard forwards one SIGTERM to the gateway, waits up to the drain budget,
//! then kills the gateway's process group and seals anyway. SIGUSR1 asks
//! for a checkpoint. A second signal is ignored by the kernel for PID 1, so the stop
//! budget is the engine's (`docker stop -t`), after which SIGKILL ends
//! everything and the previous generation stays the newest.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};

use crate::error::{Error, ExitStatus, Result};
use crate::vault::{self, crypto::DataKey, VaultFile};

pub mod checkpoint;
pub mod protocol;
pub mod skills;
pub mod tools;

use checkpoint::Checkpoints;
use protocol::{Failure, GuardSettings, Status};

/// Reads the key line from stdin, at most `KEY_LINE_MAX` bytes, within
/// `timeout`. The reading thread is left behind on timeout; the guard
/// exits right after, so it does not matter.
fn read_key(timeout: Duration) -> std::result::Result<DataKey, Failure> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // fd 0 directly into one zeroizing buffer: std's `Stdin` would keep
        // a copy of the key line in its never-wiped global buffer.
        let r =
            crate::password::read_all_zeroizing(crate::password::RawStdin, protocol::KEY_LINE_MAX);
        let _ = tx.send(r);
    });
    let buf = rx
        .recv_timeout(timeout)
        .map_err(|_| Failure::NoKey)?
        .map_err(|e| Failure::Other(format!("reading the key from stdin: {e}")))?;
    protocol::parse_key_line(&buf).ok_or(Failure::MalformedKey)
}

/// Writes one status line on stdout, where the host reads it.
fn say(status: &Status) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", status.encode());
    let _ = out.flush();
}

/// Runs the guard. It ends with the gateway's own exit status, or, when
/// it gives up, with its failure said on stdout and its class's exit code
/// (3 for a wrong key, 1 otherwise).
pub fn run(settings: &GuardSettings) -> ExitStatus {
    match guard(settings) {
        Ok(code) => ExitStatus::External(code),
        Err(failure) => {
            let class = failure.class();
            say(&Status::Failed(failure));
            ExitStatus::Reported(class)
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

/// The guard's life; returns the gateway's exit code.
fn guard(s: &GuardSettings) -> std::result::Result<u8, Failure> {
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
    vault.authenticate(&key).map_err(|_| Failure::WrongKey)?;
    // A seal killed half-way (SIGKILL, power cut) leaves temporaries only.
    vault::generations::remove_stale_temporaries(&s.vault);
    let generation = vault.header().generation;
    // A pinned skill that does not match stops here, before anything is
    // decrypted into the state (checked again on the records unpacked).
    skills::check(s, &vault.records(&key)?)?;
    // The records stay in the guard's memory, never in the state dir (the
    // gateway's user writes it), and go into every generation it seals.
    let (_, mut records) = vault.unpack(&key, &s.state, |_| {})?;
    if let Some(policy) = &s.egress_policy {
        keep_egress_policy(&mut records, policy)?;
    }
    // Before the gateway: a pinned skill that does not match stops here.
    let watch = Arc::new(skills::install(s, &records)?);
    let records = Arc::new(records);

    // Before the gateway, so its first connection finds the relay.
    let mut relay = s.relay.as_deref().map(Relay::new);
    if let Some(r) = relay.as_mut() {
        r.spawn()?;
    }
    let (program, args) = s
        .gateway
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
    say(&Status::Ready { generation });

    let mut checkpoints = Checkpoints::new(s, &key, Arc::clone(&records), child_pid, watch);
    let status = supervise(
        child_pid,
        &stop,
        &checkpoint_now,
        &mut checkpoints,
        relay.as_mut(),
        s.drain,
    );
    if let Some(r) = relay.as_mut() {
        r.kill();
    }
    end_the_rest(child_pid);
    checkpoints.wait();
    let sealed = records_for_seal(&records, s);
    let generation =
        vault::seal_next_generation(&s.vault, &key, &s.state, s.keep_generations, &sealed)?;
    say(&Status::Sealed { generation });
    // As the shell reports it: an exit code, or 128 and the signal.
    Ok((status & 0xff) as u8)
}

/// The records a seal writes: those unpacked, and with egress locked the
/// proxy's log of this run added to the vault's (`egress::log_file`).
pub(crate) fn records_for_seal(records: &vault::Records, s: &GuardSettings) -> vault::Records {
    match s.relay.as_deref().and_then(std::path::Path::parent) {
        Some(dir) => crate::egress::log_file::with_run_log(records, dir),
        None => records.clone(),
    }
}

/// Stores the egress policy the host derived for a vault that holds none
/// yet (`GuardSettings::egress_policy`); one the vault holds stays as it
/// is. Checked before it is kept: the next start reads it back.
fn keep_egress_policy(
    records: &mut vault::Records,
    policy: &str,
) -> std::result::Result<(), Failure> {
    use crate::egress::{policy, stored};
    if records.get(stored::RECORD).is_some() {
        return Ok(());
    }
    let parsed = policy::decode(policy.as_bytes())
        .map_err(|why| Error::usage(format!("guard: --egress-policy: {why}")))?;
    records.set(stored::RECORD, policy::encode(&parsed))?;
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
    mut relay: Option<&mut Relay>,
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
            say(&Status::DrainOver { drain });
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
                Ok(Some((pid, _))) => {
                    if let Some(r) = relay.as_deref_mut() {
                        r.reaped(pid);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        if let Some(r) = relay.as_deref_mut() {
            r.respawn_if_due();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How long the guard waits before it starts a relay that died again.
const RELAY_RESPAWN: Duration = Duration::from_secs(1);

/// The egress relay (`safeclaw egress relay`, docs/egress.md): the
/// gateway's only way out, from its proxy URL on loopback to the proxy's
/// socket. A process of its own, without the key (exec resets what this
/// process holds), outside the gateway's process group (a checkpoint's
/// freeze leaves it running). If it dies, connections are refused until
/// the guard starts it again: fail-closed.
struct Relay {
    socket: std::path::PathBuf,
    pid: Option<Pid>,
    died_at: Option<Instant>,
}

impl Relay {
    fn new(socket: &std::path::Path) -> Self {
        Relay {
            socket: socket.to_path_buf(),
            pid: None,
            died_at: None,
        }
    }

    fn spawn(&mut self) -> Result<()> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::failure(format!("finding safeclaw's own binary: {e}")))?;
        let child = Command::new(exe)
            .args(crate::egress::network::relay_args(&self.socket))
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| Error::failure(format!("starting the egress relay: {e}")))?;
        self.pid = Some(Pid::from_child(&child));
        self.died_at = None;
        Ok(())
    }

    fn reaped(&mut self, pid: Pid) {
        if self.pid == Some(pid) {
            self.pid = None;
            self.died_at = Some(Instant::now());
        }
    }

    fn respawn_if_due(&mut self) {
        if self.died_at.is_some_and(|t| t.elapsed() >= RELAY_RESPAWN) && self.spawn().is_err() {
            // Tried again after the next wait.
            self.died_at = Some(Instant::now());
        }
    }

    fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
        self.died_at = None;
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
                say(&Status::Outlived);
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

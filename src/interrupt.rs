//! SIGINT/SIGTERM as a flag that long loops check, so an interrupted command
//! unwinds normally and its cleanup (temporary files, plaintext export
//! directories) runs instead of being skipped by a default signal death.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Installs the handlers. A second signal while unwinding kills the process
/// the default way, so a stuck cleanup can still be stopped.
pub fn install() {
    let flag = FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register_conditional_default(sig, Arc::clone(flag));
        let _ = signal_hook::flag::register(sig, Arc::clone(flag));
    }
}

pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::Relaxed))
}

/// Forgets a signal that arrived: for cleanup that must run to its end
/// because of it (an interrupted upgrade's rollback). A signal after this
/// is a request again, and the one after that kills the default way.
pub fn clear() {
    if let Some(flag) = FLAG.get() {
        flag.store(false, Ordering::Relaxed);
    }
}

/// Fails with `Class::Interrupted` once a signal arrived.
pub fn check() -> Result<()> {
    if requested() {
        Err(Error::interrupted())
    } else {
        Ok(())
    }
}

/// The marker carried by `io_error`, so a signal can stop work inside
/// `Read`/`Write` chains. Not `ErrorKind::Interrupted`: std and our own
/// readers retry that kind, which would spin forever.
#[derive(Debug)]
struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Stopped {}

/// An I/O error that `is_io_error` recognises.
pub fn io_error() -> std::io::Error {
    std::io::Error::other(Stopped)
}

/// True for errors made by `io_error`, wherever they were wrapped.
pub fn is_io_error(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Stopped>())
}

//! Every failure the tool reports, classified once into an exit code.
//!
//! A failure is one line of what went wrong plus, where we know one, one line
//! of what to do. Messages never contain secrets: they are built from paths,
//! counts and fixed text only.

use std::fmt;
use std::io;

/// The class of a failure, which decides the exit code (docs/cli.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Anything not covered below (I/O, refused operation, ...): exit 1.
    Failure,
    /// Bad command line or missing input (clap's own errors also exit 2).
    Usage,
    /// No key slot of the vault opens with the password given.
    WrongPassword,
    /// The vault is not a vault, is damaged, truncated, modified, over the
    /// KDF caps, or holds a refused archive entry.
    Damaged,
    /// No Docker engine answers, or it refused a request, or DOCKER_HOST
    /// names an engine safeclaw refuses to send the key to.
    Engine,
    /// Stopped by SIGINT or SIGTERM before finishing; nothing was left half-done.
    Interrupted,
    /// `safeclaw audit` found a high-severity problem (its report was printed).
    AuditFailed,
}

impl Class {
    /// The process exit code for this class.
    pub fn exit_code(self) -> u8 {
        match self {
            Class::Failure => 1,
            Class::Usage => 2,
            Class::WrongPassword => 3,
            Class::Damaged => 4,
            Class::Engine => 5,
            Class::Interrupted => 130,
            Class::AuditFailed => 6,
        }
    }

    /// A stable name for `--json` output.
    pub fn name(self) -> &'static str {
        match self {
            Class::Failure => "failure",
            Class::Usage => "usage",
            Class::WrongPassword => "wrong-password",
            Class::Damaged => "damaged",
            Class::Engine => "engine",
            Class::Interrupted => "interrupted",
            Class::AuditFailed => "audit-failed",
        }
    }
}

/// How a command ended when it did not fail: `main` turns it into the
/// process's exit code (the only place that does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exit 0.
    Success,
    /// The exit code of a process the command ran and waited for, passed
    /// through as it is (`exec` and `pair`: OpenClaw's; the guard: the
    /// gateway's).
    External(u8),
    /// A failure the command has already reported where its reader looks
    /// (the guard's status line; the health check's exit code is its
    /// answer): the class's exit code, and nothing printed.
    Reported(Class),
}

impl ExitStatus {
    /// A child's exit code as it comes from the engine (an i64): 0 is a
    /// success; one that is not a process exit code fails as 1 or 255.
    pub fn of_child(code: i64) -> ExitStatus {
        if code == 0 {
            ExitStatus::Success
        } else {
            ExitStatus::External(code.clamp(1, 255) as u8)
        }
    }

    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::External(code) => code,
            ExitStatus::Reported(class) => class.exit_code(),
        }
    }
}

/// A failure as shown to the user.
#[derive(Debug)]
pub struct Error {
    pub class: Class,
    pub message: String,
    pub hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(class: Class, message: impl Into<String>) -> Self {
        Error {
            class,
            message: message.into(),
            hint: None,
        }
    }

    pub fn failure(message: impl Into<String>) -> Self {
        Self::new(Class::Failure, message)
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Class::Usage, message)
    }

    pub fn damaged(message: impl Into<String>) -> Self {
        Self::new(Class::Damaged, message)
    }

    pub fn interrupted() -> Self {
        Self::new(Class::Interrupted, "interrupted")
            .with_hint("nothing was changed; temporary files were removed; run the command again")
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// An I/O failure on `path`, doing `what` ("reading", "creating", ...).
    pub fn io(what: &str, path: &std::path::Path, err: io::Error) -> Self {
        let hint = match err.kind() {
            io::ErrorKind::PermissionDenied => Some("check the owner and permissions of that path"),
            io::ErrorKind::NotFound => Some("check the path"),
            io::ErrorKind::StorageFull => {
                Some("free some disk space; the previous files were left as they were")
            }
            _ => None,
        };
        let err = Error::failure(format!("{what} {}: {}", path.display(), io_reason(&err)));
        match hint {
            Some(h) => err.with_hint(h),
            None => err,
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.class.exit_code()
    }
}

/// The OS's words for an I/O error, without Rust's "(os error N)" suffix.
pub fn io_reason(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

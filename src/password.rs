//! Passwords come from a no-echo prompt on the terminal, a file, or stdin;
//! never from argv or the environment. They live in zeroizing buffers.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// More than any password; bounds what a wrong `--password-file` makes us read.
const MAX_INPUT: usize = 64 * 1024;

/// A password, wiped from memory on drop (copies too).
#[derive(Clone)]
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    /// A password from bytes already in memory (tests, key hand-offs).
    /// Empty passwords are refused like everywhere else.
    pub fn new(bytes: &[u8]) -> Result<Self> {
        Self::from_first_line(bytes, "memory")
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The same password without a trailing CR, and whether there was one.
    /// A legacy password read the openssl way may keep the CR of a CRLF
    /// file; every safeclaw input strips it, so a vault password must not
    /// end in one (nobody could type it again).
    pub fn without_trailing_cr(&self) -> (Password, bool) {
        match self.0.strip_suffix(b"\r") {
            Some(stripped) if !stripped.is_empty() => {
                (Password(Zeroizing::new(stripped.to_vec())), true)
            }
            _ => (self.clone(), false),
        }
    }

    fn from_first_line(buf: &[u8], origin: &str) -> Result<Self> {
        let line = first_line(buf);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Err(Error::usage(format!("the password from {origin} is empty"))
                .with_hint("empty passwords are refused; put the password on the first line"));
        }
        Ok(Password(Zeroizing::new(line.to_vec())))
    }
}

/// A warning when `buf` holds more than its first line: a key file of
/// several lines would otherwise be cut silently to its first.
fn tail_warning(buf: &[u8], origin: &str, label: &str) -> Option<String> {
    let tail = buf.get(first_line(buf).len() + 1..).unwrap_or_default();
    tail.iter().any(|b| !b.is_ascii_whitespace()).then(|| {
        format!(
            "{origin} has more than one line; only its first line is the {label}, the rest is ignored"
        )
    })
}

/// Reads `input` to its end, at most `max` bytes, into one zeroizing
/// buffer allocated up front: a growing `Vec` would leave unwiped copies
/// behind in the heap at each reallocation.
pub fn read_all_zeroizing(mut input: impl Read, max: usize) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; max]);
    let mut len = 0;
    while len < max {
        match input.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// File descriptor 0 read directly, without std's `Stdin`: that keeps a
/// process-wide buffer which is never wiped, so a secret read through it
/// stays in the heap for the life of the process.
pub struct RawStdin;

impl Read for RawStdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        rustix::io::read(rustix::stdio::stdin(), buf).map_err(io::Error::from)
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// The first line of `buf`, its LF removed and a CR kept.
fn first_line(buf: &[u8]) -> &[u8] {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) => &buf[..i],
        None => buf,
    }
}

/// Where a password comes from, as resolved from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Prompt,
    File(PathBuf),
    Stdin,
}

/// Whether a prompt asks once or twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    Once,
    Twice,
}

/// Reads a password. `label` names it in prompts and errors ("vault
/// password", "new vault password"). Also returns a warning to show when
/// the file or stdin held more than one line.
pub fn read(source: &Source, label: &str, confirm: Confirm) -> Result<(Password, Option<String>)> {
    let (buf, origin) = match source {
        Source::File(path) => (read_bounded(path)?, path.display().to_string()),
        Source::Stdin => (read_stdin(label)?, "stdin".to_string()),
        Source::Prompt => return prompt_for(label, confirm).map(|p| (p, None)),
    };
    let password = Password::from_first_line(&buf, &origin)?;
    Ok((password, tail_warning(&buf, &origin, label)))
}

fn prompt_for(label: &str, confirm: Confirm) -> Result<Password> {
    let first = prompt(&format!("Enter {label}: "))?;
    if confirm == Confirm::Twice {
        let second = prompt(&format!("Repeat {label}: "))?;
        if first.as_bytes() != second.as_bytes() {
            return Err(Error::usage("the two passwords differ").with_hint("run the command again"));
        }
    }
    Ok(first)
}

fn read_bounded(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let file = File::open(path).map_err(|e| Error::io("reading the password file", path, e))?;
    read_all_zeroizing(file, MAX_INPUT).map_err(|e| Error::io("reading the password file", path, e))
}

fn read_stdin(label: &str) -> Result<Zeroizing<Vec<u8>>> {
    read_all_zeroizing(RawStdin, MAX_INPUT)
        .map_err(|e| Error::failure(format!("reading the {label} from stdin: {e}")))
}

/// A legacy file's password, read the way `openssl enc -pass file:` reads
/// one: the first line with its LF removed but a CR kept. When the line
/// ends in CR, the same without it follows as a second candidate. Also
/// returns `read`'s warning about further lines.
pub fn read_openssl(source: &Source, label: &str) -> Result<(Vec<Password>, Option<String>)> {
    let (buf, origin) = match source {
        Source::Prompt => return Ok((vec![prompt_for(label, Confirm::Once)?], None)),
        Source::File(path) => (read_bounded(path)?, path.display().to_string()),
        Source::Stdin => (read_stdin(label)?, "stdin".to_string()),
    };
    let line = first_line(&buf);
    let mut out = Vec::new();
    if !line.is_empty() && line != b"\r" {
        out.push(Password(Zeroizing::new(line.to_vec())));
    }
    if let Some(stripped) = line.strip_suffix(b"\r").filter(|l| !l.is_empty()) {
        out.push(Password(Zeroizing::new(stripped.to_vec())));
    }
    if out.is_empty() {
        return Err(Error::usage(format!("the password from {origin} is empty"))
            .with_hint("empty passwords are refused; put the password on the first line"));
    }
    Ok((out, tail_warning(&buf, &origin, label)))
}

fn prompt(text: &str) -> Result<Password> {
    // rpassword talks to /dev/tty, so this works with stdin redirected but
    // fails cleanly without a controlling terminal (cron, CI, systemd).
    let answer = rpassword::prompt_password(text).map_err(|_| {
        Error::usage("no terminal to ask for the password")
            .with_hint("pass --password-file PATH or --password-stdin")
    })?;
    let answer = Zeroizing::new(answer);
    if answer.is_empty() {
        return Err(Error::usage("empty password").with_hint("empty passwords are refused"));
    }
    Ok(Password(Zeroizing::new(answer.as_bytes().to_vec())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_without_its_ending() {
        let p = Password::from_first_line(b"secret\r\nsecond", "t").unwrap();
        assert_eq!(p.as_bytes(), b"secret");
        let p = Password::from_first_line(b"secret", "t").unwrap();
        assert_eq!(p.as_bytes(), b"secret");
        assert!(tail_warning(b"secret\r\n", "f", "t").is_none());
        assert!(tail_warning(b"secret\n\n", "f", "t").is_none());
        assert!(tail_warning(b"secret\nmore", "f", "t").is_some());
        assert!(Password::from_first_line(b"\nsecret", "t").is_err());
        assert!(Password::from_first_line(b"", "t").is_err());
    }

    #[test]
    fn openssl_style_keeps_the_cr_then_tries_without() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, b"secret\r\nnext").unwrap();
        let (c, warning) = read_openssl(&Source::File(path.clone()), "t").unwrap();
        let c: Vec<&[u8]> = c.iter().map(|p| p.as_bytes()).collect();
        assert_eq!(c, [&b"secret\r"[..], &b"secret"[..]]);
        assert!(warning.unwrap().contains("only its first line"));
        std::fs::write(&path, b"secret\n").unwrap();
        assert_eq!(
            read_openssl(&Source::File(path.clone()), "t")
                .unwrap()
                .0
                .len(),
            1
        );
        std::fs::write(&path, b"\r\n").unwrap();
        assert!(read_openssl(&Source::File(path), "t").is_err());
    }
}

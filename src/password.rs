//! Passwords come from a no-echo prompt on the terminal, a file, or stdin;
//! never from argv or the environment. They live in zeroizing buffers.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// More than any password; bounds what a wrong `--password-file` makes us read.
const MAX_INPUT: u64 = 64 * 1024;

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
/// password", "new vault password").
pub fn read(source: &Source, label: &str, confirm: Confirm) -> Result<Password> {
    match source {
        Source::File(path) => from_file(path),
        Source::Stdin => Password::from_first_line(&read_stdin(label)?, "stdin"),
        Source::Prompt => {
            let first = prompt(&format!("Enter {label}: "))?;
            if confirm == Confirm::Twice {
                let second = prompt(&format!("Repeat {label}: "))?;
                if first.as_bytes() != second.as_bytes() {
                    return Err(
                        Error::usage("the two passwords differ").with_hint("run the command again")
                    );
                }
            }
            Ok(first)
        }
    }
}

fn from_file(path: &Path) -> Result<Password> {
    Password::from_first_line(&read_bounded(path)?, &path.display().to_string())
}

fn read_bounded(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let file = File::open(path).map_err(|e| Error::io("reading the password file", path, e))?;
    let mut buf = Zeroizing::new(Vec::new());
    file.take(MAX_INPUT)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("reading the password file", path, e))?;
    Ok(buf)
}

fn read_stdin(label: &str) -> Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    io::stdin()
        .lock()
        .take(MAX_INPUT)
        .read_to_end(&mut buf)
        .map_err(|e| Error::failure(format!("reading the {label} from stdin: {e}")))?;
    Ok(buf)
}

/// A legacy file's password, read the way `openssl enc -pass file:` reads
/// one: the first line with its LF removed but a CR kept. When the line
/// ends in CR, the same without it follows as a second candidate.
pub fn read_openssl(source: &Source, label: &str) -> Result<Vec<Password>> {
    let (buf, origin) = match source {
        Source::Prompt => return Ok(vec![read(source, label, Confirm::Once)?]),
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
    Ok(out)
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
        assert!(Password::from_first_line(b"\nsecret", "t").is_err());
        assert!(Password::from_first_line(b"", "t").is_err());
    }

    #[test]
    fn openssl_style_keeps_the_cr_then_tries_without() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, b"secret\r\nnext").unwrap();
        let c = read_openssl(&Source::File(path.clone()), "t").unwrap();
        let c: Vec<&[u8]> = c.iter().map(|p| p.as_bytes()).collect();
        assert_eq!(c, [&b"secret\r"[..], &b"secret"[..]]);
        std::fs::write(&path, b"secret\n").unwrap();
        assert_eq!(
            read_openssl(&Source::File(path.clone()), "t")
                .unwrap()
                .len(),
            1
        );
        std::fs::write(&path, b"\r\n").unwrap();
        assert!(read_openssl(&Source::File(path), "t").is_err());
    }
}

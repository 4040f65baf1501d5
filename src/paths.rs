//! Where safeclaw keeps its files: a private home (0700), by default
//! `~/.safeclaw`, holding the vault `openclaw.vault`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::env_vars;
use crate::error::{Error, Result};

pub const VAULT_FILE: &str = "openclaw.vault";

/// `$SAFECLAW_HOME`, else `$HOME/.safeclaw`.
pub fn home() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(env_vars::SAFECLAW_HOME).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    std::env::var_os(env_vars::HOME)
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".safeclaw"))
        .ok_or_else(|| {
            Error::usage("HOME is not set, so safeclaw has no home directory")
                .with_hint("set SAFECLAW_HOME, or pass the file path explicitly")
        })
}

/// The home, created 0700 if missing; an existing one must be a directory
/// of ours that nobody else can read.
pub fn private_home() -> Result<PathBuf> {
    let dir = home()?;
    match fs::symlink_metadata(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
            }
            crate::private_fs::create_private_dir(&dir)?;
        }
        Err(e) => return Err(Error::io("reading", &dir, e)),
        Ok(meta) => {
            if !meta.is_dir() {
                return Err(Error::failure(format!(
                    "{} is not a directory",
                    dir.display()
                )));
            }
            if meta.mode() & 0o077 != 0 {
                return Err(Error::failure(format!(
                    "{} can be read by other users (mode {:04o})",
                    dir.display(),
                    meta.mode() & 0o7777
                ))
                .with_hint(format!("chmod 700 {}", dir.display())));
            }
        }
    }
    Ok(dir)
}

/// The vault to read: the one given, or the default in the home.
pub fn vault(given: &Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(p.clone()),
        None => Ok(home()?.join(VAULT_FILE)),
    }
}

/// The vault to create: the one given, or the default in the home, which
/// is created private if missing.
pub fn new_vault(given: &Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(p.clone()),
        None => Ok(private_home()?.join(VAULT_FILE)),
    }
}

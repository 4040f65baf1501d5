//! Where safeclaw keeps its files: a private home (0700), by default
//! `~/.safeclaw`, holding the trust records (`seen-generations.json`,
//! `image-pins/`) and a directory of the vault's own, `vault/`, holding
//! `openclaw.vault` and its kept generations.
//!
//! The vault's directory is mounted read-write into the container, whose
//! gateway is not trusted: so it holds nothing else safeclaw relies on
//! (`check_dedicated_dir`), and the records stay out of the container's
//! reach. Homes made before this layout kept the vault directly in the
//! home; `move_legacy_vault` moves it into `vault/`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::env_vars;
use crate::error::{Error, Result};

pub const VAULT_FILE: &str = crate::constants::VAULT_FILE;
/// The vault's own directory inside the home.
pub const VAULT_DIR: &str = crate::constants::HOME_VAULT_DIR;
/// The records of pinned images inside the home (`image_pin`).
pub const IMAGE_PINS_DIR: &str = "image-pins";
/// Under the home: one directory per gateway for its egress proxy's socket
/// (docs/egress.md). Never mounted into a container but as that one
/// directory: read-write into the proxy's, read-only into the gateway's.
pub const RUN_DIR: &str = "run";
/// Under the home: one directory per gateway holding the vault's pinned
/// skills as files, written at each start and mounted read-only into that
/// gateway's container only (docs/skills.md).
pub const PINNED_SKILLS_DIR: &str = "pinned-skills";
/// Under the home: per gateway, the record of its last upgrade and the
/// copy of the generation sealed before it (docs/upgrade.md). Never
/// mounted into a container.
pub const UPGRADES_DIR: &str = "upgrades";

/// The default vault of a home.
pub fn default_vault(home: &Path) -> PathBuf {
    home.join(VAULT_DIR).join(VAULT_FILE)
}

/// Where homes made before the `vault/` directory kept the vault: next to
/// the trust records, all of them mounted into the container.
fn legacy_vault(home: &Path) -> PathBuf {
    home.join(VAULT_FILE)
}

/// `$SAFECLAW_HOME`, else `$HOME/.safeclaw`; absolute (a relative one is
/// taken from the directory safeclaw was started in).
pub fn home() -> Result<PathBuf> {
    let home = match std::env::var_os(env_vars::SAFECLAW_HOME).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os(env_vars::HOME)
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".safeclaw"))
            .ok_or_else(|| {
                Error::usage("HOME is not set, so safeclaw has no home directory")
                    .with_hint("set SAFECLAW_HOME, or pass the file path explicitly")
            })?,
    };
    std::path::absolute(&home).map_err(|e| Error::io("resolving", &home, e))
}

/// The home, created 0700 if missing; an existing one must be a directory
/// of ours that nobody else can read.
pub fn private_home() -> Result<PathBuf> {
    let dir = home()?;
    if !exists(&dir) {
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
        }
    }
    private_dir(&dir)?;
    Ok(dir)
}

/// The vault to read: the one given, or the default of the home (in a
/// home of the old layout, the vault still there until a start moves it).
pub fn vault(given: &Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.clone());
    }
    let home = home()?;
    // A link in place of `vault/` (planted by a container that had the
    // home mounted, in the old layout) would send every command elsewhere.
    let dir = home.join(VAULT_DIR);
    if let Ok(meta) = fs::symlink_metadata(&dir) {
        if !meta.is_dir() {
            return Err(Error::failure(format!(
                "{} is not a directory (a link?)",
                dir.display()
            ))
            .with_hint("it must be safeclaw's own directory: remove it, then make it again with mkdir -m 700"));
        }
    }
    Ok(vault_in(&home))
}

/// The vault of `home`: `vault/openclaw.vault`, or in a home of the old
/// layout the vault still directly in it.
pub fn vault_in(home: &Path) -> PathBuf {
    let (new, old) = (default_vault(home), legacy_vault(home));
    if !exists(&new) && exists(&old) {
        return old;
    }
    new
}

/// The vault to create: the one given, or the default of the home, whose
/// directories are created private if missing.
pub fn new_vault(given: &Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.clone());
    }
    let home = private_home()?;
    let old = legacy_vault(&home);
    if exists(&old) {
        return Err(
            Error::usage(format!("{} already exists", old.display())).with_hint(
                "an existing vault is never overwritten; pass --vault to make another one",
            ),
        );
    }
    private_dir(&home.join(VAULT_DIR))?;
    Ok(default_vault(&home))
}

/// The private directory of the egress proxy's socket for the gateway
/// `name` (`run/<name>` in the home), made 0700 if missing, its path
/// resolved (a bind mount needs it so).
pub fn egress_dir(name: &str) -> Result<PathBuf> {
    gateway_dir(RUN_DIR, name)
}

/// Where the gateway `name`'s pinned skills are written
/// (`pinned-skills/<name>` in the home): its parent made private (0700) if
/// missing and resolved; the directory itself is the caller's to make
/// (readable by the container's user, who may be another uid).
pub fn pinned_skills_dir(name: &str) -> Result<PathBuf> {
    check_container_name(name)?;
    let parent = private_home()?.join(PINNED_SKILLS_DIR);
    private_dir(&parent)?;
    let parent = fs::canonicalize(&parent).map_err(|e| Error::io("resolving", &parent, e))?;
    Ok(parent.join(name))
}

/// The directory of the gateways' upgrade records and saved generations
/// (`upgrades/` in the home, made private if missing), once `name` is
/// checked to be one plain path component.
pub fn upgrades_dir(name: &str) -> Result<PathBuf> {
    check_container_name(name)?;
    let dir = private_home()?.join(UPGRADES_DIR);
    private_dir(&dir)?;
    Ok(dir)
}

/// Engines allow `[a-zA-Z0-9][a-zA-Z0-9_.-]*`: one plain path component.
fn check_container_name(name: &str) -> Result<()> {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if plain {
        Ok(())
    } else {
        Err(Error::usage(format!("{name:?} is not a container name"))
            .with_hint("use letters, digits, `_`, `.` and `-`"))
    }
}

/// `<home>/<under>/<name>`, private, resolved (a bind mount needs it so).
fn gateway_dir(under: &str, name: &str) -> Result<PathBuf> {
    check_container_name(name)?;
    let home = private_home()?;
    let parent = home.join(under);
    private_dir(&parent)?;
    let dir = parent.join(name);
    private_dir(&dir)?;
    fs::canonicalize(&dir).map_err(|e| Error::io("resolving", &dir, e))
}

/// `path` with its directory resolved (absolute, no links), the file name
/// kept: bind mounts need an absolute source, and a relative `--vault
/// v.sclaw` means the one in the current directory.
pub fn in_resolved_dir(path: &Path) -> Result<PathBuf> {
    let dir = crate::private_fs::parent_of(path);
    let name = path
        .file_name()
        .ok_or_else(|| Error::usage(format!("{} is not a file path", path.display())))?;
    let dir = fs::canonicalize(&dir).map_err(|e| Error::io("reading", &dir, e))?;
    Ok(dir.join(name))
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// `dir` as a private directory of ours: created 0700 if missing, refused
/// if it is a link, not a directory, or readable by others.
fn private_dir(dir: &Path) -> Result<()> {
    match fs::symlink_metadata(dir) {
        // Another safeclaw (two starts at once) may make it between the
        // look and the creation: then it is checked as found.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match crate::private_fs::create_private_dir(dir) {
                Err(_) if fs::symlink_metadata(dir).is_ok() => existing_private_dir(dir),
                made => made,
            }
        }
        _ => existing_private_dir(dir),
    }
}

/// Checks a directory that exists: a directory, not a link, private.
fn existing_private_dir(dir: &Path) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Err(e) => Err(Error::io("reading", dir, e)),
        Ok(meta) if !meta.is_dir() => Err(Error::failure(format!(
            "{} is not a directory",
            dir.display()
        ))),
        Ok(meta) if meta.mode() & 0o077 != 0 => Err(Error::failure(format!(
            "{} can be read by other users (mode {:04o})",
            dir.display(),
            meta.mode() & 0o7777
        ))
        .with_hint(format!("chmod 700 {}", dir.display()))),
        Ok(_) => Ok(()),
    }
}

/// Whether starting `vault` first needs `move_legacy_vault`: it is the
/// home's vault of the old layout (directly in the home, next to the
/// records), or it is the new default, missing, while the old one exists
/// (a NixOS module or a script that names the new default explicitly).
pub fn needs_move(vault: &Path) -> bool {
    let Ok(home) = home() else { return false };
    let Ok(old) = fs::canonicalize(legacy_vault(&home)) else {
        return false;
    };
    if fs::canonicalize(vault).is_ok_and(|v| v == old) {
        return true;
    }
    let new = default_vault(&home);
    !exists(&new) && std::path::absolute(vault).ok() == std::path::absolute(&new).ok()
}

/// Moves the home's vault of the old layout and its kept generations into
/// `vault/` and returns the new path. The caller makes sure no container
/// has the home mounted (its guard would seal into the old place). Each
/// step is a rename in one file system, the generations first and the
/// vault last, so a crash leaves every file under one name or the other
/// and `vault` finds the current file either way.
pub fn move_legacy_vault() -> Result<PathBuf> {
    let home = private_home()?;
    let (old, new) = (legacy_vault(&home), default_vault(&home));
    if exists(&new) {
        return Err(Error::usage(format!(
            "both {} and {} exist",
            old.display(),
            new.display()
        ))
        .with_hint("keep one: move the other out of safeclaw's home"));
    }
    private_dir(&home.join(VAULT_DIR))?;
    for (n, from) in crate::vault::generations::older(&old)? {
        let to = crate::vault::generations::path_of(&new, n);
        fs::rename(&from, &to).map_err(|e| Error::io("moving", &from, e))?;
    }
    // Blob stores before the files that need them.
    for store in crate::vault::blobs::store_names_in(&home) {
        let to = home.join(VAULT_DIR).join(&store);
        fs::rename(home.join(&store), &to).map_err(|e| Error::io("moving", &to, e))?;
    }
    fs::rename(&old, &new).map_err(|e| Error::io("moving", &old, e))?;
    crate::private_fs::sync_dir(&home.join(VAULT_DIR))?;
    // The image pins were in the container's reach until now: dropped,
    // they are made again from the store path at the next start.
    let pins = home.join(IMAGE_PINS_DIR);
    if fs::symlink_metadata(&pins).is_ok_and(|m| m.is_dir()) {
        for entry in fs::read_dir(&pins).map_err(|e| Error::io("reading", &pins, e))? {
            let entry = entry.map_err(|e| Error::io("reading", &pins, e))?;
            let _ = fs::remove_file(entry.path());
        }
    }
    crate::private_fs::sync_dir(&home)?;
    Ok(new)
}

/// The vault's directory is mounted read-write into the container: it must
/// hold nothing but the vault, its kept generations and a seal's
/// temporaries, and it must not be safeclaw's home. Another file there
/// would be the gateway's to read and rewrite (a trust record, a second
/// vault, the user's own files).
pub fn check_dedicated_dir(vault: &Path) -> Result<()> {
    check_dedicated_dir_of(vault, home().ok().as_deref())
}

/// `check_dedicated_dir` against a given home (`safeclaw audit --home`).
pub fn check_dedicated_dir_of(vault: &Path, home: Option<&Path>) -> Result<()> {
    let dir = crate::private_fs::parent_of(vault);
    let name = vault
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::usage(format!("{} is not a file path", vault.display())))?;
    let canonical = match fs::canonicalize(&dir) {
        // Made empty and private when the vault is created.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        r => r.map_err(|e| Error::io("reading", &dir, e))?,
    };
    let is_home = home
        .and_then(|h| fs::canonicalize(h).ok())
        .is_some_and(|h| h == canonical);
    // Looked for only when there is something to say: not at every start.
    let hint = || {
        let stores = match crate::vault::blobs::store_names_in(&dir).is_empty() {
            true => String::new(),
            false => format!(
                " {}",
                dir.join(format!("{}*", crate::vault::blobs::STORE_PREFIX))
                    .display()
            ),
        };
        format!(
            "keep the vault in a directory of its own: mkdir -m 700 DIR && mv {v} {v}.g*{stores} DIR/",
            v = vault.display()
        )
    };
    if is_home {
        return Err(Error::usage(format!(
            "{} is in safeclaw's home {}, which holds its trust records; the container would get them read-write",
            vault.display(),
            dir.display()
        ))
        .with_hint(hint()));
    }
    let mut others = Vec::new();
    for entry in fs::read_dir(&dir).map_err(|e| Error::io("reading", &dir, e))? {
        let entry = entry.map_err(|e| Error::io("reading", &dir, e))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        // A blob store (docs/vault-format.md, "Blobs"): named from a key,
        // so whose it is cannot be told without one; a directory of that
        // exact name, the vault's or a former key's.
        let store = crate::vault::blobs::is_store_name(&file)
            && entry.file_type().is_ok_and(|t| t.is_dir());
        if !store && !belongs_to_vault(&name, &file) {
            others.push(file);
        }
    }
    if others.is_empty() {
        return Ok(());
    }
    others.sort();
    let shown: Vec<String> = others.iter().take(3).map(|o| format!("{o:?}")).collect();
    let more = match others.len() {
        n if n > 3 => format!(" and {} more", n - 3),
        _ => String::new(),
    };
    Err(Error::usage(format!(
        "the vault's directory {} also holds {}{more}; the container gets that directory read-write",
        dir.display(),
        shown.join(", ")
    ))
    .with_hint(hint()))
}

/// Whether `file` is the vault `vault_name`, one of its kept generations
/// (`NAME.gN`), or a temporary of a seal (`NAME.gN.tmp-X`, `.NAME.tmp-X`).
fn belongs_to_vault(vault_name: &str, file: &str) -> bool {
    if file == vault_name {
        return true;
    }
    if let Some(rest) = file
        .strip_prefix('.')
        .and_then(|f| f.strip_prefix(vault_name))
    {
        // `.NAME.tmp-X` (a seal) or `.NAME.gN.tmp-X` (a rekey).
        return rest.starts_with(".tmp-") || is_generation_suffix(rest, true);
    }
    file.strip_prefix(vault_name).is_some_and(|rest| {
        // `NAME.unverified-T`: a file that stood in the vault's place and
        // did not authenticate, set aside by a rollback (docs/upgrade.md).
        is_generation_suffix(rest, false)
            || rest
                .strip_prefix(".unverified-")
                .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// `.gN` or `.gN.tmp-X`; with `temporary`, only the latter.
fn is_generation_suffix(rest: &str, temporary: bool) -> bool {
    let Some(rest) = rest.strip_prefix(".g") else {
        return false;
    };
    let (digits, tail) = rest.split_at(
        rest.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len()),
    );
    !digits.is_empty() && (tail.starts_with(".tmp-") || (tail.is_empty() && !temporary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_belongs_to_a_vault() {
        for ok in [
            "v",
            "v.g1",
            "v.g12",
            "v.g3.tmp-abcdef",
            ".v.tmp-123456",
            ".v.g2.tmp-123456",
        ] {
            assert!(belongs_to_vault("v", ok), "{ok}");
        }
        for other in [
            "w",
            "v.g",
            "v.gx",
            "v.g1x",
            "v.bak",
            "seen-generations.json",
            "image-pins",
            ".v.onboard-12",
            ".v.g2",
            "pw",
        ] {
            assert!(!belongs_to_vault("v", other), "{other}");
        }
    }
}

//! `safeclaw vault migrate`: the guide's `secrets.enc` into a v1 vault, in
//! one streaming pass, no plaintext on disk.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use serde_json::json;

use crate::error::{Class, Error, Result};
use crate::legacy::{self, LegacyError, Settings};
use crate::password::{self, Password, Source};
use crate::printer::Printer;
use crate::vault::{self, archive, VaultFile};
use crate::{interrupt, paths, private_fs};

use super::settings::VaultMigrate;
use super::shared;

pub fn run(args: VaultMigrate, printer: &Printer) -> Result<()> {
    let legacy_path = &args.legacy;
    let out = paths::new_vault(&args.out)?;
    if fs::symlink_metadata(&out).is_ok() {
        return Err(Error::usage(format!("{} already exists", out.display()))
            .with_hint("choose another --out; an existing vault is never overwritten"));
    }
    if !private_fs::parent_of(&out).is_dir() {
        return Err(Error::usage(format!(
            "{} is not a directory",
            private_fs::parent_of(&out).display()
        ))
        .with_hint("create it first (mkdir -m 700), or choose another --out"));
    }
    let kdf = shared::checked_kdf(args.kdf, printer)?;

    let file = private_fs::open_regular(legacy_path)?;
    let size = file
        .metadata()
        .map_err(|e| Error::io("reading", legacy_path, e))?
        .len();
    let bar = printer.bar(size, "migrating");
    bar.set_position(0);
    let reading = BarRead {
        inner: file,
        bar: bar.clone(),
    };
    let opened = match legacy::open(reading).map_err(|e| Error::io("reading", legacy_path, e))? {
        Ok(opened) => opened,
        Err(LegacyError::NotOpenssl) => {
            bar.finish_and_clear();
            return Err(Error::damaged(format!(
                "{} is not a file made by `openssl enc -salt`",
                legacy_path.display()
            ))
            .with_hint("it should start with Salted__ (or U2FsdGVkX1 when made with -a)"));
        }
        Err(LegacyError::TooShort) => {
            bar.finish_and_clear();
            return Err(Error::damaged(format!(
                "{} is truncated: it ends before any data",
                legacy_path.display()
            ))
            .with_hint("restore the file from a backup"));
        }
    };

    let settings = &args.tries;
    let candidates = read_legacy_password(&args.password, printer)?;
    let spinner = printer.spinner("trying the legacy password");
    let found = candidates.iter().find_map(|pw| {
        settings.iter().find_map(|s| {
            let key = legacy::derive(pw.as_bytes(), &opened.salt, *s);
            key.opens(&opened.first_block).then_some((pw, *s, key))
        })
    });
    spinner.finish_and_clear();
    let Some((legacy_password, used, key)) = found else {
        bar.finish_and_clear();
        return Err(wrong_password(legacy_path, settings));
    };

    let new_password = if let Some(source) = &args.new_password {
        shared::read_new_password(source, printer)?
    } else {
        let (kept, had_cr) = legacy_password.without_trailing_cr();
        if had_cr {
            printer.note(
                "the legacy password's line ends in CR (a Windows line ending), which openssl kept; \
                 the new vault's password is the same without it, as every safeclaw prompt and file reads it",
            );
        }
        kept
    };

    // One pass: decrypt, gunzip, check and re-pack every entry, seal.
    let plain = flate2::read::GzDecoder::new(legacy::CbcReader::new(opened.ciphertext, &key));
    let sealed = vault::create(&out, new_password.clone(), kdf, |w| {
        let mut plain = plain;
        let result = archive::transcode(&mut plain, w).map_err(|e| in_legacy(e, legacy_path))?;
        // The rest: tar's padding, gzip's CRC and length, CBC's padding.
        io::copy(&mut plain, &mut io::sink())
            .and_then(|_| io::copy(plain.get_mut(), &mut io::sink()))
            .map_err(|e| {
                in_legacy(
                    archive::classify_read_error(e, "legacy tar.gz"),
                    legacy_path,
                )
            })?;
        Ok(result)
    });
    bar.finish_and_clear();
    let (stats, legacy_items) = sealed?;

    // Read the new vault back with its password and compare every entry.
    let spinner = printer.spinner("verifying the new vault (Argon2id)");
    let readback = (|| {
        let vault = VaultFile::open(&out)?;
        let (vkey, _) = vault.unlock(&new_password)?;
        let mode = vault.records_dir();
        let mut payload = vault.payload(&vkey, |_| {})?;
        archive::manifest(&mut payload, mode)
    })();
    spinner.finish_and_clear();
    let same = matches!(&readback, Ok((_, items)) if *items == legacy_items);
    if !same {
        // Ours and just made: removing it loses nothing, keeps the legacy file.
        let _ = fs::remove_file(&out);
        return Err(Error::failure(format!(
            "the new vault did not read back identical to {}; it was removed and the legacy file kept",
            legacy_path.display()
        ))
        .with_hint("report this as a bug; nothing was lost"));
    }

    for skipped in &stats.skipped {
        printer.warn(&format!("left out of the new vault: {skipped}"));
    }
    let legacy_now = retire_legacy(legacy_path, args.remove_legacy)?;
    let leftovers = leftovers(legacy_path);
    for path in &leftovers {
        printer.warn(&format!(
            "plaintext left by the guide: {} (it holds keys in clear; delete it once you no longer need it)",
            path.display()
        ));
    }
    if let (None, Some(now)) = (&args.new_password, &legacy_now) {
        printer.warn(&format!(
            "{} opens with the same password as the new vault, and its key derivation (openssl {}) is far cheaper to guess against than Argon2id: \
             anyone with a copy of it attacks the vault's password at that speed; delete it once you no longer need it (rm {})",
            now.display(),
            used.describe(),
            now.display()
        ));
    }
    if args.remove_legacy {
        printer.warn(&format!(
            "{} was deleted; on SSDs and copy-on-write filesystems its blocks may survive (it was encrypted, with the old password)",
            legacy_path.display()
        ));
    }
    printer.result(
        &format!(
            "migrated {} files, {} directories, {} symlinks ({} bytes) from {} (openssl {}{}) into {}; verified{}",
            stats.files + stats.hardlinks,
            stats.dirs,
            stats.symlinks,
            stats.bytes,
            legacy_path.display(),
            used.describe(),
            if opened.base64 { ", base64" } else { "" },
            out.display(),
            legacy_now
                .as_ref()
                .map(|p| format!("; the legacy file is now {}", p.display()))
                .unwrap_or_default(),
        ),
        json!({
            "ok": true,
            "path": out,
            "legacy": legacy_path,
            "legacy_now": legacy_now,
            "legacy_settings": used.describe(),
            "legacy_base64": opened.base64,
            "generation": 1,
            "contents": stats,
            "verified": true,
            "plaintext_leftovers": leftovers,
        }),
    );
    Ok(())
}

fn read_legacy_password(source: &Source, printer: &Printer) -> Result<Vec<Password>> {
    shared::warn_if_exposed(source, printer);
    let (candidates, warning) = password::read_openssl(source, "legacy password")?;
    if let Some(warning) = warning {
        printer.warn(&warning);
    }
    Ok(candidates)
}

fn wrong_password(path: &Path, tried: &[Settings]) -> Error {
    let tried: Vec<String> = tried.iter().map(|s| s.describe()).collect();
    Error::new(
        Class::WrongPassword,
        format!(
            "the password does not open {} (tried openssl {})",
            path.display(),
            tried.join("; ")
        ),
    )
    .with_hint(
        "check the password; if the file was made with other options pass them (--iter N, --md sha256|sha1|md5, --no-pbkdf2); \
         made with an OpenSSL older than 1.1.0? try --md md5 --no-pbkdf2",
    )
}

/// Names the legacy file in errors about its content.
fn in_legacy(e: Error, path: &Path) -> Error {
    if e.class != Class::Damaged {
        return e;
    }
    let message = if e.message.starts_with("refused archive") {
        format!("{}: {}", path.display(), e.message)
    } else {
        let detail = e.message.strip_prefix("is damaged: ").unwrap_or(&e.message);
        format!("{} is damaged: {detail}", path.display())
    };
    Error { message, ..e }
}

/// Renames the legacy file to `*.migrated` (never over an existing file)
/// or removes it. Returns its new path, if it still exists.
fn retire_legacy(path: &Path, remove: bool) -> Result<Option<PathBuf>> {
    if remove {
        fs::remove_file(path).map_err(|e| Error::io("removing", path, e))?;
        private_fs::sync_dir(&private_fs::parent_of(path))?;
        return Ok(None);
    }
    let mut name = path.as_os_str().to_owned();
    name.push(".migrated");
    let mut target = PathBuf::from(&name);
    let mut n = 1;
    while fs::symlink_metadata(&target).is_ok() {
        let mut numbered = name.clone();
        numbered.push(format!(".{n}"));
        target = PathBuf::from(numbered);
        n += 1;
    }
    fs::rename(path, &target).map_err(|e| Error::io("renaming", path, e))?;
    private_fs::sync_dir(&private_fs::parent_of(path))?;
    Ok(Some(target))
}

/// Plaintext the guide's steps can leave next to `secrets.enc`: its
/// `config.tar.gz` (in the data dir or the one above) and OpenClaw's state
/// files in the data dir.
fn leftovers(legacy: &Path) -> Vec<PathBuf> {
    let data = private_fs::parent_of(legacy);
    let data = fs::canonicalize(&data).unwrap_or(data);
    let mut found = Vec::new();
    let above = data.parent().map(Path::to_path_buf);
    for dir in std::iter::once(data.clone()).chain(above) {
        let p = dir.join("config.tar.gz");
        if p.exists() {
            found.push(p);
        }
    }
    if let Ok(entries) = fs::read_dir(&data) {
        let mut names: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                name.ends_with(".json")
                    || name.starts_with("openclaw.json")
                    || ["workspace", "state", "agents", "credentials"].contains(&name.as_str())
            })
            .collect();
        names.sort();
        found.extend(names);
    }
    found
}

/// Reads the legacy file, moving the progress bar and stopping on a signal.
struct BarRead {
    inner: File,
    bar: ProgressBar,
}

impl Read for BarRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if interrupt::requested() {
            return Err(interrupt::io_error());
        }
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

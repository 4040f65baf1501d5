//! safeclaw's records (docs/vault-format.md, "Records"): a few small named
//! values that travel inside the vault's archive, under the reserved
//! top-level directory `.safeclaw`, so that they move with the vault and are
//! authenticated by its AEAD, but that the agent can never read or change.
//!
//! The gateway's state dir is a tmpfs the agent writes; the records never
//! touch it. The guard reads them out of the archive into its own memory
//! (`archive::unpack`), ignores whatever the gateway puts under that name in
//! the state (`archive::pack` skips it), and writes its own copy into every
//! generation it seals. The host changes them with `vault::rewrite_records`.
//!
//! First user: the egress firewall's policy; later the credential broker's
//! secrets, so values are kept in zeroizing memory and never printed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The reserved top-level directory of the archive that holds the records.
/// A tree entry of this name is never packed from a state dir and never
/// extracted to one.
pub const RECORDS_DIR: &str = ".safeclaw";
/// Records in one vault. A handful are planned (egress policy, broker
/// secrets, skill hashes); the bound keeps a hostile archive cheap.
pub const MAX_RECORDS: usize = 32;
/// Bytes of one record's value: a policy or a set of keys, far from this.
pub const MAX_RECORD_BYTES: u64 = 256 * 1024;
/// Bytes of all values together: what a reader may hold in memory for them.
pub const MAX_RECORDS_BYTES: u64 = 1024 * 1024;
/// Bytes of a record's name (`[a-z0-9][a-z0-9._-]{0,63}`).
pub const MAX_NAME_BYTES: usize = 64;

/// The hint on every refusal of a record beyond the rules.
const RULES: &str = "a record's name matches [a-z0-9][a-z0-9._-]{0,63}; a vault holds at most 32 records of at most 256 KiB each, 1 MiB in all (docs/vault-format.md, \"Records\")";

/// safeclaw's records: name to value, values in zeroizing memory.
///
/// `Debug` shows names and sizes only: values may be secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Records {
    map: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.map
                    .iter()
                    .map(|(name, value)| (name, format!("<{} bytes>", value.len()))),
            )
            .finish()
    }
}

/// Checks a record's name against `[a-z0-9][a-z0-9._-]{0,63}`: the name is
/// a file name in the archive and in an export, so the first character
/// rules out `.`, `..` and hidden files, and the set rules out `/`, NUL and
/// anything a terminal would interpret. Returns the name as text, or why not.
pub fn check_name(name: &[u8]) -> std::result::Result<&str, String> {
    let Some(&first) = name.first() else {
        return Err("a record name is empty".into());
    };
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "a record name is at most {MAX_NAME_BYTES} bytes, this one {}",
            name.len()
        ));
    }
    let plain = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !plain(first) {
        return Err("a record name starts with a lowercase letter or a digit".into());
    }
    if !name
        .iter()
        .all(|&c| plain(c) || matches!(c, b'.' | b'_' | b'-'))
    {
        return Err("a record name holds only a-z, 0-9, '.', '_' and '-'".into());
    }
    // All ASCII, checked just above.
    std::str::from_utf8(name).map_err(|_| "a record name is not text".into())
}

/// A name as an error shows it: quoted, cut short, since a name that broke
/// the rules may be long or hold control characters.
pub(crate) fn shown(name: &[u8]) -> String {
    const SHOWN: usize = 80;
    let cut = &name[..name.len().min(SHOWN)];
    let dots = if name.len() > SHOWN { "..." } else { "" };
    format!("{:?}{dots}", String::from_utf8_lossy(cut))
}

impl Records {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.map.get(name).map(|v| v.as_slice())
    }

    /// Stores `bytes` under `name`, replacing what was there, within the
    /// rules (name, count, sizes). Taking the value by move (a `Vec<u8>` or
    /// a `Zeroizing` one) leaves no copy behind.
    pub fn set(&mut self, name: &str, bytes: impl Into<Zeroizing<Vec<u8>>>) -> Result<()> {
        let bytes = bytes.into();
        let refused = |why: String| {
            Error::failure(format!(
                "safeclaw's record {} cannot be stored: {why}",
                shown(name.as_bytes())
            ))
            .with_hint(RULES)
        };
        check_name(name.as_bytes()).map_err(refused)?;
        self.room_problem(name, bytes.len() as u64)
            .map_or(Ok(()), |why| Err(refused(why)))?;
        self.map.insert(name.to_owned(), bytes);
        Ok(())
    }

    /// Removes a record; whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        self.map.remove(name).is_some()
    }

    /// The names, in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// Names and values, in sorted order (the order they are packed in).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.map.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Bytes of all values together.
    pub fn total_bytes(&self) -> u64 {
        self.map.values().map(|v| v.len() as u64).sum()
    }

    /// Why a value of `len` bytes under `name` (a valid name) would break
    /// the count or size limits, if it would. Checked before a reader
    /// allocates anything for the value.
    pub(crate) fn room_problem(&self, name: &str, len: u64) -> Option<String> {
        if len > MAX_RECORD_BYTES {
            return Some(format!(
                "it is {len} bytes; a record is at most {} KiB",
                MAX_RECORD_BYTES >> 10
            ));
        }
        let replaced = self.map.get(name).map(|v| v.len() as u64);
        if replaced.is_none() && self.map.len() >= MAX_RECORDS {
            return Some(format!("a vault holds at most {MAX_RECORDS} records"));
        }
        let total = self.total_bytes() - replaced.unwrap_or(0) + len;
        if total > MAX_RECORDS_BYTES {
            return Some(format!(
                "the records would take {total} bytes; all of them together are at most {} KiB",
                MAX_RECORDS_BYTES >> 10
            ));
        }
        None
    }

    /// Adds a record the caller has checked (`check_name`, `room_problem`).
    pub(crate) fn insert_checked(&mut self, name: String, bytes: Zeroizing<Vec<u8>>) {
        self.map.insert(name, bytes);
    }

    /// Reads `root/.safeclaw/` as records (`vault create DIR`), nothing if
    /// there is no such directory. The directory and each file are opened
    /// without following a link, relative to the directory already opened,
    /// and only regular files within the rules are taken: the directory
    /// may come from anywhere, and a link in it could point at any file
    /// the user can read.
    pub fn read_dir(root: &Path) -> Result<Records> {
        use rustix::fs::{openat, Dir, Mode, OFlags, CWD};
        use rustix::io::Errno;

        let at = root.join(RECORDS_DIR);
        let refused = |what: String| {
            Error::failure(format!("{} cannot be sealed: {what}", root.display())).with_hint(
                format!(
                    "{RECORDS_DIR} at the top of the directory holds safeclaw's records, one regular file each; {RULES}"
                ),
            )
        };
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let dir = match openat(CWD, &at, flags | OFlags::DIRECTORY, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(Records::new()),
            Err(Errno::LOOP | Errno::NOTDIR) => {
                return Err(refused(format!(
                    "{RECORDS_DIR} is not a directory (a symbolic link is not followed)"
                )))
            }
            Err(e) => return Err(Error::io("opening", &at, e.into())),
        };
        let mut records = Records::new();
        for entry in Dir::read_from(&dir).map_err(|e| Error::io("reading", &at, e.into()))? {
            let entry = entry.map_err(|e| Error::io("reading", &at, e.into()))?;
            let raw = entry.file_name().to_bytes();
            if raw == b"." || raw == b".." {
                continue;
            }
            let name = check_name(raw)
                .map_err(|why| refused(format!("{RECORDS_DIR}/{}: {why}", shown(raw))))?;
            let path = at.join(name);
            let file = match openat(&dir, name, flags, Mode::empty()) {
                Ok(fd) => File::from(fd),
                // A link (ELOOP), a socket (ENXIO).
                Err(Errno::LOOP | Errno::NXIO) => {
                    return Err(refused(format!(
                        "{RECORDS_DIR}/{name} is not a regular file"
                    )))
                }
                Err(e) => return Err(Error::io("opening", &path, e.into())),
            };
            let meta = file
                .metadata()
                .map_err(|e| Error::io("reading", &path, e))?;
            if !meta.file_type().is_file() {
                return Err(refused(format!(
                    "{RECORDS_DIR}/{name} is not a regular file"
                )));
            }
            if let Some(why) = records.room_problem(name, meta.len()) {
                return Err(refused(format!("{RECORDS_DIR}/{name}: {why}")));
            }
            // Exactly the size seen, and one byte more to notice a file
            // that grew since: never more than the limit is allocated.
            let mut bytes = Zeroizing::new(vec![0u8; meta.len() as usize]);
            let mut reader = (&file).take(meta.len() + 1);
            reader
                .read_exact(&mut bytes)
                .map_err(|e| Error::io("reading", &path, e))?;
            if reader
                .read(&mut [0u8; 1])
                .map_err(|e| Error::io("reading", &path, e))?
                != 0
            {
                return Err(Error::failure(format!(
                    "{} changed while it was read",
                    path.display()
                ))
                .with_hint("stop whatever writes to that directory and try again"));
            }
            records.insert_checked(name.to_owned(), bytes);
        }
        Ok(records)
    }

    /// Writes the records as files into `root/.safeclaw/` (a 0700
    /// directory, 0600 files), for `vault export`; nothing if there are
    /// none. `root` is a new private directory; the files are created new
    /// and never through a link.
    pub fn write_dir(&self, root: &Path) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let at = root.join(RECORDS_DIR);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&at)
            .map_err(|e| Error::io("creating", &at, e))?;
        for (name, value) in self.iter() {
            crate::private_fs::write_new(&at.join(name), value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for good in ["egress.json", "a", "0", "skills-1.2_x", &"a".repeat(64)] {
            assert_eq!(check_name(good.as_bytes()), Ok(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "-x",
            "_x",
            "Egress.json",
            "a/b",
            "a b",
            "a\0b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad.as_bytes()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn set_get_remove() {
        let mut r = Records::new();
        assert!(r.is_empty());
        r.set("egress.json", b"{}".to_vec()).unwrap();
        r.set("b", vec![1, 2, 3]).unwrap();
        assert_eq!(r.get("egress.json"), Some(&b"{}"[..]));
        assert_eq!(r.names().collect::<Vec<_>>(), ["b", "egress.json"]);
        r.set("b", vec![4]).unwrap();
        assert_eq!(r.get("b"), Some(&[4u8][..]));
        assert_eq!(r.len(), 2);
        assert!(r.remove("b"));
        assert!(!r.remove("b"));
        assert_eq!(r.get("b"), None);
        assert_eq!(r.total_bytes(), 2);
    }

    #[test]
    fn set_enforces_every_bound() {
        let mut r = Records::new();
        let err = r.set("Bad", vec![]).unwrap_err();
        assert!(
            err.message.contains("\"Bad\" cannot be stored"),
            "{}",
            err.message
        );
        assert!(err.hint.unwrap().contains("[a-z0-9][a-z0-9._-]{0,63}"));

        let err = r
            .set("big", vec![0; MAX_RECORD_BYTES as usize + 1])
            .unwrap_err();
        assert!(err.message.contains("at most 256 KiB"), "{}", err.message);
        r.set("big", vec![0; MAX_RECORD_BYTES as usize]).unwrap();

        // The total: four of the largest fill it, a fifth byte does not fit.
        for n in 1..4 {
            r.set(&format!("big{n}"), vec![0; MAX_RECORD_BYTES as usize])
                .unwrap();
        }
        let err = r.set("one-more", vec![0]).unwrap_err();
        assert!(err.message.contains("1024 KiB"), "{}", err.message);
        // Replacing one is measured without the value it replaces.
        r.set("big1", vec![0; MAX_RECORD_BYTES as usize]).unwrap();
        r.set("big1", vec![]).unwrap();

        let mut r = Records::new();
        for n in 0..MAX_RECORDS {
            r.set(&format!("r{n}"), vec![]).unwrap();
        }
        let err = r.set("r-too-many", vec![]).unwrap_err();
        assert!(
            err.message.contains("at most 32 records"),
            "{}",
            err.message
        );
        // An existing one can still be replaced at the count.
        r.set("r0", vec![1]).unwrap();
    }

    #[test]
    fn debug_shows_no_value() {
        let mut r = Records::new();
        r.set("broker.json", b"sk-live-SECRET".to_vec()).unwrap();
        let shown = format!("{r:?} {r:#?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(!shown.contains("115"), "{shown}"); // no bytes as numbers
        assert!(shown.contains("broker.json") && shown.contains("<14 bytes>"));
    }

    #[test]
    fn a_directory_round_trips_and_is_read_without_following_links() {
        let tmp = tempfile::TempDir::new().unwrap();
        let mut r = Records::new();
        r.set("egress.json", b"{\"allow\":[]}".to_vec()).unwrap();
        r.set("empty", vec![]).unwrap();
        let out = tmp.path().join("out");
        fs::create_dir(&out).unwrap();
        r.write_dir(&out).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&out.join(RECORDS_DIR)), 0o700);
        assert_eq!(mode(&out.join(RECORDS_DIR).join("egress.json")), 0o600);
        assert_eq!(Records::read_dir(&out).unwrap(), r);

        // None written for no records, and none read from no directory.
        let bare = tmp.path().join("bare");
        fs::create_dir(&bare).unwrap();
        Records::new().write_dir(&bare).unwrap();
        assert!(!bare.join(RECORDS_DIR).exists());
        assert!(Records::read_dir(&bare).unwrap().is_empty());

        // A link to a file outside, as a record or as the directory itself.
        let secret = tmp.path().join("secret");
        fs::write(&secret, "outside").unwrap();
        std::os::unix::fs::symlink(&secret, out.join(RECORDS_DIR).join("link")).unwrap();
        let err = Records::read_dir(&out).unwrap_err();
        assert!(
            err.message.contains(".safeclaw/link is not a regular file"),
            "{}",
            err.message
        );
        fs::remove_file(out.join(RECORDS_DIR).join("link")).unwrap();
        let linked = tmp.path().join("linked");
        fs::create_dir(&linked).unwrap();
        std::os::unix::fs::symlink(out.join(RECORDS_DIR), linked.join(RECORDS_DIR)).unwrap();
        let err = Records::read_dir(&linked).unwrap_err();
        assert!(
            err.message.contains("is not a directory"),
            "{}",
            err.message
        );

        // A directory, a bad name, a file beyond the size limit.
        let sub = out.join(RECORDS_DIR).join("sub");
        fs::create_dir(&sub).unwrap();
        assert!(Records::read_dir(&out).is_err());
        fs::remove_dir(&sub).unwrap();
        fs::write(out.join(RECORDS_DIR).join("Upper"), "x").unwrap();
        let err = Records::read_dir(&out).unwrap_err();
        assert!(err.message.contains("\"Upper\""), "{}", err.message);
        fs::remove_file(out.join(RECORDS_DIR).join("Upper")).unwrap();
        let big = out.join(RECORDS_DIR).join("big");
        File::create(&big)
            .unwrap()
            .set_len(MAX_RECORD_BYTES + 1)
            .unwrap();
        let err = Records::read_dir(&out).unwrap_err();
        assert!(err.message.contains("at most 256 KiB"), "{}", err.message);
    }
}

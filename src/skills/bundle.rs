//! A pinned skill's files in one canonical byte string (docs/skills.md,
//! "The bundle"): what the vault keeps, what its hash is taken over, and
//! what the guard re-encodes from the mounted copy to check it. Pure
//! functions over bytes; reading and writing directories is `tree.rs`.
//!
//! ```text
//! "safeclaw-skill v1\n"
//! count: u16 BE
//! count times, paths strictly ascending (bytewise):
//!   path length: u16 BE | path | kind: u8 (0 file, 1 executable file) |
//!   length: u32 BE | content
//! ```
//!
//! One skill has exactly one encoding: `decode` refuses anything `encode`
//! would not write (unsorted or repeated paths, a file that is also a
//! directory of another, unknown kinds, trailing bytes), so the hash of
//! the bytes is the hash of the skill. Directories are implied by paths;
//! only files count (OpenClaw's own revision hash also covers paths,
//! contents and executable flags, and nothing else).

use sha2::{Digest, Sha256};

/// What every bundle starts with.
pub const MAGIC: &[u8] = b"safeclaw-skill v1\n";
/// The file every skill has, at its top (OpenClaw's `SKILL.md`).
pub const SKILL_FILE: &str = "SKILL.md";
/// Files in one skill. Prompt-defence skills are a handful; OpenClaw's own
/// managed bundles allow 256.
pub const MAX_FILES: usize = 256;
/// Bytes of one bundle, encoding included: one vault record's limit
/// (`vault::records::MAX_RECORD_BYTES`).
pub const MAX_BUNDLE_BYTES: usize = 256 * 1024;
/// Bytes of one path, and its components.
pub const MAX_PATH_BYTES: usize = 255;
pub const MAX_DEPTH: usize = 8;

/// One file of a skill: its path under the skill's directory (`/`
/// separated), whether it is executable, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub executable: bool,
    pub content: Vec<u8>,
}

/// A skill's files, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bundle {
    pub files: Vec<File>,
}

impl Bundle {
    /// The bundle of `files` in canonical order, or why it cannot be one.
    pub fn new(mut files: Vec<File>) -> Result<Bundle, String> {
        files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        let bundle = Bundle { files };
        check(&bundle)?;
        Ok(bundle)
    }

    /// The content of `SKILL.md`.
    pub fn skill_md(&self) -> &[u8] {
        self.files
            .iter()
            .find(|f| f.path == SKILL_FILE)
            .map_or(&[][..], |f| &f.content)
    }

    /// Bytes of all contents.
    pub fn content_bytes(&self) -> usize {
        self.files.iter().map(|f| f.content.len()).sum()
    }
}

/// Checks a path: relative, `/`-separated, no empty, `.` or `..`
/// component, no control characters, within the length and depth bounds.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > MAX_PATH_BYTES {
        return Err(format!(
            "a path is 1 to {MAX_PATH_BYTES} bytes, this one {}",
            path.len()
        ));
    }
    if path.chars().any(char::is_control) {
        return Err(format!("the path {path:?} holds a control character"));
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > MAX_DEPTH {
        return Err(format!(
            "the path {path:?} is deeper than {MAX_DEPTH} levels"
        ));
    }
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(format!(
            "the path {path:?} is not a plain relative path (empty, `.` or `..` part, or a leading `/`)"
        ));
    }
    Ok(())
}

/// The rules every bundle obeys, whether read from a directory or decoded.
pub fn check(b: &Bundle) -> Result<(), String> {
    if b.files.len() > MAX_FILES {
        return Err(format!(
            "a skill has at most {MAX_FILES} files, this one {}",
            b.files.len()
        ));
    }
    for f in &b.files {
        check_path(&f.path)?;
    }
    for pair in b.files.windows(2) {
        let (a, next) = (&pair[0].path, &pair[1].path);
        if a.as_bytes() >= next.as_bytes() {
            return Err(format!("the path {next:?} is repeated or out of order"));
        }
    }
    // A file that is also a directory of another ("a" and "a/b"): sorted,
    // such a directory's files follow it, though not always at once
    // ("a", "a-b", "a/b"), so every pair of paths is looked at as a prefix.
    let mut dirs = std::collections::BTreeSet::new();
    for f in &b.files {
        let mut at = 0;
        while let Some(i) = f.path[at..].find('/') {
            dirs.insert(&f.path[..at + i]);
            at += i + 1;
        }
    }
    if let Some(f) = b.files.iter().find(|f| dirs.contains(f.path.as_str())) {
        return Err(format!("{:?} is both a file and a directory", f.path));
    }
    // Paths equal but for case cannot all be written on a file system
    // that ignores case (macOS): refused, so a pinned skill starts anywhere.
    let mut folded = std::collections::BTreeSet::new();
    if let Some(f) = b
        .files
        .iter()
        .find(|f| !folded.insert(f.path.to_lowercase()))
    {
        return Err(format!(
            "{:?} differs from another path only in case",
            f.path
        ));
    }
    if !b.files.iter().any(|f| f.path == SKILL_FILE) {
        return Err(format!("a skill has a {SKILL_FILE} at its top"));
    }
    let size = encoded_len(b);
    if size > MAX_BUNDLE_BYTES {
        return Err(format!(
            "a skill is at most {} KiB, this one {} KiB",
            MAX_BUNDLE_BYTES / 1024,
            size.div_ceil(1024)
        ));
    }
    Ok(())
}

fn encoded_len(b: &Bundle) -> usize {
    MAGIC.len()
        + 2
        + b.files
            .iter()
            .map(|f| 2 + f.path.len() + 1 + 4 + f.content.len())
            .sum::<usize>()
}

/// The canonical bytes of a checked bundle.
pub fn encode(b: &Bundle) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(b));
    out.extend_from_slice(MAGIC);
    // Within u16/u32: `check` bounds files, paths and contents.
    out.extend_from_slice(&(b.files.len() as u16).to_be_bytes());
    for f in &b.files {
        out.extend_from_slice(&(f.path.len() as u16).to_be_bytes());
        out.extend_from_slice(f.path.as_bytes());
        out.push(u8::from(f.executable));
        out.extend_from_slice(&(f.content.len() as u32).to_be_bytes());
        out.extend_from_slice(&f.content);
    }
    out
}

/// Reads a bundle, refusing anything but the one canonical encoding of a
/// bundle that passes `check`. Sizes are checked against what is left of
/// the input before anything is allocated.
pub fn decode(bytes: &[u8]) -> Result<Bundle, String> {
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(format!(
            "a skill is at most {} KiB",
            MAX_BUNDLE_BYTES / 1024
        ));
    }
    let mut rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("not a safeclaw skill bundle (version 1)")?;
    let mut take = |n: usize| -> Result<&[u8], String> {
        if rest.len() < n {
            return Err("the skill bundle is cut short".into());
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let count = usize::from(u16::from_be_bytes(take(2)?.try_into().unwrap_or_default()));
    if count > MAX_FILES {
        return Err(format!("a skill has at most {MAX_FILES} files"));
    }
    let mut files = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::from(u16::from_be_bytes(take(2)?.try_into().unwrap_or_default()));
        let path = std::str::from_utf8(take(len)?)
            .map_err(|_| "a path in the skill bundle is not UTF-8".to_string())?
            .to_string();
        let executable = match take(1)?[0] {
            0 => false,
            1 => true,
            k => return Err(format!("unknown file kind {k} in the skill bundle")),
        };
        let len = u32::from_be_bytes(take(4)?.try_into().unwrap_or_default()) as usize;
        let content = take(len)?.to_vec();
        files.push(File {
            path,
            executable,
            content,
        });
    }
    if !rest.is_empty() {
        return Err("bytes after the skill bundle's last file".into());
    }
    let b = Bundle { files };
    check(&b)?;
    Ok(b)
}

/// The hash a skill is pinned by: SHA-256 of its canonical bytes, as
/// `sha256:<64 hex digits>`.
pub fn hash(encoded: &[u8]) -> String {
    format!(
        "sha256:{}",
        crate::private_fs::hex(&Sha256::digest(encoded))
    )
}

/// The largest `SKILL.md` OpenClaw loads (bytes; larger ones it skips).
pub const MAX_SKILL_MD_BYTES: usize = 256_000;

/// Bytes of `SKILL.md` looked at for its front matter.
const FRONT_MATTER_MAX: usize = 16 * 1024;

/// The `name` in a `SKILL.md`'s YAML front matter (between a first line
/// `---` and the next), if it has one: what OpenClaw calls the skill. Only
/// a plain top-level `name: value` line counts (quotes around the value
/// are dropped); anything else is left to OpenClaw, which falls back to
/// the directory's name, as this does when it returns None.
pub fn front_matter_name(skill_md: &[u8]) -> Option<String> {
    front_matter_value(skill_md, "name")
}

/// The value of the top-level `key` in a `SKILL.md`'s front matter, read
/// as `front_matter_name` reads the name.
pub fn front_matter_value(skill_md: &[u8], key: &str) -> Option<String> {
    let head = &skill_md[..skill_md.len().min(FRONT_MATTER_MAX)];
    let text = String::from_utf8_lossy(head);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    // Bare CR ends a line too (YAML's rule).
    let mut lines = text.split(['\n', '\r']).filter(|l| !l.is_empty());
    if lines.next()?.trim_end() != "---" {
        return None;
    }
    for line in lines {
        if line.trim_end() == "---" {
            return None;
        }
        let value = [
            format!("{key}:"),
            format!("\"{key}\":"),
            format!("'{key}':"),
        ]
        .iter()
        .find_map(|k| line.strip_prefix(k.as_str()));
        if let Some(value) = value {
            let v = value.trim();
            let v = match v.chars().next() {
                Some(q @ ('"' | '\'')) => v[1..].split(q).next().unwrap_or_default(),
                // A plain scalar ends at " #" (a comment).
                _ => v.split(" #").next().unwrap_or_default(),
            };
            let v = v.trim();
            return (!v.is_empty()).then(|| v.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str) -> File {
        File {
            path: path.into(),
            executable: false,
            content: content.as_bytes().to_vec(),
        }
    }

    fn sample() -> Bundle {
        Bundle::new(vec![
            file("scripts/check.sh", "#!/bin/sh\n"),
            file("SKILL.md", "---\nname: guard\n---\nbody\n"),
            File {
                executable: true,
                ..file("bin/run", "x")
            },
        ])
        .unwrap()
    }

    #[test]
    fn a_bundle_round_trips_and_has_one_encoding() {
        let b = sample();
        let paths: Vec<&str> = b.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["SKILL.md", "bin/run", "scripts/check.sh"]);
        let bytes = encode(&b);
        assert_eq!(decode(&bytes).unwrap(), b);
        // The order files were given in does not change the hash.
        let mut reversed = b.files.clone();
        reversed.reverse();
        assert_eq!(hash(&encode(&Bundle::new(reversed).unwrap())), hash(&bytes));
        // An executable flag, a byte of content: another hash.
        let mut other = b.clone();
        other.files[1].executable = false;
        assert_ne!(hash(&encode(&other)), hash(&bytes));
        assert!(hash(&bytes).starts_with("sha256:") && hash(&bytes).len() == 71);
    }

    #[test]
    fn decode_refuses_what_encode_never_writes() {
        let bytes = encode(&sample());
        assert!(decode(&bytes[..bytes.len() - 1])
            .unwrap_err()
            .contains("cut short"));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).unwrap_err().contains("after"));
        // Two files swapped: out of order.
        let swapped = Bundle {
            files: vec![sample().files[1].clone(), sample().files[0].clone()],
        };
        assert!(decode(&encode(&swapped))
            .unwrap_err()
            .contains("out of order"));
        let mut kind = bytes.clone();
        // The first file's kind byte: magic, count, path length, "SKILL.md".
        kind[MAGIC.len() + 2 + 2 + 8] = 7;
        assert!(decode(&kind).unwrap_err().contains("kind 7"));
        assert!(decode(b"tar archive")
            .unwrap_err()
            .contains("not a safeclaw"));
    }

    #[test]
    fn paths_and_shapes_are_checked() {
        for bad in ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a\nb"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_path(&"a/".repeat(MAX_DEPTH)).is_err());
        assert!(check_path("refs/patterns.yaml").is_ok());
        let no_skill = Bundle::new(vec![file("README.md", "")]).unwrap_err();
        assert!(no_skill.contains("SKILL.md"), "{no_skill}");
        let both = Bundle::new(vec![
            file("SKILL.md", ""),
            file("a", ""),
            file("a-b", ""),
            file("a/b", ""),
        ])
        .unwrap_err();
        assert!(both.contains("both a file and a directory"), "{both}");
        let big = Bundle::new(vec![File {
            content: vec![b'x'; MAX_BUNDLE_BYTES],
            ..file("SKILL.md", "")
        }])
        .unwrap_err();
        assert!(big.contains("at most 256 KiB"), "{big}");
    }

    #[test]
    fn front_matter_gives_the_name_openclaw_shows() {
        assert_eq!(
            front_matter_name(b"---\nname: prompt-guard\ndescription: x\n---\n").as_deref(),
            Some("prompt-guard")
        );
        assert_eq!(
            front_matter_name(b"---\r\ndescription: x\r\nname: \"acip\"\r\n---\r\n").as_deref(),
            Some("acip")
        );
        assert_eq!(
            front_matter_name(b"---\ndescription: x\n---\nname: late\n"),
            None
        );
        assert_eq!(front_matter_name(b"# no front matter\nname: x\n"), None);
        assert_eq!(front_matter_name(b"---\nname:\n---\n"), None);
        // What YAML reads as the name, as OpenClaw's parser does.
        for (text, name) in [
            (&b"---\n\"name\": guard\n---\n"[..], "guard"),
            (b"---\nname: guard # c\n---\n", "guard"),
            (b"---\nname: ' guard '\n---\n", "guard"),
            (b"---\rname: guard\r---\r", "guard"),
        ] {
            assert_eq!(front_matter_name(text).as_deref(), Some(name), "{text:?}");
        }
    }
}

//! Skills on disk: a bundle read from a directory or a tar archive (`skills
//! add`, and the guard re-reading the mounted copy to check it), written
//! out for the container's read-only mount (`materialize`), and the
//! `SKILL.md` files found in a state the agent writes (`scan`). Links are
//! never followed: a skill is pinned as files.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::bundle::{self, Bundle};
use super::pinned::Pinned;
use crate::error::{Error, Result};

/// A version-control directory is not part of a skill (a `git clone` of
/// one has it): left out of every bundle, wherever it is read from.
const SKIPPED_DIR: &str = ".git";
/// Bytes a tar archive may inflate to while it is read (the skill inside
/// is at most `bundle::MAX_BUNDLE_BYTES`; this bounds what is skipped).
const MAX_ARCHIVE_READ: u64 = 64 << 20;
/// Entries of an archive looked at.
const MAX_ARCHIVE_ENTRIES: usize = 4 * bundle::MAX_FILES;

fn refused(what: &Path, why: impl std::fmt::Display) -> Error {
    Error::usage(format!("{} cannot be pinned: {why}", what.display()))
}

/// The skill at `path`: a directory, or a `.tar`/`.tar.gz` archive of one
/// (its files at the top, or under one top-level directory, as GitHub's
/// archives have them).
pub fn read_source(path: &Path) -> Result<Bundle> {
    let meta = fs::symlink_metadata(path).map_err(|e| Error::io("reading", path, e))?;
    if meta.is_dir() {
        return read_dir(path).map_err(|why| refused(path, why));
    }
    let mut file = crate::private_fs::open_regular(path)?;
    let mut magic = [0u8; 4];
    let n = file
        .read(&mut magic)
        .map_err(|e| Error::io("reading", path, e))?;
    let file = crate::private_fs::open_regular(path)?;
    let read = match &magic[..n] {
        [0x1f, 0x8b, ..] => read_tar(flate2::read::MultiGzDecoder::new(file)),
        [b'P', b'K', 3, 4] => {
            return Err(refused(path, "a zip archive is not read here").with_hint(
                "unpack it first (`unzip -d DIR FILE.zip`) and pass the directory: you see what you pin",
            ))
        }
        _ => read_tar(file),
    };
    read.map_err(|why| refused(path, why))
}

/// A skill's directory as a bundle: regular files and directories only,
/// `.git` left out; a link, a FIFO or a device is refused.
pub fn read_dir(root: &Path) -> std::result::Result<Bundle, String> {
    let mut files = Vec::new();
    let mut total = 0usize;
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
            let name = entry.file_name();
            let name = name
                .to_str()
                .ok_or_else(|| format!("a name in {:?} is not UTF-8", dir.display()))?;
            let rel = format!("{prefix}{name}");
            let kind = entry
                .file_type()
                .map_err(|e| format!("reading {rel}: {e}"))?;
            if kind.is_dir() {
                if name != SKIPPED_DIR {
                    bundle::check_path(&rel)?;
                    pending.push((entry.path(), format!("{rel}/")));
                }
                continue;
            }
            if !kind.is_file() {
                return Err(format!(
                    "{rel:?} is {}; a skill is pinned as regular files",
                    if kind.is_symlink() {
                        "a symbolic link"
                    } else {
                        "not a regular file"
                    }
                ));
            }
            if files.len() >= bundle::MAX_FILES {
                return Err(format!("a skill has at most {} files", bundle::MAX_FILES));
            }
            let file = crate::private_fs::open_regular(&entry.path()).map_err(|e| e.message)?;
            let meta = file.metadata().map_err(|e| format!("reading {rel}: {e}"))?;
            total = total.saturating_add(meta.len() as usize);
            if total > bundle::MAX_BUNDLE_BYTES {
                return Err(format!(
                    "a skill is at most {} KiB",
                    bundle::MAX_BUNDLE_BYTES / 1024
                ));
            }
            let mut content = Vec::with_capacity(meta.len() as usize);
            file.take(bundle::MAX_BUNDLE_BYTES as u64)
                .read_to_end(&mut content)
                .map_err(|e| format!("reading {rel}: {e}"))?;
            files.push(bundle::File {
                path: rel,
                executable: meta.permissions().mode() & 0o111 != 0,
                content,
            });
        }
    }
    Bundle::new(files)
}

/// A tar stream's skill. Entries are hostile: only regular files and
/// directories, paths checked, sizes checked before reading.
fn read_tar(stream: impl Read) -> std::result::Result<Bundle, String> {
    let mut archive = tar::Archive::new(stream.take(MAX_ARCHIVE_READ));
    let mut files = Vec::new();
    let mut total = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?;
    for (i, entry) in entries.enumerate() {
        if i >= MAX_ARCHIVE_ENTRIES {
            return Err(format!("more than {MAX_ARCHIVE_ENTRIES} entries"));
        }
        let mut entry = entry.map_err(|e| format!("reading the archive: {e}"))?;
        let path = entry.path_bytes().into_owned();
        let path = String::from_utf8(path).map_err(|_| "a path is not UTF-8".to_string())?;
        let path = path
            .strip_prefix("./")
            .unwrap_or(&path)
            .trim_end_matches('/')
            .to_string();
        let kind = entry.header().entry_type();
        if path.is_empty() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        if path.split('/').any(|p| p == SKIPPED_DIR) {
            continue;
        }
        if kind.is_dir() {
            bundle::check_path(&path)?;
            continue;
        }
        if !kind.is_file() {
            return Err(format!(
                "{path:?} is not a regular file (a link or a device); a skill is pinned as regular files"
            ));
        }
        bundle::check_path(&path)?;
        let size = entry.size();
        total = total.saturating_add(size);
        if total > bundle::MAX_BUNDLE_BYTES as u64 || files.len() >= bundle::MAX_FILES {
            return Err(format!(
                "a skill is at most {} KiB in at most {} files",
                bundle::MAX_BUNDLE_BYTES / 1024,
                bundle::MAX_FILES
            ));
        }
        let mode = entry.header().mode().unwrap_or(0o644);
        let mut content = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(size)
            .read_to_end(&mut content)
            .map_err(|e| format!("reading {path}: {e}"))?;
        files.push(bundle::File {
            path,
            executable: mode & 0o111 != 0,
            content,
        });
    }
    Bundle::new(strip_top_dir(files))
        .map_err(|why| format!("{why} (of the archive, or of its one top-level directory)"))
}

/// Files all under one top-level directory, with no `SKILL.md` above it,
/// lose that directory (`repo-main/SKILL.md` becomes `SKILL.md`).
fn strip_top_dir(files: Vec<bundle::File>) -> Vec<bundle::File> {
    let top = |f: &bundle::File| f.path.split_once('/').map(|(t, _)| t.to_string());
    let Some(first) = files.first().and_then(top) else {
        return files;
    };
    if !files
        .iter()
        .all(|f| top(f).as_deref() == Some(first.as_str()))
    {
        return files;
    }
    files
        .into_iter()
        .map(|mut f| {
            f.path = f.path[first.len() + 1..].to_string();
            f
        })
        .collect()
}

/// Writes the pinned skills under `dir` (made anew: whatever was there is
/// removed), one directory per skill, readable by any uid (the
/// container's user may be another than safeclaw's; `dir`'s parent is
/// private) and mounted read-only into the container.
pub fn materialize(dir: &Path, pinned: &[Pinned]) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {
            fs::remove_dir_all(dir).map_err(|e| Error::io("removing", dir, e))?
        }
        Ok(_) => fs::remove_file(dir).map_err(|e| Error::io("removing", dir, e))?,
        Err(_) => {}
    }
    let mkdir = |d: &Path| {
        fs::DirBuilder::new()
            .mode(0o755)
            .create(d)
            .map_err(|e| Error::io("creating", d, e))?;
        // The umask may have narrowed it.
        fs::set_permissions(d, fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io("creating", d, e))
    };
    mkdir(dir)?;
    for p in pinned {
        let root = dir.join(&p.entry.name);
        mkdir(&root)?;
        for f in &p.bundle.files {
            let path = root.join(&f.path);
            let mut at = root.clone();
            if let Some((parents, _)) = f.path.rsplit_once('/') {
                for part in parents.split('/') {
                    at.push(part);
                    if !at.is_dir() {
                        mkdir(&at)?;
                    }
                }
            }
            let mode = if f.executable { 0o755 } else { 0o644 };
            let mut out: File = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|e| Error::io("writing", &path, e))?;
            out.write_all(&f.content)
                .map_err(|e| Error::io("writing", &path, e))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io("writing", &path, e))?;
        }
    }
    Ok(())
}

/// Checks that `dir/<name>` holds exactly each pinned skill's files (by
/// their hash); the first that does not is named.
pub fn verify(dir: &Path, pinned: &[Pinned]) -> std::result::Result<(), String> {
    for p in pinned {
        let root = dir.join(&p.entry.name);
        let found = read_dir(&root)
            .map(|b| bundle::hash(&bundle::encode(&b)))
            .map_err(|why| format!("the pinned skill {}: {why}", p.entry.name))?;
        if found != p.entry.sha256 {
            return Err(format!(
                "the pinned skill {} at {} does not match the vault's hash (found {found}, pinned {})",
                p.entry.name,
                root.display(),
                p.entry.sha256
            ));
        }
    }
    Ok(())
}

/// A `SKILL.md` found in a state: where (relative to the state), and the
/// name OpenClaw gives it (its front matter's, or its directory's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: String,
    pub name: String,
}

/// Bounds of a scan of the agent's state: it is walked at every checkpoint.
const SCAN_MAX_ENTRIES: usize = 200_000;
const SCAN_MAX_DEPTH: usize = 32;
const SCAN_MAX_FOUND: usize = 1000;

/// Every `SKILL.md` (a regular file) under `root`, links not followed,
/// within bounds: OpenClaw finds skills up to 6 levels under each of its
/// roots, and several roots are in the state.
pub fn scan(root: &Path) -> Vec<Found> {
    let mut found = Vec::new();
    let mut seen = 0usize;
    let mut pending = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > SCAN_MAX_ENTRIES || found.len() >= SCAN_MAX_FOUND {
                return found;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            // What `link` moved aside is no skill root of OpenClaw's.
            if depth == 0 && entry.file_name() == DISPLACED_DIR {
                continue;
            }
            if kind.is_dir() && depth < SCAN_MAX_DEPTH {
                pending.push((path, depth + 1));
            } else if kind.is_file() && entry.file_name() == bundle::SKILL_FILE {
                if let Some(f) = found_at(root, &path) {
                    found.push(f);
                }
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

fn found_at(root: &Path, path: &Path) -> Option<Found> {
    let file = crate::private_fs::open_regular(path).ok()?;
    let mut head = Vec::new();
    file.take(16 * 1024).read_to_end(&mut head).ok()?;
    let dir_name = path.parent()?.file_name()?.to_string_lossy().into_owned();
    let rel = path.strip_prefix(root).ok()?.to_string_lossy().into_owned();
    Some(Found {
        path: rel,
        name: bundle::front_matter_name(&head).unwrap_or(dir_name),
    })
}

/// What the guard did to OpenClaw's managed skills directory at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linked {
    /// An entry of a pinned skill's name, not safeclaw's link, was moved
    /// out of the skills directory to `to` (relative to the state).
    Displaced { name: String, to: String },
}

/// The directory of the state that entries displaced by `link` go to: not
/// under any of OpenClaw's skill roots.
pub const DISPLACED_DIR: &str = "safeclaw-displaced";

/// Makes `<state>/skills/<name>` a link to `<mount>/<name>` for each
/// pinned skill: OpenClaw's managed skills (`<state-dir>/skills`, which
/// may hold linked skill folders) rank above its bundled, workshop and
/// extra skills, so a pinned skill wins over all of them. Whatever stood
/// there under that name is moved to `DISPLACED_DIR`; links to `mount` of
/// skills no longer pinned are removed. Nothing is followed.
pub fn link(state: &Path, mount: &Path, names: &[&str]) -> Result<Vec<Linked>> {
    let mut done = Vec::new();
    let skills = state.join("skills");
    match fs::symlink_metadata(&skills) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            let to = displace(state, &skills)?;
            done.push(Linked::Displaced {
                name: "skills".into(),
                to,
            });
            create_dir(&skills)?;
        }
        Err(_) => create_dir(&skills)?,
    }
    // The gateway shares the guard's uid and could have taken write
    // permission away (modes are sealed and restored): given back, links
    // never followed, so that no mode it set can stop every start.
    let writable = |d: &Path| -> Result<()> {
        if fs::symlink_metadata(d).is_ok_and(|m| m.is_dir()) {
            fs::set_permissions(d, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io("changing the mode of", d, e))?;
        }
        Ok(())
    };
    writable(&skills)?;
    // A SKILL.md at the top makes OpenClaw take the whole directory for one
    // skill and skip the links in it (measured).
    let top = skills.join(bundle::SKILL_FILE);
    if fs::symlink_metadata(&top).is_ok() {
        writable(&top)?;
        let to = displace(state, &top)?;
        done.push(Linked::Displaced {
            name: bundle::SKILL_FILE.into(),
            to,
        });
    }
    let ours = |target: &Path| target.starts_with(mount);
    for entry in fs::read_dir(&skills).map_err(|e| Error::io("reading", &skills, e))? {
        let entry = entry.map_err(|e| Error::io("reading", &skills, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        if ours(&target) && !names.contains(&name.as_str()) {
            fs::remove_file(entry.path()).map_err(|e| Error::io("removing", &entry.path(), e))?;
        }
    }
    for name in names {
        let at = skills.join(name);
        let want = mount.join(name);
        match fs::symlink_metadata(&at) {
            Err(_) => {}
            Ok(m)
                if m.file_type().is_symlink() && fs::read_link(&at).ok() == Some(want.clone()) =>
            {
                continue
            }
            Ok(_) => {
                // A directory moved to another parent needs its own write
                // permission (its `..` changes).
                writable(&at)?;
                let to = displace(state, &at)?;
                done.push(Linked::Displaced {
                    name: name.to_string(),
                    to,
                });
            }
        }
        std::os::unix::fs::symlink(&want, &at).map_err(|e| Error::io("linking", &at, e))?;
    }
    Ok(done)
}

fn create_dir(d: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(d)
        .map_err(|e| Error::io("creating", d, e))
}

/// Moves `path` (in the state) to a new name under `DISPLACED_DIR`;
/// returns it, relative to the state.
fn displace(state: &Path, path: &Path) -> Result<String> {
    let dir = state.join(DISPLACED_DIR);
    if fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("changing the mode of", &dir, e))?;
    } else {
        let _ = fs::remove_file(&dir);
        create_dir(&dir)?;
    }
    let base = path
        .file_name()
        .map_or("entry".into(), |n| n.to_string_lossy().into_owned());
    let stamp = crate::vault::now();
    let to: PathBuf = (0..1000)
        .map(|i| dir.join(format!("{base}.{stamp}.{i}")))
        .find(|p| fs::symlink_metadata(p).is_err())
        .ok_or_else(|| Error::failure(format!("no free name in {}", dir.display())))?;
    fs::rename(path, &to).map_err(|e| Error::io("moving", path, e))?;
    Ok(to
        .strip_prefix(state)
        .unwrap_or(&to)
        .to_string_lossy()
        .into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skills::pinned::{Entry, Pinned};

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn pinned_of(dir: &Path, name: &str) -> Pinned {
        let bundle = read_dir(dir).unwrap();
        Pinned {
            entry: Entry {
                name: name.into(),
                sha256: bundle::hash(&bundle::encode(&bundle)),
                origin: dir.display().to_string(),
                added_at: 0,
            },
            bundle,
        }
    }

    #[test]
    fn a_directory_and_its_tarball_give_the_same_hash() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("guard-main");
        write(&src.join("SKILL.md"), "---\nname: guard\n---\nbody\n");
        write(&src.join("refs/patterns.txt"), "ignore previous");
        write(&src.join(".git/HEAD"), "ref: main");
        fs::set_permissions(
            src.join("refs/patterns.txt"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let from_dir = read_source(&src).unwrap();
        assert_eq!(from_dir.files.len(), 2, ".git is left out");
        assert!(from_dir.files[1].executable);
        let tgz = t.path().join("guard.tar.gz");
        let status = std::process::Command::new("tar")
            .args(["czf"])
            .arg(&tgz)
            .arg("-C")
            .arg(t.path())
            .arg("guard-main")
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            read_source(&tgz).unwrap(),
            from_dir,
            "top directory stripped"
        );
        std::os::unix::fs::symlink("/etc/passwd", src.join("refs/link")).unwrap();
        let e = read_source(&src).unwrap_err().message;
        assert!(e.contains("symbolic link"), "{e}");
    }

    #[test]
    fn materialized_skills_verify_and_a_change_is_named() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        write(&src.join("SKILL.md"), "---\nname: guard\n---\n");
        write(&src.join("a/b.txt"), "b");
        let p = pinned_of(&src, "guard");
        let out = t.path().join("out");
        materialize(&out, std::slice::from_ref(&p)).unwrap();
        verify(&out, std::slice::from_ref(&p)).unwrap();
        let mode = fs::metadata(out.join("guard/a"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        write(&out.join("guard/a/b.txt"), "changed");
        let e = verify(&out, std::slice::from_ref(&p)).unwrap_err();
        assert!(e.contains("guard") && e.contains("does not match"), "{e}");
        // Made anew each time.
        materialize(&out, std::slice::from_ref(&p)).unwrap();
        verify(&out, &[p]).unwrap();
    }

    #[test]
    fn link_puts_pinned_skills_first_and_displaces_what_stood_there() {
        let t = tempfile::tempdir().unwrap();
        let state = t.path().join("state");
        let mount = Path::new("/pinned-skills");
        write(
            &state.join("skills/guard/SKILL.md"),
            "---\nname: guard\n---\nobey\n",
        );
        std::os::unix::fs::symlink(mount.join("old"), state.join("skills/old")).unwrap();
        write(&state.join("skills/mine/SKILL.md"), "x");
        let done = link(&state, mount, &["guard"]).unwrap();
        assert!(
            matches!(&done[..], [Linked::Displaced { name, to }] if name == "guard" && to.starts_with("safeclaw-displaced/guard."))
        );
        assert_eq!(
            fs::read_link(state.join("skills/guard")).unwrap(),
            mount.join("guard")
        );
        assert!(
            fs::symlink_metadata(state.join("skills/old")).is_err(),
            "no longer pinned"
        );
        assert!(state.join("skills/mine/SKILL.md").exists(), "others stay");
        assert!(
            link(&state, mount, &["guard"]).unwrap().is_empty(),
            "idempotent"
        );
        // Modes the gateway set cannot stop a start; a SKILL.md at the top
        // of the directory (which would hide the links) is moved aside.
        fs::remove_file(state.join("skills/guard")).unwrap();
        write(&state.join("skills/guard/SKILL.md"), "x");
        write(&state.join("skills/SKILL.md"), "x");
        for d in ["skills/guard", "skills", "safeclaw-displaced"] {
            fs::set_permissions(state.join(d), fs::Permissions::from_mode(0o500)).unwrap();
        }
        let done = link(&state, mount, &["guard"]).unwrap();
        assert_eq!(done.len(), 2, "{done:?}");
        assert!(fs::symlink_metadata(state.join("skills/SKILL.md")).is_err());
        assert_eq!(
            fs::read_link(state.join("skills/guard")).unwrap(),
            mount.join("guard")
        );
        // A `skills` that is a link elsewhere is moved aside, not followed.
        fs::remove_dir_all(state.join("skills")).unwrap();
        std::os::unix::fs::symlink("/etc", state.join("skills")).unwrap();
        let done = link(&state, mount, &["guard"]).unwrap();
        assert_eq!(done.len(), 1);
        assert!(fs::symlink_metadata(state.join("skills")).unwrap().is_dir());
    }

    #[test]
    fn scan_finds_skills_by_the_name_openclaw_gives_them() {
        let t = tempfile::tempdir().unwrap();
        let state = t.path();
        write(
            &state.join("workspace/skills/evil/SKILL.md"),
            "---\nname: guard\n---\n",
        );
        write(
            &state.join("workspace/.agents/skills/helper/SKILL.md"),
            "no front matter",
        );
        std::os::unix::fs::symlink("/pinned-skills/guard", state.join("guard-link")).unwrap();
        write(
            &state.join("safeclaw-displaced/guard.1.0/SKILL.md"),
            "---\nname: guard\n---\n",
        );
        let found = scan(state);
        assert_eq!(
            found,
            [
                Found {
                    path: "workspace/.agents/skills/helper/SKILL.md".into(),
                    name: "helper".into()
                },
                Found {
                    path: "workspace/skills/evil/SKILL.md".into(),
                    name: "guard".into()
                },
            ]
        );
    }
}

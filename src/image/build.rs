//! Builds an image locally through the Engine API, from files on this host
//! and no registry: `FROM scratch`, the given files, safeclaw as the
//! entrypoint, a non-root user. Used for the test image (a stand-in
//! gateway) and for the image twin that runs the real OpenClaw
//! (`image_twin`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use bollard::query_parameters::BuildImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;

use crate::error::{Class, Error, Result};
use crate::runtime::layout::{
    CHECKPOINT_DIR, FALLBACK_UID, HOME_DIR, SAFECLAW_IN_IMAGE, STATE_DIR, VAULT_DIR,
};

/// One path of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A file copied from this host, with its mode.
    File(PathBuf, u32),
    /// A symbolic link to the given target.
    Symlink(String),
}

/// The image's contents: path inside -> entry.
pub type Files = BTreeMap<String, Entry>;

/// What goes into an image besides its files.
#[derive(Debug, Clone, Default)]
pub struct Recipe {
    pub files: Files,
    /// `PATH` inside the image.
    pub path_env: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// The shared libraries `binary` loads, from `ldd`, at their own paths.
pub fn libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| Error::failure(format!("running ldd: {e}")))?;
    if !out.status.success() {
        // A static binary needs nothing.
        return Ok(Vec::new());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with('/'))
                .map(PathBuf::from)
        })
        .collect())
}

/// Adds `binary` at `inside` and the shared libraries it loads.
pub fn add_binary(files: &mut Files, inside: &str, binary: &Path) -> Result<()> {
    files.insert(inside.to_string(), Entry::File(binary.to_path_buf(), 0o755));
    for lib in libraries(binary)? {
        files.insert(lib.display().to_string(), Entry::File(lib, 0o755));
    }
    Ok(())
}

/// Names resolve from /etc/hosts first, then DNS: without this file,
/// glibc asks DNS first and stops at its answer, so `ExtraHosts` entries
/// (the egress proxy's tests, an operator's pinned address) would never be
/// read.
pub const NSSWITCH: &[u8] = b"hosts: files dns\n";

/// The stand-in image: safeclaw and the stand-in gateway as `openclaw`.
pub fn standin_files(safeclaw: &Path, standin: &Path) -> Result<Files> {
    let mut files = Files::new();
    add_binary(&mut files, SAFECLAW_IN_IMAGE, safeclaw)?;
    add_binary(&mut files, "/usr/local/bin/openclaw", standin)?;
    Ok(files)
}

/// Builds `tag` from `files` (the stand-in image).
pub async fn build(docker: &Docker, tag: &str, files: &Files) -> Result<()> {
    let recipe = Recipe {
        files: files.clone(),
        ..Recipe::default()
    };
    build_recipe(docker, tag, &recipe, &indicatif::ProgressBar::hidden()).await
}

/// Builds `tag` from `recipe`. The image declares no secrets, no ports, no
/// volumes; runtime hardening is in `runtime::spec`. The build context is
/// written to a temporary file first (it holds no secret: program files
/// only) and streamed from there, so a large image costs no memory.
pub async fn build_recipe(
    docker: &Docker,
    tag: &str,
    recipe: &Recipe,
    progress: &indicatif::ProgressBar,
) -> Result<()> {
    let context_path = std::env::temp_dir().join(format!(
        "safeclaw-build-context-{}.tar",
        crate::private_fs::hex(&crate::vault::crypto::random_array::<6>())
    ));
    // The image this tag named before: once the tag moves, it would stay
    // behind as a dangling `<none>` image.
    let before = docker.inspect_image(tag).await.ok().and_then(|i| i.id);
    let result = async {
        let file = std::fs::File::create(&context_path)
            .map_err(|e| Error::io("creating", &context_path, e))?;
        let file = write_context(recipe, std::io::BufWriter::new(file))?
            .into_inner()
            .map_err(|e| Error::io("writing", &context_path, e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io("writing", &context_path, e))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io("reading", &context_path, e))?
            .len();
        progress.set_length(size);
        let reader = std::fs::File::open(&context_path)
            .map_err(|e| Error::io("reading", &context_path, e))?;
        send(docker, tag, reader, progress.clone()).await
    }
    .await;
    let _ = std::fs::remove_file(&context_path);
    if result.is_ok() {
        remove_replaced(docker, tag, before).await;
    }
    result
}

/// Removes the image `tag` named before a build, if the build moved the
/// tag and nothing else uses it (not forced: an image a container or
/// another tag still uses stays).
async fn remove_replaced(docker: &Docker, tag: &str, before: Option<String>) {
    let Some(before) = before else { return };
    let now = docker.inspect_image(tag).await.ok().and_then(|i| i.id);
    if now.as_deref() != Some(before.as_str()) {
        let _ = docker
            .remove_image(
                &before,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await;
    }
}

async fn send(
    docker: &Docker,
    tag: &str,
    mut reader: std::fs::File,
    progress: indicatif::ProgressBar,
) -> Result<()> {
    let chunks = futures_util::stream::iter(std::iter::from_fn(move || {
        let mut buf = vec![0u8; 1 << 20];
        match reader.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                progress.inc(n as u64);
                Some(Ok(bytes::Bytes::from(buf)))
            }
            Err(e) => Some(Err(e)),
        }
    }));
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .networkmode("none")
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_try_stream(chunks)));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| Error::new(Class::Engine, format!("building {tag}: {e}")))?;
        if let Some(detail) = info.error_detail {
            return Err(Error::new(
                Class::Engine,
                format!("building {tag}: {}", detail.message.unwrap_or_default()),
            ));
        }
    }
    Ok(())
}

/// The Dockerfile of a recipe: pure, so tests can read it.
pub fn dockerfile(recipe: &Recipe) -> String {
    let mut d = String::from("FROM scratch\nCOPY rootfs/ /\n");
    if let Some(path) = &recipe.path_env {
        d.push_str(&format!("ENV PATH={path}\n"));
    }
    for (k, v) in &recipe.labels {
        // JSON strings are valid Dockerfile quoted words.
        let quote = |s: &str| serde_json::Value::from(s).to_string();
        d.push_str(&format!("LABEL {}={}\n", quote(k), quote(v)));
    }
    d.push_str(&format!(
        "USER {FALLBACK_UID}:{FALLBACK_UID}\nENTRYPOINT [\"{SAFECLAW_IN_IMAGE}\"]\n"
    ));
    d
}

fn write_context<W: Write>(recipe: &Recipe, out: W) -> Result<W> {
    let passwd = format!("root:x:0:0::/:/nonexistent\nopenclaw:x:{FALLBACK_UID}:{FALLBACK_UID}::{HOME_DIR}:/nonexistent\n");
    let group = format!("root:x:0:\nopenclaw:x:{FALLBACK_UID}:\n");
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let err = |e: std::io::Error| Error::failure(format!("making the build context: {e}"));
    let header = |size: u64, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(0);
        h
    };
    let add = |b: &mut tar::Builder<W>, path: &str, data: &[u8], mode: u32| -> Result<()> {
        b.append_data(&mut header(data.len() as u64, mode), path, data)
            .map_err(err)
    };
    add(&mut b, "Dockerfile", dockerfile(recipe).as_bytes(), 0o644)?;
    add(&mut b, "rootfs/etc/passwd", passwd.as_bytes(), 0o644)?;
    add(&mut b, "rootfs/etc/group", group.as_bytes(), 0o644)?;
    add(&mut b, "rootfs/etc/nsswitch.conf", NSSWITCH, 0o644)?;
    // The engine copies a tmpfs mount point's mode from the image into the
    // tmpfs ("tmpcopyup"), overriding the mount's mode=0700 (measured: a
    // 0755 /state in the image gave a 0755 tmpfs, which OpenClaw's own
    // audit flags as fs.state_dir.perms_readable): the image's mount points
    // are 0700 themselves.
    for dir in [STATE_DIR, CHECKPOINT_DIR, HOME_DIR, "/tmp"] {
        let mut h = header(0, 0o700);
        h.set_entry_type(tar::EntryType::Directory);
        b.append_data(&mut h, format!("rootfs{dir}/"), std::io::empty())
            .map_err(err)?;
    }
    add(&mut b, &format!("rootfs{VAULT_DIR}/.keep"), b"", 0o644)?;
    for (inside, entry) in &recipe.files {
        let name = format!("rootfs{inside}");
        match entry {
            Entry::File(host, mode) => {
                let file = std::fs::File::open(host).map_err(|e| Error::io("reading", host, e))?;
                let size = file
                    .metadata()
                    .map_err(|e| Error::io("reading", host, e))?
                    .len();
                b.append_data(&mut header(size, *mode), &name, file)
                    .map_err(|e| Error::io("reading", host, e))?;
            }
            Entry::Symlink(target) => {
                let mut h = header(0, 0o777);
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, &name, target).map_err(err)?;
            }
        }
    }
    b.into_inner().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_is_scratch_non_root_with_safeclaw_as_entrypoint() {
        let mut recipe = Recipe {
            path_env: Some("/usr/local/bin:/bin".into()),
            ..Recipe::default()
        };
        recipe
            .labels
            .insert("org.safeclaw.openclaw".into(), "2026.9.6".into());
        let d = dockerfile(&recipe);
        assert_eq!(
            d,
            format!(
                "FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/bin\n\
                 LABEL \"org.safeclaw.openclaw\"=\"2026.9.6\"\n\
                 USER {FALLBACK_UID}:{FALLBACK_UID}\nENTRYPOINT [\"{SAFECLAW_IN_IMAGE}\"]\n"
            )
        );
    }
}

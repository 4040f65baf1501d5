//! Builds an image locally through the Engine API, from files on this host
//! and no registry: `FROM scratch`, the given files, safeclaw as the
//! entrypoint, a non-root user. Used for the test image (a stand-in
//! gateway) and, later, for the image twin that runs the real OpenClaw.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bollard::query_parameters::BuildImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;

use crate::container_spec::{FALLBACK_UID, HOME_DIR, SAFECLAW_IN_IMAGE, STATE_DIR, VAULT_DIR};
use crate::error::{Class, Error, Result};

/// Files of the image: path inside -> (path on this host, mode).
pub type Files = BTreeMap<String, (PathBuf, u32)>;

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

/// The stand-in image: safeclaw and the stand-in gateway as `openclaw`.
pub fn standin_files(safeclaw: &Path, standin: &Path) -> Result<Files> {
    let mut files = Files::new();
    files.insert(
        SAFECLAW_IN_IMAGE.to_string(),
        (safeclaw.to_path_buf(), 0o755),
    );
    files.insert(
        "/usr/local/bin/openclaw".to_string(),
        (standin.to_path_buf(), 0o755),
    );
    for bin in [safeclaw, standin] {
        for lib in libraries(bin)? {
            files.insert(lib.display().to_string(), (lib, 0o755));
        }
    }
    Ok(files)
}

/// Builds `tag` from `files`. The image declares no secrets, no ports, no
/// volumes; runtime hardening is in `container_spec`.
pub async fn build(docker: &Docker, tag: &str, files: &Files) -> Result<()> {
    let context = context_tar(files)?;
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .networkmode("none")
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
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

fn context_tar(files: &Files) -> Result<Vec<u8>> {
    let dockerfile = format!(
        "FROM scratch\nCOPY rootfs/ /\nUSER {FALLBACK_UID}:{FALLBACK_UID}\nENTRYPOINT [\"{SAFECLAW_IN_IMAGE}\"]\n"
    );
    let passwd = format!("root:x:0:0::/:/nonexistent\nopenclaw:x:{FALLBACK_UID}:{FALLBACK_UID}::{HOME_DIR}:/nonexistent\n");
    let group = format!("root:x:0:\nopenclaw:x:{FALLBACK_UID}:\n");
    let mut b = tar::Builder::new(Vec::new());
    let err = |e: std::io::Error| Error::failure(format!("making the build context: {e}"));
    let mut add = |path: &str, data: &[u8], mode: u32| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(0);
        b.append_data(&mut h, path, data).map_err(err)
    };
    add("Dockerfile", dockerfile.as_bytes(), 0o644)?;
    add("rootfs/etc/passwd", passwd.as_bytes(), 0o644)?;
    add("rootfs/etc/group", group.as_bytes(), 0o644)?;
    for dir in [STATE_DIR, VAULT_DIR, HOME_DIR, "/tmp"] {
        add(&format!("rootfs{dir}/.keep"), b"", 0o644)?;
    }
    for (inside, (host, mode)) in files {
        let data = std::fs::read(host).map_err(|e| Error::io("reading", host, e))?;
        add(&format!("rootfs{inside}"), &data, *mode)?;
    }
    b.into_inner().map_err(err)
}

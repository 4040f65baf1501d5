//! Host checks: safeclaw's home and vault files, plaintext the guide's
//! setup leaves behind, and how the engine is exposed.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{Area, Finding, Findings, Severity};

/// The owner a safeclaw file may have: the user, or when the user is root
/// the container's user safeclaw hands the vault to (start.rs).
fn owner_ok(owner: u32, uid: u32) -> bool {
    owner == uid || (uid == 0 && owner == crate::runtime::layout::FALLBACK_UID)
}

/// safeclaw's home (0700, ours) and every vault file in it (0600, ours).
pub fn check_home(home: &Path, uid: u32) -> Vec<Finding> {
    let mut out = Findings::new(Area::Host);
    let Ok(meta) = std::fs::symlink_metadata(home) else {
        out.add(
            "host.no-safeclaw-home",
            Severity::Info,
            "no safeclaw home",
            format!("{} does not exist", home.display()),
            "safeclaw onboard or safeclaw vault migrate creates it",
            "safeclaw",
        );
        return out.into_vec();
    };
    let mode = meta.mode() & 0o7777;
    if meta.file_type().is_symlink() || !meta.is_dir() {
        out.add(
            "host.home-not-a-directory",
            Severity::Medium,
            "safeclaw's home is not a plain directory",
            format!(
                "{} is a {}",
                home.display(),
                if meta.file_type().is_symlink() {
                    "symlink"
                } else {
                    "file"
                }
            ),
            "make it a directory of its own, mode 0700",
            "safeclaw",
        );
        return out.into_vec();
    }
    if mode & 0o077 != 0 {
        out.add(
            "host.home-permissions",
            Severity::Medium,
            "safeclaw's home is open to other users",
            format!("{} has mode {mode:04o}", home.display()),
            &format!("chmod 700 {}", home.display()),
            "safeclaw: files 0600, directories 0700",
        );
    }
    if !owner_ok(meta.uid(), uid) {
        out.add(
            "host.home-owner",
            Severity::Medium,
            "safeclaw's home belongs to another user",
            format!(
                "{} is owned by uid {}, not {uid}",
                home.display(),
                meta.uid()
            ),
            &format!("chown -R {uid} {}", home.display()),
            "safeclaw",
        );
    }
    let vault_dir = home.join(crate::paths::VAULT_DIR);
    if let Ok(meta) = std::fs::symlink_metadata(&vault_dir) {
        let mode = meta.mode() & 0o7777;
        if !meta.is_dir() || mode & 0o077 != 0 || !owner_ok(meta.uid(), uid) {
            out.add(
                "host.vault-dir-permissions",
                Severity::Medium,
                "the vault's directory is not a private directory of this user",
                format!(
                    "{} has mode {mode:04o}, owner uid {}",
                    vault_dir.display(),
                    meta.uid()
                ),
                &format!("chmod 700 {}", vault_dir.display()),
                "safeclaw: files 0600, directories 0700",
            );
        }
    }
    // Vaults of the current layout (in `vault/`) and of the old one (in
    // the home itself).
    let mut names: Vec<_> = [home, vault_dir.as_path()]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .collect();
    names.sort();
    for path in names {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !name.contains(".vault") {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 || !owner_ok(meta.uid(), uid) {
            out.add(
                "host.vault-permissions",
                Severity::Medium,
                "a vault file is readable by others (an offline password guess needs only the file)",
                format!("{} has mode {mode:04o}, owner uid {}", path.display(), meta.uid()),
                &format!("chmod 600 {}", path.display()),
                "safeclaw: files 0600",
            );
        }
    }
    out.into_vec()
}

/// Plaintext the guide's steps leave in its workspace (`~/openclaw-secure`
/// and its `data/`): the config tarball, OpenClaw's JSON and its backups,
/// and an unmigrated `secrets.enc`.
pub fn check_guide(dir: &Path) -> Vec<Finding> {
    let mut out = Findings::new(Area::Host);
    for place in [dir.to_path_buf(), dir.join("data")] {
        let Ok(entries) = std::fs::read_dir(&place) else {
            continue;
        };
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let shown = path.display().to_string();
            if name == "config.tar.gz" || name.ends_with(".tar.gz") && name.contains("config") {
                out.add(
                    "host.guide-plaintext-archive",
                    Severity::High,
                    "the guide's plaintext config archive is still on disk",
                    shown,
                    "delete it (shred -u); the config is also in secrets.enc: safeclaw vault migrate",
                    "guide section 5",
                );
            } else if name == "openclaw.json"
                || name.starts_with("openclaw.json.bak")
                || name == "credentials"
            {
                out.add(
                    "host.guide-plaintext-config",
                    Severity::High,
                    "OpenClaw's plaintext config (API keys, bot token) is on disk",
                    shown,
                    "seal it: safeclaw vault create --from DIR --wipe-source",
                    "guide flaw 9",
                );
            } else if name == "secrets.enc" {
                out.add(
                    "host.guide-secrets-enc",
                    Severity::Medium,
                    "an unmigrated secrets.enc (unauthenticated AES-CBC, PBKDF2 100k)",
                    shown,
                    &format!("safeclaw vault migrate {}", path.display()),
                    "guide flaw 8",
                );
            }
        }
    }
    out.into_vec()
}

/// How clients reach the engine, and what kind of engine it is.
pub struct EngineFacts<'a> {
    pub docker_host: Option<&'a str>,
    pub tls_verify: bool,
    /// The Unix socket's path, when the engine is reached through one.
    pub socket: Option<&'a Path>,
    /// From the engine's `SecurityOptions`; None when the engine did not answer.
    pub rootless: Option<bool>,
}

pub fn check_engine(e: &EngineFacts) -> Vec<Finding> {
    let mut out = Findings::new(Area::Host);
    if let Some(host) = e.docker_host {
        if host.starts_with("tcp://") && !e.tls_verify {
            out.add(
                "host.engine-tcp-no-tls",
                Severity::High,
                "the engine is reached over TCP without TLS: anyone on the network is root",
                format!("DOCKER_HOST={host}, DOCKER_TLS_VERIFY unset"),
                "use the Unix socket, or TLS with client certificates (DOCKER_TLS_VERIFY=1)",
                "CIS Docker 2.6",
            );
        }
    }
    if let Some(socket) = e.socket {
        if let Ok(meta) = std::fs::metadata(socket) {
            let mode = meta.mode() & 0o7777;
            if mode & 0o002 != 0 {
                out.add(
                    "host.engine-socket-world-writable",
                    Severity::High,
                    "every local user can drive the engine (root on the host)",
                    format!("{} has mode {mode:04o}", socket.display()),
                    &format!("chmod 660 {}", socket.display()),
                    "CIS Docker 3.16",
                );
            }
        }
    }
    if e.rootless == Some(false) {
        out.add(
            "host.engine-rootful",
            Severity::Info,
            "the engine runs as root: its socket and the docker group are root-equivalent",
            "the engine runs as root (no name=rootless in its SecurityOptions; for Podman, its socket is root's)".to_string(),
            "consider rootless Docker or Podman; keep the docker group to yourself",
            "CIS Docker 1.x",
        );
    }
    out.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::ids;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn home_and_vault_permissions() {
        let dir = tempfile::TempDir::new().unwrap();
        let home = dir.path().join("h");
        std::fs::create_dir(&home).unwrap();
        let uid = std::fs::metadata(&home).unwrap().uid();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(home.join("openclaw.vault"), b"x").unwrap();
        std::fs::set_permissions(
            home.join("openclaw.vault"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        assert!(check_home(&home, uid).is_empty());
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(
            home.join("openclaw.vault"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert_eq!(
            ids(&check_home(&home, uid)),
            ["host.home-permissions", "host.vault-permissions"]
        );
        assert_eq!(
            ids(&check_home(&home, uid + 1)),
            [
                "host.home-permissions",
                "host.home-owner",
                "host.vault-permissions"
            ]
        );
        assert_eq!(
            ids(&check_home(&dir.path().join("none"), uid)),
            ["host.no-safeclaw-home"]
        );
    }

    #[test]
    fn the_guides_leftovers_are_found() {
        let dir = tempfile::TempDir::new().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(dir.path().join("config.tar.gz"), b"x").unwrap();
        std::fs::write(data.join("openclaw.json.bak.1"), b"{}").unwrap();
        std::fs::write(data.join("secrets.enc"), b"Salted__").unwrap();
        std::fs::write(data.join("notes.txt"), b"").unwrap();
        assert_eq!(
            ids(&check_guide(dir.path())),
            [
                "host.guide-plaintext-archive",
                "host.guide-plaintext-config",
                "host.guide-secrets-enc"
            ]
        );
        assert!(check_guide(&dir.path().join("absent")).is_empty());
    }

    #[test]
    fn engine_exposure() {
        let dir = tempfile::TempDir::new().unwrap();
        let sock = dir.path().join("docker.sock");
        std::fs::write(&sock, b"").unwrap();
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
        let f = check_engine(&EngineFacts {
            docker_host: Some("tcp://10.0.0.1:2375"),
            tls_verify: false,
            socket: Some(&sock),
            rootless: Some(false),
        });
        assert_eq!(
            ids(&f),
            [
                "host.engine-tcp-no-tls",
                "host.engine-socket-world-writable",
                "host.engine-rootful"
            ]
        );
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o660)).unwrap();
        let f = check_engine(&EngineFacts {
            docker_host: Some("tcp://10.0.0.1:2376"),
            tls_verify: true,
            socket: Some(&sock),
            rootless: Some(true),
        });
        assert!(f.is_empty(), "{f:?}");
    }
}

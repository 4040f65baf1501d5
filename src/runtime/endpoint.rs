//! Which engine to talk to, found the way users expect (docs/engines.md):
//!
//! 1. `--engine URL`, else `DOCKER_HOST`;
//! 2. the current docker context (`DOCKER_CONTEXT`, else `currentContext`
//!    in `$DOCKER_CONFIG/config.json`, default `~/.docker`): Docker
//!    Desktop, rootless Docker and colima name their socket there;
//! 3. rootless sockets: `$XDG_RUNTIME_DIR/docker.sock`, then
//!    `$XDG_RUNTIME_DIR/podman/podman.sock`;
//! 4. `/var/run/docker.sock`, then `/run/podman/podman.sock`.
//!
//! Pure over what was read (`Inputs`, and a file reader and socket test
//! passed in), so every branch is tested without touching `~/.docker`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Class, Error, Result};

/// Bounds what a docker config or context file makes us read.
pub const MAX_CONFIG_FILE: u64 = 256 * 1024;

/// The rootful sockets, in the order they are tried.
const SYSTEM_SOCKETS: [&str; 2] = ["/var/run/docker.sock", "/run/podman/podman.sock"];

/// Where an endpoint came from, for messages, `status` and `audit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    DockerHost,
    /// The docker context of that name.
    Context(String),
    /// A socket found at a well-known path.
    Socket,
    /// Nothing found: the conventional default, which does not exist.
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag => f.write_str("--engine"),
            Origin::DockerHost => f.write_str("DOCKER_HOST"),
            Origin::Context(name) => write!(f, "docker context {name:?}"),
            Origin::Socket => f.write_str("found socket"),
            Origin::Default => f.write_str("default"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///path` or `tcp://host:port` (as the user or context wrote it).
    pub url: String,
    pub origin: Origin,
    /// The context has TLS material, which safeclaw cannot use.
    pub wants_tls: bool,
}

/// What discovery looks at, read from the process environment by `from_env`.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub flag: Option<String>,
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    /// `$DOCKER_CONFIG`, else `$HOME/.docker`.
    pub docker_config: Option<PathBuf>,
    pub xdg_runtime_dir: Option<PathBuf>,
}

impl Inputs {
    /// Root skips the rootless sockets: `$XDG_RUNTIME_DIR` left over from a
    /// user's session (`sudo -E`, `su` without `-`) would let that user
    /// serve a fake engine and receive the data key. The docker CLI never
    /// probes there either.
    pub fn from_env(flag: Option<String>) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let docker_config = var(crate::env_vars::DOCKER_CONFIG)
            .map(PathBuf::from)
            .or_else(|| var(crate::env_vars::HOME).map(|h| PathBuf::from(h).join(".docker")));
        Inputs {
            flag,
            docker_host: var(crate::env_vars::DOCKER_HOST),
            docker_context: var(crate::env_vars::DOCKER_CONTEXT),
            docker_config,
            xdg_runtime_dir: var(crate::env_vars::XDG_RUNTIME_DIR)
                .map(PathBuf::from)
                .filter(|_| !rustix::process::geteuid().is_root()),
        }
    }
}

#[derive(Deserialize)]
struct Config {
    #[serde(rename = "currentContext", default)]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Endpoints", default)]
    endpoints: std::collections::HashMap<String, MetaEndpoint>,
}

#[derive(Deserialize)]
struct MetaEndpoint {
    #[serde(rename = "Host", default)]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

/// The endpoint to use. `read` returns a file's bytes (None if missing or
/// unreadable); `exists` says whether a socket is at a path.
pub fn resolve(
    inputs: &Inputs,
    read: &dyn Fn(&Path) -> Option<Vec<u8>>,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<Endpoint> {
    let plain = |url: &str, origin| Endpoint {
        url: url.to_string(),
        origin,
        wants_tls: false,
    };
    if let Some(url) = &inputs.flag {
        return Ok(plain(url, Origin::Flag));
    }
    if let Some(url) = &inputs.docker_host {
        return Ok(plain(url, Origin::DockerHost));
    }
    if let Some(config_dir) = &inputs.docker_config {
        if let Some(endpoint) = from_context(inputs, config_dir, read)? {
            return Ok(endpoint);
        }
    }
    let rootless = inputs.xdg_runtime_dir.iter().flat_map(|dir| {
        [
            dir.join("docker.sock"),
            dir.join("podman").join("podman.sock"),
        ]
    });
    let system = SYSTEM_SOCKETS.iter().map(PathBuf::from);
    for socket in rootless.chain(system) {
        if exists(&socket) {
            return Ok(plain(
                &format!("unix://{}", socket.display()),
                Origin::Socket,
            ));
        }
    }
    Ok(plain(
        &format!("unix://{}", SYSTEM_SOCKETS[0]),
        Origin::Default,
    ))
}

/// The current context's docker endpoint, or None for the default context.
fn from_context(
    inputs: &Inputs,
    config_dir: &Path,
    read: &dyn Fn(&Path) -> Option<Vec<u8>>,
) -> Result<Option<Endpoint>> {
    let name = match &inputs.docker_context {
        Some(name) => name.clone(),
        None => {
            let Some(bytes) = read(&config_dir.join("config.json")) else {
                return Ok(None);
            };
            // A config we cannot parse is not ours to judge: the docker
            // CLI would complain itself; fall through to the sockets.
            let Ok(config) = serde_json::from_slice::<Config>(&bytes) else {
                return Ok(None);
            };
            match config.current_context {
                Some(name) if !name.is_empty() => name,
                _ => return Ok(None),
            }
        }
    };
    if name == "default" {
        return Ok(None);
    }
    let id = crate::private_fs::hex(&Sha256::digest(name.as_bytes()));
    let meta_path = config_dir
        .join("contexts")
        .join("meta")
        .join(&id)
        .join("meta.json");
    let broken = |why: &str| {
        Error::new(
            Class::Engine,
            format!("the docker context {name:?} is selected but {why}"),
        )
        .with_hint("`docker context ls` shows the contexts; `docker context use default`, or pass --engine")
    };
    let bytes = read(&meta_path)
        .ok_or_else(|| broken(&format!("{} cannot be read", meta_path.display())))?;
    let meta: Meta = serde_json::from_slice(&bytes).map_err(|_| {
        broken(&format!(
            "{} is not a context's metadata",
            meta_path.display()
        ))
    })?;
    if meta.name != name {
        return Err(broken(&format!(
            "{} names another context",
            meta_path.display()
        )));
    }
    let docker = meta
        .endpoints
        .get("docker")
        .ok_or_else(|| broken("it has no docker endpoint"))?;
    let url = docker
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| broken("its docker endpoint has no host"))?;
    let tls_dir = config_dir.join("contexts").join("tls").join(&id);
    let wants_tls =
        docker.skip_tls_verify || read(&tls_dir.join("docker").join("ca.pem")).is_some();
    Ok(Some(Endpoint {
        url,
        origin: Origin::Context(name),
        wants_tls,
    }))
}

/// Whether a file or socket whose owner is `owner` with `mode`, in a
/// directory owned by `dir_owner` with `dir_mode`, may name the engine for
/// a process of `euid`: someone else who could write either could point
/// safeclaw, and the data key it hands over, at an engine of theirs.
/// Sockets are group-writable by design (the `docker` group), files not.
pub fn trusted(
    euid: u32,
    (owner, mode): (u32, u32),
    (dir_owner, dir_mode): (u32, u32),
    is_socket: bool,
) -> bool {
    let ours = |uid: u32| uid == euid || uid == 0;
    let writable_by_others = if is_socket { 0o002 } else { 0o022 };
    ours(owner) && ours(dir_owner) && mode & writable_by_others == 0 && dir_mode & 0o022 == 0
}

/// `trusted` for the file at `path` (not following a link at its end).
fn trusted_path(path: &Path, is_socket: bool) -> bool {
    use std::os::unix::fs::MetadataExt;
    let dir = crate::private_fs::parent_of(path);
    match (std::fs::metadata(path), std::fs::metadata(&dir)) {
        (Ok(m), Ok(d)) => trusted(
            rustix::process::geteuid().as_raw(),
            (m.uid(), m.mode()),
            (d.uid(), d.mode()),
            is_socket,
        ),
        _ => false,
    }
}

/// Reads a small file, at most `MAX_CONFIG_FILE` bytes (a larger one reads
/// as missing), if `trusted`.
pub fn read_small(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    if !trusted_path(path, false) {
        return None;
    }
    let file = crate::private_fs::open_regular(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_FILE + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    (bytes.len() as u64 <= MAX_CONFIG_FILE).then_some(bytes)
}

/// Whether a Unix socket is at `path`, and `trusted`.
pub fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket()) && trusted_path(path, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn files(list: &[(&str, &str)]) -> impl Fn(&Path) -> Option<Vec<u8>> {
        let map: HashMap<PathBuf, Vec<u8>> = list
            .iter()
            .map(|(p, c)| (PathBuf::from(p), c.as_bytes().to_vec()))
            .collect();
        move |p: &Path| map.get(p).cloned()
    }

    fn sockets(list: &'static [&'static str]) -> impl Fn(&Path) -> bool {
        move |p: &Path| list.iter().any(|s| Path::new(s) == p)
    }

    fn context_id(name: &str) -> String {
        crate::private_fs::hex(&Sha256::digest(name.as_bytes()))
    }

    fn inputs() -> Inputs {
        Inputs {
            docker_config: Some(PathBuf::from("/h/.docker")),
            xdg_runtime_dir: Some(PathBuf::from("/run/user/1000")),
            ..Inputs::default()
        }
    }

    #[test]
    fn only_files_of_the_caller_or_root_name_the_engine() {
        let (me, other) = (1000, 1001);
        // ~/.docker/config.json 0600 in a 0700 dir; /var/run/docker.sock.
        assert!(trusted(me, (me, 0o100600), (me, 0o40700), false));
        assert!(trusted(me, (0, 0o140660), (0, 0o40755), true));
        // Another user's, or writable by others, or in a directory others write.
        assert!(!trusted(me, (other, 0o100600), (me, 0o40700), false));
        assert!(!trusted(me, (me, 0o100620), (me, 0o40700), false));
        assert!(!trusted(0, (other, 0o140600), (other, 0o40700), true));
        assert!(!trusted(me, (me, 0o140666), (me, 0o40700), true));
        assert!(!trusted(me, (me, 0o140600), (0, 0o41777), true));
    }

    #[test]
    fn flag_then_docker_host_win_over_everything() {
        let mut i = inputs();
        i.docker_host = Some("unix:///a.sock".into());
        let e = resolve(&i, &files(&[]), &sockets(&["/var/run/docker.sock"])).unwrap();
        assert_eq!(
            (e.url.as_str(), e.origin),
            ("unix:///a.sock", Origin::DockerHost)
        );
        i.flag = Some("unix:///b.sock".into());
        let e = resolve(&i, &files(&[]), &sockets(&[])).unwrap();
        assert_eq!((e.url.as_str(), e.origin), ("unix:///b.sock", Origin::Flag));
    }

    #[test]
    fn the_current_context_names_the_socket() {
        let id = context_id("desktop-linux");
        let meta = format!("/h/.docker/contexts/meta/{id}/meta.json");
        let read = files(&[
            (
                "/h/.docker/config.json",
                r#"{"auths":{},"currentContext":"desktop-linux"}"#,
            ),
            (
                &meta,
                r#"{"Name":"desktop-linux","Metadata":{},"Endpoints":{"docker":{"Host":"unix:///h/.docker/desktop/docker.sock","SkipTLSVerify":false}}}"#,
            ),
        ]);
        let e = resolve(&inputs(), &read, &sockets(&["/var/run/docker.sock"])).unwrap();
        assert_eq!(e.url, "unix:///h/.docker/desktop/docker.sock");
        assert_eq!(e.origin, Origin::Context("desktop-linux".into()));
        assert!(!e.wants_tls);
        // DOCKER_CONTEXT picks another one; "default" means no context.
        let mut i = inputs();
        i.docker_context = Some("default".into());
        let e = resolve(&i, &read, &sockets(&["/var/run/docker.sock"])).unwrap();
        assert_eq!(e.origin, Origin::Socket);
        i.docker_context = Some("gone".into());
        let err = resolve(&i, &read, &sockets(&[])).unwrap_err();
        assert_eq!(err.class, Class::Engine);
        assert!(
            err.message.contains("\"gone\" is selected"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_context_with_tls_material_says_so() {
        let id = context_id("remote");
        let meta = format!("/h/.docker/contexts/meta/{id}/meta.json");
        let ca = format!("/h/.docker/contexts/tls/{id}/docker/ca.pem");
        let read = files(&[
            ("/h/.docker/config.json", r#"{"currentContext":"remote"}"#),
            (
                &meta,
                r#"{"Name":"remote","Endpoints":{"docker":{"Host":"tcp://10.0.0.5:2376"}}}"#,
            ),
            (&ca, "-----BEGIN CERTIFICATE-----"),
        ]);
        let e = resolve(&inputs(), &read, &sockets(&[])).unwrap();
        assert!(e.wants_tls);
    }

    #[test]
    fn rootless_sockets_come_before_the_system_ones() {
        let e = resolve(
            &inputs(),
            &files(&[]),
            &sockets(&["/run/user/1000/podman/podman.sock", "/var/run/docker.sock"]),
        )
        .unwrap();
        assert_eq!(e.url, "unix:///run/user/1000/podman/podman.sock");
        let e = resolve(
            &inputs(),
            &files(&[]),
            &sockets(&[
                "/run/user/1000/docker.sock",
                "/run/user/1000/podman/podman.sock",
            ]),
        )
        .unwrap();
        assert_eq!(e.url, "unix:///run/user/1000/docker.sock");
        let e = resolve(
            &inputs(),
            &files(&[]),
            &sockets(&["/run/podman/podman.sock"]),
        )
        .unwrap();
        assert_eq!(e.url, "unix:///run/podman/podman.sock");
        let e = resolve(&inputs(), &files(&[]), &sockets(&[])).unwrap();
        assert_eq!(
            (e.url.as_str(), e.origin),
            ("unix:///var/run/docker.sock", Origin::Default)
        );
    }

    #[test]
    fn a_broken_config_falls_through_but_a_broken_context_is_an_error() {
        let read = files(&[("/h/.docker/config.json", "not json")]);
        let e = resolve(&inputs(), &read, &sockets(&["/var/run/docker.sock"])).unwrap();
        assert_eq!(e.origin, Origin::Socket);
        let id = context_id("x");
        let meta = format!("/h/.docker/contexts/meta/{id}/meta.json");
        let read = files(&[
            ("/h/.docker/config.json", r#"{"currentContext":"x"}"#),
            (
                &meta,
                r#"{"Name":"y","Endpoints":{"docker":{"Host":"unix:///s"}}}"#,
            ),
        ]);
        assert!(resolve(&inputs(), &read, &sockets(&[])).is_err());
    }
}

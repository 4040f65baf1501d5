//! The Docker Engine API, through bollard: one `Engine` handle per
//! command, connecting to the engine `endpoint` finds (`--engine`,
//! DOCKER_HOST, the docker context, rootless and system sockets), refusing
//! one the data key could cross a network to in clear, API version
//! negotiation down to Debian's 20.10 (API 1.41), and the one error users
//! see when no engine answers.

use std::cell::OnceCell;
use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr};

use bollard::Docker;

use super::endpoint::{self, Endpoint, Inputs};
use super::spec::EngineKind;
use crate::env_vars;
use crate::error::{Class, Error, Result};

/// One command's way to the engine: the async runtime and, from its first
/// use on, the connection (found, checked, negotiated and pinged once),
/// with what the engine is. Made once per command and passed down. The
/// connection waits for the first request, so that what needs no engine
/// (reading a vault, asking a password) is checked first, as it always was.
pub struct Engine {
    /// `--engine URL`, if given.
    flag: Option<String>,
    rt: tokio::runtime::Runtime,
    connected: OnceCell<(Docker, Endpoint)>,
    kind: OnceCell<EngineKind>,
}

impl Engine {
    /// A handle for one command; `flag` is `--engine`.
    pub fn new(flag: Option<String>) -> Result<Engine> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::failure(format!("starting the async runtime: {e}")))?;
        Ok(Engine {
            flag,
            rt,
            connected: OnceCell::new(),
            kind: OnceCell::new(),
        })
    }

    /// Runs engine work to completion. Never called from inside engine work.
    pub fn block_on<F: Future>(&self, work: F) -> F::Output {
        self.rt.block_on(work)
    }

    /// The connection, made on the first call.
    pub fn docker(&self) -> Result<&Docker> {
        if let Some((docker, _)) = self.connected.get() {
            return Ok(docker);
        }
        let at = endpoint(self.flag.clone())?;
        let docker = self.block_on(connect_to(&at))?;
        Ok(&self.connected.get_or_init(|| (docker, at)).0)
    }

    /// The engine connected to, and where its address came from.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.connected.get().map(|(_, at)| at)
    }

    /// Which engine answers (asked once).
    pub fn kind(&self) -> Result<EngineKind> {
        if let Some(kind) = self.kind.get() {
            return Ok(*kind);
        }
        let kind = self.block_on(kind(self.docker()?))?;
        Ok(*self.kind.get_or_init(|| kind))
    }

    /// The engine described, for `status` and `audit`.
    pub fn describe(&self) -> Result<Description> {
        let docker = self.docker()?;
        let podman = matches!(self.kind()?, EngineKind::Podman { .. });
        self.block_on(describe(docker, podman, self.endpoint()))
    }
}

/// The engine to talk to, found as docs/engines.md says; `flag` is
/// `--engine` (empty: not given).
pub fn endpoint(flag: Option<String>) -> Result<Endpoint> {
    let inputs = Inputs::from_env(flag.filter(|u| !u.is_empty()));
    endpoint::resolve(&inputs, &endpoint::read_small, &endpoint::is_socket)
}

/// True when the environment asks for TLS to a TCP engine (the docker
/// CLI's variables; an empty one is unset, as the CLI reads it).
fn tls_requested() -> bool {
    [env_vars::DOCKER_TLS_VERIFY, env_vars::DOCKER_CERT_PATH]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
}

const OVER_SSH: &str = "use the engine's unix socket (unset DOCKER_HOST), or forward it over SSH: \
`ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock HOST`, then DOCKER_HOST=unix:///tmp/docker.sock";

/// Refuses an engine address over which the data key (sent to the guard
/// through the attach stream) could cross a network in clear: safeclaw's
/// bollard has no TLS, so `tcp://` and `http://` are plain HTTP, and with
/// TLS asked for (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, `https://`) it
/// would not be honoured. Only a loopback host is accepted for those
/// schemes; `unix://` and anything bollard refuses by itself pass. Pure,
/// so that it runs before any connection.
pub fn check_host(docker_host: &str, tls_requested: bool) -> Result<()> {
    check_endpoint(
        docker_host,
        tls_requested.then_some(TLS_BY_ENV),
        env_vars::DOCKER_HOST,
    )
}

const TLS_BY_ENV: &str = "DOCKER_TLS_VERIFY or DOCKER_CERT_PATH is set";

/// `check_host` for an address that came from `origin` (named in errors),
/// with TLS asked for for the reason `tls`, if any.
fn check_endpoint(docker_host: &str, tls: Option<&str>, origin: &str) -> Result<()> {
    let Some((scheme, rest)) = docker_host.split_once("://") else {
        return Ok(());
    };
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "tcp" | "http" | "https") {
        return Ok(());
    }
    let shown = shown(&scheme, rest);
    if scheme == "https" || tls.is_some() {
        return Err(Error::new(
            Class::Engine,
            format!(
                "refusing {origin}={shown}: it asks for TLS ({}), which safeclaw cannot speak to the engine, and the vault's key would go in clear",
                if scheme == "https" { "https://" } else { tls.unwrap_or_default() }
            ),
        )
        .with_hint(OVER_SSH));
    }
    if !is_loopback(rest) {
        return Err(Error::new(
            Class::Engine,
            format!(
                "refusing {origin}={shown}: the engine is not on this machine, and safeclaw would send it the vault's key in clear (no TLS)"
            ),
        )
        .with_hint(OVER_SSH));
    }
    Ok(())
}

/// The address for messages, without user information (which could be a
/// password).
fn shown(scheme: &str, rest: &str) -> String {
    match rest.rfind('@') {
        Some(i) => format!("{scheme}://…@{}", &rest[i + 1..]),
        None => format!("{scheme}://{rest}"),
    }
}

/// True when the address after `scheme://` is `HOST[:PORT][/PATH]` with
/// HOST `localhost`, an IPv4 loopback address or `[::1]`. Anything a URL
/// parser could read differently from this (user information, a query, a
/// fragment, escapes) is refused: what is checked must be what is dialled.
fn is_loopback(rest: &str) -> bool {
    let odd =
        |c: char| matches!(c, '@' | '?' | '#' | '%' | '\\') || c.is_whitespace() || c.is_control();
    if rest.chars().any(odd) {
        return false;
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let (host_ok, port) = match authority.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, port)) => (
                host.parse::<Ipv6Addr>().is_ok_and(|a| a.is_loopback()),
                port,
            ),
            None => return false,
        },
        None => {
            let (host, port) = authority.split_at(authority.find(':').unwrap_or(authority.len()));
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host.parse::<Ipv4Addr>().is_ok_and(|a| a.is_loopback());
            (loopback, port)
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.parse::<u16>().is_ok() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

fn unreachable(at: &Endpoint, e: bollard::errors::Error) -> Error {
    Error::new(
        Class::Engine,
        format!("cannot reach an engine at {} ({}): {e}", at.url, at.origin),
    )
    .with_hint("start Docker or Podman (Docker Desktop, `sudo systemctl start docker`, `systemctl --user start podman.socket`), or name it with --engine or DOCKER_HOST")
}

/// Finds the engine (`flag` is `--engine`), checks its address, then
/// connects, negotiates the API version and pings. Commands use an
/// `Engine`; this is for code that keeps its own runtime (tests, benches).
pub async fn connect(flag: Option<String>) -> Result<Docker> {
    connect_to(&endpoint(flag)?).await
}

/// Checks the address of `at`, then connects, negotiates and pings.
async fn connect_to(at: &Endpoint) -> Result<Docker> {
    // Before the first packet: a refused address is never dialled.
    let origin = match &at.origin {
        endpoint::Origin::Flag => "--engine".to_string(),
        endpoint::Origin::Context(name) => format!("docker context {name:?}: host"),
        _ => env_vars::DOCKER_HOST.to_string(),
    };
    let tls = if at.wants_tls {
        Some("the context has TLS material")
    } else {
        tls_requested().then_some(TLS_BY_ENV)
    };
    check_endpoint(&at.url, tls, &origin)?;
    let docker = Docker::connect_with_host(&at.url).map_err(|e| unreachable(at, e))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| unreachable(at, e))?;
    docker.ping().await.map_err(|e| unreachable(at, e))?;
    Ok(docker)
}

/// Which engine answers: Podman names itself in the version's components.
pub async fn kind(docker: &Docker) -> Result<EngineKind> {
    let version = docker
        .version()
        .await
        .map_err(|e| Error::new(Class::Engine, format!("asking the engine's version: {e}")))?;
    let podman = version
        .components
        .unwrap_or_default()
        .iter()
        .any(|c| c.name.to_ascii_lowercase().contains("podman"));
    if !podman {
        return Ok(EngineKind::Docker);
    }
    let hard = |r| rustix::process::getrlimit(r).maximum.unwrap_or(u64::MAX);
    Ok(EngineKind::Podman {
        max_files: hard(rustix::process::Resource::Nofile),
        max_processes: hard(rustix::process::Resource::Nproc),
    })
}

/// The engine as far as it matters to safeclaw and to whoever reads
/// `status` or `audit`: which product, which image store (image IDs mean
/// different things in each, docs/engines.md), and whether it runs as root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// "Docker 20.10.24", "Podman 4.3.1".
    pub product: String,
    /// "classic (overlay2)", "containerd (overlayfs)".
    pub store: String,
    pub rootless: bool,
    /// "1", "2", or empty when the engine does not say.
    pub cgroup_version: String,
}

impl std::fmt::Display for Description {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}, {}, {} image store",
            self.product,
            if self.rootless { "rootless" } else { "rootful" },
            self.store
        )?;
        if !self.cgroup_version.is_empty() {
            write!(f, ", cgroups v{}", self.cgroup_version)?;
        }
        Ok(())
    }
}

/// The snapshotter family `docker info` names as `driver-type` on the
/// containerd image store.
const CONTAINERD_SNAPSHOTTER: &str = "io.containerd.snapshotter.v1";

/// Describes the engine from its `/info` and, for Podman, the owner of
/// the socket it was reached through: rootless Docker says `name=rootless`
/// in its security options, Podman's compatible `/info` does not, but a
/// rootless Podman serves its socket as the user who runs it.
async fn describe(docker: &Docker, podman: bool, at: Option<&Endpoint>) -> Result<Description> {
    let info = docker
        .info()
        .await
        .map_err(|e| Error::new(Class::Engine, format!("asking the engine's info: {e}")))?;
    let socket_owner = at
        .and_then(|at| at.url.strip_prefix("unix://"))
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    Ok(describe_info(&info, podman, socket_owner))
}

/// `describe` over what was asked: pure, for tests.
pub fn describe_info(
    info: &bollard::models::SystemInfo,
    podman: bool,
    socket_owner: Option<u32>,
) -> Description {
    let security = info.security_options.clone().unwrap_or_default();
    let rootless = security.iter().any(|o| o.contains("name=rootless"))
        || (podman && socket_owner.is_some_and(|uid| uid != 0));
    let driver = info.driver.clone().unwrap_or_default();
    let containerd = info
        .driver_status
        .iter()
        .flatten()
        .any(|kv| kv.len() == 2 && kv[0] == "driver-type" && kv[1] == CONTAINERD_SNAPSHOTTER);
    let version = info.server_version.clone().unwrap_or_default();
    Description {
        product: format!("{} {version}", if podman { "Podman" } else { "Docker" })
            .trim_end()
            .to_string(),
        store: format!(
            "{} ({driver})",
            if containerd { "containerd" } else { "classic" }
        ),
        rootless,
        cgroup_version: info
            .cgroup_version
            .map(|v| v.to_string())
            .unwrap_or_default(),
    }
}

/// An engine error on the container `name`, doing `what`.
pub fn failed(what: &str, name: &str, e: bollard::errors::Error) -> Error {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => Error::usage(format!("no container named {name}"))
            .with_hint("start it with `safeclaw start`"),
        e => Error::new(Class::Engine, format!("{what} {name}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(json: &str) -> bollard::models::SystemInfo {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_description_names_product_store_and_root() {
        // Debian 12's docker.io, measured.
        let docker = info(
            r#"{"ServerVersion":"20.10.24+dfsg1","Driver":"overlay2","CgroupVersion":"1",
                "SecurityOptions":["name=seccomp,profile=default"],
                "DriverStatus":[["Backing Filesystem","extfs"]]}"#,
        );
        assert_eq!(
            describe_info(&docker, false, Some(0)).to_string(),
            "Docker 20.10.24+dfsg1, rootful, classic (overlay2) image store, cgroups v1"
        );
        // Debian 13's docker.io with the containerd snapshotter, measured.
        let containerd = info(
            r#"{"ServerVersion":"26.1.5+dfsg1","Driver":"overlayfs","CgroupVersion":"2",
                "DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]]}"#,
        );
        let d = describe_info(&containerd, false, Some(0));
        assert_eq!(d.store, "containerd (overlayfs)");
        assert!(!d.rootless);
        // Rootless Docker says so; Podman does not, but its socket's owner
        // does (Podman 4.3.1's compatible /info, measured rootful and
        // rootless: the same SecurityOptions).
        let rootless_docker =
            info(r#"{"SecurityOptions":["name=seccomp,profile=default","name=rootless"]}"#);
        assert!(describe_info(&rootless_docker, false, Some(1000)).rootless);
        let podman = info(
            r#"{"ServerVersion":"4.3.1","Driver":"overlay","CgroupVersion":"1",
                "SecurityOptions":["name=seccomp,profile=default"]}"#,
        );
        assert!(describe_info(&podman, true, Some(1000)).rootless);
        assert!(!describe_info(&podman, true, Some(0)).rootless);
        assert!(!describe_info(&podman, true, None).rootless);
        // A Docker socket owned by a user (Docker Desktop's) says nothing
        // about the engine behind it.
        assert!(!describe_info(&podman, false, Some(1000)).rootless);
        assert_eq!(
            describe_info(&podman, true, Some(0)).product,
            "Podman 4.3.1"
        );
    }

    fn refused(host: &str, tls: bool) -> Option<String> {
        check_host(host, tls).err().map(|e| {
            assert_eq!(e.class, Class::Engine);
            assert_eq!(e.hint.as_deref(), Some(OVER_SSH));
            e.message
        })
    }

    #[test]
    fn a_unix_socket_or_a_loopback_engine_is_accepted() {
        for host in [
            "unix:///var/run/docker.sock",
            "unix:///tmp/docker.sock",
            "tcp://127.0.0.1:2375",
            "tcp://127.1.2.3:2375",
            "tcp://localhost:2375",
            "tcp://LOCALHOST",
            "http://127.0.0.1:2375",
            "tcp://[::1]:2375",
            "tcp://[::1]",
            "tcp://127.0.0.1:2375/",
        ] {
            assert_eq!(refused(host, false), None, "{host}");
        }
        // TLS variables change nothing for a socket.
        assert_eq!(refused("unix:///var/run/docker.sock", true), None);
        // Not something bollard connects to: its own error, no packet.
        assert_eq!(refused("ssh://me@host", false), None);
        assert_eq!(refused("192.0.2.1:2375", false), None);
    }

    #[test]
    fn another_machine_is_refused() {
        for host in [
            "tcp://192.0.2.1:2376",
            "tcp://10.0.0.1:2375",
            "TCP://10.0.0.1:2375",
            "http://192.0.2.1:2375",
            "tcp://docker.example.com:2375",
            "tcp://localhost.example.com:2375",
            "tcp://[2001:db8::1]:2375",
            "tcp://0.0.0.0:2375",
            "tcp://:2375",
            "tcp://",
            // Read differently by different URL parsers: refused.
            "tcp://127.0.0.1@192.0.2.1:2375",
            "tcp://127.0.0.1:2375@192.0.2.1",
            "tcp://127.0.0.1#@192.0.2.1:2375",
            "tcp://127.0.0.1%2f@192.0.2.1",
            "tcp://127.0.0.1\\@192.0.2.1",
            "tcp://127.0.0.1 192.0.2.1",
            "tcp://127.1:2375",
            "tcp://2130706433:2375",
            "tcp://[::ffff:127.0.0.1]:2375",
            "tcp://127.0.0.1:notaport",
            "tcp://127.0.0.1:99999",
            "tcp://[::1:2375",
        ] {
            let why = refused(host, false).unwrap_or_else(|| panic!("{host} was accepted"));
            assert!(why.starts_with("refusing DOCKER_HOST="), "{why}");
        }
        assert_eq!(
            refused("tcp://192.0.2.1:2376", false).unwrap(),
            "refusing DOCKER_HOST=tcp://192.0.2.1:2376: the engine is not on this machine, \
             and safeclaw would send it the vault's key in clear (no TLS)"
        );
    }

    #[test]
    fn tls_that_cannot_be_honoured_is_refused_even_on_loopback() {
        for host in [
            "tcp://127.0.0.1:2376",
            "http://localhost:2376",
            "tcp://192.0.2.1:2376",
        ] {
            let why = refused(host, true).unwrap_or_else(|| panic!("{host} was accepted"));
            assert!(
                why.contains("DOCKER_TLS_VERIFY or DOCKER_CERT_PATH is set"),
                "{why}"
            );
        }
        let why = refused("https://127.0.0.1:2376", false).unwrap();
        assert!(why.contains("it asks for TLS (https://)"), "{why}");
    }

    #[test]
    fn user_information_is_never_shown() {
        let why = refused("tcp://admin:hunter2@192.0.2.1:2375", false).unwrap();
        assert!(!why.contains("hunter2") && !why.contains("admin"), "{why}");
        assert!(why.contains("tcp://…@192.0.2.1:2375"), "{why}");
    }
}

//! The Docker Engine API, through bollard: connection (honouring
//! DOCKER_HOST), API version negotiation down to Debian's 20.10 (API 1.41),
//! and the one error users see when no engine answers.

use bollard::Docker;

use crate::error::{Class, Error, Result};

/// Where the engine is expected, for messages.
fn endpoint() -> String {
    std::env::var(crate::env_vars::DOCKER_HOST)
        .unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

fn unreachable(e: bollard::errors::Error) -> Error {
    Error::new(
        Class::Engine,
        format!("cannot reach a Docker engine at {}: {e}", endpoint()),
    )
    .with_hint("start Docker (Docker Desktop, or `sudo systemctl start docker`), or point DOCKER_HOST at it")
}

/// Connects, negotiates the API version and pings.
pub async fn connect() -> Result<Docker> {
    let docker = Docker::connect_with_defaults().map_err(unreachable)?;
    let docker = docker.negotiate_version().await.map_err(unreachable)?;
    docker.ping().await.map_err(unreachable)?;
    Ok(docker)
}

/// A single-threaded runtime for one command's engine work.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failure(format!("starting the async runtime: {e}")))
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

/// The name of a running container that has `source` (a host directory,
/// canonical) mounted, if any: a bot whose guard would seal into it.
pub async fn running_with_mount(
    docker: &Docker,
    source: &std::path::Path,
) -> Result<Option<String>> {
    let running = docker
        .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
        .await
        .map_err(|e| Error::new(Class::Engine, format!("listing containers: {e}")))?;
    Ok(running.into_iter().find_map(|c| {
        let mounted = c
            .mounts
            .unwrap_or_default()
            .iter()
            .any(|m| m.source.as_deref().map(std::path::Path::new) == Some(source));
        mounted.then(|| {
            c.names
                .and_then(|n| n.first().cloned())
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string()
        })
    }))
}

//! The egress firewall on the engine. The gateway's container has no
//! network at all (`NetworkMode: none`: loopback only, no route to the
//! host, the LAN or anywhere); the proxy runs in a container of its own on
//! an outside network and listens on a Unix socket in a host directory
//! mounted read-write into it and read-only into the gateway's, where a
//! relay (`safeclaw egress relay`) carries OpenClaw's proxy connections
//! from loopback to that socket. An engine's "internal" network is not
//! enough: measured on Docker 20.10, a container on one still has a
//! default route to the host and reaches every service the host listens
//! on. The proxy is named after the gateway and labelled, so whatever a
//! crash leaves is recognised and removed by the next start
//! (docs/egress.md).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, InspectNetworkOptions};
use bollard::Docker;

use super::address::Cidr;
use super::policy::Rule;
use crate::error::{Class, Error, Result};
use crate::runtime::container;
use crate::runtime::layout::SAFECLAW_IN_IMAGE;
use crate::runtime::spec::{self, EngineKind as Engine};

/// Where the socket directory is mounted in both containers.
pub const SOCKET_DIR_IN_CONTAINER: &str = "/egress";
/// The proxy's socket in that directory.
pub const SOCKET_NAME: &str = "egress.sock";
/// Where the relay listens in the gateway's container: OpenClaw's proxy URL.
pub const RELAY_LISTEN: &str = "127.0.0.1:3128";
/// The label naming the gateway an egress proxy belongs to.
pub const LABEL_EGRESS_OF: &str = "dev.safeclaw.egress-of";
/// The network the proxy reaches the world through, unless told otherwise:
/// the engine's default bridge (NAT to the host's uplink).
pub const DEFAULT_OUTSIDE: &str = "bridge";
/// The proxy's resources: it holds no state and copies bytes.
const PROXY_MEMORY: i64 = 128 << 20;
const PROXY_PIDS: i64 = 64;
const PROXY_NANO_CPUS: i64 = 1_000_000_000;
/// How long `up` waits for the proxy's socket.
const SOCKET_WAIT: Duration = Duration::from_secs(15);

pub fn proxy_name(gateway: &str) -> String {
    format!("{gateway}-egress")
}

/// OpenClaw's proxy URL (`OPENCLAW_PROXY_URL`) in the gateway's container.
pub fn proxy_url() -> String {
    format!("http://{RELAY_LISTEN}")
}

/// The proxy's socket as both containers see it.
pub fn socket_in_container() -> String {
    format!("{SOCKET_DIR_IN_CONTAINER}/{SOCKET_NAME}")
}

/// The relay's argv (after the safeclaw binary), as the guard runs it.
pub fn relay_args(socket: &Path) -> Vec<String> {
    ["egress", "relay", "--listen", RELAY_LISTEN, "--socket"]
        .iter()
        .map(|s| s.to_string())
        .chain(std::iter::once(socket.display().to_string()))
        .collect()
}

/// The egress firewall of a start or an onboarding, as the command line
/// resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressSettings {
    /// `--egress`: None leaves it to the vault's policy (locked unless it
    /// says open).
    pub mode: Option<super::policy::Mode>,
    /// `--egress-network`: the network the proxy reaches the world through.
    pub network: String,
    /// `--egress-host`: `NAME:ADDR` entries of the proxy's /etc/hosts.
    pub hosts: Vec<String>,
    /// `--egress-ca`: PEM certificates the broker trusts besides the
    /// system's roots.
    pub ca_pem: Option<Vec<u8>>,
}

/// What the firewall of one gateway is made of.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The gateway container's name.
    pub gateway: String,
    /// The image holding safeclaw (the gateway's own).
    pub image: String,
    pub rules: Vec<Rule>,
    /// The network the proxy reaches the world through.
    pub outside: String,
    /// `NAME:ADDR` entries of the proxy's /etc/hosts.
    pub extra_hosts: Vec<String>,
    /// The host directory of the proxy's socket: absolute, private, owned
    /// by `uid` (the caller makes it).
    pub socket_dir: String,
    /// The containers' user: the gateway's.
    pub uid: u32,
    pub gid: u32,
    /// The vault's secrets for the proxy's broker, handed over on its
    /// stdin before it starts (docs/broker.md); None: no broker.
    pub broker: Option<BrokerHandoff>,
}

/// The broker's hand-off (`egress::handoff::encode`): real secrets, so
/// zeroized when dropped and never printed.
#[derive(Clone)]
pub struct BrokerHandoff(pub zeroize::Zeroizing<Vec<u8>>);

impl std::fmt::Debug for BrokerHandoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrokerHandoff(..)")
    }
}

impl Plan {
    /// The proxy's network must be a network of its own: on the host's
    /// (`host`), loopback would be the host's, and without one (`none`,
    /// `container:…`) it reaches nothing or shares another's.
    pub fn check(&self) -> Result<()> {
        let o = self.outside.as_str();
        if o.is_empty() || o == "host" || o == "none" || o.starts_with("container:") {
            return Err(
                Error::usage(format!("the egress proxy cannot use the network {o:?}"))
                    .with_hint("name a bridge network (the default is `bridge`)"),
            );
        }
        Ok(())
    }
}

/// The gateway's read-only mount of the socket directory `dir`: it may
/// connect to the socket and do nothing else there.
pub fn gateway_bind(dir: &str) -> String {
    format!("{dir}:{SOCKET_DIR_IN_CONTAINER}:ro")
}

/// The proxy's container: safeclaw's image, `safeclaw egress serve`,
/// non-root, read-only, no capability, no state but its socket; restarted
/// by the engine when it dies (it holds no key), and while it is down the
/// gateway reaches nothing at all.
pub fn proxy_body(plan: &Plan, refuse: &[Cidr], engine: Engine) -> ContainerCreateBody {
    let mut cmd = vec![
        "egress".to_string(),
        "serve".to_string(),
        "--socket".to_string(),
        socket_in_container(),
        "--log-file".to_string(),
        format!("{SOCKET_DIR_IN_CONTAINER}/{}", super::log_file::FILE_NAME),
    ];
    for rule in &plan.rules {
        cmd.push("--allow".into());
        cmd.push(rule.to_string());
    }
    for c in refuse {
        cmd.push("--refuse".into());
        cmd.push(c.to_string());
    }
    // The secrets come on stdin, attached before the start (`up`), never
    // in argv or the environment.
    let broker = plan.broker.is_some();
    if broker {
        cmd.push("--broker".into());
    }
    // Its own label only: not `LABEL_MANAGED`, which marks gateways (a
    // start named like the proxy must not take it for a stale gateway).
    let labels = HashMap::from([(LABEL_EGRESS_OF.to_string(), plan.gateway.clone())]);
    ContainerCreateBody {
        image: Some(plan.image.clone()),
        user: Some(format!("{}:{}", plan.uid, plan.gid)),
        entrypoint: Some(vec![SAFECLAW_IN_IMAGE.to_string()]),
        cmd: Some(cmd),
        env: Some(vec![]),
        labels: Some(labels),
        open_stdin: Some(broker),
        stdin_once: Some(broker),
        attach_stdin: Some(broker),
        // The image's check is the gateway's; the proxy has none of its own.
        healthcheck: Some(HealthConfig {
            test: Some(vec!["NONE".to_string()]),
            ..Default::default()
        }),
        host_config: Some(HostConfig {
            binds: Some(vec![format!(
                "{}:{SOCKET_DIR_IN_CONTAINER}:rw",
                plan.socket_dir
            )]),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".to_string()]),
            cap_add: Some(vec![]),
            security_opt: Some(vec!["no-new-privileges:true".to_string()]),
            privileged: Some(false),
            pids_limit: Some(PROXY_PIDS),
            memory: Some(PROXY_MEMORY),
            memory_swap: Some(PROXY_MEMORY),
            nano_cpus: Some(PROXY_NANO_CPUS),
            ulimits: spec::ulimits(engine, PROXY_PIDS),
            network_mode: Some(plan.outside.clone()),
            extra_hosts: Some(plan.extra_hosts.clone()),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            log_config: Some(spec::log_config()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn engine_error(what: &str, e: bollard::errors::Error) -> Error {
    Error::new(Class::Engine, format!("{what}: {e}"))
}

fn not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The gateway addresses of a network: the host, as containers on it
/// reach it, never dialled by the proxy.
async fn network_gateways(docker: &Docker, network: &str) -> Result<Vec<Cidr>> {
    let n = docker
        .inspect_network(network, None::<InspectNetworkOptions>)
        .await
        .map_err(|e| engine_error(&format!("inspecting the network {network}"), e))?;
    let gateways: Vec<Cidr> = n
        .ipam
        .and_then(|i| i.config)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.gateway.as_deref().and_then(Cidr::parse))
        .collect();
    // Without it the proxy could not tell the host from a destination.
    if gateways.is_empty() {
        return Err(Error::new(
            Class::Engine,
            format!("the network {network} names no gateway address (the host)"),
        )
        .with_hint("use a bridge network"));
    }
    Ok(gateways)
}

/// Attaches to the proxy's stdin, starts it, writes the broker's hand-off
/// and closes stdin: the proxy reads it before it opens its socket. Only
/// this attach, made before the start, ever sees the secrets.
async fn hand_over(docker: &Docker, id: &str, name: &str, handoff: &BrokerHandoff) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut attached = docker
        .attach_container(
            id,
            Some(
                bollard::query_parameters::AttachContainerOptionsBuilder::new()
                    .stdin(true)
                    .stream(true)
                    .build(),
            ),
        )
        .await
        .map_err(|e| engine_error(&format!("attaching to {name}"), e))?;
    docker
        .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
        .await
        .map_err(|e| engine_error(&format!("starting {name}"), e))?;
    attached
        .input
        .write_all(&handoff.0)
        .await
        .map_err(|e| Error::new(Class::Engine, format!("handing the secrets to {name}: {e}")))?;
    let _ = attached.input.shutdown().await;
    Ok(())
}

/// Starts the proxy (whatever an earlier run of this gateway left is
/// removed first) and waits for its socket. Returns its container's ID.
pub async fn up(docker: &Docker, plan: &Plan, engine: Engine) -> Result<String> {
    plan.check()?;
    down(docker, &plan.gateway).await?;
    // The old proxy's socket would pass for the new one's below. Only a
    // socket is removed: the directory is ours, 0700, never the gateway's.
    let socket = Path::new(&plan.socket_dir).join(SOCKET_NAME);
    if std::fs::symlink_metadata(&socket).is_ok_and(|m| {
        use std::os::unix::fs::FileTypeExt;
        m.file_type().is_socket()
    }) {
        std::fs::remove_file(&socket).map_err(|e| Error::io("removing", &socket, e))?;
    }
    // The last run's log files: its guard sealed them into the vault.
    for name in [super::log_file::FILE_NAME, super::log_file::ROTATED_NAME] {
        let path = Path::new(&plan.socket_dir).join(name);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            std::fs::remove_file(&path).map_err(|e| Error::io("removing", &path, e))?;
        }
    }
    let name = proxy_name(&plan.gateway);
    let refuse = network_gateways(docker, &plan.outside).await?;
    let body = proxy_body(plan, &refuse, engine);
    let asked = body.host_config.clone().unwrap_or_default();
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            body,
        )
        .await
        .map_err(|e| engine_error(&format!("creating {name}"), e))?;
    let started = async {
        // As hardened as asked, or not started: the gateway's own check.
        container::check_recorded(docker, &created.id, &name, &asked).await?;
        match &plan.broker {
            Some(handoff) => hand_over(docker, &created.id, &name, handoff).await?,
            None => docker
                .start_container(
                    &created.id,
                    None::<bollard::query_parameters::StartContainerOptions>,
                )
                .await
                .map_err(|e| engine_error(&format!("starting {name}"), e))?,
        }
        let socket = Path::new(&plan.socket_dir).join(SOCKET_NAME);
        let began = Instant::now();
        loop {
            use std::os::unix::fs::FileTypeExt;
            if std::fs::symlink_metadata(&socket).is_ok_and(|m| m.file_type().is_socket()) {
                return Ok(());
            }
            if began.elapsed() > SOCKET_WAIT {
                return Err(Error::new(
                    Class::Engine,
                    format!(
                        "{name} did not open its socket in {} s",
                        SOCKET_WAIT.as_secs()
                    ),
                )
                .with_hint(format!("`docker logs {name}` says why")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    .await;
    match started {
        Ok(()) => Ok(created.id),
        Err(e) => {
            let _ = down(docker, &plan.gateway).await;
            Err(e)
        }
    }
}

/// Whether the container `c` carries the label of `gateway`'s proxy: a
/// container of the proxy's name without it is someone else's (another
/// gateway's, whose output the agent writes).
pub fn is_proxy_of(c: &bollard::models::ContainerInspectResponse, gateway: &str) -> bool {
    c.config
        .as_ref()
        .and_then(|c| c.labels.as_ref())
        .and_then(|l| l.get(LABEL_EGRESS_OF))
        .is_some_and(|g| g == gateway)
}

/// Removes the proxy of `gateway`, if any, and only if it carries its
/// label (anything else of that name is someone's).
pub async fn down(docker: &Docker, gateway: &str) -> Result<()> {
    let name = proxy_name(gateway);
    let c = match docker.inspect_container(&name, None).await {
        Ok(c) => c,
        Err(e) if not_found(&e) => return Ok(()),
        Err(e) => return Err(engine_error(&format!("inspecting {name}"), e)),
    };
    if !is_proxy_of(&c, gateway) {
        return Err(Error::usage(format!(
            "a container named {name} exists and is not this gateway's egress proxy"
        ))
        .with_hint("remove it yourself or choose another --name"));
    }
    // By the ID inspected: never whatever holds the name by now.
    let id = c.id.unwrap_or(name.clone());
    match container::force_remove(docker, &id).await {
        Ok(()) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(e) => Err(engine_error(&format!("removing {name}"), e)),
    }
}

/// What the egress proxy of a gateway has decided since it was made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub running: bool,
    pub allowed: u64,
    pub denied: u64,
}

/// Counts one log line of the proxy (`egress serve`'s JSON lines).
pub fn count_line(counts: &mut Counts, line: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Decision<'a> {
        decision: &'a str,
    }
    match serde_json::from_slice::<Decision>(line).map(|d| d.decision) {
        Ok("allowed") => counts.allowed += 1,
        Ok("denied") => counts.denied += 1,
        _ => {}
    }
}

/// The decisions of `gateway`'s proxy since it was made (its log: bounded
/// by the engine to 3 × 1 MB), or None when it has no proxy.
pub async fn counts(docker: &Docker, gateway: &str) -> Result<Option<Counts>> {
    use futures_util::StreamExt;
    let name = proxy_name(gateway);
    let c = match docker.inspect_container(&name, None).await {
        Ok(c) => c,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(engine_error(&format!("inspecting {name}"), e)),
    };
    if !is_proxy_of(&c, gateway) {
        return Ok(None);
    }
    let mut counts = Counts {
        running: c.state.and_then(|s| s.running).unwrap_or(false),
        allowed: 0,
        denied: 0,
    };
    let id = c.id.unwrap_or(name.clone());
    let mut stream = docker.logs(
        &id,
        Some(
            bollard::query_parameters::LogsOptionsBuilder::new()
                .stdout(true)
                .build(),
        ),
    );
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| engine_error(&format!("reading the log of {name}"), e))?;
        pending.extend_from_slice(&chunk.into_bytes());
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            count_line(&mut counts, &line);
        }
        // No line of the proxy's is this long: not one of its decisions.
        if pending.len() > MAX_LOG_LINE {
            pending.clear();
        }
    }
    Ok(Some(counts))
}

/// A log line longer than this is not one the proxy wrote.
pub const MAX_LOG_LINE: usize = 16 << 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_counted_from_the_proxy_s_lines_only() {
        let mut c = Counts {
            running: true,
            allowed: 0,
            denied: 0,
        };
        for line in [
            &br#"{"listening":"/egress/egress.sock","allow":[],"refuse":[]}"#[..],
            br#"{"time_ms":1,"host":"a.test","port":443,"decision":"allowed","sent":1}"#,
            br#"{"time_ms":2,"host":"b.test","port":443,"decision":"denied"}"#,
            br#"{"time_ms":3,"host":"c.test","port":443,"decision":"denied"}"#,
            b"not json",
        ] {
            count_line(&mut c, line);
        }
        assert_eq!((c.allowed, c.denied), (1, 2));
    }

    #[test]
    fn the_proxy_container_is_hardened_and_carries_its_policy() {
        let plan = Plan {
            gateway: "openclaw".into(),
            image: "safeclaw-openclaw:1".into(),
            rules: vec![Rule::parse("api.anthropic.com").unwrap()],
            outside: DEFAULT_OUTSIDE.into(),
            extra_hosts: vec![],
            socket_dir: "/home/me/.safeclaw/run/openclaw".into(),
            uid: 1000,
            gid: 1000,
            broker: None,
        };
        let refuse = [Cidr::parse("172.17.0.1").unwrap()];
        let body = proxy_body(&plan, &refuse, Engine::Docker);
        assert_eq!(
            body.cmd.unwrap().join(" "),
            "egress serve --socket /egress/egress.sock --log-file /egress/egress.log --allow api.anthropic.com:443 --refuse 172.17.0.1/32"
        );
        assert_eq!(body.user.as_deref(), Some("1000:1000"));
        let host = body.host_config.unwrap();
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(host.network_mode.as_deref(), Some("bridge"));
        // Its socket's directory, and nothing else.
        assert_eq!(
            host.binds,
            Some(vec![
                "/home/me/.safeclaw/run/openclaw:/egress:rw".to_string()
            ])
        );
        assert!(host.tmpfs.is_none() && host.mounts.is_none(), "no state");
        assert_eq!(
            gateway_bind(&plan.socket_dir),
            "/home/me/.safeclaw/run/openclaw:/egress:ro"
        );
        assert_eq!(
            body.labels
                .unwrap()
                .get(LABEL_EGRESS_OF)
                .map(String::as_str),
            Some("openclaw")
        );
        // Only the engine's "manual stop" keeps it down.
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        for bad in ["host", "none", "container:other", ""] {
            let p = Plan {
                outside: bad.into(),
                ..plan.clone()
            };
            assert!(p.check().is_err(), "{bad}");
        }
        assert!(plan.check().is_ok());
        assert_eq!(
            relay_args(Path::new(&socket_in_container())).join(" "),
            "egress relay --listen 127.0.0.1:3128 --socket /egress/egress.sock"
        );
    }
}

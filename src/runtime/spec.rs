//! The hardened container, as a pure function from settings to the Engine
//! API's create body. Every hardening item is set explicitly, so that
//! `docker inspect` shows it and tests can read it back (docs/container.md).

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, HostConfigLogConfig, PortBinding,
    ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum,
};

use super::guard::protocol::{self, GuardSettings};
use super::layout::{CHECKPOINT_DIR, HOME_DIR, SAFECLAW_IN_IMAGE, STATE_DIR, VAULT_DIR};

/// The container's host name.
pub const HOSTNAME: &str = "openclaw";
/// Marks containers safeclaw made; `status` and `audit` look for it.
pub const LABEL_MANAGED: &str = "dev.safeclaw.managed";
pub const GATEWAY_PORT: &str = "18789/tcp";
/// The engine keeps the gateway's stdout and stderr in plaintext files on
/// the host disk (under its data root). `safeclaw logs` and the stop's
/// report of the sealed generation read them, so they are kept, but
/// bounded: at most `LOG_MAX_FILES` files of `LOG_MAX_SIZE_MB` MB each
/// (the engine's units are decimal: "1m" is 10^6 bytes; docs/container.md).
/// The engine's own default keeps one file that grows without bound.
pub const LOG_DRIVER: &str = "json-file";
pub const LOG_MAX_SIZE_MB: u64 = 1;
pub const LOG_MAX_FILES: u64 = 3;

/// Resource limits, from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: i64,
    pub nano_cpus: i64,
    pub pids: i64,
}

/// The tmpfs size of the state dir (and of the checkpoint's copy of it).
pub const STATE_TMPFS_BYTES: u64 = 1 << 30;
/// The tmpfs size of /tmp and of the gateway's home.
pub const TMP_TMPFS_BYTES: u64 = 256 << 20;

/// A host folder the user chose to share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub host: String,
    pub container: String,
    pub writable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub image: String,
    /// Host directory holding the vault file.
    pub vault_dir: String,
    /// The vault's file name in that directory.
    pub vault_file: String,
    /// Container uid:gid (never 0).
    pub uid: u32,
    pub gid: u32,
    pub limits: Limits,
    pub shares: Vec<Share>,
    /// The gateway command the guard runs, e.g. `openclaw gateway run`.
    pub gateway: Vec<String>,
    /// Host port for the gateway, bound on 127.0.0.1 only.
    pub publish: Option<u16>,
    /// Older vault generations the guard keeps.
    pub keep_generations: usize,
    /// Time between checkpoints of the running state (zero: none).
    pub checkpoint_interval: Duration,
    /// How long the gateway may drain after SIGTERM.
    pub drain: Duration,
    /// Labels besides `LABEL_MANAGED` (onboarding marks its containers).
    pub labels: Vec<(String, String)>,
    /// With egress locked: the host directory of the egress proxy's socket
    /// (docs/egress.md). The container then has no network at all, and
    /// reaches the proxy only through that socket. None: egress open, the
    /// engine's default bridge.
    pub egress_socket_dir: Option<String>,
    /// A policy for the guard to store in the vault, which holds none yet
    /// (`GuardSettings::egress_policy`).
    pub egress_policy: Option<String>,
    /// The host directory of the vault's pinned skills, mounted read-only
    /// at `skills::MOUNT` (docs/skills.md); None when it pins none.
    pub pinned_skills_dir: Option<String>,
}

impl Spec {
    /// What the guard is told: the container's mount points, and the
    /// settings that reach it.
    pub fn guard(&self) -> GuardSettings {
        GuardSettings {
            vault: format!("{VAULT_DIR}/{}", self.vault_file).into(),
            state: STATE_DIR.into(),
            checkpoint_dir: CHECKPOINT_DIR.into(),
            key_timeout: protocol::KEY_TIMEOUT,
            keep_generations: self.keep_generations,
            checkpoint_interval: self.checkpoint_interval,
            drain: self.drain,
            relay: self
                .egress_socket_dir
                .as_ref()
                .map(|_| crate::egress::network::socket_in_container().into()),
            egress_policy: self.egress_policy.clone(),
            pinned_skills: self
                .pinned_skills_dir
                .as_ref()
                .map(|_| crate::skills::MOUNT.into()),
            gateway: self.gateway.clone(),
        }
    }
}

/// The engine behind the Docker-compatible API: where they differ in what
/// the same hardening must be written as (docs/engines.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Docker,
    /// Podman's compatible API (`podman system service`). Without explicit
    /// limits Podman applies containers.conf's defaults (1048576 open
    /// files, 4194304 processes), and runc fails at start wherever the
    /// service's own hard limits are lower: so safeclaw passes its own,
    /// within this process's hard limits.
    Podman {
        /// This process's hard limit on open files.
        max_files: u64,
        /// This process's hard limit on processes.
        max_processes: u64,
    },
}

/// Open files a Podman container may have (capped by `max_files`).
const PODMAN_NOFILE: u64 = 65536;
/// RLIMIT_NPROC counts every process of the uid on the host (rootful
/// Podman maps none): room for a few containers of the same user at
/// their pids limit each.
const PODMAN_NPROC_PER_PIDS: u64 = 4;

/// The tmpfs options: private to the container user, no exec, no devices,
/// no setuid, a size cap. Docker takes the owner as `uid=`/`gid=`; Podman
/// 4 refuses those and chowns to the container's user with `U`.
fn tmpfs_options(bytes: u64, uid: u32, gid: u32, engine: EngineKind) -> String {
    let owner = match engine {
        EngineKind::Docker => format!("uid={uid},gid={gid}"),
        EngineKind::Podman { .. } => "U".to_string(),
    };
    format!("rw,nosuid,nodev,noexec,size={bytes},mode=0700,{owner}")
}

fn nproc(pids: i64, max_processes: u64) -> i64 {
    let wanted = (pids.max(1) as u64).saturating_mul(PODMAN_NPROC_PER_PIDS);
    wanted.min(max_processes).min(i64::MAX as u64) as i64
}

/// The create body. Stdin is opened once for the key and closed after.
pub fn create_body(spec: &Spec, engine: EngineKind) -> ContainerCreateBody {
    let Spec {
        uid, gid, limits, ..
    } = spec;
    let mut binds = vec![format!("{}:{VAULT_DIR}:rw", spec.vault_dir)];
    binds.extend(spec.shares.iter().map(|s| {
        format!(
            "{}:{}:{}",
            s.host,
            s.container,
            if s.writable { "rw" } else { "ro" }
        )
    }));
    if let Some(dir) = &spec.egress_socket_dir {
        binds.push(crate::egress::network::gateway_bind(dir));
    }
    if let Some(dir) = &spec.pinned_skills_dir {
        binds.push(format!("{dir}:{}:ro", crate::skills::MOUNT));
    }
    let tmpfs = HashMap::from([
        (
            STATE_DIR.to_string(),
            tmpfs_options(STATE_TMPFS_BYTES, *uid, *gid, engine),
        ),
        (
            CHECKPOINT_DIR.to_string(),
            tmpfs_options(STATE_TMPFS_BYTES, *uid, *gid, engine),
        ),
        (
            HOME_DIR.to_string(),
            tmpfs_options(TMP_TMPFS_BYTES, *uid, *gid, engine),
        ),
        (
            "/tmp".to_string(),
            tmpfs_options(TMP_TMPFS_BYTES, *uid, *gid, engine),
        ),
    ]);
    let mut cmd = vec![protocol::COMMAND.to_string()];
    cmd.extend(spec.guard().to_argv());
    let seconds = |s: i64| s * 1_000_000_000;
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        user: Some(format!("{uid}:{gid}")),
        // Fixed, so OpenClaw recognises its own stale gateway lease (it
        // records pid, host name and start time) after a kill or a drain
        // timeout; a random container id would keep the lease "held".
        hostname: Some(HOSTNAME.to_string()),
        entrypoint: Some(vec![SAFECLAW_IN_IMAGE.to_string()]),
        cmd: Some(cmd),
        // Only non-secret settings: the key travels over stdin.
        env: Some(env(spec)),
        labels: Some(
            std::iter::once((LABEL_MANAGED.to_string(), "1".to_string()))
                .chain(spec.labels.iter().cloned())
                .collect(),
        ),
        open_stdin: Some(true),
        stdin_once: Some(true),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        healthcheck: Some(HealthConfig {
            test: Some(vec![
                "CMD".to_string(),
                SAFECLAW_IN_IMAGE.to_string(),
                "health".to_string(),
            ]),
            interval: Some(seconds(5)),
            timeout: Some(seconds(3)),
            retries: Some(3),
            start_period: Some(seconds(30)),
            start_interval: None,
        }),
        host_config: Some(HostConfig {
            binds: Some(binds),
            tmpfs: Some(tmpfs),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".to_string()]),
            cap_add: Some(vec![]),
            // Default seccomp stays on: only no-new-privileges is added.
            security_opt: Some(vec!["no-new-privileges:true".to_string()]),
            privileged: Some(false),
            pids_limit: Some(limits.pids),
            ulimits: ulimits(engine, limits.pids),
            memory: Some(limits.memory_bytes),
            memory_swap: Some(limits.memory_bytes),
            nano_cpus: Some(limits.nano_cpus),
            // Locked: loopback only; the relay is the way out.
            network_mode: Some(
                if spec.egress_socket_dir.is_some() {
                    "none"
                } else {
                    "bridge"
                }
                .to_string(),
            ),
            pid_mode: Some(String::new()),
            ipc_mode: Some("private".to_string()),
            uts_mode: Some(String::new()),
            userns_mode: Some(String::new()),
            // The engine cannot re-deliver the key, so it must not restart
            // the container: restarts are the supervisor's job.
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            port_bindings: Some(
                spec.publish
                    .map(|port| {
                        HashMap::from([(
                            GATEWAY_PORT.to_string(),
                            Some(vec![PortBinding {
                                host_ip: Some("127.0.0.1".to_string()),
                                host_port: Some(port.to_string()),
                            }]),
                        )])
                    })
                    .unwrap_or_default(),
            ),
            publish_all_ports: Some(false),
            init: Some(false),
            log_config: Some(log_config()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The container's environment: where OpenClaw keeps its state and, with
/// egress locked, the relay as every client's proxy: OpenClaw's own
/// setting (`OPENCLAW_PROXY_URL`, its docs/security/network-proxy.md) and
/// the variables curl, node's undici and most tools read. Those are a
/// convenience, not the firewall: without the relay nothing gets out.
fn env(spec: &Spec) -> Vec<String> {
    let mut env = vec![
        format!("HOME={HOME_DIR}"),
        format!("OPENCLAW_STATE_DIR={STATE_DIR}"),
        "OPENCLAW_DISABLE_BONJOUR=1".to_string(),
    ];
    if spec.egress_socket_dir.is_some() {
        let url = crate::egress::network::proxy_url();
        env.push(format!("OPENCLAW_PROXY_URL={url}"));
        for var in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
            env.push(format!("{var}={url}"));
        }
        // The gateway's own port answers on loopback, not through the proxy.
        for var in ["NO_PROXY", "no_proxy"] {
            env.push(format!("{var}=localhost,127.0.0.1,::1"));
        }
    }
    env
}

/// The engine's log of a container's output, bounded: it is plaintext on
/// the host disk (docs/container.md).
pub fn log_config() -> HostConfigLogConfig {
    HostConfigLogConfig {
        typ: Some(LOG_DRIVER.to_string()),
        config: Some(HashMap::from([
            ("max-size".to_string(), format!("{LOG_MAX_SIZE_MB}m")),
            ("max-file".to_string(), LOG_MAX_FILES.to_string()),
        ])),
    }
}

/// Explicit open-files and process limits on Podman (docs/engines.md):
/// without them it applies containers.conf's defaults, which runc cannot
/// set wherever the service's own hard limits are lower. Docker needs none.
pub fn ulimits(engine: EngineKind, pids: i64) -> Option<Vec<ResourcesUlimits>> {
    match engine {
        EngineKind::Docker => None,
        EngineKind::Podman {
            max_files,
            max_processes,
        } => Some(vec![
            ResourcesUlimits {
                name: Some("nofile".to_string()),
                soft: Some(PODMAN_NOFILE.min(max_files) as i64),
                hard: Some(PODMAN_NOFILE.min(max_files) as i64),
            },
            ResourcesUlimits {
                name: Some("nproc".to_string()),
                soft: Some(nproc(pids, max_processes)),
                hard: Some(nproc(pids, max_processes)),
            },
        ]),
    }
}

/// The capabilities an engine gives a container by default: Docker's set
/// (moby's `oci/caps/defaults.go`), which holds Podman's smaller default
/// set (containers.conf's `default_capabilities`). Podman records
/// `--cap-drop ALL` as the list of these it dropped.
pub const DEFAULT_CAPS: [&str; 14] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// What the engine recorded weaker than `asked`, in words: some engines
/// accept a limit and drop it without an error (rootless Podman on cgroups
/// v1 creates the container with `Memory` and `PidsLimit` 0, saying so only
/// in its own log). Read back from the created container's inspect, before
/// anything is handed to it.
pub fn weakened(asked: &HostConfig, recorded: &HostConfig) -> Vec<String> {
    let mut out = Vec::new();
    let capped = |asked: Option<i64>, recorded: Option<i64>| match (asked, recorded) {
        (Some(a), Some(r)) if a > 0 => r > 0 && r <= a,
        (Some(a), None) if a > 0 => false,
        _ => true,
    };
    if !capped(asked.memory, recorded.memory) {
        out.push(format!(
            "the memory limit ({} bytes asked, {:?} recorded)",
            asked.memory.unwrap_or(0),
            recorded.memory.unwrap_or(0)
        ));
    }
    if !capped(asked.pids_limit, recorded.pids_limit) {
        out.push(format!(
            "the process limit ({} asked, {} recorded)",
            asked.pids_limit.unwrap_or(0),
            recorded.pids_limit.unwrap_or(0)
        ));
    }
    if !capped(asked.memory_swap, recorded.memory_swap) {
        // Plaintext state lives in tmpfs: swap would write it to disk.
        out.push(format!(
            "the swap limit ({} bytes asked, {} recorded)",
            asked.memory_swap.unwrap_or(0),
            recorded.memory_swap.unwrap_or(0)
        ));
    }
    let names = |v: &Option<Vec<String>>| -> Vec<String> {
        v.iter()
            .flatten()
            .map(|c| c.trim_start_matches("CAP_").to_ascii_uppercase())
            .collect()
    };
    let asked_drop = names(&asked.cap_drop);
    let recorded_drop = names(&recorded.cap_drop);
    if asked_drop.iter().any(|c| c == "ALL")
        && !recorded_drop.iter().any(|c| c == "ALL")
        && !DEFAULT_CAPS
            .iter()
            .all(|d| recorded_drop.iter().any(|r| r == d))
    {
        out.push(format!(
            "dropping every capability ({recorded_drop:?} recorded)"
        ));
    }
    let added = names(&recorded.cap_add);
    if !added.is_empty() && names(&asked.cap_add).is_empty() {
        out.push(format!("no added capability ({added:?} recorded)"));
    }
    let nnp = |v: &Option<Vec<String>>| {
        v.iter().flatten().any(|o| {
            matches!(
                o.replace('=', ":").as_str(),
                "no-new-privileges" | "no-new-privileges:true"
            )
        })
    };
    if nnp(&asked.security_opt) && !nnp(&recorded.security_opt) {
        out.push("no-new-privileges".into());
    }
    // No network must stay no network. (A named network is recorded as
    // `bridge` by Podman: only `none` is compared.)
    if asked.network_mode.as_deref() == Some("none") && recorded.network_mode != asked.network_mode
    {
        out.push(format!(
            "the network {:?} ({:?} recorded)",
            asked.network_mode.as_deref().unwrap_or_default(),
            recorded.network_mode.as_deref().unwrap_or_default()
        ));
    }
    let missing: Vec<&String> = asked
        .tmpfs
        .iter()
        .flatten()
        .map(|(dir, _)| dir)
        .filter(|dir| {
            !recorded
                .tmpfs
                .as_ref()
                .is_some_and(|t| t.contains_key(*dir))
        })
        .collect();
    if !missing.is_empty() {
        out.push(format!("the tmpfs mounts {missing:?}"));
    }
    if asked.readonly_rootfs == Some(true) && recorded.readonly_rootfs != Some(true) {
        out.push("the read-only root file system".into());
    }
    if recorded.privileged == Some(true) && asked.privileged != Some(true) {
        out.push("unprivileged (the engine made it privileged)".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            image: "safeclaw-test:1".into(),
            vault_dir: "/home/me/.safeclaw".into(),
            vault_file: "openclaw.vault".into(),
            drain: Duration::from_secs(30),
            labels: Vec::new(),
            egress_socket_dir: None,
            egress_policy: None,
            pinned_skills_dir: None,
            uid: 1000,
            gid: 1000,
            limits: Limits {
                memory_bytes: 2 << 30,
                nano_cpus: 2_000_000_000,
                pids: 512,
            },
            shares: vec![Share {
                host: "/home/me/notes".into(),
                container: "/shared/notes".into(),
                writable: false,
            }],
            gateway: vec!["openclaw".into(), "gateway".into(), "run".into()],
            publish: None,
            keep_generations: 5,
            checkpoint_interval: Duration::from_secs(300),
        }
    }

    #[test]
    fn a_published_port_binds_loopback_only() {
        let mut s = spec();
        s.publish = Some(28789);
        let body = create_body(&s, EngineKind::Docker);
        let ports = body.host_config.unwrap().port_bindings.unwrap();
        let binding = ports[GATEWAY_PORT].as_ref().unwrap();
        assert_eq!(binding.len(), 1);
        assert_eq!(binding[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding[0].host_port.as_deref(), Some("28789"));
    }

    #[test]
    fn locked_egress_leaves_no_network_but_the_proxy_socket() {
        let mut s = spec();
        s.egress_socket_dir = Some("/home/me/.safeclaw/run/openclaw".into());
        let body = create_body(&s, EngineKind::Docker);
        let host = body.host_config.as_ref().unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        let binds = host.binds.as_ref().unwrap();
        assert_eq!(
            binds.last().map(String::as_str),
            Some("/home/me/.safeclaw/run/openclaw:/egress:ro")
        );
        let env = body.env.as_ref().unwrap();
        assert!(env.contains(&"OPENCLAW_PROXY_URL=http://127.0.0.1:3128".to_string()));
        assert!(env.contains(&"HTTPS_PROXY=http://127.0.0.1:3128".to_string()));
        // The guard runs the relay to the socket as both containers see it.
        let cmd = body.cmd.unwrap().join(" ");
        assert!(cmd.contains("--relay /egress/egress.sock --"), "{cmd}");
        // Open: the bridge, no relay, no proxy variables.
        let open = create_body(&spec(), EngineKind::Docker);
        assert!(open
            .cmd
            .unwrap()
            .join(" ")
            .contains("--relay off --egress-policy - --"));
        assert!(!open.env.unwrap().iter().any(|v| v.contains("PROXY")));
    }

    #[test]
    fn every_hardening_item_is_explicit() {
        let body = create_body(&spec(), EngineKind::Docker);
        let host = body.host_config.as_ref().unwrap();
        assert_eq!(body.user.as_deref(), Some("1000:1000"));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert_eq!(host.privileged, Some(false));
        assert_eq!(
            host.security_opt.as_deref(),
            Some(&["no-new-privileges:true".to_string()][..])
        );
        assert_eq!(host.pids_limit, Some(512));
        assert_eq!(host.memory, Some(2 << 30));
        assert_eq!(host.nano_cpus, Some(2_000_000_000));
        assert_eq!(
            host.restart_policy.as_ref().unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );
        assert_eq!(host.network_mode.as_deref(), Some("bridge"));
        assert!(host.port_bindings.as_ref().unwrap().is_empty());
        let tmpfs = host.tmpfs.as_ref().unwrap();
        assert!(tmpfs[STATE_DIR].contains("mode=0700") && tmpfs[STATE_DIR].contains("size="));
        assert!(tmpfs.contains_key("/tmp") && tmpfs.contains_key(HOME_DIR));
        let binds = host.binds.as_ref().unwrap();
        assert_eq!(binds[0], "/home/me/.safeclaw:/vault:rw");
        assert_eq!(binds[1], "/home/me/notes:/shared/notes:ro");
        assert!(!binds.iter().any(|b| b.contains("docker.sock")));
        assert_eq!(body.open_stdin, Some(true));
        assert_eq!(body.stdin_once, Some(true));
        assert_eq!(body.hostname.as_deref(), Some(HOSTNAME));
        // The engine's log of the gateway's output is bounded: 3 × 1 MB.
        let log = host.log_config.as_ref().unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        let log = log.config.as_ref().unwrap();
        assert_eq!(log["max-size"], "1m");
        assert_eq!(log["max-file"], "3");
        // Nothing secret-looking in env or cmd.
        for v in body.env.unwrap().iter().chain(body.cmd.unwrap().iter()) {
            assert!(
                !v.to_ascii_lowercase().contains("key=") && !v.contains("TOKEN"),
                "{v}"
            );
        }
    }

    #[test]
    fn limits_an_engine_dropped_are_named_and_kept_ones_are_not() {
        let asked = create_body(&spec(), EngineKind::Docker)
            .host_config
            .unwrap();
        assert!(weakened(&asked, &asked).is_empty());
        // What rootless Podman 4.3 on cgroups v1 records (measured).
        let dropped = HostConfig {
            memory: Some(0),
            pids_limit: Some(0),
            ..asked.clone()
        };
        let found = weakened(&asked, &dropped);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("the memory limit"), "{found:?}");
        assert!(found[1].starts_with("the process limit"), "{found:?}");
        let missing = HostConfig {
            memory: None,
            readonly_rootfs: Some(false),
            ..asked.clone()
        };
        assert_eq!(weakened(&asked, &missing).len(), 2);
        // What else an engine could drop: swap, capabilities,
        // no-new-privileges, the network, a tmpfs.
        let loose = HostConfig {
            memory_swap: Some(-1),
            cap_drop: Some(vec![]),
            cap_add: Some(vec!["NET_RAW".into()]),
            security_opt: Some(vec![]),
            tmpfs: Some(HashMap::new()),
            ..asked.clone()
        };
        let found = weakened(&asked, &loose);
        assert_eq!(found.len(), 5, "{found:?}");
        let no_network = HostConfig {
            network_mode: Some("none".into()),
            ..asked.clone()
        };
        assert_eq!(
            weakened(
                &no_network,
                &HostConfig {
                    network_mode: Some("bridge".into()),
                    ..asked.clone()
                }
            )
            .len(),
            1
        );
        assert!(weakened(&no_network, &no_network).is_empty());
        // Podman's way of recording a hardened container is not weaker.
        let podman = HostConfig {
            cap_drop: Some(DEFAULT_CAPS.iter().map(|c| format!("CAP_{c}")).collect()),
            security_opt: Some(vec!["no-new-privileges".into()]),
            ..asked.clone()
        };
        assert!(
            weakened(&asked, &podman).is_empty(),
            "{:?}",
            weakened(&asked, &podman)
        );
        // A tighter limit than asked is not a weakening.
        let tighter = HostConfig {
            memory: asked.memory.map(|m| m / 2),
            ..asked.clone()
        };
        assert!(weakened(&asked, &tighter).is_empty());
    }
}

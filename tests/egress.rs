//! The egress firewall on a real engine, against an "internet" this test
//! builds on this machine: a network of its own in a documentation range
//! (198.51.100.0/24, never routed anywhere), two servers on it standing in
//! for an allowed API host and a forbidden one, and a server of the test
//! itself on the host's address on that network. From inside a gateway
//! container with no network (the relay carrying loopback to the proxy's
//! socket): no direct connection reaches anything; through the proxy the
//! allowed name works, and the forbidden one, the host, a raw address and
//! an allowed name that resolves to a private address are refused,
//! logged, and never dialled. When the proxy dies nothing gets out, and
//! the engine brings it back.
//!
//! Packets go only to containers and networks this test made and to the
//! host's address on its own network; the private address (10.1.2.3) is
//! only a name's answer, refused before any dial (the proxy's counter).

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
};
use bollard::Docker;
use common::*;
use futures_util::StreamExt;
use safeclaw::egress::network::{self, Plan};
use safeclaw::egress::policy::Rule;

/// Everything the test made, removed when it ends, also on a panic.
struct Made<'a> {
    rt: &'a tokio::runtime::Runtime,
    docker: &'a Docker,
    containers: Vec<String>,
    networks: Vec<String>,
    image: String,
    gateway: String,
}

impl Drop for Made<'_> {
    fn drop(&mut self) {
        self.rt.block_on(async {
            for c in &self.containers {
                let _ = self
                    .docker
                    .remove_container(
                        c,
                        Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                    )
                    .await;
            }
            let _ = network::down(self.docker, &self.gateway).await;
            for n in &self.networks {
                let _ = self.docker.remove_network(n).await;
            }
            let _ = self
                .docker
                .remove_image(
                    &self.image,
                    Some(RemoveImageOptionsBuilder::new().force(true).build()),
                    None,
                )
                .await;
        });
    }
}

/// One /28 of 198.51.100.0/24 per test process (`subnet_base`).
fn internet_subnet() -> (String, [u8; 4]) {
    let base = subnet_base();
    (format!("198.51.100.{base}/28"), [198, 51, 100, base])
}

/// A second "internet" for a test running beside the first: one /28 of
/// 203.0.113.0/24, another documentation range.
fn second_internet_subnet() -> (String, [u8; 4]) {
    let base = subnet_base();
    (format!("203.0.113.{base}/28"), [203, 0, 113, base])
}

/// Makes the bridge network `name` on `subnet`, the host at `host_ip`
/// (its gateway address), removed with `made`.
fn make_internet(made: &mut Made, name: &str, subnet: &str, host_ip: &str, bridge: &str) {
    let kind = made
        .rt
        .block_on(safeclaw::runtime::engine::kind(made.docker))
        .unwrap();
    // Docker names the bridge as asked (the CI's second engine lets
    // containers on bridges named sc-… talk: .ci/engine-containerd.sh);
    // Podman names its own.
    let podman = matches!(kind, safeclaw::runtime::spec::EngineKind::Podman { .. });
    let options = (!podman).then(|| {
        HashMap::from([(
            "com.docker.network.bridge.name".to_string(),
            format!("{bridge}{}", subnet_base() / 16),
        )])
    });
    made.rt
        .block_on(made.docker.create_network(NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            options,
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.to_string()),
                    gateway: Some(host_ip.to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .unwrap();
    made.networks.push(name.to_string());
}

fn at(prefix: [u8; 4], host: u8) -> String {
    format!(
        "{}.{}.{}.{}",
        prefix[0],
        prefix[1],
        prefix[2],
        prefix[3] + host
    )
}

async fn run_on(
    docker: &Docker,
    name: &str,
    image: &str,
    net: &str,
    ip: Option<String>,
    cmd: &[&str],
) {
    let body = ContainerCreateBody {
        image: Some(image.into()),
        entrypoint: Some(vec!["/usr/local/bin/openclaw".into()]),
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        user: Some("10001:10001".into()),
        host_config: Some(HostConfig {
            network_mode: Some(net.into()),
            ulimits: safeclaw::runtime::spec::ulimits(
                safeclaw::runtime::engine::kind(docker).await.unwrap(),
                64,
            ),
            ..Default::default()
        }),
        networking_config: ip.map(|ip| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                net.to_string(),
                EndpointSettings {
                    ipam_config: Some(EndpointIpamConfig {
                        ipv4_address: Some(ip),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    };
    create_and_start(docker, name, body).await;
}

/// `openclaw net ARGS` in the gateway container: exit code and output.
fn probe(
    rt: &tokio::runtime::Runtime,
    docker: &Docker,
    gateway: &str,
    args: &[&str],
) -> (i64, String) {
    let mut cmd = vec!["/usr/local/bin/openclaw".to_string(), "net".to_string()];
    cmd.extend(args.iter().map(|s| s.to_string()));
    let (code, out) = rt
        .block_on(safeclaw::runtime::exec::exec_capture(
            docker, gateway, cmd, 4096,
        ))
        .unwrap();
    (code, String::from_utf8_lossy(&out).into_owned())
}

fn proxy_log(rt: &tokio::runtime::Runtime, docker: &Docker, proxy: &str) -> Vec<serde_json::Value> {
    rt.block_on(async {
        let mut logs = docker.logs(
            proxy,
            Some(LogsOptionsBuilder::new().stdout(true).stderr(true).build()),
        );
        let mut text = String::new();
        while let Some(Ok(chunk)) = logs.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("decision").is_some())
            .collect()
    })
}

#[test]
fn the_gateway_reaches_only_what_the_policy_allows_and_only_through_the_proxy() {
    let Some((rt, docker)) = engine() else {
        return;
    };
    let pid = std::process::id();
    let image = format!("safeclaw-standin:egress-{pid}");
    let gateway = format!("sc-egress-{pid}");
    let internet = format!("sc-internet-{pid}");
    let mut made = Made {
        rt: &rt,
        docker: &docker,
        containers: vec![],
        networks: vec![],
        image: image.clone(),
        gateway: gateway.clone(),
    };
    build_standin(&rt, &docker, &image);
    let engine_kind = rt
        .block_on(safeclaw::runtime::engine::kind(&docker))
        .unwrap();

    // The "internet": a network of the test's own, its gateway address the
    // host's, and two servers on it.
    let (subnet, prefix) = internet_subnet();
    let host_ip = at(prefix, 1);
    make_internet(&mut made, &internet, &subnet, &host_ip, "sc-inet");
    let (allowed_ip, forbidden_ip) = (at(prefix, 10), at(prefix, 11));
    for (name, ip, banner) in [
        (format!("sc-allowed-{pid}"), &allowed_ip, "allowed-server"),
        (
            format!("sc-forbidden-{pid}"),
            &forbidden_ip,
            "forbidden-server",
        ),
    ] {
        made.containers.push(name.clone());
        rt.block_on(run_on(
            &docker,
            &name,
            &image,
            &internet,
            Some(ip.clone()),
            &["net", "serve", "8443", banner],
        ));
    }

    // The firewall, as `start` makes it, with the test's names resolved
    // to the test's addresses (and one to a private address).
    let socket_dir = tempfile::TempDir::new().unwrap();
    std::fs::set_permissions(socket_dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let chown = std::process::Command::new("chown")
        .arg("10001:10001")
        .arg(socket_dir.path())
        .status()
        .unwrap();
    assert!(chown.success());
    let rules = ["allowed.test:8443", "rebind.test:8443", "host.test:8443"]
        .map(|r| Rule::parse(r).unwrap())
        .to_vec();
    let plan = Plan {
        gateway: gateway.clone(),
        image: image.clone(),
        rules,
        outside: internet.clone(),
        extra_hosts: vec![
            format!("allowed.test:{allowed_ip}"),
            format!("forbidden.test:{forbidden_ip}"),
            "rebind.test:10.1.2.3".into(),
            format!("host.test:{host_ip}"),
        ],
        socket_dir: socket_dir.path().display().to_string(),
        uid: 10001,
        gid: 10001,
        broker: None,
    };
    rt.block_on(network::up(&docker, &plan, engine_kind))
        .unwrap();
    let proxy = network::proxy_name(&gateway);
    let proxy_at = network::RELAY_LISTEN;

    // A server of the test on the host's address of its network: nothing
    // may ever connect to it.
    let host_server = TcpListener::bind((host_ip.as_str(), 8443)).unwrap();
    host_server.set_nonblocking(true).unwrap();

    // The gateway: no network, the socket's directory read-only, the relay.
    made.containers.push(gateway.clone());
    rt.block_on(create_and_start(
        &docker,
        &gateway,
        ContainerCreateBody {
            image: Some(image.clone()),
            entrypoint: Some(vec![safeclaw::runtime::layout::SAFECLAW_IN_IMAGE.into()]),
            cmd: Some(network::relay_args(std::path::Path::new(
                &network::socket_in_container(),
            ))),
            user: Some("10001:10001".into()),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                binds: Some(vec![network::gateway_bind(&plan.socket_dir)]),
                ulimits: safeclaw::runtime::spec::ulimits(engine_kind, 64),
                ..Default::default()
            }),
            ..Default::default()
        },
    ));

    // Wait for the relay to listen.
    let began = Instant::now();
    while probe(
        &rt,
        &docker,
        &gateway,
        &["via", proxy_at, "allowed.test:8443"],
    )
    .0 == 3
    {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "the relay never listened"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // No direct route anywhere.
    for (ip, port) in [
        (&allowed_ip, "8443"),
        (&forbidden_ip, "8443"),
        (&host_ip, "8443"),
    ] {
        let (code, out) = probe(&rt, &docker, &gateway, &["dial", ip, port]);
        assert_eq!(code, 1, "direct {ip}:{port}: {out}");
    }
    // Through the proxy: the allowed name, and nothing else.
    let (code, out) = probe(
        &rt,
        &docker,
        &gateway,
        &["via", proxy_at, "allowed.test:8443"],
    );
    assert_eq!(code, 0, "{out} {:?}", proxy_log(&rt, &docker, &proxy));
    assert!(
        out.contains("200") && out.contains("allowed-server"),
        "{out}"
    );
    for target in [
        "forbidden.test:8443".to_string(),
        format!("{allowed_ip}:8443"),
        format!("{host_ip}:8443"),
        "host.test:8443".to_string(),
        "rebind.test:8443".to_string(),
        "allowed.test:443".to_string(),
    ] {
        let (code, out) = probe(&rt, &docker, &gateway, &["via", proxy_at, &target]);
        assert_eq!(code, 1, "{target}: {out}");
        assert!(out.contains("403"), "{target}: {out}");
    }
    // An allowed name's tunnel must carry TLS for that name: another
    // server name (domain fronting behind a CDN) or plain bytes are cut
    // before anything reaches the destination.
    for (sni, reason) in [
        ("forbidden.test", "is not the CONNECT host"),
        ("-", "does not start with TLS"),
    ] {
        let (code, out) = probe(
            &rt,
            &docker,
            &gateway,
            &["via", proxy_at, "allowed.test:8443", sni],
        );
        assert_eq!(code, 4, "{sni}: {out}");
        assert!(!out.contains("allowed-server"), "{sni}: {out}");
        // The proxy logs a tunnel when it has closed it, which may be just
        // after the probe saw it cut (seen in CI): waited for, bounded.
        let started = std::time::Instant::now();
        loop {
            let log = proxy_log(&rt, &docker, &network::proxy_name(&gateway));
            let logged = log.iter().any(|e| {
                e["host"] == "allowed.test"
                    && e["decision"] == "denied"
                    && e["reason"].as_str().unwrap().contains(reason)
            });
            if logged {
                break;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "{sni}: {log:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    assert!(
        host_server.accept().is_err(),
        "something reached the host's server"
    );

    // The log: every decision, with reasons, and the private answer never
    // dialled (the dial counter did not move past the one allowed tunnel
    // and the waits for the proxy).
    let log = proxy_log(&rt, &docker, &proxy);
    let find = |host: &str, port: u64| {
        log.iter()
            .rev()
            .find(|e| e["host"] == host && e["port"] == port)
            .unwrap_or_else(|| panic!("no log line for {host}:{port}: {log:?}"))
            .clone()
    };
    let allowed = log
        .iter()
        .rev()
        .find(|e| e["host"] == "allowed.test" && e["decision"] == "allowed")
        .unwrap_or_else(|| panic!("no allowed tunnel: {log:?}"))
        .clone();
    assert_eq!(allowed["decision"], "allowed");
    assert!(allowed["received"].as_u64().unwrap() > 0, "{allowed}");
    let dials_after_allowed = allowed["dials"].as_u64().unwrap();
    for (host, reason) in [
        ("forbidden.test", "not in the allowlist"),
        (allowed_ip.as_str(), "address rule"),
        ("host.test", "the host"),
        ("rebind.test", "private (10.0.0.0/8)"),
    ] {
        let e = find(host, 8443);
        assert_eq!(e["decision"], "denied", "{e}");
        assert!(e["reason"].as_str().unwrap().contains(reason), "{e}");
        assert_eq!(
            e["dials"].as_u64().unwrap(),
            dials_after_allowed,
            "{host} dialled: {e}"
        );
        assert!(e["address"].is_null(), "{e}");
    }

    // `safeclaw egress log`: the same decisions, for people and scripts.
    let shown = safeclaw()
        .args(["egress", "log", "--name", &gateway])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let shown = String::from_utf8(shown).unwrap();
    assert!(
        shown.contains("denied  forbidden.test:8443 (not in the allowlist)"),
        "{shown}"
    );
    assert!(shown.contains("allowed allowed.test:8443 sent "), "{shown}");
    let as_json = safeclaw()
        .args(["--json", "egress", "log", "--name", &gateway])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let lines: Vec<serde_json::Value> = String::from_utf8(as_json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), log.len());

    // The proxy's container is hardened.
    let inspected = rt.block_on(docker.inspect_container(&proxy, None)).unwrap();
    let host_config = inspected.host_config.unwrap();
    assert_eq!(host_config.readonly_rootfs, Some(true));
    assert_eq!(
        inspected.config.unwrap().user.as_deref(),
        Some("10001:10001")
    );

    // Fail-closed: with the proxy's process killed nothing gets out; the
    // engine restarts it and the allowed name works again.
    let pid = inspected.state.unwrap().pid.unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (code, out) = probe(
        &rt,
        &docker,
        &gateway,
        &["via", proxy_at, "allowed.test:8443"],
    );
    assert_ne!(code, 0, "through a dead proxy: {out}");
    let (code, _) = probe(&rt, &docker, &gateway, &["dial", &allowed_ip, "8443"]);
    assert_eq!(code, 1);
    let began = Instant::now();
    loop {
        let (code, out) = probe(
            &rt,
            &docker,
            &gateway,
            &["via", proxy_at, "allowed.test:8443"],
        );
        if code == 0 {
            assert!(out.contains("allowed-server"), "{out}");
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the engine did not restart the proxy: {out}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // `down` leaves nothing of the firewall.
    rt.block_on(network::down(&docker, &gateway)).unwrap();
    assert!(rt.block_on(docker.inspect_container(&proxy, None)).is_err());
    drop(made);
}

/// The address the engine gave a container (on its one network).
fn address_of(rt: &tokio::runtime::Runtime, docker: &Docker, name: &str) -> String {
    let c = rt.block_on(docker.inspect_container(name, None)).unwrap();
    c.network_settings
        .and_then(|n| n.networks)
        .and_then(|n| n.into_values().find_map(|e| e.ip_address))
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| panic!("{name} has no address"))
}

fn policy_of(vault: &std::path::Path, pw: &std::path::Path) -> serde_json::Value {
    let out = safeclaw()
        .args(["--json", "egress", "show", "--vault"])
        .arg(vault)
        .arg("--password-file")
        .arg(pw)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

/// `safeclaw start` as a user runs it: egress locked by default, the
/// policy the vault's config needs stored by the guard at the first seal,
/// changed with `egress allow`/`deny` between runs, enforced by the proxy
/// `start` makes and `stop` removes; `status` counts what was refused.
/// The "internet" is two stand-in servers on the engine's default bridge
/// (the proxy's outside network), allowed by an address rule: no name is
/// ever resolved, nothing leaves this machine.
#[test]
fn start_locks_egress_to_the_vault_s_policy_and_stop_removes_the_proxy() {
    let Some((rt, docker)) = engine() else {
        return;
    };
    let pid = std::process::id();
    let image = format!("safeclaw-standin:egress-start-{pid}");
    let name = format!("sc-egress-start-{pid}");
    let (allowed, forbidden) = (
        format!("sc-allowed-b-{pid}"),
        format!("sc-forbidden-b-{pid}"),
    );
    let _made = Cleanup::new(&rt, &docker)
        .container(&name)
        .container(&allowed)
        .container(&forbidden)
        .image(&image);
    build_standin(&rt, &docker, &image);
    for (server, banner) in [
        (&allowed, "allowed-server"),
        (&forbidden, "forbidden-server"),
    ] {
        rt.block_on(run_on(
            &docker,
            server,
            &image,
            "bridge",
            None,
            &["net", "serve", "8443", banner],
        ));
    }
    let (allowed_ip, forbidden_ip) = (
        address_of(&rt, &docker, &allowed),
        address_of(&rt, &docker, &forbidden),
    );

    let dir = tempfile::TempDir::new().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::write(
        state.join("openclaw.json"),
        r#"{"channels":{"telegram":{"enabled":true,"tokenFile":"/state/t"}}}"#,
    )
    .unwrap();
    let vault_dir = dir.path().join("v");
    std::fs::create_dir(&vault_dir).unwrap();
    std::fs::set_permissions(&vault_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let vault = vault_dir.join("openclaw.vault");
    let pw = write_password(dir.path(), "pw", "egress start password");
    create_vault(&state, &vault, &pw);
    let start = || {
        safeclaw()
            .args(["start", "--name", &name, "--image", &image, "--vault"])
            .arg(&vault)
            .arg("--password-file")
            .arg(&pw)
            .assert()
    };
    let stop = || {
        safeclaw()
            .args(["stop", "--name", &name])
            .assert()
            .success()
    };

    // A vault without a policy: the defaults of its config, said, and
    // stored by the guard with the state.
    let v = policy_of(&vault, &pw);
    assert_eq!(v["stored"], false, "{v}");
    assert_eq!(v["allow"], serde_json::json!(["api.telegram.org:443"]));
    let out = start().success().get_output().stderr.clone();
    assert!(
        String::from_utf8_lossy(&out)
            .contains("allowing what its OpenClaw config names: api.telegram.org:443"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // A change while it runs would be sealed over by its guard: refused.
    safeclaw()
        .args(["egress", "allow", "example.test", "--vault"])
        .arg(&vault)
        .arg("--password-file")
        .arg(&pw)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("is running from this vault"));
    stop();
    let proxy = network::proxy_name(&name);
    assert!(
        rt.block_on(docker.inspect_container(&proxy, None)).is_err(),
        "stop left the proxy"
    );
    let v = policy_of(&vault, &pw);
    assert_eq!(v["stored"], true, "{v}");
    assert_eq!(v["allow"], serde_json::json!(["api.telegram.org:443"]));

    // Allowed by hand: one server, by its address.
    let rule = format!("{allowed_ip}:8443");
    safeclaw()
        .args(["egress", "allow", &rule, "--vault"])
        .arg(&vault)
        .arg("--password-file")
        .arg(&pw)
        .assert()
        .success();
    safeclaw()
        .args(["egress", "deny", "nothing.test", "--vault"])
        .arg(&vault)
        .arg("--password-file")
        .arg(&pw)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("has no rule nothing.test:443"));
    start().success();

    let c = rt.block_on(docker.inspect_container(&name, None)).unwrap();
    assert_eq!(c.host_config.unwrap().network_mode.as_deref(), Some("none"));
    let p = rt.block_on(docker.inspect_container(&proxy, None)).unwrap();
    let cmd = p.config.unwrap().cmd.unwrap().join(" ");
    // As the policy writes it: an address rule names its prefix.
    let shown = Rule::parse(&rule).unwrap().to_string();
    assert_eq!(shown, format!("{allowed_ip}/32:8443"));
    assert!(cmd.contains(&format!("--allow {shown}")), "{cmd}");
    assert!(cmd.contains("--allow api.telegram.org:443"), "{cmd}");

    // No direct route; through the relay the allowed server only.
    let proxy_at = network::RELAY_LISTEN;
    let began = Instant::now();
    let out = loop {
        let (code, out) = probe(&rt, &docker, &name, &["via", proxy_at, &rule]);
        if code != 3 {
            assert_eq!(code, 0, "{out}");
            break out;
        }
        assert!(began.elapsed() < Duration::from_secs(20), "no relay: {out}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(out.contains("allowed-server"), "{out}");
    for ip in [&allowed_ip, &forbidden_ip] {
        let (code, out) = probe(&rt, &docker, &name, &["dial", ip, "8443"]);
        assert_eq!(code, 1, "direct {ip}: {out}");
    }
    let (code, out) = probe(
        &rt,
        &docker,
        &name,
        &["via", proxy_at, &format!("{forbidden_ip}:8443")],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("403"), "{out}");

    // status: locked, and what was refused since the start.
    let out = safeclaw()
        .args(["--json", "status", "--name", &name, "--vault"])
        .arg(&vault)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["egress"]["locked"], true, "{v}");
    assert_eq!(v["egress"]["proxy_running"], true, "{v}");
    assert_eq!(v["egress"]["denied"], 1, "{v}");
    assert!(v["egress"]["allowed"].as_u64().unwrap() >= 1, "{v}");

    stop();
    assert!(rt.block_on(docker.inspect_container(&proxy, None)).is_err());
    // The log outlives the proxy's container: the guard sealed it into
    // the vault with the state.
    let kept = safeclaw()
        .args(["--json", "egress", "log", "--vault"])
        .arg(&vault)
        .arg("--password-file")
        .arg(&pw)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let kept: Vec<serde_json::Value> = String::from_utf8(kept)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        kept.iter()
            .any(|e| e["host"] == forbidden_ip.as_str() && e["decision"] == "denied"),
        "{kept:?}"
    );
    assert!(
        kept.iter()
            .any(|e| e["host"] == allowed_ip.as_str() && e["decision"] == "allowed"),
        "{kept:?}"
    );
    let v = policy_of(&vault, &pw);
    assert_eq!(
        v["allow"],
        serde_json::json!(["api.telegram.org:443", shown]),
        "{v}"
    );

    // A locked run killed with its host (no stop) leaves its proxy; an
    // open start removes it and has no route through it.
    start().success();
    rt.block_on(docker.kill_container(
        &name,
        None::<bollard::query_parameters::KillContainerOptions>,
    ))
    .unwrap();
    assert!(rt.block_on(docker.inspect_container(&proxy, None)).is_ok());
    safeclaw()
        .args([
            "start", "--egress", "open", "--name", &name, "--image", &image,
        ])
        .arg("--vault")
        .arg(&vault)
        .arg("--password-file")
        .arg(&pw)
        .assert()
        .success();
    assert!(
        rt.block_on(docker.inspect_container(&proxy, None)).is_err(),
        "an open start kept the killed run's proxy"
    );
    stop();
}

/// The upstream's request heads once it logged at least `n` (its log
/// reaches the engine a moment after the answer reaches the client), or
/// what it logged in 10 s.
fn heads_at_least(
    rt: &tokio::runtime::Runtime,
    docker: &Docker,
    upstream: &str,
    n: usize,
) -> Vec<String> {
    let began = Instant::now();
    loop {
        let heads = upstream_heads(rt, docker, upstream);
        if heads.len() >= n || began.elapsed() > Duration::from_secs(10) {
            return heads;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Issue 17's proof on a real engine: the gateway holds placeholders; the
/// proxy's broker puts the real API key into the model API's request and
/// the real bot token into the Telegram API's path, for their own hosts
/// only, over TLS it verifies (against the test's CA, given with
/// `--egress-ca`); a placeholder on its way anywhere else is refused and
/// logged; an upstream that echoes the secret back does not hand it to the
/// gateway; and at no point does any process of the gateway's container
/// hold a real value in its memory (read as root through /proc/PID/mem).
#[test]
fn the_broker_puts_real_secrets_into_requests_for_their_own_hosts_only() {
    let Some((rt, docker)) = engine() else {
        return;
    };
    let pid = std::process::id();
    let image = format!("safeclaw-standin:broker-{pid}");
    let gateway = format!("sc-broker-{pid}");
    let internet = format!("sc-internet-b-{pid}");
    let upstream = format!("sc-upstream-{pid}");
    let mut made = Made {
        rt: &rt,
        docker: &docker,
        containers: vec![gateway.clone()],
        networks: vec![],
        image: image.clone(),
        gateway: gateway.clone(),
    };
    build_standin(&rt, &docker, &image);
    let (subnet, prefix) = second_internet_subnet();
    make_internet(&mut made, &internet, &subnet, &at(prefix, 1), "sc-inetb");
    let upstream_ip = at(prefix, 2);
    let hosts = ["api.anthropic.com", "api.telegram.org", "third.test"];
    let dir = tempfile::TempDir::new().unwrap();
    let certs = test_ca(dir.path(), &hosts);
    made.containers.push(upstream.clone());
    rt.block_on(async {
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            entrypoint: Some(vec!["/usr/local/bin/openclaw".into()]),
            cmd: Some(
                [
                    "net",
                    "https-serve",
                    "443",
                    "/certs/leaf.pem",
                    "/certs/leaf.key",
                ]
                .map(String::from)
                .to_vec(),
            ),
            user: Some("10001:10001".into()),
            host_config: Some(HostConfig {
                network_mode: Some(internet.clone()),
                binds: Some(vec![format!("{}:/certs:ro", certs.display())]),
                // Port 443 as a non-root user.
                sysctls: Some(HashMap::from([(
                    "net.ipv4.ip_unprivileged_port_start".to_string(),
                    "0".to_string(),
                )])),
                ulimits: safeclaw::runtime::spec::ulimits(
                    safeclaw::runtime::engine::kind(&docker).await.unwrap(),
                    64,
                ),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    internet.clone(),
                    EndpointSettings {
                        ipam_config: Some(EndpointIpamConfig {
                            ipv4_address: Some(upstream_ip.clone()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        create_and_start(&docker, &upstream, body).await;
    });

    // A vault whose OpenClaw config names Anthropic and Telegram, with the
    // real values set from files, never argv.
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::write(
        state.join("openclaw.json"),
        r#"{"agents":{"defaults":{"model":"anthropic/claude-x"}},"channels":{"telegram":{"enabled":true}}}"#,
    )
    .unwrap();
    let vault_dir = dir.path().join("v");
    std::fs::create_dir(&vault_dir).unwrap();
    std::fs::set_permissions(&vault_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let vault = vault_dir.join("openclaw.vault");
    let pw = write_password(dir.path(), "pw", "broker test password");
    create_vault(&state, &vault, &pw);
    let real_key = format!("sk-ant-api03-REALKEY{pid}x");
    let real_token = format!("123456789:AAREALTOKEN{pid}x");
    for (name, value) in [("anthropic", &real_key), ("telegram", &real_token)] {
        let file = pw_file(dir.path(), name, format!("{value}\r\n").as_bytes());
        // New to the vault: its state gets the placeholder in a run of
        // the vault in the image (the stand-in keeps it in auth.json).
        safeclaw()
            .args(["secrets", "set", name, "--image", &image, "--from-file"])
            .arg(&file)
            .arg("--vault")
            .arg(&vault)
            .arg("--password-file")
            .arg(&pw)
            .assert()
            .success();
        std::fs::remove_file(file).unwrap();
    }
    safeclaw()
        .args(["egress", "allow", "third.test", "--vault"])
        .arg(&vault)
        .arg("--password-file")
        .arg(&pw)
        .assert()
        .success();
    let listed = secrets_list(safeclaw(), Some(&vault), &pw);
    let (key_ph, token_ph) = (
        placeholder_of(&listed, "anthropic"),
        placeholder_of(&listed, "telegram"),
    );
    assert!(!listed.to_string().contains("REAL"), "{listed}");
    // The state got the placeholders and the broker's URLs, nothing real.
    let out = dir.path().join("out");
    export_cmd(&vault, &out, &pw).assert().success();
    let auth = std::fs::read_to_string(out.join("auth.json")).unwrap();
    assert_eq!(auth, format!(r#"{{"anthropic":"{key_ph}"}}"#));
    assert_eq!(
        std::fs::read_to_string(out.join("credentials/telegram-bot-token")).unwrap(),
        token_ph
    );
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert!(
        config.contains("/safeclaw-broker/anthropic")
            && config.contains("/safeclaw-broker/telegram"),
        "{config}"
    );
    let mut files = Vec::new();
    files_under(&out, &mut files);
    assert!(files.iter().all(|(_, b)| !contains(b, "REAL")));

    let mut start = safeclaw();
    start
        .args(["start", "--name", &gateway, "--image", &image, "--vault"])
        .arg(&vault)
        .arg("--password-file")
        .arg(&pw)
        .args(["--egress-network", &internet, "--egress-ca"])
        .arg(certs.join("ca.pem"));
    for h in hosts {
        start.args(["--egress-host", &format!("{h}:{upstream_ip}")]);
    }
    start.assert().success();
    let real: [&str; 2] = [&real_key, &real_token];
    let sweep = |when: &str| {
        let held = container_holds(&rt, &docker, &gateway, &real);
        assert!(held.is_empty(), "{when}: {held:?}");
    };
    sweep("after start");

    let relay = network::RELAY_LISTEN;
    let http = |method: &str, path: &str, headers: &[String]| {
        let mut args = vec!["http", relay, method, path];
        args.extend(headers.iter().map(String::as_str));
        let began = Instant::now();
        loop {
            let (code, out) = probe(&rt, &docker, &gateway, &args);
            if code != 3 || began.elapsed() > Duration::from_secs(20) {
                assert!(!out.contains("REAL"), "the gateway saw a real value: {out}");
                return (code, out);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // The model API: the real key in its header, for its host only.
    let (_, out) = http(
        "POST",
        "/safeclaw-broker/anthropic/v1/messages",
        &[format!("x-api-key:{key_ph}")],
    );
    assert!(
        out.contains("401") && out.contains("stand-in upstream"),
        "{out}"
    );
    // The Telegram API: the real token in its path.
    let (code, out) = http(
        "GET",
        &format!("/safeclaw-broker/telegram/bot{token_ph}/getMe"),
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("standin_bot"), "{out}");
    let heads = heads_at_least(&rt, &docker, &upstream, 2);
    assert_eq!(heads.len(), 2, "{heads:#?}");
    assert!(
        heads[0].starts_with("POST /v1/messages HTTP/1.1\r\n")
            && heads[0]
                .to_ascii_lowercase()
                .contains("host: api.anthropic.com\r\n")
            && heads[0].contains(&format!("x-api-key: {real_key}\r\n"))
            && !heads[0].contains(&key_ph),
        "{}",
        heads[0]
    );
    assert!(
        heads[1].starts_with(&format!("GET /bot{real_token}/getMe HTTP/1.1\r\n"))
            && heads[1]
                .to_ascii_lowercase()
                .contains("host: api.telegram.org\r\n"),
        "{}",
        heads[1]
    );
    sweep("after the requests");

    // A placeholder on its way anywhere but its own host: refused, logged,
    // and nothing reaches an upstream.
    let (code, out) = http(
        "POST",
        &format!("/safeclaw-broker/telegram/bot{token_ph}/sendMessage"),
        &[format!("x-note:{key_ph}")],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("403"), "{out}");
    let (code, out) = http("GET", &format!("http://third.test/?k={key_ph}"), &[]);
    assert_eq!(code, 1, "{out}");
    let (code, out) = http(
        "CONNECT",
        "third.test:443",
        &[format!("Proxy-Authorization:Basic {token_ph}")],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("403"), "{out}");
    // An upstream that echoes what it got (the real key) back: cut off
    // before the gateway reads it.
    let (_, out) = http(
        "GET",
        "/safeclaw-broker/anthropic/echo",
        &[format!("x-api-key:{key_ph}")],
    );
    assert!(!out.contains(&real_key), "{out}");
    let heads = heads_at_least(&rt, &docker, &upstream, 3);
    assert_eq!(heads.len(), 3, "{heads:#?}");
    assert!(heads[2].starts_with("GET /echo HTTP/1.1"), "{}", heads[2]);

    let proxy = network::proxy_name(&gateway);
    let log = proxy_log(&rt, &docker, &proxy);
    let with_secret = |name: &str| {
        log.iter()
            .filter(|e| e["secret"] == name && e["decision"] == "allowed")
            .count()
    };
    assert!(
        with_secret("anthropic") >= 1 && with_secret("telegram") == 1,
        "{log:#?}"
    );
    let refused: Vec<&serde_json::Value> = log
        .iter()
        .filter(|e| {
            e["decision"] == "denied"
                && e["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("placeholder"))
        })
        .collect();
    assert_eq!(refused.len(), 3, "{log:#?}");
    assert!(!serde_json::to_string(&log).unwrap().contains("REAL"));

    // A checkpoint (SIGUSR1 to the guard) and the sweep again; a process
    // that holds a placeholder shows the sweep reads such memory.
    rt.block_on(
        docker.kill_container(
            &gateway,
            Some(
                bollard::query_parameters::KillContainerOptionsBuilder::new()
                    .signal("SIGUSR1")
                    .build(),
            ),
        ),
    )
    .unwrap();
    rt.block_on(async {
        let exec = docker
            .create_exec(
                &gateway,
                bollard::exec::CreateExecOptions {
                    // A server whose banner is the placeholder: it holds
                    // it in its heap while it runs.
                    cmd: Some(vec![
                        "/usr/local/bin/openclaw".to_string(),
                        "net".to_string(),
                        "serve".to_string(),
                        "18999".to_string(),
                        key_ph.clone(),
                    ]),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        docker
            .start_exec(
                &exec.id,
                Some(bollard::exec::StartExecOptions {
                    detach: true,
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
    });
    std::thread::sleep(Duration::from_secs(2));
    let control = container_holds(&rt, &docker, &gateway, &[&key_ph]);
    assert!(
        control.iter().any(|c| c.starts_with("memory of")),
        "the sweep found not even the placeholder in memory: {control:?}"
    );
    sweep("after a checkpoint");

    safeclaw()
        .args(["stop", "--name", &gateway])
        .assert()
        .success();
    // The vault knows when each secret was last put into a request.
    let listed = secrets_list(safeclaw(), Some(&vault), &pw);
    for s in listed["secrets"].as_array().unwrap() {
        assert!(s["last_used_ms"].as_u64().is_some(), "{listed}");
    }
    // Egress open would leave the gateway without its secrets: refused.
    safeclaw()
        .args([
            "start", "--egress", "open", "--name", &gateway, "--image", &image, "--vault",
        ])
        .arg(&vault)
        .arg("--password-file")
        .arg(&pw)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "keeps its API keys and bot token out of the gateway",
        ));
}

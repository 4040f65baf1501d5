//! Egress checks (docs/egress.md, "How to audit it"): whether a container
//! running OpenClaw has a route out of its own, and for safeclaw's gateways
//! whether their egress proxy is there, as hardened as
//! `egress::network::proxy_body` makes it, and what its policy lets out.
//! Pure over the engine's inspect JSON, like the container checks. The
//! policy is read from the proxy's own command line (`--allow RULE`):
//! that is what it enforces, whatever is stored elsewhere.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::container::{
    all_caps_dropped, dropped_caps, is_managed, is_root, no_new_privileges, num_at, str_at,
    strings_at,
};
use super::{Area, Finding, Findings, Severity};
use crate::egress::address::Cidr;
use crate::egress::network::{proxy_name, LABEL_EGRESS_OF, SOCKET_DIR_IN_CONTAINER};
use crate::egress::policy::{Rule, Target};
use crate::runtime::layout::SAFECLAW_IN_IMAGE;

const REFERENCE: &str = "safeclaw (docs/egress.md)";

/// Platforms that hand out names under their suffix to anyone (buckets,
/// static sites, functions, tunnels, request bins): a wildcard at, above
/// or below one of these lets a prompt-injected agent send its state to
/// the attacker's own bucket or site through the proxy. A table of its
/// own, not the Public Suffix List: the PSL has thousands of entries and
/// moves; these are the ones an exfiltration uses. Country-code suffixes
/// open to anyone (`co.uk`) are caught by their shape (`OPEN_SECOND_LEVEL`).
pub const SHARED_PLATFORMS: [&str; 31] = [
    // Cloud storage, CDNs and app hosting.
    "amazonaws.com",
    "cloudfront.net",
    "googleapis.com",
    "googleusercontent.com",
    "appspot.com",
    "firebaseapp.com",
    "web.app",
    "azurewebsites.net",
    "blob.core.windows.net",
    "github.io",
    "githubusercontent.com",
    "herokuapp.com",
    "vercel.app",
    "netlify.app",
    "pages.dev",
    "workers.dev",
    "r2.dev",
    "fly.dev",
    "onrender.com",
    "repl.co",
    // Tunnels to anyone's machine.
    "ngrok.io",
    "ngrok-free.app",
    "ngrok.app",
    "ngrok.dev",
    "trycloudflare.com",
    "loca.lt",
    // Request bins and out-of-band interaction catchers: made to receive
    // what a probe sends.
    "pipedream.net",
    "oastify.com",
    "interact.sh",
    "burpcollaborator.net",
    "requestcatcher.com",
];

/// Second-level labels that country-code registries open to anyone
/// (`co.uk`, `com.au`, `ne.jp`, `org.br`): a wildcard on `LABEL.CC` (a
/// two-letter top-level domain) covers every site registered there.
/// Registries for governments and schools (`gov.uk`, `edu.au`) are left
/// out: not anyone gets a name there.
pub const OPEN_SECOND_LEVEL: [&str; 13] = [
    "ac", "co", "com", "gen", "ltd", "me", "ne", "net", "nom", "or", "org", "plc", "web",
];

/// Private ranges an address rule may open for one server (a model server
/// on the LAN), and the widest such a rule should be: one IPv4 /24 (a
/// LAN's usual subnet) or one IPv6 /64 (a subnet).
const PRIVATE: [Cidr; 4] = [
    Cidr {
        addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)),
        prefix: 8,
    },
    Cidr {
        addr: IpAddr::V4(Ipv4Addr::new(172, 16, 0, 0)),
        prefix: 12,
    },
    Cidr {
        addr: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 0)),
        prefix: 16,
    },
    Cidr {
        addr: IpAddr::V6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)),
        prefix: 7,
    },
];
/// The engines' default networks, by the name their inspect gives them.
const DEFAULT_NETWORKS: [&str; 2] = ["bridge", "podman"];
const NARROWEST_WIDE_V4: u8 = 24;
const NARROWEST_WIDE_V6: u8 = 64;

/// True for safeclaw's egress proxy (its label), whichever gateway it
/// serves.
pub fn is_proxy(inspect: &Value) -> bool {
    egress_of(inspect).is_some()
}

/// The gateway a proxy's label names.
fn egress_of(inspect: &Value) -> Option<&str> {
    inspect
        .pointer("/Config/Labels")
        .and_then(Value::as_object)
        .and_then(|l| l.get(LABEL_EGRESS_OF))
        .and_then(Value::as_str)
}

fn name_of(c: &Value) -> &str {
    str_at(c, "/Name").unwrap_or("?").trim_start_matches('/')
}

/// A container name as it may appear in a fix hint: what the engine
/// accepts, else a placeholder (a label's value is anyone's text).
fn shown_name(name: &str) -> &str {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        name
    } else {
        "NAME"
    }
}

/// How safeclaw makes a gateway's proxy again, as it makes it.
fn remake(gateway: &str) -> String {
    let g = shown_name(gateway);
    format!("`safeclaw stop --name {g} && safeclaw start --name {g}` remakes it")
}

/// How a container reaches the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// `none`: loopback only.
    Isolated,
    /// The host's own network stack (`container.host-network` reports it).
    Host,
    /// Another container's network namespace, and whatever route it has.
    Shared(String),
    /// Networks with a route out: the default bridge, user networks.
    Attached(Vec<String>),
}

/// How the container whose inspect this is reaches the network.
pub fn network_of(c: &Value) -> Network {
    let mode = str_at(c, "/HostConfig/NetworkMode").unwrap_or_default();
    // What it is attached to, besides what the mode says: a `none`
    // container connected to a network later would have a route.
    let mut attached: Vec<String> = c
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object)
        .map(|n| {
            n.keys()
                .filter(|k| !k.is_empty() && *k != "none")
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    match mode {
        "host" => Network::Host,
        m if m.starts_with("container:") => Network::Shared(m["container:".len()..].to_string()),
        "none" if attached.is_empty() => Network::Isolated,
        "none" => Network::Attached(attached),
        m => {
            if attached.is_empty() {
                // Not recorded, or `default`: the engine's default bridge.
                let m = if m.is_empty() || m == "default" {
                    "bridge"
                } else {
                    m
                };
                attached.push(m.to_string());
            }
            Network::Attached(attached)
        }
    }
}

/// The host directory mounted at the socket's directory, if any.
fn socket_dir(c: &Value) -> Option<&str> {
    c.pointer("/Mounts")
        .and_then(Value::as_array)?
        .iter()
        .find(|m| {
            str_at(m, "/Destination").map(|d| d.trim_end_matches('/'))
                == Some(SOCKET_DIR_IN_CONTAINER)
        })
        .and_then(|m| str_at(m, "/Source"))
}

/// The egress findings of a container that runs OpenClaw
/// (`container::runs_openclaw`), given the container named
/// `<its name>-egress`, if there is one.
pub fn check_gateway(gateway: &Value, proxy: Option<&Value>) -> Vec<Finding> {
    let mut out = Findings::new(Area::Egress);
    let name = name_of(gateway);
    let managed = is_managed(gateway);
    let route = |out: &mut Findings, evidence: String, fix: &str| {
        out.add(
            "egress.route-out",
            Severity::High,
            "the gateway can reach anywhere: nothing filters what it sends out",
            evidence,
            fix,
            REFERENCE,
        )
    };
    let by_hand = "run it with safeclaw (`safeclaw start`: no network but its egress proxy, which lets out only an allowlist); at the least --network none";
    let g = shown_name(name);
    match network_of(gateway) {
        Network::Isolated => {}
        // One finding, not two: `container.host-network` (high) says it.
        Network::Host => return out.into_vec(),
        Network::Shared(other) => {
            route(
                &mut out,
                format!("{name}: HostConfig.NetworkMode is container:{other}: it has that container's network and its route out"),
                &if managed {
                    format!("safeclaw never makes this: `safeclaw stop --name {g} && safeclaw start --name {g}` without --egress open makes a gateway with no network but its egress proxy")
                } else {
                    by_hand.to_string()
                },
            );
            return out.into_vec();
        }
        Network::Attached(networks) => {
            let mode = str_at(gateway, "/HostConfig/NetworkMode").unwrap_or_default();
            // What `--egress open` makes: the engine's default bridge
            // (Docker's `bridge`; Podman records its default network,
            // `podman`, under the mode `bridge`).
            let open = managed
                && networks
                    .iter()
                    .all(|n| DEFAULT_NETWORKS.contains(&n.as_str()));
            route(
                &mut out,
                format!(
                    "{name}: HostConfig.NetworkMode is {}, attached to {}{}",
                    if mode.is_empty() { "unset" } else { mode },
                    networks.join(", "),
                    if open {
                        " (safeclaw start --egress open)"
                    } else {
                        ""
                    }
                ),
                &if managed {
                    format!("lock egress: `safeclaw stop --name {g} && safeclaw start --name {g}` without --egress open (only the proxy's allowlist gets out)")
                } else {
                    by_hand.to_string()
                },
            );
            return out.into_vec();
        }
    }
    let expected = proxy_name(name);
    let ours = proxy.filter(|p| egress_of(p) == Some(name));
    let missing = |out: &mut Findings, title: &str, evidence: String, fix: String| {
        out.add(
            "egress.proxy-missing",
            Severity::Medium,
            title,
            evidence,
            &fix,
            REFERENCE,
        )
    };
    match (proxy, ours) {
        (_, Some(p)) => {
            let running = p.pointer("/State/Running").and_then(Value::as_bool) == Some(true)
                && p.pointer("/State/Restarting").and_then(Value::as_bool) != Some(true);
            if managed && !running {
                let status = str_at(p, "/State/Status").unwrap_or("not running");
                missing(
                    &mut out,
                    "the gateway's egress proxy is not running: the bot reaches nothing, not even its model provider",
                    format!("{name}: {expected} is {status}"),
                    format!(
                        "{}; `docker logs {}` says why it stopped",
                        remake(name),
                        shown_name(&expected)
                    ),
                );
            }
            let (mine, its) = (socket_dir(gateway), socket_dir(p));
            if managed && (mine.is_none() || mine != its) {
                missing(
                    &mut out,
                    "the gateway and its egress proxy do not share the proxy's socket: the bot reaches nothing",
                    format!(
                        "{name}: {SOCKET_DIR_IN_CONTAINER} is {}, {expected}'s is {}",
                        mine.unwrap_or("not mounted"),
                        its.unwrap_or("not mounted")
                    ),
                    remake(name),
                );
            }
            out.list.extend(check_proxy(p));
        }
        (Some(_), None) if managed => missing(
            &mut out,
            "the container named like the gateway's egress proxy is not its proxy: the bot reaches nothing",
            format!("{name}: {expected} is not labelled {LABEL_EGRESS_OF}={name}"),
            format!(
                "remove or rename {} (a start never replaces a container it did not make), then `safeclaw stop --name {g} && safeclaw start --name {g}`",
                shown_name(&expected),
            ),
        ),
        (None, None) if managed => missing(
            &mut out,
            "the gateway has no egress proxy: the bot reaches nothing, not even its model provider",
            format!("{name}: no container named {expected}"),
            remake(name),
        ),
        // Not safeclaw's: no network and no proxy is a closed gateway.
        _ => {}
    }
    out.into_vec()
}

/// Everything weaker in a proxy's container than `proxy_body` makes it:
/// (title, evidence, how to fix).
fn weaknesses(p: &Value) -> Vec<(&'static str, String, &'static str)> {
    let name = name_of(p);
    let mut out = Vec::new();
    let user = str_at(p, "/Config/User").unwrap_or_default();
    if is_root(user) {
        out.push((
            "the egress proxy runs as root",
            format!("{name}: Config.User is {user:?}"),
            "as the gateway's user (--user UID:GID)",
        ));
    }
    if p.pointer("/HostConfig/Privileged").and_then(Value::as_bool) == Some(true) {
        out.push((
            "the egress proxy is privileged",
            format!("{name}: HostConfig.Privileged is true"),
            "without --privileged",
        ));
    }
    if p.pointer("/HostConfig/ReadonlyRootfs")
        .and_then(Value::as_bool)
        != Some(true)
    {
        out.push((
            "the egress proxy's root file system is writable",
            format!("{name}: HostConfig.ReadonlyRootfs is not true"),
            "read-only (--read-only)",
        ));
    }
    let added = strings_at(p, "/HostConfig/CapAdd");
    if !all_caps_dropped(p) || !added.is_empty() {
        out.push((
            "the egress proxy keeps capabilities",
            format!(
                "{name}: HostConfig.CapDrop is {:?}, CapAdd {added:?}",
                dropped_caps(p)
            ),
            "with every capability dropped (--cap-drop ALL) and none added",
        ));
    }
    if !no_new_privileges(p) {
        out.push((
            "the egress proxy's processes may gain privileges",
            format!("{name}: no no-new-privileges in HostConfig.SecurityOpt"),
            "with --security-opt no-new-privileges",
        ));
    }
    if strings_at(p, "/HostConfig/SecurityOpt")
        .iter()
        .any(|o| o.replace('=', ":") == "seccomp:unconfined")
    {
        out.push((
            "the egress proxy runs without seccomp",
            format!("{name}: HostConfig.SecurityOpt holds seccomp=unconfined"),
            "with the engine's default seccomp profile",
        ));
    }
    // What `Plan::check` refuses: on the host's network its loopback is the
    // host's; without a network of its own it reaches nothing, or shares
    // another container's.
    let mode = str_at(p, "/HostConfig/NetworkMode").unwrap_or_default();
    let network = match network_of(p) {
        Network::Host => Some("the host's network, whose loopback is the host's"),
        Network::Shared(_) => Some("another container's network"),
        Network::Isolated => Some("no network, so the bot reaches nothing"),
        Network::Attached(_) => None,
    };
    if let Some(why) = network {
        out.push((
            "the egress proxy is not on a bridge network of its own",
            format!(
                "{name}: HostConfig.NetworkMode is {} ({why})",
                if mode.is_empty() { "unset" } else { mode }
            ),
            "on a bridge network (the default: bridge)",
        ));
    }
    if num_at(p, "/HostConfig/Memory") <= 0 {
        out.push((
            "the egress proxy has no memory limit",
            format!("{name}: HostConfig.Memory is 0"),
            "with a memory limit (--memory 128m)",
        ));
    }
    if num_at(p, "/HostConfig/PidsLimit") <= 0 {
        out.push((
            "the egress proxy has no process limit",
            format!("{name}: HostConfig.PidsLimit is unset"),
            "with a process limit (--pids-limit 64)",
        ));
    }
    for m in p
        .pointer("/Mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let dest = str_at(m, "/Destination").unwrap_or_default();
        let kind = str_at(m, "/Type").unwrap_or_default();
        // A tmpfs holds no host data (Podman may list its own for a
        // read-only root).
        if kind == "tmpfs"
            || (dest.trim_end_matches('/') == SOCKET_DIR_IN_CONTAINER && kind == "bind")
        {
            continue;
        }
        let source = str_at(m, "/Source")
            .filter(|s| !s.is_empty())
            .or(str_at(m, "/Name"))
            .unwrap_or("?");
        out.push((
            "the egress proxy mounts more than its socket's directory",
            format!("{name}: {source} -> {dest} ({kind})"),
            "with its socket's directory as its only mount",
        ));
    }
    let entrypoint = strings_at(p, "/Config/Entrypoint");
    let cmd = strings_at(p, "/Config/Cmd");
    if entrypoint != [SAFECLAW_IN_IMAGE]
        || cmd.get(..2).map(|c| c == ["egress", "serve"]) != Some(true)
    {
        out.push((
            "the egress proxy's container runs something other than the proxy",
            format!(
                "{name}: Config.Entrypoint has {} argument(s), Config.Cmd {}, not {SAFECLAW_IN_IMAGE} egress serve",
                entrypoint.len(),
                cmd.len()
            ),
            "running `safeclaw egress serve`",
        ));
    }
    out
}

/// The rules on a proxy's command line (`--allow RULE` or `--allow=RULE`),
/// and how many did not parse (the proxy refuses to start with one).
pub fn allowed_rules(cmd: &[String]) -> (Vec<Rule>, usize) {
    let mut rules = Vec::new();
    let mut bad = 0;
    let mut args = cmd.iter();
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--allow") {
            Some("") => args.next().map(String::as_str),
            Some(v) => match v.strip_prefix('=') {
                Some(v) => Some(v),
                // `--allowed…`: another flag.
                None => continue,
            },
            None => continue,
        };
        match value.map(Rule::parse) {
            Some(Ok(r)) => rules.push(r),
            _ => bad += 1,
        }
    }
    (rules, bad)
}

/// Why a wildcard's suffix covers names anyone can have, or None.
pub fn shared_suffix(suffix: &str) -> Option<String> {
    for p in SHARED_PLATFORMS {
        if suffix == p {
            return Some(format!("{p}, where anyone can host content"));
        }
        if p.ends_with(&format!(".{suffix}")) {
            return Some(format!("{p} and more, where anyone can host content"));
        }
        // Below a platform is still its users' names: S3 bucket names hold
        // dots, regions and services nest (`*.s3.amazonaws.com`).
        if suffix.ends_with(&format!(".{p}")) {
            return Some(format!("names under {p}, where anyone can host content"));
        }
    }
    let labels: Vec<&str> = suffix.split('.').collect();
    if let [second, top] = labels[..] {
        if top.len() == 2
            && top.bytes().all(|b| b.is_ascii_alphabetic())
            && OPEN_SECOND_LEVEL.contains(&second)
        {
            return Some(format!(
                "every site registered under .{suffix}, a public suffix"
            ));
        }
    }
    None
}

/// The private range a wide address rule opens (wider than one /24 or
/// /64), or None.
pub fn wide_private(net: &Cidr) -> Option<Cidr> {
    let narrowest = if net.addr.is_ipv4() {
        NARROWEST_WIDE_V4
    } else {
        NARROWEST_WIDE_V6
    };
    if net.prefix >= narrowest {
        return None;
    }
    // CIDR blocks nest or are apart: they meet when the wider holds the
    // other's address.
    PRIVATE
        .iter()
        .find(|p| {
            p.addr.is_ipv4() == net.addr.is_ipv4() && (p.contains(net.addr) || net.contains(p.addr))
        })
        .copied()
}

/// What a proxy's policy lets out, from its rules.
pub fn check_policy(name: &str, rules: &[Rule]) -> Vec<Finding> {
    let mut out = Findings::new(Area::Egress);
    if rules.is_empty() {
        out.add(
            "egress.closed",
            Severity::Info,
            "egress is closed entirely: the bot reaches nothing, not even its model provider",
            format!("{name}: no --allow rule"),
            "nothing to change if that is meant; else `safeclaw egress allow HOST[:PORT]`",
            REFERENCE,
        );
    }
    for rule in rules {
        match &rule.target {
            Target::Suffix(suffix) => {
                if let Some(why) = shared_suffix(suffix) {
                    out.add(
                        "egress.wide-wildcard",
                        Severity::Medium,
                        "a wildcard rule lets the bot send to anyone's bucket or site (exfiltration)",
                        format!("{name}: --allow {rule} covers {why}"),
                        &format!("allow the exact names the bot needs instead (`safeclaw egress deny '{rule}'`, then `safeclaw egress allow HOST`)"),
                        REFERENCE,
                    );
                }
            }
            Target::Net(net) if net.prefix == 0 => out.add(
                "egress.any-address",
                Severity::High,
                "an address rule allows every address: the bot reaches any server by its address",
                format!("{name}: --allow {rule}"),
                &format!("remove it (`safeclaw egress deny '{rule}'`) and allow names, or the one server's ADDR:PORT"),
                REFERENCE,
            ),
            Target::Net(net) => {
                if let Some(private) = wide_private(net) {
                    out.add(
                        "egress.private-range",
                        Severity::Medium,
                        "an address rule opens a wide private range: the LAN, the host's neighbours",
                        format!("{name}: --allow {rule} reaches into {private}, wider than one /{}", if net.addr.is_ipv4() { NARROWEST_WIDE_V4 } else { NARROWEST_WIDE_V6 }),
                        "narrow it to the one server the bot needs (ADDR:PORT, e.g. 192.168.1.10:11434)",
                        REFERENCE,
                    );
                }
            }
            Target::Host(_) => {}
        }
    }
    out.into_vec()
}

/// The findings of safeclaw's egress proxy itself: anything weaker than
/// `proxy_body` makes it (high: it is the firewall), and its policy.
pub fn check_proxy(proxy: &Value) -> Vec<Finding> {
    let mut out = Findings::new(Area::Egress);
    let gateway = egress_of(proxy).unwrap_or_default();
    for (title, evidence, how) in weaknesses(proxy) {
        out.add(
            "egress.proxy-not-hardened",
            Severity::High,
            title,
            evidence,
            &format!("{}, {how}", remake(gateway)),
            REFERENCE,
        );
    }
    let (rules, _unparsed) = allowed_rules(&strings_at(proxy, "/Config/Cmd"));
    out.list.extend(check_policy(name_of(proxy), &rules));
    out.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::ids;
    use crate::egress::network::{proxy_body, Plan, DEFAULT_OUTSIDE};
    use crate::runtime::spec::{EngineKind, DEFAULT_CAPS, LABEL_MANAGED};
    use serde_json::json;

    const SOCKET_DIR: &str = "/home/me/.safeclaw/run/openclaw";

    /// A gateway's inspect as the engine records it: `mode` its network
    /// mode, the socket's directory mounted when egress is locked.
    fn gateway(managed: bool, mode: &str) -> Value {
        let labels = if managed {
            json!({ LABEL_MANAGED: "1" })
        } else {
            json!({})
        };
        let mounts = if mode == "none" {
            json!([{ "Type": "bind", "Source": SOCKET_DIR, "Destination": "/egress", "RW": false }])
        } else {
            json!([])
        };
        let networks = if mode.starts_with("container:") {
            json!({})
        } else {
            json!({ if mode == "default" { "bridge" } else { mode }: {} })
        };
        json!({
            "Name": "/openclaw",
            "Config": { "User": "10001:10001", "Image": "safeclaw-openclaw:1", "Labels": labels },
            "HostConfig": { "NetworkMode": mode },
            "NetworkSettings": { "Networks": networks },
            "Mounts": mounts,
        })
    }

    fn plan(rules: &[&str]) -> Plan {
        Plan {
            gateway: "openclaw".into(),
            image: "safeclaw-openclaw:1".into(),
            rules: rules.iter().map(|r| Rule::parse(r).unwrap()).collect(),
            outside: DEFAULT_OUTSIDE.into(),
            extra_hosts: vec![],
            socket_dir: SOCKET_DIR.into(),
            uid: 10001,
            gid: 10001,
            broker: None,
        }
    }

    /// The proxy's inspect as Docker records what `proxy_body` asks, running.
    fn proxy_of(plan: &Plan) -> Value {
        let body = proxy_body(plan, &[], EngineKind::Docker);
        let host = body.host_config.clone().unwrap();
        let mounts: Vec<Value> = host
            .binds
            .iter()
            .flatten()
            .map(|b| {
                let parts: Vec<&str> = b.split(':').collect();
                json!({ "Type": "bind", "Source": parts[0], "Destination": parts[1], "RW": parts[2] == "rw" })
            })
            .collect();
        json!({
            "Name": format!("/{}", proxy_name(&plan.gateway)),
            "State": { "Status": "running", "Running": true, "Restarting": false },
            "Config": {
                "User": body.user, "Image": body.image, "Entrypoint": body.entrypoint,
                "Cmd": body.cmd, "Labels": body.labels,
            },
            "HostConfig": serde_json::to_value(&host).unwrap(),
            "NetworkSettings": { "Networks": { "bridge": {} } },
            "Mounts": mounts,
        })
    }

    fn proxy() -> Value {
        proxy_of(&plan(&["api.anthropic.com", "api.telegram.org"]))
    }

    #[test]
    fn a_gateway_with_a_route_out_is_high_and_says_how_to_lock_it() {
        // safeclaw's own, `--egress open`: the default bridge.
        let found = check_gateway(&gateway(true, "bridge"), None);
        assert_eq!(ids(&found), ["egress.route-out"]);
        let f = &found[0];
        assert_eq!((f.area, f.severity), (Area::Egress, Severity::High));
        assert!(f.evidence.contains("--egress open"), "{}", f.evidence);
        assert!(
            f.fix
                .contains("safeclaw start --name openclaw` without --egress open"),
            "{}",
            f.fix
        );
        // The guide's container (not safeclaw's): the engine's default, a
        // user network, another container's network.
        for mode in ["default", "bridge", "my-net", "container:abc", ""] {
            let found = check_gateway(&gateway(false, mode), None);
            assert_eq!(ids(&found), ["egress.route-out"], "{mode}");
            assert!(!found[0].evidence.contains("--egress open"));
            assert!(found[0].fix.contains("--network none"), "{}", found[0].fix);
        }
        // Podman's record of the same: its default network is `podman`.
        let mut podman = gateway(true, "bridge");
        podman["NetworkSettings"]["Networks"] = json!({ "podman": {} });
        let found = check_gateway(&podman, None);
        assert!(found[0]
            .evidence
            .ends_with("attached to podman (safeclaw start --egress open)"));
        // safeclaw's, on a network it never uses: not `--egress open`.
        let found = check_gateway(&gateway(true, "my-net"), None);
        assert!(!found[0].evidence.contains("--egress open"));
        // A `none` container attached to a network afterwards has a route.
        let mut attached = gateway(true, "none");
        attached["NetworkSettings"]["Networks"] = json!({ "none": {}, "bridge": {} });
        assert_eq!(
            network_of(&attached),
            Network::Attached(vec!["bridge".into()])
        );
        assert_eq!(ids(&check_gateway(&attached, None)), ["egress.route-out"]);
    }

    #[test]
    fn the_host_network_is_reported_once_by_the_container_checks() {
        let g = gateway(false, "host");
        assert!(check_gateway(&g, None).is_empty());
        let s = crate::audit::container::Subject {
            inspect: &g,
            image: None,
            changes: &[],
            pinned_image_ids: None,
            podman: false,
        };
        assert!(ids(&crate::audit::container::check(&s)).contains(&"container.host-network"));
    }

    #[test]
    fn a_locked_gateway_needs_its_running_proxy() {
        let g = gateway(true, "none");
        // The proxy as safeclaw makes it, with a provider's and a channel's
        // host: nothing to say.
        let found = check_gateway(&g, Some(&proxy()));
        assert!(found.is_empty(), "{found:#?}");
        // No proxy at all.
        let found = check_gateway(&g, None);
        assert_eq!(ids(&found), ["egress.proxy-missing"]);
        assert_eq!(found[0].severity, Severity::Medium);
        assert!(found[0]
            .evidence
            .contains("no container named openclaw-egress"));
        assert!(found[0]
            .fix
            .contains("safeclaw stop --name openclaw && safeclaw start --name openclaw"));
        // Stopped, or dying over and over.
        for state in [
            json!({ "Status": "exited", "Running": false }),
            json!({ "Status": "restarting", "Running": true, "Restarting": true }),
        ] {
            let mut p = proxy();
            p["State"] = state;
            let found = check_gateway(&g, Some(&p));
            assert_eq!(ids(&found), ["egress.proxy-missing"]);
            assert!(found[0].fix.contains("docker logs openclaw-egress"));
        }
        // A container of that name that is someone else's: not checked as
        // the proxy, and no proxy.
        let mut other = proxy();
        other["Config"]["Labels"] = json!({ LABEL_EGRESS_OF: "another" });
        other["HostConfig"]["Privileged"] = json!(true);
        let found = check_gateway(&g, Some(&other));
        assert_eq!(ids(&found), ["egress.proxy-missing"]);
        assert!(found[0].evidence.contains("is not labelled"));
        // The two containers must share the socket's directory.
        let mut elsewhere = proxy();
        elsewhere["Mounts"][0]["Source"] = json!("/somewhere/else");
        let found = check_gateway(&g, Some(&elsewhere));
        assert_eq!(ids(&found), ["egress.proxy-missing"]);
        assert!(found[0].evidence.contains("/somewhere/else"));
        // Not safeclaw's: no network and no proxy is simply closed.
        assert!(check_gateway(&gateway(false, "none"), None).is_empty());
    }

    #[test]
    fn every_weakening_of_the_proxy_is_high() {
        let weakened: [(&str, Value); 13] = [
            ("/Config/User", json!("")),
            ("/Config/User", json!("0:0")),
            ("/HostConfig/Privileged", json!(true)),
            ("/HostConfig/ReadonlyRootfs", json!(false)),
            ("/HostConfig/CapDrop", json!([])),
            ("/HostConfig/CapAdd", json!(["NET_RAW"])),
            ("/HostConfig/SecurityOpt", json!([])),
            ("/HostConfig/NetworkMode", json!("host")),
            ("/HostConfig/NetworkMode", json!("none")),
            ("/HostConfig/NetworkMode", json!("container:openclaw")),
            ("/HostConfig/Memory", json!(0)),
            ("/HostConfig/PidsLimit", Value::Null),
            ("/Config/Entrypoint", json!(["/bin/sh"])),
        ];
        for (field, value) in weakened {
            let mut p = proxy();
            *p.pointer_mut(field).unwrap() = value.clone();
            if field == "/HostConfig/NetworkMode" {
                let key = value.as_str().unwrap();
                p["NetworkSettings"]["Networks"] = if key.starts_with("container:") {
                    json!({})
                } else {
                    json!({ key: {} })
                };
            }
            let found = check_proxy(&p);
            assert_eq!(
                ids(&found),
                ["egress.proxy-not-hardened"],
                "{field} {value}"
            );
            assert_eq!(found[0].severity, Severity::High);
            assert!(found[0].evidence.starts_with("openclaw-egress: "));
            assert!(found[0].fix.starts_with("`safeclaw stop --name openclaw"));
        }
        // Seccomp off, a second mount, a command that is not the proxy.
        let mut p = proxy();
        p["HostConfig"]["SecurityOpt"] = json!(["no-new-privileges", "seccomp=unconfined"]);
        p["Mounts"].as_array_mut().unwrap().push(
            json!({ "Type": "bind", "Source": "/var/run/docker.sock", "Destination": "/run/docker.sock" }),
        );
        p["Config"]["Cmd"] = json!(["sh", "-c", "sleep 1"]);
        let found = check_proxy(&p);
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found
            .iter()
            .any(|f| f.evidence.contains("/var/run/docker.sock")));
        // Its command is not a proxy's: no rule read, egress closed (info).
        assert!(ids(&found).contains(&"egress.closed"));
        // Every weakness shows at once, from a container made by hand.
        let by_hand =
            json!({ "Name": "/x-egress", "Config": { "Labels": { LABEL_EGRESS_OF: "x" } } });
        let found = check_proxy(&by_hand);
        assert!(found.len() >= 8, "{found:#?}");
        assert!(found
            .iter()
            .filter(|f| f.id == "egress.proxy-not-hardened")
            .all(|f| f.fix.contains("--name x ")));
    }

    #[test]
    fn podman_s_record_of_a_hardened_proxy_is_hardened() {
        let mut p = proxy();
        p["HostConfig"]["CapDrop"] = json!(DEFAULT_CAPS);
        p["HostConfig"]["CapAdd"] = json!([]);
        assert!(check_proxy(&p).is_empty());
        // Most of the default set is not all of it.
        p["HostConfig"]["CapDrop"] = json!(["CHOWN", "KILL"]);
        assert_eq!(ids(&check_proxy(&p)), ["egress.proxy-not-hardened"]);
    }

    #[test]
    fn the_proxy_is_not_taken_for_an_openclaw_gateway() {
        let p = proxy();
        assert!(is_proxy(&p) && !is_proxy(&gateway(true, "none")));
        assert!(!crate::audit::container::runs_openclaw(&p));
        let s = crate::audit::container::Subject {
            inspect: &p,
            image: None,
            changes: &[],
            pinned_image_ids: None,
            podman: false,
        };
        let found = crate::audit::container::check(&s);
        assert!(
            !ids(&found).iter().any(|i| i.starts_with("container.state")),
            "{found:#?}"
        );
    }

    #[test]
    fn rules_are_read_from_the_proxy_s_command_line() {
        let cmd: Vec<String> = [
            "egress",
            "serve",
            "--socket",
            "/egress/egress.sock",
            "--allow",
            "api.anthropic.com",
            "--allow=*.example.com:8443",
            "--allowed",
            "x",
            "--refuse",
            "172.17.0.1/32",
            "--allow",
            "not a rule",
            "--allow",
        ]
        .map(String::from)
        .to_vec();
        let (rules, bad) = allowed_rules(&cmd);
        let shown: Vec<String> = rules.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["api.anthropic.com:443", "*.example.com:8443"]);
        assert_eq!(bad, 2);
    }

    #[test]
    fn wildcards_over_shared_platforms_and_public_suffixes_are_found() {
        // Every entry is a name a wildcard rule can hold.
        for p in SHARED_PLATFORMS {
            assert!(Rule::parse(&format!("*.{p}")).is_ok(), "{p}");
            assert!(shared_suffix(p).is_some(), "{p}");
        }
        for (suffix, why) in [
            ("amazonaws.com", "amazonaws.com, where"),
            ("s3.amazonaws.com", "names under amazonaws.com"),
            ("s3.eu-west-1.amazonaws.com", "names under amazonaws.com"),
            ("windows.net", "blob.core.windows.net and more"),
            ("core.windows.net", "blob.core.windows.net and more"),
            ("github.io", "github.io, where"),
            ("co.uk", "every site registered under .co.uk"),
            ("com.au", "every site registered under .com.au"),
            ("ne.jp", "every site registered under .ne.jp"),
        ] {
            let got = shared_suffix(suffix).unwrap_or_default();
            assert!(got.contains(why), "{suffix}: {got}");
        }
        for fine in [
            "telegram.org",
            "anthropic.com",
            "example.co.uk",
            "gov.uk",
            "co.com",
            "com.xyz",
            "notgithub.io",
        ] {
            assert_eq!(shared_suffix(fine), None, "{fine}");
        }
    }

    #[test]
    fn wide_private_ranges_and_every_address_are_found() {
        let net = |s: &str| Cidr::parse(s).unwrap();
        for wide in [
            "10.0.0.0/8",
            "10.1.0.0/16",
            "172.16.0.0/12",
            "172.20.0.0/14",
            "192.168.0.0/16",
            "192.168.0.0/23",
            "8.0.0.0/6",
            "fd00::/8",
            "fd12:3456::/48",
        ] {
            assert!(wide_private(&net(wide)).is_some(), "{wide}");
        }
        for narrow in [
            "192.168.1.0/24",
            "10.0.0.5/32",
            "172.32.0.0/11",
            "8.0.0.0/8",
            "fd12:3456:789a:1::/64",
            "2001:db8::/32",
        ] {
            assert!(wide_private(&net(narrow)).is_none(), "{narrow}");
        }
        let rules: Vec<Rule> = [
            "api.anthropic.com",
            "generativelanguage.googleapis.com",
            "*.telegram.org",
            "*.googleapis.com",
            "10.0.0.0/16:11434",
            "192.168.1.10:11434",
            "0.0.0.0/0",
        ]
        .iter()
        .map(|r| Rule::parse(r).unwrap())
        .collect();
        let found = check_policy("p", &rules);
        assert_eq!(
            ids(&found),
            [
                "egress.wide-wildcard",
                "egress.private-range",
                "egress.any-address"
            ]
        );
        assert_eq!(
            found[0].evidence,
            "p: --allow *.googleapis.com:443 covers googleapis.com, where anyone can host content"
        );
        assert!(found[0]
            .fix
            .contains("safeclaw egress deny '*.googleapis.com:443'"));
        assert_eq!(
            found[1].evidence,
            "p: --allow 10.0.0.0/16:11434 reaches into 10.0.0.0/8, wider than one /24"
        );
        assert_eq!(found[2].severity, Severity::High);
        // No rule at all: closed, for the record.
        let found = check_policy("p", &[]);
        assert_eq!(ids(&found), ["egress.closed"]);
        assert_eq!(found[0].severity, Severity::Info);
        // From the proxy's command line, through check_gateway.
        let p = proxy_of(&plan(&["*.workers.dev", "api.openai.com"]));
        let found = check_gateway(&gateway(true, "none"), Some(&p));
        assert_eq!(ids(&found), ["egress.wide-wildcard"]);
        let p = proxy_of(&plan(&[]));
        assert_eq!(ids(&check_proxy(&p)), ["egress.closed"]);
    }
}

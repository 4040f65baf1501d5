//! The egress policy: which destinations the gateway may reach through the
//! proxy. A pure format (parse, match, serialise, defaults from OpenClaw's
//! config); where it is kept and how it reaches the proxy is elsewhere
//! (docs/egress.md).
//!
//! A rule is `HOST[:PORT]`, `*.SUFFIX[:PORT]`, or an address range
//! `ADDR[/PREFIX]` (`[V6[/PREFIX]]:PORT` with a port). The port defaults to
//! 443: the gateway's traffic is HTTPS through `CONNECT`. `*.example.com`
//! matches names under example.com, not example.com itself. A name rule
//! never lets the proxy dial a refused address (`address::refusal`); an
//! address rule is the operator's explicit word for that range (a model
//! server on the LAN) and does, except for link-local, where cloud
//! metadata services answer.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::address::{self, Cidr};

/// The port a rule without one allows: HTTPS.
pub const DEFAULT_PORT: u16 = 443;
/// Bounds on what a policy may hold: it is read from files and argv.
pub const MAX_RULES: usize = 256;
pub const MAX_RULE_LEN: usize = 300;
/// DNS's own limit on a name.
const MAX_HOST_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Exactly this name (lower case, no trailing dot).
    Host(String),
    /// Any name ending in `.SUFFIX`.
    Suffix(String),
    /// Any address in the range, reached by address or by name.
    Net(Cidr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub target: Target,
    pub port: u16,
}

impl Rule {
    pub fn parse(s: &str) -> Result<Rule, String> {
        let bad = |why: &str| Err(format!("{s:?} is not a rule: {why}"));
        if s.is_empty() || s.len() > MAX_RULE_LEN {
            return bad("empty or too long");
        }
        // `[v6/prefix]:port` or `[v6]`.
        if let Some(rest) = s.strip_prefix('[') {
            let Some((inside, after)) = rest.split_once(']') else {
                return bad("no closing ]");
            };
            let port = match after {
                "" => DEFAULT_PORT,
                p => match p.strip_prefix(':').and_then(parse_port) {
                    Some(p) => p,
                    None => return bad("the port must be 1 to 65535"),
                },
            };
            return match Cidr::parse(inside) {
                Some(net) if net.addr.is_ipv6() => Ok(Rule {
                    target: Target::Net(net),
                    port,
                }),
                _ => bad("not an IPv6 address or range"),
            };
        }
        // A bare IPv6 address or range (several colons) has no port.
        if s.matches(':').count() > 1 {
            return match Cidr::parse(s) {
                Some(net) => Ok(Rule {
                    target: Target::Net(net),
                    port: DEFAULT_PORT,
                }),
                None => bad("not an IPv6 address or range (write [ADDR]:PORT for a port)"),
            };
        }
        let (target, port) = match s.rsplit_once(':') {
            Some((t, p)) => match parse_port(p) {
                Some(p) => (t, p),
                None => return bad("the port must be 1 to 65535"),
            },
            None => (s, DEFAULT_PORT),
        };
        let first = target.as_bytes().first().copied().unwrap_or(b'a');
        if first.is_ascii_digit()
            && target
                .split('/')
                .next()
                .is_some_and(|a| a.parse::<IpAddr>().is_ok())
        {
            return match Cidr::parse(target) {
                Some(net) => Ok(Rule {
                    target: Target::Net(net),
                    port,
                }),
                None => bad("not an address range"),
            };
        }
        if let Some(suffix) = target.strip_prefix("*.") {
            let suffix = host_name(suffix).map_err(|why| format!("{s:?} is not a rule: {why}"))?;
            if !suffix.contains('.') {
                return bad("a wildcard must name at least two labels (*.example.com)");
            }
            return Ok(Rule {
                target: Target::Suffix(suffix),
                port,
            });
        }
        let host = host_name(target).map_err(|why| format!("{s:?} is not a rule: {why}"))?;
        Ok(Rule {
            target: Target::Host(host),
            port,
        })
    }

    /// Whether this rule lets the proxy open `host:port`, where `host` is
    /// what the client asked for (a name, lower case, or an address).
    pub fn allows_name(&self, host: &str, port: u16) -> bool {
        port == self.port
            && match &self.target {
                Target::Host(h) => h == host,
                Target::Suffix(s) => host
                    .strip_suffix(s.as_str())
                    .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
                Target::Net(_) => false,
            }
    }

    pub fn allows_address(&self, ip: IpAddr, port: u16) -> bool {
        port == self.port && matches!(&self.target, Target::Net(n) if n.contains(ip))
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.target {
            Target::Host(h) => write!(f, "{h}:{}", self.port),
            Target::Suffix(s) => write!(f, "*.{s}:{}", self.port),
            Target::Net(n) if n.addr.is_ipv6() => write!(f, "[{n}]:{}", self.port),
            Target::Net(n) => write!(f, "{n}:{}", self.port),
        }
    }
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok().filter(|&p| p > 0)
}

/// A DNS name as a client may ask for it: letters, digits, hyphens and
/// underscores in labels of 1 to 63, lower-cased, without a trailing dot.
pub fn host_name(s: &str) -> Result<String, String> {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() || s.len() > MAX_HOST_LEN {
        return Err("a name is 1 to 253 characters".into());
    }
    for label in s.split('.') {
        let ok = !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(format!("{label:?} is not a DNS label"));
        }
    }
    // No top-level domain is numeric: such a "name" is an address, or
    // something a resolver would read as one (`1.2.3`, `0x7f.1`).
    let s = s.to_ascii_lowercase();
    if s.rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()) || l.starts_with("0x"))
    {
        return Err(format!("{s:?} looks like an address, not a name"));
    }
    Ok(s)
}

/// `--egress`: the gateway behind the proxy (`locked`, the default), or on
/// the engine's bridge with a route to anywhere (`open`, audited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Locked,
    Open,
}

/// What the gateway may reach.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// `--egress open`: no proxy at all, today's open network. Audited.
    pub open: bool,
    pub rules: Vec<Rule>,
}

/// The decision on one destination, before any address is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A name some rule allows: resolve it, then dial only addresses that
    /// `address::refusal` and `Policy::dialable` pass.
    Name,
    /// An address an address rule allows explicitly.
    Address,
    Denied(&'static str),
}

impl Policy {
    /// Whether the client may ask for `host:port` (`host` as sent: a name
    /// or an address literal, IPv6 without brackets).
    pub fn judge(&self, host: &str, port: u16) -> Verdict {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return if self.rules.iter().any(|r| r.allows_address(ip, port)) {
                Verdict::Address
            } else {
                Verdict::Denied("an address not allowed by an address rule")
            };
        }
        let Ok(name) = host_name(host) else {
            return Verdict::Denied("not a valid name");
        };
        if self.rules.iter().any(|r| r.allows_name(&name, port)) {
            Verdict::Name
        } else {
            Verdict::Denied("not in the allowlist")
        }
    }

    /// Why the proxy must not dial `ip` for an allowed destination, or None.
    /// An address rule covering `ip` on `port` overrides the refusal of
    /// private ranges, never what `address::never` names (the host, the
    /// metadata addresses, the set-up's own).
    pub fn undialable(&self, ip: IpAddr, port: u16, extra: &[Cidr]) -> Option<&'static str> {
        let why = address::refusal(ip, extra)?;
        let ip = address::canonical(ip);
        if !address::never(ip, extra) && self.rules.iter().any(|r| r.allows_address(ip, port)) {
            return None;
        }
        Some(why)
    }
}

/// The policy as it is stored and handed to the proxy.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    version: u32,
    open: bool,
    allow: Vec<String>,
}

const STORED_VERSION: u32 = 1;
/// A stored policy larger than this is refused before it is parsed.
pub const MAX_STORED_LEN: usize = MAX_RULES * (MAX_RULE_LEN + 8) + 64;

pub fn encode(p: &Policy) -> Vec<u8> {
    let stored = Stored {
        version: STORED_VERSION,
        open: p.open,
        allow: p.rules.iter().map(ToString::to_string).collect(),
    };
    let mut out = serde_json::to_vec_pretty(&stored).expect("a policy serializes");
    out.push(b'\n');
    out
}

/// The stored form on one line (as the guard is handed it).
pub fn encode_line(p: &Policy) -> String {
    let stored = Stored {
        version: STORED_VERSION,
        open: p.open,
        allow: p.rules.iter().map(ToString::to_string).collect(),
    };
    serde_json::to_string(&stored).expect("a policy serializes")
}

pub fn decode(bytes: &[u8]) -> Result<Policy, String> {
    if bytes.len() > MAX_STORED_LEN {
        return Err(format!(
            "an egress policy is at most {MAX_STORED_LEN} bytes"
        ));
    }
    let stored: Stored =
        serde_json::from_slice(bytes).map_err(|e| format!("not an egress policy: {e}"))?;
    if stored.version != STORED_VERSION {
        return Err(format!(
            "egress policy version {} is not known",
            stored.version
        ));
    }
    if stored.allow.len() > MAX_RULES {
        return Err(format!("an egress policy holds at most {MAX_RULES} rules"));
    }
    let rules = stored
        .allow
        .iter()
        .map(|r| Rule::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Policy {
        open: stored.open,
        rules,
    })
}

/// API hosts of the model providers and channels OpenClaw names, by the id
/// it uses in model references (`anthropic/claude-…`) and under `channels`.
/// Others are added with `safeclaw egress allow`.
const KNOWN_HOSTS: [(&str, &[&str]); 12] = [
    ("anthropic", &["api.anthropic.com"]),
    ("openai", &["api.openai.com"]),
    ("openai-codex", &["chatgpt.com"]),
    ("google", &["generativelanguage.googleapis.com"]),
    ("gemini", &["generativelanguage.googleapis.com"]),
    ("openrouter", &["openrouter.ai"]),
    ("mistral", &["api.mistral.ai"]),
    ("groq", &["api.groq.com"]),
    ("xai", &["api.x.ai"]),
    ("deepseek", &["api.deepseek.com"]),
    ("telegram", &["api.telegram.org"]),
    ("discord", &["discord.com", "gateway.discord.gg"]),
];

/// The rules an onboarded OpenClaw config needs: the API hosts of the
/// providers its models name (`agents.defaults.model`, `models.providers`)
/// and of its enabled channels. Names not in `KNOWN_HOSTS` are returned
/// apart, for the user to allow by hand.
pub fn defaults_from_config(config: &serde_json::Value) -> (Vec<Rule>, Vec<String>) {
    let mut ids: Vec<String> = Vec::new();
    let model = config.pointer("/agents/defaults/model");
    let mut refs: Vec<&str> = Vec::new();
    match model {
        Some(serde_json::Value::String(s)) => refs.push(s),
        Some(m) => {
            refs.extend(m.get("primary").and_then(|v| v.as_str()));
            if let Some(f) = m.get("fallbacks").and_then(|v| v.as_array()) {
                refs.extend(f.iter().filter_map(|v| v.as_str()).take(MAX_RULES));
            }
        }
        None => {}
    }
    ids.extend(
        refs.iter()
            .filter_map(|r| r.split_once('/'))
            .map(|(p, _)| p.to_string()),
    );
    if let Some(providers) = config
        .pointer("/models/providers")
        .and_then(|v| v.as_object())
    {
        ids.extend(providers.keys().take(MAX_RULES).cloned());
    }
    // The providers of its auth profiles (`onboard --api-key-file` makes
    // one, `anthropic:manual`, without naming a model).
    if let Some(profiles) = config.pointer("/auth/profiles").and_then(|v| v.as_object()) {
        ids.extend(
            profiles
                .values()
                .take(MAX_RULES)
                .filter_map(|p| p.get("provider").and_then(|v| v.as_str()))
                .map(str::to_string),
        );
    }
    if let Some(channels) = config.get("channels").and_then(|v| v.as_object()) {
        for (id, ch) in channels.iter().take(MAX_RULES) {
            if ch.get("enabled").and_then(|v| v.as_bool()) != Some(false) {
                ids.push(id.clone());
            }
        }
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    rules_for_ids(&ids)
}

/// The rules for provider and channel ids (as OpenClaw names them), each
/// host once; the ids with no known host apart.
pub fn rules_for_ids(ids: &[&str]) -> (Vec<Rule>, Vec<String>) {
    let mut rules: Vec<Rule> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for id in ids {
        let id = id.to_ascii_lowercase();
        match KNOWN_HOSTS.iter().find(|(k, _)| *k == id) {
            Some((_, hosts)) => {
                for h in *hosts {
                    let rule = Rule {
                        target: Target::Host((*h).to_string()),
                        port: DEFAULT_PORT,
                    };
                    if !rules.contains(&rule) {
                        rules.push(rule);
                    }
                }
            }
            None if !unknown.contains(&id) => unknown.push(id),
            None => {}
        }
    }
    (rules, unknown)
}

/// Every host `KNOWN_HOSTS` names: what the onboarding wizard may test.
pub fn known_rules() -> Vec<Rule> {
    let ids: Vec<&str> = KNOWN_HOSTS.iter().map(|(id, _)| *id).collect();
    rules_for_ids(&ids).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(s: &str) -> Rule {
        Rule::parse(s).unwrap()
    }

    #[test]
    fn rules_parse_and_print_back() {
        for (given, shown) in [
            ("api.anthropic.com", "api.anthropic.com:443"),
            ("API.Telegram.org.", "api.telegram.org:443"),
            ("example.com:8443", "example.com:8443"),
            ("*.example.com", "*.example.com:443"),
            ("10.0.0.5", "10.0.0.5/32:443"),
            ("192.168.1.0/24:11434", "192.168.1.0/24:11434"),
            ("fd00::/8", "[fd00::/8]:443"),
            ("[fd00::1]:8080", "[fd00::1/128]:8080"),
        ] {
            assert_eq!(rule(given).to_string(), shown, "{given}");
            assert_eq!(rule(shown), rule(given));
        }
        for bad in [
            "",
            ":443",
            "example.com:0",
            "example.com:65536",
            "example.com:+1",
            "*.com",
            "*",
            "exa mple.com",
            "-a.com",
            "a..com",
            "[fd00::1",
            "[10.0.0.1]:80",
            "10.0.0.0/33",
            "fd00::/8:443",
            "2.8.6.7.",
            "1.2.3",
            "10.0.0.0x7f",
        ] {
            assert!(Rule::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(Rule::parse(&"a".repeat(MAX_RULE_LEN + 1)).is_err());
        assert!(Rule::parse(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn names_match_exactly_or_under_a_suffix_on_the_rule_s_port() {
        let p = Policy {
            open: false,
            rules: vec![rule("api.anthropic.com"), rule("*.telegram.org")],
        };
        assert_eq!(p.judge("api.anthropic.com", 443), Verdict::Name);
        assert_eq!(p.judge("API.ANTHROPIC.COM.", 443), Verdict::Name);
        assert!(matches!(
            p.judge("api.anthropic.com", 80),
            Verdict::Denied(_)
        ));
        assert!(matches!(
            p.judge("evil-api.anthropic.com", 443),
            Verdict::Denied(_)
        ));
        assert!(matches!(p.judge("anthropic.com", 443), Verdict::Denied(_)));
        assert_eq!(p.judge("api.telegram.org", 443), Verdict::Name);
        assert!(matches!(p.judge("telegram.org", 443), Verdict::Denied(_)));
        assert!(matches!(
            p.judge("eviltelegram.org", 443),
            Verdict::Denied(_)
        ));
        assert!(matches!(p.judge(".telegram.org", 443), Verdict::Denied(_)));
        // A raw address needs an address rule, whatever names allow.
        assert!(matches!(
            p.judge("149.154.167.220", 443),
            Verdict::Denied(_)
        ));
        assert!(matches!(p.judge("not a name", 443), Verdict::Denied(_)));
    }

    #[test]
    fn an_allowed_name_never_reaches_a_refused_address() {
        let extra = [Cidr::parse("172.30.0.0/16").unwrap()];
        let p = Policy {
            open: false,
            rules: vec![rule("api.anthropic.com"), rule("192.168.1.10:11434")],
        };
        let dial = |ip: &str, port| p.undialable(ip.parse().unwrap(), port, &extra);
        assert!(dial("169.254.169.254", 443).is_some());
        assert!(dial("127.0.0.1", 443).is_some());
        assert!(dial("10.0.0.1", 443).is_some());
        assert!(dial("1.2.3.4", 443).is_none());
        // The operator's address rule opens that address on that port only.
        assert!(dial("192.168.1.10", 11434).is_none());
        assert!(dial("192.168.1.10", 443).is_some());
        assert!(dial("192.168.1.11", 11434).is_some());
        // Never the metadata range or the set-up's own, whatever rule.
        let wide = Policy {
            open: false,
            rules: vec![rule("0.0.0.0/0"), rule("::/0")],
        };
        assert!(wide
            .undialable("169.254.169.254".parse().unwrap(), 443, &extra)
            .is_some());
        assert!(wide
            .undialable("fe80::1".parse().unwrap(), 443, &extra)
            .is_some());
        assert!(wide
            .undialable("172.30.0.1".parse().unwrap(), 443, &extra)
            .is_some());
        assert!(wide
            .undialable("10.0.0.1".parse().unwrap(), 443, &extra)
            .is_none());
    }

    #[test]
    fn the_stored_form_round_trips_and_is_bounded() {
        let p = Policy {
            open: false,
            rules: vec![
                rule("api.anthropic.com"),
                rule("*.example.com:8443"),
                rule("fd00::/8"),
            ],
        };
        assert_eq!(decode(&encode(&p)).unwrap(), p);
        assert!(decode(b"{\"version\":2,\"open\":false,\"allow\":[]}").is_err());
        assert!(decode(b"{\"version\":1,\"open\":false,\"allow\":[],\"x\":1}").is_err());
        assert!(decode(b"{\"version\":1,\"open\":false,\"allow\":[\"*\"]}").is_err());
        let many = format!(
            "{{\"version\":1,\"open\":false,\"allow\":[{}]}}",
            vec!["\"a.b\""; MAX_RULES + 1].join(",")
        );
        assert!(decode(many.as_bytes()).unwrap_err().contains("at most"));
        assert!(decode(&vec![b' '; MAX_STORED_LEN + 1]).is_err());
    }

    #[test]
    fn defaults_come_from_the_models_and_channels_the_config_names() {
        let config = json!({
            "agents": { "defaults": { "model": {
                "primary": "anthropic/claude-sonnet-4-5",
                "fallbacks": ["openai/gpt-5", "someone/model"] } } },
            "channels": { "telegram": { "botToken": "x" }, "discord": { "enabled": false } }
        });
        let (rules, unknown) = defaults_from_config(&config);
        let shown: Vec<String> = rules.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "api.anthropic.com:443",
                "api.openai.com:443",
                "api.telegram.org:443"
            ]
        );
        assert_eq!(unknown, ["someone"]);
        assert_eq!(defaults_from_config(&json!({})), (vec![], vec![]));
        let (rules, _) =
            defaults_from_config(&json!({"agents":{"defaults":{"model":"google/gemini-2.5"}}}));
        assert_eq!(
            rules[0].to_string(),
            "generativelanguage.googleapis.com:443"
        );
        // As `onboard --api-key-file` leaves it (measured on 2026.9.6): an
        // auth profile, no model named.
        let onboarded = json!({
            "auth": { "profiles": { "anthropic:manual": { "provider": "anthropic", "mode": "api_key" } } },
            "channels": { "telegram": { "tokenFile": "/state/credentials/telegram-bot-token", "enabled": true } }
        });
        let (rules, unknown) = defaults_from_config(&onboarded);
        let shown: Vec<String> = rules.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["api.anthropic.com:443", "api.telegram.org:443"]);
        assert!(unknown.is_empty());
    }
}

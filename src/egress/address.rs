//! Which destination addresses the egress proxy never dials, whatever name
//! led to them: a pure function over addresses, so the refusal of the
//! metadata address, the LAN and the host is tested without sending a
//! packet anywhere (docs/egress.md).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address range: `addr/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `fd00::/8`, or a bare address (a /32 or /128).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            // Digits only: no sign, no spaces, no leading `+`.
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().ok()?
            }
            Some(_) => return None,
            None => max,
        };
        if prefix > max {
            return None;
        }
        // A range of IPv4-mapped addresses is that IPv4 range: addresses
        // are judged as the IPv4 address they reach (`canonical`).
        if let IpAddr::V6(v6) = addr {
            if let (Some(v4), true) = (v6.to_ipv4_mapped(), prefix >= 96) {
                return Some(Cidr {
                    addr: IpAddr::V4(v4),
                    prefix: prefix - 96,
                });
            }
        }
        Some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`, or the deprecated
/// `::a.b.c.d`) is judged as the IPv4 address it reaches.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                // IPv4-compatible (::a.b.c.d, not :: or ::1).
                if s[..6] == [0; 6] && u128::from(v6) > 1 {
                    IpAddr::V4(Ipv4Addr::from(u128::from(v6) as u32))
                } else {
                    ip
                }
            }
        },
        v4 => v4,
    }
}

/// The IPv4 address an IPv6 address reaches through a translator or a
/// tunnel: NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48, the last
/// 32 bits), 6to4 (2002:AABB:CCDD::/48), Teredo (2001:0::/32, the client's
/// address inverted in the last 32 bits).
pub fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = (u128::from(v6) & 0xffff_ffff) as u32;
    match s {
        [0x64, 0xff9b, 0, 0, 0, 0, ..] | [0x64, 0xff9b, 1, ..] => Some(Ipv4Addr::from(low)),
        [0x2002, a, b, ..] => Some(Ipv4Addr::from((u32::from(a) << 16) | u32::from(b))),
        [0x2001, 0, ..] => Some(Ipv4Addr::from(!low)),
        _ => None,
    }
}

/// AWS's metadata service on IPv6 (Nitro instances).
const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

/// Addresses no rule opens: link-local (where metadata services answer),
/// AWS's IPv6 metadata address, the set-up's own (`extra`: the host as the
/// proxy's network reaches it), and IPv6 addresses that embed one of these
/// IPv4 addresses. Loopback is the proxy's own container (its network is
/// never the host's: `network::Plan::check`), so an explicit address rule
/// may open it, as the unit tests and the benchmark do.
pub fn never(ip: IpAddr, extra: &[Cidr]) -> bool {
    let ip = canonical(ip);
    if extra.iter().any(|c| c.contains(ip)) {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            o[0] == 169 && o[1] == 254
        }
        IpAddr::V6(v6) => {
            v6.segments()[0] & 0xffc0 == 0xfe80
                || v6 == AWS_METADATA_V6
                || embedded_v4(v6).is_some_and(|v4| never(IpAddr::V4(v4), extra))
        }
    }
}

/// Why `ip` is never dialled, or None when it is an ordinary public
/// address. `extra` holds what only the running set-up knows: the
/// gateway's own network and the host's address on the proxy's networks.
pub fn refusal(ip: IpAddr, extra: &[Cidr]) -> Option<&'static str> {
    let ip = canonical(ip);
    if extra.iter().any(|c| c.contains(ip)) {
        return Some("an address of the host or of safeclaw's own networks");
    }
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let why = match o {
        [0, ..] => "\"this network\" (0.0.0.0/8)",
        [127, ..] => "loopback",
        [10, ..] => "private (10.0.0.0/8)",
        [172, b, ..] if (16..=31).contains(&b) => "private (172.16.0.0/12)",
        [192, 168, ..] => "private (192.168.0.0/16)",
        [169, 254, ..] => "link-local, where cloud metadata services answer",
        [100, b, ..] if (64..=127).contains(&b) => "shared address space (CGNAT, 100.64.0.0/10)",
        [192, 0, 0, _] => "IETF protocol assignments (192.0.0.0/24)",
        [198, 18 | 19, ..] => "benchmarking (198.18.0.0/15)",
        [a, ..] if (224..=239).contains(&a) => "multicast",
        [a, ..] if a >= 240 => "reserved or broadcast (240.0.0.0/4)",
        _ => return None,
    };
    Some(why)
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let why = if ip.is_unspecified() {
        "unspecified (::)"
    } else if ip.is_loopback() {
        "loopback"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "unique local (fc00::/7)"
    } else if s[0] & 0xffc0 == 0xfe80 {
        "link-local (fe80::/10)"
    } else if s[0] & 0xffc0 == 0xfec0 {
        "site-local (fec0::/10)"
    } else if s[0] & 0xff00 == 0xff00 {
        "multicast"
    } else if s[0] == 0x64 && s[1] == 0xff9b {
        // NAT64 reaches an IPv4 address chosen by whoever wrote the name.
        "NAT64 (64:ff9b::/96), which can reach any IPv4 address"
    } else if s[0] == 0x2002 {
        "6to4 (2002::/16), which can reach any IPv4 address"
    } else if s[0] == 0x2001 && s[1] == 0 {
        "Teredo (2001::/32)"
    } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
        "discard (100::/64)"
    } else {
        return None;
    };
    Some(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        refusal(s.parse().unwrap(), &[]).is_some()
    }

    #[test]
    fn the_metadata_address_the_lan_and_the_host_are_refused() {
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "127.0.0.1",
            "127.255.255.254",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.17.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "198.18.0.1",
            "192.0.0.170",
            "::",
            "::1",
            "fe80::1",
            "fd00::1",
            "fc00::1",
            "ff02::1",
            "fec0::1",
            // IPv4 in IPv6 clothing reaches the IPv4 address.
            "::ffff:169.254.169.254",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378::1",
        ] {
            assert!(refused(ip), "{ip} was not refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "169.253.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:1.1.1.1",
        ] {
            assert!(!refused(ip), "{ip} was refused");
        }
    }

    #[test]
    fn the_set_up_s_own_ranges_are_refused_too() {
        let extra = [
            Cidr::parse("198.51.100.1").unwrap(),
            Cidr::parse("203.0.113.0/24").unwrap(),
        ];
        assert!(refusal("198.51.100.1".parse().unwrap(), &extra).is_some());
        assert!(refusal("198.51.100.2".parse().unwrap(), &extra).is_none());
        assert!(refusal("203.0.113.200".parse().unwrap(), &extra).is_some());
        assert!(refusal("::ffff:203.0.113.200".parse().unwrap(), &extra).is_some());
    }

    #[test]
    fn ranges_parse_strictly() {
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(Cidr::parse("1.2.3.4").unwrap().prefix, 32);
        assert_eq!(Cidr::parse("::1").unwrap().prefix, 128);
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("9.9.9.9".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "host",
            "1.2.3",
            "",
        ] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
        let net = Cidr::parse("fd00::/8").unwrap();
        assert!(net.contains("fd12::1".parse().unwrap()));
        assert!(!net.contains("fe12::1".parse().unwrap()));
        assert!(!net.contains("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn what_no_rule_opens_includes_ipv4_inside_ipv6() {
        let host = [Cidr::parse("172.17.0.1").unwrap()];
        for ip in [
            "169.254.169.254",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:5601:5601",
            "64:ff9b::ac11:1",
            "172.17.0.1",
        ] {
            assert!(never(ip.parse().unwrap(), &host), "{ip}");
        }
        for ip in [
            "10.0.0.1",
            "192.168.1.10",
            "fd00::1",
            "64:ff9b::102:304",
            "1.1.1.1",
            "127.0.0.1",
        ] {
            assert!(!never(ip.parse().unwrap(), &host), "{ip}");
        }
        assert_eq!(
            embedded_v4("2001:0:4136:e378:8000:63bf:5601:5601".parse().unwrap()),
            Some("169.254.169.254".parse().unwrap())
        );
    }

    #[test]
    fn a_mapped_range_is_its_ipv4_range() {
        let c = Cidr::parse("::ffff:10.0.0.0/104").unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
    }
}

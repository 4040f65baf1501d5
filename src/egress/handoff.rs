//! The credential broker's hand-off (docs/broker.md): what the host writes
//! on the egress proxy's standard input (attached before start, then
//! closed), read by `safeclaw egress serve --broker` before it binds its
//! socket. It carries the real secrets, so it never travels through argv,
//! the environment or a file, and every buffer holding it is zeroizing.
//!
//! A pure format over bytes, bounded before anything is allocated
//! (fuzzed: fuzz/fuzz_targets/broker_handoff.rs):
//!
//! ```text
//! "SCBROKER1"                         magic and version
//! u8                                  number of routes, at most MAX_ROUTES
//! per route:
//!   u8 length, name                   [a-z0-9-]{1,32}
//!   u8 length, host                   a DNS name, lower case, no trailing dot
//!   u16 port                          1 to 65535
//!   u8 length, placeholder            16 to 200 printable ASCII, no space
//!   u16 length, secret                1 to 4096 printable ASCII, no space
//! u32 length, roots_pem               at most 64 KiB of PEM certificates
//! ```
//!
//! Integers are big-endian; nothing may follow the last field.

use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::CertificateDer;
use zeroize::Zeroizing;

use super::policy;

/// The magic, with the format's version in it.
pub const MAGIC: &[u8] = b"SCBROKER1";
pub const MAX_ROUTES: usize = 16;
pub const MAX_NAME: usize = 32;
pub const MIN_PLACEHOLDER: usize = 16;
pub const MAX_PLACEHOLDER: usize = 200;
pub const MAX_SECRET: usize = 4096;
pub const MAX_ROOTS_PEM: usize = 64 << 10;
/// DNS's own limit on a name.
const MAX_HOST: usize = 253;
/// The largest route the format can hold.
const MAX_ROUTE: usize = 1 + MAX_NAME + 1 + MAX_HOST + 2 + 1 + MAX_PLACEHOLDER + 2 + MAX_SECRET;
/// The largest valid blob: what the proxy reads from stdin at most.
pub const MAX_LEN: usize = MAGIC.len() + 1 + MAX_ROUTES * MAX_ROUTE + 4 + MAX_ROOTS_PEM;

/// One secret and where it may go.
#[derive(Clone, PartialEq, Eq)]
pub struct Route {
    /// The secret's name, in the broker's URL (`/safeclaw-broker/NAME/…`)
    /// and in the log: `[a-z0-9-]{1,32}`.
    pub name: String,
    /// The only host the secret is sent to, over TLS.
    pub host: String,
    pub port: u16,
    /// What the gateway holds instead of the secret.
    pub placeholder: String,
    pub secret: Zeroizing<String>,
}

/// Never the secret, whatever prints a route.
impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("placeholder", &self.placeholder)
            .field("secret", &"..")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Handoff {
    pub routes: Vec<Route>,
    /// Extra certificate authorities the broker trusts for upstreams,
    /// besides the Mozilla roots (PEM; empty but in tests that make their
    /// own "internet").
    pub roots_pem: Vec<u8>,
}

/// The blob for `h`, which must pass `check` (the host builds it from
/// checked parts; a violation is a bug, and panics with a message that
/// holds no secret).
pub fn encode(h: &Handoff) -> Zeroizing<Vec<u8>> {
    if let Err(why) = check(h) {
        panic!("encoding an invalid broker hand-off: {why}");
    }
    encode_unchecked(h)
}

/// The framing alone (the tests use it to write what `check` refuses).
fn encode_unchecked(h: &Handoff) -> Zeroizing<Vec<u8>> {
    let len = MAGIC.len()
        + 1
        + h.routes
            .iter()
            .map(|r| 1 + r.name.len() + 1 + r.host.len() + 2 + 1 + r.placeholder.len() + 2)
            .sum::<usize>()
        + h.routes.iter().map(|r| r.secret.len()).sum::<usize>()
        + 4
        + h.roots_pem.len();
    // Allocated once: a growing Vec would leave copies of the secrets
    // behind in freed memory.
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    out.extend_from_slice(MAGIC);
    out.push(h.routes.len() as u8);
    for r in &h.routes {
        // Lengths fit their prefixes when `check` passed (`encode`).
        for field in [&r.name, &r.host] {
            out.push(field.len() as u8);
            out.extend_from_slice(field.as_bytes());
        }
        out.extend_from_slice(&r.port.to_be_bytes());
        out.push(r.placeholder.len() as u8);
        out.extend_from_slice(r.placeholder.as_bytes());
        out.extend_from_slice(&(r.secret.len() as u16).to_be_bytes());
        out.extend_from_slice(r.secret.as_bytes());
    }
    out.extend_from_slice(&(h.roots_pem.len() as u32).to_be_bytes());
    out.extend_from_slice(&h.roots_pem);
    debug_assert_eq!(out.len(), len);
    out
}

/// Reads a blob: every length is checked against its bound before
/// anything is allocated, then the whole hand-off against `check`. The
/// errors name the rule broken, never a byte of a secret.
pub fn decode(bytes: &[u8]) -> Result<Handoff, &'static str> {
    if bytes.len() > MAX_LEN {
        return Err("the broker hand-off is too long");
    }
    let mut r = Reader { rest: bytes };
    if r.take(MAGIC.len())? != MAGIC {
        return Err("not a broker hand-off (bad magic or version)");
    }
    let count = usize::from(r.u8()?);
    if count > MAX_ROUTES {
        return Err("too many routes in the broker hand-off");
    }
    let mut routes = Vec::with_capacity(count);
    for _ in 0..count {
        let name = ascii(r.short()?)?;
        let host = ascii(r.short()?)?;
        let port = r.u16()?;
        let placeholder = ascii(r.short()?)?;
        let secret_len = usize::from(r.u16()?);
        if secret_len > MAX_SECRET {
            return Err("a secret is longer than 4096 bytes");
        }
        let secret = Zeroizing::new(ascii(r.take(secret_len)?)?);
        routes.push(Route {
            name,
            host,
            port,
            placeholder,
            secret,
        });
    }
    let pem_len = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
    if pem_len > MAX_ROOTS_PEM {
        return Err("the extra roots are longer than 64 KiB");
    }
    let roots_pem = r.take(pem_len)?.to_vec();
    if !r.rest.is_empty() {
        return Err("bytes after the end of the broker hand-off");
    }
    let h = Handoff { routes, roots_pem };
    check(&h)?;
    Ok(h)
}

/// Every rule of the format, on a hand-off however it was made.
pub fn check(h: &Handoff) -> Result<(), &'static str> {
    if h.routes.len() > MAX_ROUTES {
        return Err("too many routes in the broker hand-off");
    }
    for r in &h.routes {
        if r.name.is_empty()
            || r.name.len() > MAX_NAME
            || !r
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("a route's name is not [a-z0-9-]{1,32}");
        }
        if r.host.len() > MAX_HOST || policy::host_name(&r.host).ok().as_ref() != Some(&r.host) {
            return Err("a route's host is not a lower-case DNS name");
        }
        if r.port == 0 {
            return Err("a route's port is 0");
        }
        if !(MIN_PLACEHOLDER..=MAX_PLACEHOLDER).contains(&r.placeholder.len())
            || !printable(&r.placeholder)
        {
            return Err("a placeholder is not 16 to 200 printable ASCII characters");
        }
        if r.secret.is_empty() || r.secret.len() > MAX_SECRET || !printable(&r.secret) {
            return Err("a secret is not 1 to 4096 printable ASCII characters");
        }
    }
    for (i, a) in h.routes.iter().enumerate() {
        for (j, b) in h.routes.iter().enumerate() {
            if i != j && a.name == b.name {
                return Err("two routes have the same name");
            }
            // One placeholder inside another would make the broker swap
            // in the wrong secret, or take one for the other.
            if i != j && b.placeholder.contains(a.placeholder.as_str()) {
                return Err("a placeholder is part of another placeholder");
            }
            // A secret holding a placeholder would be seen as that
            // placeholder once swapped in.
            if b.secret.contains(a.placeholder.as_str()) {
                return Err("a placeholder is part of a secret");
            }
        }
    }
    if h.roots_pem.len() > MAX_ROOTS_PEM {
        return Err("the extra roots are longer than 64 KiB");
    }
    extra_roots(&h.roots_pem)?;
    Ok(())
}

/// The certificates of `pem` (empty for none): every PEM section must be
/// a certificate usable as a trust anchor.
pub fn extra_roots(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, &'static str> {
    const BAD: &str = "the extra roots are not PEM certificates";
    if pem.is_empty() {
        return Ok(Vec::new());
    }
    let mut roots = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
        match section {
            Ok((SectionKind::Certificate, der)) => {
                let der = CertificateDer::from(der);
                // What rustls will ask of it as a root, checked now.
                rustls::RootCertStore::empty()
                    .add(der.clone())
                    .map_err(|_| BAD)?;
                roots.push(der);
            }
            _ => return Err(BAD),
        }
    }
    if roots.is_empty() {
        return Err(BAD);
    }
    Ok(roots)
}

fn printable(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

fn ascii(bytes: &[u8]) -> Result<String, &'static str> {
    // Printable ASCII is checked by `check`; here only that it is text,
    // so a secret is never copied into an error.
    if !bytes.is_ascii() {
        return Err("a field of the broker hand-off is not ASCII");
    }
    Ok(String::from_utf8(bytes.to_vec()).expect("ASCII is UTF-8"))
}

/// A cursor over the blob; every read checks what is left first.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.rest.len() {
            return Err("the broker hand-off is truncated");
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, &'static str> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A field with a one-byte length.
    fn short(&mut self) -> Result<&'a [u8], &'static str> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn route(name: &str, host: &str, placeholder: &str, secret: &str) -> Route {
        Route {
            name: name.into(),
            host: host.into(),
            port: 443,
            placeholder: placeholder.into(),
            secret: Zeroizing::new(secret.into()),
        }
    }

    pub(crate) fn two_routes() -> Handoff {
        Handoff {
            routes: vec![
                route(
                    "anthropic",
                    "api.anthropic.com",
                    "safeclaw-placeholder-anthropic-0001",
                    "sk-ant-api03-REAL-KEY-value",
                ),
                route(
                    "telegram",
                    "api.telegram.org",
                    "safeclaw-placeholder-telegram-0002",
                    "AAH-real-bot-token_value",
                ),
            ],
            roots_pem: Vec::new(),
        }
    }

    fn test_ca_pem() -> Vec<u8> {
        crate::egress::forward::tests::TestCa::new()
            .pem
            .into_bytes()
    }

    #[test]
    fn a_hand_off_round_trips_and_its_debug_hides_the_secrets() {
        let mut h = two_routes();
        h.routes[1].port = 8443;
        h.roots_pem = test_ca_pem();
        let blob = encode(&h);
        assert!(blob.starts_with(MAGIC) && blob.len() <= MAX_LEN);
        assert_eq!(decode(&blob).unwrap(), h);
        let shown = format!("{h:?}");
        assert!(!shown.contains("REAL-KEY") && !shown.contains("real-bot"));
        assert!(shown.contains("safeclaw-placeholder-anthropic-0001"));

        let empty = Handoff::default();
        assert_eq!(decode(&encode(&empty)).unwrap(), empty);
        assert_eq!(encode(&empty).len(), MAGIC.len() + 1 + 4);
    }

    #[test]
    fn the_largest_hand_off_is_max_len() {
        let h = Handoff {
            routes: (0..MAX_ROUTES)
                .map(|i| Route {
                    name: format!("{i:0>32}"),
                    host: format!(
                        "{}.{}.{}.{}",
                        "a".repeat(63),
                        "b".repeat(63),
                        "c".repeat(63),
                        "d".repeat(61)
                    ),
                    port: 443,
                    placeholder: format!("{i:#>200}"),
                    secret: Zeroizing::new("s".repeat(MAX_SECRET)),
                })
                .collect(),
            roots_pem: Vec::new(),
        };
        let blob = encode(&h);
        assert_eq!(blob.len(), MAX_LEN - MAX_ROOTS_PEM);
        assert_eq!(decode(&blob).unwrap(), h);
    }

    /// `h` after `change`, encoded without `check` (as a hostile or buggy
    /// writer could), and what decoding says.
    fn decoded_after(change: impl Fn(&mut Handoff)) -> Result<Handoff, &'static str> {
        let mut h = two_routes();
        change(&mut h);
        decode(&encode_unchecked(&h))
    }

    #[test]
    fn every_rule_is_checked_on_decode() {
        const PLACEHOLDER: &str = "safeclaw-placeholder-anthropic-0001";
        type Change = Box<dyn Fn(&mut Handoff)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|h| h.routes[0].name = "Anthropic".into()), "name"),
            (Box::new(|h| h.routes[0].name = String::new()), "name"),
            (Box::new(|h| h.routes[0].name = "a".repeat(33)), "name"),
            (Box::new(|h| h.routes[0].name = "a_b".into()), "name"),
            (
                Box::new(|h| h.routes[1].name = "anthropic".into()),
                "same name",
            ),
            (
                Box::new(|h| h.routes[0].host = "API.anthropic.com".into()),
                "host",
            ),
            (
                Box::new(|h| h.routes[0].host = "api.anthropic.com.".into()),
                "host",
            ),
            (Box::new(|h| h.routes[0].host = "1.2.3.4".into()), "host"),
            (Box::new(|h| h.routes[0].host = String::new()), "host"),
            (Box::new(|h| h.routes[0].port = 0), "port"),
            (
                Box::new(|h| h.routes[0].placeholder = "short".into()),
                "placeholder",
            ),
            (
                Box::new(|h| h.routes[0].placeholder = "x".repeat(201)),
                "placeholder",
            ),
            (
                Box::new(|h| h.routes[0].placeholder = "with a space in it ok".into()),
                "placeholder",
            ),
            (
                Box::new(|h| h.routes[0].secret = Zeroizing::new(String::new())),
                "secret",
            ),
            (
                Box::new(|h| h.routes[0].secret = Zeroizing::new("line\nbreak".into())),
                "secret",
            ),
            (
                Box::new(|h| h.routes[0].secret = Zeroizing::new("\u{7f}del".into())),
                "secret",
            ),
            (
                Box::new(|h| h.routes[1].placeholder = format!("{PLACEHOLDER}-longer")),
                "part of another placeholder",
            ),
            (
                Box::new(|h| h.routes[1].secret = Zeroizing::new(format!("x{PLACEHOLDER}x"))),
                "part of a secret",
            ),
            (
                Box::new(|h| h.routes[0].secret = Zeroizing::new(PLACEHOLDER.into())),
                "part of a secret",
            ),
            (Box::new(|h| h.roots_pem = b"not pem".to_vec()), "PEM"),
            (
                Box::new(|h| {
                    h.roots_pem =
                        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec()
                }),
                "PEM",
            ),
            (
                Box::new(|h| {
                    h.roots_pem =
                        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec()
                }),
                "PEM",
            ),
        ];
        for (i, (change, why)) in cases.iter().enumerate() {
            let err = decoded_after(change).unwrap_err();
            assert!(err.contains(why), "case {i}: {err}");
        }
    }

    #[test]
    fn lengths_are_bounded_before_anything_is_read_and_nothing_may_follow() {
        let blob = encode(&two_routes());
        assert!(decode(&blob[..blob.len() - 1])
            .unwrap_err()
            .contains("truncated"));
        for n in 0..blob.len() {
            assert!(decode(&blob[..n]).is_err(), "{n}");
        }
        let mut more = blob.to_vec();
        more.push(0);
        assert!(decode(&more).unwrap_err().contains("after the end"));
        let mut bad = blob.to_vec();
        bad[MAGIC.len() - 1] = b'2';
        assert!(decode(&bad).unwrap_err().contains("magic"));
        let mut many = Vec::from(MAGIC);
        many.push(17);
        assert!(decode(&many).unwrap_err().contains("too many"));
        // A secret length past the bound is refused before it is read.
        let mut long = Vec::from(MAGIC);
        long.extend_from_slice(&[1, 1, b'a', 5, b'a', b'.', b'c', b'o', b'm', 1, 187, 16]);
        long.extend_from_slice(&[b'p'; 16]);
        long.extend_from_slice(&4097u16.to_be_bytes());
        assert!(decode(&long).unwrap_err().contains("4096"));
        let mut roots = Vec::from(MAGIC);
        roots.push(0);
        roots.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&roots).unwrap_err().contains("64 KiB"));
        assert!(decode(&vec![0u8; MAX_LEN + 1])
            .unwrap_err()
            .contains("too long"));
    }

    #[test]
    fn the_fuzz_seed_is_a_valid_hand_off() {
        let seed = include_bytes!("../../fuzz/seeds/broker_handoff/two-routes");
        let h = decode(seed).unwrap();
        assert_eq!(h.routes.len(), 2);
        assert_eq!(&encode(&h)[..], &seed[..]);
    }

    #[test]
    fn errors_never_hold_a_secret() {
        let mut h = two_routes();
        h.routes[0].secret = Zeroizing::new("sk-ant-api03-REAL\u{e9}".into());
        let err = std::panic::catch_unwind(|| encode(&h)).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(!msg.contains("REAL"), "{msg}");
        let err = decoded_after(|h| {
            h.routes[0].secret = Zeroizing::new("sk-ant-api03-REAL\u{e9}".into())
        })
        .unwrap_err();
        assert!(!err.contains("REAL"));
    }
}

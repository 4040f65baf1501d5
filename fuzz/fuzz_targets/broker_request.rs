//! The credential broker's request head parser, its body framing and its
//! streaming matcher (src/egress/broker.rs) on arbitrary bytes (the
//! gateway, where a prompt injection writes what it likes, is the
//! broker's client): never panic; a head accepted becomes an upstream
//! head made of CRLF-ended lines of printable ASCII, for the route's
//! host, with no other route's placeholder or secret in it; the framing
//! never claims more than it was given; the matcher finds a needle
//! exactly when the bytes contain one, and passes everything else on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeclaw::egress::broker::{self, Body, Framing, Scanner};
use safeclaw::egress::handoff::Route;
use zeroize::Zeroizing;

fn routes() -> Vec<Route> {
    let route = |name: &str, host: &str, placeholder: &str, secret: &str| Route {
        name: name.into(),
        host: host.into(),
        port: 443,
        placeholder: placeholder.into(),
        secret: Zeroizing::new(secret.into()),
    };
    vec![
        route("anthropic", "api.anthropic.com", "PLACEHOLDER-anthropic-01", "sk-ant-REAL"),
        route("telegram", "api.telegram.org", "PLACEHOLDER-telegram-002", "AAH-REAL:x"),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    count(haystack, needle) > 0
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| w == &needle).count()
}

fuzz_target!(|data: &[u8]| {
    let routes = routes();
    let _ = broker::is_brokered(data);
    let _ = broker::placeholder_in(data, &routes);
    if let Ok(b) = broker::parse(data, &routes) {
        let route = &routes[b.route];
        let head = &b.head[..];
        assert!(head.ends_with(b"\r\n\r\n"));
        let text = &head[..head.len() - 4];
        for line in text.split(|&c| c == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            assert!(line.iter().all(|&c| c.is_ascii_graphic() || c == b' ' || c == b'\t'));
        }
        let host = format!("\r\nHost: {}\r\n", route.host);
        assert!(contains(head, host.as_bytes()));
        assert_eq!(
            head.windows(6).filter(|w| w.eq_ignore_ascii_case(b"\nhost:")).count(),
            1
        );
        for other in routes.iter().filter(|r| r.name != route.name) {
            assert!(!contains(head, other.placeholder.as_bytes()));
            // Never injected: at most as often as the client wrote it.
            assert!(count(head, other.secret.as_bytes()) <= count(data, other.secret.as_bytes()));
        }
    }
    // The framing of a chunked body: never more than given.
    let mut f = Framing::new(Body::Chunked);
    if let Ok(n) = f.take(data) {
        assert!(n <= data.len());
    }
    // The matcher, in two pieces cut at the first byte's value.
    let needles: [&[u8]; 2] = [b"abab", b"REAL"];
    let mut s = Scanner::new(needles);
    let cut = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let mut out = Vec::new();
    let found = s.feed(&data[..cut], &mut out).and_then(|()| s.feed(&data[cut..], &mut out));
    let expected = needles.iter().any(|n| contains(data, n));
    assert_eq!(found.is_err(), expected);
    if !expected {
        s.finish(&mut out);
        assert_eq!(out, data);
    }
});

//! The credential broker's rules, as pure functions over bytes
//! (docs/broker.md). The gateway holds placeholders; OpenClaw is pointed
//! at `http://127.0.0.1:3128/safeclaw-broker/ROUTE/…` (the relay, then the
//! proxy's socket), and the proxy forwards such a request over TLS to the
//! route's host with the route's placeholder replaced by its secret in the
//! request's path and credential headers, never in its query or body.
//!
//! A placeholder on its way anywhere else (another route's host, a
//! `CONNECT` tunnel, a refused request) is an exfiltration attempt:
//! refused and logged with the secret's name. The body towards the
//! upstream and the response coming back pass through a `Scanner`: another
//! route's placeholder in the body, or the real secret echoed in the
//! response, ends the exchange before the match is delivered whole.
//!
//! The client is the gateway, where a prompt injection writes what it
//! likes: everything is bounded, and the head parser is fuzzed
//! (fuzz/fuzz_targets/broker_request.rs).

use zeroize::Zeroizing;

use super::handoff::Route;
use super::request::{MAX_HEAD, MAX_HEADERS};

/// The path every brokered request starts with; the route's name follows.
pub const PREFIX: &str = "/safeclaw-broker/";

/// The methods forwarded: what HTTP APIs use. Anything else (`TRACE`
/// reflects the head, `CONNECT` is the tunnels') is refused.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Headers that describe the client's hop, not the request: dropped.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "host",
    "accept-encoding",
];

/// The headers a credential is swapped into (besides the path): where
/// HTTP APIs read one. Anywhere else a host may echo or store a header's
/// value (an error quoting an unknown `anthropic-beta`, cut short where
/// the echo check cannot see it), so the placeholder is refused there.
pub const CREDENTIAL_HEADERS: &[&str] =
    &["authorization", "x-api-key", "x-goog-api-key", "api-key"];

/// The longest chunk-size line (with extensions) and trailer section of a
/// chunked body.
const MAX_CHUNK_LINE: usize = 1024;
const MAX_TRAILERS: usize = 8192;

pub const FORBIDDEN: &str = "403 Forbidden";
const BAD_REQUEST: &str = "400 Bad Request";

/// How the request's body ends: the proxy reads exactly that much of it
/// from the client, so nothing after the request (a second, pipelined
/// one) reaches the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    Chunked,
}

/// A request the broker forwards.
#[derive(Debug)]
pub struct Brokered {
    /// The index of its route.
    pub route: usize,
    /// The head to send upstream: it holds the secret.
    pub head: Zeroizing<Vec<u8>>,
    pub body: Body,
}

/// Why a request is not forwarded: the status line for the client and the
/// reason for the log (never a secret; a route's name and host at most).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: &'static str,
    pub reason: String,
}

fn refuse(status: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
    }
}

fn malformed(reason: &str) -> Refusal {
    refuse(BAD_REQUEST, reason)
}

/// Whether the complete head `head` asks for the broker: an origin-form
/// request whose path starts with `PREFIX`. Everything else but `CONNECT`
/// is refused as before.
pub fn is_brokered(head: &[u8]) -> bool {
    let line = head
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default()
        .strip_suffix(b"\r")
        .unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let _method = parts.next();
    parts
        .next()
        .is_some_and(|target| target.starts_with(PREFIX.as_bytes()))
}

/// The route whose placeholder appears anywhere in `bytes` (a head the
/// proxy refuses or tunnels), if any.
pub fn placeholder_in<'a>(bytes: &[u8], routes: &'a [Route]) -> Option<&'a Route> {
    routes
        .iter()
        .find(|r| contains(bytes, r.placeholder.as_bytes()))
}

/// The log's reason when the placeholder of `route` was on its way to
/// `to`.
pub fn exfiltration(route: &Route, to: &str) -> String {
    format!(
        "the placeholder of secret {} (for {}) on its way to {to}: an exfiltration attempt",
        route.name, route.host
    )
}

/// The route's `host[:port]` as the `Host` header and the log write it.
pub fn authority(route: &Route) -> String {
    if route.port == 443 {
        route.host.clone()
    } else {
        format!("{}:{}", route.host, route.port)
    }
}

/// Parses a complete head (`request::head_len` bytes) of a brokered
/// request and builds the head to send upstream.
pub fn parse(head: &[u8], routes: &[Route]) -> Result<Brokered, Refusal> {
    if head.len() > MAX_HEAD {
        return Err(refuse(
            "431 Request Header Fields Too Large",
            "request head too long",
        ));
    }
    let Some(text) = head.strip_suffix(b"\r\n\r\n") else {
        return Err(malformed("the head does not end with a blank line"));
    };
    // Lines end with CRLF; a bare CR or LF, any other control character
    // (NUL) or a byte past ASCII is refused: it is where parsers disagree.
    let lines = split_lines(text);
    for line in &lines {
        if line.iter().any(|&b| b == b'\r' || b == b'\n') {
            return Err(malformed("a bare CR or LF: lines end with CRLF"));
        }
        if !line
            .iter()
            .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\t')
        {
            return Err(malformed(
                "a control character or non-ASCII byte in the head",
            ));
        }
    }
    if lines.len() > MAX_HEADERS + 1 {
        return Err(malformed("too many header lines"));
    }
    let (request, lines) = lines.split_first().expect("split gives one line at least");
    let mut parts = request.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not METHOD TARGET VERSION"));
    };
    // ASCII, checked above.
    let method = std::str::from_utf8(method).unwrap_or_default();
    if version != b"HTTP/1.1" {
        return Err(malformed("the broker serves HTTP/1.1 only"));
    }
    if !METHODS.contains(&method) {
        return Err(refuse(
            "405 Method Not Allowed",
            "a method the broker does not forward",
        ));
    }
    let Some(after) = target.strip_prefix(PREFIX.as_bytes()) else {
        return Err(malformed("not a broker path"));
    };
    if target.contains(&b'#') {
        return Err(malformed("a fragment in the request target"));
    }
    let name_len = after
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(after.len());
    let (name, rest) = after.split_at(name_len);
    if name.is_empty()
        || name.len() > super::handoff::MAX_NAME
        || !name
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(malformed("not a route name after /safeclaw-broker/"));
    }
    let name = std::str::from_utf8(name).unwrap_or_default();
    let Some(index) = routes.iter().position(|r| r.name == name) else {
        return Err(refuse(
            "404 Not Found",
            format!("the broker holds no secret named {name}"),
        ));
    };
    let route = &routes[index];

    // A placeholder of another route, anywhere in the head, is on its way
    // to this route's host.
    if let Some(other) = routes
        .iter()
        .filter(|r| r.name != route.name)
        .find(|r| contains(head, r.placeholder.as_bytes()))
    {
        return Err(refuse(FORBIDDEN, exfiltration(other, &authority(route))));
    }
    // The secret goes where the host reads a credential (the path of
    // Telegram's `/bot<token>/`, a header), never into the query, where
    // it would be data (`sendMessage?text=…` delivers it to a chat).
    let (path, query) = match rest.iter().position(|&b| b == b'?') {
        Some(q) => rest.split_at(q),
        None => (rest, &b""[..]),
    };
    let placeholder = route.placeholder.as_bytes();
    if contains(query, placeholder) {
        return Err(refuse(
            FORBIDDEN,
            format!(
                "the placeholder of secret {} in the query string to {}: only the path and headers carry it",
                route.name,
                authority(route)
            ),
        ));
    }

    let headers = lines
        .iter()
        .map(|line| header(line))
        .collect::<Result<Vec<_>, _>>()?;
    let body = framing(&headers)?;
    // The headers the client's `Connection` names are its hop's too.
    let mut named = Vec::new();
    for (n, v) in &headers {
        if n.eq_ignore_ascii_case(b"connection") {
            for token in v.split(|&b| b == b',') {
                let token = trim(token);
                if token.is_empty() {
                    continue;
                }
                if !token.iter().all(|&b| is_tchar(b)) {
                    return Err(malformed("a Connection header that is not a token list"));
                }
                if token.eq_ignore_ascii_case(b"content-length")
                    || token.eq_ignore_ascii_case(b"transfer-encoding")
                {
                    return Err(malformed("a Connection header naming the body's framing"));
                }
                named.push(token);
            }
        }
    }
    let secret = route.secret.as_bytes();
    let occurrences = count(head, placeholder);
    let host = authority(route);
    // Allocated once, large enough for every substitution: a growing Vec
    // would leave copies of the secret in freed memory.
    let capacity = head.len() + occurrences * secret.len() + host.len() + 256;
    let mut out = Zeroizing::new(Vec::with_capacity(capacity));
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    let mut injected = 0;
    if path.is_empty() {
        out.push(b'/');
    }
    injected += replace_into(&mut out, path, placeholder, secret);
    out.extend_from_slice(query);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut trailers = false;
    for (n, v) in &headers {
        let dropped = HOP_BY_HOP
            .iter()
            .any(|h| n.eq_ignore_ascii_case(h.as_bytes()))
            || n.len() >= 6 && n[..6].eq_ignore_ascii_case(b"proxy-")
            || named.iter().any(|t| n.eq_ignore_ascii_case(t));
        if n.eq_ignore_ascii_case(b"te") && v.eq_ignore_ascii_case(b"trailers") {
            trailers = true;
        }
        if dropped {
            continue;
        }
        let credential = CREDENTIAL_HEADERS
            .iter()
            .any(|h| n.eq_ignore_ascii_case(h.as_bytes()));
        if !credential && contains(v, placeholder) {
            return Err(refuse(
                FORBIDDEN,
                format!(
                    "the placeholder of secret {} in the header {}: only the path and {} carry it",
                    route.name,
                    // A token, ASCII: safe to log, and cut short.
                    String::from_utf8_lossy(&n[..n.len().min(64)]),
                    CREDENTIAL_HEADERS.join(", ")
                ),
            ));
        }
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        if credential {
            injected += replace_into(&mut out, v, placeholder, secret);
        } else {
            out.extend_from_slice(v);
        }
        out.extend_from_slice(b"\r\n");
    }
    // Plain bytes back, so the echo check sees a secret in the response.
    out.extend_from_slice(b"Accept-Encoding: identity\r\n");
    if trailers {
        out.extend_from_slice(b"TE: trailers\r\nConnection: te, close\r\n\r\n");
    } else {
        out.extend_from_slice(b"Connection: close\r\n\r\n");
    }
    debug_assert!(out.len() <= capacity, "the head was reallocated");
    // A request without the placeholder would go to the route's host with
    // a credential of the agent's choosing (`/bot<its own token>/`
    // reaches a chat it owns): only the owner's credential is forwarded.
    if injected == 0 {
        return Err(refuse(
            FORBIDDEN,
            format!(
                "no placeholder of secret {} in the path or a header: only requests with the owner's credential go to {}",
                route.name,
                authority(route)
            ),
        ));
    }
    Ok(Brokered {
        route: index,
        head: out,
        body,
    })
}

/// `name: value` with the name a token and the value trimmed.
fn header(line: &[u8]) -> Result<(&[u8], &[u8]), Refusal> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(malformed("a folded header line (obs-fold)"));
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(malformed("a header line without a colon"));
    };
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(malformed("a header name that is not a token"));
    }
    Ok((name, trim(value)))
}

/// The body's framing; both `Transfer-Encoding` and `Content-Length`, or
/// either twice, or a coding but `chunked`, is how requests are smuggled
/// past one parser to another: refused.
fn framing(headers: &[(&[u8], &[u8])]) -> Result<Body, Refusal> {
    let named = |name: &str| {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| *v)
            .collect::<Vec<_>>()
    };
    let lengths = named("content-length");
    let codings = named("transfer-encoding");
    match (lengths.as_slice(), codings.as_slice()) {
        ([], []) => Ok(Body::None),
        ([len], []) => {
            if len.is_empty() || len.len() > 15 || !len.iter().all(u8::is_ascii_digit) {
                return Err(malformed("a Content-Length that is not a number"));
            }
            let n = std::str::from_utf8(len)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| malformed("a Content-Length that is not a number"))?;
            Ok(if n == 0 { Body::None } else { Body::Length(n) })
        }
        ([], [coding]) if coding.eq_ignore_ascii_case(b"chunked") => Ok(Body::Chunked),
        ([], [_]) => Err(malformed("a Transfer-Encoding other than chunked")),
        ([_, ..], [_, ..]) => Err(malformed(
            "both Transfer-Encoding and Content-Length (request smuggling)",
        )),
        _ => Err(malformed(
            "more than one Content-Length or Transfer-Encoding",
        )),
    }
}

/// RFC 9110's token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// `text` cut at each CRLF.
fn split_lines(text: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut rest = text;
    while let Some(at) = find(rest, b"\r\n") {
        lines.push(&rest[..at]);
        rest = &rest[at + 2..];
    }
    lines.push(rest);
    lines
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    let mut n = 0;
    let mut rest = haystack;
    while let Some(at) = find(rest, needle) {
        n += 1;
        rest = &rest[at + needle.len()..];
    }
    n
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Appends `src` to `out` with every `from` replaced by `to`; returns how
/// many were.
fn replace_into(out: &mut Vec<u8>, src: &[u8], from: &[u8], to: &[u8]) -> usize {
    let mut n = 0;
    let mut rest = src;
    while let Some(at) = find(rest, from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
        n += 1;
    }
    out.extend_from_slice(rest);
    n
}

/// Where a request's body ends, as the client streams it.
#[derive(Debug)]
pub struct Framing {
    state: Chunk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Bytes of a body of known length left (0: the body is complete).
    Left(u64),
    /// In a chunk-size line: its size so far, the line's length so far,
    /// whether the size has ended (an extension follows), and whether the
    /// last byte was CR.
    Size {
        size: u64,
        len: usize,
        ext: bool,
        cr: bool,
    },
    /// In a chunk's data, this many bytes left, then CRLF.
    Data(u64),
    DataCr,
    DataLf,
    /// After the last chunk: the trailer section, its length so far, the
    /// current line's, and whether the last byte was CR.
    Trailers {
        len: usize,
        line: usize,
        cr: bool,
    },
    Done,
}

impl Framing {
    pub fn new(body: Body) -> Framing {
        let state = match body {
            Body::None => Chunk::Done,
            Body::Length(n) => Chunk::Left(n),
            Body::Chunked => Chunk::Size {
                size: 0,
                len: 0,
                ext: false,
                cr: false,
            },
        };
        Framing { state }
    }

    pub fn done(&self) -> bool {
        matches!(self.state, Chunk::Done | Chunk::Left(0))
    }

    /// How many leading bytes of `chunk` belong to the body (all of them
    /// until it ends; what follows is not read on).
    pub fn take(&mut self, chunk: &[u8]) -> Result<usize, &'static str> {
        let mut i = 0;
        while i < chunk.len() && !self.done() {
            match &mut self.state {
                Chunk::Left(n) | Chunk::Data(n) => {
                    let k = (chunk.len() - i).min(usize::try_from(*n).unwrap_or(usize::MAX));
                    *n -= k as u64;
                    i += k;
                    if let Chunk::Data(0) = self.state {
                        self.state = Chunk::DataCr;
                    }
                    continue;
                }
                _ => {}
            }
            self.step(chunk[i])?;
            i += 1;
        }
        Ok(i)
    }

    /// One byte of the chunked framing outside a chunk's data.
    fn step(&mut self, b: u8) -> Result<(), &'static str> {
        const BAD: &str = "a malformed chunked body";
        self.state = match self.state {
            Chunk::Size { size, len, ext, cr } => {
                if len >= MAX_CHUNK_LINE {
                    return Err("a chunk-size line too long");
                }
                match (b, cr) {
                    (b'\n', true) if len > 1 => {
                        if size == 0 {
                            Chunk::Trailers {
                                len: 0,
                                line: 0,
                                cr: false,
                            }
                        } else {
                            Chunk::Data(size)
                        }
                    }
                    (_, true) | (b'\n', false) => return Err(BAD),
                    (b'\r', false) if len > 0 => Chunk::Size {
                        size,
                        len: len + 1,
                        ext,
                        cr: true,
                    },
                    (_, false) if !ext && b.is_ascii_hexdigit() => {
                        let digit = u64::from((b as char).to_digit(16).expect("a hex digit"));
                        if size >> 60 != 0 {
                            return Err("a chunk too large");
                        }
                        Chunk::Size {
                            size: size << 4 | digit,
                            len: len + 1,
                            ext,
                            cr,
                        }
                    }
                    (b';', false) if len > 0 => Chunk::Size {
                        size,
                        len: len + 1,
                        ext: true,
                        cr,
                    },
                    (_, false) if ext && (b.is_ascii_graphic() || b == b' ' || b == b'\t') => {
                        Chunk::Size {
                            size,
                            len: len + 1,
                            ext,
                            cr,
                        }
                    }
                    _ => return Err(BAD),
                }
            }
            Chunk::DataCr if b == b'\r' => Chunk::DataLf,
            Chunk::DataLf if b == b'\n' => Chunk::Size {
                size: 0,
                len: 0,
                ext: false,
                cr: false,
            },
            Chunk::Trailers { len, line, cr } => {
                if len >= MAX_TRAILERS {
                    return Err("a chunked body's trailers too long");
                }
                match (b, cr) {
                    (b'\n', true) if line == 1 => Chunk::Done,
                    (b'\n', true) => Chunk::Trailers {
                        len: len + 1,
                        line: 0,
                        cr: false,
                    },
                    (_, true) | (b'\n', false) => return Err(BAD),
                    (b'\r', false) => Chunk::Trailers {
                        len: len + 1,
                        line: line + 1,
                        cr: true,
                    },
                    (_, false) if b.is_ascii_graphic() || b == b' ' || b == b'\t' => {
                        Chunk::Trailers {
                            len: len + 1,
                            line: line + 1,
                            cr,
                        }
                    }
                    _ => return Err(BAD),
                }
            }
            _ => return Err(BAD),
        };
        Ok(())
    }
}

/// A streaming matcher for a set of needles across chunk boundaries
/// (Knuth–Morris–Pratt, one state per needle). It holds back exactly the
/// bytes that may still begin a match (at most the longest needle less
/// one), so a needle is never passed on whole, and a stream that ends
/// with a byte unlike any needle's first (SSE's blank line) is never
/// delayed.
pub struct Scanner {
    needles: Vec<Needle>,
    held: Zeroizing<Vec<u8>>,
}

struct Needle {
    bytes: Zeroizing<Vec<u8>>,
    /// For each prefix length, the longest proper prefix that is also its
    /// suffix (where to resume after a mismatch).
    fail: Zeroizing<Vec<usize>>,
    /// How many of its leading bytes the stream now ends with.
    state: usize,
}

impl Scanner {
    pub fn new<'a>(needles: impl IntoIterator<Item = &'a [u8]>) -> Scanner {
        let needles: Vec<Needle> = needles
            .into_iter()
            .filter(|n| !n.is_empty())
            .map(|n| Needle {
                bytes: Zeroizing::new(n.to_vec()),
                fail: Zeroizing::new(failure(n)),
                state: 0,
            })
            .collect();
        let longest = needles.iter().map(|n| n.bytes.len()).max().unwrap_or(1);
        Scanner {
            needles,
            // Never more than this: no reallocation leaves a copy behind.
            held: Zeroizing::new(Vec::with_capacity(longest)),
        }
    }

    /// Feeds the next `chunk` of the stream and appends to `out` every
    /// byte now known not to start a needle. `Err(i)` when needle `i` is
    /// complete: nothing of `chunk` is passed on, and the stream must end.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), usize> {
        for &b in chunk {
            for (i, n) in self.needles.iter_mut().enumerate() {
                while n.state > 0 && n.bytes[n.state] != b {
                    n.state = n.fail[n.state - 1];
                }
                if n.bytes[n.state] == b {
                    n.state += 1;
                }
                if n.state == n.bytes.len() {
                    return Err(i);
                }
            }
        }
        let keep = self.needles.iter().map(|n| n.state).max().unwrap_or(0);
        // `keep` ≤ held + chunk: a state counts bytes seen and not yet
        // passed on.
        if keep <= chunk.len() {
            out.extend_from_slice(&self.held);
            self.held.clear();
            let (pass, hold) = chunk.split_at(chunk.len() - keep);
            out.extend_from_slice(pass);
            self.held.extend_from_slice(hold);
        } else {
            let from_held = keep - chunk.len();
            let pass = self.held.len() - from_held;
            out.extend_from_slice(&self.held[..pass]);
            self.held.copy_within(pass.., 0);
            self.held.truncate(from_held);
            self.held.extend_from_slice(chunk);
        }
        Ok(())
    }

    /// At the end of the stream: the bytes held back (an unfinished
    /// beginning of a needle).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.held);
        self.held.clear();
        for n in &mut self.needles {
            n.state = 0;
        }
    }
}

/// KMP's failure function of `needle`.
fn failure(needle: &[u8]) -> Vec<usize> {
    let mut fail = vec![0; needle.len()];
    let mut k = 0;
    for i in 1..needle.len() {
        while k > 0 && needle[i] != needle[k] {
            k = fail[k - 1];
        }
        if needle[i] == needle[k] {
            k += 1;
        }
        fail[i] = k;
    }
    fail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::handoff::tests::two_routes;

    const ANTHROPIC: &str = "safeclaw-placeholder-anthropic-0001";
    const TELEGRAM: &str = "safeclaw-placeholder-telegram-0002";

    fn routes() -> Vec<Route> {
        two_routes().routes
    }

    fn upstream(head: &str) -> Result<(String, Brokered), Refusal> {
        parse(head.as_bytes(), &routes()).map(|b| (String::from_utf8(b.head.to_vec()).unwrap(), b))
    }

    #[test]
    fn openclaw_s_model_request_gets_the_key_in_its_header() {
        let (head, b) = upstream(&format!(
            "POST /safeclaw-broker/anthropic/v1/messages HTTP/1.1\r\nhost: 127.0.0.1:3128\r\n\
             connection: keep-alive\r\nx-api-key: {ANTHROPIC}\r\nanthropic-version: 2023-06-01\r\n\
             content-type: application/json\r\ncontent-length: 67666\r\naccept-encoding: gzip, deflate\r\n\r\n"
        ))
        .unwrap();
        assert_eq!(
            head,
            "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\n\
             x-api-key: sk-ant-api03-REAL-KEY-value\r\nanthropic-version: 2023-06-01\r\n\
             content-type: application/json\r\ncontent-length: 67666\r\n\
             Accept-Encoding: identity\r\nConnection: close\r\n\r\n"
        );
        assert_eq!((b.route, b.body), (0, Body::Length(67666)));
    }

    #[test]
    fn a_brokered_request_s_debug_never_shows_the_secret() {
        let b = parse(
            format!("GET /safeclaw-broker/anthropic/v1 HTTP/1.1\r\nx-api-key: {ANTHROPIC}\r\n\r\n")
                .as_bytes(),
            &routes(),
        );
        let shown = format!("{b:?}");
        // As a panic's `unwrap_err` or a log's `{:?}` would show it.
        assert!(!shown.contains("REAL-KEY"), "{shown}");
        let bytes: Vec<String> = b"sk-ant".iter().map(|b| b.to_string()).collect();
        assert!(!shown.contains(&bytes.join(", ")), "{shown}");
    }

    #[test]
    fn openclaw_s_telegram_calls_get_the_token_in_their_path() {
        for (method, call) in [
            ("GET", "getMe"),
            ("POST", "getUpdates"),
            ("POST", "deleteWebhook"),
            ("POST", "setMyCommands"),
            ("POST", "deleteMyCommands"),
        ] {
            let (head, b) = upstream(&format!(
                "{method} /safeclaw-broker/telegram/bot123456789:{TELEGRAM}/{call} HTTP/1.1\r\n\
                 host: 127.0.0.1:3128\r\ncontent-length: 0\r\n\r\n"
            ))
            .unwrap();
            assert!(
                head.starts_with(&format!(
                    "{method} /bot123456789:AAH-real-bot-token_value/{call} HTTP/1.1\r\n\
                     Host: api.telegram.org\r\n"
                )),
                "{head}"
            );
            assert_eq!((b.route, b.body), (1, Body::None));
        }
        // The rest of the path may be empty, or a query alone.
        let key = format!("Authorization: {TELEGRAM}\r\n\r\n");
        let (head, _) =
            upstream(&format!("GET /safeclaw-broker/telegram HTTP/1.1\r\n{key}")).unwrap();
        assert!(head.starts_with("GET / HTTP/1.1\r\n"), "{head}");
        let (head, _) = upstream(&format!(
            "GET /safeclaw-broker/telegram?a=b HTTP/1.1\r\n{key}"
        ))
        .unwrap();
        assert!(head.starts_with("GET /?a=b HTTP/1.1\r\n"), "{head}");
    }

    #[test]
    fn the_placeholder_in_another_header_is_refused() {
        let err = upstream(&format!(
            "POST /safeclaw-broker/anthropic/v1/messages HTTP/1.1\r\nx-api-key: {ANTHROPIC}\r\n\
             anthropic-beta: {ANTHROPIC}\r\n\r\n"
        ))
        .unwrap_err();
        assert_eq!(err.status, FORBIDDEN);
        assert_eq!(
            err.reason,
            "the placeholder of secret anthropic in the header anthropic-beta: only the path and \
             authorization, x-api-key, x-goog-api-key, api-key carry it"
        );
        // Case does not matter for the credential headers.
        let (head, _) = upstream(&format!(
            "GET /safeclaw-broker/anthropic/v1 HTTP/1.1\r\nX-API-Key: {ANTHROPIC}\r\n\
             AUTHORIZATION: Bearer {ANTHROPIC}\r\nX-Goog-Api-Key: {ANTHROPIC}\r\napi-key: {ANTHROPIC}\r\n\r\n"
        ))
        .unwrap();
        assert_eq!(head.matches("sk-ant-api03-REAL-KEY-value").count(), 4);
    }

    #[test]
    fn a_request_without_the_placeholder_is_not_forwarded() {
        // The agent's own bot token would reach the agent's own chat.
        for head in [
            "POST /safeclaw-broker/telegram/bot666:attackers-own-token/sendMessage HTTP/1.1\r\n\r\n"
                .to_string(),
            // Where it is not swapped in (a header name, the proxy's
            // own headers) it does not count.
            format!("GET /safeclaw-broker/telegram/x HTTP/1.1\r\n{TELEGRAM}: 1\r\n\r\n"),
            format!("GET /safeclaw-broker/telegram/x HTTP/1.1\r\nProxy-Authorization: {TELEGRAM}\r\n\r\n"),
            format!("GET /safeclaw-broker/telegram/x HTTP/1.1\r\nHost: {TELEGRAM}\r\n\r\n"),
        ] {
            let err = upstream(&head).unwrap_err();
            assert_eq!(err.status, FORBIDDEN, "{head}");
            assert_eq!(
                err.reason,
                "no placeholder of secret telegram in the path or a header: only requests with \
                 the owner's credential go to api.telegram.org",
            );
        }
    }

    #[test]
    fn hop_by_hop_and_proxy_headers_are_dropped_and_the_port_kept() {
        let mut r = routes();
        r[0].port = 8443;
        let b = parse(
            format!(
                "GET /safeclaw-broker/anthropic/x HTTP/1.1\r\nHost: evil.test\r\nKeep-Alive: 5\r\n\
                 Proxy-Authorization: {ANTHROPIC}\r\nUpgrade: websocket\r\nConnection: upgrade, X-Hop\r\n\
                 X-Hop: 1\r\nTE: trailers\r\nAuthorization: Bearer {ANTHROPIC}\r\n\
                 Transfer-Encoding: chunked\r\n\r\n"
            )
            .as_bytes(),
            &r,
        )
        .unwrap();
        let head = String::from_utf8(b.head.to_vec()).unwrap();
        assert_eq!(
            head,
            "GET /x HTTP/1.1\r\nHost: api.anthropic.com:8443\r\n\
             Authorization: Bearer sk-ant-api03-REAL-KEY-value\r\nTransfer-Encoding: chunked\r\n\
             Accept-Encoding: identity\r\nTE: trailers\r\nConnection: te, close\r\n\r\n"
        );
        assert_eq!(b.body, Body::Chunked);
    }

    #[test]
    fn another_route_s_placeholder_is_an_exfiltration_attempt() {
        for head in [
            format!("GET /safeclaw-broker/telegram/bot{ANTHROPIC}/getMe HTTP/1.1\r\n\r\n"),
            format!("POST /safeclaw-broker/telegram/x HTTP/1.1\r\nX-Note: a{ANTHROPIC}b\r\n\r\n"),
            format!("POST /safeclaw-broker/telegram/x?text={ANTHROPIC} HTTP/1.1\r\n\r\n"),
            format!("POST /safeclaw-broker/telegram/x HTTP/1.1\r\nHost: {ANTHROPIC}\r\n\r\n"),
        ] {
            let err = upstream(&head).unwrap_err();
            assert_eq!(err.status, FORBIDDEN);
            assert_eq!(
                err.reason,
                "the placeholder of secret anthropic (for api.anthropic.com) on its way to \
                 api.telegram.org: an exfiltration attempt"
            );
        }
        // Its own placeholder in the query is data, not a credential.
        let err = upstream(&format!(
            "GET /safeclaw-broker/telegram/bot1:{TELEGRAM}/sendMessage?chat_id=1&text={TELEGRAM} HTTP/1.1\r\n\r\n"
        ))
        .unwrap_err();
        assert_eq!(err.status, FORBIDDEN);
        assert!(err.reason.contains("query string"), "{}", err.reason);
        assert!(!err.reason.contains("AAH"));
    }

    #[test]
    fn malformed_and_smuggling_heads_are_refused() {
        let a = "/safeclaw-broker/anthropic/v1";
        for (head, status, why) in [
            (format!("GET {a} HTTP/1.0\r\n\r\n"), "400", "HTTP/1.1"),
            (format!("GET {a} HTTP/2\r\n\r\n"), "400", "HTTP/1.1"),
            (format!("TRACE {a} HTTP/1.1\r\n\r\n"), "405", "method"),
            (format!("CONNECT {a} HTTP/1.1\r\n\r\n"), "405", "method"),
            (format!("GET  {a} HTTP/1.1\r\n\r\n"), "400", "METHOD"),
            (format!("GET {a}#f HTTP/1.1\r\n\r\n"), "400", "fragment"),
            ("GET /safeclaw-broker/ HTTP/1.1\r\n\r\n".into(), "400", "route name"),
            ("GET /safeclaw-broker//x HTTP/1.1\r\n\r\n".into(), "400", "route name"),
            ("GET /safeclaw-broker/Anthropic/x HTTP/1.1\r\n\r\n".into(), "400", "route name"),
            ("GET /safeclaw-broker/anth%72opic/x HTTP/1.1\r\n\r\n".into(), "400", "route name"),
            ("GET /safeclaw-broker/openai/v1 HTTP/1.1\r\n\r\n".into(), "404", "no secret named openai"),
            ("GET /x HTTP/1.1\r\n\r\n".into(), "400", "broker path"),
            (format!("POST {a} HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), "400", "other than chunked"),
            (format!("POST {a} HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"), "400", "smuggling"),
            (format!("POST {a} HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n"), "400", "more than one"),
            (format!("POST {a} HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), "400", "more than one"),
            (format!("POST {a} HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n"), "400", "not a number"),
            (format!("POST {a} HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), "400", "not a number"),
            (format!("POST {a} HTTP/1.1\r\nContent-Length: 99999999999999999\r\n\r\n"), "400", "not a number"),
            (format!("POST {a} HTTP/1.1\r\nContent-Length:\r\n\r\n"), "400", "not a number"),
            (format!("GET {a} HTTP/1.1\r\nX: a\r\n b\r\n\r\n"), "400", "obs-fold"),
            (format!("GET {a} HTTP/1.1\r\nX a\r\n\r\n"), "400", "colon"),
            (format!("GET {a} HTTP/1.1\r\nX y: a\r\n\r\n"), "400", "token"),
            (format!("GET {a} HTTP/1.1\r\n: a\r\n\r\n"), "400", "token"),
            (format!("GET {a} HTTP/1.1\r\nX: a\nY: b\r\n\r\n"), "400", "CRLF"),
            (format!("GET {a} HTTP/1.1\r\nX: a\rY: b\r\n\r\n"), "400", "CRLF"),
            (format!("GET {a} HTTP/1.1\r\nX: a\0\r\n\r\n"), "400", "control"),
            (format!("GET {a} HTTP/1.1\r\nX: \u{e9}\r\n\r\n"), "400", "non-ASCII"),
            (format!("GET {a} HTTP/1.1\r\nConnection: content-length\r\n\r\n"), "400", "framing"),
            (format!("GET {a} HTTP/1.1\r\nConnection: a b\r\n\r\n"), "400", "token list"),
            (format!("GET {a} HTTP/1.1\r\n\r\n\r\n"), "400", "colon"),
            (format!("GET {a} HTTP/1.1\r\n"), "400", "blank line"),
            (format!("GET {a} HTTP/1.1\r\n{}\r\n", "X: y\r\n".repeat(MAX_HEADERS + 1)), "400", "too many"),
            (format!("GET {a} HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(MAX_HEAD)), "431", "too long"),
        ] {
            let err = upstream(&head).unwrap_err();
            assert!(err.status.starts_with(status), "{head:?}: {err:?}");
            assert!(err.reason.contains(why), "{head:?}: {err:?}");
        }
        let b = upstream(&format!(
            "POST {a} HTTP/1.1\r\nContent-Length: 0\r\nx-api-key: {ANTHROPIC}\r\n\r\n"
        ))
        .unwrap()
        .1;
        assert_eq!(b.body, Body::None);
    }

    #[test]
    fn brokered_heads_are_told_from_the_others_and_placeholders_found() {
        assert!(is_brokered(b"GET /safeclaw-broker/x HTTP/1.1\r\n\r\n"));
        assert!(is_brokered(b"POST /safeclaw-broker/ HTTP/1.1\r\n\r\n"));
        assert!(!is_brokered(
            b"GET http://127.0.0.1:3128/safeclaw-broker/x HTTP/1.1\r\n\r\n"
        ));
        assert!(!is_brokered(
            b"CONNECT api.anthropic.com:443 HTTP/1.1\r\n\r\n"
        ));
        assert!(!is_brokered(b"GET /safeclaw-broker"));
        assert!(!is_brokered(b""));
        let r = routes();
        let head = format!("CONNECT evil.test:443 HTTP/1.1\r\nX: {TELEGRAM}\r\n\r\n");
        assert_eq!(
            placeholder_in(head.as_bytes(), &r).unwrap().name,
            "telegram"
        );
        assert!(placeholder_in(b"CONNECT a.test:443 HTTP/1.1\r\n\r\n", &r).is_none());
        assert!(placeholder_in(b"", &[]).is_none());
        assert_eq!(
            exfiltration(&r[1], "evil.test:443"),
            "the placeholder of secret telegram (for api.telegram.org) on its way to \
             evil.test:443: an exfiltration attempt"
        );
    }

    /// Feeds `stream` to `framing` in pieces of `step` bytes: how many
    /// bytes were the body.
    fn framed(body: Body, stream: &[u8], step: usize) -> Result<usize, &'static str> {
        let mut f = Framing::new(body);
        let mut n = 0;
        for piece in stream.chunks(step) {
            let k = f.take(piece)?;
            n += k;
            if f.done() {
                break;
            }
        }
        Ok(n)
    }

    #[test]
    fn the_body_ends_where_its_framing_says() {
        let chunked = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nGET / HTTP/1.1";
        let body_len = chunked.len() - "GET / HTTP/1.1".len();
        for step in [1, 2, 3, 7, 100] {
            assert_eq!(framed(Body::Chunked, chunked, step), Ok(body_len), "{step}");
            assert_eq!(framed(Body::Length(7), b"0123456789", step), Ok(7));
            assert_eq!(framed(Body::None, b"0123", step), Ok(0));
        }
        assert_eq!(framed(Body::Chunked, b"0\r\n\r\nmore", 4), Ok(5));
        assert_eq!(
            framed(Body::Chunked, b"A\r\n0123456789\r\n0\r\n\r\n", 5),
            Ok(20)
        );
        let mut f = Framing::new(Body::Chunked);
        assert_eq!(f.take(b"5\r\nhel"), Ok(6));
        assert!(!f.done());
        for bad in [
            &b"\r\n"[..],
            b"x\r\n",
            b"5\nhello\r\n",
            b"5\r\nhelloXY",
            b"5\r\nhello\n",
            b"0\r\n\n",
            b"0\r\nX: \x01\r\n",
            b";a\r\n",
            b"11111111111111111\r\n",
        ] {
            assert!(framed(Body::Chunked, bad, 1).is_err(), "{bad:?}");
        }
        let long = format!("1;{}\r\n", "e".repeat(MAX_CHUNK_LINE));
        assert!(framed(Body::Chunked, long.as_bytes(), 64).is_err());
        let trailers = format!("0\r\n{}", "X: y\r\n".repeat(MAX_TRAILERS));
        assert!(framed(Body::Chunked, trailers.as_bytes(), 64).is_err());
    }

    /// Runs `stream` through a scanner in pieces of `step` bytes: what it
    /// passed on, and the needle found.
    fn scanned(needles: &[&str], stream: &[u8], step: usize) -> (Vec<u8>, Option<usize>) {
        let mut s = Scanner::new(needles.iter().map(|n| n.as_bytes()));
        let mut out = Vec::new();
        for piece in stream.chunks(step) {
            if let Err(i) = s.feed(piece, &mut out) {
                return (out, Some(i));
            }
        }
        s.finish(&mut out);
        (out, None)
    }

    #[test]
    fn the_scanner_finds_needles_across_chunks_and_never_passes_one_on_whole() {
        let needles = ["secret-value", "aab"];
        for step in 1..20 {
            let (out, found) = scanned(&needles, b"data: x\n\nsome secret-value here", step);
            assert_eq!(found, Some(0), "{step}");
            assert!(!contains(&out, b"secret-value"), "{step}");
            assert!(b"data: x\n\nsome secret-value".starts_with(&out));
            let (out, found) = scanned(&needles, b"aaab", step);
            assert_eq!(found, Some(1));
            assert!(out.len() <= 1);
            let clean = b"a secret-valu and secret-valve, aa, aab-less";
            let (out, found) = scanned(&needles[..1], clean, step);
            assert_eq!((out.as_slice(), found), (&clean[..], None), "{step}");
        }
        // Bytes that cannot start a needle are passed on at once: an SSE
        // event is not delayed.
        let mut s = Scanner::new([&b"secret"[..]]);
        let mut out = Vec::new();
        s.feed(b"data: {}\n\n", &mut out).unwrap();
        assert_eq!(out, b"data: {}\n\n");
        out.clear();
        s.feed(b"data: se", &mut out).unwrap();
        assert_eq!(out, b"data: ");
        s.feed(b"cre", &mut out).unwrap();
        assert_eq!(out, b"data: ");
        s.feed(b"tive", &mut out).unwrap_err();
        // No needles: everything passes.
        let (out, found) = scanned(&[], b"anything", 3);
        assert_eq!((out.as_slice(), found), (&b"anything"[..], None));
    }

    #[test]
    fn the_scanner_agrees_with_a_plain_search() {
        // Every short stream over a small alphabet, against overlapping
        // needles: found exactly when the stream contains one.
        let needles = ["abab", "bba", "aaa"];
        for len in 0..9u32 {
            for n in 0..3usize.pow(len) {
                let stream: Vec<u8> = (0..len).map(|i| b"abc"[n / 3usize.pow(i) % 3]).collect();
                let expected = needles.iter().any(|x| contains(&stream, x.as_bytes()));
                for step in [1, 2, 5] {
                    let (out, found) = scanned(&needles, &stream, step);
                    assert_eq!(found.is_some(), expected, "{stream:?} {step}");
                    if !expected {
                        assert_eq!(out, stream);
                    }
                }
            }
        }
    }
}

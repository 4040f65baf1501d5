//! The request the egress proxy tunnels, `CONNECT host:port` (the
//! credential broker's requests are `broker.rs`'s), parsed
//! from the client's bytes: a pure function over a bounded head, since the
//! client is the gateway, where a prompt injection may write anything
//! (fuzzed: fuzz/fuzz_targets/egress_request.rs).

/// The most a request head may take, request line and headers together.
pub const MAX_HEAD: usize = 8192;
/// The most header lines a head may have.
pub const MAX_HEADERS: usize = 64;
/// The longest host a request may name: DNS's limit on a name (an IPv6
/// literal is shorter). Longer ones would only grow the log.
const MAX_HOST: usize = 253;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// As sent, lower-cased: a name, or an address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// Not a complete head within `MAX_HEAD` bytes.
    TooLong,
    /// Another method: only `CONNECT` tunnels are served (the gateway's
    /// traffic is HTTPS; plain HTTP would let the proxy read and forward
    /// what the agent writes in clear).
    NotConnect,
    Malformed(&'static str),
}

impl HeadError {
    pub fn status(&self) -> &'static str {
        match self {
            HeadError::TooLong => "431 Request Header Fields Too Large",
            HeadError::NotConnect => "405 Method Not Allowed",
            HeadError::Malformed(_) => "400 Bad Request",
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            HeadError::TooLong => "request head too long",
            HeadError::NotConnect => "only CONNECT is served",
            HeadError::Malformed(why) => why,
        }
    }
}

/// The length of the head in `buf` (up to and including the blank line),
/// or None while it is incomplete.
pub fn head_len(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Parses a complete head (`head_len` bytes).
pub fn parse(head: &[u8]) -> Result<Connect, HeadError> {
    if head.len() > MAX_HEAD {
        return Err(HeadError::TooLong);
    }
    let text = std::str::from_utf8(head).map_err(|_| HeadError::Malformed("not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request = lines.next().unwrap_or_default();
    let mut parts = request.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed("not METHOD TARGET VERSION"));
    };
    if method != "CONNECT" {
        return Err(HeadError::NotConnect);
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(HeadError::Malformed("not HTTP/1.x"));
    }
    let headers = lines.take_while(|l| !l.is_empty()).count();
    if headers > MAX_HEADERS {
        return Err(HeadError::Malformed("too many header lines"));
    }
    let (host, port) = split_authority(target).ok_or(HeadError::Malformed("not host:port"))?;
    Ok(Connect {
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// `host:port` or `[v6]:port`, the port 1 to 65535 in digits.
fn split_authority(target: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        let (host, port) = target.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    if host.is_empty()
        || host.len() > MAX_HOST
        || port.is_empty()
        || port.len() > 5
        || !port.bytes().all(|b| b.is_ascii_digit())
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
    {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|&p| p > 0)?;
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(s: &str) -> Result<Connect, HeadError> {
        parse(s.as_bytes())
    }

    #[test]
    fn connect_requests_parse() {
        let c = connect(
            "CONNECT API.Anthropic.com:443 HTTP/1.1\r\nHost: api.anthropic.com:443\r\n\r\n",
        )
        .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("api.anthropic.com", 443));
        let c = connect("CONNECT [2606:4700::1111]:8443 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((c.host.as_str(), c.port), ("2606:4700::1111", 8443));
        let c = connect("CONNECT 198.51.100.7:443 HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(c.host, "198.51.100.7");
    }

    #[test]
    fn everything_else_is_refused_with_a_status() {
        assert_eq!(
            connect("GET http://example.com/ HTTP/1.1\r\n\r\n"),
            Err(HeadError::NotConnect)
        );
        for bad in [
            "CONNECT example.com HTTP/1.1\r\n\r\n",
            "CONNECT example.com:0 HTTP/1.1\r\n\r\n",
            "CONNECT example.com:65536 HTTP/1.1\r\n\r\n",
            "CONNECT example.com:-1 HTTP/1.1\r\n\r\n",
            "CONNECT :443 HTTP/1.1\r\n\r\n",
            "CONNECT 2606:4700::1111:443 HTTP/1.1\r\n\r\n",
            "CONNECT [::1 HTTP/1.1\r\n\r\n",
            "CONNECT exa/mple.com:443 HTTP/1.1\r\n\r\n",
            "CONNECT user@example.com:443 HTTP/1.1\r\n\r\n",
            "CONNECT example.com:443 HTTP/2\r\n\r\n",
            "CONNECT  example.com:443 HTTP/1.1\r\n\r\n",
            "CONNECT example.com:443\r\n\r\n",
            "\r\n\r\n",
        ] {
            assert!(
                matches!(connect(bad), Err(HeadError::Malformed(_))),
                "{bad:?}: {:?}",
                connect(bad)
            );
        }
        assert_eq!(parse(&[b'a'; MAX_HEAD + 1]), Err(HeadError::TooLong));
        let many = format!(
            "CONNECT a.b:443 HTTP/1.1\r\n{}\r\n",
            "X: y\r\n".repeat(MAX_HEADERS + 1)
        );
        assert!(matches!(connect(&many), Err(HeadError::Malformed(_))));
        assert!(matches!(
            parse(b"CONNECT \xff:443 HTTP/1.1\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
    }

    #[test]
    fn the_head_ends_at_the_blank_line() {
        assert_eq!(head_len(b"CONNECT a:1 HTTP/1.1\r\n\r\nTLS"), Some(24));
        assert_eq!(head_len(b"CONNECT a:1 HTTP/1.1\r\n"), None);
    }
}

//! The server name a TLS client asks for, read from its first record (a
//! ClientHello), before the proxy dials: a tunnel opened for an allowed
//! name must carry TLS for that same name. Without this check, a CONNECT
//! to an allowed host behind a CDN (Cloudflare, Google's front end) could
//! carry a ClientHello naming any other site the CDN serves, and the CDN
//! routes by that name. A pure parser over bounded bytes (fuzzed with the
//! CONNECT head: fuzz/fuzz_targets/egress_request.rs).

/// A TLS record's header: type, version, length.
pub const RECORD_HEADER: usize = 5;
/// The largest plaintext record TLS allows (RFC 8446, 5.1).
pub const MAX_RECORD: usize = 1 << 14;
const HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
/// Encrypted Client Hello (draft-ietf-tls-esni): the real name is hidden.
const EXT_ECH: u16 = 0xfe0d;
const HOST_NAME: u8 = 0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotTls,
    /// The ClientHello does not fit in its first record (a post-quantum
    /// key share can make it larger; those clients are refused for now).
    Fragmented,
    Malformed(&'static str),
    NoServerName,
    EncryptedClientHello,
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NotTls => "the tunnel does not start with TLS",
            Refusal::Fragmented => "the TLS ClientHello spans records",
            Refusal::Malformed(why) => why,
            Refusal::NoServerName => "the TLS ClientHello names no server",
            Refusal::EncryptedClientHello => "the TLS ClientHello hides its server name (ECH)",
        }
    }
}

/// Whether `buf` can be the start of a TLS handshake record (so far).
pub fn starts_as_tls(buf: &[u8]) -> bool {
    buf.first().map_or(true, |&b| b == HANDSHAKE) && buf.get(1).map_or(true, |&v| v == 3)
}

/// The length of the first record in `buf` once its header is there.
pub fn record_len(buf: &[u8]) -> Option<usize> {
    (buf.len() >= RECORD_HEADER)
        .then(|| RECORD_HEADER + usize::from(u16::from_be_bytes([buf[3], buf[4]])))
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Refusal> {
        if self.data.len() < n {
            return Err(Refusal::Malformed("the TLS ClientHello is truncated"));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, Refusal> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, Refusal> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Result<&'a [u8], Refusal> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    fn vec16(&mut self) -> Result<&'a [u8], Refusal> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

/// The server name of the ClientHello in `record` (one whole record, as
/// `record_len` measured it), lower-cased, without a trailing dot.
pub fn server_name(record: &[u8]) -> Result<String, Refusal> {
    if record.len() < RECORD_HEADER || record[0] != HANDSHAKE || record[1] != 3 {
        return Err(Refusal::NotTls);
    }
    if record.len() > RECORD_HEADER + MAX_RECORD || record_len(record) != Some(record.len()) {
        return Err(Refusal::Malformed("the TLS record's length is wrong"));
    }
    let mut r = Reader {
        data: &record[RECORD_HEADER..],
    };
    if r.u8()? != CLIENT_HELLO {
        return Err(Refusal::NotTls);
    }
    let len = r.take(3)?;
    let len = (usize::from(len[0]) << 16) | (usize::from(len[1]) << 8) | usize::from(len[2]);
    if len > r.data.len() {
        return Err(Refusal::Fragmented);
    }
    let mut hello = Reader { data: r.take(len)? };
    hello.take(2 + 32)?; // version, random
    hello.vec8()?; // session id
    hello.vec16()?; // cipher suites
    hello.vec8()?; // compression methods
    let mut extensions = Reader {
        data: hello.vec16()?,
    };
    let mut name = None;
    while !extensions.data.is_empty() {
        let kind = extensions.u16()?;
        let body = extensions.vec16()?;
        match kind {
            EXT_ECH => return Err(Refusal::EncryptedClientHello),
            EXT_SERVER_NAME if name.is_some() => {
                return Err(Refusal::Malformed("two server_name extensions"))
            }
            EXT_SERVER_NAME => {
                let mut list = Reader {
                    data: Reader { data: body }.vec16()?,
                };
                let mut found = None;
                while !list.data.is_empty() {
                    let typ = list.u8()?;
                    let host = list.vec16()?;
                    if typ == HOST_NAME {
                        if found.is_some() {
                            return Err(Refusal::Malformed("two host names in server_name"));
                        }
                        found = Some(host);
                    }
                }
                name = Some(found.ok_or(Refusal::NoServerName)?);
            }
            _ => {}
        }
    }
    let name = name.ok_or(Refusal::NoServerName)?;
    let name = std::str::from_utf8(name)
        .ok()
        .filter(|n| !n.is_empty() && n.len() <= 253 && n.is_ascii())
        .ok_or(Refusal::Malformed("the server name is not an ASCII name"))?;
    Ok(name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase())
}

/// A ClientHello record with these extensions (type, body), carrying no
/// usable key share: what the tests and the stand-in's probe send to make
/// the proxy read a server name, never a real handshake.
/// A ClientHello record with these extensions (type, body), carrying no
/// usable key share: what the tests and the stand-in's probe send to make
/// the proxy read a server name, never a real handshake.
pub fn client_hello(extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut ext = Vec::new();
    for (kind, body) in extensions {
        ext.extend_from_slice(&kind.to_be_bytes());
        ext.extend_from_slice(&(body.len() as u16).to_be_bytes());
        ext.extend_from_slice(body);
    }
    let mut hello = vec![3, 3];
    hello.extend_from_slice(&[7u8; 32]);
    hello.push(0); // session id
    hello.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
    hello.extend_from_slice(&[1, 0]); // null compression
    hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    hello.extend_from_slice(&ext);
    let mut handshake = vec![CLIENT_HELLO];
    handshake.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&hello);
    let mut record = vec![HANDSHAKE, 3, 1];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// The server_name extension naming `name`.
pub fn sni(name: &str) -> (u16, Vec<u8>) {
    let mut entry = vec![HOST_NAME];
    entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
    entry.extend_from_slice(name.as_bytes());
    let mut body = (entry.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(&entry);
    (EXT_SERVER_NAME, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_is_read_from_a_client_hello() {
        let record = client_hello(&[(10, vec![0, 2, 0, 29]), sni("API.Anthropic.com.")]);
        assert_eq!(record_len(&record), Some(record.len()));
        assert_eq!(server_name(&record).unwrap(), "api.anthropic.com");
    }

    #[test]
    fn what_hides_or_lacks_a_name_is_refused() {
        assert_eq!(server_name(&client_hello(&[])), Err(Refusal::NoServerName));
        assert_eq!(
            server_name(&client_hello(&[sni("a.example"), (EXT_ECH, vec![0; 8])])),
            Err(Refusal::EncryptedClientHello)
        );
        assert!(matches!(
            server_name(&client_hello(&[sni("a.example"), sni("b.example")])),
            Err(Refusal::Malformed(_))
        ));
        assert_eq!(server_name(b"GET / HTTP/1.1\r\n\r\n"), Err(Refusal::NotTls));
        let mut cut = client_hello(&[sni("a.example")]);
        cut.truncate(cut.len() - 3);
        assert!(server_name(&cut).is_err());
        // A handshake longer than its record: the rest would follow in the
        // next record.
        let mut spans = client_hello(&[sni("a.example")]);
        spans[7] = 0x40;
        assert!(server_name(&spans).is_err());
    }
}

//! The egress proxy: `CONNECT` tunnels to what the policy allows, nothing
//! else. It resolves names itself, drops every address `Policy::undialable`
//! refuses before dialling, caps concurrent tunnels, and writes one JSON
//! line per decision (destination, verdict, byte counts, never payloads)
//! for `safeclaw egress log` (docs/egress.md).
//!
//! On the same listener, the credential broker (docs/broker.md): an
//! origin-form request under `/safeclaw-broker/ROUTE/` is forwarded over
//! TLS to the route's host with its secret in place of its placeholder
//! (`broker` has the rules, `forward` the exchange).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::Semaphore;

use super::address::Cidr;
use super::broker;
use super::forward::Broker;
use super::handoff::Route;
use super::policy::{Policy, Verdict};
use super::request::{self, Connect, HeadError};
use super::tls;

/// How long a client may take to send its head, a name to resolve, and a
/// destination to accept the connection.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait after a failed accept (out of descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Addresses of one name tried at most.
const MAX_ADDRESSES: usize = 8;

pub struct Settings {
    pub policy: Policy,
    /// The host's and safeclaw's own networks, never dialled.
    pub refuse: Vec<Cidr>,
    pub max_tunnels: usize,
    /// The credential broker's secrets and TLS client, when the host
    /// handed them over (`egress serve --broker`). Without them a
    /// brokered request is answered 503: a placeholder is never forwarded.
    pub broker: Option<Broker>,
    /// Fixed answers for names, looked at before DNS. Empty in the
    /// containers (their /etc/hosts, from `--egress-host`, does this);
    /// the tests use it to reach their own servers under real names.
    pub hosts: Vec<(String, IpAddr)>,
}

/// One line of the egress log.
#[derive(Debug, Serialize)]
pub struct Event {
    /// Unix milliseconds.
    pub time_ms: u128,
    pub client: String,
    pub host: String,
    pub port: u16,
    /// "allowed" or "denied".
    pub decision: &'static str,
    pub reason: String,
    /// The address dialled, when one was.
    pub address: Option<String>,
    pub sent: u64,
    pub received: u64,
    pub duration_ms: u128,
    /// Connections this proxy has opened to destinations since it started
    /// (the tests' proof that a refusal dialled nothing).
    pub dials: u64,
    /// The credential broker's secret (its route's name) put into the
    /// request sent upstream, when one was: `safeclaw secrets list` shows
    /// when each was last used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The proxy's shared state.
pub struct Proxy {
    settings: Settings,
    tunnels: Semaphore,
    dials: AtomicU64,
    denied: AtomicU64,
}

impl Proxy {
    pub fn new(settings: Settings) -> Arc<Proxy> {
        let tunnels = Semaphore::new(settings.max_tunnels);
        Arc::new(Proxy {
            settings,
            tunnels,
            dials: AtomicU64::new(0),
            denied: AtomicU64::new(0),
        })
    }

    pub fn dials(&self) -> u64 {
        self.dials.load(Ordering::Relaxed)
    }

    pub fn denied(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }

    /// Serves clients on TCP for ever, one task each; `log` receives every
    /// event.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        log: impl Fn(&Event) + Send + Sync + 'static,
    ) -> std::io::Result<()> {
        let log = Arc::new(log);
        loop {
            match listener.accept().await {
                Ok((client, peer)) => self.clone().spawn(client, peer.to_string(), log.clone()),
                // Out of descriptors and the like: wait, never exit.
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            }
        }
    }

    /// Serves clients on a Unix socket: the relay in the gateway's
    /// container, which has no network at all (docs/egress.md).
    pub async fn serve_unix(
        self: Arc<Self>,
        listener: UnixListener,
        log: impl Fn(&Event) + Send + Sync + 'static,
    ) -> std::io::Result<()> {
        let log = Arc::new(log);
        let mut n = 0u64;
        loop {
            match listener.accept().await {
                Ok((client, _)) => {
                    n += 1;
                    self.clone()
                        .spawn(client, format!("relay#{n}"), log.clone());
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            }
        }
    }

    fn spawn<S>(
        self: Arc<Self>,
        client: S,
        peer: String,
        log: Arc<impl Fn(&Event) + Send + Sync + 'static>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        tokio::spawn(async move {
            let event = self.handle(client, peer).await;
            if event.decision == "denied" {
                self.denied.fetch_add(1, Ordering::Relaxed);
            }
            log(&event);
        });
    }

    async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut client: S,
        peer: String,
    ) -> Event {
        let began = Instant::now();
        let mut event = Event {
            time_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
            client: peer,
            host: String::new(),
            port: 0,
            decision: "denied",
            reason: String::new(),
            address: None,
            sent: 0,
            received: 0,
            duration_ms: 0,
            dials: 0,
            secret: None,
        };
        let (head, early) = match read_head(&mut client).await {
            Ok(x) => x,
            Err(e) => {
                event.reason = e.reason().into();
                let _ = reply(&mut client, e.status()).await;
                return self.finish(event, began);
            }
        };
        match request::parse(&head) {
            Ok(connect) => {
                self.tunnel(client, &head, connect, early, event, began)
                    .await
            }
            Err(HeadError::NotConnect) if broker::is_brokered(&head) => {
                self.broker(client, &head, early, event, began).await
            }
            Err(e) => {
                event.reason = self.noting_placeholder(e.reason().into(), &head);
                let _ = reply(&mut client, e.status()).await;
                self.finish(event, began)
            }
        }
    }

    /// The routes of the broker, none without a hand-off.
    fn routes(&self) -> &[Route] {
        self.settings
            .broker
            .as_ref()
            .map_or(&[], |b| b.routes.as_slice())
    }

    /// `reason`, and which secret's placeholder the refused head held, if
    /// any: an attempt to send it somewhere, logged as such.
    fn noting_placeholder(&self, reason: String, head: &[u8]) -> String {
        match broker::placeholder_in(head, self.routes()) {
            Some(r) => format!(
                "{reason}; it holds the placeholder of secret {} (for {}): an exfiltration attempt",
                r.name, r.host
            ),
            None => reason,
        }
    }

    /// A `CONNECT` tunnel.
    async fn tunnel<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut client: S,
        head: &[u8],
        connect: Connect,
        early: Vec<u8>,
        mut event: Event,
        began: Instant,
    ) -> Event {
        event.host = connect.host.clone();
        event.port = connect.port;
        // The broker cannot see inside a tunnel, but it sees the head.
        if let Some(r) = broker::placeholder_in(head, self.routes()) {
            event.reason = broker::exfiltration(r, &format!("{}:{}", connect.host, connect.port));
            let _ = reply(&mut client, broker::FORBIDDEN).await;
            return self.finish(event, began);
        }
        // A host the broker holds a secret for is reached through the
        // broker only: every genuine request to it needs the secret, and
        // a tunnel would carry a credential of the agent's choosing (its
        // own bot token, to a chat it owns).
        let host = connect.host.strip_suffix('.').unwrap_or(&connect.host);
        if let Some(r) = self
            .routes()
            .iter()
            .find(|r| r.host == host && r.port == connect.port)
        {
            event.reason = format!(
                "{}:{} is reached through the broker only (secret {})",
                connect.host, connect.port, r.name
            );
            let _ = reply(&mut client, broker::FORBIDDEN).await;
            return self.finish(event, began);
        }
        // Counted once the head is in: a client that never finishes its
        // head holds no tunnel (it is cut at HEAD_TIMEOUT).
        let Ok(_permit) = self.tunnels.try_acquire() else {
            event.reason = "too many open tunnels".into();
            let _ = reply(&mut client, "503 Service Unavailable").await;
            return self.finish(event, began);
        };
        let upstream = match self.open(&connect, &mut event).await {
            Ok(s) => s,
            Err(status) => {
                let _ = reply(&mut client, status).await;
                return self.finish(event, began);
            }
        };
        let mut upstream = upstream;
        if reply(&mut client, "200 Connection Established")
            .await
            .is_err()
        {
            event.reason = "the client went away".into();
            return self.finish(event, began);
        }
        // A name's tunnel must carry TLS for that name: nothing is sent
        // upstream before the ClientHello says so.
        let first = if matches!(
            self.settings.policy.judge(&connect.host, connect.port),
            Verdict::Name
        ) {
            match read_client_hello(&mut client, early).await {
                Ok((name, record))
                    if name == connect.host.strip_suffix('.').unwrap_or(&connect.host) =>
                {
                    record
                }
                Ok((name, _)) => {
                    event.reason = format!("the TLS server name {name:?} is not the CONNECT host");
                    return self.finish(event, began);
                }
                Err(why) => {
                    event.reason = why.reason().into();
                    return self.finish(event, began);
                }
            }
        } else {
            early
        };
        event.decision = "allowed";
        if !first.is_empty() && upstream.write_all(&first).await.is_err() {
            return self.finish(event, began);
        }
        event.sent = first.len() as u64;
        match tokio::io::copy_bidirectional_with_sizes(
            &mut client,
            &mut upstream,
            super::TUNNEL_BUFFER,
            super::TUNNEL_BUFFER,
        )
        .await
        {
            Ok((up, down)) => {
                event.sent += up;
                event.received = down;
            }
            Err(e) => event.reason = format!("tunnel ended: {}", e.kind()),
        }
        self.finish(event, began)
    }

    /// A brokered request: the route's host, allowed, resolved, filtered
    /// and dialled as a tunnel's would be, then TLS to it and one request
    /// with the secret in (`forward::exchange`).
    async fn broker<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut client: S,
        head: &[u8],
        early: Vec<u8>,
        mut event: Event,
        began: Instant,
    ) -> Event {
        let Some(broker) = &self.settings.broker else {
            event.reason = self.noting_placeholder(
                "the broker holds no secrets: this proxy was started without a hand-off".into(),
                head,
            );
            let _ = reply(&mut client, "503 Service Unavailable").await;
            return self.finish(event, began);
        };
        let request = match broker::parse(head, &broker.routes) {
            Ok(r) => r,
            Err(refusal) => {
                event.reason = if refusal.status == broker::FORBIDDEN {
                    refusal.reason
                } else {
                    self.noting_placeholder(refusal.reason, head)
                };
                let _ = reply(&mut client, refusal.status).await;
                return self.finish(event, began);
            }
        };
        let route = &broker.routes[request.route];
        event.host = route.host.clone();
        event.port = route.port;
        let Ok(_permit) = self.tunnels.try_acquire() else {
            event.reason = "too many open tunnels".into();
            let _ = reply(&mut client, "503 Service Unavailable").await;
            return self.finish(event, began);
        };
        let to = Connect {
            host: route.host.clone(),
            port: route.port,
        };
        let upstream = match self.open(&to, &mut event).await {
            Ok(s) => s,
            Err(status) => {
                event.reason = format!("secret {}: {}", route.name, event.reason);
                let _ = reply(&mut client, status).await;
                return self.finish(event, began);
            }
        };
        super::forward::exchange(client, upstream, broker, request, early, &mut event).await;
        self.finish(event, began)
    }

    fn finish(&self, mut event: Event, began: Instant) -> Event {
        event.duration_ms = began.elapsed().as_millis();
        event.dials = self.dials();
        event
    }

    /// The fixed answer for `host` (`Settings::hosts`), if any.
    fn fixed(&self, host: &str) -> Option<IpAddr> {
        let host = host.strip_suffix('.').unwrap_or(host);
        self.settings
            .hosts
            .iter()
            .find(|(name, _)| name == host)
            .map(|(_, ip)| *ip)
    }

    /// The policy's verdict, then resolution, the address filter and the
    /// dial; on refusal the status line for the client and the reason in
    /// `event`.
    async fn open(&self, c: &Connect, event: &mut Event) -> Result<TcpStream, &'static str> {
        use broker::FORBIDDEN;
        let policy = &self.settings.policy;
        let candidates: Vec<IpAddr> = match policy.judge(&c.host, c.port) {
            Verdict::Denied(why) => {
                event.reason = why.into();
                return Err(FORBIDDEN);
            }
            Verdict::Address => vec![c.host.parse().expect("judged an address")],
            Verdict::Name => match self.fixed(&c.host) {
                Some(ip) => vec![ip],
                None => {
                    let looked_up = tokio::time::timeout(
                        RESOLVE_TIMEOUT,
                        tokio::net::lookup_host((c.host.as_str(), c.port)),
                    )
                    .await;
                    match looked_up {
                        Ok(Ok(addrs)) => addrs.map(|a| a.ip()).take(MAX_ADDRESSES).collect(),
                        Ok(Err(_)) | Err(_) => {
                            event.reason = "the name does not resolve".into();
                            return Err("502 Bad Gateway");
                        }
                    }
                }
            },
        };
        let mut refused = None;
        let dialable: Vec<IpAddr> = candidates
            .into_iter()
            .filter(
                |ip| match policy.undialable(*ip, c.port, &self.settings.refuse) {
                    Some(why) => {
                        refused = Some(format!("resolves to {ip}: {why}"));
                        false
                    }
                    None => true,
                },
            )
            .collect();
        if dialable.is_empty() {
            event.reason = refused.unwrap_or_else(|| "no address".into());
            return Err(FORBIDDEN);
        }
        let mut last = String::new();
        for ip in dialable {
            let to = SocketAddr::new(ip, c.port);
            self.dials.fetch_add(1, Ordering::Relaxed);
            event.address = Some(to.to_string());
            match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(to)).await {
                Ok(Ok(s)) => return Ok(s),
                Ok(Err(e)) => last = format!("{to}: {}", e.kind()),
                Err(_) => last = format!("{to}: timed out"),
            }
        }
        event.reason = format!("no destination answered ({last})");
        Err("502 Bad Gateway")
    }
}

/// Reads the head (bounded in size and time) and whatever the client sent
/// after it.
async fn read_head<S: AsyncRead + Unpin>(client: &mut S) -> Result<(Vec<u8>, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        loop {
            if let Some(n) = request::head_len(&buf) {
                return Ok(n);
            }
            if buf.len() >= request::MAX_HEAD {
                return Err(HeadError::TooLong);
            }
            let room = (request::MAX_HEAD + 4 - buf.len()).min(chunk.len());
            match client.read(&mut chunk[..room]).await {
                Ok(0) | Err(_) => return Err(HeadError::Malformed("the head ended early")),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let n = tokio::time::timeout(HEAD_TIMEOUT, read)
        .await
        .map_err(|_| HeadError::Malformed("the head took too long"))??;
    let early = buf.split_off(n);
    Ok((buf, early))
}

/// The client's first TLS record (with what came after the head), read
/// whole (bounded in size and time), and the server name it asks for.
async fn read_client_hello<S: AsyncRead + Unpin>(
    client: &mut S,
    mut buf: Vec<u8>,
) -> Result<(String, Vec<u8>), tls::Refusal> {
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            if !tls::starts_as_tls(&buf) {
                return Err(tls::Refusal::NotTls);
            }
            if let Some(len) = tls::record_len(&buf) {
                if len > tls::RECORD_HEADER + tls::MAX_RECORD {
                    return Err(tls::Refusal::Malformed("the TLS record is too long"));
                }
                if buf.len() >= len {
                    return Ok(len);
                }
            }
            match client.read(&mut chunk).await {
                Ok(0) | Err(_) => return Err(tls::Refusal::NotTls),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let len = tokio::time::timeout(HEAD_TIMEOUT, read)
        .await
        .map_err(|_| tls::Refusal::Malformed("no TLS ClientHello in time"))??;
    let name = tls::server_name(&buf[..len])?;
    Ok((name, buf))
}

pub(super) async fn reply<S: AsyncWrite + Unpin>(
    client: &mut S,
    status: &str,
) -> std::io::Result<()> {
    let extra = if status.starts_with("200") {
        ""
    } else {
        "Content-Length: 0\r\nConnection: close\r\n"
    };
    client
        .write_all(format!("HTTP/1.1 {status}\r\n{extra}\r\n").as_bytes())
        .await
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::egress::policy::Rule;
    use tokio::io::{AsyncBufReadExt, BufReader};

    /// A proxy serving on loopback, its address and its events (as JSON
    /// lines).
    pub(crate) type Serving = (
        SocketAddr,
        Arc<Proxy>,
        tokio::sync::mpsc::UnboundedReceiver<String>,
    );

    /// `settings` served on loopback, with a policy allowing `allow`.
    pub(crate) async fn serving(allow: &[impl AsRef<str>], mut settings: Settings) -> Serving {
        settings.policy = Policy {
            open: false,
            rules: allow
                .iter()
                .map(|r| Rule::parse(r.as_ref()).unwrap())
                .collect(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = listener.local_addr().unwrap();
        let p = Proxy::new(settings);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(p.clone().serve(listener, move |e| {
            let _ = tx.send(serde_json::to_string(e).unwrap());
        }));
        (at, p, rx)
    }

    /// A proxy on loopback whose policy allows `allow`, with its events.
    async fn proxy(allow: &[&str], max_tunnels: usize) -> Serving {
        let settings = Settings {
            policy: Policy::default(),
            refuse: vec![],
            max_tunnels,
            broker: None,
            hosts: vec![],
        };
        serving(allow, settings).await
    }

    async fn ask(proxy: SocketAddr, head: &str) -> (String, TcpStream) {
        let mut s = TcpStream::connect(proxy).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let mut r = BufReader::new(s);
        let mut status = String::new();
        r.read_line(&mut status).await.unwrap();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        (status.trim_end().to_string(), r.into_inner())
    }

    #[tokio::test]
    async fn an_address_rule_opens_a_tunnel_and_bytes_are_counted() {
        // An echo server on loopback, allowed by an explicit address rule
        // (loopback is refused for every name).
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = echo.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        let (at, p, mut log) = proxy(&[&format!("127.0.0.1:{port}")], 4).await;
        let (status, mut s) = ask(at, &format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n")).await;
        assert_eq!(status, "HTTP/1.1 200 Connection Established");
        s.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        drop(s);
        let line = log.recv().await.unwrap();
        let e: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(e["decision"], "allowed");
        assert_eq!(e["sent"], 5);
        assert_eq!(e["received"], 5);
        assert_eq!(p.dials(), 1);
        assert!(!line.contains("hello"), "a payload in the log: {line}");
    }

    #[tokio::test]
    async fn refusals_dial_nothing_and_are_logged() {
        let (at, p, mut log) = proxy(&["localhost:443", "allowed.test"], 8).await;
        for (head, status, reason) in [
            // A name that resolves only to loopback: refused before dialling.
            ("CONNECT localhost:443 HTTP/1.1\r\n\r\n", "403", "loopback"),
            (
                "CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n",
                "403",
                "address rule",
            ),
            (
                "CONNECT forbidden.test:443 HTTP/1.1\r\n\r\n",
                "403",
                "allowlist",
            ),
            (
                "CONNECT allowed.test:80 HTTP/1.1\r\n\r\n",
                "403",
                "allowlist",
            ),
            (
                "GET http://allowed.test/ HTTP/1.1\r\n\r\n",
                "405",
                "only CONNECT",
            ),
            ("CONNECT allowed.test HTTP/1.1\r\n\r\n", "400", "host:port"),
        ] {
            let (got, _) = ask(at, head).await;
            assert!(
                got.starts_with(&format!("HTTP/1.1 {status}")),
                "{head:?}: {got}"
            );
            let e: serde_json::Value = serde_json::from_str(&log.recv().await.unwrap()).unwrap();
            assert_eq!(e["decision"], "denied", "{e}");
            assert!(e["reason"].as_str().unwrap().contains(reason), "{e}");
            assert_eq!(e["dials"], 0, "{e}");
        }
        assert_eq!(p.dials(), 0);
        assert_eq!(p.denied(), 6);
    }

    #[tokio::test]
    async fn tunnels_are_capped_once_their_head_is_in() {
        // A server that holds every connection open.
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = server.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = server.accept().await {
                held.push(s);
            }
        });
        let (at, _p, mut log) = proxy(&[&format!("127.0.0.1:{port}")], 1).await;
        // A client that never finishes its head holds no slot.
        let mut slow = TcpStream::connect(at).await.unwrap();
        slow.write_all(b"CONNECT 127.0.0.1").await.unwrap();
        let head = format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n");
        let (got, _holder) = ask(at, &head).await;
        assert_eq!(got, "HTTP/1.1 200 Connection Established");
        // The one slot is the open tunnel's.
        let (got, _) = ask(at, &head).await;
        assert_eq!(got, "HTTP/1.1 503 Service Unavailable");
        let e: serde_json::Value = serde_json::from_str(&log.recv().await.unwrap()).unwrap();
        assert_eq!(e["reason"], "too many open tunnels");
        drop(slow);
    }
}

//! What the egress firewall costs a connection, on loopback, against a
//! direct connection measured in the same run: bulk throughput (a server
//! sends 256 MiB) and the time to open a tunnel (connect, CONNECT, first
//! byte back), through the proxy alone and through the whole path the
//! gateway uses (TCP to the relay, the relay to the proxy's Unix socket,
//! the proxy to the destination).
//!
//! `cargo bench --bench egress` (no engine needed). The proxy allows the
//! loopback server by an explicit address rule: loopback is refused for
//! every name.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use safeclaw::egress::policy::{Policy, Rule};
use safeclaw::egress::proxy::{Proxy, Settings};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const BULK: u64 = 256 << 20;
const OPENS: usize = 300;

/// A server that sends `BULK` bytes to each client that writes `b`, and
/// one byte to each that writes `o`.
async fn server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let mut what = [0u8; 1];
                if s.read_exact(&mut what).await.is_err() {
                    return;
                }
                if what[0] == b'o' {
                    let _ = s.write_all(b"!").await;
                    return;
                }
                let chunk = vec![0x5au8; 1 << 16];
                let mut left = BULK;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    if s.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n as u64;
                }
            });
        }
    });
    at
}

#[derive(Clone, Copy)]
enum Path {
    Direct,
    Proxy(SocketAddr),
}

/// A stream to `server`, tunnelled as `path` says.
async fn open(path: Path, server: SocketAddr) -> TcpStream {
    match path {
        Path::Direct => TcpStream::connect(server).await.unwrap(),
        Path::Proxy(proxy) => {
            let s = TcpStream::connect(proxy).await.unwrap();
            let mut r = BufReader::new(s);
            r.get_mut()
                .write_all(format!("CONNECT {server} HTTP/1.1\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            assert!(line.starts_with("HTTP/1.1 200"), "{line}");
            loop {
                line.clear();
                r.read_line(&mut line).await.unwrap();
                if line == "\r\n" {
                    break;
                }
            }
            r.into_inner()
        }
    }
}

async fn bulk(path: Path, server: SocketAddr) -> f64 {
    let mut s = open(path, server).await;
    s.write_all(b"b").await.unwrap();
    let began = Instant::now();
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0u64;
    while got < BULK {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got += n as u64;
    }
    BULK as f64 / (1 << 20) as f64 / began.elapsed().as_secs_f64()
}

async fn opening(path: Path, server: SocketAddr) -> Duration {
    let mut times = Vec::with_capacity(OPENS);
    for _ in 0..OPENS {
        let began = Instant::now();
        let mut s = open(path, server).await;
        s.write_all(b"o").await.unwrap();
        let mut one = [0u8; 1];
        s.read_exact(&mut one).await.unwrap();
        times.push(began.elapsed());
    }
    times.sort();
    times[OPENS / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = server().await;
        let proxy = Proxy::new(Settings {
            policy: Policy {
                open: false,
                rules: vec![Rule::parse(&server.to_string()).unwrap()],
            },
            refuse: vec![],
            max_tunnels: 256,
            broker: None,
            hosts: vec![],
        });
        // The proxy alone, on TCP.
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_at = tcp.local_addr().unwrap();
        tokio::spawn(proxy.clone().serve(tcp, |_| {}));
        // The gateway's whole path: relay on TCP, proxy on a Unix socket.
        let dir = tempfile::TempDir::new().unwrap();
        let socket = dir.path().join("egress.sock");
        let unix = tokio::net::UnixListener::bind(&socket).unwrap();
        tokio::spawn(proxy.clone().serve_unix(unix, |_| {}));
        let relay = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay_at = relay.local_addr().unwrap();
        tokio::spawn(safeclaw::egress::relay::relay(relay, socket, 64));

        let paths = [
            ("direct", Path::Direct),
            ("proxy (TCP)", Path::Proxy(proxy_at)),
            ("relay + proxy (the gateway's path)", Path::Proxy(relay_at)),
        ];
        println!(
            "egress, on loopback, 2 worker threads; {} MiB per transfer, median of {OPENS} opens",
            BULK >> 20
        );
        println!(
            "{:<36} {:>12} {:>10} {:>14} {:>10}",
            "path", "MiB/s", "vs direct", "open (µs)", "vs direct"
        );
        let mut direct = (0.0, Duration::ZERO);
        for (name, path) in paths {
            // One warm-up transfer, then the better of three.
            let _ = bulk(path, server).await;
            let mut best = 0.0f64;
            for _ in 0..3 {
                best = best.max(bulk(path, server).await);
            }
            let open = opening(path, server).await;
            if matches!(path, Path::Direct) {
                direct = (best, open);
            }
            println!(
                "{name:<36} {best:>12.0} {:>9.2}x {:>14} {:>9.2}x",
                best / direct.0,
                open.as_micros(),
                open.as_secs_f64() / direct.1.as_secs_f64()
            );
        }
    });
}

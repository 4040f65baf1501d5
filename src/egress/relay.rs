//! The relay inside the gateway's container: the gateway has no network
//! interface but loopback (`NetworkMode: none`), so OpenClaw's proxy URL is
//! `http://127.0.0.1:PORT`, and this relay carries each connection, bytes
//! unread, to the proxy's Unix socket, mounted read-only from a directory
//! only the proxy's container writes. Whatever the agent does, loopback
//! and that socket are all it has (docs/egress.md).

use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::{TcpListener, UnixStream};
use tokio::sync::Semaphore;

/// Carries connections from `listener` to the socket at `socket` for ever,
/// at most `max` at once (more wait for a free slot).
pub async fn relay(listener: TcpListener, socket: PathBuf, max: usize) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(max));
    loop {
        let permit = slots.clone().acquire_owned().await.expect("never closed");
        let (mut client, _) = listener.accept().await?;
        let socket = socket.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // No proxy, no connection: the client sees it closed.
            if let Ok(mut upstream) = UnixStream::connect(&socket).await {
                let _ = tokio::io::copy_bidirectional_with_sizes(
                    &mut client,
                    &mut upstream,
                    super::TUNNEL_BUFFER,
                    super::TUNNEL_BUFFER,
                )
                .await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_cross_both_ways_and_a_missing_proxy_closes_the_client() {
        let dir = tempfile::TempDir::new().unwrap();
        let socket = dir.path().join("egress.sock");
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = tcp.local_addr().unwrap();
        tokio::spawn(relay(tcp, socket.clone(), 4));

        // Before the proxy listens: closed at once.
        let mut c = tokio::net::TcpStream::connect(at).await.unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(c.read(&mut buf).await.unwrap(), 0);

        let unix = tokio::net::UnixListener::bind(&socket).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = unix.accept().await.unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf.map(|b| b.to_ascii_uppercase()))
                .await
                .unwrap();
        });
        let mut c = tokio::net::TcpStream::connect(at).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut back = [0u8; 4];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"PING");
    }
}

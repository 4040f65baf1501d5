//! The egress firewall's proxy side (docs/egress.md): the policy of which
//! destinations the gateway may reach (`policy`), the addresses never
//! dialled whatever the policy (`address`), the requests accepted
//! (`request`: `CONNECT`; `broker`: the credential broker's), and the
//! proxy that enforces them (`proxy`, with `forward` for the broker's
//! exchange and `handoff` for the secrets it is given; docs/broker.md).

pub mod address;
pub mod broker;
pub mod forward;
pub mod handoff;
pub mod log_file;
pub mod network;
pub mod policy;
pub mod proxy;
pub mod relay;
pub mod request;
pub mod stored;
pub mod tls;

/// Bytes buffered per direction of a tunnel (the relay's and the
/// proxy's): 64 KiB moves bulk transfers in a quarter of the wake-ups of
/// tokio's default 8 KiB (benches/egress.rs).
pub const TUNNEL_BUFFER: usize = 64 << 10;

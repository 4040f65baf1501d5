//! The egress firewall's proxy side (docs/egress.md): the policy of which
//! destinations the gateway may reach (`policy`), the addresses never
//! dialled whatever the policy (`address`), the one request accepted
//! (`request`), and the proxy that enforces them (`proxy`).

pub mod address;
pub mod network;
pub mod policy;
pub mod proxy;
pub mod relay;
pub mod request;

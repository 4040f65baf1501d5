//! The container runtime: the engine, the hardened container, and the
//! guard that runs inside it (docs/architecture.md).

pub mod endpoint;
pub mod engine;
pub mod guard;
pub mod layout;
pub mod spec;
pub mod tty;

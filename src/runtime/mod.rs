//! The container runtime: the engine, the hardened container and its life,
//! and the guard that runs inside it (docs/architecture.md).

pub mod bot;
pub mod container;
pub mod endpoint;
pub mod engine;
pub mod exec;
pub mod guard;
pub mod layout;
pub mod mount;
pub mod onboarding;
pub mod pinned_skills;
pub mod spec;
pub mod tty;

//! safeclaw: run the OpenClaw assistant gateway in a hardened container,
//! its state sealed in an authenticated, encrypted vault.
//!
//! Where things are (docs/architecture.md draws how they call each other):
//! - `cli.rs`: the command line, clap structs only; `commands/`:
//!   `settings.rs` resolves it once, then one file per command;
//! - `runtime/`: the container runtime: `engine.rs` (one handle per
//!   command), `spec.rs` (the hardened container, pure), `container.rs`
//!   (its life, by ID), `exec.rs`/`tty.rs`, `bot.rs`, `onboarding.rs`,
//!   `layout.rs`; `guard/`: PID 1 in the container, and `protocol.rs`,
//!   the contract between it and the host;
//! - `image/`: which image a container runs, loaded, checked or built;
//! - `egress/`: the egress firewall's proxy, relay and policy
//!   (docs/egress.md); `constants.rs`: what Nix reads too (constants.toml);
//! - `vault/`: the vault format (`format.rs`), keys (`crypto.rs`), STREAM
//!   (`stream.rs`), the tar rules (`archive.rs`), vault files (`mod.rs`);
//! - `audit/`: the checks of `safeclaw audit`, pure over what was gathered;
//! - `error.rs`: failure classes and exit codes; `printer.rs`: all output;
//! - `password.rs`: password input; `no_dumps.rs`: keys out of core dumps;
//!   `private_fs.rs`: atomic, private files; `paths.rs`: safeclaw's home;
//! - `secrets/`: the keys the gateway never holds; `skills/`: the skills
//!   pinned by hash (docs/skills.md); `upgrade.rs`: the record of a
//!   gateway's last upgrade (docs/upgrade.md).
#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod commands;
pub mod constants;
pub mod egress;
pub mod env_vars;
pub mod error;
pub mod image;
pub mod interrupt;
pub mod io_util;
pub mod legacy;
pub mod no_dumps;
pub mod password;
pub mod paths;
pub mod printer;
pub mod private_fs;
pub mod rollback;
pub mod runtime;
pub mod secrets;
pub mod skills;
pub mod upgrade;
pub mod vault;
pub mod wipe;

//! safeclaw: run the OpenClaw assistant gateway in a hardened container,
//! its state sealed in an authenticated, encrypted vault.
//!
//! Where things are:
//! - `vault/`: the vault format (`format.rs`), keys (`crypto.rs`), STREAM
//!   (`stream.rs`), the tar rules (`archive.rs`), vault files (`mod.rs`);
//! - `cli.rs`: the command line; `commands/`: one module per command;
//! - `error.rs`: failure classes and exit codes; `printer.rs`: all output;
//! - `password.rs`: password input; `no_dumps.rs`: keys out of core dumps; `private_fs.rs`: atomic, private files;
//! - `guard.rs`: PID 1 in the container; `container_spec.rs`: its hardening;
//! - `audit/`: the checks of `safeclaw audit`, pure over what was gathered;
//! - `image_build.rs`, `image_twin.rs`: images built through the Engine API;
//! - `image_pin.rs`, `docker_archive.rs`, `nix_store_path.rs`: the pinned Nix
//!   image, the archives it comes in and the store paths that name it;
//!   `image_identity.rs`: whether the engine's image is an archive's, on
//!   either image store.
#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod commands;
pub mod constants;
pub mod container_spec;
pub mod docker_archive;
pub mod egress;
pub mod engine;
pub mod engine_endpoint;
pub mod env_vars;
pub mod error;
pub mod guard;
pub mod image_build;
pub mod image_identity;
pub mod image_pin;
pub mod image_twin;
pub mod interrupt;
pub mod io_util;
pub mod legacy;
pub mod nix_store_path;
pub mod no_dumps;
pub mod password;
pub mod paths;
pub mod printer;
pub mod private_fs;
pub mod rollback;
pub mod vault;
pub mod wipe;

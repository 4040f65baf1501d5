//! safeclaw: run the OpenClaw assistant gateway in a hardened container,
//! its state sealed in an authenticated, encrypted vault.
//!
//! Where things are:
//! - `vault/`: the vault format (`format.rs`), keys (`crypto.rs`), STREAM
//!   (`stream.rs`), the tar rules (`archive.rs`), vault files (`mod.rs`);
//! - `cli.rs`: the command line; `commands/`: one module per command;
//! - `error.rs`: failure classes and exit codes; `printer.rs`: all output;
//! - `password.rs`: password input; `no_dumps.rs`: keys out of core dumps; `private_fs.rs`: atomic, private files;
//! - `runtime/`: the engine, the hardened container, the guard (PID 1 in it);
//! - `audit/`: the checks of `safeclaw audit`, pure over what was gathered;
//! - `image/`: which image a container runs, loaded, checked or built;
#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod commands;
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
pub mod vault;
pub mod wipe;

//! What the host, the guard and the image agree on, in one place: the
//! container's user, its mount points, where safeclaw sits in the image,
//! and how long a stop may take. The Nix image (nix/image.nix) and the
//! NixOS module must say the same.

use std::time::Duration;

/// The vault's directory inside the container (the only host path mounted
/// besides folders the user shares).
pub const VAULT_DIR: &str = "/vault";
/// OpenClaw's state dir: a tmpfs, so plaintext never reaches a disk.
pub const STATE_DIR: &str = "/state";
/// Where the guard stages a checkpoint's copy of the state: a tmpfs.
pub const CHECKPOINT_DIR: &str = "/checkpoint";
/// The gateway's home (it needs a writable `~/.cache`): a tmpfs.
pub const HOME_DIR: &str = "/home/openclaw";
/// The image's user, and the container's uid:gid when safeclaw itself
/// runs as root.
pub const FALLBACK_UID: u32 = 10001;
/// Where the image has safeclaw (entrypoint and health check).
pub const SAFECLAW_IN_IMAGE: &str = "/usr/local/bin/safeclaw";
/// Where the gateway answers `/healthz`, inside the container.
pub const GATEWAY_HEALTH_ADDR: &str = "127.0.0.1:18789";
/// Time for the guard to stop the gateway (its drain budget is at most
/// 60 s) and seal, before the engine kills everything.
pub const STOP_BUDGET: Duration = Duration::from_secs(90);

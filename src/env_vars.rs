//! Every environment variable safeclaw reads, in one place. None of them
//! carries a secret: passwords never travel in the environment.

/// Disables colour when set to a non-empty value (https://no-color.org).
pub const NO_COLOR: &str = "NO_COLOR";

/// safeclaw's home directory (default `$HOME/.safeclaw`).
pub const SAFECLAW_HOME: &str = crate::constants::ENV_HOME;

/// The user's home, for the default of `SAFECLAW_HOME`.
pub const HOME: &str = "HOME";

/// The engine's address: checked (no engine on another machine, see
/// `engine::check_host`), then given to bollard.
pub const DOCKER_HOST: &str = "DOCKER_HOST";

/// The docker CLI's configuration directory (default `~/.docker`): its
/// `config.json` names the current context.
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";

/// Selects a docker context by name, over `currentContext`.
pub const DOCKER_CONTEXT: &str = "DOCKER_CONTEXT";

/// The user's runtime directory, where rootless engines put their sockets.
pub const XDG_RUNTIME_DIR: &str = "XDG_RUNTIME_DIR";

/// Set by clients that talk TLS to a TCP engine: safeclaw cannot, so it
/// refuses a TCP engine when it is set; `safeclaw audit` reads it too.
pub const DOCKER_TLS_VERIFY: &str = "DOCKER_TLS_VERIFY";

/// The docker CLI's client certificates for TLS: refused like
/// DOCKER_TLS_VERIFY for a TCP engine.
pub const DOCKER_CERT_PATH: &str = "DOCKER_CERT_PATH";

/// Where the npm install of the image twin is cached (default `~/.cache`).
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";

/// Searched for `busybox` when `image build` is not given one.
pub const PATH: &str = "PATH";

/// Passed on to the onboarding wizard's terminal.
pub const TERM: &str = "TERM";

/// OpenClaw's state dir; in the container, `safeclaw write-secret` reads it.
pub const OPENCLAW_STATE_DIR: &str = "OPENCLAW_STATE_DIR";

/// The pinned image: the Nix store path of the image archive (set by the
/// flake's wrapper around safeclaw).
pub const SAFECLAW_IMAGE: &str = crate::constants::ENV_IMAGE;

/// Nix's own name for a store elsewhere than /nix/store.
pub const NIX_STORE_DIR: &str = "NIX_STORE_DIR";

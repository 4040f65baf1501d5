//! The command line, as clap structs only. Resolution into settings and the
//! work itself live in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands::settings as default;

/// Run the OpenClaw assistant in a hardened container, its state sealed in
/// an encrypted, authenticated vault.
#[derive(Debug, Parser)]
#[command(
    name = "safeclaw",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit codes: 0 ok, 1 failure, 2 usage, 3 wrong password, 4 damaged vault, 5 engine, 6 audit found a high finding, 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Print the result as JSON on stdout (errors too)
    #[arg(long, global = true)]
    pub json: bool,

    /// Print only results and errors
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// Never draw progress bars
    #[arg(long, global = true)]
    pub no_progress: bool,

    /// The engine's address, e.g. unix:///run/user/1000/podman/podman.sock
    /// [default: DOCKER_HOST, the current docker context, then the usual sockets]
    #[arg(long, global = true, value_name = "URL")]
    pub engine: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, inspect and manage vaults
    #[command(subcommand)]
    Vault(VaultCommand),

    /// The guide in one command: onboard if there is no vault yet, then start
    Up(UpArgs),

    /// Run OpenClaw's onboarding in a throw-away hardened container and seal
    /// the result into a new vault (no plaintext on the host)
    Onboard(OnboardArgs),

    /// Start the gateway in a hardened container, detached
    Start(StartArgs),

    /// Stop the gateway; its state is sealed into the vault's next generation
    Stop(ContainerArgs),

    /// Switch the gateway to another image: seal its state, start the new
    /// image from it, wait for health, and roll back on failure
    /// (docs/upgrade.md)
    Upgrade(UpgradeArgs),

    /// Return the gateway to the image and the state from before its last
    /// upgrade (what changed since is kept as a generation)
    Rollback(RollbackArgs),

    /// Show the container's state, health, uptime, image and vault generation
    Status(StatusArgs),

    /// Run the gateway in the foreground: logs streamed, Ctrl-C stops and seals
    Run(StartArgs),

    /// Show the container's output
    Logs(LogsArgs),

    /// Run OpenClaw's own CLI inside the running container (argv, no shell)
    Exec(ExecArgs),

    /// Pair a chat account with the bot (the guide's pairing step)
    #[command(subcommand)]
    Pair(PairCommand),

    /// Build or inspect the image the gateway runs in
    #[command(subcommand)]
    Image(ImageCommand),

    /// The security posture of a setup, safeclaw's or a hand-made one:
    /// findings with evidence and a fix; exit code 6 on a high finding
    Audit(AuditArgs),

    /// The egress firewall: what the gateway may reach (docs/egress.md)
    #[command(subcommand)]
    Egress(EgressCommand),

    /// The API keys and bot token the vault keeps out of the gateway,
    /// for the egress proxy to put into requests (docs/secrets.md)
    #[command(subcommand)]
    Secrets(SecretsCommand),

    /// Skills pinned by hash in the vault (prompt-injection defences such
    /// as prompt-guard or ACIP, as files you downloaded), which the
    /// gateway reads but cannot change (docs/skills.md)
    #[command(subcommand)]
    Skills(SkillsCommand),

    /// The in-container supervisor (the image's entrypoint); its arguments
    /// are the guard protocol's (runtime/guard/protocol.rs), read there
    #[command(hide = true, disable_help_flag = true)]
    Guard {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },

    /// The image's health check: the gateway's /healthz
    #[command(hide = true)]
    Health,

    /// In the onboarding container: a gateway that does nothing until stopped
    #[command(hide = true)]
    Idle,

    /// In the container, for `audit`: the files of DIR that hold what looks
    /// like a real API key or bot token (one JSON line each, never the value)
    #[command(hide = true)]
    ScanSecrets {
        /// The state dir
        dir: PathBuf,
    },

    /// In the container, for `audit`: the pinned skills mounted at DIR (name
    /// and hash) and every SKILL.md in the state (path and name), as JSON
    #[command(hide = true)]
    ScanSkills {
        /// The state dir
        state: PathBuf,
        /// Where the pinned skills are mounted
        pinned: PathBuf,
    },

    /// In the container: store a secret read from stdin as a 0600 file of the state dir
    #[command(hide = true)]
    WriteSecret {
        /// Where, under the state dir
        path: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum EgressCommand {
    /// Run the egress proxy (in safeclaw's egress container): CONNECT
    /// tunnels to allowed destinations only, one JSON line per decision
    Serve(EgressServeArgs),

    /// Show the egress proxy's decisions: time, allowed or denied,
    /// destination, reason, bytes (never payloads)
    Log(EgressLogArgs),

    /// Relay connections from a loopback port to the proxy's socket (in
    /// the gateway's container, which has no network)
    #[command(hide = true)]
    Relay(EgressRelayArgs),

    /// Show the vault's egress policy (what the gateway may reach)
    Show(EgressPolicyArgs),

    /// Allow destinations: HOST[:PORT], *.SUFFIX[:PORT], ADDR[/PREFIX][:PORT]
    /// (port 443 when left out); stored in the vault, used from the next start
    Allow(EgressChangeArgs),

    /// Remove rules from the vault's egress policy (as `show` lists them)
    Deny(EgressChangeArgs),
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Which secrets the vault keeps, for which hosts, and when each was
    /// last put into a request (never their values)
    List(EgressPolicyArgs),

    /// Set a secret (anthropic, openai, telegram) from a file or stdin,
    /// never argv; sealed as the vault's next generation
    Set(SecretsSetArgs),

    /// Remove a secret from the vault
    Remove(SecretsRemoveArgs),

    /// Move the Anthropic API key and the Telegram bot token found in the
    /// gateway's state (a vault onboarded before) into the vault, and give
    /// OpenClaw placeholders
    Adopt(SecretsAdoptArgs),
}

#[derive(Debug, Subcommand)]
pub enum SkillsCommand {
    /// Pin a skill: a directory or a .tar/.tar.gz archive with a SKILL.md,
    /// hashed and kept in the vault; used from the next start
    Add(SkillsAddArgs),

    /// The pinned skills: name, hash, origin, where the gateway loads them from
    List(EgressPolicyArgs),

    /// Unpin a skill (from the next start)
    Remove(SkillsRemoveArgs),
}

#[derive(Debug, Args)]
pub struct SkillsAddArgs {
    /// The skill's directory, or a .tar/.tar.gz archive of it
    pub source: PathBuf,

    /// The skill's name [default: the one in its SKILL.md, else the
    /// directory's]
    #[arg(long)]
    pub name: Option<String>,

    #[command(flatten)]
    pub policy: EgressPolicyArgs,

    /// Older vault generations to keep (the change is sealed as a new one)
    #[arg(long, default_value_t = default::KEEP_GENERATIONS)]
    pub keep_generations: usize,
}

#[derive(Debug, Args)]
pub struct SkillsRemoveArgs {
    /// The skill's name, as `skills list` shows it
    pub name: String,

    #[command(flatten)]
    pub policy: EgressPolicyArgs,

    /// Older vault generations to keep (the change is sealed as a new one)
    #[arg(long, default_value_t = default::KEEP_GENERATIONS)]
    pub keep_generations: usize,
}

#[derive(Debug, Args)]
pub struct SecretsAdoptArgs {
    #[command(flatten)]
    pub policy: EgressPolicyArgs,

    /// The image of the short run that gives OpenClaw the placeholders
    #[command(flatten)]
    pub image: ImageChoice,

    /// Older vault generations to keep (the change is sealed as new ones)
    #[arg(long, default_value_t = default::KEEP_GENERATIONS)]
    pub keep_generations: usize,
}

#[derive(Debug, Args)]
pub struct SecretsSetArgs {
    /// anthropic, openai or telegram
    pub name: String,

    /// Read the value from the first line of PATH
    #[arg(long, value_name = "PATH", required_unless_present = "from_stdin")]
    pub from_file: Option<PathBuf>,

    /// Read the value from the first line of standard input
    #[arg(long, conflicts_with = "from_file")]
    pub from_stdin: bool,

    #[command(flatten)]
    pub policy: EgressPolicyArgs,

    /// For a secret new to the vault, its gateway's OpenClaw gets the
    /// placeholder in a short run of the vault in this image
    #[command(flatten)]
    pub image: ImageChoice,

    /// Only store the value: leave the gateway's state as it is (it holds
    /// the placeholder already, or you set it up by hand)
    #[arg(long)]
    pub vault_only: bool,

    /// Older vault generations to keep (the change is sealed as a new one)
    #[arg(long, default_value_t = default::KEEP_GENERATIONS)]
    pub keep_generations: usize,
}

#[derive(Debug, Args)]
pub struct SecretsRemoveArgs {
    /// The secret's name, as `secrets list` shows it
    pub name: String,

    #[command(flatten)]
    pub policy: EgressPolicyArgs,

    /// Older vault generations to keep (the change is sealed as a new one)
    #[arg(long, default_value_t = default::KEEP_GENERATIONS)]
    pub keep_generations: usize,
}

/// The egress firewall of a start or an onboarding (docs/egress.md).
#[derive(Debug, Args)]
pub struct EgressArgs {
    /// `locked`: no network but a proxy that allows only the vault's
    /// egress policy (`safeclaw egress show`); `open`: a route to anywhere,
    /// as plain Docker gives [default: the vault's policy, locked]
    #[arg(long = "egress", value_enum, value_name = "MODE")]
    pub mode: Option<crate::egress::policy::Mode>,

    /// The network the egress proxy reaches the world through (a bridge
    /// network; never `host` or `none`)
    #[arg(long, value_name = "NETWORK", default_value = crate::egress::network::DEFAULT_OUTSIDE)]
    pub egress_network: String,

    /// NAME:ADDR for the egress proxy's name lookups, as in /etc/hosts
    /// (a split-horizon name, a model server on the LAN); repeat for more
    #[arg(long = "egress-host", value_name = "NAME:ADDR")]
    pub egress_hosts: Vec<String>,

    /// A PEM file of CA certificates the egress proxy's broker also trusts
    /// for the hosts it puts secrets into (a TLS-inspecting firewall's CA,
    /// a test's); the system's roots are always trusted
    #[arg(long = "egress-ca", value_name = "FILE")]
    pub egress_ca: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EgressPolicyArgs {
    /// The vault [default: ~/.safeclaw/vault/openclaw.vault]
    #[arg(long, value_name = "FILE")]
    pub vault: Option<PathBuf>,

    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, Args)]
pub struct EgressChangeArgs {
    /// The rules
    #[arg(required = true, value_name = "RULE")]
    pub rules: Vec<String>,

    #[command(flatten)]
    pub policy: EgressPolicyArgs,

    /// Older vault generations to keep (the change is sealed as a new one)
    #[arg(long, default_value_t = default::KEEP_GENERATIONS)]
    pub keep_generations: usize,
}

#[derive(Debug, Args)]
pub struct EgressServeArgs {
    /// Listen on TCP
    #[arg(
        long,
        value_name = "ADDR:PORT",
        conflicts_with = "socket",
        required_unless_present = "socket"
    )]
    pub listen: Option<std::net::SocketAddr>,
    /// Listen on a Unix socket (made 0600; an old one at that path is replaced)
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// An allowed destination: HOST[:PORT], *.SUFFIX[:PORT], ADDR[/PREFIX][:PORT]
    /// (port 443 when left out); repeat for more
    #[arg(long = "allow", value_name = "RULE")]
    pub allow: Vec<String>,
    /// An address range never dialled, whatever the rules (the host's and
    /// safeclaw's own networks); repeat for more
    #[arg(long = "refuse", value_name = "CIDR")]
    pub refuse: Vec<String>,
    /// The most tunnels open at once
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub max_tunnels: u16,
    /// Also append each decision to this file (rotated at 1 MiB), where
    /// the gateway's guard reads it into the vault
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Be the credential broker: read its secrets from stdin (the host's
    /// hand-off, within 10 s; without one, brokered requests get 503)
    /// before listening
    #[arg(long)]
    pub broker: bool,
}

#[derive(Debug, Args)]
pub struct EgressLogArgs {
    #[command(flatten)]
    pub container: ContainerArgs,

    /// Keep following new decisions
    #[arg(long, short, conflicts_with = "vault")]
    pub follow: bool,

    /// Read the log the vault keeps (every run's, as of its last seal)
    /// instead of the running proxy's
    #[arg(long, value_name = "FILE")]
    pub vault: Option<PathBuf>,

    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, Args)]
pub struct EgressRelayArgs {
    /// The loopback address OpenClaw's proxy URL names
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: std::net::SocketAddr,
    /// The proxy's Unix socket
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The container to audit, any container [default: openclaw, if it exists]
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,

    /// The vault to audit [default: HOME/vault/openclaw.vault]
    #[arg(long, value_name = "FILE")]
    pub vault: Option<PathBuf>,

    /// safeclaw's home to audit [default: $SAFECLAW_HOME, else ~/.safeclaw]
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// The guide's workspace, searched for plaintext leftovers [default: ~/openclaw-secure]
    #[arg(long, value_name = "DIR")]
    pub guide_dir: Option<PathBuf>,

    /// Do not run OpenClaw's own `security audit` inside a safeclaw container
    #[arg(long)]
    pub no_openclaw: bool,
}

#[derive(Debug, Args)]
pub struct ContainerArgs {
    /// Container name
    #[arg(long, default_value = default::NAME)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub container: ContainerArgs,

    /// The vault [default: ~/.safeclaw/vault/openclaw.vault]
    #[arg(long, value_name = "FILE")]
    pub vault: Option<PathBuf>,

    #[command(flatten)]
    pub image: ImageChoice,

    /// The gateway command inside the image
    #[arg(long, num_args = 1.., default_values = default::GATEWAY)]
    pub gateway: Vec<String>,

    /// Memory limit in MiB
    #[arg(long, default_value_t = default::MEMORY_MIB)]
    pub memory_mib: i64,

    /// CPU limit (cores, may be fractional)
    #[arg(long, default_value_t = default::CPUS)]
    pub cpus: f64,

    /// Older vault generations to keep (each seal adds one)
    #[arg(long, default_value_t = default::KEEP_GENERATIONS)]
    pub keep_generations: usize,

    /// Seconds the gateway may drain after a stop before it is killed and
    /// its state sealed anyway (OpenClaw's own drain can take minutes)
    #[arg(long, default_value_t = default::DRAIN.as_secs(), value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=60))]
    pub drain: u64,

    /// Seconds between checkpoints of the running state (0: only on stop and after exec/pair)
    #[arg(long, default_value_t = default::CHECKPOINT_INTERVAL.as_secs(), value_name = "SECS")]
    pub checkpoint_interval: u64,

    /// Publish the gateway's port 18789 on 127.0.0.1:PORT (never other addresses)
    #[arg(long, value_name = "PORT")]
    pub publish: Option<u16>,

    /// Process limit
    #[arg(long, default_value_t = default::PIDS)]
    pub pids: i64,

    /// Share a host folder: HOST:CONTAINER[:rw] (read-only unless :rw)
    #[arg(long = "share", value_name = "HOST:CONTAINER[:rw]")]
    pub shares: Vec<String>,

    /// Pin this skill (a directory or .tar/.tar.gz with a SKILL.md) before
    /// starting, as `skills add` does: added, or replacing the pinned skill
    /// of its name; skills not named stay pinned (docs/skills.md)
    #[arg(long = "skill", value_name = "PATH")]
    pub skills: Vec<PathBuf>,

    #[command(flatten)]
    pub egress: EgressArgs,

    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The new image is `--image IMAGE` (or `--openclaw VERSION`); the
    /// other settings are those of `start`, for the new gateway (and the
    /// old one, if it comes back)
    #[command(flatten)]
    pub start: StartArgs,

    /// Build the image twin of this OpenClaw version (or `latest`) from the
    /// npm registry, pinned (`image build --openclaw`), and upgrade to it
    #[arg(long, value_name = "VERSION", conflicts_with = "image")]
    pub openclaw: Option<String>,

    /// Seconds the new gateway has to become healthy before the upgrade is
    /// rolled back
    #[arg(long, value_name = "SECS", default_value_t = default::HEALTH_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(5..=3600))]
    pub health_timeout: u64,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The settings of `start`, for the gateway in its old image (started
    /// again if it runs now); `--image` is not taken: the upgrade record
    /// names the image
    #[command(flatten)]
    pub start: StartArgs,

    /// Do not ask for confirmation (needed without a terminal)
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub container: ContainerArgs,

    /// The vault, for its generation [default: ~/.safeclaw/vault/openclaw.vault]
    #[arg(long, value_name = "FILE")]
    pub vault: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub container: ContainerArgs,

    /// Keep following new output
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub container: ContainerArgs,

    /// Arguments for `openclaw` inside the container
    #[arg(last = true, required = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum PairCommand {
    /// Pending pairing requests
    List {
        #[command(flatten)]
        container: ContainerArgs,
        /// Only this channel
        #[arg(long)]
        channel: Option<String>,
    },
    /// Approve a pending request: `safeclaw pair approve telegram CODE`
    Approve {
        #[command(flatten)]
        container: ContainerArgs,
        /// The channel (telegram, discord, signal, slack, whatsapp)
        channel: String,
        /// The 8-character code the bot sent
        code: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Seal a directory into a new vault
    Create(CreateArgs),
    /// Show a vault's header (no password needed; not authenticated)
    Info(InfoArgs),
    /// Authenticate every chunk and check the archive, writing nothing
    Verify(VerifyArgs),
    /// Decrypt a vault into a new private directory
    Export(ExportArgs),
    /// Change the password: a new data key, the vault and its kept
    /// generations re-sealed under it, so the old password opens none of them
    Passwd(PasswdArgs),
    /// Revoke the data key (after a leak): a new one, the vault and its kept
    /// generations re-sealed under it, same password
    Rekey(RekeyArgs),
    /// Turn the guide's secrets.enc (openssl enc over a tar.gz) into a vault
    Migrate(MigrateArgs),
    /// List the vault's generations: the newest and the older ones kept
    Generations(InfoArgs),
}

/// Where the vault password comes from. Default: a no-echo prompt.
#[derive(Debug, Clone, Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of PATH
    #[arg(long, value_name = "PATH", conflicts_with = "password_stdin")]
    pub password_file: Option<PathBuf>,

    /// Read the password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
}

/// Argon2id cost for a new password slot.
#[derive(Debug, Args)]
pub struct KdfArgs {
    /// Argon2id memory, e.g. 256MiB, 1GiB, 65536KiB (plain numbers are MiB)
    #[arg(long, value_name = "SIZE", value_parser = parse_kib)]
    pub kdf_memory: Option<u32>,

    /// Argon2id passes over memory
    #[arg(long, value_name = "N")]
    pub kdf_iterations: Option<u32>,

    /// Argon2id lanes
    #[arg(long, value_name = "N")]
    pub kdf_parallelism: Option<u32>,
}

fn parse_kib(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 256MiB"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "kib" | "k" => 1,
        "" | "mib" | "m" => 1024,
        "gib" | "g" => 1024 * 1024,
        _ => return Err(format!("unknown unit {unit:?}; use KiB, MiB or GiB")),
    };
    n.checked_mul(mult)
        .and_then(|k| u32::try_from(k).ok())
        .ok_or_else(|| format!("{s} is too large"))
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The plaintext directory to seal
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,

    /// The vault file to create (must not exist) [default: ~/.safeclaw/vault/openclaw.vault]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// After sealing and verifying, overwrite and delete the source (see --help)
    ///
    /// Each file is overwritten with zeros, synced, and unlinked. On SSDs,
    /// copy-on-write filesystems (btrfs, ZFS, APFS) and journaled or
    /// snapshotted storage the old blocks can survive anyway; only full-disk
    /// encryption protects against that.
    #[arg(long)]
    pub wipe_source: bool,

    /// Seal DIR/.safeclaw/ as safeclaw's records (the egress policy, as
    /// `vault export` writes them); without it that directory is left out:
    /// whoever could write DIR could have written it
    #[arg(long)]
    pub with_records: bool,

    #[command(flatten)]
    pub kdf: KdfArgs,

    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The vault file [default: ~/.safeclaw/vault/openclaw.vault]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The vault file [default: ~/.safeclaw/vault/openclaw.vault]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The vault file [default: ~/.safeclaw/vault/openclaw.vault]
    pub file: Option<PathBuf>,

    /// The directory to create (0700); must be absent or empty
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,

    /// Replace a non-empty target directory
    #[arg(long)]
    pub force: bool,

    /// Export this older generation instead of the newest (see `vault generations`)
    #[arg(long, value_name = "N")]
    pub generation: Option<u64>,

    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// The vault file [default: ~/.safeclaw/vault/openclaw.vault]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub password: PasswordArgs,

    /// Read the new password from the first line of PATH (default: prompt twice)
    #[arg(long, value_name = "PATH")]
    pub new_password_file: Option<PathBuf>,

    /// Cost of the new slot (default: today's defaults, so passwd also upgrades old vaults)
    #[command(flatten)]
    pub kdf: KdfArgs,

    /// Delete the kept older generations instead of re-sealing them under the new key
    #[arg(long)]
    pub drop_generations: bool,
}

#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// The vault file [default: ~/.safeclaw/vault/openclaw.vault]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub password: PasswordArgs,

    /// Cost of the new slot (default: today's defaults)
    #[command(flatten)]
    pub kdf: KdfArgs,

    /// Delete the kept older generations instead of re-sealing them under the new key
    #[arg(long)]
    pub drop_generations: bool,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The legacy file, e.g. ~/openclaw-secure/data/secrets.enc
    pub legacy: PathBuf,

    /// The vault to create [default: ~/.safeclaw/vault/openclaw.vault]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// The legacy password (prompt, --password-file, --password-stdin)
    #[command(flatten)]
    pub password: PasswordArgs,

    /// Read the new vault's password from the first line of PATH (default: prompt twice)
    #[arg(long, value_name = "PATH", conflicts_with = "keep_password")]
    pub new_password_file: Option<PathBuf>,

    /// Use the legacy password for the new vault too
    #[arg(long)]
    pub keep_password: bool,

    /// The -iter the file was made with (default: try the guide's 100000, then OpenSSL's 10000)
    #[arg(long, value_name = "N", conflicts_with = "no_pbkdf2")]
    pub iter: Option<u32>,

    /// The -md the file was made with: sha256, sha1 or md5 (default: sha256, then md5 without -pbkdf2)
    #[arg(long, value_name = "DIGEST", value_parser = parse_md)]
    pub md: Option<crate::legacy::Md>,

    /// The file was made without -pbkdf2 (OpenSSL's old EVP_BytesToKey)
    #[arg(long)]
    pub no_pbkdf2: bool,

    /// Delete the legacy file after success instead of renaming it to *.migrated
    #[arg(long)]
    pub remove_legacy: bool,

    /// Cost of the new vault's password slot
    #[command(flatten)]
    pub kdf: KdfArgs,
}

fn parse_md(s: &str) -> Result<crate::legacy::Md, String> {
    crate::legacy::Md::parse(s).ok_or_else(|| format!("{s:?} is not one of sha256, sha1, md5"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_kib("64"), Ok(65536));
        assert_eq!(parse_kib("256MiB"), Ok(262144));
        assert_eq!(parse_kib("1GiB"), Ok(1048576));
        assert_eq!(parse_kib("8KiB"), Ok(8));
        assert!(parse_kib("5 parsecs").is_err());
        assert!(parse_kib("99999999GiB").is_err());
    }

    #[test]
    fn the_guards_arguments_reach_it_as_they_were_written() {
        let argv = [
            "safeclaw", "guard", "--vault", "/vault/v", "--drain", "30s", "--", "openclaw",
            "--json", "-q", "--", "x",
        ];
        let Command::Guard { args } = Cli::try_parse_from(argv).unwrap().command else {
            panic!("not the guard");
        };
        assert_eq!(args, argv[2..]);
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the image that runs the real OpenClaw, here, without Nix or a
    /// registry: node and OpenClaw from npm, pinned by nix/openclaw/package-lock.json
    /// (or, with --openclaw, by a lock resolved for that version)
    Build(ImageBuildArgs),
    /// Resolve and store the pinned lock of another OpenClaw version (every
    /// package by URL and sha512; nothing is installed, no script runs)
    Lock(ImageLockArgs),
    /// Load an image archive into the engine and check the engine holds
    /// exactly it (default: the image this safeclaw was built with by Nix)
    Load(ImageLoadArgs),
    /// The pinned image and whether the engine holds exactly it
    Show,
    /// safeclaw's images in the engine: versions, which runs, which the pin
    /// names, which is the default twin
    List,
    /// Remove safeclaw's images that no container uses (running or
    /// stopped) and that are neither pinned nor the default twin
    Prune(ImagePruneArgs),
}

#[derive(Debug, Args)]
pub struct ImagePruneArgs {
    /// Remove without asking (needed when stdin is not a terminal)
    #[arg(long, short)]
    pub yes: bool,

    /// Only show what would be removed
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ImageLoadArgs {
    /// A docker-archive (.tar or .tar.gz), e.g. from `nix build .#image`
    /// [default: the pinned store path, $SAFECLAW_IMAGE]
    #[arg(long, value_name = "PATH")]
    pub from: Option<PathBuf>,
}

/// Which image a container runs.
#[derive(Debug, Clone, Args)]
pub struct ImageChoice {
    /// The image (ID or tag) [default: the pinned Nix image when safeclaw
    /// comes from Nix, else the twin `safeclaw image build` makes]
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,

    /// Run --image even though it is not the pinned image
    #[arg(long)]
    pub allow_unpinned_image: bool,
}

#[derive(Debug, Args)]
pub struct ImageBuildArgs {
    /// The tag to give the image [default: safeclaw/openclaw:<OpenClaw version>,
    /// safeclaw/openclaw:2026.9.6 without --openclaw]
    #[arg(long)]
    pub tag: Option<String>,

    /// Build another OpenClaw version (exact, or `latest`) from a lock
    /// resolved from the npm registry and stored in the cache
    /// [default: the lock compiled into safeclaw]
    #[arg(long, value_name = "VERSION")]
    pub openclaw: Option<String>,

    /// Where the npm install (and the locks of other versions) are kept
    /// between builds [default: ~/.cache/safeclaw]
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,

    /// A (static) busybox for the image's shell tools [default: busybox on PATH]
    #[arg(long, value_name = "PATH")]
    pub busybox: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImageLockArgs {
    /// The OpenClaw version to lock: exact (2026.9.5) or `latest`
    #[arg(long, value_name = "VERSION")]
    pub openclaw: String,

    /// Where locks are stored, under locks/ [default: ~/.cache/safeclaw]
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
}

/// What onboarding needs besides the vault, the image and the password.
#[derive(Debug, Args)]
pub struct OnboardExtras {
    /// Read the LLM provider's API key from the first line of PATH; it
    /// reaches OpenClaw over stdin, never a command line
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,

    /// OpenClaw's provider id for --api-key-file
    #[arg(long, default_value = default::PROVIDER, value_name = "ID")]
    pub provider: String,

    /// Read the Telegram bot token from the first line of PATH; it is kept
    /// as a file inside the vault (channels.telegram.tokenFile)
    #[arg(long, value_name = "PATH")]
    pub telegram_token_file: Option<PathBuf>,

    #[command(flatten)]
    pub kdf: KdfArgs,

    /// OpenClaw's own `onboard` flags, after `--` (none: the interactive wizard)
    #[arg(last = true, value_name = "OPENCLAW_ONBOARD_ARGS")]
    pub openclaw_args: Vec<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Non-interactive, with no secret on any command line:\n  \
    safeclaw onboard --api-key-file key.txt --telegram-token-file bot.txt -- \\\n    \
    --non-interactive --accept-risk --mode local --auth-choice skip --skip-channels \\\n    \
    --skip-health --skip-daemon --skip-search --skip-skills --skip-ui --skip-hooks"
)]
pub struct OnboardArgs {
    /// The vault to create (must not exist) [default: ~/.safeclaw/vault/openclaw.vault]
    #[arg(long, value_name = "FILE")]
    pub vault: Option<PathBuf>,

    #[command(flatten)]
    pub image: ImageChoice,

    #[command(flatten)]
    pub password: PasswordArgs,

    #[command(flatten)]
    pub egress: EgressArgs,

    #[command(flatten)]
    pub extras: OnboardExtras,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub start: StartArgs,

    #[command(flatten)]
    pub extras: OnboardExtras,
}

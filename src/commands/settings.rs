//! The command line resolved into settings, once, before any command
//! runs: every path made absolute against the directory safeclaw was
//! started in (a relative `--vault v.sclaw` means the one here, whatever
//! the engine or a child process later takes `.` to be), every default
//! written here (clap's `[default: …]` in `--help` reads these constants),
//! and every value a command line can get wrong checked. Commands take
//! these, never clap's structs.
//!
//! Where a default depends on safeclaw's home at the time of use (the
//! vault's place), the setting stays `None` and `paths` decides then.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{
    AuditArgs, CreateArgs, ExportArgs, ImageBuildArgs, ImageChoice, ImageLoadArgs, ImageLockArgs,
    InfoArgs, KdfArgs, MigrateArgs, OnboardArgs, OnboardExtras, PairCommand, PasswdArgs,
    PasswordArgs, RekeyArgs, StartArgs, StatusArgs, UpArgs, VerifyArgs,
};
use crate::egress::network::EgressSettings;
use crate::error::{Error, Result};
use crate::legacy::Md;
use crate::password::Source;
use crate::runtime::bot::{BotSettings, ShareRequest};
use crate::runtime::spec::Limits;
use crate::vault::format::KdfParams;

/// The container's name.
pub const NAME: &str = "openclaw";
/// The gateway command inside the image.
pub const GATEWAY: [&str; 3] = ["openclaw", "gateway", "run"];
/// Memory limit, MiB.
pub const MEMORY_MIB: i64 = 2048;
/// CPU limit, cores.
pub const CPUS: f64 = 2.0;
/// Process limit.
pub const PIDS: i64 = 512;
/// Older vault generations each seal keeps.
pub const KEEP_GENERATIONS: usize = 5;
/// How long the gateway may drain after a stop (`--drain SECS`, 1 to 60).
pub const DRAIN: Duration = Duration::from_secs(30);
/// Time between checkpoints of the running state (`--checkpoint-interval
/// SECS`; zero: only on stop and after exec and pair).
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(300);
/// How long `upgrade` gives the new gateway to become healthy: the real
/// OpenClaw answers /healthz 6 to 9 s after its start here, and the
/// engine's first check is 5 s in; minutes on a slow host.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(180);
/// OpenClaw's provider for `--api-key-file`.
pub const PROVIDER: &str = "anthropic";
/// The guide's workspace, under HOME (`audit` looks for its leftovers).
pub const GUIDE_DIR: &str = "openclaw-secure";
/// `openssl enc -iter` of the guide (`vault migrate` tries it first).
pub const GUIDE_ITER: u32 = 100_000;

/// `path` made absolute against the current directory (links and `..`
/// are left for the file system to resolve, as it would have).
pub fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io("resolving", path, e))
}

fn absolute_opt(path: &Option<PathBuf>) -> Result<Option<PathBuf>> {
    path.as_deref().map(absolute).transpose()
}

/// Where the vault password comes from.
fn password(args: &PasswordArgs) -> Result<Source> {
    Ok(match (&args.password_file, args.password_stdin) {
        (Some(path), _) => Source::File(absolute(path)?),
        (None, true) => Source::Stdin,
        (None, false) => Source::Prompt,
    })
}

/// A new password: from a file, else asked on a prompt.
fn new_password(file: &Option<PathBuf>) -> Result<Source> {
    Ok(match absolute_opt(file)? {
        Some(path) => Source::File(path),
        None => Source::Prompt,
    })
}

/// The Argon2id cost of a new password slot (checked when it is used,
/// with a warning below RFC 9106).
fn kdf(args: &KdfArgs) -> KdfParams {
    let d = KdfParams::DEFAULT;
    KdfParams {
        m_kib: args.kdf_memory.unwrap_or(d.m_kib),
        t: args.kdf_iterations.unwrap_or(d.t),
        p: args.kdf_parallelism.unwrap_or(d.p),
    }
}

pub struct VaultCreate {
    pub from: PathBuf,
    /// None: the home's default vault.
    pub out: Option<PathBuf>,
    pub wipe_source: bool,
    /// `--with-records`: DIR/.safeclaw/ is sealed as the records.
    pub with_records: bool,
    pub kdf: KdfParams,
    pub password: Source,
}

impl VaultCreate {
    pub fn resolve(args: CreateArgs) -> Result<Self> {
        Ok(VaultCreate {
            from: absolute(&args.from)?,
            out: absolute_opt(&args.out)?,
            wipe_source: args.wipe_source,
            with_records: args.with_records,
            kdf: kdf(&args.kdf),
            password: password(&args.password)?,
        })
    }
}

/// The vault `vault info` and `vault generations` read (no password).
pub fn vault_file(args: InfoArgs) -> Result<PathBuf> {
    named_or_home_vault(&args.file)
}

/// The vault file named on the command line, or the home's (as the README
/// writes the vault commands).
fn named_or_home_vault(file: &Option<PathBuf>) -> Result<PathBuf> {
    match file {
        Some(file) => absolute(file),
        None => absolute(&crate::paths::vault_in(&crate::paths::home()?)),
    }
}

/// A vault named on the command line, and where its password comes from.
pub struct Unlock {
    pub file: PathBuf,
    pub password: Source,
}

impl Unlock {
    fn of(file: &Option<PathBuf>, args: &PasswordArgs) -> Result<Self> {
        let file = named_or_home_vault(file)?;
        password(args).map(|password| Unlock { file, password })
    }

    /// `vault verify`.
    pub fn resolve(args: VerifyArgs) -> Result<Self> {
        Self::of(&args.file, &args.password)
    }
}

/// `vault export`: a vault and a new directory.
pub struct VaultExport {
    pub vault: Unlock,
    pub to: PathBuf,
    /// Replace a non-empty directory.
    pub force: bool,
    /// None: the newest.
    pub generation: Option<u64>,
}

impl VaultExport {
    pub fn resolve(args: ExportArgs) -> Result<Self> {
        Ok(VaultExport {
            vault: Unlock::of(&args.file, &args.password)?,
            to: absolute(&args.to)?,
            force: args.force,
            generation: args.generation,
        })
    }
}

/// `vault passwd` and `vault rekey`: one operation, a new data key, with
/// or without a new password.
pub struct VaultRekey {
    pub vault: Unlock,
    /// None: keep the current password (`rekey`).
    pub new_password: Option<Source>,
    pub kdf: KdfParams,
    pub drop_generations: bool,
}

impl VaultRekey {
    pub fn passwd(args: PasswdArgs) -> Result<Self> {
        let new = new_password(&args.new_password_file)?;
        Ok(VaultRekey {
            new_password: Some(new),
            ..Self::rekey(RekeyArgs {
                file: args.file,
                password: args.password,
                kdf: args.kdf,
                drop_generations: args.drop_generations,
            })?
        })
    }

    pub fn rekey(args: RekeyArgs) -> Result<Self> {
        Ok(VaultRekey {
            vault: Unlock::of(&args.file, &args.password)?,
            new_password: None,
            kdf: kdf(&args.kdf),
            drop_generations: args.drop_generations,
        })
    }
}

pub struct VaultMigrate {
    pub legacy: PathBuf,
    /// None: the home's default vault.
    pub out: Option<PathBuf>,
    /// The legacy file's password.
    pub password: Source,
    /// None: the legacy password, kept (`--keep-password`).
    pub new_password: Option<Source>,
    /// The openssl settings to try, in order.
    pub tries: Vec<crate::legacy::Settings>,
    pub remove_legacy: bool,
    pub kdf: KdfParams,
}

impl VaultMigrate {
    pub fn resolve(args: MigrateArgs) -> Result<Self> {
        use crate::legacy::{Kdf, Settings};
        let explicit = args.iter.is_some() || args.md.is_some() || args.no_pbkdf2;
        let tries = if explicit {
            let kdf = if args.no_pbkdf2 {
                Kdf::BytesToKey
            } else {
                Kdf::Pbkdf2 {
                    iter: args.iter.unwrap_or(GUIDE_ITER),
                }
            };
            vec![Settings {
                kdf,
                md: args.md.unwrap_or(Md::Sha256),
            }]
        } else {
            Settings::COMMON.to_vec()
        };
        Ok(VaultMigrate {
            legacy: absolute(&args.legacy)?,
            out: absolute_opt(&args.out)?,
            password: password(&args.password)?,
            new_password: if args.keep_password {
                None
            } else {
                Some(new_password(&args.new_password_file)?)
            },
            tries,
            remove_legacy: args.remove_legacy,
            kdf: kdf(&args.kdf),
        })
    }
}

/// `start` and `run`: the vault, the image, the password and the bot.
pub struct Start {
    /// None: the home's default vault.
    pub vault: Option<PathBuf>,
    pub image: ImageChoice,
    pub password: Source,
    pub bot: BotSettings,
}

impl Start {
    pub fn resolve(args: StartArgs) -> Result<Self> {
        if !(0.01..=1024.0).contains(&args.cpus) {
            return Err(
                Error::usage(format!("--cpus {} is out of range", args.cpus))
                    .with_hint("use a number of cores such as 1 or 0.5"),
            );
        }
        let shares = args
            .shares
            .iter()
            .map(|s| ShareRequest::parse(s, absolute))
            .collect::<Result<_>>()?;
        Ok(Start {
            vault: absolute_opt(&args.vault)?,
            image: args.image,
            password: password(&args.password)?,
            bot: BotSettings {
                name: args.container.name,
                limits: Limits {
                    memory_bytes: args.memory_mib << 20,
                    nano_cpus: (args.cpus * 1e9) as i64,
                    pids: args.pids,
                },
                publish: args.publish,
                keep_generations: args.keep_generations,
                checkpoint_interval: Duration::from_secs(args.checkpoint_interval),
                drain: Duration::from_secs(args.drain),
                shares,
                gateway: args.gateway,
                egress: egress(args.egress)?,
                skills: args
                    .skills
                    .iter()
                    .map(|p| absolute(p))
                    .collect::<Result<_>>()?,
            },
        })
    }
}

/// `upgrade`: the start of the new image, and how long it has.
pub struct Upgrade {
    pub start: Start,
    /// Build the twin of this OpenClaw version first (checked).
    pub openclaw: Option<String>,
    pub health_timeout: Duration,
}

impl Upgrade {
    pub fn resolve(args: crate::cli::UpgradeArgs) -> Result<Self> {
        if args.start.image.image.is_none() && args.openclaw.is_none() {
            return Err(Error::usage(
                "upgrade needs the new image: --image IMAGE or --openclaw VERSION",
            )
            .with_hint(
                "`--openclaw latest` builds the newest OpenClaw from the npm registry; `--image` takes one you built or loaded",
            ));
        }
        if let Some(v) = &args.openclaw {
            if v != "latest" {
                crate::image::lock::check_version(v)?;
            }
        }
        if !args.start.skills.is_empty() {
            return Err(Error::usage("upgrade takes no --skill")
                .with_hint("pin skills with `safeclaw skills add` before or after the upgrade"));
        }
        Ok(Upgrade {
            start: Start::resolve(args.start)?,
            openclaw: args.openclaw,
            health_timeout: Duration::from_secs(args.health_timeout),
        })
    }
}

/// `rollback`: the start of the old image, and whether to ask.
pub struct Rollback {
    pub start: Start,
    pub yes: bool,
}

impl Rollback {
    pub fn resolve(args: crate::cli::RollbackArgs) -> Result<Self> {
        if args.start.image.image.is_some() || !args.start.skills.is_empty() {
            return Err(Error::usage("rollback takes no --image or --skill").with_hint(
                "it returns to the image the upgrade record names; `safeclaw upgrade --image` switches to another",
            ));
        }
        Ok(Rollback {
            start: Start::resolve(args.start)?,
            yes: args.yes,
        })
    }
}

pub struct Onboard {
    /// The vault to create; None: the home's default vault.
    pub vault: Option<PathBuf>,
    pub image: ImageChoice,
    pub password: Source,
    pub api_key_file: Option<PathBuf>,
    pub provider: String,
    pub telegram_token_file: Option<PathBuf>,
    pub kdf: KdfParams,
    /// The onboarding container's limits: the bot's defaults.
    pub limits: Limits,
    /// OpenClaw's own `onboard` flags (none: the interactive wizard).
    pub openclaw_args: Vec<String>,
    pub egress: EgressSettings,
}

impl Onboard {
    pub fn resolve(args: OnboardArgs) -> Result<Self> {
        Self::of(
            absolute_opt(&args.vault)?,
            args.image,
            password(&args.password)?,
            egress(args.egress)?,
            args.extras,
        )
    }

    fn of(
        vault: Option<PathBuf>,
        image: ImageChoice,
        password: Source,
        egress: EgressSettings,
        extras: OnboardExtras,
    ) -> Result<Self> {
        Ok(Onboard {
            vault,
            image,
            password,
            api_key_file: absolute_opt(&extras.api_key_file)?,
            provider: extras.provider,
            telegram_token_file: absolute_opt(&extras.telegram_token_file)?,
            kdf: kdf(&extras.kdf),
            limits: onboarding_limits(),
            openclaw_args: extras.openclaw_args,
            egress,
        })
    }
}

/// `up`: a start, and the onboarding it begins with when there is no
/// vault yet (the same vault, image and password).
pub struct Up {
    pub start: Start,
    pub onboard: Onboard,
}

impl Up {
    pub fn resolve(args: UpArgs) -> Result<Self> {
        let start = Start::resolve(args.start)?;
        let onboard = Onboard::of(
            start.vault.clone(),
            start.image.clone(),
            start.password.clone(),
            start.bot.egress.clone(),
            args.extras,
        )?;
        Ok(Up { start, onboard })
    }
}

pub struct Status {
    pub name: String,
    /// The vault whose generation is shown; None: the home's default.
    pub vault: Option<PathBuf>,
}

impl Status {
    pub fn resolve(args: StatusArgs) -> Result<Self> {
        Ok(Status {
            name: args.container.name,
            vault: absolute_opt(&args.vault)?,
        })
    }
}

/// `pair list` and `pair approve`, checked later (before the container
/// is touched).
pub struct Pair {
    pub name: String,
    pub channel: Option<String>,
    /// Some: approve this code.
    pub approve: Option<String>,
}

impl Pair {
    pub fn resolve(command: PairCommand) -> Self {
        match command {
            PairCommand::List { container, channel } => Pair {
                name: container.name,
                channel,
                approve: None,
            },
            PairCommand::Approve {
                container,
                channel,
                code,
            } => Pair {
                name: container.name,
                channel: Some(channel),
                approve: Some(code),
            },
        }
    }
}

pub struct ImageBuild {
    /// None: the lock's default tag.
    pub tag: Option<String>,
    /// None: the builtin lock; else `latest` or an exact version.
    pub openclaw: Option<String>,
    /// None: `$XDG_CACHE_HOME/safeclaw`, else `~/.cache/safeclaw`.
    pub cache: Option<PathBuf>,
    /// None: busybox on PATH.
    pub busybox: Option<PathBuf>,
}

impl ImageBuild {
    pub fn resolve(args: ImageBuildArgs) -> Result<Self> {
        Ok(ImageBuild {
            tag: args.tag,
            openclaw: args.openclaw.map(openclaw_version).transpose()?,
            cache: absolute_opt(&args.cache)?,
            busybox: absolute_opt(&args.busybox)?,
        })
    }
}

pub struct ImageLock {
    /// `latest` or an exact version.
    pub openclaw: String,
    /// None: `$XDG_CACHE_HOME/safeclaw`, else `~/.cache/safeclaw`.
    pub cache: Option<PathBuf>,
}

impl ImageLock {
    pub fn resolve(args: ImageLockArgs) -> Result<Self> {
        Ok(ImageLock {
            openclaw: openclaw_version(args.openclaw)?,
            cache: absolute_opt(&args.cache)?,
        })
    }
}

/// `--openclaw`: `latest`, or a version of the one shape that may reach
/// npm's arguments and a path (`lock::check_version`).
fn openclaw_version(given: String) -> Result<String> {
    if given != "latest" {
        crate::image::lock::check_version(&given)?;
    }
    Ok(given)
}

/// The archive `image load` loads; None: the pinned one.
pub fn image_archive(args: ImageLoadArgs) -> Result<Option<PathBuf>> {
    absolute_opt(&args.from)
}

pub struct Audit {
    /// None: `NAME`, if such a container exists.
    pub container: Option<String>,
    /// None: the home's vault.
    pub vault: Option<PathBuf>,
    /// None: safeclaw's home.
    pub home: Option<PathBuf>,
    /// The guide's workspace (default `~/openclaw-secure`); None when
    /// HOME is not set either.
    pub guide_dir: Option<PathBuf>,
    /// Run OpenClaw's own `security audit` in a safeclaw container.
    pub openclaw: bool,
}

impl Audit {
    pub fn resolve(args: AuditArgs) -> Result<Self> {
        Ok(Audit {
            openclaw: !args.no_openclaw,
            container: args.container,
            vault: absolute_opt(&args.vault)?,
            home: absolute_opt(&args.home)?,
            guide_dir: match args.guide_dir {
                Some(dir) => Some(absolute(&dir)?),
                None => std::env::var_os(crate::env_vars::HOME)
                    .filter(|h| !h.is_empty())
                    .map(|h| absolute(&PathBuf::from(h).join(GUIDE_DIR)))
                    .transpose()?,
            },
        })
    }
}

fn egress(args: crate::cli::EgressArgs) -> Result<EgressSettings> {
    Ok(EgressSettings {
        mode: args.mode,
        network: args.egress_network,
        hosts: args
            .egress_hosts
            .iter()
            .map(|h| egress_host(h))
            .collect::<Result<_>>()?,
        ca_pem: args.egress_ca.as_deref().map(egress_ca).transpose()?,
    })
}

/// The most `--egress-ca` may hold (the broker's hand-off takes as much).
const MAX_EGRESS_CA: u64 = 64 << 10;

/// Reads `--egress-ca`: PEM certificates, bounded; checked by the proxy.
fn egress_ca(path: &Path) -> Result<Vec<u8>> {
    let bytes = crate::io_util::read_bounded(path, MAX_EGRESS_CA)?;
    if !bytes
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(Error::usage(format!(
            "--egress-ca {}: no PEM certificate in it",
            path.display()
        ))
        .with_hint("give a file of -----BEGIN CERTIFICATE----- blocks"));
    }
    Ok(bytes)
}

/// `--egress-host NAME:ADDR`, checked, in the engine's `ExtraHosts` form.
fn egress_host(text: &str) -> Result<String> {
    let refused = || {
        Error::usage(format!("--egress-host {text:?} is not NAME:ADDR"))
            .with_hint("a host name, a colon, an IPv4 or IPv6 address: api.example.com:192.0.2.7")
    };
    let (name, addr) = text.split_once(':').ok_or_else(refused)?;
    let name = crate::egress::policy::host_name(name).map_err(|_| refused())?;
    let addr: std::net::IpAddr = addr.parse().map_err(|_| refused())?;
    Ok(format!("{name}:{addr}"))
}

/// `egress show`, `allow` and `deny`: the vault whose policy it is.
pub struct EgressPolicy {
    /// None: the home's default vault.
    pub vault: Option<PathBuf>,
    pub password: Source,
}

impl EgressPolicy {
    pub fn resolve(args: &crate::cli::EgressPolicyArgs) -> Result<Self> {
        Self::of(&args.vault, &args.password)
    }

    pub fn of(vault: &Option<PathBuf>, password_args: &PasswordArgs) -> Result<Self> {
        Ok(EgressPolicy {
            vault: absolute_opt(vault)?,
            password: password(password_args)?,
        })
    }
}

/// `skills add` and `remove`: the vault, and what changes.
pub struct SkillsChange {
    pub policy: EgressPolicy,
    /// `add`: the skill's directory or archive (absolute) and the name
    /// asked for; `remove`: None and the name.
    pub source: Option<PathBuf>,
    pub name: Option<String>,
    pub keep_generations: usize,
}

impl SkillsChange {
    pub fn add(args: crate::cli::SkillsAddArgs) -> Result<Self> {
        Ok(SkillsChange {
            policy: EgressPolicy::resolve(&args.policy)?,
            source: Some(absolute(&args.source)?),
            name: args.name,
            keep_generations: args.keep_generations,
        })
    }

    pub fn remove(args: crate::cli::SkillsRemoveArgs) -> Result<Self> {
        Ok(SkillsChange {
            policy: EgressPolicy::resolve(&args.policy)?,
            source: None,
            name: Some(args.name),
            keep_generations: args.keep_generations,
        })
    }
}

/// `egress allow` and `deny`: the rules, parsed once.
pub struct EgressChange {
    pub policy: EgressPolicy,
    pub rules: Vec<crate::egress::policy::Rule>,
    pub keep_generations: usize,
}

impl EgressChange {
    pub fn resolve(args: crate::cli::EgressChangeArgs) -> Result<Self> {
        let rules = args
            .rules
            .iter()
            .map(|r| {
                crate::egress::policy::Rule::parse(r).map_err(|why| {
                    Error::usage(format!("{r:?} is not an egress rule: {why}")).with_hint(
                        "HOST[:PORT], *.SUFFIX[:PORT] or ADDR[/PREFIX][:PORT]; port 443 when left out",
                    )
                })
            })
            .collect::<Result<_>>()?;
        Ok(EgressChange {
            policy: EgressPolicy::resolve(&args.policy)?,
            rules,
            keep_generations: args.keep_generations,
        })
    }
}

/// The limits of onboarding's container and of `secrets set`'s run: the
/// gateway's defaults.
fn onboarding_limits() -> Limits {
    Limits {
        memory_bytes: MEMORY_MIB << 20,
        nano_cpus: (CPUS * 1e9) as i64,
        pids: PIDS,
    }
}

/// `secrets set` and `remove`: the secret, where its value comes from,
/// and the vault.
pub struct SecretsChange {
    pub vault: EgressPolicy,
    pub name: String,
    /// `set`: the value's source (a file or stdin); None for `remove`.
    pub value: Option<Source>,
    pub keep_generations: usize,
    /// `set`: the image of the run that gives a new secret's placeholder
    /// to the gateway's state, and that run's limits (onboarding's).
    pub image: ImageChoice,
    pub limits: Limits,
    /// `set --vault-only`: the gateway's state is left as it is.
    pub vault_only: bool,
}

impl SecretsChange {
    pub fn set(args: crate::cli::SecretsSetArgs) -> Result<Self> {
        let vault = EgressPolicy::resolve(&args.policy)?;
        let value = match (&args.from_file, args.from_stdin) {
            (Some(path), _) => Source::File(absolute(path)?),
            (None, _) => Source::Stdin,
        };
        if value == Source::Stdin && vault.password == Source::Stdin {
            return Err(Error::usage(
                "the secret and the vault password cannot both come from stdin",
            )
            .with_hint("use --password-file or --from-file for one of them"));
        }
        crate::secrets::providers::find(&args.name).map_err(Error::usage)?;
        Ok(SecretsChange {
            vault,
            name: args.name,
            value: Some(value),
            keep_generations: args.keep_generations,
            image: args.image,
            limits: onboarding_limits(),
            vault_only: args.vault_only,
        })
    }

    /// `adopt`: no name and no value of its own (it finds them).
    pub fn adopt(args: crate::cli::SecretsAdoptArgs) -> Result<Self> {
        Ok(SecretsChange {
            vault: EgressPolicy::resolve(&args.policy)?,
            name: String::new(),
            value: None,
            keep_generations: args.keep_generations,
            image: args.image,
            limits: onboarding_limits(),
            vault_only: false,
        })
    }

    pub fn remove(args: crate::cli::SecretsRemoveArgs) -> Result<Self> {
        Ok(SecretsChange {
            vault: EgressPolicy::resolve(&args.policy)?,
            name: args.name,
            value: None,
            keep_generations: args.keep_generations,
            image: ImageChoice {
                image: None,
                allow_unpinned_image: false,
            },
            limits: onboarding_limits(),
            vault_only: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn start(args: &[&str]) -> Result<Start> {
        let cli = crate::cli::Cli::try_parse_from(["safeclaw", "start"].iter().chain(args))
            .map_err(|e| Error::usage(e.to_string()))?;
        match cli.command {
            crate::cli::Command::Start(args) => Start::resolve(args),
            _ => unreachable!(),
        }
    }

    #[test]
    fn paths_are_absolute_and_defaults_are_these() {
        let s = start(&[
            "--vault",
            "v.sclaw",
            "--password-file",
            "../pw",
            "--share",
            "notes:/shared/notes:rw",
        ])
        .unwrap();
        let here = std::env::current_dir().unwrap();
        assert_eq!(s.vault, Some(here.join("v.sclaw")));
        assert!(matches!(s.password, Source::File(ref p) if *p == here.join("../pw")));
        assert_eq!(s.bot.shares[0].host, here.join("notes"));
        assert!(s.bot.shares[0].writable);
        let b = &s.bot;
        assert_eq!(b.name, NAME);
        assert_eq!(b.gateway, GATEWAY);
        assert_eq!(b.limits.memory_bytes, MEMORY_MIB << 20);
        assert_eq!(b.limits.nano_cpus, 2_000_000_000);
        assert_eq!(b.limits.pids, PIDS);
        assert_eq!(b.keep_generations, KEEP_GENERATIONS);
        assert_eq!(b.drain, DRAIN);
        assert_eq!(b.checkpoint_interval, CHECKPOINT_INTERVAL);
    }

    #[test]
    fn values_a_command_line_gets_wrong_are_refused() {
        let refused = |args: &[&str]| start(args).err().map(|e| e.message);
        assert_eq!(
            refused(&["--cpus", "0"]).as_deref(),
            Some("--cpus 0 is out of range")
        );
        assert!(refused(&["--share", "a:b:c:d"])
            .unwrap()
            .contains("is not HOST:CONTAINER[:rw]"));
        assert!(refused(&["--share", "a:/vault/x"])
            .unwrap()
            .contains("must be absolute and not under /vault"));
        assert!(refused(&["--drain", "61"]).is_some());
    }
}

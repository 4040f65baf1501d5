//! The bot: the gateway's hardened container, started from a vault with
//! its data key (already unlocked on the host), by `start`, `run` and
//! `up`; `run` also supervises it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::container;
use super::engine::Engine;
use super::layout::VAULT_DIR;
use super::mount::VaultMount;
use super::spec::{Limits, Share, Spec};
use crate::egress::network::{self, EgressSettings, Plan};
use crate::egress::policy::{Policy, Rule};
use crate::egress::stored;
use crate::error::{Error, Result};
use crate::paths;
use crate::printer::Printer;
use crate::vault::crypto::DataKey;

/// How the bot's container is set up, as the command line resolved it.
#[derive(Debug, Clone)]
pub struct BotSettings {
    /// The container's name.
    pub name: String,
    pub limits: Limits,
    /// Host port for the gateway, bound on 127.0.0.1 only.
    pub publish: Option<u16>,
    pub keep_generations: usize,
    pub checkpoint_interval: Duration,
    pub drain: Duration,
    /// Host folders to share.
    pub shares: Vec<ShareRequest>,
    /// The gateway command inside the image.
    pub gateway: Vec<String>,
    pub egress: EgressSettings,
    /// Skills to pin before the start (`--skill`; absolute paths).
    pub skills: Vec<PathBuf>,
}

/// A host folder to share, as asked (`--share HOST:CONTAINER[:rw]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRequest {
    /// Absolute; resolved (links followed) when the container is made.
    pub host: PathBuf,
    pub container: String,
    pub writable: bool,
}

impl ShareRequest {
    /// Reads `HOST:CONTAINER[:rw|:ro]`; `HOST` is made absolute by `absolute`.
    pub fn parse(text: &str, absolute: impl Fn(&Path) -> Result<PathBuf>) -> Result<Self> {
        let parts: Vec<&str> = text.split(':').collect();
        let (host, container, writable) = match parts.as_slice() {
            [h, c] => (*h, *c, false),
            [h, c, "rw"] => (*h, *c, true),
            [h, c, "ro"] => (*h, *c, false),
            _ => {
                return Err(Error::usage(format!(
                    "--share {text:?} is not HOST:CONTAINER[:rw]"
                )))
            }
        };
        let reserved = [VAULT_DIR, network::SOCKET_DIR_IN_CONTAINER];
        // Plain components only: `/x/../egress` would pass `starts_with`.
        let plain = Path::new(container).components().all(|c| {
            matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        });
        if !container.starts_with('/')
            || !plain
            || reserved.iter().any(|r| Path::new(container).starts_with(r))
        {
            return Err(Error::usage(format!(
                "--share {text:?}: the container path must be absolute and not under /vault or /egress"
            )));
        }
        Ok(ShareRequest {
            host: absolute(Path::new(host))?,
            container: container.to_string(),
            writable,
        })
    }
}

/// The vault `start` runs from: its directory resolved (absolute, no
/// links: a bind mount needs it so), and in a home of the old layout first
/// moved into the home's `vault/` directory.
pub fn vault_to_start(engine: &Engine, vault: PathBuf, printer: &Printer) -> Result<PathBuf> {
    let vault = if paths::needs_move(&vault) {
        move_legacy_vault(engine, printer)?
    } else {
        vault
    };
    // The directory resolved, not the file: a link planted in place of
    // the vault must be refused (VaultFile::open does not follow it), not
    // resolved to wherever it points.
    paths::in_resolved_dir(&vault)
}

/// A home of the old layout keeps the vault next to the trust records, so
/// a start would mount them into the container: the vault moves into
/// `vault/` first, unless a container still has the home mounted (its
/// guard seals into the old place; moving the file under it would lose
/// that seal).
fn move_legacy_vault(engine: &Engine, printer: &Printer) -> Result<PathBuf> {
    let home = paths::home()?;
    let home = std::fs::canonicalize(&home).map_err(|e| Error::io("reading", &home, e))?;
    if let Some(name) = container::running_with_mount(engine, &home)? {
        return Err(Error::usage(format!(
            "{name} is running with safeclaw's home {} mounted (the layout before the vault had its own directory)",
            home.display()
        ))
        .with_hint(format!(
            "`safeclaw stop --name {name}`, then start again: the vault then moves to {}",
            paths::default_vault(&home).display()
        )));
    }
    let moved = paths::move_legacy_vault()?;
    printer.note(&format!(
        "moved the vault and its generations to {}: the container no longer sees safeclaw's records \
         (the image pins it could have rewritten were dropped and are made again; the rollback record is kept)",
        moved.display()
    ));
    Ok(moved)
}

/// Everything a start needs, resolved once: `run` reuses it to restart.
pub struct Bot {
    pub name: String,
    /// The vault, its directory resolved (`vault_to_start`).
    pub vault: PathBuf,
    /// The generation the key was unlocked at.
    pub generation: u64,
    key: DataKey,
    spec: Spec,
    /// With egress locked: the proxy started with the gateway.
    egress: Option<Plan>,
    /// The policy the vault gave, and where it came from (said once the
    /// bot started).
    policy: Option<(Policy, stored::Source)>,
}

impl Bot {
    /// The bot of `vault` (at `generation`, unlocked with `key`) in `image`,
    /// its egress locked to `egress` (None: open). The vault's directory
    /// must hold nothing but the vault: the container gets it read-write.
    pub fn new(
        settings: &BotSettings,
        image: String,
        vault: PathBuf,
        generation: u64,
        key: DataKey,
        egress: Option<Vec<Rule>>,
        broker: Option<crate::egress::network::BrokerHandoff>,
    ) -> Result<Bot> {
        paths::check_dedicated_dir(&vault)?;
        let mount = VaultMount::of(&vault)?;
        let shares = settings
            .shares
            .iter()
            .map(|s| {
                let host =
                    std::fs::canonicalize(&s.host).map_err(|e| Error::io("sharing", &s.host, e))?;
                Ok(Share {
                    host: host.display().to_string(),
                    container: s.container.clone(),
                    writable: s.writable,
                })
            })
            .collect::<Result<Vec<Share>>>()?;
        refuse_socket_shares(&shares)?;
        if let (Some(port), Some(_)) = (settings.publish, &egress) {
            return Err(Error::usage(format!(
                "--publish {port} needs a network, and with egress locked the gateway has none"
            ))
            .with_hint(
                "reach it with `safeclaw exec`/`safeclaw pair`, or start with `--egress open` (audited)",
            ));
        }
        if broker.is_some() && egress.is_none() {
            return Err(Error::usage(
                "this vault keeps its API keys and bot token out of the gateway: they reach their hosts only through the egress proxy, which --egress open leaves out",
            )
            .with_hint("start with egress locked (the default); `safeclaw secrets list` shows what the vault keeps"));
        }
        let egress = egress
            .map(|rules| {
                let dir = egress_dir(&settings.name, &mount, &shares)?;
                Ok::<_, Error>(Plan {
                    gateway: settings.name.clone(),
                    image: image.clone(),
                    rules,
                    outside: settings.egress.network.clone(),
                    extra_hosts: settings.egress.hosts.clone(),
                    socket_dir: dir.display().to_string(),
                    uid: mount.uid,
                    gid: mount.gid,
                    broker: broker.clone(),
                })
            })
            .transpose()?;
        let spec = Spec {
            image,
            vault_dir: mount.dir.display().to_string(),
            vault_file: mount.file,
            uid: mount.uid,
            gid: mount.gid,
            limits: settings.limits.clone(),
            publish: settings.publish,
            keep_generations: settings.keep_generations,
            checkpoint_interval: settings.checkpoint_interval,
            drain: settings.drain,
            labels: Vec::new(),
            shares,
            gateway: settings.gateway.clone(),
            egress_socket_dir: egress.as_ref().map(|p| p.socket_dir.clone()),
            egress_policy: None,
            pinned_skills_dir: None,
        };
        Ok(Bot {
            name: settings.name.clone(),
            vault,
            generation,
            key,
            spec,
            egress,
            policy: None,
        })
    }

    /// The vault's egress policy and where it came from: defaults the
    /// vault holds none of yet are handed to the guard to store.
    pub fn set_egress_policy(&mut self, policy: Policy, source: stored::Source) {
        if matches!(source, stored::Source::Defaults { .. }) {
            self.spec.egress_policy = Some(crate::egress::policy::encode_line(&policy));
        }
        self.policy = Some((policy, source));
    }

    /// The host directory of the vault's pinned skills, mounted read-only
    /// (`runtime::pinned_skills::prepare`).
    pub fn set_pinned_skills(&mut self, dir: Option<String>) {
        self.spec.pinned_skills_dir = dir;
    }

    /// Says where the egress policy came from, if that needs saying.
    pub fn tell_egress(&self, printer: &Printer) {
        if let Some((policy, source)) = &self.policy {
            stored::tell(policy, source, printer);
        }
    }

    /// For a restart: the egress plan with the rules the vault holds now
    /// (the ones it was made with if the vault holds none yet); refused
    /// when the vault is older than the generation this run started from.
    fn egress_now(&self) -> Result<Option<Plan>> {
        let vault = crate::vault::VaultFile::open(&self.vault)?;
        // Its directory is the container's: an older generation put in
        // place (one sealed before an `egress deny`) is not restarted from.
        let now = vault.header().generation;
        if now < self.generation {
            return Err(Error::failure(format!(
                "{} is at generation {now}, older than the {} this run started from: something put an older generation in place; not restarting",
                self.vault.display(),
                self.generation
            ))
            .with_hint("`safeclaw vault generations` lists them; find out what replaced it before starting again"));
        }
        let Some(plan) = &self.egress else {
            return Ok(None);
        };
        let mut plan = plan.clone();
        if let Some(p) = stored::load(&vault, &self.key)? {
            plan.rules = p.rules;
        }
        Ok(Some(plan))
    }

    /// What the gateway may reach: None when egress is open.
    pub fn egress_rules(&self) -> Option<&[Rule]> {
        self.egress.as_ref().map(|p| p.rules.as_slice())
    }

    /// Starts the container, detached (and its egress proxy first, if
    /// egress is locked); returns its ID.
    pub fn start(&self, engine: &Engine) -> Result<String> {
        container::start(
            engine,
            &self.name,
            &self.spec,
            &self.key,
            self.egress.as_ref(),
        )
    }

    /// `safeclaw run`: starts the container, streams its output, and on
    /// Ctrl-C stops it; returns the generation the guard sealed. A
    /// container that dies on its own (a crash, an OOM kill) is started
    /// again from the newest generation with the key held here in
    /// zeroizing memory, with a bounded backoff and a limit.
    pub fn supervise(&self, engine: &Engine, printer: &Printer) -> Result<Option<u64>> {
        let result = self.supervise_gateway(engine, printer);
        // Its proxy goes with it, however it ended.
        let down = stop_egress(engine, &self.name);
        let sealed = result?;
        down.map(|()| sealed)
    }

    fn supervise_gateway(&self, engine: &Engine, printer: &Printer) -> Result<Option<u64>> {
        let name = &self.name;
        let mut restarts = 0;
        let mut backoff = FIRST_BACKOFF;
        loop {
            // After a crash, with the policy the vault holds now: it may
            // have been changed while the container was down.
            let id = if restarts == 0 {
                self.start(engine)?
            } else {
                let egress = self.egress_now()?;
                container::start(engine, name, &self.spec, &self.key, egress.as_ref())?
            };
            printer.note(&format!("started {name} from {}", self.vault.display()));
            let stopped_by_us = container::follow_until_exit(engine, &id, name, printer)?;
            let exit = if stopped_by_us {
                0
            } else {
                container::exit_code(engine, &id)?
            };
            if exit == 0 {
                return container::sealed_generation(engine, &id);
            }
            restarts += 1;
            if restarts > MAX_RESTARTS {
                return Err(Error::failure(format!(
                    "{name} crashed {MAX_RESTARTS} times in a row (last exit code {exit}); not restarting again"
                ))
                .with_hint("`safeclaw logs` shows why; the vault holds the last checkpoint"));
            }
            printer.warn(&format!(
                "{name} exited with code {exit}; restarting from the last checkpoint in {} s ({restarts} of {MAX_RESTARTS})",
                backoff.as_secs()
            ));
            let wake = Instant::now() + backoff;
            while Instant::now() < wake {
                if crate::interrupt::requested() {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Removes the egress proxy of the gateway `name`, if it has one (after
/// the gateway stopped: without the proxy it reaches nothing at all).
pub fn stop_egress(engine: &Engine, name: &str) -> Result<()> {
    engine.block_on(network::down(engine.docker()?, name))
}

/// A Unix socket in a share is a way out of a gateway with no network:
/// `connect` works through a read-only mount, and the container runs as the
/// user. Refused: a share that is a socket, or that holds, or lies inside,
/// safeclaw's home (every egress proxy's socket) or the places engines,
/// D-Bus and agents keep theirs (/run, $XDG_RUNTIME_DIR, ~/.ssh, ~/.docker,
/// ~/.gnupg).
fn refuse_socket_shares(shares: &[Share]) -> Result<()> {
    let mut held: Vec<PathBuf> = ["/run", "/var/run"].iter().map(PathBuf::from).collect();
    held.extend(
        std::env::var_os(crate::env_vars::XDG_RUNTIME_DIR)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from),
    );
    if let Some(home) = std::env::var_os(crate::env_vars::HOME).filter(|h| !h.is_empty()) {
        let home = PathBuf::from(home);
        held.extend([".ssh", ".docker", ".gnupg"].iter().map(|d| home.join(d)));
    }
    held.extend(paths::home().ok());
    let resolved = |p: &PathBuf| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
    let held: Vec<PathBuf> = held.iter().map(resolved).collect();
    for share in shares {
        let host = Path::new(&share.host);
        let refused = |why: String| {
            Error::usage(format!(
                "--share {}: {why}, and a Unix socket leads out of a container with no network (engines, D-Bus, agents, safeclaw's egress proxies)",
                share.host
            ))
            .with_hint("share a directory of your files that holds no sockets")
        };
        if std::fs::metadata(host).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        }) {
            return Err(refused("it is a socket".into()));
        }
        if let Some(h) = held
            .iter()
            .find(|h| h.starts_with(host) || host.starts_with(h))
        {
            return Err(refused(format!("it holds or lies inside {}", h.display())));
        }
    }
    Ok(())
}

/// The socket directory of the gateway `name`'s egress proxy, which must
/// not be inside anything the gateway can write: the vault's directory,
/// or a share (a gateway that could write there could replace the socket).
fn egress_dir(name: &str, mount: &VaultMount, shares: &[Share]) -> Result<PathBuf> {
    let dir = paths::egress_dir(name)?;
    let writable = std::iter::once(mount.dir.clone()).chain(
        shares
            .iter()
            .filter(|s| s.writable)
            .map(|s| PathBuf::from(&s.host)),
    );
    for w in writable {
        if dir.starts_with(&w) {
            return Err(Error::usage(format!(
                "the egress proxy's directory {} is inside {}, which the gateway can write",
                dir.display(),
                w.display()
            ))
            .with_hint("move the vault, or the share, out of safeclaw's home"));
        }
    }
    // Run as root, the container's user is another uid: the directory is
    // its (the proxy writes its socket there).
    if rustix::process::getuid().is_root() {
        crate::private_fs::chown_nofollow(
            &dir,
            crate::private_fs::Kind::Dir,
            mount.uid,
            mount.gid,
        )?;
    }
    Ok(dir)
}

/// Restarts after a crash, at most this many times in a row.
const MAX_RESTARTS: u32 = 5;
/// The first wait before a restart; doubled each time up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    fn share(host: &str) -> Share {
        Share {
            host: host.to_string(),
            container: "/shared".to_string(),
            writable: false,
        }
    }

    #[test]
    fn shares_that_lead_to_sockets_are_refused() {
        for host in ["/", "/run", "/run/user/1000/bus", "/var/run/docker.sock"] {
            let e = refuse_socket_shares(&[share(host)]).unwrap_err();
            assert!(e.message.contains("leads out"), "{host}: {}", e.message);
        }
        let dir = tempfile::TempDir::new().unwrap();
        refuse_socket_shares(&[share(&dir.path().display().to_string())]).unwrap();
        let socket = dir.path().join("agent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let e = refuse_socket_shares(&[share(&socket.display().to_string())]).unwrap_err();
        assert!(e.message.contains("it is a socket"), "{}", e.message);
    }

    #[test]
    fn reserved_container_paths_are_refused_however_written() {
        let absolute = |p: &Path| Ok(p.to_path_buf());
        for text in [
            "/h:/egress",
            "/h:/egress/x",
            "/h:/vault",
            "/h:/x/../egress",
            "/h:rel",
        ] {
            assert!(ShareRequest::parse(text, absolute).is_err(), "{text}");
        }
        assert!(ShareRequest::parse("/h:/data/notes:rw", absolute).is_ok());
    }
}

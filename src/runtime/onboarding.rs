//! Onboarding: OpenClaw's own onboarding in a throw-away hardened
//! container, its state sealed straight into a new vault (docs/onboard.md).
//!
//! The container is the runtime's own: the guard holds a fresh vault's data
//! key and a tmpfs state dir, and runs `safeclaw idle` as its gateway.
//! OpenClaw's commands run in it by exec: the wizard, and, for the secrets
//! given to safeclaw, commands that read them from stdin. Stopping the
//! container makes the guard seal the state as the vault's generation 2;
//! only then is the vault moved to its place. The container is removed
//! whatever happens, and a failure leaves no vault behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;

use super::container::{self, force_remove};
use super::engine::Engine;
use super::layout::{SAFECLAW_IN_IMAGE, STATE_DIR};
use super::mount::{file_name_of, VaultMount};
use super::spec::{Limits, Spec, LABEL_MANAGED};
use super::{exec, tty};
use crate::egress::network::{self, EgressSettings, Plan};
use crate::egress::policy::{self, Mode, Rule};
use crate::error::{Error, Result};
use crate::password::Password;
use crate::printer::Printer;
use crate::secrets::{self as kept, providers};
use crate::vault::crypto::{DataKey, MasterKey};
use crate::vault::{self, format::KdfParams, Keys, VaultFile};

/// Where a Telegram bot token given with `--telegram-token-file` is kept,
/// inside the state (so inside the vault), for `channels.telegram.tokenFile`.
pub const TELEGRAM_TOKEN_PATH: &str = "credentials/telegram-bot-token";

/// The onboarding container's guard keeps one older generation (the empty one) and drains fast.
const KEEP_GENERATIONS: usize = 1;
const DRAIN: Duration = Duration::from_secs(5);

/// Labels of an onboarding container: the host process that runs it and
/// its staging vault, so a later `onboard` can clean up after one that was
/// killed (SIGKILL leaves no chance to do it then).
const LABEL_ONBOARD_PID: &str = "dev.safeclaw.onboard.pid";
const LABEL_ONBOARD_STAGING: &str = "dev.safeclaw.onboard.staging";

/// Onboarding containers are named this and a random suffix.
const CONTAINER_PREFIX: &str = "safeclaw-onboard-";

/// Marks the name of a staging directory (`.NAME.onboard-HEX`).
const STAGING_MARK: &str = ".onboard-";

/// Removes a staging vault: its kept generations, a seal's temporaries,
/// the file itself (after a success only the first two are left), and the
/// private directory it was made in.
fn discard_staging(staging: &Path) {
    for (_, older) in vault::generations::older(staging).unwrap_or_default() {
        let _ = std::fs::remove_file(older);
    }
    vault::generations::remove_stale_temporaries(staging);
    let _ = std::fs::remove_file(staging);
    vault::blobs::remove_stores_in(&crate::private_fs::parent_of(staging));
    let _ = std::fs::remove_dir(crate::private_fs::parent_of(staging));
}

/// Removes onboarding containers whose host process is gone, and their
/// staging vaults.
async fn remove_abandoned(docker: &Docker) {
    let filters = std::collections::HashMap::from([(
        "label".to_string(),
        vec![LABEL_ONBOARD_PID.to_string()],
    )]);
    let Ok(found) = docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
    else {
        return;
    };
    for c in found {
        // Labels come with images too: only a container of our own naming
        // that carries safeclaw's mark is ours to remove.
        let ours = c
            .names
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|n| n.trim_start_matches('/').starts_with(CONTAINER_PREFIX));
        let labels = c.labels.unwrap_or_default();
        if !ours || !labels.contains_key(LABEL_MANAGED) {
            continue;
        }
        let alive = labels
            .get(LABEL_ONBOARD_PID)
            .and_then(|p| p.parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
            // Only "no such process" is gone: EPERM is someone's live one.
            .is_some_and(|pid| {
                rustix::process::test_kill_process(pid) != Err(rustix::io::Errno::SRCH)
            });
        if alive {
            continue;
        }
        if let Some(id) = c.id {
            let _ = force_remove(docker, &id).await;
        }
        if let Some(name) = c.names.as_deref().unwrap_or_default().first() {
            let name = name.trim_start_matches('/');
            let _ = network::down(docker, name).await;
            remove_egress_dir(name);
        }
        if let Some(staging) = labels.get(LABEL_ONBOARD_STAGING).map(PathBuf::from) {
            let ours = staging
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n.to_string_lossy().contains(STAGING_MARK));
            if ours {
                discard_staging(&staging);
            }
        }
    }
}

/// What onboarding needs besides the new vault's password: the vault's
/// place (its directory resolved) and cost, and what OpenClaw is given.
pub struct Request<'a> {
    pub image: &'a str,
    pub target: &'a Path,
    pub kdf: KdfParams,
    /// The container's resource limits.
    pub limits: Limits,
    pub secrets: &'a Secrets,
    /// OpenClaw's own `onboard` flags (none: the interactive wizard).
    pub openclaw_args: &'a [String],
    /// The onboarding container's egress: locked (unless `--egress open`)
    /// to the API hosts the onboarding may test (`onboarding_rules`).
    pub egress: &'a EgressSettings,
}

/// What the onboarding container may reach: the model provider named for
/// `--api-key-file` and Telegram when a token is given; with the wizard,
/// which may pick any, every provider and channel safeclaw knows a host of.
pub fn onboarding_rules(request: &Request) -> Vec<Rule> {
    if request.openclaw_args.is_empty() {
        return policy::known_rules();
    }
    let mut ids: Vec<&str> = Vec::new();
    if let Some((provider, _)) = &request.secrets.api_key {
        ids.push(provider);
    }
    if request.secrets.telegram_token.is_some() {
        ids.push("telegram");
    }
    policy::rules_for_ids(&ids).0
}

/// The secrets given to safeclaw for OpenClaw, read before anything starts.
pub struct Secrets {
    /// The provider's id and its API key.
    pub api_key: Option<(String, Password)>,
    pub telegram_token: Option<Password>,
}

/// The secrets given to safeclaw that the vault keeps out of the
/// gateway (docs/secrets.md): an API key of a provider the broker knows,
/// and the Telegram bot token. Another provider's key goes into the state
/// as before, said.
fn kept_secrets(secrets: &Secrets, printer: &Printer) -> Result<kept::Secrets> {
    let mut out = kept::Secrets::default();
    let now = vault::now();
    let value = |p: &Password, what: &str| {
        std::str::from_utf8(p.as_bytes())
            .map(|s| zeroize::Zeroizing::new(s.to_string()))
            .map_err(|_| Error::usage(format!("the {what} is not text")))
    };
    if let Some((provider, key)) = &secrets.api_key {
        if providers::find(provider).is_ok() {
            out.set(provider, value(key, "API key")?, now)
                .map_err(|why| Error::usage(format!("the {provider} API key: {why}")))?;
        } else {
            printer.warn(&format!(
                "safeclaw keeps only {} keys out of the gateway: the {provider} key goes into its state, where the agent can read it",
                providers::names()
            ));
        }
    }
    if let Some(token) = &secrets.telegram_token {
        out.set("telegram", value(token, "Telegram bot token")?, now)
            .map_err(|why| Error::usage(format!("the Telegram bot token: {why}")))?;
    }
    Ok(out)
}

/// Onboards into a new vault at `request.target`; returns its keys and
/// its generation (so `up` starts it without asking for the password
/// again). Nothing is left behind on failure.
pub fn onboard(
    engine: &Engine,
    request: &Request,
    password: Password,
    printer: &Printer,
) -> Result<(Keys, u64)> {
    let secrets = kept_secrets(request.secrets, printer)?;
    let target = request.target;
    // The new vault starts empty in a private directory of its own next to
    // its final place (one file system, so the final link is atomic): that
    // directory, not the target's, is what the container gets read-write.
    let dir = crate::private_fs::parent_of(target);
    let file_name = file_name_of(target)?;
    let staging_dir = dir.join(format!(
        ".{file_name}{STAGING_MARK}{}",
        crate::private_fs::hex(&vault::crypto::random_array::<6>())
    ));
    crate::private_fs::create_private_dir(&staging_dir)?;
    let staging = staging_dir.join(&file_name);
    let master = MasterKey::generate();
    let key = master.data_key();
    // The real values go into the header's secrets section, under a key
    // the onboarding container never gets; its state gets placeholders.
    let section =
        (!secrets.0.is_empty()).then(|| master.secrets_key().seal(&kept::encode(&secrets)));
    let spinner = printer.spinner("creating the vault (Argon2id)");
    let created = vault::create_with_key(&staging, &master, section, password, request.kdf, |w| {
        let mut empty = tar::Builder::new(w);
        empty
            .finish()
            .map_err(|e| Error::failure(format!("writing an empty archive: {e}")))
    });
    spinner.finish_and_clear();
    if let Err(e) = created {
        discard_staging(&staging);
        return Err(e);
    }

    let outcome = in_container(engine, request, &staging, &key, &secrets, printer);
    let outcome = outcome.and_then(|sealed| {
        let vault = VaultFile::open(&staging)?;
        let generation = vault.header().generation;
        let stats = vault.verify(&key, |_| {})?;
        if generation != sealed || stats.files == 0 {
            return Err(Error::failure("onboarding sealed no state")
                .with_hint("run `safeclaw onboard` again; nothing was kept"));
        }
        // Its blocks first, then the file that needs them. Never over a
        // vault that appeared meanwhile: link, then unlink.
        vault::blobs::move_store(&staging_dir, &dir, &key.blob_keys())?;
        if let Err(e) = std::fs::hard_link(&staging, target) {
            // Back with the staging file, which is then discarded.
            let _ = vault::blobs::move_store(&dir, &staging_dir, &key.blob_keys());
            return Err(Error::io("creating", target, e));
        }
        let _ = std::fs::remove_file(&staging);
        crate::private_fs::sync_dir(&dir)?;
        Ok(sealed)
    });
    discard_staging(&staging);
    let keys = Keys {
        data: key,
        master: Some(master),
        slot: 0,
    };
    Ok((keys, outcome?))
}

/// The onboarding container, removed (by its ID) when dropped, with its
/// egress proxy and that proxy's socket directory.
struct Running<'e> {
    engine: &'e Engine,
    id: String,
    name: String,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(docker) = self.engine.docker() {
            let _ = self.engine.block_on(force_remove(docker, &self.id));
            let _ = self.engine.block_on(network::down(docker, &self.name));
        }
        remove_egress_dir(&self.name);
        crate::runtime::pinned_skills::remove(&self.name);
    }
}

/// The socket directory of an onboarding container's proxy, once both
/// are gone (an empty directory, or one holding the dead socket).
fn remove_egress_dir(name: &str) {
    if !SESSION_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return;
    }
    let Ok(home) = crate::paths::home() else {
        return;
    };
    let dir = home.join(crate::paths::RUN_DIR).join(name);
    if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
        let _ = std::fs::remove_file(dir.join(network::SOCKET_NAME));
        let _ = std::fs::remove_dir(&dir);
    }
}

/// Runs the container and OpenClaw's commands in it; returns the sealed
/// generation. The container is removed on every path.
fn in_container(
    engine: &Engine,
    request: &Request,
    staging: &Path,
    key: &DataKey,
    secrets: &kept::Secrets,
    printer: &Printer,
) -> Result<u64> {
    let session = Session {
        prefix: CONTAINER_PREFIX,
        image: request.image,
        vault: staging,
        key,
        limits: request.limits.clone(),
        egress: match request.egress.mode {
            Some(Mode::Open) => None,
            _ => Some((
                onboarding_rules(request),
                request.egress,
                // OpenClaw's onboarding may already call the APIs: through
                // the broker, as the gateway will.
                (!secrets.0.is_empty())
                    .then(|| kept::handoff(secrets, request.egress.ca_pem.as_deref()))
                    .transpose()?,
            )),
        },
        labels: vec![
            (
                LABEL_ONBOARD_PID.to_string(),
                std::process::id().to_string(),
            ),
            (
                LABEL_ONBOARD_STAGING.to_string(),
                staging.display().to_string(),
            ),
        ],
        keep_generations: KEEP_GENERATIONS,
    };
    engine.block_on(remove_abandoned(engine.docker()?));
    run_session(
        engine,
        session,
        "sealing the onboarded state",
        |name| steps(engine, name, request, secrets, printer),
        printer,
    )
}

/// A run of a vault in a throw-away hardened container: the guard holds
/// its data key and state, its gateway is `safeclaw idle`, and OpenClaw's
/// commands run in it by exec; its stop seals the vault's next
/// generation. Onboarding's, and `secrets set`'s for a vault whose
/// gateway must get a new placeholder.
struct Session<'a> {
    /// The container's name: this and a random suffix.
    prefix: &'static str,
    image: &'a str,
    vault: &'a Path,
    key: &'a DataKey,
    limits: Limits,
    /// Locked to these rules, through a proxy made as `EgressSettings`
    /// say, with this broker; None: open.
    egress: Option<(
        Vec<Rule>,
        &'a EgressSettings,
        Option<crate::egress::network::BrokerHandoff>,
    )>,
    labels: Vec<(String, String)>,
    keep_generations: usize,
}

/// Runs `session`, `body` with the container's name, then stops it;
/// returns the generation its guard sealed. The container and its proxy
/// are removed on every path.
fn run_session(
    engine: &Engine,
    session: Session,
    sealing: &'static str,
    body: impl FnOnce(&str) -> Result<()>,
    printer: &Printer,
) -> Result<u64> {
    let mount = VaultMount::of(session.vault)?;
    let name = format!(
        "{}{}",
        session.prefix,
        crate::private_fs::hex(&vault::crypto::random_array::<4>())
    );
    let egress = match session.egress {
        None => None,
        Some((rules, settings, broker)) => Some(Plan {
            gateway: name.clone(),
            image: session.image.to_string(),
            rules,
            outside: settings.network.clone(),
            extra_hosts: settings.hosts.clone(),
            socket_dir: crate::paths::egress_dir(&name)?.display().to_string(),
            uid: mount.uid,
            gid: mount.gid,
            broker,
        }),
    };
    if let (Some(plan), true) = (&egress, rustix::process::getuid().is_root()) {
        crate::private_fs::chown_nofollow(
            Path::new(&plan.socket_dir),
            crate::private_fs::Kind::Dir,
            mount.uid,
            mount.gid,
        )?;
    }
    let spec = Spec {
        image: session.image.to_string(),
        vault_dir: mount.dir.display().to_string(),
        vault_file: mount.file,
        uid: mount.uid,
        gid: mount.gid,
        limits: session.limits,
        shares: Vec::new(),
        gateway: vec![SAFECLAW_IN_IMAGE.to_string(), "idle".to_string()],
        publish: None,
        keep_generations: session.keep_generations,
        checkpoint_interval: Duration::ZERO,
        drain: DRAIN,
        labels: session.labels,
        egress_socket_dir: egress.as_ref().map(|p| p.socket_dir.clone()),
        egress_policy: None,
        pinned_skills_dir: None,
    };
    let spec =
        crate::runtime::pinned_skills::prepare(&name, session.vault, session.key).map(|dir| Spec {
            pinned_skills_dir: dir,
            ..spec
        });
    let started =
        spec.and_then(|spec| container::start(engine, &name, &spec, session.key, egress.as_ref()));
    if started.is_err() {
        remove_egress_dir(&name);
        crate::runtime::pinned_skills::remove(&name);
    }
    let running = Running {
        id: started?,
        engine,
        name: name.clone(),
    };
    body(&name)?;
    let spinner = printer.spinner(sealing);
    let stopped = container::request_stop(engine, &running.id, &name);
    spinner.finish_and_clear();
    stopped?;
    container::sealed_generation(engine, &running.id)?
        .ok_or_else(|| Error::failure(format!("{name} did not seal its state")))
}

/// Names of the session containers (`Session::prefix`).
const SESSION_PREFIXES: [&str; 2] = [CONTAINER_PREFIX, SECRETS_PREFIX];
/// `secrets set`'s session containers are named this and a random suffix.
const SECRETS_PREFIX: &str = "safeclaw-secrets-";

/// The vault a `give_placeholders` session runs, and how.
pub struct Target<'a> {
    pub image: &'a str,
    pub vault: &'a Path,
    pub key: &'a DataKey,
    pub limits: Limits,
    pub keep_generations: usize,
}

/// `secrets set` of a secret the vault's gateway was not set up for: a
/// session (`Session`, no network but a proxy that allows nothing) in
/// which OpenClaw gets the placeholders of `names` and the settings that
/// send their requests to the broker (docs/secrets.md). Returns the
/// generation sealed.
pub fn give_placeholders(
    engine: &Engine,
    target: Target,
    kept: &kept::Secrets,
    names: &[&str],
    printer: &Printer,
) -> Result<u64> {
    let settings = EgressSettings {
        mode: None,
        network: network::DEFAULT_OUTSIDE.to_string(),
        hosts: Vec::new(),
        ca_pem: None,
    };
    let session = Session {
        prefix: SECRETS_PREFIX,
        image: target.image,
        vault: target.vault,
        key: target.key,
        limits: target.limits,
        egress: Some((Vec::new(), &settings, None)),
        labels: Vec::new(),
        keep_generations: target.keep_generations,
    };
    run_session(
        engine,
        session,
        "sealing the state with the placeholders",
        |name| placeholder_steps(engine, name, kept, names, printer),
        printer,
    )
}

/// OpenClaw's onboarding (its wizard through a TTY, or its own flags),
/// then the secrets given to safeclaw: placeholders for those the vault
/// keeps, the key of another provider as it is, from stdin.
fn steps(
    engine: &Engine,
    name: &str,
    request: &Request,
    kept: &kept::Secrets,
    printer: &Printer,
) -> Result<()> {
    let mut wizard = openclaw(&["onboard"]);
    wizard.extend(request.openclaw_args.iter().cloned());
    let code = if request.openclaw_args.is_empty() {
        tty::run(engine, name, wizard)?
    } else {
        exec::run(engine, name, wizard, None, printer.json)?
    };
    check("OpenClaw's onboarding", code)?;
    if let Some((provider, api_key)) = &request.secrets.api_key {
        if kept.get(provider).is_none() {
            printer.note(&format!(
                "storing the {provider} API key (read from stdin, not argv)"
            ));
            let cmd = openclaw(&["models", "auth", "paste-api-key", "--provider", provider]);
            let mut line = zeroize::Zeroizing::new(api_key.as_bytes().to_vec());
            line.push(b'\n');
            check(
                "storing the API key",
                exec::run(engine, name, cmd, Some(&line), printer.json)?,
            )?;
        }
    }
    let names: Vec<&str> = kept.0.iter().map(|s| s.name.as_str()).collect();
    placeholder_steps(engine, name, kept, &names, printer)?;
    if request.openclaw_args.is_empty() && kept.0.is_empty() {
        printer.warn("a key typed into OpenClaw's wizard is kept in the gateway's state, where the agent can read it; `--api-key-file` and `--telegram-token-file` keep them out (docs/secrets.md)");
    }
    Ok(())
}

/// `openclaw ARGS` as an exec's argv.
fn openclaw(rest: &[&str]) -> Vec<String> {
    let mut cmd = vec!["openclaw".to_string()];
    cmd.extend(rest.iter().map(|s| s.to_string()));
    cmd
}

/// A step's exit code as a result.
fn check(what: &str, code: i64) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    Err(Error::failure(format!(
        "{what} failed (exit code {code}); nothing was kept"
    ))
    .with_hint("its output is above; fix what it says and run the command again"))
}

/// What the gateway's state gets of the secrets `names` the vault keeps:
/// each one's placeholder where OpenClaw expects the credential, and
/// OpenClaw's setting that sends its requests to the broker
/// (docs/secrets.md). Placeholders are no secrets, but they go on stdin
/// all the same, as the commands read credentials.
fn placeholder_steps(
    engine: &Engine,
    name: &str,
    kept: &kept::Secrets,
    names: &[&str],
    printer: &Printer,
) -> Result<()> {
    for secret in names {
        let Some(s) = kept.get(secret) else { continue };
        let p = providers::find(secret).map_err(Error::usage)?;
        if p.name == "telegram" {
            printer.note("storing a placeholder for the Telegram bot token as a file in the state (tokenFile; the vault keeps the token for the egress proxy)");
            let path = format!("{STATE_DIR}/{TELEGRAM_TOKEN_PATH}");
            let cmd = vec![
                SAFECLAW_IN_IMAGE.to_string(),
                "write-secret".to_string(),
                path.clone(),
            ];
            check(
                "storing the bot token's placeholder",
                exec::run(
                    engine,
                    name,
                    cmd,
                    Some(s.placeholder.as_bytes()),
                    printer.json,
                )?,
            )?;
            for (key, value) in [
                ("channels.telegram.tokenFile", path.as_str()),
                ("channels.telegram.enabled", "true"),
            ] {
                let cmd = openclaw(&["config", "set", key, value]);
                check(
                    "configuring Telegram",
                    exec::run(engine, name, cmd, None, printer.json)?,
                )?;
            }
            // A token in the config itself (`channels add --token`) would
            // win over the file: gone, if there is one (it fails if not).
            // Quietly: its "not set" is no news.
            let unset = openclaw(&["config", "unset", "channels.telegram.botToken"]);
            let _ = engine.block_on(exec::exec_capture(engine.docker()?, name, unset, 4096));
        } else {
            printer.note(&format!(
                "storing a placeholder for the {secret} API key (the vault keeps the key for the egress proxy)"
            ));
            let cmd = openclaw(&["models", "auth", "paste-api-key", "--provider", secret]);
            let line = format!("{}\n", s.placeholder);
            check(
                "storing the API key's placeholder",
                exec::run(engine, name, cmd, Some(line.as_bytes()), printer.json)?,
            )?;
        }
        let cmd = openclaw(&["config", "set", p.setting, &p.broker_url()]);
        check(
            "pointing OpenClaw at the egress broker",
            exec::run(engine, name, cmd, None, printer.json)?,
        )?;
    }
    Ok(())
}

//! `safeclaw onboard`: OpenClaw's own onboarding in a throw-away hardened
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

use bollard::query_parameters::RemoveContainerOptionsBuilder;
use bollard::Docker;
use serde_json::json;

use crate::cli::{OnboardArgs, OnboardExtras};
use crate::error::{Error, Result};
use crate::password::{self, Confirm, Source};
use crate::printer::Printer;
use crate::runtime::engine::Engine;
use crate::runtime::layout::{SAFECLAW_IN_IMAGE, STATE_DIR};
use crate::runtime::spec::{Limits, Spec};
use crate::vault::{self, crypto::DataKey, VaultFile};

use super::exec::exec_in;

/// Where a Telegram bot token given with `--telegram-token-file` is kept,
/// inside the state (so inside the vault), for `channels.telegram.tokenFile`.
pub const TELEGRAM_TOKEN_PATH: &str = "credentials/telegram-bot-token";

/// Labels of an onboarding container: the host process that runs it and
/// its staging vault, so a later `onboard` can clean up after one that was
/// killed (SIGKILL leaves no chance to do it then).
const LABEL_ONBOARD_PID: &str = "dev.safeclaw.onboard.pid";
const LABEL_ONBOARD_STAGING: &str = "dev.safeclaw.onboard.staging";

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
        if !ours || !labels.contains_key(crate::runtime::spec::LABEL_MANAGED) {
            continue;
        }
        let alive = labels
            .get(LABEL_ONBOARD_PID)
            .and_then(|p| p.parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
            .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok());
        if alive {
            continue;
        }
        if let Some(id) = c.id {
            let _ = docker
                .remove_container(
                    &id,
                    Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                )
                .await;
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
    let _ = std::fs::remove_dir(crate::private_fs::parent_of(staging));
}

/// The secrets given to safeclaw for OpenClaw, read before anything starts.
struct Secrets {
    api_key: Option<(String, password::Password)>,
    telegram_token: Option<password::Password>,
}

pub fn run(args: OnboardArgs, engine: &Engine, printer: &Printer) -> Result<()> {
    let image = crate::image::resolve::resolve(engine, &args.image, false, printer)?;
    onboard(&args, engine, &image, printer).map(|_| ())
}

/// Onboards; returns the new vault, its data key and its generation (so
/// `up` starts it without asking for the password again).
pub fn onboard(
    args: &OnboardArgs,
    engine: &Engine,
    image: &str,
    printer: &Printer,
) -> Result<(PathBuf, DataKey, u64)> {
    let target = crate::paths::new_vault(&args.vault)?;
    super::vault_create::check_new_vault_path(&target)?;
    let target = crate::paths::in_resolved_dir(&target)?;
    if args.extras.openclaw_args.is_empty() && !std::io::IsTerminal::is_terminal(&std::io::stdin())
    {
        return Err(Error::usage(
            "the interactive onboarding wizard needs a terminal, and stdin is not one",
        )
        .with_hint(
            "pass OpenClaw's non-interactive flags after `--` (see `safeclaw onboard --help`)",
        ));
    }
    let secrets = read_secrets(&args.extras, printer)?;
    let kdf = super::vault_create::checked_kdf(args.extras.kdf.params(), printer)?;
    let password = super::read_new_password(&args.password.source(), printer)?;

    // The new vault starts empty in a private directory of its own next to
    // its final place (one file system, so the final link is atomic): that
    // directory, not the target's, is what the container gets read-write.
    let dir = crate::private_fs::parent_of(&target);
    let file_name = super::start::file_name_of(&target)?;
    let staging_dir = dir.join(format!(
        ".{file_name}{STAGING_MARK}{}",
        crate::private_fs::hex(&vault::crypto::random_array::<6>())
    ));
    crate::private_fs::create_private_dir(&staging_dir)?;
    let staging = staging_dir.join(&file_name);
    let key = DataKey::generate();
    let spinner = printer.spinner("creating the vault (Argon2id)");
    let created = vault::create_with_key(&staging, &key, password, kdf, |w| {
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

    let name = format!(
        "{CONTAINER_PREFIX}{}",
        crate::private_fs::hex(&vault::crypto::random_array::<4>())
    );
    let outcome = onboard_in_container(
        args, engine, image, &name, &staging, &key, &secrets, printer,
    );
    let outcome = outcome.and_then(|sealed| {
        let vault = VaultFile::open(&staging)?;
        let generation = vault.header().generation;
        let stats = vault.verify(&key, |_| {})?;
        if generation != sealed || stats.files == 0 {
            return Err(Error::failure("onboarding sealed no state")
                .with_hint("run `safeclaw onboard` again; nothing was kept"));
        }
        // Never over a vault that appeared meanwhile: link, then unlink.
        std::fs::hard_link(&staging, &target).map_err(|e| Error::io("creating", &target, e))?;
        let _ = std::fs::remove_file(&staging);
        crate::private_fs::sync_dir(&dir)?;
        Ok(sealed)
    });
    discard_staging(&staging);
    let generation = outcome?;
    crate::rollback::record_authenticated(&target, generation, printer);
    if let Err(e) = crate::paths::check_dedicated_dir(&target) {
        printer.warn(&format!(
            "`safeclaw start` will refuse this vault where it is: {}{}",
            e.message,
            e.hint.map(|h| format!(" ({h})")).unwrap_or_default()
        ));
    }
    printer.result(
        &format!(
            "onboarded: OpenClaw's state sealed into {} (generation {generation}); `safeclaw start` runs it",
            target.display()
        ),
        json!({ "ok": true, "vault": target, "generation": generation }),
    );
    Ok((target, key, generation))
}

fn read_secrets(args: &OnboardExtras, printer: &Printer) -> Result<Secrets> {
    let read = |path: &Path, label: &str| {
        let source = Source::File(path.to_path_buf());
        super::read_password(&source, label, Confirm::Once, printer)
    };
    Ok(Secrets {
        api_key: args
            .api_key_file
            .as_deref()
            .map(|p| read(p, "API key").map(|k| (args.provider.clone(), k)))
            .transpose()?,
        telegram_token: args
            .telegram_token_file
            .as_deref()
            .map(|p| read(p, "Telegram bot token"))
            .transpose()?,
    })
}

/// Runs the container and OpenClaw's commands in it; returns the sealed
/// generation. The container is removed on every path.
#[allow(clippy::too_many_arguments)]
fn onboard_in_container(
    args: &OnboardArgs,
    engine: &Engine,
    image: &str,
    name: &str,
    staging: &Path,
    key: &DataKey,
    secrets: &Secrets,
    printer: &Printer,
) -> Result<u64> {
    let dir = crate::private_fs::parent_of(staging);
    let (uid, gid) = super::start::container_user(&dir, staging)?;
    let spec = Spec {
        image: image.to_string(),
        vault_dir: dir.display().to_string(),
        vault_file: super::start::file_name_of(staging)?,
        uid,
        gid,
        limits: Limits::default(),
        shares: Vec::new(),
        gateway: vec![SAFECLAW_IN_IMAGE.to_string(), "idle".to_string()],
        publish: None,
        keep_generations: 1,
        checkpoint_interval: std::time::Duration::ZERO,
        drain: std::time::Duration::from_secs(5),
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
    };
    let docker = engine.docker()?;
    let kind = engine.kind()?;
    engine.block_on(async {
        remove_abandoned(docker).await;
        let result = async {
            super::start::start(docker, kind, name, &spec, key).await?;
            steps(docker, name, &args.extras, secrets, printer).await?;
            let spinner = printer.spinner("sealing the onboarded state");
            let stopped = super::stop::request_stop(docker, name).await;
            spinner.finish_and_clear();
            stopped?;
            super::stop::sealed_generation(docker, name)
                .await
                .ok_or_else(|| Error::failure("the onboarding container did not seal its state"))
        }
        .await;
        let _ = docker
            .remove_container(
                name,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await;
        result
    })
}

async fn steps(
    docker: &Docker,
    name: &str,
    args: &OnboardExtras,
    secrets: &Secrets,
    printer: &Printer,
) -> Result<()> {
    let openclaw = |rest: &[&str]| {
        let mut cmd = vec!["openclaw".to_string()];
        cmd.extend(rest.iter().map(|s| s.to_string()));
        cmd
    };
    let check = |what: &str, code: i64| {
        if code == 0 {
            Ok(())
        } else {
            Err(Error::failure(format!(
                "{what} failed (exit code {code}); no vault was kept"
            ))
            .with_hint("its output is above; fix the flags and run `safeclaw onboard` again"))
        }
    };
    let mut wizard = openclaw(&["onboard"]);
    wizard.extend(args.openclaw_args.iter().cloned());
    let code = if args.openclaw_args.is_empty() {
        crate::runtime::tty::run(docker, name, wizard).await?
    } else {
        exec_in(docker, name, wizard, None, printer.json).await?
    };
    check("OpenClaw's onboarding", code)?;
    if let Some((provider, api_key)) = &secrets.api_key {
        printer.note(&format!(
            "storing the {provider} API key (read from stdin, not argv)"
        ));
        let cmd = openclaw(&["models", "auth", "paste-api-key", "--provider", provider]);
        let mut line = zeroize::Zeroizing::new(api_key.as_bytes().to_vec());
        line.push(b'\n');
        check(
            "storing the API key",
            exec_in(docker, name, cmd, Some(&line), printer.json).await?,
        )?;
    }
    if let Some(token) = &secrets.telegram_token {
        printer.note("storing the Telegram bot token as a file in the state (tokenFile)");
        let path = format!("{STATE_DIR}/{TELEGRAM_TOKEN_PATH}");
        let cmd = vec![
            SAFECLAW_IN_IMAGE.to_string(),
            "write-secret".to_string(),
            path.clone(),
        ];
        check(
            "storing the bot token",
            exec_in(docker, name, cmd, Some(token.as_bytes()), printer.json).await?,
        )?;
        for (key, value) in [
            ("channels.telegram.tokenFile", path.as_str()),
            ("channels.telegram.enabled", "true"),
        ] {
            let cmd = openclaw(&["config", "set", key, value]);
            check(
                "configuring Telegram",
                exec_in(docker, name, cmd, None, printer.json).await?,
            )?;
        }
    }
    Ok(())
}

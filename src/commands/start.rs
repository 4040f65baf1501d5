//! `safeclaw start`: unlock the vault on the host, create the hardened
//! container, attach to its stdin before it starts, start it, hand the
//! guard the data key, and wait for the guard's verdict.

use std::path::Path;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::cli::StartArgs;
use crate::container_spec::{self, Limits, Share, Spec};
use crate::engine;
use crate::error::{Class, Error, Result};
use crate::guard;
use crate::paths;
use crate::printer::Printer;
use crate::private_fs::{self, Kind};
use crate::vault::{crypto::DataKey, VaultFile};

/// How long the guard may take to decrypt the vault and start the gateway.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Everything a start needs, resolved once: `run` reuses it to restart.
struct Prepared {
    name: String,
    vault_path: std::path::PathBuf,
    generation: u64,
    key: DataKey,
    spec: Spec,
}

/// The image comes first: a refused image costs no password prompt.
fn prepare(args: &StartArgs, image: String, printer: &Printer) -> Result<Prepared> {
    let vault_path = paths::vault(&args.vault)?;
    let vault_path = if paths::needs_move(&vault_path) {
        move_legacy_vault(printer)?
    } else {
        vault_path
    };
    // The directory resolved, not the file: a link planted in place of
    // the vault must be refused (VaultFile::open does not follow it), not
    // resolved to wherever it points.
    let vault_path = paths::in_resolved_dir(&vault_path)?;
    let vault = VaultFile::open(&vault_path)?;
    let generation = vault.header().generation;
    let (key, _) = super::unlock(&vault, &args.password.source(), printer)?;
    // Only now, with the header's MAC checked, may its generation count.
    crate::rollback::record_authenticated(&vault_path, generation, printer);
    drop(vault);
    prepare_with_key(args, image, vault_path, generation, key)
}

fn prepare_with_key(
    args: &StartArgs,
    image: String,
    vault_path: std::path::PathBuf,
    generation: u64,
    key: DataKey,
) -> Result<Prepared> {
    paths::check_dedicated_dir(&vault_path)?;
    let vault_dir = crate::private_fs::parent_of(&vault_path);
    let (uid, gid) = container_user(&vault_dir, &vault_path)?;
    let spec = Spec {
        image,
        vault_dir: vault_dir.display().to_string(),
        vault_file: file_name_of(&vault_path)?,
        uid,
        gid,
        limits: Limits {
            memory_bytes: args.memory_mib << 20,
            nano_cpus: cpus_to_nano(args.cpus)?,
            pids: args.pids,
            ..Limits::default()
        },
        publish: args.publish,
        keep_generations: args.keep_generations,
        checkpoint_secs: args.checkpoint_interval,
        drain_secs: args.drain,
        labels: Vec::new(),
        shares: parse_shares(&args.shares)?,
        gateway: args.gateway.clone(),
    };
    Ok(Prepared {
        name: args.container.name.clone(),
        vault_path,
        generation,
        key,
        spec,
    })
}

/// A home of the old layout keeps the vault next to the trust records, so
/// a start would mount them into the container: the vault moves into
/// `vault/` first, unless a container still has the home mounted (its
/// guard seals into the old place; moving the file under it would lose
/// that seal).
fn move_legacy_vault(printer: &Printer) -> Result<std::path::PathBuf> {
    let home = paths::home()?;
    let home = std::fs::canonicalize(&home).map_err(|e| Error::io("reading", &home, e))?;
    let in_use = engine::runtime()?
        .block_on(async { engine::running_with_mount(&engine::connect().await?, &home).await })?;
    if let Some(name) = in_use {
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

pub fn run(args: StartArgs, printer: &Printer) -> Result<()> {
    let image = super::image::resolve(&args.image, false, printer)?;
    run_in(&args, image, printer)
}

/// `start` in an image already resolved (`up`).
pub fn run_in(args: &StartArgs, image: String, printer: &Printer) -> Result<()> {
    launch(prepare(args, image, printer)?, printer)
}

/// `start` with a key already in hand (`up` right after onboarding), in
/// the image already resolved.
pub fn run_with_key(
    args: &StartArgs,
    image: String,
    vault_path: std::path::PathBuf,
    generation: u64,
    key: DataKey,
    printer: &Printer,
) -> Result<()> {
    let vault_path = paths::in_resolved_dir(&vault_path)?;
    launch(
        prepare_with_key(args, image, vault_path, generation, key)?,
        printer,
    )
}

fn launch(p: Prepared, printer: &Printer) -> Result<()> {
    let spinner = printer.spinner("starting the container");
    let started = engine::runtime()?.block_on(start(&p.name, &p.spec, &p.key));
    spinner.finish_and_clear();
    let id = started?;
    let (name, generation) = (&p.name, p.generation);
    printer.result(
        &format!("started {name} from {} (generation {generation})", p.vault_path.display()),
        json!({ "ok": true, "name": name, "id": id, "vault": p.vault_path, "generation": generation }),
    );
    Ok(())
}

/// Restarts after a crash, at most this many times in a row.
const MAX_RESTARTS: u32 = 5;
/// The first wait before a restart; doubled each time up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// `safeclaw run`: start, stream the output, and on Ctrl-C stop and report
/// the sealed generation. A container that dies on its own (a crash, an
/// OOM kill) is started again from the newest generation with the key held
/// here in zeroizing memory, with a bounded backoff and a limit.
pub fn run_foreground(args: StartArgs, printer: &Printer) -> Result<()> {
    let image = super::image::resolve(&args.image, false, printer)?;
    let p = prepare(&args, image, printer)?;
    let name = p.name.clone();
    let sealed = engine::runtime()?.block_on(async {
        let docker = engine::connect().await?;
        let mut restarts = 0;
        let mut backoff = FIRST_BACKOFF;
        loop {
            start(&name, &p.spec, &p.key).await?;
            printer.note(&format!("started {name} from {}", p.vault_path.display()));
            let stopped_by_us = follow_until_exit(&docker, &name, printer).await?;
            if stopped_by_us {
                break;
            }
            let exit = docker
                .inspect_container(&name, None)
                .await
                .ok()
                .and_then(|c| c.state)
                .and_then(|s| s.exit_code)
                .unwrap_or(-1);
            if exit == 0 {
                break;
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
            let wake = tokio::time::Instant::now() + backoff;
            while tokio::time::Instant::now() < wake {
                if crate::interrupt::requested() {
                    return Ok(None);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        Ok::<_, Error>(super::stop::sealed_generation(&docker, &name).await)
    })?;
    super::stop::report_sealed(&name, sealed, printer)
}

/// Streams the container's output until it exits; on Ctrl-C stops it (the
/// guard drains and seals). Returns whether the stop was ours.
pub(super) async fn follow_until_exit(
    docker: &Docker,
    name: &str,
    printer: &Printer,
) -> Result<bool> {
    let logs = super::exec::follow_logs(docker, name, true);
    tokio::pin!(logs);
    let mut stopping = false;
    loop {
        tokio::select! {
            r = &mut logs => { r?; return Ok(stopping); }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if crate::interrupt::requested() && !stopping {
                    stopping = true;
                    printer.note("stopping: the gateway drains, then its state is sealed");
                    super::stop::request_stop(docker, name).await?;
                }
            }
        }
    }
}

/// The vault's file name, as the guard is told it (the directory is mounted).
pub(super) fn file_name_of(vault: &Path) -> Result<String> {
    vault
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| Error::usage(format!("{} has no usable file name", vault.display())))
}

/// The container runs as the caller's uid:gid so the vault it writes stays
/// the caller's. Run as root, safeclaw uses an unprivileged uid instead and
/// gives it the vault directory (root can still read it).
///
/// That uid can write the directory, so by the next root start anything in
/// it may be a link planted for root to follow (`openclaw.vault.g99 ->
/// /etc/shadow`): owners are changed through a descriptor opened without
/// following links (`private_fs::chown_nofollow`), and only regular files
/// are generations.
pub(super) fn container_user(vault_dir: &Path, vault: &Path) -> Result<(u32, u32)> {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    if uid != 0 {
        return Ok((uid, gid));
    }
    let id = container_spec::FALLBACK_UID;
    // The links in the directory's own path are the user's choice (the
    // container cannot write its parent): resolved here, so that only a
    // link inside it is refused.
    let vault_dir =
        std::fs::canonicalize(vault_dir).map_err(|e| Error::io("opening", vault_dir, e))?;
    let vault = vault_dir.join(file_name_of(vault)?);
    // A seal killed between keeping the current file as `.gN` (a hard
    // link) and renaming the new one over it leaves two names for one
    // file: drop the redundant one, so the vault has one name again.
    for (n, _) in crate::vault::generations::older(&vault)? {
        crate::vault::generations::unkeep(&vault, n);
    }
    // Both were just opened as a directory and a vault: anything else now
    // (a link, a second hard link) is a swap under our feet, and the guard
    // could not seal anyway.
    for (path, kind) in [(&vault_dir, Kind::Dir), (&vault, Kind::File)] {
        if !private_fs::chown_nofollow(path, kind, id, id)? {
            return Err(Error::failure(format!(
                "{} is not a {} with one name (a symbolic or second hard link?); not handing it to uid {id}",
                path.display(),
                if kind == Kind::Dir {
                    "directory"
                } else {
                    "regular file"
                }
            ))
            .with_hint("check what is in the vault's directory; the container can write it"));
        }
    }
    // A generation swapped for a link since it was listed is skipped.
    for (_, path) in crate::vault::generations::older(&vault)? {
        private_fs::chown_nofollow(&path, Kind::File, id, id)?;
    }
    Ok((id, id))
}

fn cpus_to_nano(cpus: f64) -> Result<i64> {
    if !(0.01..=1024.0).contains(&cpus) {
        return Err(Error::usage(format!("--cpus {cpus} is out of range"))
            .with_hint("use a number of cores such as 1 or 0.5"));
    }
    Ok((cpus * 1e9) as i64)
}

fn parse_shares(specs: &[String]) -> Result<Vec<Share>> {
    specs
        .iter()
        .map(|s| {
            let parts: Vec<&str> = s.split(':').collect();
            let (host, container, writable) = match parts.as_slice() {
                [h, c] => (*h, *c, false),
                [h, c, "rw"] => (*h, *c, true),
                [h, c, "ro"] => (*h, *c, false),
                _ => {
                    return Err(Error::usage(format!(
                        "--share {s:?} is not HOST:CONTAINER[:rw]"
                    )))
                }
            };
            let host = std::fs::canonicalize(host)
                .map_err(|e| Error::io("sharing", Path::new(host), e))?;
            if !container.starts_with('/') || container.starts_with(container_spec::VAULT_DIR) {
                return Err(Error::usage(format!(
                    "--share {s:?}: the container path must be absolute and not under /vault"
                )));
            }
            Ok(Share {
                host: host.display().to_string(),
                container: container.to_string(),
                writable,
            })
        })
        .collect()
}

pub(super) async fn start(name: &str, spec: &Spec, key: &DataKey) -> Result<String> {
    let docker = engine::connect().await?;
    remove_stale(&docker, name).await?;
    let kind = engine::kind(&docker).await?;
    refuse_unenforced_limits(&docker).await?;
    let body = container_spec::create_body(spec, kind);
    let asked = body.host_config.clone().unwrap_or_default();
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(name).build()),
            body,
        )
        .await
        .map_err(|e| match e {
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            } => Error::usage(format!("the image {} is not in the engine", spec.image))
                .with_hint("load or build it first (see the README)"),
            e => engine::failed("creating", name, e),
        })?;
    // From here on by ID: the name could be given to another container
    // (removed and re-created by someone else) between two requests.
    let handed = match check_recorded(&docker, &created.id, name, &asked).await {
        Ok(()) => hand_over(&docker, &created.id, name, key).await,
        Err(e) => Err(e),
    };
    match handed {
        Ok(()) => Ok(created.id),
        Err(e) => {
            // No half-started container: it holds nothing, remove it.
            let _ = docker
                .remove_container(
                    &created.id,
                    Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                )
                .await;
            Err(e)
        }
    }
}

/// A rootless engine on cgroups v1 cannot enforce memory or process
/// limits: rootless Podman records them as 0, rootless Docker records them
/// and ignores them (measured: Debian 12's 20.10 rootless created the
/// container with both limits in its inspect). Refused before anything is
/// created, whatever the engine records.
async fn refuse_unenforced_limits(docker: &Docker) -> Result<()> {
    let described = engine::describe(docker, engine::endpoint().ok().as_ref()).await?;
    if described.rootless && described.cgroup_version == "1" {
        return Err(Error::new(
            Class::Engine,
            format!(
                "the engine ({described}) cannot enforce the memory and process limits: a rootless engine on cgroups v1 ignores them"
            ),
        )
        .with_hint(ROOTLESS_V1_HINT));
    }
    Ok(())
}

const ROOTLESS_V1_HINT: &str = "rootless engines enforce limits on cgroups v2 only: boot with cgroups v2 (systemd.unified_cgroup_hierarchy=1), or use rootful Podman or Docker (docs/engines.md)";

/// The created container as the engine recorded it must be as hardened as
/// asked: an engine that drops a limit without an error gets no key.
async fn check_recorded(
    docker: &Docker,
    id: &str,
    name: &str,
    asked: &bollard::models::HostConfig,
) -> Result<()> {
    let recorded = docker
        .inspect_container(id, None)
        .await
        .map_err(|e| engine::failed("inspecting", name, e))?
        .host_config
        .unwrap_or_default();
    let weakened = container_spec::weakened(asked, &recorded);
    if weakened.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        Class::Engine,
        format!(
            "the engine created {name} without {}: it is removed and nothing was handed to it",
            weakened.join(", ")
        ),
    )
    .with_hint(ROOTLESS_V1_HINT))
}

/// A container of that name that safeclaw made and that is not running is
/// left from an earlier run: remove it. A running one is an error, and so
/// is one safeclaw did not make (without its label): it may be someone's.
async fn remove_stale(docker: &Docker, name: &str) -> Result<()> {
    let c = match docker.inspect_container(name, None).await {
        Ok(c) => c,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => return Ok(()),
        Err(e) => return Err(engine::failed("inspecting", name, e)),
    };
    let inspect = serde_json::to_value(&c)
        .map_err(|e| Error::failure(format!("reading the inspect of {name}: {e}")))?;
    if !crate::audit::container::is_managed(&inspect) {
        return Err(Error::usage(format!(
            "a container named {name} exists and was not made by safeclaw"
        ))
        .with_hint("remove it yourself (`docker rm`) or choose another --name"));
    }
    if c.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
        return Err(Error::usage(format!("{name} is already running"))
            .with_hint("`safeclaw status` shows it; `safeclaw stop` stops it"));
    }
    // By the ID inspected: never whatever holds the name by now.
    let id =
        c.id.ok_or_else(|| Error::new(Class::Engine, format!("the engine gave no ID for {name}")))?;
    docker
        .remove_container(
            &id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await
        .map_err(|e| engine::failed("removing the old container", name, e))
}

/// Attach (before start), start, write the key, close stdin, wait for the
/// guard to say ready or fail. `id` is the container created; `name` is
/// for messages.
async fn hand_over(docker: &Docker, id: &str, name: &str, key: &DataKey) -> Result<()> {
    let mut attached = docker
        .attach_container(
            id,
            Some(
                AttachContainerOptionsBuilder::new()
                    .stdin(true)
                    .stdout(true)
                    .stderr(true)
                    .stream(true)
                    .build(),
            ),
        )
        .await
        .map_err(|e| engine::failed("attaching to", name, e))?;
    docker
        .start_container(id, None)
        .await
        .map_err(|e| engine::failed("starting", name, e))?;
    let line = guard::key_line(key);
    attached
        .input
        .write_all(line.as_bytes())
        .await
        .map_err(|e| Error::new(Class::Engine, format!("handing the key to {name}: {e}")))?;
    drop(line);
    let _ = attached.input.shutdown().await;

    let verdict = tokio::time::timeout(READY_TIMEOUT, async {
        let mut pending = String::new();
        while let Some(item) = attached.output.next().await {
            let bytes = match item {
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => message,
                Ok(_) => continue,
                Err(e) => {
                    return Err(Error::new(
                        Class::Engine,
                        format!("reading from {name}: {e}"),
                    ))
                }
            };
            pending.push_str(&String::from_utf8_lossy(&bytes));
            while let Some(i) = pending.find('\n') {
                let line: String = pending.drain(..=i).collect();
                if line.starts_with(guard::READY) {
                    return Ok(());
                }
                if let Some(why) = line.strip_prefix(guard::FAILED) {
                    let why = why.trim_end();
                    return Err(if why.contains("does not open the vault") {
                        Error::new(
                            Class::WrongPassword,
                            format!("the guard in {name} refused the key: {why}"),
                        )
                    } else {
                        Error::failure(format!("the guard in {name} failed: {why}"))
                            .with_hint("`safeclaw logs` shows the container's output")
                    });
                }
            }
        }
        Err(
            Error::failure(format!("{name} exited before the gateway started"))
                .with_hint("`docker logs` on the container shows why"),
        )
    })
    .await;
    verdict.unwrap_or_else(|_| {
        Err(Error::failure(format!(
            "{name} did not become ready in {} s",
            READY_TIMEOUT.as_secs()
        )))
    })
}

//! The container's life, by its ID once it exists: created from the spec,
//! checked against what the engine recorded, attached before start,
//! started, handed the key, waited for; asked to stop; removed. The name
//! is only looked up once (a name can be given to another container
//! between two requests) and appears in messages.
//!
//! Only containers that carry safeclaw's label are removed: a stale one
//! before a start, an abandoned onboarding one. A container safeclaw just
//! created and that failed is removed at once: no half-started container
//! holds anything.

use std::path::Path;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::models::{ContainerInspectResponse, ContainerState};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptions, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::engine::{self, Engine};
use super::guard::protocol::{self, Failure, Status};
use super::layout::STOP_BUDGET;
use super::spec::{self, EngineKind, Spec};
use crate::error::{Class, Error, Result};
use crate::printer::Printer;
use crate::vault::crypto::DataKey;

/// How long the guard may take to decrypt the vault and start the gateway.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Creates the hardened container `name` from `spec` (after removing a
/// stopped one of that name that safeclaw made), checks that the engine
/// recorded it as asked, hands the guard the key and waits for its answer.
/// Returns the container's ID; on any failure the container is removed.
///
/// With `egress` (locked), the proxy is started first, from a clean
/// slate (whatever an earlier run left is removed), and removed again if
/// the gateway does not start. Open, a proxy an earlier run left is removed.
pub fn start(
    engine: &Engine,
    name: &str,
    spec: &Spec,
    key: &DataKey,
    egress: Option<&crate::egress::network::Plan>,
) -> Result<String> {
    let docker = engine.docker()?;
    let kind = engine.kind()?;
    refuse_unenforced_limits(&engine.describe()?)?;
    engine.block_on(async {
        // A running gateway keeps its proxy: refused before it is touched.
        remove_stale(docker, name).await?;
        let Some(plan) = egress else {
            // A proxy left by an earlier locked run that was killed serves
            // no one now; a foreign container of that name is not ours to
            // judge when nothing needs it.
            let _ = crate::egress::network::down(docker, name).await;
            return start_in(docker, kind, name, spec, key).await;
        };
        crate::egress::network::up(docker, plan, kind).await?;
        let started = start_in(docker, kind, name, spec, key).await;
        if started.is_err() {
            let _ = crate::egress::network::down(docker, name).await;
        }
        started
    })
}

/// A rootless engine on cgroups v1 cannot enforce memory or process
/// limits: rootless Podman records them as 0, rootless Docker records them
/// and ignores them (measured: Debian 12's 20.10 rootless created the
/// container with both limits in its inspect). Refused before anything is
/// created, whatever the engine records.
fn refuse_unenforced_limits(described: &engine::Description) -> Result<()> {
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

async fn start_in(
    docker: &Docker,
    kind: EngineKind,
    name: &str,
    spec: &Spec,
    key: &DataKey,
) -> Result<String> {
    let body = spec::create_body(spec, kind);
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
    let handed = match check_recorded(docker, &created.id, name, &asked).await {
        Ok(()) => hand_over(docker, &created.id, name, key).await,
        Err(e) => Err(e),
    };
    match handed {
        Ok(()) => Ok(created.id),
        Err(e) => {
            // No half-started container: it holds nothing, remove it.
            let _ = force_remove(docker, &created.id).await;
            Err(e)
        }
    }
}

/// Removes the container `id`, running or not: the one place safeclaw
/// force-removes a container. Callers have checked it is safeclaw's.
///
/// A removal the engine already has under way (a safeclaw killed while it
/// waited for one, measured by the kill trials: 409 "removal … is already
/// in progress") is waited for, at most `REMOVAL_WAIT`: the caller goes on
/// only once the container is gone.
pub(crate) async fn force_remove(
    docker: &Docker,
    id: &str,
) -> std::result::Result<(), bollard::errors::Error> {
    let removed = docker
        .remove_container(
            id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await;
    let in_progress = matches!(
        &removed,
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, message })
            if message.contains("already in progress")
    );
    if !in_progress {
        return removed;
    }
    let began = std::time::Instant::now();
    while began.elapsed() < REMOVAL_WAIT {
        match docker.inspect_container(id, None).await {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(()),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    removed
}

/// How long a removal the engine already has under way is waited for.
const REMOVAL_WAIT: Duration = Duration::from_secs(30);

/// The created container as the engine recorded it must be as hardened as
/// asked: an engine that drops a limit without an error gets no key.
pub(crate) async fn check_recorded(
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
    let weakened = spec::weakened(asked, &recorded);
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
    let Some((id, running)) = made_by_safeclaw(docker, name).await? else {
        return Ok(());
    };
    if running {
        return Err(Error::usage(format!("{name} is already running"))
            .with_hint("`safeclaw status` shows it; `safeclaw stop` stops it"));
    }
    force_remove(docker, &id)
        .await
        .map_err(|e| engine::failed("removing the old container", name, e))
}

/// The container `name`, if there is one, by the ID inspected (never
/// whatever holds the name by now) and whether it runs; one safeclaw did
/// not make (without its label) is an error: it may be someone's.
async fn made_by_safeclaw(docker: &Docker, name: &str) -> Result<Option<(String, bool)>> {
    let c = match docker.inspect_container(name, None).await {
        Ok(c) => c,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => return Ok(None),
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
    let running = c.state.as_ref().and_then(|s| s.running).unwrap_or(false);
    let id =
        c.id.ok_or_else(|| Error::new(Class::Engine, format!("the engine gave no ID for {name}")))?;
    Ok(Some((id, running)))
}

/// Ends the gateway `name` at once and removes it, its guard given no
/// chance to seal: the engine's forced removal is a SIGKILL. For a run
/// whose state must not become the vault's newest generation (an upgrade
/// that failed: docs/upgrade.md); checkpoints it sealed before stay as
/// kept generations. Only a container safeclaw made; none is no error.
pub fn discard(engine: &Engine, name: &str) -> Result<()> {
    let docker = engine.docker()?;
    engine.block_on(async {
        let Some((id, _)) = made_by_safeclaw(docker, name).await? else {
            return Ok(());
        };
        force_remove(docker, &id)
            .await
            .map_err(|e| engine::failed("removing", name, e))
    })
}

/// The image the container `name` was made from: the reference it was
/// asked for and the ID it ran; None without such a container.
pub fn image_of(engine: &Engine, name: &str) -> Result<Option<(String, String)>> {
    let docker = engine.docker()?;
    match engine.block_on(docker.inspect_container(name, None)) {
        Ok(c) => Ok(c.image.map(|id| {
            let reference = c.config.and_then(|c| c.image).unwrap_or_else(|| id.clone());
            (reference, id)
        })),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(engine::failed("inspecting", name, e)),
    }
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
    let line = protocol::key_line(key);
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
                match Status::parse(&line) {
                    Some(Status::Ready { .. }) => return Ok(()),
                    Some(Status::Failed(Failure::WrongKey)) => {
                        return Err(Error::new(
                            Class::WrongPassword,
                            format!("the guard in {name} refused the key: {}", Failure::WrongKey),
                        ))
                    }
                    Some(Status::Failed(why)) => {
                        return Err(Error::failure(format!("the guard in {name} failed: {why}"))
                            .with_hint("`safeclaw logs` shows the container's output"))
                    }
                    _ => {}
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

/// The ID of the container `name`, or what went wrong `doing` what.
pub fn id_of(engine: &Engine, name: &str, doing: &str) -> Result<String> {
    let inspected = engine
        .block_on(engine.docker()?.inspect_container(name, None))
        .map_err(|e| engine::failed(doing, name, e))?;
    inspected
        .id
        .ok_or_else(|| Error::new(Class::Engine, format!("the engine gave no ID for {name}")))
}

/// The container `name` as the engine describes it.
pub fn inspect(engine: &Engine, name: &str) -> Result<ContainerInspectResponse> {
    engine
        .block_on(engine.docker()?.inspect_container(name, None))
        .map_err(|e| engine::failed("inspecting", name, e))
}

/// The container's state, or the default (nothing known) when the engine
/// has no such container or does not say.
fn state(engine: &Engine, name_or_id: &str) -> Result<ContainerState> {
    let inspected = engine.block_on(engine.docker()?.inspect_container(name_or_id, None));
    Ok(inspected.ok().and_then(|c| c.state).unwrap_or_default())
}

/// Whether a container `name` exists and runs (false when there is none).
pub fn is_running(engine: &Engine, name: &str) -> Result<bool> {
    Ok(state(engine, name)?.running.unwrap_or(false))
}

/// The exit code the container `id` ended with (-1 when the engine does
/// not say).
pub fn exit_code(engine: &Engine, id: &str) -> Result<i64> {
    Ok(state(engine, id)?.exit_code.unwrap_or(-1))
}

/// Stops the container within `STOP_BUDGET`: the guard drains the gateway
/// and seals; the engine kills what is left after the budget.
pub fn request_stop(engine: &Engine, id: &str, name: &str) -> Result<()> {
    engine.block_on(stop_in(engine.docker()?, id, name))
}

async fn stop_in(docker: &Docker, id: &str, name: &str) -> Result<()> {
    docker
        .stop_container(
            id,
            Some(
                StopContainerOptionsBuilder::new()
                    .t(STOP_BUDGET.as_secs() as i32)
                    .build(),
            ),
        )
        .await
        .map_err(|e| engine::failed("stopping", name, e))
}

/// Asks the guard for a checkpoint now (SIGUSR1), so that a change just
/// made is durable at once.
pub fn request_checkpoint(engine: &Engine, name: &str) -> Result<()> {
    engine
        .block_on(engine.docker()?.kill_container(
            name,
            Some(KillContainerOptionsBuilder::new().signal("SIGUSR1").build()),
        ))
        .map_err(|e| engine::failed("asking for a checkpoint in", name, e))
}

/// The generation the guard says it sealed, from the end of its output.
pub fn sealed_generation(engine: &Engine, id: &str) -> Result<Option<u64>> {
    let mut sealed = None;
    for status in statuses(engine, id, 50)? {
        if let Status::Sealed { generation } = status {
            sealed = Some(generation);
        }
    }
    Ok(sealed)
}

/// The newest checkpoint the guard reported: generation and pause.
pub fn last_checkpoint(engine: &Engine, id: &str) -> Result<Option<(u64, Duration)>> {
    let mut last = None;
    for status in statuses(engine, id, 200)? {
        if let Status::Checkpoint {
            generation, pause, ..
        } = status
        {
            last = Some((generation, pause));
        }
    }
    Ok(last)
}

/// What the guard said about the pinned skills this run (displaced,
/// shadowed, changed; docs/skills.md), oldest first, each once.
pub fn skill_reports(engine: &Engine, id: &str) -> Result<Vec<Status>> {
    let mut seen = Vec::new();
    for s in statuses(engine, id, SKILL_REPORT_TAIL)? {
        let about_skills = matches!(
            s,
            Status::SkillDisplaced { .. }
                | Status::SkillShadowed { .. }
                | Status::SkillChanged { .. }
        );
        if about_skills && !seen.contains(&s) {
            seen.push(s);
        }
    }
    Ok(seen)
}

/// Lines of the engine's log searched for the guard's skill reports: its
/// whole bounded log holds fewer (docs/container.md, "log").
const SKILL_REPORT_TAIL: usize = 100_000;

/// The guard's status lines among the last `tail` lines of the
/// container's standard output (the engine's log), oldest first.
fn statuses(engine: &Engine, id: &str, tail: usize) -> Result<Vec<Status>> {
    let docker = engine.docker()?;
    Ok(engine.block_on(async {
        let mut logs = docker.logs(
            id,
            Some(
                LogsOptionsBuilder::new()
                    .stdout(true)
                    .tail(&tail.to_string())
                    .build(),
            ),
        );
        let mut found = Vec::new();
        while let Some(Ok(out)) = logs.next().await {
            found.extend(out.to_string().lines().filter_map(Status::parse));
        }
        found
    }))
}

/// Streams the container's output until it exits; on Ctrl-C stops it (the
/// guard drains and seals). Returns whether the stop was ours.
pub fn follow_until_exit(engine: &Engine, id: &str, name: &str, printer: &Printer) -> Result<bool> {
    let docker = engine.docker()?;
    engine.block_on(async {
        let logs = super::exec::follow_logs_in(docker, id, name, true);
        tokio::pin!(logs);
        let mut stopping = false;
        loop {
            tokio::select! {
                r = &mut logs => { r?; return Ok(stopping); }
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if crate::interrupt::requested() && !stopping {
                        stopping = true;
                        printer.note("stopping: the gateway drains, then its state is sealed");
                        stop_in(docker, id, name).await?;
                    }
                }
            }
        }
    })
}

/// The name of a running container that has `source` (a host directory,
/// canonical) mounted, if any: a bot whose guard would seal into it.
pub fn running_with_mount(engine: &Engine, source: &Path) -> Result<Option<String>> {
    let running = engine
        .block_on(
            engine
                .docker()?
                .list_containers(None::<ListContainersOptions>),
        )
        .map_err(|e| Error::new(Class::Engine, format!("listing containers: {e}")))?;
    Ok(running.into_iter().find_map(|c| {
        let mounted = c
            .mounts
            .unwrap_or_default()
            .iter()
            .any(|m| m.source.as_deref().map(Path::new) == Some(source));
        mounted.then(|| {
            c.names
                .and_then(|n| n.first().cloned())
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string()
        })
    }))
}

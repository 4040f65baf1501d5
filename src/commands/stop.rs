//! `safeclaw stop` and `safeclaw status`.

use std::time::Duration;

use bollard::query_parameters::{LogsOptionsBuilder, StopContainerOptionsBuilder};
use futures_util::StreamExt;
use serde_json::json;

use crate::cli::{ContainerArgs, StatusArgs};
use crate::engine;
use crate::error::{Error, Result};
use crate::guard;
use crate::printer::Printer;

/// Time for the guard to stop the gateway (its drain budget is 30 s) and
/// seal, before the engine kills everything.
pub const STOP_BUDGET: Duration = Duration::from_secs(crate::constants::STOP_BUDGET_SECS as u64);

pub fn stop(args: ContainerArgs, printer: &Printer) -> Result<()> {
    let name = args.name;
    let spinner = printer.spinner("stopping and sealing");
    let sealed = engine::runtime()?.block_on(async {
        let docker = engine::connect().await?;
        request_stop(&docker, &name).await?;
        Ok::<_, Error>(sealed_generation(&docker, &name).await)
    });
    spinner.finish_and_clear();
    report_sealed(&name, sealed?, printer)
}

/// Stops the container within `STOP_BUDGET`: the guard drains the gateway
/// and seals; the engine kills what is left after the budget.
pub async fn request_stop(docker: &bollard::Docker, name: &str) -> Result<()> {
    docker
        .stop_container(
            name,
            Some(
                StopContainerOptionsBuilder::new()
                    .t(STOP_BUDGET.as_secs() as i32)
                    .build(),
            ),
        )
        .await
        .map_err(|e| engine::failed("stopping", name, e))
}

/// The generation the guard says it sealed, from the end of its output.
pub async fn sealed_generation(docker: &bollard::Docker, name: &str) -> Option<u64> {
    let mut logs = docker.logs(
        name,
        Some(LogsOptionsBuilder::new().stdout(true).tail("50").build()),
    );
    let mut sealed = None;
    while let Some(Ok(out)) = logs.next().await {
        for line in out.to_string().lines() {
            if let Some(g) = line.strip_prefix(guard::SEALED) {
                sealed = g.trim().parse::<u64>().ok();
            }
        }
    }
    sealed
}

/// The newest checkpoint the guard reported: generation and pause in ms.
async fn last_checkpoint(docker: &bollard::Docker, name: &str) -> Option<(u64, String)> {
    let mut logs = docker.logs(
        name,
        Some(LogsOptionsBuilder::new().stdout(true).tail("200").build()),
    );
    let mut last = None;
    while let Some(Ok(out)) = logs.next().await {
        for line in out.to_string().lines() {
            if let Some(rest) = line.strip_prefix(guard::CHECKPOINT) {
                let mut words = rest.split_whitespace();
                let generation = words.next().and_then(|g| g.parse().ok());
                let pause = words
                    .find_map(|w| w.strip_prefix("pause_ms="))
                    .map(str::to_string);
                if let (Some(g), Some(p)) = (generation, pause) {
                    last = Some((g, p));
                }
            }
        }
    }
    last
}

pub fn report_sealed(name: &str, sealed: Option<u64>, printer: &Printer) -> Result<()> {
    match sealed {
        Some(generation) => {
            printer.result(
                &format!("stopped {name}; state sealed as generation {generation}"),
                json!({ "ok": true, "name": name, "sealed_generation": generation }),
            );
            Ok(())
        }
        None => Err(
            Error::failure(format!("{name} stopped without sealing its state")).with_hint(
                "the previous generation of the vault is intact; `docker logs` shows what happened",
            ),
        ),
    }
}

pub fn status(args: StatusArgs, printer: &Printer) -> Result<()> {
    let name = args.container.name;
    // The vault's newest generation, from its header (no password needed).
    let vault_path = crate::paths::vault(&args.vault)?;
    let generation = crate::vault::VaultFile::open(&vault_path)
        .ok()
        .map(|v| v.header().generation);
    if let Some(g) = generation {
        crate::rollback::warn_if_older(&vault_path, g, printer);
    }
    let (inspected, health, described, checkpoint) = engine::runtime()?.block_on(async {
        let docker = engine::connect().await?;
        let inspected = docker
            .inspect_container(&name, None)
            .await
            .map_err(|e| engine::failed("inspecting", &name, e))?;
        let kind = engine::kind(&docker).await?;
        let health = super::exec::health(&docker, &name, &inspected, kind).await?;
        let described = engine::describe(&docker, engine::endpoint().ok().as_ref())
            .await
            .ok();
        Ok::<_, Error>((
            inspected,
            health,
            described,
            last_checkpoint(&docker, &name).await,
        ))
    })?;
    let (health, health_source) = health;
    let state = inspected.state.unwrap_or_default();
    let status = state
        .status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown".into());
    let image = inspected.config.and_then(|c| c.image).unwrap_or_default();
    let started = state.started_at.unwrap_or_default();
    let running = status == "running";
    let uptime = humantime::parse_rfc3339_weak(started.trim_end_matches('Z'))
        .ok()
        .or_else(|| humantime::parse_rfc3339(&started).ok())
        .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
        .filter(|_| running)
        .map(|d| d.as_secs());
    let restarts = inspected.restart_count.unwrap_or(0);
    let exit = state.exit_code.unwrap_or(0);
    let mut text = format!(
        "{name}: {status}, health {health}, image {image}, started {started}, restarts {restarts}"
    );
    if health_source == super::exec::HealthSource::RunNow {
        text.push_str(
            " (checked now: this Podman runs no health checks of its own without systemd)",
        );
    }
    if let Some((generation, pause)) = &checkpoint {
        text.push_str(&format!(
            ", last checkpoint generation {generation} (gateway paused {pause} ms)"
        ));
    }
    let at = engine::endpoint().ok();
    if let Some(at) = &at {
        text.push_str(&format!("\nengine {} ({})", at.url, at.origin));
        if let Some(d) = &described {
            text.push_str(&format!(": {d}"));
        }
    }
    if status == "exited" && exit != 0 {
        text.push_str(&format!(
            "\n{name} stopped with exit code {exit}: the engine cannot restart it (it cannot re-deliver the key); run `safeclaw start` and enter the password"
        ));
    }
    printer.result(
        &text,
        json!({ "ok": true, "name": name, "state": status, "health": health,
                "health_checked_now": health_source == super::exec::HealthSource::RunNow, "image": image,
                "started_at": started, "uptime_seconds": uptime, "restarts": restarts, "exit_code": exit,
                "vault": vault_path, "vault_generation": generation,
                "engine": at.map(|a| json!({ "url": a.url, "from": a.origin.to_string(),
                    "product": described.as_ref().map(|d| &d.product),
                    "image_store": described.as_ref().map(|d| &d.store),
                    "rootless": described.as_ref().map(|d| d.rootless) })),
                "last_checkpoint": checkpoint.map(|(g, p)| json!({"generation": g, "pause_ms": p})) }),
    );
    Ok(())
}

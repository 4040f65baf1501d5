//! Commands in a running container, as argv (never a shell string), with
//! OpenClaw's environment and the container's user; and the container's
//! output. What a container prints is its own (hostile): copied through,
//! or kept only within a bound.

use std::io::Write;

use bollard::container::LogOutput;
use bollard::exec::StartExecResults;
use bollard::models::ExecConfig;
use bollard::query_parameters::LogsOptionsBuilder;
use bollard::Docker;
use futures_util::{Stream, StreamExt};

use super::engine::{self, Engine};
use super::layout::{HOME_DIR, STATE_DIR};
use super::spec::EngineKind;
use crate::error::{Class, Error, Result};

/// The environment of every command run in the container: OpenClaw's
/// state dir and the gateway's home (nothing secret).
pub(crate) fn environment() -> Vec<String> {
    vec![
        format!("{}={STATE_DIR}", crate::env_vars::OPENCLAW_STATE_DIR),
        format!("HOME={HOME_DIR}"),
    ]
}

/// Runs `openclaw ARGS` in the container, streaming its output to ours;
/// returns its exit code. After a success that may have changed the
/// state, asks the guard for a checkpoint so the change is durable at once.
pub fn openclaw(engine: &Engine, name: &str, args: &[String], changes_state: bool) -> Result<i64> {
    let mut cmd = vec!["openclaw".to_string()];
    cmd.extend(args.iter().cloned());
    let code = run(engine, name, cmd, None, false)?;
    if code == 0 && changes_state {
        super::container::request_checkpoint(engine, name)?;
    }
    Ok(code)
}

/// Runs `cmd` (argv) in the running container `name` as its user, with
/// OpenClaw's environment, streaming its output to ours (all of it to
/// stderr with `all_to_stderr`: `--json` keeps stdout for the result);
/// `stdin`, if given, is written to it over the attach and closed (how
/// secrets reach a command without an argv or an environment). Returns
/// the exit code.
pub fn run(
    engine: &Engine,
    name: &str,
    cmd: Vec<String>,
    stdin: Option<&[u8]>,
    all_to_stderr: bool,
) -> Result<i64> {
    let docker = engine.docker()?;
    engine.block_on(async {
        let (id, output) = start_exec(docker, name, cmd, stdin).await?;
        if let Some(output) = output {
            copy_output(output, all_to_stderr).await?;
        }
        exec_exit_code(docker, name, &id).await
    })
}

/// Runs `cmd` like `run` and returns its exit code and at most
/// `limit` bytes of its standard output (what the container says is
/// hostile: bounded before it is kept). Its stderr is dropped.
pub async fn exec_capture(
    docker: &Docker,
    name: &str,
    cmd: Vec<String>,
    limit: usize,
) -> Result<(i64, Vec<u8>)> {
    let (id, output) = start_exec(docker, name, cmd, None).await?;
    let mut kept = Vec::new();
    if let Some(mut output) = output {
        while let Some(item) = output.next().await {
            let item =
                item.map_err(|e| Error::new(Class::Engine, format!("reading output: {e}")))?;
            if let LogOutput::StdOut { message } | LogOutput::Console { message } = item {
                let room = limit.saturating_sub(kept.len());
                kept.extend_from_slice(&message[..message.len().min(room)]);
            }
        }
    }
    Ok((exec_exit_code(docker, name, &id).await?, kept))
}

type ExecOutput = std::pin::Pin<
    Box<dyn Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>> + Send>,
>;

async fn start_exec(
    docker: &Docker,
    name: &str,
    cmd: Vec<String>,
    stdin: Option<&[u8]>,
) -> Result<(String, Option<ExecOutput>)> {
    let created = docker
        .create_exec(
            name,
            ExecConfig {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                attach_stdin: Some(stdin.is_some()),
                tty: Some(false),
                privileged: Some(false),
                env: Some(environment()),
                cmd: Some(cmd),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| engine::failed("running a command in", name, e))?;
    match docker
        .start_exec(&created.id, None)
        .await
        .map_err(|e| engine::failed("running a command in", name, e))?
    {
        StartExecResults::Attached { output, mut input } => {
            if let Some(bytes) = stdin {
                use tokio::io::AsyncWriteExt;
                input.write_all(bytes).await.map_err(|e| {
                    Error::new(
                        Class::Engine,
                        format!("writing to a command in {name}: {e}"),
                    )
                })?;
                let _ = input.shutdown().await;
            }
            drop(input);
            Ok((created.id, Some(output)))
        }
        StartExecResults::Detached => Ok((created.id, None)),
    }
}

async fn exec_exit_code(docker: &Docker, name: &str, id: &str) -> Result<i64> {
    let inspected = docker
        .inspect_exec(id)
        .await
        .map_err(|e| engine::failed("reading the command's status in", name, e))?;
    Ok(inspected.exit_code.unwrap_or(1))
}

/// Copies a container's output stream to our stdout and stderr, or all of
/// it to stderr (`--json` keeps stdout for the result alone).
async fn copy_output(
    mut output: impl Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>> + Unpin,
    all_to_stderr: bool,
) -> Result<()> {
    while let Some(item) = output.next().await {
        match item.map_err(|e| Error::new(Class::Engine, format!("reading output: {e}")))? {
            LogOutput::StdErr { message } => {
                let _ = std::io::stderr().write_all(&message);
            }
            LogOutput::StdOut { message } | LogOutput::Console { message } if all_to_stderr => {
                let _ = std::io::stderr().write_all(&message);
            }
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                let _ = std::io::stdout().write_all(&message);
                let _ = std::io::stdout().flush();
            }
            LogOutput::StdIn { .. } => {}
        }
    }
    Ok(())
}

/// Copies the container's output (since it started) to ours; with
/// `follow`, until it exits.
pub fn follow_logs(engine: &Engine, name: &str, follow: bool) -> Result<()> {
    engine.block_on(follow_logs_in(engine.docker()?, name, name, follow))
}

/// `follow_logs` of the container `id` (`name` is for messages).
pub(crate) async fn follow_logs_in(
    docker: &Docker,
    id: &str,
    name: &str,
    follow: bool,
) -> Result<()> {
    docker
        .inspect_container(id, None)
        .await
        .map_err(|e| engine::failed("reading the logs of", name, e))?;
    let stream = docker.logs(
        id,
        Some(
            LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .follow(follow)
                .build(),
        ),
    );
    copy_output(stream, false).await
}

/// How long `status` waits for the health check it runs itself: the
/// image's own time-out (3 s) with room for a slow engine.
const HEALTH_RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How the container's health was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthSource {
    /// The engine's own record of its periodic checks.
    Engine,
    /// The image's check, run once now by safeclaw: Podman runs health
    /// checks from systemd timers, so without systemd (inside a container,
    /// on some WSL set-ups) its record stays `starting` for ever.
    RunNow,
}

/// The container's health: the engine's record, or, where that record
/// cannot move (Podman, `starting`), the image's own check run once now.
pub fn health(
    engine: &Engine,
    name: &str,
    inspected: &bollard::models::ContainerInspectResponse,
) -> Result<(String, HealthSource)> {
    let kind = engine.kind()?;
    engine.block_on(health_in(engine.docker()?, name, inspected, kind))
}

/// `health`, for engine work of its own (tests wait on it).
pub async fn health_in(
    docker: &Docker,
    name: &str,
    inspected: &bollard::models::ContainerInspectResponse,
    kind: EngineKind,
) -> Result<(String, HealthSource)> {
    let state = inspected.state.clone().unwrap_or_default();
    let recorded = state
        .health
        .and_then(|h| h.status)
        .map(|s| s.to_string())
        .unwrap_or_else(|| "none".into());
    let running = state.running == Some(true);
    let podman = matches!(kind, EngineKind::Podman { .. });
    if !(podman && running && recorded == "starting") {
        return Ok((recorded, HealthSource::Engine));
    }
    let test = inspected
        .config
        .as_ref()
        .and_then(|c| c.healthcheck.as_ref())
        .and_then(|h| h.test.clone())
        .unwrap_or_default();
    let cmd = match test.split_first() {
        Some((kind, argv)) if kind == "CMD" && !argv.is_empty() => argv.to_vec(),
        Some((kind, line)) if kind == "CMD-SHELL" && line.len() == 1 => {
            vec!["/bin/sh".into(), "-c".into(), line[0].clone()]
        }
        _ => return Ok((recorded, HealthSource::Engine)),
    };
    // The check runs as the container's user, whom the agent can stop or
    // starve: bounded in time, and a failure to run it is an answer, not
    // an error of `status`. Its output is hostile too: only the exit code
    // is kept.
    let ran = tokio::time::timeout(HEALTH_RUN_TIMEOUT, exec_capture(docker, name, cmd, 0)).await;
    let status = match ran {
        Ok(Ok((0, _))) => "healthy",
        Ok(Ok(_)) => "unhealthy",
        Ok(Err(_)) => "unknown (the check could not run)",
        Err(_) => "unhealthy (the check did not finish)",
    };
    Ok((status.into(), HealthSource::RunNow))
}

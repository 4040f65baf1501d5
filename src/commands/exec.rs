//! `safeclaw exec`, `safeclaw pair` and `safeclaw logs`: OpenClaw's own CLI
//! inside the running container, as argv (never a shell string), and the
//! container's output.

use bollard::container::LogOutput;
use bollard::exec::StartExecResults;
use bollard::models::ExecConfig;
use bollard::query_parameters::LogsOptionsBuilder;
use bollard::Docker;
use futures_util::{Stream, StreamExt};
use std::io::Write;

use crate::cli::{ExecArgs, LogsArgs, PairCommand};
use crate::container_spec::{HOME_DIR, STATE_DIR};
use crate::engine;
use crate::error::{Class, Error, Result};
use crate::printer::Printer;

/// The channels OpenClaw pairs (`openclaw pairing`).
const CHANNELS: [&str; 5] = ["telegram", "discord", "signal", "slack", "whatsapp"];

pub fn exec(args: ExecArgs, _printer: &Printer) -> Result<()> {
    let code = run_openclaw(&args.container.name, &args.args, true)?;
    exit_with(code)
}

pub fn pair(command: PairCommand, _printer: &Printer) -> Result<()> {
    let changes_state = matches!(command, PairCommand::Approve { .. });
    let (name, argv) = match command {
        PairCommand::List { container, channel } => {
            let mut argv = vec!["pairing".to_string(), "list".to_string()];
            if let Some(c) = channel {
                argv.extend(["--channel".to_string(), checked_channel(&c)?]);
            }
            (container.name, argv)
        }
        PairCommand::Approve {
            container,
            channel,
            code,
        } => {
            let channel = checked_channel(&channel)?;
            let code = checked_code(&code)?;
            (
                container.name,
                vec!["pairing".into(), "approve".into(), channel, code],
            )
        }
    };
    let code = run_openclaw(&name, &argv, changes_state)?;
    exit_with(code)
}

fn checked_channel(c: &str) -> Result<String> {
    let c = c.to_ascii_lowercase();
    if CHANNELS.contains(&c.as_str()) {
        Ok(c)
    } else {
        Err(Error::usage(format!("unknown channel {c:?}"))
            .with_hint(format!("one of: {}", CHANNELS.join(", "))))
    }
}

/// Pairing codes are 8 letters or digits; anything else is refused before
/// the container is touched.
pub fn checked_code(code: &str) -> Result<String> {
    if code.len() == 8 && code.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(code.to_ascii_uppercase())
    } else {
        Err(Error::usage(format!("{code:?} is not a pairing code"))
            .with_hint("a pairing code is the 8 letters or digits the bot sent you"))
    }
}

fn exit_with(code: i64) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        // The tool's own exit code, passed through.
        std::process::exit(code.clamp(1, 255) as i32)
    }
}

/// Runs `openclaw ARGS` in the container, streaming its output; returns its
/// exit code. After a success that may have changed the state, asks the
/// guard for a checkpoint (SIGUSR1) so the change is durable at once.
fn run_openclaw(name: &str, args: &[String], checkpoint_after: bool) -> Result<i64> {
    let mut cmd = vec!["openclaw".to_string()];
    cmd.extend(args.iter().cloned());
    engine::runtime()?.block_on(async {
        let docker = engine::connect().await?;
        let code = exec_in(&docker, name, cmd, None, false).await?;
        if code == 0 && checkpoint_after {
            docker
                .kill_container(
                    name,
                    Some(
                        bollard::query_parameters::KillContainerOptionsBuilder::new()
                            .signal("SIGUSR1")
                            .build(),
                    ),
                )
                .await
                .map_err(|e| engine::failed("asking for a checkpoint in", name, e))?;
        }
        Ok(code)
    })
}

/// Runs `cmd` (argv) in the running container as its user, with OpenClaw's
/// environment, streaming its output to ours; `stdin`, if given, is written
/// to it over the attach and closed (how secrets reach a command without
/// an argv or an environment). Returns the exit code.
pub async fn exec_in(
    docker: &Docker,
    name: &str,
    cmd: Vec<String>,
    stdin: Option<&[u8]>,
    all_to_stderr: bool,
) -> Result<i64> {
    let (id, output) = start_exec(docker, name, cmd, stdin).await?;
    if let Some(output) = output {
        copy_output_to(output, all_to_stderr).await?;
    }
    exec_exit_code(docker, name, &id).await
}

/// Runs `cmd` like `exec_in` and returns its exit code and at most
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
                env: Some(vec![
                    format!("OPENCLAW_STATE_DIR={STATE_DIR}"),
                    format!("HOME={HOME_DIR}"),
                ]),
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

/// Copies a container's output stream to our stdout and stderr.
pub async fn copy_output(
    output: impl Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>> + Unpin,
) -> Result<()> {
    copy_output_to(output, false).await
}

/// `copy_output`, or everything to stderr (`--json` keeps stdout for the
/// result alone).
pub async fn copy_output_to(
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

pub fn logs(args: LogsArgs, _printer: &Printer) -> Result<()> {
    let name = args.container.name;
    engine::runtime()?.block_on(async {
        let docker = engine::connect().await?;
        follow_logs(&docker, &name, args.follow).await
    })
}

pub async fn follow_logs(docker: &Docker, name: &str, follow: bool) -> Result<()> {
    docker
        .inspect_container(name, None)
        .await
        .map_err(|e| engine::failed("reading the logs of", name, e))?;
    let stream = docker.logs(
        name,
        Some(
            LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .follow(follow)
                .build(),
        ),
    );
    copy_output(stream).await
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
pub async fn health(
    docker: &Docker,
    name: &str,
    inspected: &bollard::models::ContainerInspectResponse,
    engine: crate::container_spec::Engine,
) -> Result<(String, HealthSource)> {
    let state = inspected.state.clone().unwrap_or_default();
    let recorded = state
        .health
        .and_then(|h| h.status)
        .map(|s| s.to_string())
        .unwrap_or_else(|| "none".into());
    let running = state.running == Some(true);
    let podman = matches!(engine, crate::container_spec::Engine::Podman { .. });
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

//! An interactive command in a running container, through a real TTY:
//! our terminal in raw mode, keystrokes forwarded over the exec's attach,
//! the window size passed on at start and on every SIGWINCH. Used by
//! `safeclaw onboard` for OpenClaw's wizard. Exec output is not part of
//! the container's log, so what is typed (API keys in the wizard) reaches
//! no log.

use std::io::{Read, Write};

use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bollard::query_parameters::ResizeExecOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::error::{Class, Error, Result};
use crate::runtime::engine::{self, Engine};

/// Puts our terminal back as it was, whatever happens.
struct RawMode(Option<rustix::termios::Termios>);

impl RawMode {
    fn enter() -> Self {
        let stdin = rustix::stdio::stdin();
        let Ok(saved) = rustix::termios::tcgetattr(stdin) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        raw.make_raw();
        let _ = rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = rustix::termios::tcsetattr(
                rustix::stdio::stdin(),
                rustix::termios::OptionalActions::Now,
                saved,
            );
        }
    }
}

async fn resize(docker: &Docker, exec: &str) {
    if let Ok(size) = rustix::termios::tcgetwinsize(rustix::stdio::stdout()) {
        if size.ws_row > 0 && size.ws_col > 0 {
            let _ = docker
                .resize_exec(
                    exec,
                    ResizeExecOptionsBuilder::new()
                        .h(i32::from(size.ws_row))
                        .w(i32::from(size.ws_col))
                        .build(),
                )
                .await;
        }
    }
}

/// Runs `cmd` in the container `name` with a TTY; returns its exit code.
pub fn run(engine: &Engine, name: &str, cmd: Vec<String>) -> Result<i64> {
    engine.block_on(run_in(engine.docker()?, name, cmd))
}

async fn run_in(docker: &Docker, name: &str, cmd: Vec<String>) -> Result<i64> {
    let created = docker
        .create_exec(
            name,
            ExecConfig {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(true),
                privileged: Some(false),
                env: Some({
                    let mut env = super::exec::environment();
                    env.push(format!(
                        "TERM={}",
                        std::env::var(crate::env_vars::TERM).unwrap_or_else(|_| "xterm".into())
                    ));
                    env
                }),
                cmd: Some(cmd),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| engine::failed("running a command in", name, e))?;
    let started = docker
        .start_exec(
            &created.id,
            Some(StartExecOptions {
                detach: false,
                tty: true,
                output_capacity: None,
            }),
        )
        .await
        .map_err(|e| engine::failed("running a command in", name, e))?;
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = started
    else {
        return Err(Error::new(Class::Engine, "the engine did not attach"));
    };
    let raw = RawMode::enter();
    resize(docker, &created.id).await;
    // Our stdin is read on a thread of its own (blocking reads); it may
    // outlive the command by one keystroke, which is then dropped.
    // Keystrokes carry what the wizard asks for (API keys, tokens): read
    // from fd 0 directly (std's `Stdin` buffer is never wiped) and passed
    // on in zeroizing buffers.
    let (tx, mut keys) = tokio::sync::mpsc::channel::<zeroize::Zeroizing<Vec<u8>>>(16);
    std::thread::spawn(move || {
        let mut buf = zeroize::Zeroizing::new([0u8; 1024]);
        loop {
            match crate::password::RawStdin.read(&mut buf[..]) {
                Ok(0) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
                Ok(n) => {
                    if tx
                        .blocking_send(zeroize::Zeroizing::new(buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        .map_err(|e| Error::failure(format!("watching the terminal size: {e}")))?;
    let mut stdout = std::io::stdout();
    loop {
        tokio::select! {
            item = output.next() => match item {
                Some(Ok(out)) => {
                    let _ = stdout.write_all(&out.into_bytes());
                    let _ = stdout.flush();
                }
                Some(Err(e)) => {
                    drop(raw);
                    return Err(Error::new(Class::Engine, format!("reading output: {e}")));
                }
                None => break,
            },
            Some(bytes) = keys.recv() => {
                if input.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            _ = winch.recv() => resize(docker, &created.id).await,
        }
    }
    drop(raw);
    let inspected = docker
        .inspect_exec(&created.id)
        .await
        .map_err(|e| engine::failed("reading the command's status in", name, e))?;
    Ok(inspected.exit_code.unwrap_or(1))
}

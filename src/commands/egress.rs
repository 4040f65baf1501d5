//! `safeclaw egress serve`: the egress proxy, in its own hardened
//! container (docs/egress.md). Its argv holds the policy: destinations are
//! not secrets, and the engine's inspect shows what the proxy enforces.
//! The credential broker's secrets (`--broker`) come on stdin, never in
//! argv or the environment (docs/broker.md).

use std::io::Write;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use crate::cli::{EgressRelayArgs, EgressServeArgs};
use crate::egress::address::Cidr;
use crate::egress::forward::Broker;
use crate::egress::handoff;
use crate::egress::log_file::Writer;
use crate::egress::policy::{self, Policy, Rule};
use crate::egress::proxy::{Proxy, Settings};
use crate::error::{Error, Result};
use crate::printer::Printer;
use crate::runtime::engine::Engine;

/// Resolves the arguments into the proxy's settings.
fn settings(args: &EgressServeArgs) -> Result<Settings> {
    if args.allow.len() > policy::MAX_RULES {
        return Err(Error::usage(format!(
            "at most {} --allow rules",
            policy::MAX_RULES
        )));
    }
    let rules = args
        .allow
        .iter()
        .map(|r| Rule::parse(r).map_err(Error::usage))
        .collect::<Result<Vec<_>>>()?;
    if args.refuse.len() > policy::MAX_RULES {
        return Err(Error::usage(format!(
            "at most {} --refuse ranges",
            policy::MAX_RULES
        )));
    }
    let refuse = args
        .refuse
        .iter()
        .map(|c| {
            Cidr::parse(c)
                .ok_or_else(|| Error::usage(format!("--refuse {c:?} is not ADDR[/PREFIX]")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Settings {
        policy: Policy { open: false, rules },
        refuse,
        max_tunnels: usize::from(args.max_tunnels),
        broker: None,
        hosts: Vec::new(),
    })
}

/// How long `--broker` waits for the host's hand-off on stdin.
const HANDOFF_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The broker's secrets, read from stdin (all of it, at most
/// `handoff::MAX_LEN` bytes, within `timeout`) into zeroizing memory. No
/// hand-off (nothing written, stdin closed at once as after an engine
/// restart, or too late) is not an error: the proxy serves, and its broker
/// answers 503, said here. The reading thread is left behind on timeout;
/// it holds nothing yet.
fn read_handoff(
    input: impl std::io::Read + Send + 'static,
    timeout: std::time::Duration,
) -> Result<Option<Broker>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = crate::password::read_all_zeroizing(input, handoff::MAX_LEN + 1);
        let _ = tx.send(r);
    });
    let none = |why: &str| {
        eprintln!("safeclaw egress serve: {why}: the broker holds no secrets and answers 503");
        Ok(None)
    };
    let blob = match rx.recv_timeout(timeout) {
        Ok(Ok(blob)) => blob,
        Ok(Err(e)) => {
            return Err(Error::failure(format!(
                "reading the broker's hand-off from stdin: {e}"
            )))
        }
        Err(_) => return none("no hand-off on stdin in time"),
    };
    if blob.is_empty() {
        return none("no hand-off on stdin");
    }
    // The reasons name the rule broken, never a byte of the blob.
    let handoff = handoff::decode(&blob)
        .map_err(|why| Error::failure(format!("the broker's hand-off: {why}")))?;
    let broker = Broker::new(handoff)
        .map_err(|why| Error::failure(format!("the broker's hand-off: {why}")))?;
    Ok(Some(broker))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::failure(format!("starting the async runtime: {e}")))
}

/// One line per decision, flushed: the engine's log of the proxy's
/// container is the egress log; with a log file, also appended there (the
/// guard keeps it in the vault).
fn log_line(event: &crate::egress::proxy::Event, file: &std::sync::Mutex<Option<Writer>>) {
    if let Ok(line) = serde_json::to_string(event) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        if let Ok(mut guard) = file.lock() {
            if let Some(w) = guard.as_mut() {
                // A file that cannot be written loses the vault's copy, not
                // the decision (the engine's log has it).
                let _ = w.line(&line);
            }
        }
    }
}

pub fn serve(args: EgressServeArgs) -> Result<()> {
    let mut settings = settings(&args)?;
    if args.broker {
        // Before a secret exists in this process: no core dumps, no ptrace
        // and no /proc/PID/mem for processes of the same uid.
        crate::no_dumps::forbid()?;
        // Read before the socket is bound: the host waits for the socket,
        // so a client never meets a broker still waiting for its secrets.
        // fd 0 directly into one zeroizing buffer: std's `Stdin` would
        // keep a copy in its never-wiped global buffer.
        settings.broker = read_handoff(crate::password::RawStdin, HANDOFF_TIMEOUT)?;
    }
    let secrets: Option<Vec<serde_json::Value>> = args.broker.then(|| {
        settings
            .broker
            .iter()
            .flat_map(|b| &b.routes)
            .map(|r| serde_json::json!({ "name": r.name, "host": r.host, "port": r.port }))
            .collect()
    });
    let shown: Vec<String> = settings
        .policy
        .rules
        .iter()
        .map(ToString::to_string)
        .collect();
    let proxy = Proxy::new(settings);
    let file = std::sync::Arc::new(std::sync::Mutex::new(
        args.log_file
            .as_deref()
            .map(|p| Writer::open(p).map_err(|e| Error::io("opening", p, e)))
            .transpose()?,
    ));
    let log_line = move |e: &crate::egress::proxy::Event| log_line(e, &file);
    runtime()?.block_on(async {
        if let Some(path) = &args.socket {
            // The proxy's own directory: a socket left by an earlier run
            // is replaced, anything else there is an error.
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_socket() => {
                    std::fs::remove_file(path).map_err(|e| Error::io("removing", path, e))?
                }
                Ok(_) => {
                    return Err(Error::usage(format!(
                        "{} exists and is not a socket",
                        path.display()
                    )))
                }
                Err(_) => {}
            }
            let listener = tokio::net::UnixListener::bind(path)
                .map_err(|e| Error::io("listening on", path, e))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io("restricting", path, e))?;
            announce(
                &path.display().to_string(),
                &shown,
                &args.refuse,
                secrets.as_deref(),
            );
            return proxy
                .serve_unix(listener, log_line)
                .await
                .map_err(|e| Error::io("accepting on", path, e));
        }
        let at = args.listen.expect("clap requires --listen or --socket");
        let listener = tokio::net::TcpListener::bind(at)
            .await
            .map_err(|e| Error::failure(format!("listening on {at}: {e}")))?;
        announce(&at.to_string(), &shown, &args.refuse, secrets.as_deref());
        proxy
            .serve(listener, log_line)
            .await
            .map_err(|e| Error::failure(format!("accepting on {at}: {e}")))
    })
}

/// The proxy's first line: where it listens, its policy and, with
/// `--broker`, which secrets it holds for which hosts (never a value).
fn announce(
    listening: &str,
    allow: &[String],
    refuse: &[String],
    secrets: Option<&[serde_json::Value]>,
) {
    let mut line = serde_json::json!({ "listening": listening, "allow": allow, "refuse": refuse });
    if let Some(secrets) = secrets {
        line["secrets"] = serde_json::Value::from(secrets);
    }
    println!("{line}");
}

pub fn relay(args: EgressRelayArgs) -> Result<()> {
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| Error::failure(format!("listening on {}: {e}", args.listen)))?;
        crate::egress::relay::relay(listener, args.socket.clone(), RELAY_MAX)
            .await
            .map_err(|e| Error::failure(format!("accepting on {}: {e}", args.listen)))
    })
}

/// Connections the relay carries at once (the proxy caps tunnels itself).
const RELAY_MAX: usize = 512;

use crate::egress::network::MAX_LOG_LINE;

/// 9999-12-31T23:59:59Z in milliseconds.
const LAST_SHOWN_MS: u64 = 253_402_300_799_000;

/// One decision as `egress log` shows it.
pub(super) fn shown(event: &serde_json::Value) -> Option<String> {
    // Past year 9999 the time cannot be written as RFC 3339 (and a
    // record brought in with `vault create --with-records` could say so).
    let ms = event
        .get("time_ms")?
        .as_u64()
        .filter(|&ms| ms < LAST_SHOWN_MS)?;
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    let decision = event.get("decision")?.as_str()?;
    let host = event.get("host")?.as_str()?;
    let port = event.get("port")?.as_u64()?;
    let reason = event.get("reason").and_then(|r| r.as_str()).unwrap_or("");
    let mut line = format!(
        "{} {decision:<7} {host}:{port}",
        humantime::format_rfc3339_seconds(time)
    );
    if decision == "allowed" {
        let (sent, received) = (
            event.get("sent").and_then(|v| v.as_u64()).unwrap_or(0),
            event.get("received").and_then(|v| v.as_u64()).unwrap_or(0),
        );
        line.push_str(&format!(" sent {sent} B, received {received} B"));
    }
    if !reason.is_empty() {
        line.push_str(&format!(" ({reason})"));
    }
    Some(line)
}

/// `safeclaw egress log`: the proxy container's log, one decision a line
/// (`--json`: the lines as the proxy wrote them).
pub fn log(gateway: &str, follow: bool, engine: &Engine, printer: &Printer) -> Result<()> {
    use bollard::query_parameters::LogsOptionsBuilder;
    use futures_util::StreamExt;
    let proxy = crate::egress::network::proxy_name(gateway);
    let json = printer.json;
    let docker = engine.docker()?;
    engine.block_on(async {
        let c = docker
            .inspect_container(&proxy, None)
            .await
            .map_err(|e| crate::runtime::engine::failed("reading the egress log of", &proxy, e))?;
        // Another container of that name would show forged decisions.
        if !crate::egress::network::is_proxy_of(&c, gateway) {
            return Err(
                Error::usage(format!("{proxy} is not the egress proxy of {gateway}"))
                    .with_hint("it lacks safeclaw's label; `docker inspect` shows what it is"),
            );
        }
        let mut stream = docker.logs(
            &proxy,
            Some(
                LogsOptionsBuilder::new()
                    .stdout(true)
                    .follow(follow)
                    .build(),
            ),
        );
        let mut pending: Vec<u8> = Vec::new();
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                Error::new(
                    crate::error::Class::Engine,
                    format!("reading the log of {proxy}: {e}"),
                )
            })?;
            pending.extend_from_slice(&chunk.into_bytes());
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let Ok(event) = serde_json::from_slice::<serde_json::Value>(&line) else {
                    continue;
                };
                if event.get("decision").is_none() {
                    continue;
                }
                let text = if json {
                    Some(event.to_string())
                } else {
                    shown(&event)
                };
                if let Some(text) = text {
                    let _ = writeln!(out, "{text}");
                    let _ = out.flush();
                }
            }
            if pending.len() > MAX_LOG_LINE {
                pending.clear();
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::time::Duration;

    #[test]
    fn the_hand_off_is_read_whole_or_the_broker_holds_nothing() {
        let wait = Duration::from_secs(10);
        let blob = handoff::encode(&handoff::tests::two_routes()).to_vec();
        let broker = read_handoff(Cursor::new(blob.clone()), wait)
            .unwrap()
            .unwrap();
        let names: Vec<&str> = broker.routes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["anthropic", "telegram"]);
        // Stdin closed at once (an engine's restart): no secrets, served.
        assert!(read_handoff(std::io::empty(), wait).unwrap().is_none());
        // Nothing in time: the same.
        struct Silent;
        impl std::io::Read for Silent {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_secs(2));
                Ok(0)
            }
        }
        assert!(read_handoff(Silent, Duration::from_millis(50))
            .unwrap()
            .is_none());
        // A broken one is an error that names the rule, never a secret.
        let mut bad = blob.clone();
        bad.push(0);
        let err = read_handoff(Cursor::new(bad), wait)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("after the end") && !err.contains("REAL"),
            "{err}"
        );
        let err = read_handoff(Cursor::new(vec![b'x'; handoff::MAX_LEN + 5]), wait)
            .unwrap_err()
            .to_string();
        assert!(err.contains("too long"), "{err}");
    }
}

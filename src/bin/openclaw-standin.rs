//! A stand-in for OpenClaw in fast tests: the parts of its behaviour that
//! safeclaw relies on, and nothing else.
//!
//! - `gateway run`: serves `GET /healthz` on 127.0.0.1:18789, writes a line
//!   to `$OPENCLAW_STATE_DIR/gateway.log` at start (and `in IMAGE`, the
//!   test image it runs in) and every second (state that must survive a
//!   stop), and exits 0 on SIGTERM after writing `clean-stop` into it. In
//!   an image marked `/etc/openclaw-standin-unhealthy` it writes
//!   `migrated` into the state and never serves.
//! - `pairing list [--channel C]` / `pairing approve CHANNEL CODE`: reads
//!   and edits `$OPENCLAW_STATE_DIR/pairing.json` as the real one edits its
//!   SQLite: a pending code becomes an allowed entry; a missing code exits 1.
//! - `pairing request CHANNEL CODE`: adds a pending request, as the
//!   Telegram channel does on `/start` (tests use it).
//! - `onboard ARGS…`: writes `openclaw.json` recording its args (exits 1
//!   when one of them is `--fail`, as a bad flag would); without args, a
//!   wizard that asks for an API key, then prints its terminal size.
//! - `models auth paste-api-key --provider P`: the key from stdin into
//!   `auth.json`; `config set KEY VALUE`: into `config.json`.
//! - `security audit --json`: one info finding, in the real one's shape;
//!   exit 1 with no report when `$OPENCLAW_STATE_DIR/audit-breaks` says
//!   `yes`.
//! - `--version`.
//!
//! And three network probes for the egress tests (not OpenClaw's):
//! - `net serve PORT NAME`: on every connection to 0.0.0.0:PORT, writes
//!   `NAME\n`, then echoes what it reads until the client closes;
//! - `net dial HOST PORT`: a direct TCP connection (3 s); exit 0 if it
//!   opened, 1 if not;
//! - `net via PROXY_HOST:PORT HOST:PORT [SNI|-]`: `CONNECT` through the
//!   proxy, then a TLS ClientHello naming HOST (or SNI; `-`: plain bytes
//!   instead), prints the proxy's status line and the first line the
//!   destination sends; exit 0 when tunnelled, 1 when refused, 3 when the
//!   proxy cannot be reached, 4 when the tunnel closed before the
//!   destination spoke.
//!
//! And two for the broker's tests (docs/broker.md):
//! - `net https-serve PORT CERT KEY`: an HTTPS upstream on 0.0.0.0:PORT
//!   with the certificate chain and key of the PEM files; prints each
//!   request's head as a JSON line (`{"upstream_head": …}`) and answers
//!   as the Telegram Bot API (`/bot…/getMe`, `getUpdates`, others) or, for
//!   any other path, as a model API refusing the key (401); `/echo…`
//!   answers with the request's head as its body;
//! - `net http ADDR METHOD PATH [NAME:VALUE…]`: one plain HTTP/1.1
//!   request to ADDR (the relay), prints the status line and the body;
//!   exit 0 on a 2xx, 1 on another status, 3 without a connection.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn state_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("OPENCLAW_STATE_DIR").unwrap_or_else(|| "/state".into()))
}

fn append(line: &str) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir().join("gateway.log"))
        .expect("state dir writable");
    writeln!(f, "{line}").expect("state dir writable");
}

fn gateway() -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).expect("signal handler");
    }
    // A test image names itself (tests/common::build_standin), and one
    // made to fail an upgrade (tests/upgrade.rs) carries a second mark:
    // it rewrites the state, as a newer OpenClaw's migration would, and
    // never answers /healthz.
    let image = fs::read_to_string("/etc/safeclaw-test-image-name").ok();
    let broken = fs::symlink_metadata("/etc/openclaw-standin-unhealthy").is_ok();
    if broken {
        fs::write(
            state_dir().join("migrated"),
            "by a release that never got healthy\n",
        )
        .expect("state dir writable");
        append("gateway started");
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        return 0;
    }
    let listener = TcpListener::bind("127.0.0.1:18789").expect("port 18789 free");
    listener.set_nonblocking(true).expect("nonblocking");
    append("gateway started");
    if let Some(image) = image {
        append(&format!("in {image}"));
    }
    println!("[gateway] listening on 127.0.0.1:18789");
    let mut ticks = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if let Ok((mut conn, _)) = listener.accept() {
            let _ = conn.set_nonblocking(false);
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if request.starts_with("GET /healthz") {
                ("200 OK", r#"{"ok":true,"status":"live"}"#)
            } else {
                ("404 Not Found", r#"{"ok":false}"#)
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
        ticks += 1;
        if ticks % 50 == 0 {
            append(&format!("tick {}", ticks / 50));
        }
    }
    append("clean-stop");
    println!("[gateway] stopped");
    0
}

fn pairing_file() -> PathBuf {
    state_dir().join("pairing.json")
}

fn load_pairing() -> serde_json::Value {
    fs::read(pairing_file())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({"pending": [], "allowed": []}))
}

fn pairing(args: &[String]) -> i32 {
    let mut pairing = load_pairing();
    match args.first().map(String::as_str) {
        Some("list") => {
            println!(
                "{}",
                serde_json::to_string_pretty(&pairing["pending"]).unwrap()
            );
            0
        }
        // What the Telegram channel does on /start (tests only).
        Some("request") if args.len() == 3 => {
            let request = serde_json::json!({"channel": args[1], "code": args[2]});
            pairing["pending"].as_array_mut().unwrap().push(request);
            fs::write(pairing_file(), serde_json::to_vec_pretty(&pairing).unwrap()).unwrap();
            0
        }
        Some("approve") if args.len() == 3 => {
            let (channel, code) = (&args[1], &args[2]);
            let pending = pairing["pending"].as_array().cloned().unwrap_or_default();
            let Some(i) = pending
                .iter()
                .position(|p| p["code"] == code.as_str() && p["channel"] == channel.as_str())
            else {
                eprintln!("No pending pairing request found for code: {code}");
                return 1;
            };
            let request = pairing["pending"].as_array_mut().unwrap().remove(i);
            pairing["allowed"].as_array_mut().unwrap().push(request);
            fs::write(pairing_file(), serde_json::to_vec_pretty(&pairing).unwrap()).unwrap();
            println!("Approved {channel} sender for code {code}");
            0
        }
        _ => {
            eprintln!("usage: openclaw pairing list | approve CHANNEL CODE");
            2
        }
    }
}

fn onboard(args: &[String]) -> i32 {
    if args.is_empty() {
        // The wizard: asks on its terminal (TTY tests), then reports the
        // size its terminal has by then (a resize follows the exec's start).
        print!("API key: ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).is_err() {
            return 1;
        }
        let size = rustix::termios::tcgetwinsize(rustix::stdio::stdout())
            .map(|w| format!("{}x{}", w.ws_col, w.ws_row))
            .unwrap_or_else(|_| "no-tty".into());
        print!("wizard on a {size} terminal\r\n");
        let auth = serde_json::json!({ "wizard": line.trim_end() });
        fs::write(state_dir().join("auth.json"), auth.to_string()).expect("state dir writable");
    }
    if args.iter().any(|a| a == "--fail") {
        eprintln!("openclaw stand-in: onboarding failed as asked");
        return 1;
    }
    let config = serde_json::json!({ "onboarded": true, "args": args });
    fs::write(state_dir().join("openclaw.json"), config.to_string()).expect("state dir writable");
    println!("onboarded");
    0
}

fn paste_api_key(provider: &str) -> i32 {
    let mut key = String::new();
    std::io::stdin().read_to_string(&mut key).expect("stdin");
    let auth = serde_json::json!({ provider: key.trim_end() });
    fs::write(state_dir().join("auth.json"), auth.to_string()).expect("state dir writable");
    0
}

fn config_set(key: &str, value: &str) -> i32 {
    let path = state_dir().join("config.json");
    let mut config: serde_json::Value = fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    config[key] = serde_json::Value::from(value);
    fs::write(&path, config.to_string()).expect("state dir writable");
    0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("gateway") => gateway(),
        Some("pairing") => pairing(&args[1..]),
        Some("onboard") => onboard(&args[1..]),
        Some("models")
            if args.get(1..4)
                == Some(&["auth".into(), "paste-api-key".into(), "--provider".into()][..])
                && args.len() == 5 =>
        {
            paste_api_key(&args[4])
        }
        Some("config") if args.get(1).map(String::as_str) == Some("set") && args.len() == 4 => {
            config_set(&args[2], &args[3])
        }
        // The real one's shape (tests/fixtures/openclaw-security-audit-*.json):
        // one info finding, so the merge is visible.
        Some("security") if args.get(1..) == Some(&["audit".into(), "--json".into()][..]) => {
            // A state a release cannot read (tests/upgrade.rs): the audit
            // fails as the real one does on a config it cannot parse.
            let breaks = fs::read_to_string(state_dir().join("audit-breaks"));
            if breaks.is_ok_and(|b| b.trim() == "yes") {
                eprintln!("Error: config is invalid");
                1
            } else {
                println!(
                    "{}",
                    serde_json::json!({
                        "summary": { "critical": 0, "warn": 0, "info": 1 },
                        "findings": [{ "checkId": "summary.attack_surface", "severity": "info",
                                       "title": "Attack surface summary", "detail": "stand-in" }],
                    })
                );
                0
            }
        }
        Some("--version") => {
            println!("openclaw-standin 0.0.0");
            0
        }
        Some("net") => net(&args[1..]),
        Some("skills") if args.get(1..) == Some(&["list".into(), "--json".into()][..]) => {
            skills_list()
        }
        // What an agent's file tool does: writes TEXT at PATH, parents made.
        Some("write") if args.len() == 3 => {
            let path = std::path::Path::new(&args[1]);
            let made = path
                .parent()
                .map_or(Ok(()), fs::create_dir_all)
                .and_then(|()| fs::write(path, &args[2]));
            match made {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("openclaw stand-in: writing {}: {e}", path.display());
                    1
                }
            }
        }
        _ => {
            eprintln!("openclaw stand-in: unsupported arguments {args:?}");
            2
        }
    };
    std::process::exit(code);
}

fn net(args: &[String]) -> i32 {
    use std::io::{BufRead, BufReader};
    use std::net::{TcpStream, ToSocketAddrs};
    let timeout = Duration::from_secs(3);
    let connect = |to: &str| -> Option<TcpStream> {
        let addr = to.to_socket_addrs().ok()?.next()?;
        let s = TcpStream::connect_timeout(&addr, timeout).ok()?;
        s.set_read_timeout(Some(timeout)).ok()?;
        Some(s)
    };
    match args {
        [cmd, port, name] if cmd == "serve" => {
            let listener = TcpListener::bind(("0.0.0.0", port.parse().expect("a port")))
                .expect("the port is free");
            println!("serving {name} on {port}");
            for conn in listener.incoming().flatten() {
                let name = name.clone();
                std::thread::spawn(move || {
                    let mut conn = conn;
                    let _ = writeln!(conn, "{name}");
                    let mut buf = vec![0u8; 1 << 16];
                    while let Ok(n) = conn.read(&mut buf) {
                        if n == 0 || conn.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
            0
        }
        [cmd, host, port] if cmd == "dial" => match connect(&format!("{host}:{port}")) {
            Some(_) => {
                println!("connected to {host}:{port}");
                0
            }
            None => {
                println!("no connection to {host}:{port}");
                1
            }
        },
        [cmd, proxy, target, rest @ ..] if cmd == "via" && rest.len() <= 1 => {
            let host = target.rsplit_once(':').map_or(target.as_str(), |(h, _)| h);
            // What the tunnel starts with: a ClientHello naming the target
            // (or the name given), or with `-` plain bytes.
            let first = match rest.first().map(String::as_str) {
                Some("-") => b"plain\n".to_vec(),
                Some(name) => {
                    safeclaw::egress::tls::client_hello(&[safeclaw::egress::tls::sni(name)])
                }
                None => safeclaw::egress::tls::client_hello(&[safeclaw::egress::tls::sni(host)]),
            };
            let Some(mut s) = connect(proxy) else {
                println!("no proxy at {proxy}");
                return 3;
            };
            let _ = write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
            let mut r = BufReader::new(s);
            let mut status = String::new();
            let _ = r.read_line(&mut status);
            println!("{}", status.trim_end());
            loop {
                let mut line = String::new();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            if !status.starts_with("HTTP/1.1 200") {
                return 1;
            }
            let _ = r.get_mut().write_all(&first);
            let mut banner = String::new();
            let _ = r.read_line(&mut banner);
            println!("{}", banner.trim_end());
            // Tunnelled, then closed before the destination said anything:
            // the proxy refused what the tunnel carried.
            if banner.is_empty() {
                4
            } else {
                0
            }
        }
        [cmd, port, cert, key] if cmd == "https-serve" => https_serve(port, cert, key),
        [cmd, addr, method, path, headers @ ..] if cmd == "http" => {
            let Some(mut s) = connect(addr) else {
                println!("no connection to {addr}");
                return 3;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
            let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
            for h in headers {
                let (name, value) = h.split_once(':').expect("NAME:VALUE");
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("Content-Length: 0\r\n\r\n");
            let _ = s.write_all(head.as_bytes());
            let mut reply = Vec::new();
            let _ = s.read_to_end(&mut reply);
            let reply = String::from_utf8_lossy(&reply);
            let status = reply.lines().next().unwrap_or("").to_string();
            let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            println!("{status}\n{body}");
            if status.split(' ').nth(1).is_some_and(|c| c.starts_with('2')) {
                0
            } else {
                1
            }
        }
        _ => {
            eprintln!("openclaw stand-in: net serve PORT NAME | dial HOST PORT | via PROXY TARGET [SNI|-] | https-serve PORT CERT KEY | http ADDR METHOD PATH [NAME:VALUE…]");
            2
        }
    }
}

/// `net https-serve`: see the module's comment.
fn https_serve(port: &str, cert: &str, key: &str) -> i32 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .expect("a PEM certificate file")
        .map(|c| c.expect("a PEM certificate"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).expect("a PEM key file");
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("the certificate and its key"),
    );
    let listener =
        TcpListener::bind(("0.0.0.0", port.parse().expect("a port"))).expect("the port is free");
    println!("serving https on {port}");
    for conn in listener.incoming().flatten() {
        let config = config.clone();
        std::thread::spawn(move || {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
            let Ok(tls) = rustls::ServerConnection::new(config) else {
                return;
            };
            let mut stream = rustls::StreamOwned::new(tls, conn);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => return,
                }
            }
            let text = String::from_utf8_lossy(&head).into_owned();
            let sni = stream.conn.server_name().unwrap_or("").to_string();
            println!(
                "{}",
                serde_json::json!({ "upstream_head": text, "sni": sni })
            );
            let path = text.split(' ').nth(1).unwrap_or("/").to_string();
            let (status, body) = if path.starts_with("/echo") {
                ("200 OK", text.clone())
            } else if path.contains("/getMe") {
                (
                    "200 OK",
                    serde_json::json!({"ok": true, "result": {"id": 123456789, "is_bot": true,
                    "first_name": "Stand-in", "username": "standin_bot", "can_join_groups": true,
                    "can_read_all_group_messages": false, "supports_inline_queries": false}})
                    .to_string(),
                )
            } else if path.contains("/getUpdates") {
                std::thread::sleep(Duration::from_secs(1));
                ("200 OK", r#"{"ok":true,"result":[]}"#.to_string())
            } else if path.starts_with("/bot") {
                ("200 OK", r#"{"ok":true,"result":true}"#.to_string())
            } else {
                ("401 Unauthorized", r#"{"type":"error","error":{"type":"authentication_error","message":"stand-in upstream"}}"#.to_string())
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
            let _ = stream.flush();
            stream.conn.send_close_notify();
            let _ = stream.flush();
        });
    }
    0
}

/// `skills list --json` in OpenClaw's shape, for two of its tiers: the
/// managed skills (`<state>/skills/*`, links followed as OpenClaw does)
/// and the workspace's (`<state>/workspace/skills/*`), which rank higher;
/// names from the front matter, else the directory's.
fn skills_list() -> i32 {
    let mut found: std::collections::BTreeMap<String, &str> = Default::default();
    for (dir, source) in [
        (state_dir().join("skills"), "openclaw-managed"),
        (state_dir().join("workspace/skills"), "openclaw-workspace"),
    ] {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(md) = fs::read(e.path().join("SKILL.md")) else {
                continue;
            };
            let name = safeclaw::skills::bundle::front_matter_name(&md)
                .unwrap_or_else(|| e.file_name().to_string_lossy().into_owned());
            found.insert(name, source);
        }
    }
    let skills: Vec<serde_json::Value> = found
        .into_iter()
        .map(|(name, source)| {
            serde_json::json!({ "name": name, "source": source, "eligible": true, "disabled": false })
        })
        .collect();
    println!("{}", serde_json::json!({ "skills": skills }));
    0
}

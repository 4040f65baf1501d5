//! `safeclaw audit`: gathers what the checks in `audit/` read (files,
//! the vault header, the engine's inspect JSON, OpenClaw's own audit run
//! inside a safeclaw container), prints the report, and fails with exit
//! code 6 on a high finding. It reads; it never changes anything (not even
//! the rollback record).

use std::path::PathBuf;

use bollard::Docker;

use crate::audit::{self, container::Subject, Area, Finding, Report, Severity};
use crate::env_vars;
use crate::error::{Class, Error, Result};
use crate::printer::Printer;
use crate::runtime::engine::{self, Engine};
use crate::runtime::spec::EngineKind;

use super::settings::{self, Audit};

pub fn run(args: Audit, engine: &Engine, printer: &Printer) -> Result<()> {
    let home = match &args.home {
        Some(h) => h.clone(),
        None => crate::paths::home()?,
    };
    let vault = args
        .vault
        .clone()
        .unwrap_or_else(|| crate::paths::vault_in(&home));
    let guide = args.guide_dir.clone();
    let mut subjects = vec![
        format!("home {}", home.display()),
        format!("vault {}", vault.display()),
    ];
    let mut findings = audit::host::check_home(&home, rustix::process::getuid().as_raw());
    if let Some(guide) = &guide {
        subjects.push(format!("guide workspace {}", guide.display()));
        findings.extend(audit::host::check_guide(guide));
        findings.extend(audit::skills::check_guide(guide));
    }
    findings.extend(audit::vault::check(&vault, &home));

    match engine.docker() {
        Ok(docker) => {
            // Found once, for the subject line and the socket checks.
            let at = engine.endpoint();
            let described = engine.describe().ok();
            let what = described
                .as_ref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            subjects.push(match at {
                Some(at) => format!("engine {} ({}){what}", at.url, at.origin),
                None => format!("engine{what}"),
            });
            findings.extend(engine_findings(at, described.as_ref()));
            let name = args
                .container
                .clone()
                .unwrap_or_else(|| settings::NAME.into());
            let inspected = engine.block_on(docker.inspect_container(&name, None)).ok();
            if let Some(inspected) = inspected {
                subjects.push(format!("container {name}"));
                let podman = matches!(engine.kind(), Ok(EngineKind::Podman { .. }));
                // What the guard said about the pinned skills (its log):
                // read before the async part, which this would nest in.
                let managed = inspected
                    .config
                    .as_ref()
                    .and_then(|c| c.labels.as_ref())
                    .is_some_and(|l| l.contains_key(crate::runtime::spec::LABEL_MANAGED));
                let skill_reports = if managed {
                    crate::runtime::container::skill_reports(engine, &name).unwrap_or_default()
                } else {
                    Vec::new()
                };
                findings.extend(engine.block_on(container_findings(
                    docker,
                    podman,
                    &name,
                    args.openclaw,
                    &skill_reports,
                ))?);
            } else if args.container.is_some() {
                return Err(Error::usage(format!("no container named {name}"))
                    .with_hint("`docker ps -a` lists them; any container can be audited"));
            } else {
                findings.push(Finding::new(
                    "container.absent",
                    Area::Container,
                    Severity::Info,
                    "no container to audit",
                    format!("no container named {name}"),
                    "pass --container NAME to audit another one",
                    "safeclaw",
                ));
            }
        }
        Err(e) if args.container.is_some() => return Err(e),
        Err(e) => {
            findings.push(Finding::new(
                "host.engine-unreachable",
                Area::Host,
                Severity::Info,
                "no Docker engine answered: engine and container checks were skipped",
                e.message,
                "start the engine, or set DOCKER_HOST",
                "safeclaw",
            ));
            // How the environment says to reach the engine still counts:
            // a TCP engine without TLS is refused by `connect`, not fixed.
            let (docker_host, tls_verify) = engine_env();
            findings.extend(audit::host::check_engine(&audit::host::EngineFacts {
                docker_host: docker_host.as_deref(),
                tls_verify,
                socket: None,
                rootless: None,
            }));
        }
    }

    let report = Report::new(subjects, findings);
    printer.result(
        &report.render(printer.stdout_color()),
        serde_json::to_value(&report).expect("a report serializes"),
    );
    if report.passed() {
        Ok(())
    } else {
        Err(Error::new(
            Class::AuditFailed,
            format!("{} high-severity finding(s)", report.summary.high),
        ))
    }
}

/// DOCKER_HOST when set, and whether DOCKER_TLS_VERIFY asks for TLS.
fn engine_env() -> (Option<String>, bool) {
    let docker_host = std::env::var(env_vars::DOCKER_HOST)
        .ok()
        .filter(|h| !h.is_empty());
    let tls_verify = std::env::var_os(env_vars::DOCKER_TLS_VERIFY).is_some_and(|v| !v.is_empty());
    (docker_host, tls_verify)
}

fn engine_findings(
    at: Option<&crate::runtime::endpoint::Endpoint>,
    described: Option<&engine::Description>,
) -> Vec<Finding> {
    let (docker_host, tls_verify) = engine_env();
    // The socket actually used (a context's, a rootless one), not only
    // DOCKER_HOST's.
    let socket = at.and_then(|at| at.url.strip_prefix("unix://").map(PathBuf::from));
    audit::host::check_engine(&audit::host::EngineFacts {
        docker_host: docker_host.as_deref(),
        tls_verify,
        socket: socket.as_deref().filter(|p| p.exists()),
        rootless: described.map(|d| d.rootless),
    })
}

async fn container_findings(
    docker: &Docker,
    podman: bool,
    name: &str,
    run_openclaw: bool,
    skill_reports: &[crate::runtime::guard::protocol::Status],
) -> Result<Vec<Finding>> {
    let inspected = docker
        .inspect_container(name, None)
        .await
        .map_err(|e| engine::failed("inspecting", name, e))?;
    let running = inspected
        .state
        .as_ref()
        .and_then(|s| s.running)
        .unwrap_or(false);
    let inspect = serde_json::to_value(&inspected)
        .map_err(|e| Error::failure(format!("reading the inspect of {name}: {e}")))?;
    let image = match inspected.image.as_deref() {
        Some(id) => docker
            .inspect_image(id)
            .await
            .ok()
            .and_then(|i| serde_json::to_value(i).ok()),
        None => None,
    };
    // Added (1) or changed (0) paths of the writable layer; deletions (2)
    // hold no data.
    let changes: Vec<String> = docker
        .container_changes(name)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.kind != bollard::models::ChangeType::_2)
        .map(|c| c.path)
        .collect();
    let pinned = crate::image::pin::from_env()
        .ok()
        .flatten()
        .and_then(|p| p.read_record())
        .map(|r| r.image_ids().map(String::from).collect::<Vec<_>>());
    let subject = Subject {
        inspect: &inspect,
        image: image.as_ref(),
        changes: &changes,
        pinned_image_ids: pinned.as_deref(),
        podman,
    };
    let mut out = audit::container::check(&subject);
    out.extend(audit::container::check_image(&subject));
    out.extend(egress_findings(docker, &inspect).await?);
    out.extend(skill_findings(docker, name, &inspect, running, skill_reports).await);
    if running && audit::container::is_managed(&inspect) {
        out.extend(state_key_findings(docker, name).await);
        if run_openclaw {
            out.extend(openclaw_findings(docker, name).await);
        }
    }
    Ok(out)
}

/// The skill checks (docs/skills.md): of any container, whether it
/// installs skills from the network when it starts (its command line, and
/// the script its entrypoint names, read out of it without running
/// anything); of a safeclaw gateway, its pinned skills (`safeclaw
/// scan-skills` inside it when it runs, and the guard's reports).
async fn skill_findings(
    docker: &Docker,
    name: &str,
    inspect: &serde_json::Value,
    running: bool,
    reports: &[crate::runtime::guard::protocol::Status],
) -> Vec<Finding> {
    if audit::egress::is_proxy(inspect) {
        return Vec::new();
    }
    let mut out = audit::skills::check_commands(inspect);
    if !audit::container::is_managed(inspect) {
        for path in audit::skills::script_candidates(inspect) {
            if let Some(text) = read_script(docker, name, &path).await {
                out.extend(audit::skills::check_script(&path, &text));
            }
        }
        if audit::container::runs_openclaw(inspect) {
            out.extend(audit::skills::check_unmanaged(inspect));
        }
        return out;
    }
    let (scan, loaded) = if running {
        let loaded = if audit::skills::mounts_pinned_skills(inspect) {
            Some(openclaw_skills(docker, name).await)
        } else {
            None
        };
        (Some(scan_skills(docker, name).await), loaded)
    } else {
        (None, None)
    };
    out.extend(audit::skills::check_gateway(&audit::skills::Gathered {
        inspect,
        scan,
        reports,
        loaded,
    }));
    out
}

/// `safeclaw scan-skills /state /pinned-skills` in the running gateway:
/// its answer, or why there is none. Bounded like the key scan (the agent
/// can slow it, and writes what it reads).
async fn scan_skills(
    docker: &Docker,
    name: &str,
) -> std::result::Result<audit::skills::Scan, String> {
    let cmd = vec![
        crate::runtime::layout::SAFECLAW_IN_IMAGE.to_string(),
        "scan-skills".to_string(),
        crate::runtime::layout::STATE_DIR.to_string(),
        crate::skills::MOUNT.to_string(),
    ];
    let outcome = tokio::time::timeout(
        STATE_SCAN_TIMEOUT,
        crate::runtime::exec::exec_capture(docker, name, cmd, SKILL_SCAN_OUTPUT),
    )
    .await;
    match outcome {
        Ok(Ok((0, out))) => audit::skills::parse_scan(&out),
        Ok(Ok((code, _))) => Err(format!("exit code {code}")),
        Ok(Err(e)) => Err(e.message),
        Err(_) => Err(format!("no answer in {} s", STATE_SCAN_TIMEOUT.as_secs())),
    }
}

/// OpenClaw's `skills list --json` in the running gateway: what it loads,
/// in its own words, or why there is none. Bounded in time (the agent can
/// slow it) and in size.
async fn openclaw_skills(
    docker: &Docker,
    name: &str,
) -> std::result::Result<serde_json::Value, String> {
    let cmd = ["openclaw", "skills", "list", "--json"]
        .map(String::from)
        .to_vec();
    let outcome = tokio::time::timeout(
        STATE_SCAN_TIMEOUT,
        crate::runtime::exec::exec_capture(docker, name, cmd, SKILL_SCAN_OUTPUT * 4),
    )
    .await;
    match outcome {
        Ok(Ok((0, out))) => {
            // Its log lines may come first: the JSON is from the first `{`.
            let at = out.iter().position(|&b| b == b'{').unwrap_or(0);
            serde_json::from_slice(&out[at..]).map_err(|e| format!("not JSON: {e}"))
        }
        Ok(Ok((code, _))) => Err(format!("exit code {code}")),
        Ok(Err(e)) => Err(e.message),
        Err(_) => Err(format!("no answer in {} s", STATE_SCAN_TIMEOUT.as_secs())),
    }
}

/// Bytes of `scan-skills`' answer kept: 1000 found skills with long
/// paths fit; more is cut, and then no JSON (said, low).
const SKILL_SCAN_OUTPUT: usize = 1 << 20;

/// The file `path` in the container (running or not), through the
/// engine's archive API, when it is a regular file of at most
/// `skills::MAX_SCRIPT` bytes starting with `#!`: nothing in the container
/// runs. None otherwise, or on any error (the check is a hint).
async fn read_script(docker: &Docker, name: &str, path: &str) -> Option<Vec<u8>> {
    use futures_util::StreamExt;
    let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::new()
        .path(path)
        .build();
    let mut stream = docker.download_from_container(name, Some(options));
    // The tar header and the file, with room for a long-name entry.
    let most = audit::skills::MAX_SCRIPT + 4096;
    let mut tar = Vec::new();
    while let Some(chunk) = stream.next().await {
        tar.extend_from_slice(&chunk.ok()?);
        if tar.len() >= most {
            break;
        }
    }
    let mut archive = tar::Archive::new(&tar[..]);
    let mut entry = archive.entries().ok()?.next()?.ok()?;
    let size = entry.header().size().ok()?;
    if !entry.header().entry_type().is_file() || size > audit::skills::MAX_SCRIPT as u64 {
        return None;
    }
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut text).ok()?;
    text.starts_with(b"#!").then_some(text)
}

/// Real-looking keys in a safeclaw gateway's state (`safeclaw
/// scan-secrets` run inside it): what the agent can read and send out.
/// The container is the agent's, so its answer is a hint, not proof of
/// absence; a failure to run it is said (low).
async fn state_key_findings(docker: &Docker, name: &str) -> Vec<Finding> {
    let cmd = vec![
        crate::runtime::layout::SAFECLAW_IN_IMAGE.to_string(),
        "scan-secrets".to_string(),
        crate::runtime::layout::STATE_DIR.to_string(),
    ];
    // The agent can stop the scan (it runs as the agent's user): bounded.
    let outcome = tokio::time::timeout(
        STATE_SCAN_TIMEOUT,
        crate::runtime::exec::exec_capture(docker, name, cmd, 64 << 10),
    )
    .await;
    let lines = match outcome {
        Ok(Ok((0, out))) => out,
        Ok(Ok((code, _))) => {
            return vec![state_scan_unavailable(format!("exit code {code}"))];
        }
        Ok(Err(e)) => return vec![state_scan_unavailable(e.message)],
        Err(_) => {
            return vec![state_scan_unavailable(format!(
                "no answer in {} s",
                STATE_SCAN_TIMEOUT.as_secs()
            ))]
        }
    };
    let found = audit::secrets::parse_scan(&lines);
    if found.is_empty() {
        return Vec::new();
    }
    let evidence = found
        .iter()
        .take(10)
        .map(|(path, kind)| format!("{path}: {kind}"))
        .collect::<Vec<_>>()
        .join("; ");
    vec![Finding::new(
        "container.state-holds-a-key",
        Area::Container,
        Severity::High,
        "the gateway's state holds what looks like a real API key or bot token: the agent can read it and send it out",
        evidence,
        "`safeclaw secrets set NAME` keeps it in the vault for the egress proxy and OpenClaw gets a placeholder (docs/secrets.md); then rotate the key at the provider, since the agent may have read it",
        "docs/secrets.md",
    )]
}

/// How long the state scan may take: 1 GiB read at most, in seconds.
const STATE_SCAN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn state_scan_unavailable(why: String) -> Finding {
    Finding::new(
        "container.state-scan-unavailable",
        Area::Container,
        Severity::Low,
        "the gateway's state could not be searched for real keys",
        why,
        "an image older than this safeclaw lacks `safeclaw scan-secrets`: `safeclaw image build`",
        "docs/secrets.md",
    )
}

/// The egress checks: of the proxy itself when that is what is audited,
/// else of an OpenClaw gateway's way out, with its proxy (`<name>-egress`)
/// when there is one.
async fn egress_findings(docker: &Docker, inspect: &serde_json::Value) -> Result<Vec<Finding>> {
    if audit::egress::is_proxy(inspect) {
        return Ok(audit::egress::check_proxy(inspect));
    }
    if !audit::container::runs_openclaw(inspect) {
        return Ok(Vec::new());
    }
    // Only a gateway without a network of its own needs a proxy.
    if audit::egress::network_of(inspect) != audit::egress::Network::Isolated {
        return Ok(audit::egress::check_gateway(inspect, None));
    }
    // By the name the engine gave it (the audit may have named it by ID).
    let name = inspect
        .pointer("/Name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .trim_start_matches('/');
    let proxy_name = crate::egress::network::proxy_name(name);
    let proxy = match docker.inspect_container(&proxy_name, None).await {
        Ok(p) => Some(
            serde_json::to_value(&p)
                .map_err(|e| Error::failure(format!("reading the inspect of {proxy_name}: {e}")))?,
        ),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => None,
        // Not "missing": the engine did not say.
        Err(e) => return Err(engine::failed("inspecting", &proxy_name, e)),
    };
    Ok(audit::egress::check_gateway(inspect, proxy.as_ref()))
}

/// OpenClaw's own audit, from inside the container; a failure to run it
/// is itself reported (low), not fatal.
async fn openclaw_findings(docker: &Docker, name: &str) -> Vec<Finding> {
    let cmd = ["openclaw", "security", "audit", "--json"]
        .map(String::from)
        .to_vec();
    let outcome =
        crate::runtime::exec::exec_capture(docker, name, cmd, audit::openclaw::MAX_OUTPUT)
            .await
            .map_err(|e| e.message)
            .and_then(|(code, out)| match audit::openclaw::parse(&out) {
                Ok(found) => Ok(found),
                Err(why) => Err(format!("exit code {code}: {why}")),
            });
    outcome.unwrap_or_else(|why| {
        vec![Finding::new(
            "openclaw.audit-unavailable",
            Area::Openclaw,
            Severity::Low,
            "OpenClaw's own security audit could not be read",
            why,
            "run `safeclaw exec -- security audit` to see it",
            "openclaw security audit",
        )]
    })
}

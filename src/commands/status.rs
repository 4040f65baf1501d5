//! `safeclaw status`: the container's state, health, uptime, image and
//! engine, the vault's generation and the last checkpoint; and, plainly,
//! when a detached bot has died and needs the password again.

use serde_json::json;

use crate::error::Result;
use crate::printer::Printer;
use crate::runtime::engine::Engine;
use crate::runtime::exec::{self, HealthSource};
use crate::runtime::{container, guard::protocol};

use super::settings::Status;

/// The egress line: locked behind its proxy (and what it decided since
/// it was made: a denied connection is something inside trying to leave),
/// or open.
fn egress_summary(
    network: &str,
    counts: Option<&crate::egress::network::Counts>,
) -> (String, serde_json::Value) {
    if network != "none" {
        return (
            format!("open: the gateway is on the network {network:?} with a route to anywhere"),
            json!({ "locked": false, "network": network }),
        );
    }
    match counts {
        Some(c) => (
            format!(
                "locked: proxy {}, {} allowed and {} denied since start{}",
                if c.running { "running" } else { "NOT running (nothing gets out)" },
                c.allowed,
                c.denied,
                if c.denied > 0 {
                    " (`safeclaw egress log` shows what was refused)"
                } else {
                    ""
                }
            ),
            json!({ "locked": true, "proxy_running": c.running, "allowed": c.allowed, "denied": c.denied }),
        ),
        None => (
            "locked, but its proxy is missing: the gateway reaches nothing (`safeclaw stop`, then `safeclaw start`)".to_string(),
            json!({ "locked": true, "proxy_running": false }),
        ),
    }
}

/// Text from the engine's log as a terminal may show it: the gateway
/// shares that log and can print a line that reads like the guard's, so
/// control and direction-changing characters are escaped.
fn shown(text: &str) -> String {
    let bidi = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}');
    text.chars()
        .take(300)
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() || bidi(c) {
                c.escape_unicode().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// What the guard reported about the pinned skills, one line each.
fn skill_lines(reports: &[protocol::Status]) -> Vec<String> {
    use protocol::Status as S;
    reports
        .iter()
        .filter_map(|r| match r {
            S::SkillShadowed { name, path } => Some(format!(
                "skills: WARNING: the pinned skill {name} is shadowed by {} in the state (where OpenClaw ranks that one higher, a workspace's skills/ or .agents/skills/, it replaces the pinned skill; docs/skills.md)",
                shown(path)
            )),
            S::SkillChanged { name } => Some(format!(
                "skills: WARNING: the mounted copy of the pinned skill {name} no longer matches its hash (changed on the host); restart to restore it"
            )),
            S::SkillDisplaced { name, to } => Some(format!(
                "skills: at start, {name} in OpenClaw's managed skills was not the pinned one; moved to {}",
                shown(to)
            )),
            _ => None,
        })
        .collect()
}

pub fn run(args: Status, engine: &Engine, printer: &Printer) -> Result<()> {
    let name = args.name;
    // The vault's newest generation, from its header (no password needed).
    let vault_path = crate::paths::vault(&args.vault)?;
    let generation = crate::vault::VaultFile::open(&vault_path)
        .ok()
        .map(|v| v.header().generation);
    if let Some(g) = generation {
        crate::rollback::warn_if_older(&vault_path, g, printer);
    }
    let inspected = container::inspect(engine, &name)?;
    let egress = engine.block_on(crate::egress::network::counts(engine.docker()?, &name))?;
    let network = inspected
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.clone())
        .unwrap_or_default();
    let health = exec::health(engine, &name, &inspected)?;
    let described = engine.describe().ok();
    let checkpoint = container::last_checkpoint(engine, &name)?;
    let skills = container::skill_reports(engine, &name)?;
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
    if health_source == HealthSource::RunNow {
        text.push_str(
            " (checked now: this Podman runs no health checks of its own without systemd)",
        );
    }
    if let Some((generation, pause)) = &checkpoint {
        text.push_str(&format!(
            ", last checkpoint generation {generation} (gateway paused {} ms)",
            protocol::tenths_of_ms(*pause)
        ));
    }
    let (egress_text, egress_json) = egress_summary(&network, egress.as_ref());
    text.push_str(&format!("\negress {egress_text}"));
    for line in skill_lines(&skills) {
        text.push_str(&format!("\n{line}"));
    }
    let at = engine.endpoint();
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
                "health_checked_now": health_source == HealthSource::RunNow, "image": image,
                "started_at": started, "uptime_seconds": uptime, "restarts": restarts, "exit_code": exit,
                "vault": vault_path, "vault_generation": generation,
                "engine": at.map(|a| json!({ "url": a.url, "from": a.origin.to_string(),
                    "product": described.as_ref().map(|d| &d.product),
                    "image_store": described.as_ref().map(|d| &d.store),
                    "rootless": described.as_ref().map(|d| d.rootless) })),
                "egress": egress_json,
                "skills": skill_lines(&skills),
                "last_checkpoint": checkpoint.map(|(g, p)| json!({"generation": g, "pause_ms": protocol::tenths_of_ms(p)})) }),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_report_cannot_drive_the_terminal() {
        let line = skill_lines(&[protocol::Status::SkillShadowed {
            name: "acip".into(),
            path: "x\u{1b}]0;pwned\u{7}\u{202e}gpj.exe".into(),
        }]);
        assert!(
            !line[0].chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{line:?}"
        );
        assert!(line[0].contains("x\\u{1b}]0;pwned"), "{line:?}");
    }
}

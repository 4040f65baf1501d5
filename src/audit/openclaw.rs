//! OpenClaw's own `openclaw security audit --json`, run inside a safeclaw
//! container and merged into the report. Its shape, as measured with
//! OpenClaw 2026.9.6 (tests/fixtures/openclaw-security-audit-2026.9.6.json):
//! `{"summary": {...}, "findings": [{"checkId", "severity":
//! "critical"|"warn"|"info", "title", "detail", "remediation"?}]}`.
//! It comes from inside the container: hostile, so bounded and cleaned.

use serde::Deserialize;

use super::{Area, Finding, Severity};

/// More than this much output is not an audit report.
pub const MAX_OUTPUT: usize = 4 << 20;
const MAX_FINDINGS: usize = 500;
const MAX_TEXT: usize = 400;

#[derive(Deserialize)]
struct Report {
    findings: Vec<Item>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    check_id: String,
    severity: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    remediation: Option<String>,
}

/// One printable line of at most `MAX_TEXT` characters.
fn clean(s: &str) -> String {
    let line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_TEXT)
        .collect();
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// OpenClaw's findings as ours (`openclaw.CHECK_ID`): critical is high,
/// warn is medium, info is info.
pub fn parse(output: &[u8]) -> Result<Vec<Finding>, String> {
    let report: Report = serde_json::from_slice(output)
        .map_err(|e| format!("OpenClaw's audit output is not its JSON report: {e}"))?;
    if report.findings.len() > MAX_FINDINGS {
        return Err(format!(
            "OpenClaw reported {} findings (limit {MAX_FINDINGS})",
            report.findings.len()
        ));
    }
    let mut out = Vec::new();
    for item in report.findings {
        let id: String = item
            .check_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
            .take(80)
            .collect();
        let severity = match item.severity.as_str() {
            "critical" => Severity::High,
            "warn" | "warning" => Severity::Medium,
            "info" => Severity::Info,
            _ => Severity::Low,
        };
        out.push(Finding::new(
            &format!("openclaw.{id}"),
            Area::Openclaw,
            severity,
            &clean(&item.title),
            clean(&item.detail),
            &item
                .remediation
                .as_deref()
                .map(clean)
                .unwrap_or_else(|| "see OpenClaw's audit-checks page".into()),
            "openclaw security audit (docs.openclaw.ai/gateway/security/audit-checks)",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_report_maps_onto_findings() {
        let real = include_bytes!("../../tests/fixtures/openclaw-security-audit-2026.9.6.json");
        let found = parse(real).unwrap();
        let ids: Vec<(&str, Severity)> =
            found.iter().map(|f| (f.id.as_str(), f.severity)).collect();
        assert!(
            ids.contains(&("openclaw.gateway.loopback_no_auth", Severity::High)),
            "{ids:?}"
        );
        assert!(ids.contains(&("openclaw.gateway.http.no_auth", Severity::Medium)));
        assert!(ids.contains(&("openclaw.summary.attack_surface", Severity::Info)));
        assert!(found.iter().all(|f| !f.evidence.contains('\n')));
    }

    #[test]
    fn hostile_output_is_refused_or_cleaned() {
        assert!(parse(b"not json").is_err());
        assert!(parse(br#"{"findings": 3}"#).is_err());
        let odd = format!(
            r#"{{"findings":[{{"checkId":"a/../b\u001b[31m","severity":"critical","title":"t\u001b[2J","detail":"{}"}}]}}"#,
            "x".repeat(10_000)
        );
        let f = parse(odd.as_bytes()).unwrap();
        assert_eq!(f[0].id, "openclaw.a..b31m");
        assert!(!f[0].title.contains('\u{1b}'));
        assert!(f[0].evidence.len() <= MAX_TEXT);
    }
}

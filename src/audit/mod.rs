//! `safeclaw audit`: the security posture of a setup, as findings. Each
//! check is a pure function over what was gathered (an engine's inspect
//! JSON, file metadata, a vault header), so hostile or odd inputs are
//! tested without an engine; `commands/audit.rs` gathers and prints.
//!
//! Check ids are stable: scripts and docs/audit.md key on them. The JSON
//! report has a version (`SCHEMA_VERSION`); a change of meaning of an
//! existing field bumps it.

pub mod container;
pub mod egress;
pub mod host;
pub mod openclaw;
pub mod secrets;
pub mod skills;
pub mod vault;

use serde::Serialize;

/// Version of the JSON report (docs/audit.md).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }
}

/// Which part of the setup a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    Host,
    Vault,
    Image,
    Container,
    /// The gateway's way out: its network, the egress proxy, its policy.
    Egress,
    /// Skills: installed at start, pinned, shadowed (docs/skills.md).
    Skills,
    Openclaw,
}

impl Area {
    pub fn name(self) -> &'static str {
        match self {
            Area::Host => "host",
            Area::Vault => "vault",
            Area::Image => "image",
            Area::Container => "container",
            Area::Egress => "egress",
            Area::Skills => "skills",
            Area::Openclaw => "openclaw",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable id, e.g. `container.privileged`.
    pub id: String,
    pub area: Area,
    pub severity: Severity,
    /// What is wrong, in one line.
    pub title: String,
    /// What was seen (never a secret's value).
    pub evidence: String,
    /// One line: how to fix it.
    pub fix: String,
    /// Where the check comes from (CIS Docker Benchmark item, guide flaw…).
    pub reference: String,
}

impl Finding {
    pub fn new(
        id: &str,
        area: Area,
        severity: Severity,
        title: &str,
        evidence: impl Into<String>,
        fix: &str,
        reference: &str,
    ) -> Finding {
        Finding {
            id: id.to_string(),
            area,
            severity,
            title: title.to_string(),
            evidence: evidence.into(),
            fix: fix.to_string(),
            reference: reference.to_string(),
        }
    }
}

/// The findings of one area, as a check collects them.
pub struct Findings {
    area: Area,
    list: Vec<Finding>,
}

impl Findings {
    pub fn new(area: Area) -> Findings {
        Findings {
            area,
            list: Vec::new(),
        }
    }

    pub fn add(
        &mut self,
        id: &str,
        severity: Severity,
        title: &str,
        evidence: impl Into<String>,
        fix: &str,
        reference: &str,
    ) {
        self.list.push(Finding::new(
            id, self.area, severity, title, evidence, fix, reference,
        ));
    }

    pub fn into_vec(self) -> Vec<Finding> {
        self.list
    }
}

/// Ids of findings, in order (unit tests of the checks).
#[cfg(test)]
pub(crate) fn ids(found: &[Finding]) -> Vec<&str> {
    found.iter().map(|f| f.id.as_str()).collect()
}

/// Everything an audit found, sorted by area, then severity, then id.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    /// What was examined: container name, vault path, home, engine.
    pub subjects: Vec<String>,
    pub findings: Vec<Finding>,
    pub summary: Summary,
    /// False when a high finding is present (exit code 6).
    pub passed: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub info: usize,
}

impl Report {
    pub fn new(subjects: Vec<String>, mut findings: Vec<Finding>) -> Report {
        findings.sort_by(|a, b| (a.area, a.severity, &a.id).cmp(&(b.area, b.severity, &b.id)));
        findings.dedup_by(|a, b| a.id == b.id && a.evidence == b.evidence);
        let mut summary = Summary::default();
        for f in &findings {
            match f.severity {
                Severity::High => summary.high += 1,
                Severity::Medium => summary.medium += 1,
                Severity::Low => summary.low += 1,
                Severity::Info => summary.info += 1,
            }
        }
        Report {
            schema_version: SCHEMA_VERSION,
            subjects,
            findings,
            passed: summary.high == 0,
            summary,
        }
    }

    /// A high finding fails the audit (a deploy gate).
    pub fn passed(&self) -> bool {
        self.passed
    }

    /// The report as a table grouped by area; `colour` on a terminal.
    pub fn render(&self, colour: bool) -> String {
        let paint = |code: &str, s: &str| {
            if colour {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let mut out = String::new();
        out.push_str(&format!("audited: {}\n", self.subjects.join(", ")));
        let mut area = None;
        for f in &self.findings {
            if area != Some(f.area) {
                area = Some(f.area);
                out.push_str(&format!("\n{}\n", paint("1", f.area.name())));
            }
            let sev = match f.severity {
                Severity::High => paint("1;31", "HIGH  "),
                Severity::Medium => paint("1;33", "MEDIUM"),
                Severity::Low => paint("36", "LOW   "),
                Severity::Info => paint("2", "INFO  "),
            };
            out.push_str(&format!("  {sev} {:<34} {}\n", f.id, f.title));
            out.push_str(&format!("         seen: {}\n", f.evidence));
            out.push_str(&format!("         fix:  {}\n", f.fix));
        }
        let s = self.summary;
        out.push_str(&format!(
            "\n{} high, {} medium, {} low, {} info{}",
            s.high,
            s.medium,
            s.low,
            s.info,
            if self.passed() {
                String::new()
            } else {
                paint("1;31", " (failed: high findings)")
            }
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(id: &str, area: Area, severity: Severity) -> Finding {
        Finding::new(id, area, severity, "t", "e", "x", "r")
    }

    #[test]
    fn reports_sort_count_and_gate_on_high() {
        let r = Report::new(
            vec!["x".into()],
            vec![
                f("container.b", Area::Container, Severity::Low),
                f("host.a", Area::Host, Severity::Medium),
                f("container.a", Area::Container, Severity::High),
                f("container.a", Area::Container, Severity::High),
            ],
        );
        let ids: Vec<&str> = r.findings.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["host.a", "container.a", "container.b"]);
        assert_eq!((r.summary.high, r.summary.medium, r.summary.low), (1, 1, 1));
        assert!(!r.passed());
        let text = r.render(false);
        assert!(text.contains("HIGH   container.a"), "{text}");
        assert!(text.contains("(failed: high findings)"));
        assert!(!text.contains('\x1b'));
        assert!(Report::new(vec![], vec![f("a", Area::Host, Severity::Medium)]).passed());
    }
}

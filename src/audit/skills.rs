//! Skills (docs/skills.md): a container that installs skills from the
//! network at every start (the guide's entrypoint), and in a safeclaw
//! gateway the pinned skills: which are mounted, whether one changed or is
//! shadowed by a skill in the agent's state, and which skills in that state
//! no one pinned. Pure over what was gathered: the inspect JSON, a script's
//! text, `safeclaw scan-skills`' output and the guard's status lines. All
//! of it comes from the container, so every name and path is checked or
//! escaped and bounded before it is shown.

use serde_json::Value;

use super::container::{str_at, strings_at};
use super::{Area, Finding, Findings, Severity};
use crate::runtime::guard::protocol::Status;
use crate::skills::{pinned, tree::DISPLACED_DIR, MOUNT};

/// Characters of a path, name or command shown in evidence.
const SHOWN: usize = 200;
/// Paths listed in one finding's evidence.
const LISTED: usize = 10;
/// Entries of a scan read: `tree::scan` reports at most 1000, and every
/// pinned skill once (at most 4 × `MAX_SKILLS` directories).
const MAX_SCANNED: usize = 1000;
/// Bytes of a start script looked at (`check_script`).
pub const MAX_SCRIPT: usize = 64 * 1024;

/// Text from the container as evidence shows it: one line, control
/// characters escaped, at most `SHOWN` characters.
pub fn shown(text: &str) -> String {
    let escaped: String = text
        .chars()
        .flat_map(|c| {
            // Printable text as it is; anything a terminal acts on escaped.
            let keep =
                !c.is_control() && c != '\u{feff}' && !('\u{202a}'..='\u{202e}').contains(&c);
            let e: Vec<char> = if keep {
                vec![c]
            } else {
                c.escape_unicode().collect()
            };
            e
        })
        .collect();
    match escaped.char_indices().nth(SHOWN) {
        Some((i, _)) => format!("{}...", &escaped[..i]),
        None => escaped,
    }
}

/// A name from the container: as it is when it is one safeclaw could pin,
/// else escaped and quoted.
fn shown_name(name: &str) -> String {
    if pinned::check_name(name).is_ok() {
        name.to_string()
    } else {
        format!("\"{}\"", shown(name))
    }
}

// ---------------------------------------------------------------------
// Installs at start.

/// The first word of a command that a shell would run (`sudo`, `env`,
/// `exec` and variable assignments skipped), its path and `@version`
/// dropped: `/usr/bin/npx` is `npx`, `clawhub@latest` is `clawhub`.
fn program(word: &str) -> &str {
    let base = word.rsplit('/').next().unwrap_or(word);
    match base.split_once('@') {
        Some((p, _)) if !p.is_empty() => p,
        _ => base,
    }
}

/// True for a reference `openclaw skills install` reads from the disk
/// (OpenClaw's docs: `./path/to/skill`); anything else (`@owner/slug`, a
/// bare slug, `git:`, `skills-sh:`) is fetched.
fn local_ref(r: &str) -> bool {
    r.starts_with('/')
        || r.starts_with("./")
        || r.starts_with("../")
        || r.starts_with('~')
        || r == "."
}

/// Whether one simple command (its words) installs skills from the
/// network: `clawhub install|update|sync` (also through `npx`, `pnpm dlx`,
/// `bunx`), `openclaw skills install REF` with REF not a local path, and
/// `openclaw skills update`.
fn installs(words: &[&str]) -> bool {
    for (i, w) in words.iter().enumerate() {
        // The subcommand is among the next few words (options before it).
        let near = &words[i + 1..words.len().min(i + 5)];
        match program(w) {
            "clawhub"
                if near
                    .iter()
                    .any(|v| matches!(*v, "install" | "update" | "sync")) =>
            {
                return true
            }
            "openclaw" => {
                let Some(at) = near.iter().position(|v| *v == "skills") else {
                    continue;
                };
                let mut args = words[i + 2 + at..].iter().filter(|w| !w.starts_with('-'));
                match args.next().copied() {
                    Some("update") => return true,
                    Some("install") => match args.next() {
                        Some(r) if local_ref(r) => {}
                        // No reference, or one fetched.
                        _ => return true,
                    },
                    _ => {}
                }
            }
            _ => {}
        }
    }
    false
}

/// The commands in `text` (a script, or a command line joined) that
/// install skills from the network, each as shown (escaped, bounded), with
/// its line number. Comments are skipped; `;`, `&&`, `||`, `|` and `$(`
/// separate commands.
pub fn installs_in(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let code = line.split(" #").next().unwrap_or(line);
        let separated = code
            .replace("&&", ";")
            .replace("||", ";")
            .replace("$(", ";")
            .replace(['|', '`', '(', ')', '{', '}'], ";");
        for command in separated.split(';') {
            let words: Vec<&str> = command
                .split_whitespace()
                .map(|w| w.trim_matches(|c| c == '"' || c == '\''))
                .filter(|w| !w.is_empty())
                .collect();
            if installs(&words) {
                found.push((n + 1, shown(command.trim())));
            }
        }
        if found.len() >= LISTED {
            break;
        }
    }
    found
}

const INSTALLS_TITLE: &str = "skills are installed from the network at every start: text the agent follows, unpinned, fetched by whoever controls the registry that day";
const INSTALLS_FIX: &str = "pin the skills as files instead (`safeclaw skills add DIR`, docs/skills.md): checked by hash, nothing fetched at run time";
const INSTALLS_REF: &str = "guide section 6.1 (docs/skills.md)";

/// The container's own command line: its entrypoint and arguments as the
/// engine runs them, and as its configuration gives them.
pub fn check_commands(inspect: &Value) -> Vec<Finding> {
    let mut out = Findings::new(Area::Skills);
    let name = str_at(inspect, "/Name")
        .unwrap_or("?")
        .trim_start_matches('/');
    let mut run = vec![str_at(inspect, "/Path").unwrap_or_default().to_string()];
    run.extend(strings_at(inspect, "/Args"));
    let mut configured = strings_at(inspect, "/Config/Entrypoint");
    configured.extend(strings_at(inspect, "/Config/Cmd"));
    let mut seen = Vec::new();
    for (what, words) in [("its command", run), ("Config.Entrypoint/Cmd", configured)] {
        // Each argument may be a whole script (`sh -c "…"`): one per line.
        for (_, command) in installs_in(&words.join("\n")) {
            if !seen.contains(&command) {
                out.add(
                    "skills.installs-at-start",
                    Severity::High,
                    INSTALLS_TITLE,
                    format!("{}: {what} runs `{command}`", shown(name)),
                    INSTALLS_FIX,
                    INSTALLS_REF,
                );
                seen.push(command);
            }
        }
    }
    out.into_vec()
}

/// A script the container starts with (`where`: the guide workspace's
/// `entrypoint.sh`, or the file a container's entrypoint names, read out of
/// it), at most `MAX_SCRIPT` bytes of it.
pub fn check_script(place: &str, text: &[u8]) -> Vec<Finding> {
    let mut out = Findings::new(Area::Skills);
    let text = String::from_utf8_lossy(&text[..text.len().min(MAX_SCRIPT)]);
    let found = installs_in(&text);
    if !found.is_empty() {
        let lines: Vec<String> = found
            .iter()
            .map(|(n, c)| format!("line {n}: `{c}`"))
            .collect();
        out.add(
            "skills.installs-at-start",
            Severity::High,
            INSTALLS_TITLE,
            format!("{}, {}", shown(place), lines.join("; ")),
            INSTALLS_FIX,
            INSTALLS_REF,
        );
    }
    out.into_vec()
}

/// The script a guide workspace starts its container with
/// (`<dir>/entrypoint.sh`, guide section 6.1), if it has one.
pub fn check_guide(dir: &std::path::Path) -> Vec<Finding> {
    use std::io::Read;
    let path = dir.join("entrypoint.sh");
    let Ok(file) = crate::private_fs::open_regular(&path) else {
        return Vec::new();
    };
    let mut text = Vec::new();
    if file.take(MAX_SCRIPT as u64).read_to_end(&mut text).is_err() {
        return Vec::new();
    }
    check_script(&path.display().to_string(), &text)
}

/// Paths in a container whose content is worth reading for a start
/// script: its entrypoint when it is a file path, and a script path given
/// to a shell (`sh /app/start.sh`). Never the container's binary when it
/// is safeclaw's (the caller skips managed containers).
pub fn script_candidates(inspect: &Value) -> Vec<String> {
    let mut words = vec![str_at(inspect, "/Path").unwrap_or_default().to_string()];
    words.extend(strings_at(inspect, "/Args").into_iter().take(4));
    let mut out: Vec<String> = Vec::new();
    for w in words {
        let script_like = w.starts_with('/')
            && w.len() <= 255
            && !w.contains(['\n', ' '])
            && ![
                "/bin/",
                "/usr/bin/",
                "/sbin/",
                "/usr/sbin/",
                "/usr/local/bin/node",
            ]
            .iter()
            .any(|p| w.starts_with(p) && !w.ends_with(".sh"));
        if script_like && !out.contains(&w) {
            out.push(w);
        }
        if out.len() == 2 {
            break;
        }
    }
    out
}

// ---------------------------------------------------------------------
// The pinned skills of a safeclaw gateway.

/// A directory under the pinned skills' mount, as `scan-skills` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mounted {
    /// Its files hash to `sha256`.
    Hashed { name: String, sha256: String },
    /// It could not be read as a skill (`error`, shown).
    Broken { name: String, error: String },
}

/// A `SKILL.md` in the state: where, relative to it, and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InState {
    pub path: String,
    pub name: String,
}

/// `safeclaw scan-skills STATE PINNED`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scan {
    pub mounted: Vec<Mounted>,
    pub found: Vec<InState>,
}

/// `scan-skills`' output (hostile, bounded by the caller), or why it is
/// not one: a JSON object `{"pinned": [...], "found": [...]}`. Entries
/// without the fields they need are dropped; names and paths are kept as
/// given and shown escaped.
pub fn parse_scan(output: &[u8]) -> Result<Scan, String> {
    let line = output.split(|&b| b == b'\n').next().unwrap_or_default();
    let v: Value = serde_json::from_slice(line)
        .map_err(|e| format!("its answer is not one JSON object ({e})"))?;
    let list = |key: &str| {
        v.get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("its answer has no list {key:?}"))
    };
    let text = |e: &Value, key: &str| e.get(key).and_then(Value::as_str).map(str::to_string);
    let mut scan = Scan::default();
    for e in list("pinned")?.iter().take(MAX_SCANNED) {
        let Some(name) = text(e, "name") else {
            continue;
        };
        match (text(e, "sha256"), text(e, "error")) {
            (Some(sha256), _) => scan.mounted.push(Mounted::Hashed { name, sha256 }),
            (None, Some(error)) => scan.mounted.push(Mounted::Broken { name, error }),
            (None, None) => {}
        }
    }
    for e in list("found")?.iter().take(MAX_SCANNED) {
        if let (Some(path), Some(name)) = (text(e, "path"), text(e, "name")) {
            scan.found.push(InState { path, name });
        }
    }
    Ok(scan)
}

/// What was gathered about one safeclaw gateway's skills.
pub struct Gathered<'a> {
    pub inspect: &'a Value,
    /// `scan-skills` in the running container: its answer, or why there
    /// is none (None: not running, nothing asked).
    pub scan: Option<Result<Scan, String>>,
    /// The guard's reports this run (`container::skill_reports`).
    pub reports: &'a [Status],
    /// OpenClaw's own `skills list --json` in the running container (the
    /// authority on what it loads), or why there is none; None when not
    /// asked.
    pub loaded: Option<Result<Value, String>>,
}

/// Whether OpenClaw loads each pinned skill as safeclaw put it: listed,
/// from its managed skills (where the guard links the read-only copy),
/// enabled and eligible. Anything else (a workspace skill of the name
/// wins, the config disables it or caps how many load, a file hides the
/// links, a workspace moved out of the state) means the defence is not in
/// the prompt: high.
pub fn check_loaded(
    gateway: &str,
    pinned: &[String],
    loaded: &Result<Value, String>,
) -> Vec<Finding> {
    let mut out = Findings::new(Area::Skills);
    let list = match loaded {
        Ok(v) => v.pointer("/skills").and_then(Value::as_array),
        Err(why) => {
            out.add(
                "skills.load-unknown",
                Severity::Low,
                "OpenClaw could not say which skills it loads: whether the pinned ones are in its prompt was not checked",
                format!("{gateway}: `openclaw skills list --json`: {}", shown(why)),
                "run `safeclaw exec -- skills list` to see it",
                "docs/skills.md",
            );
            return out.into_vec();
        }
    };
    let Some(list) = list else {
        return out.into_vec();
    };
    let mut wrong = Vec::new();
    for name in pinned {
        let entry = list
            .iter()
            .find(|s| str_at(s, "/name") == Some(name.as_str()));
        let why = match entry {
            None => Some("not listed at all".to_string()),
            Some(s) if str_at(s, "/source") != Some("openclaw-managed") => Some(format!(
                "loaded from {}, not from safeclaw's link in its managed skills",
                shown(str_at(s, "/source").unwrap_or("?"))
            )),
            Some(s) if s.pointer("/disabled") == Some(&Value::Bool(true)) => {
                Some("disabled in OpenClaw's config".to_string())
            }
            Some(s) if s.pointer("/eligible") != Some(&Value::Bool(true)) => {
                Some("not eligible (see `skills info`)".to_string())
            }
            Some(_) => None,
        };
        if let Some(why) = why {
            wrong.push(format!("{}: {why}", shown(name)));
        }
    }
    if !wrong.is_empty() {
        out.add(
            "skills.not-loaded",
            Severity::High,
            "OpenClaw does not load a pinned skill as safeclaw put it: the defence is not in the prompt",
            format!("{gateway}: {}", bounded_list(&wrong)),
            "see `safeclaw exec -- skills info NAME --json`; remove the skill that shadows it or the config that disables it, then restart (the guard re-links pinned skills at start)",
            "docs/skills.md",
        );
    }
    out.into_vec()
}

/// True when the container mounts pinned skills at `skills::MOUNT`.
pub fn mounts_pinned_skills(inspect: &Value) -> bool {
    inspect
        .pointer("/Mounts")
        .and_then(Value::as_array)
        .is_some_and(|m| {
            m.iter()
                .any(|m| str_at(m, "/Destination").map(|d| d.trim_end_matches('/')) == Some(MOUNT))
        })
}

/// A path of the state as evidence shows it: under `/state`.
fn state_path(rel: &str) -> String {
    format!(
        "{}/{}",
        crate::runtime::layout::STATE_DIR,
        shown(rel.trim_start_matches('/'))
    )
}

/// "a, b, c and 4 more".
fn bounded_list(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > LISTED {
        s.push_str(&format!("; and {} more", items.len() - LISTED));
    }
    s
}

/// True for a path of the state under which OpenClaw loads no skills:
/// where the guard moves what stood in a pinned skill's place.
fn displaced(rel: &str) -> bool {
    let rel = rel.trim_start_matches('/');
    rel == DISPLACED_DIR || rel.starts_with(&format!("{DISPLACED_DIR}/"))
}

/// The skill checks of a safeclaw gateway (managed container).
pub fn check_gateway(g: &Gathered) -> Vec<Finding> {
    let mut out = Findings::new(Area::Skills);
    let name = shown(
        str_at(g.inspect, "/Name")
            .unwrap_or("?")
            .trim_start_matches('/'),
    );
    let mounted = mounts_pinned_skills(g.inspect);
    let scan = match &g.scan {
        Some(Ok(scan)) => Some(scan),
        Some(Err(why)) => {
            out.add(
                "skills.scan-unavailable",
                Severity::Low,
                "the gateway's skills could not be listed: pinned, shadowed and unpinned skills were not checked",
                format!("{name}: `safeclaw scan-skills`: {}", shown(why)),
                "an image older than this safeclaw lacks `safeclaw scan-skills`: `safeclaw image build`",
                "docs/skills.md",
            );
            None
        }
        None => None,
    };

    // Which defences are installed.
    let pinned_names: Vec<String> = scan
        .map(|s| {
            s.mounted
                .iter()
                .map(|m| match m {
                    Mounted::Hashed { name, .. } | Mounted::Broken { name, .. } => name.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    if !mounted || scan.is_some_and(|s| s.mounted.is_empty()) {
        out.add(
            "skills.none-pinned",
            Severity::Low,
            "no prompt-injection defence skills are pinned; see docs/skills.md",
            if mounted {
                format!("{name}: the mount at {MOUNT} holds no skill")
            } else {
                format!("{name}: nothing is mounted at {MOUNT}")
            },
            "get the skills you trust as files, read them, and `safeclaw skills add DIR` (docs/skills.md)",
            "guide section 8 (docs/skills.md)",
        );
    } else if let Some(scan) = scan {
        let listed: Vec<String> = scan
            .mounted
            .iter()
            .map(|m| match m {
                Mounted::Hashed { name, sha256 } => {
                    let hash = sha256
                        .strip_prefix("sha256:")
                        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                        .map_or_else(|| shown(sha256), |h| h[..16].to_string());
                    format!("{} {hash}", shown_name(name))
                }
                Mounted::Broken { name, .. } => format!("{} (unreadable)", shown_name(name)),
            })
            .collect();
        out.add(
            "skills.pinned",
            Severity::Info,
            "pinned skills are mounted read-only and linked into OpenClaw's managed skills",
            format!("{name}: {}", bounded_list(&listed)),
            "`safeclaw skills list` shows them with their full hashes and origins",
            "docs/skills.md",
        );
    }

    // Changed: the guard's word, and a mounted copy that is no skill now.
    let mut changed: Vec<String> = Vec::new();
    for r in g.reports {
        if let Status::SkillChanged { name } = r {
            let s = format!(
                "{}: the guard found its mounted copy changed",
                shown_name(name)
            );
            if !changed.contains(&s) {
                changed.push(s);
            }
        }
    }
    if let Some(scan) = scan {
        for m in &scan.mounted {
            if let Mounted::Broken { name, error } = m {
                changed.push(format!(
                    "{}: {MOUNT}/{} is unreadable as a skill: {}",
                    shown_name(name),
                    shown(name),
                    shown(error)
                ));
            }
        }
    }
    if !changed.is_empty() {
        out.add(
            "skills.changed",
            Severity::High,
            "a pinned skill's mounted copy no longer matches the hash the vault pins",
            format!("{name}: {}", bounded_list(&changed)),
            "find who writes the host's copy (safeclaw's home, pinned-skills/NAME); `safeclaw stop` and `safeclaw start` write and check it anew",
            "docs/skills.md",
        );
    }

    // Shadowed: a SKILL.md in the state carrying a pinned name.
    let mut shadowed: Vec<String> = Vec::new();
    let mut add_shadow = |skill: &str, path: &str| {
        if displaced(path) {
            return;
        }
        let s = format!("{} at {}", shown_name(skill), state_path(path));
        if !shadowed.contains(&s) {
            shadowed.push(s);
        }
    };
    for r in g.reports {
        if let Status::SkillShadowed { name, path } = r {
            add_shadow(name, path);
        }
    }
    if let Some(scan) = scan {
        for f in &scan.found {
            if pinned_names.contains(&f.name) {
                add_shadow(&f.name, &f.path);
            }
        }
    }
    if !shadowed.is_empty() {
        out.add(
            "skills.shadowed",
            Severity::High,
            "a skill in the agent's state carries a pinned skill's name: in a workspace's skills it replaces the pinned one",
            format!("{name}: {}", bounded_list(&shadowed)),
            "read it (`safeclaw exec -- skills info NAME --json` shows which one OpenClaw loads), then delete it from the state; who wrote it (the agent, a ClawHub install) is worth knowing",
            "OpenClaw docs/tools/skills.md, \"Loading order\" (docs/skills.md)",
        );
    }

    // Displaced at start (prevented, noted).
    let moved: Vec<String> = g
        .reports
        .iter()
        .filter_map(|r| match r {
            Status::SkillDisplaced { name, to } => {
                Some(format!("{} moved to {}", shown_name(name), state_path(to)))
            }
            _ => None,
        })
        .collect();
    if !moved.is_empty() {
        out.add(
            "skills.displaced",
            Severity::Low,
            "at start, OpenClaw's managed skills held something else under a pinned skill's name; the guard moved it aside",
            format!("{name}: {}", bounded_list(&moved)),
            &format!("read what was moved (under {DISPLACED_DIR}/ in the state) and delete it if it is not yours"),
            "docs/skills.md",
        );
    }

    // Unpinned: skills in the state no one pinned.
    if let Some(scan) = scan {
        let unpinned: Vec<String> = scan
            .found
            .iter()
            .filter(|f| !displaced(&f.path) && !pinned_names.contains(&f.name))
            .map(|f| format!("{} ({})", state_path(&f.path), shown_name(&f.name)))
            .collect();
        if !unpinned.is_empty() {
            out.add(
                "skills.unpinned",
                Severity::Low,
                "skills in the agent's writable state that no one pinned: instructions the gateway loads, unreviewed, kept across restarts",
                format!("{name}: {} skill(s): {}", unpinned.len(), bounded_list(&unpinned)),
                "read each; pin the ones you keep (`safeclaw skills add`, from a reviewed copy) and delete the rest from the state",
                "docs/skills.md",
            );
        }
    }
    let mut all = out.into_vec();
    if let (Some(loaded), false) = (&g.loaded, pinned_names.is_empty()) {
        all.extend(check_loaded(&name, &pinned_names, loaded));
    }
    all
}

/// An OpenClaw container safeclaw did not make: nothing pins its skills.
pub fn check_unmanaged(inspect: &Value) -> Vec<Finding> {
    let mut out = Findings::new(Area::Skills);
    let name = shown(
        str_at(inspect, "/Name")
            .unwrap_or("?")
            .trim_start_matches('/'),
    );
    out.add(
        "skills.none-pinned",
        Severity::Low,
        "no prompt-injection defence skills are pinned; see docs/skills.md",
        format!("{name}: not a safeclaw container: its skills are whatever its state and image hold"),
        "move to safeclaw (`safeclaw vault migrate`) and pin the skills you trust as files (`safeclaw skills add DIR`)",
        "guide section 8 (docs/skills.md)",
    );
    out.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::ids;
    use serde_json::json;

    #[test]
    fn network_installs_are_found_and_local_ones_are_not() {
        let guide = "#!/bin/bash\n\
            # npx -y clawhub install in a comment\n\
            mkdir -p /app/skills\n\
            npx -y clawhub install prompt-guard || echo \"Warning: PromptGuard install failed\"\n\
            exec openclaw gateway\n";
        assert_eq!(
            installs_in(guide),
            [(4, "npx -y clawhub install prompt-guard".to_string())]
        );
        for yes in [
            "clawhub install acip",
            "/usr/local/bin/clawhub --workdir /x install acip",
            "npx clawhub@latest update --all",
            "pnpm dlx clawhub sync",
            "openclaw skills install @owner/acip",
            "openclaw skills install git:owner/repo@main",
            "openclaw --profile x skills install acip --global",
            "openclaw skills update --all",
            "sh -c 'openclaw skills install acip && exec openclaw gateway'",
            "true; clawhub install x",
            "x=$(clawhub install x)",
        ] {
            assert_eq!(installs_in(yes).len(), 1, "{yes}");
        }
        for no in [
            "openclaw skills install ./skills/mine --as mine",
            "openclaw skills install /opt/skills/guard",
            "openclaw skills list",
            "openclaw gateway",
            "clawhub --help",
            "echo clawhub is not run here",
            "npm install -g openclaw@latest",
        ] {
            assert!(installs_in(no).is_empty(), "{no}");
        }
    }

    #[test]
    fn the_guides_command_line_and_script_get_the_finding() {
        let inspect = json!({
            "Name": "/openclaw", "Path": "sh",
            "Args": ["-c", "npx -y clawhub install prompt-guard\nexec openclaw gateway"],
            "Config": { "Entrypoint": ["sh", "-c"], "Cmd": ["npx -y clawhub install prompt-guard\nexec openclaw gateway"] }
        });
        let found = check_commands(&inspect);
        assert_eq!(
            ids(&found),
            ["skills.installs-at-start"],
            "once, not per source"
        );
        assert_eq!(found[0].severity, Severity::High);
        assert_eq!(
            found[0].evidence,
            "openclaw: its command runs `npx -y clawhub install prompt-guard`"
        );
        let found = check_script(
            "/app/entrypoint.sh",
            b"#!/bin/sh\nclawhub install \x1b[2Jx\n",
        );
        assert_eq!(ids(&found), ["skills.installs-at-start"]);
        assert!(!found[0].evidence.contains('\x1b'), "{}", found[0].evidence);
        assert!(found[0]
            .evidence
            .starts_with("/app/entrypoint.sh, line 2: `clawhub install \\u{1b}[2Jx`"));
        assert!(check_script("x", b"exec openclaw gateway").is_empty());
        assert!(check_commands(&json!({ "Path": "/app/entrypoint.sh" })).is_empty());
        assert_eq!(
            script_candidates(&json!({ "Path": "/app/entrypoint.sh", "Args": [] })),
            ["/app/entrypoint.sh"]
        );
        assert_eq!(
            script_candidates(&json!({ "Path": "/bin/sh", "Args": ["/app/start.sh", "-x"] })),
            ["/app/start.sh"]
        );
        assert!(script_candidates(&json!({ "Path": "openclaw", "Args": ["gateway"] })).is_empty());
    }

    fn gateway(mounted: bool) -> Value {
        let mounts = if mounted {
            json!([{ "Type": "bind", "Source": "/h/pinned-skills/g", "Destination": "/pinned-skills", "RW": false }])
        } else {
            json!([])
        };
        json!({ "Name": "/g", "Mounts": mounts })
    }

    const HASH: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_scan_is_parsed_and_its_hostile_text_escaped() {
        let out = format!(
            r#"{{"pinned":[{{"name":"guard","sha256":"{HASH}"}},{{"name":"acip","error":"a path is \u001b[31m"}},{{"x":1}}],"found":[{{"path":"workspace/skills/evil/SKILL.md","name":"guard"}},{{"path":"workspace/skills/n\nx/SKILL.md","name":"Bad\u001bName"}},{{"path":"safeclaw-displaced/guard.1.0/SKILL.md","name":"guard"}}]}}"#
        );
        let scan = parse_scan(out.as_bytes()).unwrap();
        assert_eq!(scan.mounted.len(), 2);
        assert_eq!(scan.found.len(), 3);
        assert!(parse_scan(b"not json").is_err());
        assert!(parse_scan(b"{\"pinned\":[]}").is_err());
        let inspect = gateway(true);
        let found = check_gateway(&Gathered {
            inspect: &inspect,
            scan: Some(Ok(scan)),
            reports: &[],
            loaded: None,
        });
        assert_eq!(
            ids(&found),
            [
                "skills.pinned",
                "skills.changed",
                "skills.shadowed",
                "skills.unpinned"
            ]
        );
        let by = |id: &str| found.iter().find(|f| f.id == id).unwrap();
        assert_eq!(
            by("skills.pinned").evidence,
            "g: guard 0123456789abcdef; acip (unreadable)"
        );
        assert_eq!(by("skills.pinned").severity, Severity::Info);
        assert!(by("skills.changed")
            .evidence
            .contains("acip: /pinned-skills/acip is unreadable as a skill: a path is \\u{1b}[31m"));
        assert_eq!(
            by("skills.shadowed").evidence,
            "g: guard at /state/workspace/skills/evil/SKILL.md",
            "the displaced copy is no shadow"
        );
        assert_eq!(
            by("skills.unpinned").evidence,
            "g: 1 skill(s): /state/workspace/skills/n\\u{a}x/SKILL.md (\"Bad\\u{1b}Name\")"
        );
        for f in &found {
            assert!(!f.evidence.chars().any(char::is_control), "{}", f.evidence);
        }
    }

    #[test]
    fn the_guards_reports_are_findings_and_none_pinned_is_said() {
        let inspect = gateway(true);
        let reports = [
            Status::SkillChanged {
                name: "guard".into(),
            },
            Status::SkillShadowed {
                name: "guard".into(),
                path: "workspace/.agents/skills/g/SKILL.md".into(),
            },
            Status::SkillShadowed {
                name: "guard".into(),
                path: "safeclaw-displaced/guard.1.0/SKILL.md".into(),
            },
            Status::SkillDisplaced {
                name: "guard".into(),
                to: "safeclaw-displaced/guard.1.0".into(),
            },
        ];
        // Not running: the guard's word only.
        let found = check_gateway(&Gathered {
            inspect: &inspect,
            scan: None,
            reports: &reports,
            loaded: None,
        });
        assert_eq!(
            ids(&found),
            ["skills.changed", "skills.shadowed", "skills.displaced"]
        );
        assert_eq!(
            found[1].evidence,
            "g: guard at /state/workspace/.agents/skills/g/SKILL.md"
        );
        assert_eq!(found[2].severity, Severity::Low);
        // A scan and the guard naming the same shadow: listed once.
        let scan = Scan {
            mounted: vec![Mounted::Hashed {
                name: "guard".into(),
                sha256: HASH.into(),
            }],
            found: vec![InState {
                path: "workspace/.agents/skills/g/SKILL.md".into(),
                name: "guard".into(),
            }],
        };
        let found = check_gateway(&Gathered {
            inspect: &inspect,
            scan: Some(Ok(scan)),
            reports: &reports[1..2],
            loaded: None,
        });
        assert_eq!(ids(&found), ["skills.pinned", "skills.shadowed"]);
        assert!(!found[1].evidence.contains(';'), "{}", found[1].evidence);

        // Nothing mounted: no defence, low.
        let bare = gateway(false);
        let found = check_gateway(&Gathered {
            inspect: &bare,
            scan: Some(Ok(Scan::default())),
            reports: &[],
            loaded: None,
        });
        assert_eq!(ids(&found), ["skills.none-pinned"]);
        assert_eq!(found[0].severity, Severity::Low);
        let found = check_gateway(&Gathered {
            inspect: &bare,
            scan: Some(Err("exit code 2".into())),
            reports: &[],
            loaded: None,
        });
        assert_eq!(
            ids(&found),
            ["skills.scan-unavailable", "skills.none-pinned"]
        );
        assert_eq!(ids(&check_unmanaged(&bare)), ["skills.none-pinned"]);
    }

    #[test]
    fn long_lists_and_long_text_are_bounded() {
        let inspect = gateway(true);
        let scan = Scan {
            mounted: vec![Mounted::Hashed {
                name: "guard".into(),
                sha256: HASH.into(),
            }],
            found: (0..500)
                .map(|i| InState {
                    path: format!("workspace/skills/{}{i}/SKILL.md", "d".repeat(300)),
                    name: format!("s{i}"),
                })
                .collect(),
        };
        let found = check_gateway(&Gathered {
            inspect: &inspect,
            scan: Some(Ok(scan)),
            reports: &[],
            loaded: None,
        });
        let unpinned = found.iter().find(|f| f.id == "skills.unpinned").unwrap();
        assert!(unpinned.evidence.starts_with("g: 500 skill(s): "));
        assert!(
            unpinned.evidence.ends_with("; and 490 more"),
            "{}",
            unpinned.evidence
        );
        assert!(
            unpinned.evidence.len() < 3000,
            "{}",
            unpinned.evidence.len()
        );
    }
}

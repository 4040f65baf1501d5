//! The contract between the host and the guard, both ways, in one place
//! (docs/guard.md, "Protocol"):
//!
//! - host to guard, on the command line: `GuardSettings`, written by
//!   `to_argv` into the container's command and read back by `parse`;
//! - host to guard, on stdin: the key line (`key_line`, `parse_key_line`);
//! - guard to host, on stdout: one `Status` a line (`encode`, `parse`),
//!   read by the host through the attach (ready or failed) and from the
//!   engine's log (checkpoint, sealed).
//!
//! Each side writes and reads with these functions only: the host never
//! reads the guard's human text, it reads the tokens (`reason=wrong-key`,
//! `generation=7`). Durations travel as humantime strings (`5m`, `30s`,
//! `150ms`), so a setting keeps one name and one unit-free value from the
//! command line to the guard.
//!
//! The guard's stdout is shared with the gateway it runs (which inherits
//! it): a line is the guard's only where the host expects one (the first
//! answer to the key, the last line after a stop).

use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::error::{Class, Error, Result};
use crate::vault::crypto::DataKey;

/// The guard's subcommand: the container's command starts with it.
pub const COMMAND: &str = "guard";

/// What the host writes, then closes stdin: `safeclaw-key-v1 <64 hex>\n`.
pub const KEY_PREFIX: &str = "safeclaw-key-v1 ";
/// Bounds what the guard reads from stdin.
pub const KEY_LINE_MAX: usize = 128;
/// How long the guard waits for the key line.
pub const KEY_TIMEOUT: Duration = Duration::from_secs(30);

/// Encodes the key line the host sends.
pub fn key_line(key: &DataKey) -> Zeroizing<String> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Digit by digit into the zeroizing string: a `hex()` String would be
    // an unwiped copy of the key.
    let mut line = Zeroizing::new(String::with_capacity(KEY_LINE_MAX));
    line.push_str(KEY_PREFIX);
    for b in key.as_bytes() {
        line.push(DIGITS[usize::from(b >> 4)] as char);
        line.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    line.push('\n');
    line
}

/// The key in a key line, or None when it is not exactly one.
pub fn parse_key_line(line: &[u8]) -> Option<DataKey> {
    let text = std::str::from_utf8(line).ok()?.trim_end_matches('\n');
    let hex = text.strip_prefix(KEY_PREFIX)?;
    if hex.len() != 64 {
        return None;
    }
    let mut key = Zeroizing::new([0u8; 32]);
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(DataKey::from_bytes(*key))
}

/// What the guard is told on its command line. Every field is always
/// written: the guard assumes nothing the host did not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardSettings {
    /// The vault file (inside the container: under `/vault`).
    pub vault: PathBuf,
    /// The (tmpfs) state directory the vault is unpacked into.
    pub state: PathBuf,
    /// Where a checkpoint's copy of the state is staged (a tmpfs).
    pub checkpoint_dir: PathBuf,
    /// How long to wait for the key line.
    pub key_timeout: Duration,
    /// Older generations each seal keeps.
    pub keep_generations: usize,
    /// How often to checkpoint the running state (zero: only when the
    /// host asks, with SIGUSR1).
    pub checkpoint_interval: Duration,
    /// How long the gateway may drain after SIGTERM before it is killed.
    pub drain: Duration,
    /// The egress proxy's socket, for the relay the guard runs next to the
    /// gateway (`egress relay`, docs/egress.md); None with egress open.
    pub relay: Option<PathBuf>,
    /// An egress policy (its one-line stored form) for the guard to keep
    /// in the vault's records when the vault holds none yet: the defaults
    /// the host derived, stored with the state at the first seal.
    pub egress_policy: Option<String>,
    /// Where the pinned skills are mounted read-only (docs/skills.md);
    /// None when the vault pins none. The guard checks them against the
    /// vault's hashes before the gateway starts.
    pub pinned_skills: Option<PathBuf>,
    /// The gateway command and its arguments.
    pub gateway: Vec<String>,
}

const VAULT: &str = "--vault";
const STATE: &str = "--state";
const CHECKPOINT_DIR: &str = "--checkpoint-dir";
const KEY_TIMEOUT_FLAG: &str = "--key-timeout";
const KEEP_GENERATIONS: &str = "--keep-generations";
const CHECKPOINT_INTERVAL: &str = "--checkpoint-interval";
const DRAIN: &str = "--drain";
const RELAY: &str = "--relay";
const EGRESS_POLICY: &str = "--egress-policy";
const PINNED_SKILLS: &str = "--pinned-skills";
/// `--pinned-skills`' value when the vault pins none: not a path.
const NO_SKILLS: &str = "none";
/// `--egress-policy`'s value when there is none to store: not JSON.
const NO_POLICY: &str = "-";
/// `--relay`'s value when there is no relay (egress open): not a path.
const NO_RELAY: &str = "off";

impl GuardSettings {
    /// The guard's arguments (after `COMMAND`), the gateway after `--`.
    pub fn to_argv(&self) -> Vec<String> {
        let duration = |d: Duration| humantime::format_duration(d).to_string();
        let path = |p: &PathBuf| p.display().to_string();
        let mut argv = vec![
            VAULT.into(),
            path(&self.vault),
            STATE.into(),
            path(&self.state),
            CHECKPOINT_DIR.into(),
            path(&self.checkpoint_dir),
            KEY_TIMEOUT_FLAG.into(),
            duration(self.key_timeout),
            KEEP_GENERATIONS.into(),
            self.keep_generations.to_string(),
            CHECKPOINT_INTERVAL.into(),
            duration(self.checkpoint_interval),
            DRAIN.into(),
            duration(self.drain),
            RELAY.into(),
            self.relay
                .as_ref()
                .map_or_else(|| NO_RELAY.to_string(), path),
            EGRESS_POLICY.into(),
            self.egress_policy
                .clone()
                .unwrap_or_else(|| NO_POLICY.to_string()),
            PINNED_SKILLS.into(),
            self.pinned_skills
                .as_ref()
                .map_or_else(|| NO_SKILLS.to_string(), path),
            "--".into(),
        ];
        argv.extend(self.gateway.iter().cloned());
        argv
    }

    /// Reads what `to_argv` wrote (options in any order, each once).
    pub fn parse(args: &[String]) -> Result<GuardSettings> {
        let refused = |why: String| Error::usage(format!("guard: {why}"));
        let (options, gateway) = match args.iter().position(|a| a == "--") {
            Some(i) => (&args[..i], &args[i + 1..]),
            None => return Err(refused("no `--` before the gateway command".into())),
        };
        if gateway.is_empty() {
            return Err(refused("no gateway command given".into()));
        }
        let mut given: Vec<(&str, &str)> = Vec::new();
        let mut pairs = options.iter();
        while let Some(flag) = pairs.next() {
            let known = [
                VAULT,
                STATE,
                CHECKPOINT_DIR,
                KEY_TIMEOUT_FLAG,
                KEEP_GENERATIONS,
                CHECKPOINT_INTERVAL,
                DRAIN,
                RELAY,
                EGRESS_POLICY,
                PINNED_SKILLS,
            ];
            let Some(flag) = known.into_iter().find(|k| k == flag) else {
                return Err(refused(format!("unknown option {flag:?}")));
            };
            if given.iter().any(|(f, _)| *f == flag) {
                return Err(refused(format!("{flag} given twice")));
            }
            let value = pairs
                .next()
                .ok_or_else(|| refused(format!("{flag} needs a value")))?;
            given.push((flag, value));
        }
        let value = |flag: &str| {
            given
                .iter()
                .find(|(f, _)| *f == flag)
                .map(|(_, v)| *v)
                .ok_or_else(|| refused(format!("{flag} is missing")))
        };
        let duration = |flag: &str| {
            let text = value(flag)?;
            humantime::parse_duration(text)
                .map_err(|e| refused(format!("{flag} {text:?} is not a duration: {e}")))
        };
        let keep = value(KEEP_GENERATIONS)?;
        let relay = match value(RELAY)? {
            NO_RELAY => None,
            p if p.starts_with('/') => Some(PathBuf::from(p)),
            p => return Err(refused(format!("{RELAY} {p:?} is not an absolute path"))),
        };
        let pinned_skills = match value(PINNED_SKILLS)? {
            NO_SKILLS => None,
            p if p.starts_with('/') => Some(PathBuf::from(p)),
            p => {
                return Err(refused(format!(
                    "{PINNED_SKILLS} {p:?} is not an absolute path"
                )))
            }
        };
        Ok(GuardSettings {
            vault: value(VAULT)?.into(),
            state: value(STATE)?.into(),
            checkpoint_dir: value(CHECKPOINT_DIR)?.into(),
            key_timeout: duration(KEY_TIMEOUT_FLAG)?,
            keep_generations: keep
                .parse()
                .map_err(|_| refused(format!("{KEEP_GENERATIONS} {keep:?} is not a number")))?,
            checkpoint_interval: duration(CHECKPOINT_INTERVAL)?,
            drain: duration(DRAIN)?,
            relay,
            egress_policy: match value(EGRESS_POLICY)? {
                NO_POLICY => None,
                p => Some(p.to_string()),
            },
            pinned_skills,
            gateway: gateway.to_vec(),
        })
    }
}

/// Why the guard gave up before the gateway ran, or could not seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The key did not authenticate the vault's header.
    WrongKey,
    /// No key line arrived within the key timeout.
    NoKey,
    /// Stdin carried something else than one key line.
    MalformedKey,
    /// Anything else, in words (a damaged vault, a full disk, ...).
    Other(String),
}

impl Failure {
    fn reason(&self) -> &'static str {
        match self {
            Failure::WrongKey => "wrong-key",
            Failure::NoKey => "no-key",
            Failure::MalformedKey => "malformed-key",
            Failure::Other(_) => "other",
        }
    }

    /// The class of the guard's exit: 3 for a wrong key, 1 for any other
    /// failure (error.rs gives the codes).
    pub fn class(&self) -> Class {
        match self {
            Failure::WrongKey => Class::WrongPassword,
            _ => Class::Failure,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Failure::WrongKey => "the key does not open the vault",
            Failure::NoKey => "no key arrived on stdin in time",
            Failure::MalformedKey => "stdin did not carry a well-formed key line",
            Failure::Other(why) => why,
        })
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Other(e.message)
    }
}

/// One line the guard writes on stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The key opened the vault, the state is unpacked, the gateway runs.
    Ready { generation: u64 },
    /// The guard gives up (exit code: `Failure::class`).
    Failed(Failure),
    /// A checkpoint was sealed: how long the gateway was frozen for the
    /// copy (to 0.1 ms), and how long the seal took (to 1 ms).
    Checkpoint {
        generation: u64,
        pause: Duration,
        seal: Duration,
    },
    /// The copy for a checkpoint failed; the gateway runs on.
    CheckpointSkipped(String),
    /// A checkpoint's seal failed; the previous generation stays.
    CheckpointFailed(String),
    /// The gateway outlived its drain budget (whole seconds) and is killed.
    DrainOver { drain: Duration },
    /// Processes of the gateway survived SIGKILL; the seal goes ahead.
    Outlived,
    /// The state was sealed as this generation, at the end.
    Sealed { generation: u64 },
    /// At start: an entry of a pinned skill's name in OpenClaw's managed
    /// skills directory, not safeclaw's link, was moved to `to` (relative
    /// to the state).
    SkillDisplaced { name: String, to: String },
    /// A `SKILL.md` in the state, at `path`, carries a pinned skill's
    /// name: where OpenClaw ranks it higher (a workspace's skills), it
    /// replaces the pinned one (docs/skills.md).
    SkillShadowed { name: String, path: String },
    /// The mounted copy of a pinned skill no longer matches its hash.
    SkillChanged { name: String },
}

const PREFIX: &str = "safeclaw-guard: ";

impl Status {
    /// The line, without its newline.
    pub fn encode(&self) -> String {
        let body = match self {
            Status::Ready { generation } => format!("ready generation={generation}"),
            Status::Failed(failure) => format!("error reason={}: {failure}", failure.reason()),
            Status::Checkpoint {
                generation,
                pause,
                seal,
            } => format!(
                "checkpoint generation={generation} pause_ms={} seal_ms={}",
                tenths_of_ms(*pause),
                seal.as_millis()
            ),
            Status::CheckpointSkipped(why) => format!("checkpoint skipped: {why}"),
            Status::CheckpointFailed(why) => format!("checkpoint failed: {why}"),
            Status::DrainOver { drain } => format!(
                "the gateway did not stop within {} s; killing it, then sealing",
                drain.as_secs()
            ),
            Status::Outlived => {
                "processes of the gateway outlived SIGKILL; sealing anyway".to_string()
            }
            Status::Sealed { generation } => format!("sealed generation={generation}"),
            Status::SkillDisplaced { name, to } => {
                format!("skill displaced name={name} to={}", shown_path(to))
            }
            Status::SkillShadowed { name, path } => {
                format!("skill shadowed name={name} path={}", shown_path(path))
            }
            Status::SkillChanged { name } => format!("skill changed name={name}"),
        };
        format!("{PREFIX}{body}")
    }

    /// The status a line says, or None for any other line (the gateway's
    /// own output, a line of another version).
    pub fn parse(line: &str) -> Option<Status> {
        let body = line.trim_end_matches(['\n', '\r']).strip_prefix(PREFIX)?;
        let number = |text: &str| text.parse::<u64>().ok();
        if let Some(g) = body.strip_prefix("ready generation=") {
            return Some(Status::Ready {
                generation: number(g)?,
            });
        }
        if let Some(g) = body.strip_prefix("sealed generation=") {
            return Some(Status::Sealed {
                generation: number(g)?,
            });
        }
        if let Some(rest) = body.strip_prefix("error reason=") {
            let (reason, why) = rest.split_once(": ")?;
            let failure = match reason {
                "wrong-key" => Failure::WrongKey,
                "no-key" => Failure::NoKey,
                "malformed-key" => Failure::MalformedKey,
                "other" => Failure::Other(why.to_string()),
                _ => return None,
            };
            return Some(Status::Failed(failure));
        }
        if let Some(why) = body.strip_prefix("checkpoint skipped: ") {
            return Some(Status::CheckpointSkipped(why.to_string()));
        }
        if let Some(why) = body.strip_prefix("checkpoint failed: ") {
            return Some(Status::CheckpointFailed(why.to_string()));
        }
        if let Some(rest) = body.strip_prefix("checkpoint generation=") {
            let mut words = rest.split(' ');
            let generation = number(words.next()?)?;
            let pause = parse_tenths_of_ms(words.next()?.strip_prefix("pause_ms=")?)?;
            let seal = Duration::from_millis(number(words.next()?.strip_prefix("seal_ms=")?)?);
            return words.next().is_none().then_some(Status::Checkpoint {
                generation,
                pause,
                seal,
            });
        }
        let skill_name = |text: &str| {
            crate::skills::pinned::check_name(text)
                .is_ok()
                .then(|| text.to_string())
        };
        if let Some(rest) = body.strip_prefix("skill displaced name=") {
            let (name, to) = rest.split_once(" to=")?;
            return Some(Status::SkillDisplaced {
                name: skill_name(name)?,
                to: to.to_string(),
            });
        }
        if let Some(rest) = body.strip_prefix("skill shadowed name=") {
            let (name, path) = rest.split_once(" path=")?;
            return Some(Status::SkillShadowed {
                name: skill_name(name)?,
                path: path.to_string(),
            });
        }
        if let Some(name) = body.strip_prefix("skill changed name=") {
            return Some(Status::SkillChanged {
                name: skill_name(name)?,
            });
        }
        if let Some(rest) = body.strip_prefix("the gateway did not stop within ") {
            let secs = rest.strip_suffix(" s; killing it, then sealing")?;
            return Some(Status::DrainOver {
                drain: Duration::from_secs(number(secs)?),
            });
        }
        (body == "processes of the gateway outlived SIGKILL; sealing anyway")
            .then_some(Status::Outlived)
    }
}

/// A duration in milliseconds with one decimal (`12.5`), rounded.
/// A path of the agent's state as a status line carries it: one line,
/// control characters escaped, at most `SHOWN_PATH` characters. The agent
/// chose it, and the host prints it.
fn shown_path(path: &str) -> String {
    const SHOWN_PATH: usize = 200;
    let escaped: String = path.chars().flat_map(char::escape_debug).collect();
    match escaped.char_indices().nth(SHOWN_PATH) {
        Some((i, _)) => format!("{}...", &escaped[..i]),
        None => escaped,
    }
}

pub fn tenths_of_ms(d: Duration) -> String {
    let tenths = (d.as_micros() + 50) / 100;
    format!("{}.{}", tenths / 10, tenths % 10)
}

fn parse_tenths_of_ms(text: &str) -> Option<Duration> {
    let (whole, tenth) = text.split_once('.')?;
    if tenth.len() != 1 {
        return None;
    }
    let micros = whole.parse::<u64>().ok()? * 1000 + tenth.parse::<u64>().ok()? * 100;
    Some(Duration::from_micros(micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_line_round_trip_and_rejects() {
        let key = DataKey::generate();
        let line = key_line(&key);
        assert_eq!(
            parse_key_line(line.as_bytes()).unwrap().as_bytes(),
            key.as_bytes()
        );
        assert!(parse_key_line(b"safeclaw-key-v1 abc\n").is_none());
        assert!(parse_key_line(b"other-prefix 00\n").is_none());
        let bad_hex = format!("{KEY_PREFIX}{}\n", "zz".repeat(32));
        assert!(parse_key_line(bad_hex.as_bytes()).is_none());
    }

    fn settings() -> GuardSettings {
        GuardSettings {
            vault: "/vault/openclaw.vault".into(),
            state: "/state".into(),
            checkpoint_dir: "/checkpoint".into(),
            key_timeout: KEY_TIMEOUT,
            keep_generations: 5,
            checkpoint_interval: Duration::from_secs(300),
            drain: Duration::from_secs(30),
            relay: Some("/egress/egress.sock".into()),
            egress_policy: Some(r#"{"version":1,"open":false,"allow":["a.test:443"]}"#.into()),
            pinned_skills: Some("/pinned-skills".into()),
            gateway: ["openclaw", "gateway", "--", "run"]
                .map(String::from)
                .into(),
        }
    }

    #[test]
    fn settings_round_trip() {
        let s = settings();
        let argv = s.to_argv();
        assert_eq!(
            argv[..21].join(" "),
            "--vault /vault/openclaw.vault --state /state --checkpoint-dir /checkpoint \
             --key-timeout 30s --keep-generations 5 --checkpoint-interval 5m --drain 30s \
             --relay /egress/egress.sock \
             --egress-policy {\"version\":1,\"open\":false,\"allow\":[\"a.test:443\"]} \
             --pinned-skills /pinned-skills --"
        );
        assert_eq!(GuardSettings::parse(&argv).unwrap(), s);
        // Sub-second and zero durations, as tests use them.
        let quick = GuardSettings {
            checkpoint_interval: Duration::from_millis(150),
            drain: Duration::from_millis(1500),
            key_timeout: Duration::ZERO,
            relay: None,
            egress_policy: None,
            pinned_skills: None,
            ..settings()
        };
        assert!(quick
            .to_argv()
            .join(" ")
            .contains("--relay off --egress-policy - --pinned-skills none --"));
        assert_eq!(GuardSettings::parse(&quick.to_argv()).unwrap(), quick);
    }

    #[test]
    fn settings_are_refused_when_incomplete_or_unknown() {
        // The full argv with `flag`'s value replaced, or the flag dropped.
        let with = |flag: &str, value: Option<&str>| {
            let mut argv = settings().to_argv();
            let i = argv.iter().position(|a| a == flag).unwrap();
            match value {
                Some(v) => argv[i + 1] = v.to_string(),
                None => drop(argv.drain(i..i + 2)),
            }
            GuardSettings::parse(&argv).unwrap_err().message
        };
        assert_eq!(with("--vault", None), "guard: --vault is missing");
        assert!(with("--drain", Some("30")).contains("\"30\" is not a duration"));
        assert!(with("--keep-generations", Some("all")).contains("is not a number"));
        assert!(with("--relay", Some("egress.sock")).contains("is not an absolute path"));
        assert_eq!(with("--relay", None), "guard: --relay is missing");
        let mut argv = settings().to_argv();
        assert!(with("--pinned-skills", Some("skills")).contains("is not an absolute path"));
        argv.truncate(21);
        assert_eq!(
            GuardSettings::parse(&argv).unwrap_err().message,
            "guard: no gateway command given"
        );
        let refused = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            GuardSettings::parse(&args).unwrap_err().message
        };
        assert!(refused(&["--checkpoint-ms", "0", "--", "x"]).contains("unknown option"));
        assert!(refused(&["--drain", "1s", "--drain", "2s", "--", "x"]).contains("twice"));
        assert!(refused(&["--drain", "--", "x"]).contains("--drain needs a value"));
        assert!(refused(&["x"]).contains("no `--`"));
    }

    #[test]
    fn every_status_round_trips() {
        let all = [
            Status::Ready { generation: 1 },
            Status::Failed(Failure::WrongKey),
            Status::Failed(Failure::NoKey),
            Status::Failed(Failure::MalformedKey),
            Status::Failed(Failure::Other("reading /vault/v: damaged: x".into())),
            Status::Checkpoint {
                generation: 7,
                pause: Duration::from_micros(12_500),
                seal: Duration::from_millis(21),
            },
            Status::CheckpointSkipped("copying /checkpoint/state/x: full".into()),
            Status::CheckpointFailed("writing: full".into()),
            Status::DrainOver {
                drain: Duration::from_secs(30),
            },
            Status::Outlived,
            Status::SkillDisplaced {
                name: "acip".into(),
                to: "safeclaw-displaced/acip.1.0".into(),
            },
            Status::SkillShadowed {
                name: "acip".into(),
                path: "workspace/skills/x/SKILL.md".into(),
            },
            Status::SkillChanged {
                name: "prompt-guard".into(),
            },
            Status::Sealed { generation: 8 },
        ];
        for status in all {
            let line = status.encode();
            assert!(line.starts_with("safeclaw-guard: "), "{line}");
            assert_eq!(Status::parse(&format!("{line}\n")), Some(status), "{line}");
        }
    }

    #[test]
    fn the_lines_read_as_before_and_a_reason_is_a_token() {
        assert_eq!(
            Status::Ready { generation: 3 }.encode(),
            "safeclaw-guard: ready generation=3"
        );
        assert_eq!(
            Status::Failed(Failure::WrongKey).encode(),
            "safeclaw-guard: error reason=wrong-key: the key does not open the vault"
        );
        // A gateway's line that reads like the reason is another failure.
        assert_eq!(
            Status::parse("safeclaw-guard: error reason=other: the key does not open the vault"),
            Some(Status::Failed(Failure::Other(
                "the key does not open the vault".into()
            )))
        );
        for other in [
            "gateway started",
            "safeclaw-guard: ready generation=x",
            "safeclaw-guard: error: the key does not open the vault",
            "safeclaw-guard: error reason=unheard-of: x",
            "safeclaw-guard: checkpoint generation=2 pause_ms=1.25 seal_ms=3",
        ] {
            assert_eq!(Status::parse(other), None, "{other}");
        }
        // A path the agent chose stays on one line, bounded.
        let line = Status::SkillShadowed {
            name: "acip".into(),
            path: format!("a\nsafeclaw-guard: ready generation=9\n{}", "x".repeat(500)),
        }
        .encode();
        assert!(!line.contains('\n') && line.len() < 300, "{line}");
        assert!(line.contains("a\\nsafeclaw-guard"), "{line}");
        assert_eq!(
            Status::parse("safeclaw-guard: skill changed name=../x"),
            None
        );
        assert_eq!(tenths_of_ms(Duration::from_micros(12_449)), "12.4");
        assert_eq!(tenths_of_ms(Duration::from_micros(12_450)), "12.5");
        assert_eq!(tenths_of_ms(Duration::ZERO), "0.0");
    }
}

//! Secrets where a container's configuration shows them to anyone with
//! engine access (`docker inspect`, `/proc/PID/environ`): API key and bot
//! token shapes, and variables named like secrets. What is reported says
//! where and what kind, never the value.

const ANTHROPIC_KEY: &str = "an Anthropic API key";
const OPENAI_KEY: &str = "an OpenAI-style API key";
const GOOGLE_KEY: &str = "a Google API key";
const GITHUB_TOKEN: &str = "a GitHub token";
const SLACK_TOKEN: &str = "a Slack token";
const TELEGRAM_TOKEN: &str = "a Telegram bot token";
/// Every kind `shape` names.
pub const KINDS: [&str; 6] = [
    ANTHROPIC_KEY,
    OPENAI_KEY,
    GOOGLE_KEY,
    GITHUB_TOKEN,
    SLACK_TOKEN,
    TELEGRAM_TOKEN,
];

/// The kind of secret a token looks like, if any. safeclaw's placeholders
/// (docs/secrets.md) look like keys on purpose, and are none.
pub fn shape(token: &str) -> Option<&'static str> {
    if token.contains(crate::secrets::providers::PLACEHOLDER_MARK) {
        return None;
    }
    let tail_ok = |rest: &str, min: usize| {
        rest.len() >= min
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if let Some(rest) = token.strip_prefix("sk-ant-") {
        return tail_ok(rest, 20).then_some(ANTHROPIC_KEY);
    }
    if let Some(rest) = token.strip_prefix("sk-") {
        return tail_ok(rest, 20).then_some(OPENAI_KEY);
    }
    if let Some(rest) = token.strip_prefix("AIza") {
        return (rest.len() == 35 && tail_ok(rest, 35)).then_some(GOOGLE_KEY);
    }
    for prefix in ["ghp_", "gho_", "ghs_", "ghu_", "github_pat_"] {
        if let Some(rest) = token.strip_prefix(prefix) {
            return tail_ok(rest, 20).then_some(GITHUB_TOKEN);
        }
    }
    for prefix in ["xoxb-", "xoxp-", "xoxa-", "xoxs-", "xoxr-"] {
        if let Some(rest) = token.strip_prefix(prefix) {
            return tail_ok(rest, 10).then_some(SLACK_TOKEN);
        }
    }
    // Telegram: BOT_ID:35 characters (https://core.telegram.org/bots/api).
    if let Some((id, secret)) = token.split_once(':') {
        if (8..=10).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_digit())
            && secret.len() == 35
            && tail_ok(secret, 35)
        {
            return Some(TELEGRAM_TOKEN);
        }
    }
    None
}

/// The first secret shape in free text (a command line, a label value).
pub fn shape_in(text: &str) -> Option<&'static str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "-_:".contains(c)))
        .find_map(shape)
}

/// The longest run of token characters looked at: keys are far shorter,
/// and a longer run (base64 in a database) is no key.
const MAX_TOKEN: usize = 512;

/// The secret shapes in arbitrary bytes (a file of the gateway's state,
/// SQLite included: its text is stored as it is), each kind once, in the
/// order first seen.
pub fn shapes_in_bytes(bytes: &[u8]) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = Vec::new();
    for (kind, _) in keys_in_bytes(bytes) {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

/// Every run of token characters in `bytes` that has a secret's shape,
/// with its kind, in order (`secrets adopt` takes the values).
pub fn keys_in_bytes(bytes: &[u8]) -> Vec<(&'static str, &str)> {
    let token_byte = |b: &u8| b.is_ascii_alphanumeric() || b"-_:".contains(b);
    bytes
        .split(|b| !token_byte(b))
        .filter(|t| (20..=MAX_TOKEN).contains(&t.len()))
        // Token bytes are ASCII.
        .filter_map(|t| std::str::from_utf8(t).ok())
        .filter_map(|t| shape(t).map(|kind| (kind, t)))
        .collect()
}

/// The secret `secrets adopt` keeps for a kind, when the kind names one
/// host: an Anthropic key and a Telegram token. An "sk-" key may be any
/// of a dozen providers' (OpenAI's, DeepSeek's, …): never guessed.
pub fn adoptable(kind: &str) -> Option<&'static str> {
    match kind {
        ANTHROPIC_KEY => Some("anthropic"),
        TELEGRAM_TOKEN => Some("telegram"),
        _ => None,
    }
}

/// `safeclaw scan-secrets`'s output (the container's: hostile, bounded by
/// the caller): (path, kind) of each well-formed line naming a known kind.
pub fn parse_scan(output: &[u8]) -> Vec<(String, &'static str)> {
    #[derive(serde::Deserialize)]
    struct Line {
        path: String,
        kind: String,
    }
    output
        .split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Line>(l).ok())
        .filter_map(|l| {
            let kind = KINDS.iter().find(|k| **k == l.kind)?;
            // Shown in a terminal: only printable characters of it.
            let path: String = l
                .path
                .chars()
                .filter(|c| !c.is_control())
                .take(256)
                .collect();
            Some((path, *kind))
        })
        .collect()
}

/// True for a variable name that says it holds a secret (and not merely
/// where one is, like `TOKEN_FILE`).
pub fn secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if upper.ends_with("_FILE") || upper.ends_with("_PATH") || upper.ends_with("_DIR") {
        return false;
    }
    [
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "TOKEN",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
    ]
    .iter()
    .any(|w| upper.contains(w))
}

/// Why an `NAME=value` environment entry exposes a secret, if it does.
pub fn in_env(entry: &str) -> Option<String> {
    let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
    if value.is_empty() {
        return None;
    }
    if let Some(kind) = shape_in(value) {
        return Some(format!("{name} holds {kind} ({} characters)", value.len()));
    }
    secret_name(name).then(|| {
        format!(
            "{name} is named like a secret and set ({} characters)",
            value.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_recognised_and_values_are_never_echoed() {
        let ant = format!("sk-ant-api03-{}", "A".repeat(90));
        assert_eq!(shape(&ant), Some("an Anthropic API key"));
        assert_eq!(
            shape(&format!("sk-proj-{}", "b".repeat(40))),
            Some("an OpenAI-style API key")
        );
        assert_eq!(
            shape(&format!("AIza{}", "c".repeat(35))),
            Some("a Google API key")
        );
        let bot = format!("123456789:{}", "AAH-x_".repeat(5) + "abcde");
        assert_eq!(shape(&bot), Some("a Telegram bot token"));
        for not in [
            "sk-short",
            "12345:abc",
            "AIzaShort",
            "hello",
            "sk-ant-",
            "1234567:xx",
        ] {
            assert_eq!(shape(not), None, "{not}");
        }
        assert_eq!(
            shape_in(&format!("openclaw --token {bot} gateway")),
            Some("a Telegram bot token")
        );
        let why = in_env(&format!("ANTHROPIC_API_KEY={ant}")).unwrap();
        assert!(!why.contains(&ant) && why.contains("Anthropic"), "{why}");
        let why = in_env("SECRET_KEY=hunter2-but-longer").unwrap();
        assert!(!why.contains("hunter2"), "{why}");
        assert_eq!(in_env("TOKEN_FILE=/run/secrets/bot"), None);
        assert_eq!(in_env("SECRET_KEY="), None);
        assert_eq!(in_env("PATH=/usr/bin"), None);
    }

    #[test]
    fn keys_are_found_in_bytes_and_placeholders_are_not_keys() {
        let ant = format!("sk-ant-api03-{}", "A".repeat(90));
        let mut db = b"SQLite format 3\x00\x01\x02".to_vec();
        db.extend_from_slice(ant.as_bytes());
        db.extend_from_slice(b"\x00\x07{\"botToken\":\"123456789:");
        db.extend_from_slice("AAH-x_".repeat(5).as_bytes());
        db.extend_from_slice(b"abcde\"}");
        assert_eq!(
            shapes_in_bytes(&db),
            ["an Anthropic API key", "a Telegram bot token"]
        );
        let p = crate::secrets::providers::find("anthropic")
            .unwrap()
            .placeholder("x")
            .unwrap();
        assert_eq!(shape(&p), None);
        assert!(shapes_in_bytes(p.as_bytes()).is_empty());
        assert!(shapes_in_bytes(&"sk-ant-".repeat(200).into_bytes()).is_empty());
    }
}

//! Secrets where a container's configuration shows them to anyone with
//! engine access (`docker inspect`, `/proc/PID/environ`): API key and bot
//! token shapes, and variables named like secrets. What is reported says
//! where and what kind, never the value.

/// The kind of secret a token looks like, if any.
pub fn shape(token: &str) -> Option<&'static str> {
    let tail_ok = |rest: &str, min: usize| {
        rest.len() >= min
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if let Some(rest) = token.strip_prefix("sk-ant-") {
        return tail_ok(rest, 20).then_some("an Anthropic API key");
    }
    if let Some(rest) = token.strip_prefix("sk-") {
        return tail_ok(rest, 20).then_some("an OpenAI-style API key");
    }
    if let Some(rest) = token.strip_prefix("AIza") {
        return (rest.len() == 35 && tail_ok(rest, 35)).then_some("a Google API key");
    }
    for prefix in ["ghp_", "gho_", "ghs_", "ghu_", "github_pat_"] {
        if let Some(rest) = token.strip_prefix(prefix) {
            return tail_ok(rest, 20).then_some("a GitHub token");
        }
    }
    for prefix in ["xoxb-", "xoxp-", "xoxa-", "xoxs-", "xoxr-"] {
        if let Some(rest) = token.strip_prefix(prefix) {
            return tail_ok(rest, 10).then_some("a Slack token");
        }
    }
    // Telegram: BOT_ID:35 characters (https://core.telegram.org/bots/api).
    if let Some((id, secret)) = token.split_once(':') {
        if (8..=10).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_digit())
            && secret.len() == 35
            && tail_ok(secret, 35)
        {
            return Some("a Telegram bot token");
        }
    }
    None
}

/// The first secret shape in free text (a command line, a label value).
pub fn shape_in(text: &str) -> Option<&'static str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "-_:".contains(c)))
        .find_map(shape)
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
}

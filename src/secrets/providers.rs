//! The secrets safeclaw knows how to keep out of the gateway: for each,
//! the host it belongs to (the only one the egress proxy puts it into a
//! request for), the OpenClaw setting that sends its requests to the
//! proxy's broker instead of the host, and the placeholder's shape.
//!
//! Measured with the pinned OpenClaw 2026.9.6: with
//! `models.providers.anthropic.baseUrl` set to the broker's URL it sends
//! `POST <url>/v1/messages` with `x-api-key: <placeholder>`, and with
//! `channels.telegram.apiRoot` set it sends `<url>/bot<token>/<method>`
//! (docs/secrets.md).

use crate::egress::network::RELAY_LISTEN;

/// The broker's path prefix on the relay (docs/broker.md).
pub const BROKER_PREFIX: &str = "/safeclaw-broker/";
/// Marks every placeholder, so the audit's search for real-looking keys
/// passes over them and a reader of the state sees what they are.
pub const PLACEHOLDER_MARK: &str = "safeclaw-placeholder-";

#[derive(Debug)]
pub struct Provider {
    /// The id: `secrets set NAME`, `onboard --api-key-file`'s provider.
    pub name: &'static str,
    pub host: &'static str,
    pub port: u16,
    /// The OpenClaw setting pointed at the broker.
    pub setting: &'static str,
    /// What follows the broker's URL in that setting (the API's version
    /// path where OpenClaw expects it in the base URL).
    pub url_suffix: &'static str,
    /// The placeholder's start: a prefix OpenClaw accepts for such a key.
    pub placeholder_prefix: &'static str,
}

pub const PROVIDERS: [Provider; 3] = [
    Provider {
        name: "anthropic",
        host: "api.anthropic.com",
        port: 443,
        setting: "models.providers.anthropic.baseUrl",
        url_suffix: "",
        placeholder_prefix: "sk-ant-",
    },
    Provider {
        name: "openai",
        host: "api.openai.com",
        port: 443,
        setting: "models.providers.openai.baseUrl",
        url_suffix: "/v1",
        placeholder_prefix: "sk-",
    },
    Provider {
        name: "telegram",
        host: "api.telegram.org",
        port: 443,
        setting: "channels.telegram.apiRoot",
        url_suffix: "",
        placeholder_prefix: "",
    },
];

pub fn find(name: &str) -> Result<&'static Provider, String> {
    PROVIDERS.iter().find(|p| p.name == name).ok_or_else(|| {
        format!(
            "safeclaw does not know where a {name:?} secret belongs; it knows {}",
            names()
        )
    })
}

/// The known names, for messages.
pub fn names() -> String {
    PROVIDERS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Provider {
    /// The value of `setting` in the gateway's config.
    pub fn broker_url(&self) -> String {
        format!(
            "http://{RELAY_LISTEN}{BROKER_PREFIX}{}{}",
            self.name, self.url_suffix
        )
    }

    /// A fresh placeholder for `value`. A Telegram token is `ID:SECRET`,
    /// and OpenClaw reads the bot's id off it: the placeholder keeps the
    /// id (public: it is in every message the bot sends) and replaces the
    /// secret part.
    pub fn placeholder(&self, value: &str) -> Result<String, String> {
        let random = crate::private_fs::hex(&crate::vault::crypto::random_array::<16>());
        if self.name == "telegram" {
            let id = bot_id(value)?;
            return Ok(format!("{id}:{PLACEHOLDER_MARK}{random}"));
        }
        Ok(format!(
            "{}{PLACEHOLDER_MARK}{}-{random}",
            self.placeholder_prefix, self.name
        ))
    }

    /// A new value must fit the placeholder the gateway holds: a Telegram
    /// token of another bot (another id) would not.
    pub fn check_same_identity(&self, placeholder: &str, value: &str) -> Result<(), String> {
        if self.name != "telegram" {
            return Ok(());
        }
        let id = bot_id(value)?;
        if placeholder.split(':').next() != Some(id) {
            return Err(format!(
                "this token is of bot {id}, and the vault's gateway is set up for another bot: remove the telegram secret first (`safeclaw secrets remove telegram`) and onboard the new bot"
            ));
        }
        Ok(())
    }
}

/// The bot's id of a Telegram token (`DIGITS:REST`).
fn bot_id(token: &str) -> Result<&str, String> {
    match token.split_once(':') {
        Some((id, rest))
            if !id.is_empty()
                && id.len() <= 20
                && id.bytes().all(|b| b.is_ascii_digit())
                && !rest.is_empty() =>
        {
            Ok(id)
        }
        _ => Err(
            "a Telegram bot token is the bot's id, a colon and the secret (from @BotFather)".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_placeholders_have_the_shapes_openclaw_takes() {
        let a = find("anthropic").unwrap();
        assert_eq!(
            a.broker_url(),
            "http://127.0.0.1:3128/safeclaw-broker/anthropic"
        );
        assert_eq!(
            find("openai").unwrap().broker_url(),
            "http://127.0.0.1:3128/safeclaw-broker/openai/v1"
        );
        let p = a.placeholder("sk-ant-x").unwrap();
        assert!(
            p.starts_with("sk-ant-safeclaw-placeholder-anthropic-"),
            "{p}"
        );
        assert_ne!(p, a.placeholder("sk-ant-x").unwrap());
        let t = find("telegram").unwrap();
        assert!(t
            .placeholder("12:abc")
            .unwrap()
            .starts_with("12:safeclaw-placeholder-"));
        for bad in ["abc", ":abc", "12:", "1a:b"] {
            assert!(t.placeholder(bad).is_err(), "{bad}");
        }
        assert!(find("nope")
            .unwrap_err()
            .contains("anthropic, openai, telegram"));
    }
}

//! The vault's secrets (docs/secrets.md): the model providers' API keys
//! and the Telegram bot token, kept out of the gateway's state. The
//! gateway holds a placeholder for each; the egress proxy holds the real
//! value and puts it into requests for the secret's own host only
//! (docs/broker.md).
//!
//! Here: the secrets section's plaintext as pure functions over bytes
//! (`encode`, `decode`), and what each known secret is (`providers`). The
//! section is sealed under the secrets key (`vault::crypto::SecretsKey`),
//! which the guard in the gateway's container never gets.

pub mod providers;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::egress::handoff;
use crate::egress::network::BrokerHandoff;
use crate::error::{Error, Result};
use crate::vault::{Keys, VaultFile};

/// The most secrets a vault holds, and the longest value (API keys and
/// bot tokens are a few hundred bytes at most): so many of the longest,
/// with their placeholders, still fit the header's secrets slot
/// (`format::MAX_SECRETS_LEN`; checked by a test).
pub const MAX_SECRETS: usize = 8;
pub const MAX_VALUE: usize = 1024;

/// One secret: the real value and the placeholder the gateway holds.
pub struct Secret {
    /// A known provider's id (`providers::find`).
    pub name: String,
    pub value: Zeroizing<String>,
    pub placeholder: String,
    /// Unix seconds of the last `secrets set`.
    pub set_at: u64,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("placeholder", &self.placeholder)
            .field("set_at", &self.set_at)
            .finish_non_exhaustive()
    }
}

/// The secrets of a vault, in the order they were first set.
#[derive(Debug, Default)]
pub struct Secrets(pub Vec<Secret>);

#[derive(Serialize, Deserialize)]
struct Section<'a> {
    #[serde(borrow)]
    secrets: Vec<Entry<'a>>,
}

/// Borrowed from the plaintext buffer, so no copy of a value is made
/// outside zeroizing memory (values are checked to need no JSON escape).
#[derive(Serialize, Deserialize)]
struct Entry<'a> {
    name: &'a str,
    value: &'a str,
    placeholder: &'a str,
    set_at: u64,
}

impl Secrets {
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.0.iter().find(|s| s.name == name)
    }

    /// Sets `name` to `value`, keeping its placeholder when it had one (the
    /// gateway's state holds it) and making one otherwise.
    pub fn set(
        &mut self,
        name: &str,
        value: Zeroizing<String>,
        now: u64,
    ) -> std::result::Result<(), String> {
        let provider = providers::find(name)?;
        check_value(&value)?;
        if let Some(s) = self.0.iter_mut().find(|s| s.name == name) {
            provider.check_same_identity(&s.placeholder, &value)?;
            s.value = value;
            s.set_at = now;
            return Ok(());
        }
        if self.0.len() >= MAX_SECRETS {
            return Err(format!("a vault holds at most {MAX_SECRETS} secrets"));
        }
        let placeholder = provider.placeholder(&value)?;
        self.0.push(Secret {
            name: name.to_string(),
            value,
            placeholder,
            set_at: now,
        });
        Ok(())
    }

    /// Removes `name`; false if there was none.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|s| s.name != name);
        self.0.len() != before
    }
}

/// What may be a secret's value: printable ASCII without spaces, quotes or
/// backslashes (what API keys and bot tokens are made of), so it goes into
/// a header or a path as it is and its JSON needs no escape.
pub fn check_value(value: &str) -> std::result::Result<(), String> {
    if value.is_empty() {
        return Err("the secret is empty".into());
    }
    if value.len() > MAX_VALUE {
        return Err(format!("the secret is longer than {MAX_VALUE} bytes"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        return Err(
            "the secret holds a character API keys and tokens never do (a space, a quote, a backslash or a non-ASCII one)"
                .into(),
        );
    }
    Ok(())
}

/// The section's plaintext.
pub fn encode(secrets: &Secrets) -> Zeroizing<Vec<u8>> {
    let section = Section {
        secrets: secrets
            .0
            .iter()
            .map(|s| Entry {
                name: &s.name,
                value: &s.value,
                placeholder: &s.placeholder,
                set_at: s.set_at,
            })
            .collect(),
    };
    // Into a buffer sized up front: a growing Vec would leave copies of
    // the values behind in the allocations it gave up.
    let room = 64
        + secrets
            .0
            .iter()
            .map(|s| 96 + s.name.len() + s.value.len() + s.placeholder.len())
            .sum::<usize>();
    let mut out = Zeroizing::new(Vec::with_capacity(room));
    serde_json::to_writer(&mut *out, &section).expect("a Vec takes any JSON");
    debug_assert!(out.len() <= room);
    out
}

/// Parses a section's plaintext (authenticated, but bounded and checked
/// all the same).
pub fn decode(plain: &[u8]) -> std::result::Result<Secrets, String> {
    let section: Section = serde_json::from_slice(plain)
        .map_err(|e| format!("the secrets section is not what safeclaw writes: {e}"))?;
    if section.secrets.len() > MAX_SECRETS {
        return Err(format!("more than {MAX_SECRETS} secrets"));
    }
    let mut out = Secrets::default();
    for e in section.secrets {
        providers::find(e.name)?;
        check_value(e.value)?;
        check_value(e.placeholder)?;
        if out.get(e.name).is_some() {
            return Err(format!("the secret {} is there twice", e.name));
        }
        out.0.push(Secret {
            name: e.name.to_string(),
            value: Zeroizing::new(e.value.to_string()),
            placeholder: e.placeholder.to_string(),
            set_at: e.set_at,
        });
    }
    Ok(out)
}

/// The secrets of an unlocked vault: None when its header has no secrets
/// section (every vault before version 3, and those that never had one).
pub fn load(vault: &VaultFile, keys: &Keys) -> Result<Option<Secrets>> {
    let Some(sealed) = vault.secrets_section() else {
        return Ok(None);
    };
    let damaged = |why: String| {
        Error::damaged(format!("{}: {why}", vault.path.display()))
            .with_hint("restore the vault from a backup; this file cannot be trusted")
    };
    let plain = keys
        .secrets_key()
        .and_then(|k| k.open(sealed))
        .ok_or_else(|| damaged("its secrets section does not open with the vault's key".into()))?;
    decode(&plain).map(Some).map_err(damaged)
}

/// The egress proxy's hand-off of `secrets` (docs/broker.md): each with
/// the host it belongs to, and `ca_pem` (`--egress-ca`) trusted besides
/// the system's roots.
pub fn handoff(secrets: &Secrets, ca_pem: Option<&[u8]>) -> Result<BrokerHandoff> {
    let routes = secrets
        .0
        .iter()
        .map(|s| {
            let p = providers::find(&s.name).map_err(Error::damaged)?;
            Ok(handoff::Route {
                name: s.name.clone(),
                host: p.host.to_string(),
                port: p.port,
                placeholder: s.placeholder.clone(),
                secret: s.value.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let h = handoff::Handoff {
        routes,
        roots_pem: ca_pem.map(<[u8]>::to_vec).unwrap_or_default(),
    };
    handoff::check(&h).map_err(|why| Error::usage(format!("the egress proxy's secrets: {why}")))?;
    Ok(BrokerHandoff(handoff::encode(&h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> Zeroizing<String> {
        Zeroizing::new(s.to_string())
    }

    #[test]
    fn a_section_reads_back_and_keeps_its_placeholders() {
        let mut s = Secrets::default();
        s.set("anthropic", value("sk-ant-api03-REAL"), 7).unwrap();
        s.set("telegram", value("123456789:AAreal-token_x"), 8)
            .unwrap();
        let back = decode(&encode(&s)).unwrap();
        assert_eq!(back.0.len(), 2);
        let a = back.get("anthropic").unwrap();
        assert_eq!(a.value.as_str(), "sk-ant-api03-REAL");
        assert_eq!(a.placeholder, s.get("anthropic").unwrap().placeholder);
        assert!(!a.placeholder.contains("REAL"));
        let t = back.get("telegram").unwrap();
        // The bot's id is not secret and OpenClaw reads it off the token.
        assert!(t.placeholder.starts_with("123456789:"), "{}", t.placeholder);
        assert!(!t.placeholder.contains("AAreal"));
        // A new value keeps the placeholder the gateway already holds.
        let mut again = back;
        let before = again.get("anthropic").unwrap().placeholder.clone();
        again
            .set("anthropic", value("sk-ant-api03-NEW"), 9)
            .unwrap();
        assert_eq!(again.get("anthropic").unwrap().placeholder, before);
        assert!(again.remove("anthropic") && !again.remove("anthropic"));
    }

    #[test]
    fn the_largest_section_fits_the_header_s_slot() {
        let mut s = Secrets::default();
        for (i, name) in ["anthropic", "openai", "telegram"].iter().enumerate() {
            let value = format!("{i}:{}", "v".repeat(MAX_VALUE - 2));
            s.set(name, value.into(), u64::MAX).unwrap();
        }
        // Of the names known today; the bound holds for MAX_SECRETS of them.
        let one = encode(&s).len() / 3 + 1;
        let sealed = 12 + 16 + one * MAX_SECRETS + 16;
        assert!(
            sealed <= crate::vault::format::MAX_SECRETS_LEN,
            "{sealed} > {}",
            crate::vault::format::MAX_SECRETS_LEN
        );
    }

    #[test]
    fn bad_values_and_sections_are_refused() {
        let mut s = Secrets::default();
        for bad in ["", "has space", "quo\"te", "back\\slash", "é"] {
            assert!(s.set("anthropic", value(bad), 1).is_err(), "{bad:?}");
        }
        assert!(s
            .set("anthropic", value(&"k".repeat(MAX_VALUE + 1)), 1)
            .is_err());
        assert!(s.set("nobody-knows", value("x"), 1).is_err());
        // A token of another bot would not match the placeholder's id.
        s.set("telegram", value("1:aaa"), 1).unwrap();
        assert!(s.set("telegram", value("2:bbb"), 1).is_err());
        for bad in [
            &b"not json"[..],
            br#"{"secrets":[{"name":"x","value":"v","placeholder":"p","set_at":1}]}"#,
            br#"{"secrets":[{"name":"anthropic","value":"a b","placeholder":"p","set_at":1}]}"#,
        ] {
            assert!(decode(bad).is_err());
        }
        let twice = br#"{"secrets":[{"name":"anthropic","value":"v","placeholder":"p","set_at":1},{"name":"anthropic","value":"v","placeholder":"p","set_at":1}]}"#;
        assert!(decode(twice).unwrap_err().contains("twice"));
    }
}

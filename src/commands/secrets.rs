//! `safeclaw secrets list`, `set` and `remove`: the API keys and bot
//! token the vault keeps out of the gateway, in its header's secrets
//! section (docs/secrets.md). A change is sealed as the vault's next
//! generation, its payload copied through; refused while a bot runs from
//! the vault, since its proxy holds the secrets it started with and its
//! guard's seals race the change.

use serde_json::json;

use crate::error::{Error, Result};
use crate::password::Confirm;
use crate::printer::Printer;
use crate::runtime::engine::Engine;
use crate::secrets::{self, providers, Secrets};
use crate::vault::crypto::{DataKey, SecretsKey};
use crate::vault::{self, Keys, VaultFile};

use super::egress_policy::refuse_while_running;
use super::settings::{EgressPolicy, SecretsChange};
use super::shared;

pub fn list(s: EgressPolicy, printer: &Printer) -> Result<()> {
    let path = crate::paths::vault(&s.vault)?;
    let vault = VaultFile::open(&path)?;
    let keys = shared::unlock_keys(&vault, &s.password, printer)?;
    let kept = secrets::load(&vault, &keys)?.unwrap_or_default();
    let used = last_used(&vault.records(&keys.data)?);
    let mut lines = Vec::new();
    let mut rows = Vec::new();
    for s in &kept.0 {
        let p = providers::find(&s.name).map_err(Error::damaged)?;
        let last = used.iter().find(|(n, _)| *n == s.name).map(|(_, t)| *t);
        let when = |t: u64| {
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(t),
            )
            .to_string()
        };
        lines.push(format!(
            "{:<10} for {}:{}  set {}  last used {}",
            s.name,
            p.host,
            p.port,
            when(s.set_at),
            last.map(|ms| when(ms / 1000))
                .unwrap_or_else(|| "never".into())
        ));
        rows.push(json!({
            "name": s.name, "host": p.host, "port": p.port,
            "placeholder": s.placeholder, "set_at": s.set_at,
            "last_used_ms": last,
        }));
    }
    let text = if lines.is_empty() {
        format!(
            "{} keeps no secrets out of the gateway{}",
            path.display(),
            if vault.header().version < vault::format::MASTER_KEY_VERSION {
                " (format version 2: `safeclaw vault rekey` moves it to 3, which can)"
            } else {
                ""
            }
        )
    } else {
        format!("secrets (values never shown):\n  {}", lines.join("\n  "))
    };
    printer.result(&text, json!({ "ok": true, "vault": path, "secrets": rows }));
    Ok(())
}

/// When each secret was last put into a request: the newest broker event
/// naming it in the egress log the vault keeps (Unix milliseconds).
fn last_used(records: &vault::Records) -> Vec<(String, u64)> {
    #[derive(serde::Deserialize)]
    struct Used<'a> {
        time_ms: u64,
        decision: &'a str,
        secret: Option<&'a str>,
    }
    let mut out: Vec<(String, u64)> = Vec::new();
    let log = records
        .get(crate::egress::log_file::RECORD)
        .unwrap_or_default();
    for line in log.split(|&b| b == b'\n') {
        let Ok(u) = serde_json::from_slice::<Used>(line) else {
            continue;
        };
        let (Some(name), "allowed") = (u.secret, u.decision) else {
            continue;
        };
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, t)) => *t = (*t).max(u.time_ms),
            None => out.push((name.to_string(), u.time_ms)),
        }
    }
    out
}

pub fn change(s: SecretsChange, engine: &Engine, printer: &Printer) -> Result<()> {
    let (path, keys, secrets_key, mut kept) = open_for_change(&s, engine, printer)?;
    let provider = providers::find(&s.name).map_err(Error::usage)?;
    let had = kept.get(&s.name).is_some();
    match &s.value {
        Some(source) => {
            let (value, warning) = crate::password::read(source, "secret", Confirm::Once)?;
            if let Some(w) = warning {
                printer.warn(&w);
            }
            let value = std::str::from_utf8(value.as_bytes())
                .map(|v| zeroize::Zeroizing::new(v.to_string()))
                .map_err(|_| Error::usage("the secret is not text"))?;
            kept.set(&s.name, value, vault::now())
                .map_err(|why| Error::usage(format!("the {} secret: {why}", s.name)))?;
        }
        None if !kept.remove(&s.name) => {
            return Err(
                Error::usage(format!("{} keeps no {} secret", path.display(), s.name))
                    .with_hint("`safeclaw secrets list` shows what it keeps"),
            );
        }
        None => {}
    }
    // A secret new to the vault: first its gateway's OpenClaw gets the
    // placeholder, and the setting that sends its requests to the broker,
    // in a short run of the vault; then the vault keeps the value. A
    // failure in between leaves a placeholder without its secret (its
    // requests fail); running the command again finishes it.
    let give = s.value.is_some() && !had && !s.vault_only;
    let names: &[&str] = if give { &[&s.name] } else { &[] };
    let generation = store(
        &s,
        &path,
        &keys,
        &secrets_key,
        &kept,
        names,
        engine,
        printer,
    )?;
    let json = json!({ "ok": true, "vault": path, "generation": generation, "name": s.name,
                        "set": s.value.is_some(), "host": provider.host,
                        "placeholder_given": give });
    if s.value.is_none() {
        printer.result(
            &format!(
                "removed the {} secret (vault generation {generation}); requests of the gateway for it now reach {} with its placeholder, and fail",
                s.name, provider.host
            ),
            json,
        );
        return Ok(());
    }
    if give {
        printer.note(&format!(
            "the gateway's OpenClaw now holds a placeholder for it and sends its {} requests to the egress proxy; a real key it held before may still be in its state and older generations, and the agent may have read it: rotate it at the provider",
            s.name
        ));
    } else if !had {
        printer.note(&format!(
            "--vault-only: the gateway's state was left as it is; its OpenClaw must hold the placeholder `safeclaw secrets list` shows and send {} requests to {} (docs/secrets.md)",
            s.name,
            provider.broker_url()
        ));
    }
    printer.result(
        &format!(
            "set the {} secret for {} (vault generation {generation}); the egress proxy puts it into requests from the next start",
            s.name, provider.host
        ),
        json,
    );
    Ok(())
}

/// The vault `s` names, checked to keep secrets and not in use, unlocked;
/// with its secrets key and what it keeps.
fn open_for_change(
    s: &SecretsChange,
    engine: &Engine,
    printer: &Printer,
) -> Result<(std::path::PathBuf, Keys, SecretsKey, Secrets)> {
    let path = crate::paths::vault(&s.vault.vault)?;
    let path = crate::paths::in_resolved_dir(&path)?;
    refuse_while_running(engine, &path, "secrets")?;
    let vault = VaultFile::open(&path)?;
    let keys = shared::unlock_keys(&vault, &s.vault.password, printer)?;
    let Some(secrets_key) = keys.secrets_key() else {
        return Err(Error::usage(format!(
            "{} is vault format version {}, whose password slot opens the guard's key: it cannot keep secrets from the gateway",
            path.display(),
            vault.header().version
        ))
        .with_hint("`safeclaw vault rekey` moves it to the current version (a new key for it and its kept generations)"));
    };
    let kept = secrets::load(&vault, &keys)?.unwrap_or_default();
    Ok((path, keys, secrets_key, kept))
}

/// Writes `kept` into the vault: first, for the secrets `names` new to it,
/// its gateway's OpenClaw gets their placeholders and the settings that
/// send their requests to the broker, in a short run of the vault; then
/// the vault keeps the values. A failure in between leaves a placeholder
/// without its secret (its requests fail); running the command again
/// finishes it. Returns the generation written last.
#[allow(clippy::too_many_arguments)]
fn store(
    s: &SecretsChange,
    path: &std::path::Path,
    keys: &Keys,
    secrets_key: &SecretsKey,
    kept: &Secrets,
    names: &[&str],
    engine: &Engine,
    printer: &Printer,
) -> Result<u64> {
    if !names.is_empty() {
        let image = crate::image::resolve::resolve(engine, &s.image, true, printer)?;
        let target = crate::runtime::onboarding::Target {
            image: &image,
            vault: path,
            key: &keys.data,
            limits: s.limits.clone(),
            keep_generations: s.keep_generations,
        };
        let sealed =
            crate::runtime::onboarding::give_placeholders(engine, target, kept, names, printer)?;
        crate::rollback::record_authenticated(path, sealed, printer);
    }
    let section = (!kept.0.is_empty()).then(|| secrets_key.seal(&secrets::encode(kept)));
    let generation = vault::rewrite_secrets(path, &keys.data, s.keep_generations, section)?;
    crate::rollback::record_authenticated(path, generation, printer);
    Ok(generation)
}

/// The largest file of the state `adopt` reads: OpenClaw keeps its keys in
/// small files (its config, SQLite databases); its caches are far larger.
const ADOPT_FILE_MAX: u64 = 64 << 20;

/// The real-looking keys in the state of the vault at `path`: (the file,
/// the secret it would be, the value), in archive order.
fn keys_in_state(
    path: &std::path::Path,
    key: &DataKey,
) -> Result<Vec<(String, &'static str, zeroize::Zeroizing<String>)>> {
    let mut found = Vec::new();
    VaultFile::open(path)?.each_file(key, |file, len, content| {
        if len <= ADOPT_FILE_MAX {
            let bytes = crate::vault::archive::read_content(content, file, len)?;
            for (kind, value) in crate::audit::secrets::keys_in_bytes(&bytes) {
                if let Some(name) = crate::audit::secrets::adoptable(kind) {
                    found.push((
                        file.display().to_string(),
                        name,
                        zeroize::Zeroizing::new(value.to_string()),
                    ));
                }
            }
        }
        Ok(crate::vault::archive::Flow::Next)
    })?;
    Ok(found)
}

/// `safeclaw secrets adopt`: the Anthropic key and the Telegram token a
/// vault onboarded before keeps in its gateway's state move into the
/// vault's secrets, and OpenClaw gets placeholders in their places (a
/// short run of the vault, as `set` does for a new secret).
pub fn adopt(s: SecretsChange, engine: &Engine, printer: &Printer) -> Result<()> {
    let (path, keys, secrets_key, mut kept) = open_for_change(&s, engine, printer)?;
    let spinner = printer.spinner("searching the gateway's state for keys");
    let found = keys_in_state(&path, &keys.data);
    spinner.finish_and_clear();
    let found = found?;
    // One value per secret: the state's, unless the vault keeps one already.
    let mut names: Vec<&str> = Vec::new();
    for (file, name, value) in &found {
        let ambiguous = || {
            Error::usage(format!(
                "the gateway's state holds more than one {name} key ({file} holds one of them)"
            ))
            .with_hint(format!(
                "set the one in use with `safeclaw secrets set {name} --from-file FILE`"
            ))
        };
        match kept.get(name) {
            Some(k) if k.value.as_str() == value.as_str() => continue,
            Some(_) => return Err(ambiguous()),
            None => {}
        }
        kept.set(name, value.clone(), vault::now())
            .map_err(|why| Error::usage(format!("the {name} key found in {file}: {why}")))?;
        names.push(name);
    }
    if names.is_empty() {
        let kinds = if found.is_empty() {
            "no Anthropic key or Telegram token".to_string()
        } else {
            "only keys the vault already keeps".to_string()
        };
        printer.result(
            &format!(
                "the gateway's state of {} holds {kinds}: nothing to adopt",
                path.display()
            ),
            json!({ "ok": true, "vault": path, "adopted": Vec::<String>::new() }),
        );
        return Ok(());
    }
    let generation = store(
        &s,
        &path,
        &keys,
        &secrets_key,
        &kept,
        &names,
        engine,
        printer,
    )?;
    // What the run left: OpenClaw rewrote its credentials, but a database
    // keeps deleted values until it is vacuumed, and backups of its config
    // stay. Said, with the remedy that always works.
    let left: Vec<String> = keys_in_state(&path, &keys.data)?
        .into_iter()
        .map(|(file, name, _)| format!("{name} in {file}"))
        .collect();
    if !left.is_empty() {
        printer.warn(&format!(
            "the real value is still in the gateway's state ({}): OpenClaw keeps old copies; rotate the key at the provider, then `safeclaw secrets set` the new one",
            left.join(", ")
        ));
    }
    printer.warn("the agent could read these keys until now, and older generations keep them: rotate them at the provider, then `safeclaw secrets set NAME` the new ones");
    printer.result(
        &format!(
            "adopted {} (vault generation {generation}): the vault keeps them for the egress proxy; OpenClaw holds placeholders",
            names.join(", ")
        ),
        json!({ "ok": true, "vault": path, "generation": generation, "adopted": names,
                "still_in_state": left }),
    );
    Ok(())
}

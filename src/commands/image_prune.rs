//! `safeclaw image prune`: removes safeclaw's images that nothing holds on
//! to (`image/inventory.rs`: no container, running or stopped, uses it; not
//! the pinned image; not the default twin). Asks first on a terminal;
//! without one, only `--yes` removes.

use std::io::IsTerminal;

use serde_json::json;

use crate::cli::ImagePruneArgs;
use crate::error::{Class, Error, ExitStatus, Result};
use crate::image::inventory::{self, Entry, Removed};
use crate::image::provenance::short;
use crate::printer::Printer;
use crate::runtime::engine::Engine;

pub fn run(args: &ImagePruneArgs, engine: &Engine, printer: &Printer) -> Result<ExitStatus> {
    let entries = inventory::current(engine)?;
    let (remove, keep) = inventory::prune_plan(&entries);
    let kept: Vec<_> = keep
        .iter()
        .map(|(e, why)| {
            let mut j = inventory::to_json(e);
            j["kept_because"] = why.iter().map(|w| w.describe()).collect();
            j
        })
        .collect();
    let kept_text: Vec<String> = keep
        .iter()
        .map(|(e, why)| {
            let why: Vec<String> = why.iter().map(|w| w.describe()).collect();
            format!("  keeps {}: {}", name(e), why.join("; "))
        })
        .collect();
    let listed: Vec<_> = remove.iter().map(|e| inventory::to_json(e)).collect();
    let plan_text: Vec<String> = remove.iter().map(|e| format!("  {}", line(e))).collect();
    let size: i64 = remove.iter().map(|e| e.image.size).sum();
    let summary = format!("{}, {} MB", images(remove.len()), size / 1_000_000);
    if remove.is_empty() {
        printer.result(
            format!(
                "nothing to prune: {} of safeclaw's, all kept\n{}",
                images(keep.len()),
                kept_text.join("\n")
            )
            .trim_end(),
            json!({ "ok": true, "removed": [], "kept": kept }),
        );
        return Ok(ExitStatus::Success);
    }
    let plan = format!("{}\n{}", plan_text.join("\n"), kept_text.join("\n"))
        .trim_end()
        .to_string();
    if args.dry_run {
        printer.result(
            &format!("would remove {summary}:\n{plan}"),
            json!({ "ok": true, "dry_run": true, "would_remove": listed, "kept": kept }),
        );
        return Ok(ExitStatus::Success);
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            printer.note(&format!("would remove {summary}:\n{plan}"));
            return Err(Error::usage(format!(
                "refusing to remove {summary} without confirmation: stdin is not a terminal"
            ))
            .with_hint("pass --yes to remove them; --dry-run only lists them"));
        }
        if !super::shared::confirm(&format!("remove {summary}:\n{plan}\nremove them?"))? {
            printer.result(
                "nothing removed",
                json!({ "ok": true, "removed": [], "declined": true, "kept": kept }),
            );
            return Ok(ExitStatus::Success);
        }
    }
    let docker = engine.docker()?;
    let done = engine.block_on(inventory::remove(docker, &remove))?;
    let mut lines = Vec::new();
    let (mut removed, mut in_use, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for ((id, outcome), entry) in done.iter().zip(&remove) {
        match outcome {
            Removed::Removed => {
                lines.push(format!("removed {}", line(entry)));
                removed.push(json!(id));
            }
            Removed::InUse(users) => {
                lines.push(format!(
                    "kept {}: used by {} since the listing",
                    name(entry),
                    users.join(", ")
                ));
                in_use.push(json!({ "id": id, "containers": users }));
            }
            Removed::Failed(why) => {
                printer.warn(&format!("{} was not removed: {why}", name(entry)));
                failed.push(json!({ "id": id, "error": why }));
            }
        }
    }
    let freed: i64 = done
        .iter()
        .zip(&remove)
        .filter(|((_, o), _)| *o == Removed::Removed)
        .map(|(_, e)| e.image.size)
        .sum();
    lines.push(format!(
        "removed {} of {} ({} MB)",
        removed.len(),
        images(remove.len()),
        freed / 1_000_000
    ));
    printer.result(
        &lines.join("\n"),
        json!({
            "ok": failed.is_empty(),
            "removed": removed,
            "in_use": in_use,
            "failed": failed,
            "kept": kept,
        }),
    );
    // The failures were said above (and in the JSON): the engine's exit code.
    Ok(if failed.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Reported(Class::Engine)
    })
}

/// "1 image", "2 images".
fn images(n: usize) -> String {
    format!("{n} image{}", if n == 1 { "" } else { "s" })
}

/// Tags (or `<none>`) and the short ID.
fn name(e: &Entry) -> String {
    let tags = if e.image.tags.is_empty() {
        "<none>".to_string()
    } else {
        e.image.tags.join(", ")
    };
    format!("{tags} ({})", short(&e.image.id))
}

fn line(e: &Entry) -> String {
    let note = inventory::notes(e);
    format!(
        "{}, {} MB, openclaw {}{}",
        name(e),
        e.image.size / 1_000_000,
        e.provenance.openclaw.as_deref().unwrap_or("?"),
        if note.is_empty() {
            String::new()
        } else {
            format!(", {note}")
        }
    )
}

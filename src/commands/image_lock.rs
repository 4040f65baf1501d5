//! `safeclaw image lock`: the pinned lock of an OpenClaw version, resolved
//! from the npm registry and stored in the cache (`image/lock.rs`), without
//! building anything.

use serde_json::json;

use crate::error::Result;
use crate::image::lock::{self, Source};
use crate::image::twin;
use crate::printer::Printer;

use super::settings::ImageLock;

pub fn run(args: ImageLock, printer: &Printer) -> Result<()> {
    let cache = twin::cache_dir(args.cache.as_deref())?;
    let lock::Obtained { lock, dir, source } = lock::obtain(&args.openclaw, &cache, printer)?;
    // Bundled packages come inside a pinned parent's tarball: counted
    // apart, as the lock has no sha512 of their own.
    let (pinned, bundled) = serde_json::from_str::<serde_json::Value>(lock.lock())
        .ok()
        .and_then(|l| {
            l["packages"].as_object().map(|p| {
                let pinned = p.values().filter(|e| e.get("integrity").is_some()).count();
                let bundled = p.values().filter(|e| e["inBundle"] == true).count();
                (pinned, bundled)
            })
        })
        .unwrap_or((0, 0));
    let place = match &dir {
        Some(d) => d.display().to_string(),
        None => "compiled into safeclaw".to_string(),
    };
    let how = match source {
        Source::Builtin => "the builtin lock",
        Source::Stored => "stored earlier, checked again",
        Source::Resolved => "resolved from the npm registry and stored",
    };
    printer.result(
        &format!(
            "openclaw {}, node {}: {pinned} packages pinned by sha512, {bundled} bundled in them ({how})\n\
             lock:  {place}\n\
             build: safeclaw image build --openclaw {}  (tags {})",
            lock.openclaw(),
            lock.node(),
            lock.openclaw(),
            lock.default_tag()
        ),
        json!({
            "openclaw": lock.openclaw(),
            "node": lock.node(),
            "lock_sha256": lock.digest(),
            "pinned": pinned,
            "bundled": bundled,
            "dir": dir,
            "source": match source {
                Source::Builtin => "builtin",
                Source::Stored => "stored",
                Source::Resolved => "resolved",
            },
            "tag": lock.default_tag(),
        }),
    );
    Ok(())
}

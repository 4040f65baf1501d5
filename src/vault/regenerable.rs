//! What OpenClaw rebuilds by itself, and safeclaw therefore does not seal
//! (docs/vault-format.md, "Left out: what OpenClaw rebuilds"). One list,
//! read by the packer (`archive::pack`, every seal and checkpoint) and by
//! the guard's checkpoint copy, so a checkpoint neither copies nor seals it.
//!
//! An entry belongs here only when it has been measured against the real
//! OpenClaw: removed from a state, the gateway starts just as fast, stays
//! healthy and writes it again (tests/openclaw_e2e.rs checks all three).

use std::path::Path;

/// Paths relative to the state directory, each left out with everything
/// under it, whatever its type (it is not even looked at).
///
/// - `cache/control-ui-assets`: the Control UI's web assets, copied out of
///   the installed package (`<sha256>/asset-manifest.json` plus `assets/`,
///   about 54 MB for 2026.9.6) about 10 s after each gateway start when
///   missing. Sealed, they were 26 of a 27 MB generation after one run.
pub const REGENERABLE: &[&str] = &["cache/control-ui-assets"];

/// Whether `rel` (relative to the state directory, no leading `./`) is one
/// of `REGENERABLE`. Paths under one are never asked about: the walk does
/// not enter it.
pub fn is_regenerable(rel: &Path) -> bool {
    REGENERABLE.iter().any(|r| rel == Path::new(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listed_paths_are_regenerable() {
        assert!(is_regenerable(Path::new("cache/control-ui-assets")));
        assert!(!is_regenerable(Path::new("cache")));
        assert!(!is_regenerable(Path::new("cache/other")));
        assert!(!is_regenerable(Path::new(
            "workspace/cache/control-ui-assets"
        )));
        assert!(!is_regenerable(Path::new("control-ui-assets")));
    }
}

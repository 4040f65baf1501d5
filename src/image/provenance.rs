//! Who made an image, from its labels, and whether its guard is this
//! safeclaw. Pure over the label map (what `inspect_image` and
//! `list_images` give), except `this_safeclaw_sha256`, which hashes this
//! binary once per process.
//!
//! The twin's guard is the safeclaw that built it (`twin::recipe` adds
//! `current_exe()` and labels the image with that file's SHA-256). A twin
//! built by another safeclaw keeps that one's guard, which may not speak
//! this one's guard protocol (a newer safeclaw passes `--pinned-skills`,
//! which an older guard refuses): the default twin is rebuilt by `up` and
//! refused by `start`, `run` and `onboard` (`resolve`).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// `twin` (built by `safeclaw image build` or `up`) or `nix`
/// (`nix/image.nix`).
pub const LABEL_IMAGE: &str = "org.safeclaw.image";
pub const LABEL_OPENCLAW: &str = "org.safeclaw.openclaw";
pub const LABEL_NODE: &str = "org.safeclaw.node";
pub const LABEL_LOCK: &str = "org.safeclaw.lock-sha256";
/// The SHA-256 of the safeclaw binary inside (the guard); the twin's only.
pub const LABEL_SAFECLAW: &str = "org.safeclaw.safeclaw-sha256";

/// `LABEL_IMAGE` of the twin.
pub const KIND_TWIN: &str = "twin";

/// An image's labels, as the engine gives them.
pub type Labels = HashMap<String, String>;

/// What an image's labels say about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// `LABEL_IMAGE`: "twin", "nix", or None (not safeclaw's by label).
    pub kind: Option<String>,
    pub openclaw: Option<String>,
    pub node: Option<String>,
    pub lock_sha256: Option<String>,
    pub safeclaw_sha256: Option<String>,
}

impl Provenance {
    pub fn of(labels: &Labels) -> Provenance {
        let get = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
        Provenance {
            kind: get(LABEL_IMAGE),
            openclaw: get(LABEL_OPENCLAW),
            node: get(LABEL_NODE),
            lock_sha256: get(LABEL_LOCK),
            safeclaw_sha256: get(LABEL_SAFECLAW),
        }
    }

    pub fn is_twin(&self) -> bool {
        self.kind.as_deref() == Some(KIND_TWIN)
    }

    /// Whether the guard inside is the safeclaw whose hash is `own`.
    pub fn guard(&self, own: &str) -> Guard {
        if !self.is_twin() {
            return Guard::Unknown;
        }
        match &self.safeclaw_sha256 {
            Some(theirs) if theirs.eq_ignore_ascii_case(own) => Guard::This,
            theirs => Guard::Other(theirs.clone()),
        }
    }
}

/// Whose guard an image holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// A twin built by this very binary.
    This,
    /// A twin built by another safeclaw: its hash, or None when the twin
    /// predates the label (built by a safeclaw before 0.2's label).
    Other(Option<String>),
    /// Not a twin (the Nix image, a stand-in, someone's own image): its
    /// labels make no claim about its guard.
    Unknown,
}

impl Guard {
    /// "sha256 0123456789ab" or "no sha256 label", for messages.
    pub fn describe_other(theirs: &Option<String>) -> String {
        match theirs {
            Some(h) => format!("guard sha256 {}", short(h)),
            None => "no guard sha256 label".to_string(),
        }
    }
}

/// The first 12 hex digits of a hash, as image IDs are shown.
pub fn short(hash: &str) -> &str {
    let hex = hash.strip_prefix("sha256:").unwrap_or(hash);
    hex.get(..12).unwrap_or(hex)
}

/// What to do about the default twin tag before a container runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwinPlan {
    /// Run it as it is (this safeclaw's twin, or an image under that tag
    /// that is not a twin and so makes no claim about its guard).
    Use,
    /// Absent: `up` builds it; others go on and fail on the missing image
    /// with the engine's hint, as they always did.
    BuildMissing,
    /// A twin of another safeclaw, and the command builds twins (`up`).
    Rebuild(Option<String>),
    /// A twin of another safeclaw, and the command does not build.
    Refuse(Option<String>),
}

/// The decision for the default twin tag: `labels` of the image under it
/// (None: the engine has no such image), `own` this binary's hash (None:
/// unknown, its guard goes unchecked), `may_build` for `up`.
pub fn plan_default_twin(labels: Option<&Labels>, own: Option<&str>, may_build: bool) -> TwinPlan {
    let Some(labels) = labels else {
        return if may_build {
            TwinPlan::BuildMissing
        } else {
            TwinPlan::Use
        };
    };
    let Some(own) = own else {
        return TwinPlan::Use;
    };
    match Provenance::of(labels).guard(own) {
        Guard::This | Guard::Unknown => TwinPlan::Use,
        Guard::Other(theirs) if may_build => TwinPlan::Rebuild(theirs),
        Guard::Other(theirs) => TwinPlan::Refuse(theirs),
    }
}

/// The refusal of `TwinPlan::Refuse` for `tag`.
pub fn stale_twin_error(tag: &str, theirs: &Option<String>) -> Error {
    Error::usage(format!(
        "{tag} was built by another safeclaw ({}): its guard may not understand this safeclaw's settings",
        Guard::describe_other(theirs)
    ))
    .with_hint(
        "rebuild it with this safeclaw: `safeclaw image build` (or `safeclaw up`, which rebuilds it); \
         --image runs another image",
    )
}

/// The SHA-256 (hex) of a file, read in 1 MiB pieces.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("reading", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(crate::private_fs::hex(&hasher.finalize()))
}

/// This safeclaw binary (`current_exe()`, the file `image build` puts into
/// the twin), hashed once per process: a 12 MB release build takes 8.5 ms
/// (warm, measured; docs/image.md).
pub fn this_safeclaw_sha256() -> Result<&'static str> {
    static HASH: OnceLock<String> = OnceLock::new();
    if let Some(h) = HASH.get() {
        return Ok(h);
    }
    let exe = this_safeclaw()?;
    let hash = file_sha256(&exe)?;
    Ok(HASH.get_or_init(|| hash))
}

/// The path of this safeclaw binary.
pub fn this_safeclaw() -> Result<std::path::PathBuf> {
    std::env::current_exe()
        .map_err(|e| Error::failure(format!("finding safeclaw's own binary: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "b6e40937883db827c51995e6bb71958c561d16e689348c7db67ff550e515b42a";
    const OTHER: &str = "0072ff6d7860255b94e2bee0f5e75c2b5a73ac17196c1eb11d5871afaff385df";

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_guard_is_this_safeclaw_only_when_the_twin_says_so() {
        let twin = |hash: Option<&str>| {
            let mut l = labels(&[(LABEL_IMAGE, KIND_TWIN), (LABEL_OPENCLAW, "2026.9.6")]);
            if let Some(h) = hash {
                l.insert(LABEL_SAFECLAW.into(), h.into());
            }
            l
        };
        let of = |l: &Labels| Provenance::of(l).guard(OWN);
        assert_eq!(of(&twin(Some(OWN))), Guard::This);
        assert_eq!(of(&twin(Some(&OWN.to_uppercase()))), Guard::This);
        assert_eq!(of(&twin(Some(OTHER))), Guard::Other(Some(OTHER.into())));
        // A twin of a safeclaw before the label: another one.
        assert_eq!(of(&twin(None)), Guard::Other(None));
        assert_eq!(of(&twin(Some(""))), Guard::Other(None));
        // Not a twin: no claim, whatever other labels say.
        let nix = labels(&[(LABEL_IMAGE, "nix"), (LABEL_SAFECLAW, OTHER)]);
        assert_eq!(of(&nix), Guard::Unknown);
        assert_eq!(of(&Labels::new()), Guard::Unknown);
    }

    #[test]
    fn the_default_twin_is_rebuilt_by_up_and_refused_by_the_others() {
        let stale = labels(&[(LABEL_IMAGE, KIND_TWIN), (LABEL_SAFECLAW, OTHER)]);
        let unlabelled = labels(&[(LABEL_IMAGE, KIND_TWIN)]);
        let current = labels(&[(LABEL_IMAGE, KIND_TWIN), (LABEL_SAFECLAW, OWN)]);
        let foreign = labels(&[("maintainer", "someone")]);
        let cases = [
            (None, true, TwinPlan::BuildMissing),
            (None, false, TwinPlan::Use),
            (Some(&current), true, TwinPlan::Use),
            (Some(&current), false, TwinPlan::Use),
            (Some(&stale), true, TwinPlan::Rebuild(Some(OTHER.into()))),
            (Some(&stale), false, TwinPlan::Refuse(Some(OTHER.into()))),
            (Some(&unlabelled), true, TwinPlan::Rebuild(None)),
            (Some(&unlabelled), false, TwinPlan::Refuse(None)),
            (Some(&foreign), true, TwinPlan::Use),
            (Some(&foreign), false, TwinPlan::Use),
        ];
        for (labels, may_build, want) in cases {
            assert_eq!(
                plan_default_twin(labels, Some(OWN), may_build),
                want,
                "{labels:?} {may_build}"
            );
        }
        // This binary unreadable: only a missing twin is acted on.
        assert_eq!(plan_default_twin(Some(&stale), None, true), TwinPlan::Use);
        assert_eq!(plan_default_twin(Some(&stale), None, false), TwinPlan::Use);
        assert_eq!(plan_default_twin(None, None, true), TwinPlan::BuildMissing);
    }

    #[test]
    fn the_refusal_names_the_other_guard_and_the_way_out() {
        let e = stale_twin_error("safeclaw/openclaw:2026.9.6", &Some(OTHER.into()));
        assert_eq!(e.class, crate::error::Class::Usage);
        assert!(
            e.message.contains("guard sha256 0072ff6d7860"),
            "{}",
            e.message
        );
        assert!(e.hint.as_deref().unwrap().contains("safeclaw image build"));
        let e = stale_twin_error("t", &None);
        assert!(e.message.contains("no guard sha256 label"), "{}", e.message);
    }

    #[test]
    fn this_binary_is_hashed_once() {
        let first = this_safeclaw_sha256().unwrap();
        assert_eq!(first.len(), 64);
        assert!(std::ptr::eq(first, this_safeclaw_sha256().unwrap()));
        assert_eq!(short(first).len(), 12);
        assert_eq!(short(&format!("sha256:{OWN}")), "b6e40937883d");
    }
}

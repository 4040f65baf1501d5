//! Which image a container runs, and getting it into the engine: the
//! pinned Nix image (`pin`, `nix_store_path`), loaded from its archive
//! (`load`, `docker_archive`) and checked to be exactly the archive's on
//! either image store (`identity`); or the twin (`twin`) built through the
//! Engine API (`build`) from a checked npm lock (`lock`), labelled with
//! who built it (`provenance`).
//! `resolve` chooses; `inventory` lists safeclaw's images and plans a prune.

use bollard::Docker;

pub mod build;
pub mod docker_archive;
pub mod identity;
pub mod inventory;
pub mod load;
pub mod lock;
pub mod nix_store_path;
pub mod pin;
pub mod provenance;
pub mod resolve;
pub mod twin;

/// The engine's ID for `image`, or None when it has no such image.
pub async fn image_id(docker: &Docker, image: &str) -> Option<String> {
    docker.inspect_image(image).await.ok().and_then(|i| i.id)
}

/// Two image IDs are the same with or without the `sha256:` prefix (some
/// engines list containers' image IDs without it).
pub fn same_id(a: &str, b: &str) -> bool {
    let bare = |s: &str| s.strip_prefix("sha256:").unwrap_or(s).to_string();
    !a.is_empty() && bare(a) == bare(b)
}

//! Rebuilding an image under the same tag leaves no dangling `<none>`
//! image behind, unless something still uses the old one. Skips without an
//! engine outside CI.

mod common;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::CreateContainerOptionsBuilder;
use bollard::Docker;
use common::*;
use safeclaw::image::build::{build_recipe, Recipe};

fn recipe(label: &str) -> Recipe {
    Recipe {
        files: standin_files(),
        labels: [("test.build".to_string(), label.to_string())].into(),
        ..Default::default()
    }
}

fn build(rt: &tokio::runtime::Runtime, docker: &Docker, tag: &str, label: &str) -> String {
    rt.block_on(build_recipe(
        docker,
        tag,
        &recipe(label),
        &indicatif::ProgressBar::hidden(),
    ))
    .unwrap();
    rt.block_on(docker.inspect_image(tag)).unwrap().id.unwrap()
}

fn exists(rt: &tokio::runtime::Runtime, docker: &Docker, id: &str) -> bool {
    rt.block_on(docker.inspect_image(id)).is_ok()
}

#[test]
fn a_rebuild_removes_the_image_it_replaced_unless_it_is_in_use() {
    let Some((rt, docker)) = engine() else { return };
    let tag = format!("safeclaw-rebuild:{}", std::process::id());
    let container = format!("sc-rebuild-{}", std::process::id());
    // Removed at the end: the container, then every image built.
    let mut made = Cleanup::new(&rt, &docker).container(&container);
    let first = build(&rt, &docker, &tag, "one");
    made.add_image(first.clone());
    let second = build(&rt, &docker, &tag, "two");
    made.add_image(second.clone());
    assert_ne!(first, second);
    assert!(!exists(&rt, &docker, &first), "the replaced image stayed");

    // In use by a container: kept.
    rt.block_on(
        docker.create_container(
            Some(
                CreateContainerOptionsBuilder::new()
                    .name(&container)
                    .build(),
            ),
            ContainerCreateBody {
                image: Some(second.clone()),
                ..Default::default()
            },
        ),
    )
    .unwrap();
    let third = build(&rt, &docker, &tag, "three");
    made.add_image(third);
    assert!(exists(&rt, &docker, &second), "an image in use was removed");
}

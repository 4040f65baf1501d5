//! Builds the stand-in test image `safeclaw-standin:test` into the local
//! engine: `cargo run --example build-test-image`. No registry, no network.

fn main() {
    let target = std::env::current_exe().unwrap();
    // target/<profile>/examples/build-test-image -> target/<profile>/
    let profile_dir = target
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .to_path_buf();
    let result = (|| {
        let files = safeclaw::image::build::standin_files(
            &profile_dir.join("safeclaw"),
            &profile_dir.join("openclaw-standin"),
        )?;
        let engine = safeclaw::runtime::engine::Engine::new(None)?;
        engine.block_on(safeclaw::image::build::build(
            engine.docker()?,
            "safeclaw-standin:test",
            &files,
        ))
    })();
    match result {
        Ok(()) => println!("built safeclaw-standin:test"),
        Err(e) => {
            eprintln!("error: {}", e.message);
            std::process::exit(1);
        }
    }
}

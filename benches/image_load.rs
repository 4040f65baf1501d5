//! What the pin check costs: `safeclaw image load` of a pinned archive
//! (stream into the engine, index the same bytes, check the image ID, write
//! the record) against the peer, the same archive streamed into the Engine
//! API's `/images/load` with nothing else, measured in the same run. The
//! archive is the stand-in image saved by the engine and gzip-compressed, as
//! dockerTools writes it, at a store path under a temporary NIX_STORE_DIR.
//!
//! `cargo bench --bench image_load` (needs a Docker engine)
//! `SAFECLAW_BENCH_IMAGE=safeclaw/openclaw:2026.9.6 cargo bench --bench image_load`
//! measures an image the engine already has instead (e.g. the real
//! OpenClaw's twin); it is loaded back, not removed, at the end.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bollard::query_parameters::{ImportImageOptionsBuilder, RemoveImageOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;

const RUNS: usize = 3;
const HASH: &str = "cx2j60ggrnmqjrs54c0yzkdbi5kla8q1";

fn remove(rt: &tokio::runtime::Runtime, docker: &Docker, image: &str) {
    let _ = rt.block_on(docker.remove_image(
        image,
        Some(RemoveImageOptionsBuilder::new().force(true).build()),
        None,
    ));
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The peer: the archive's bytes into `/images/load`, nothing else.
fn plain_load(rt: &tokio::runtime::Runtime, docker: &Docker, archive: &Path) -> Duration {
    let started = Instant::now();
    let mut file = std::fs::File::open(archive).unwrap();
    let chunks = futures_util::stream::iter(std::iter::from_fn(move || {
        let mut buf = vec![0u8; 1 << 20];
        match file.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some(Ok::<_, std::io::Error>(bytes::Bytes::from(buf)))
            }
            Err(e) => Some(Err(e)),
        }
    }));
    rt.block_on(async {
        let mut s = docker.import_image_stream(
            ImportImageOptionsBuilder::new().quiet(true).build(),
            chunks,
            None,
        );
        while let Some(item) = s.next().await {
            item.unwrap();
        }
    });
    started.elapsed()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Ok(docker) = rt.block_on(safeclaw::runtime::engine::connect(None)) else {
        println!("image_load: no Docker engine, nothing measured");
        return;
    };
    let work = tempfile::TempDir::new().unwrap();
    let given = std::env::var("SAFECLAW_BENCH_IMAGE").ok();
    let image = given
        .clone()
        .unwrap_or_else(|| format!("safeclaw-bench-load:{}", std::process::id()));
    let store = work.path().join("store");
    let home = work.path().join("home");
    std::fs::create_dir(&store).unwrap();
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let archive = store.join(format!("{HASH}-safeclaw-openclaw.tar.gz"));

    if given.is_none() {
        let files = safeclaw::image::build::standin_files(
            Path::new(env!("CARGO_BIN_EXE_safeclaw")),
            Path::new(env!("CARGO_BIN_EXE_openclaw-standin")),
        )
        .unwrap();
        rt.block_on(safeclaw::image::build::build(&docker, &image, &files))
            .unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&archive).unwrap(),
        flate2::Compression::fast(),
    );
    rt.block_on(async {
        let mut s = docker.export_image(&image);
        while let Some(chunk) = s.next().await {
            gz.write_all(&chunk.unwrap()).unwrap();
        }
    });
    gz.finish().unwrap();
    let size = std::fs::metadata(&archive).unwrap().len();

    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        remove(&rt, &docker, &image);
        let _ = std::fs::remove_dir_all(home.join("image-pins"));
        let started = Instant::now();
        let status = Command::new(env!("CARGO_BIN_EXE_safeclaw"))
            .args(["-q", "--no-progress", "image", "load"])
            .env("SAFECLAW_HOME", &home)
            .env("NIX_STORE_DIR", &store)
            .env("SAFECLAW_IMAGE", &archive)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        ours.push(started.elapsed());
        assert!(status.success());
        remove(&rt, &docker, &image);
        peer.push(plain_load(&rt, &docker, &archive));
    }
    if given.is_none() {
        remove(&rt, &docker, &image);
    }

    let (ours, peer) = (median(ours), median(peer));
    println!(
        "\nimage_load: {:.1} MB gzip archive, median of {RUNS}",
        size as f64 / 1e6
    );
    println!(
        "  safeclaw image load (stream + index + ID check + record) {:>7.2} s",
        ours.as_secs_f64()
    );
    println!(
        "  Engine API /images/load alone (peer)                     {:>7.2} s",
        peer.as_secs_f64()
    );
    println!(
        "  ratio                                                    {:>7.2}x",
        ours.as_secs_f64() / peer.as_secs_f64()
    );
}

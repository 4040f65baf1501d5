//! Launch overhead and stop-and-seal time of the hardened runtime, against
//! a plain container of the same image running the gateway directly with
//! its state bind-mounted in plaintext (what the guide's setup amounts to).
//!
//! The second table is the real OpenClaw (the image twin, built first if
//! the engine lacks it; needs npm): `safeclaw start` of an onboarded vault
//! against `docker run` of the same image on the same state in plaintext.
//!
//! `cargo bench --bench runtime` (needs a Docker engine). Readiness is
//! polled with `safeclaw health` through exec every 50 ms in both cases, so
//! the engine's 5 s health-check interval does not quantise the figures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, ExecConfig, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;

#[path = "../tests/common/shared_with_benches.rs"]
#[allow(dead_code)]
mod shared_with_benches;
use shared_with_benches::{
    exec_raw, noise, wait_for_ui_assets, NOISE_SEED, ONBOARD_NON_INTERACTIVE,
};

const BIN: &str = env!("CARGO_BIN_EXE_safeclaw");
const STANDIN: &str = env!("CARGO_BIN_EXE_openclaw-standin");

async fn healthy(docker: &Docker, name: &str) -> bool {
    let Ok(created) = docker
        .create_exec(
            name,
            ExecConfig {
                cmd: Some(vec!["/usr/local/bin/safeclaw".into(), "health".into()]),
                ..Default::default()
            },
        )
        .await
    else {
        return false;
    };
    if docker.start_exec(&created.id, None).await.is_err() {
        return false;
    }
    loop {
        match docker.inspect_exec(&created.id).await {
            Ok(i) if i.running == Some(true) => tokio::time::sleep(Duration::from_millis(5)).await,
            Ok(i) => return i.exit_code == Some(0),
            Err(_) => return false,
        }
    }
}

async fn wait_healthy(docker: &Docker, name: &str) {
    let start = Instant::now();
    while !healthy(docker, name).await {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{name} never answered /healthz"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The peer: the same image running the gateway directly as root, its
/// state bind-mounted in plaintext (what the guide's setup amounts to);
/// returns once `/healthz` answers.
async fn start_plain(docker: &Docker, name: &str, image: &str, state: &Path) {
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(name).build()),
            ContainerCreateBody {
                image: Some(image.to_string()),
                // The state's gateway lease names its host (as under safeclaw).
                hostname: Some(safeclaw::runtime::spec::HOSTNAME.into()),
                user: Some("0:0".into()),
                entrypoint: Some(vec!["/usr/local/bin/openclaw".into()]),
                cmd: Some(vec!["gateway".into(), "run".into()]),
                env: Some(vec![
                    "OPENCLAW_STATE_DIR=/state".into(),
                    "HOME=/root".into(),
                ]),
                host_config: Some(HostConfig {
                    binds: Some(vec![format!("{}:/state:rw", state.display())]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    docker.start_container(name, None).await.unwrap();
    wait_healthy(docker, name).await;
}

/// `safeclaw -q start` of `vault` as `name` from `image`, with `extra`
/// flags.
fn start(name: &str, image: &str, vault: &Path, pw: &Path, extra: &[&str]) {
    let mut args = vec![
        "-q",
        "start",
        "--name",
        name,
        "--image",
        image,
        "--vault",
        vault.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
    ];
    args.extend(extra);
    safeclaw(&args);
}

fn safeclaw(args: &[&str]) {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A state of `mib` MiB in `work/state-TAG`, sealed with the default
/// Argon2id (the unlock is part of a real start) into
/// `work/home-TAG/openclaw.vault`; returns both paths.
fn sealed_state(work: &Path, tag: &str, mib: usize, pw: &Path) -> (PathBuf, PathBuf) {
    let state = work.join(format!("state-{tag}"));
    make_state(&state, mib);
    let home = work.join(format!("home-{tag}"));
    std::fs::create_dir(&home).unwrap();
    let vault = home.join("openclaw.vault");
    safeclaw(&[
        "-q",
        "vault",
        "create",
        "--from",
        state.to_str().unwrap(),
        "--out",
        vault.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    (state, vault)
}

fn make_state(dir: &Path, mib: usize) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("openclaw.json"), "{}").unwrap();
    std::fs::write(dir.join("memory.bin"), noise(mib << 20, NOISE_SEED)).unwrap();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let docker = match rt.block_on(safeclaw::runtime::engine::connect(None)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("no Docker engine: {}", e.message);
            std::process::exit(1);
        }
    };
    let image = format!("safeclaw-standin:bench-{}", std::process::id());
    let _leftovers = Leftovers {
        containers: vec![],
        images: vec![image.clone()],
    };
    let files = safeclaw::image::build::standin_files(Path::new(BIN), Path::new(STANDIN)).unwrap();
    rt.block_on(safeclaw::image::build::build(&docker, &image, &files))
        .unwrap();
    let work = tempfile::TempDir::new().unwrap();
    let pw = work.path().join("pw");
    std::fs::write(&pw, "bench password\n").unwrap();
    std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();

    // `cargo bench --bench runtime -- firewall`: the egress firewall's
    // share of a start only (no real OpenClaw image build).
    if std::env::args().any(|a| a == "firewall") {
        firewall(&rt, &docker, work.path(), &pw, &image);
        return;
    }
    println!("\nruntime: start to /healthz answering, and stop (with seal), stand-in gateway");
    println!(
        "{:<10} {:<34} {:>10} {:>10}",
        "state", "setup", "start", "stop"
    );
    for mib in [10usize, 100] {
        let (state, vault) = sealed_state(work.path(), &mib.to_string(), mib, &pw);
        let name = format!("sc-bench-{}-{mib}", std::process::id());
        let plain = format!("plain-bench-{}-{mib}", std::process::id());
        let _leftovers = Leftovers {
            containers: vec![name.clone(), plain.clone()],
            images: vec![],
        };

        let t = Instant::now();
        start(&name, &image, &vault, &pw, &[]);
        rt.block_on(wait_healthy(&docker, &name));
        let start_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        safeclaw(&["-q", "stop", "--name", &name]);
        let stop_s = t.elapsed().as_secs_f64();
        println!(
            "{:<10} {:<34} {:>8.2} s {:>8.2} s",
            format!("{mib} MiB"),
            "safeclaw (unlock, tmpfs, seal)",
            start_s,
            stop_s
        );

        // The peer: same image, gateway directly, plaintext state bind-mounted.
        let (start_p, stop_p) = rt.block_on(async {
            let t = Instant::now();
            start_plain(&docker, &plain, &image, &state).await;
            let start_p = t.elapsed().as_secs_f64();
            let t = Instant::now();
            docker
                .stop_container(
                    &plain,
                    Some(StopContainerOptionsBuilder::new().t(60).build()),
                )
                .await
                .unwrap();
            let stop_p = t.elapsed().as_secs_f64();
            let opts = Some(RemoveContainerOptionsBuilder::new().force(true).build());
            let _ = docker.remove_container(&plain, opts.clone()).await;
            let _ = docker.remove_container(&name, opts).await;
            (start_p, stop_p)
        });
        println!(
            "{:<10} {:<34} {:>8.2} s {:>8.2} s",
            format!("{mib} MiB"),
            "plain docker run, plaintext bind",
            start_p,
            stop_p
        );
        println!(
            "{:<10} {:<34} {:>8.2} s {:>8.2} s",
            "",
            "difference",
            start_s - start_p,
            stop_s - stop_p
        );
    }
    firewall(&rt, &docker, work.path(), &pw, &image);
    real_openclaw(&rt, &docker, work.path(), &pw);
}

/// What a bench made on the engine, removed when it goes out of scope,
/// also when the bench panics (unwinding runs it): containers first (and
/// the egress proxy of each), then images.
struct Leftovers {
    containers: Vec<String>,
    images: Vec<String>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            let Ok(docker) = safeclaw::runtime::engine::connect(None).await else {
                return;
            };
            for name in &self.containers {
                for name in [name.clone(), safeclaw::egress::network::proxy_name(name)] {
                    let options = RemoveContainerOptionsBuilder::new().force(true).build();
                    let _ = docker.remove_container(&name, Some(options)).await;
                }
            }
            for image in &self.images {
                let options = bollard::query_parameters::RemoveImageOptionsBuilder::new()
                    .force(true)
                    .build();
                let _ = docker.remove_image(image, Some(options), None).await;
            }
        });
    }
}

/// Runs the egress firewall's share of a start is measured over.
const FIREWALL_RUNS: usize = 5;

/// What the egress firewall adds to a start (its proxy's container, the
/// relay): `safeclaw start` to /healthz with egress locked against `--egress
/// open`, interleaved, `FIREWALL_RUNS` each (target: under 300 ms added).
fn firewall(rt: &tokio::runtime::Runtime, docker: &Docker, work: &Path, pw: &Path, image: &str) {
    let (_, vault) = sealed_state(work, "firewall", 10, pw);
    let name = format!("sc-bench-fw-{}", std::process::id());
    let _leftovers = Leftovers {
        containers: vec![name.clone()],
        images: vec![],
    };
    let (mut locked, mut open) = (Vec::new(), Vec::new());
    for _ in 0..FIREWALL_RUNS {
        for (mode, times) in [("locked", &mut locked), ("open", &mut open)] {
            let t = Instant::now();
            start(&name, image, &vault, pw, &["--egress", mode]);
            rt.block_on(wait_healthy(docker, &name));
            times.push(t.elapsed().as_secs_f64());
            // Stopped (and sealed) between runs, as a user would.
            safeclaw(&["-q", "stop", "--name", &name]);
        }
    }
    println!(
        "\negress firewall: start to /healthz answering, stand-in gateway, 10 MiB state ({FIREWALL_RUNS} runs each, interleaved)"
    );
    println!("{:<44} {:>9} {:>9} {:>9}", "setup", "median", "min", "max");
    spread_row(44, "locked (proxy container, relay)", &locked);
    spread_row(44, "--egress open (the engine's bridge)", &open);
    let _ = rt.block_on(docker.remove_container(
        &name,
        Some(RemoveContainerOptionsBuilder::new().force(true).build()),
    ));
    let added = median(locked) - median(open);
    println!(
        "{:<44} {:>7.0} ms (target: under 300 ms)",
        "added by the firewall (medians)",
        added * 1000.0
    );
}

/// A table row: `label` (padded to `width`), then the median, minimum and
/// maximum of `v` in seconds.
fn spread_row(width: usize, label: &str, v: &[f64]) {
    let (min, max) = (
        v.iter().copied().fold(f64::INFINITY, f64::min),
        v.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "{label:<width$} {:>7.2} s {:>7.2} s {:>7.2} s",
        median(v.to_vec()),
        min,
        max
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Start-to-healthy of the real OpenClaw: safeclaw (egress locked, so the
/// proxy is in the path) against a plain container (root, writable layer,
/// plaintext state bind-mounted: the guide's setup), `SAFECLAW_BENCH_RUNS`
/// runs each (default 5), interleaved, on a state that has run the gateway
/// once; then what 7 kept generations cost on disk after a day of use.
fn real_openclaw(rt: &tokio::runtime::Runtime, docker: &Docker, work: &Path, pw: &Path) {
    let runs: usize = std::env::var("SAFECLAW_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
        .max(1);
    // Built here by this (release) safeclaw: the guard in the image is the
    // binary that builds it, and a debug guard decrypts several times slower.
    let tag = format!("safeclaw/openclaw:bench-{}", std::process::id());
    let image = tag.as_str();
    let name = format!("sc-bench-oc-{}", std::process::id());
    let plain = format!("plain-bench-oc-{}", std::process::id());
    let _leftovers = Leftovers {
        containers: vec![name.clone(), plain.clone()],
        images: vec![tag.clone()],
    };
    safeclaw(&["-q", "image", "build", "--tag", image]);
    let inspected = rt.block_on(docker.inspect_image(image)).unwrap();
    let size = inspected.size.unwrap_or(0);
    let version = inspected
        .config
        .and_then(|c| c.labels)
        .and_then(|l| l.get("org.safeclaw.openclaw").cloned())
        .unwrap_or_default();
    let home = work.join("oc-home");
    std::fs::create_dir(&home).unwrap();
    let vault = home.join("openclaw.vault");
    let (vault_s, pw_s) = (vault.to_str().unwrap(), pw.to_str().unwrap());
    let mut onboard = vec![
        "-q",
        "onboard",
        "--image",
        image,
        "--vault",
        vault_s,
        "--password-file",
        pw_s,
    ];
    onboard.extend(ONBOARD_NON_INTERACTIVE);
    safeclaw(&onboard);
    let start_locked = |extra: &[&str]| {
        let mut args = vec!["--egress", "locked"];
        args.extend(extra);
        start(&name, image, &vault, pw, &args);
    };
    let opts = || Some(RemoveContainerOptionsBuilder::new().force(true).build());
    let remove = |name: &str| {
        let _ = rt.block_on(docker.remove_container(name, opts()));
        let proxy = safeclaw::egress::network::proxy_name(name);
        let _ = rt.block_on(docker.remove_container(&proxy, opts()));
    };

    // One run of the gateway first, as a user's state has had: it migrates
    // the onboarded state and writes its caches. Sealed at stop.
    start_locked(&[]);
    rt.block_on(wait_healthy(docker, &name));
    let assets = wait_for_ui_assets(|cmd| exec_raw(rt, docker, &name, cmd));
    safeclaw(&["-q", "stop", "--name", &name]);
    let plain_state = work.join("oc-plain");
    safeclaw(&[
        "-q",
        "vault",
        "export",
        vault_s,
        "--to",
        plain_state.to_str().unwrap(),
        "--password-file",
        pw_s,
    ]);
    // And one of the peer, which writes the UI assets into its plaintext
    // state (safeclaw's vault leaves them out: `vault::regenerable`).
    rt.block_on(start_plain(docker, &plain, image, &plain_state));
    wait_for_ui_assets(|cmd| exec_raw(rt, docker, &plain, cmd));
    remove(&plain);

    let (mut returned, mut ours, mut peer) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        start_locked(&[]);
        returned.push(t.elapsed().as_secs_f64());
        rt.block_on(wait_healthy(docker, &name));
        ours.push(t.elapsed().as_secs_f64());
        // Removed without a seal: every run starts from the same vault.
        remove(&name);

        let t = Instant::now();
        rt.block_on(start_plain(docker, &plain, image, &plain_state));
        peer.push(t.elapsed().as_secs_f64());
        remove(&plain);
    }
    println!(
        "\nreal OpenClaw {version}: start to /healthz answering, state after one gateway run, \
         {runs} runs each, interleaved"
    );
    println!("{:<50} {:>9} {:>9} {:>9}", "setup", "median", "min", "max");
    spread_row(
        50,
        "safeclaw start returns (Argon2id, tmpfs, proxy)",
        &returned,
    );
    spread_row(50, "safeclaw start, egress locked: /healthz", &ours);
    spread_row(
        50,
        "docker run, plaintext state bind-mounted: /healthz",
        &peer,
    );
    println!(
        "{:<50} {:>7.2}x (target: level)",
        "ratio of medians",
        median(ours) / median(peer)
    );
    println!("{:<50} {:>7} MB", "image size", size / 1_000_000);

    // A day of use: checkpoints after changes made through `safeclaw
    // exec`, 7 generations kept, with the UI assets in the running state.
    const KEPT: usize = 7;
    let kept = KEPT.to_string();
    start_locked(&["--keep-generations", &kept, "--checkpoint-interval", "0"]);
    rt.block_on(wait_healthy(docker, &name));
    wait_for_ui_assets(|cmd| exec_raw(rt, docker, &name, cmd));
    for hour in 0..=KEPT + 1 {
        let value = (300 + hour).to_string();
        safeclaw(&[
            "-q",
            "exec",
            "--name",
            &name,
            "--",
            "config",
            "set",
            "agents.defaults.timeoutSeconds",
            &value,
        ]);
    }
    safeclaw(&["-q", "stop", "--name", &name]);
    let (mut files, mut bytes, mut newest, mut blocks) = (0, 0, 0, 0);
    for entry in std::fs::read_dir(&home).unwrap() {
        let entry = entry.unwrap();
        let file = entry.file_name().to_string_lossy().into_owned();
        // The blob store the generations share (docs/vault-format.md, "Blobs").
        if file.starts_with(safeclaw::vault::blobs::STORE_PREFIX) {
            for blob in std::fs::read_dir(entry.path()).unwrap() {
                blocks += blob.unwrap().metadata().unwrap().len();
            }
            continue;
        }
        if file == "openclaw.vault" || file.starts_with("openclaw.vault.g") {
            let len = entry.metadata().unwrap().len();
            files += 1;
            bytes += len;
            if file == "openclaw.vault" {
                newest = len;
            }
        }
    }
    println!(
        "\ngenerations on disk after a day of use ({} changes checkpointed, {KEPT} kept)",
        KEPT + 2
    );
    println!(
        "{:<50} {:>7.1} MB",
        "the current vault",
        newest as f64 / 1e6
    );
    println!(
        "{:<50} {:>7.1} MB",
        "the blocks they share (the blob store)",
        blocks as f64 / 1e6
    );
    println!(
        "{:<50} {:>7.1} MB",
        format!(
            "the current vault and {} kept generations, in all",
            files - 1
        ),
        (bytes + blocks) as f64 / 1e6
    );
    println!(
        "{:<50} {:>7.1} MB (left out of each generation)",
        "the UI assets OpenClaw rebuilds",
        assets as f64 / 1e6
    );
    remove(&name);
}

//! What the tests and the benchmarks share (benches include this file by
//! `#[path]`; they do not share the rest of `common`).

use std::time::{Duration, Instant};

use bollard::Docker;

/// The seed every test and bench takes unless it needs several streams.
pub const NOISE_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// `len` xorshift bytes from `seed`: what zstd cannot shrink (a database
/// of embeddings, already-compressed assets), the same on every run. The
/// seed's low bit is set: xorshift from 0 stays 0.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Cheap Argon2 so tests stay fast; the format and code paths are the same.
pub const FAST_KDF: [&str; 6] = [
    "--kdf-memory",
    "64KiB",
    "--kdf-iterations",
    "1",
    "--kdf-parallelism",
    "1",
];

/// OpenClaw's onboarding without a terminal, as the README gives it: after
/// `--` on `safeclaw onboard` or `up` (the real OpenClaw's tests).
pub const ONBOARD_NON_INTERACTIVE: [&str; 14] = [
    "--",
    "--non-interactive",
    "--accept-risk",
    "--mode",
    "local",
    "--auth-choice",
    "skip",
    "--skip-channels",
    "--skip-health",
    "--skip-daemon",
    "--skip-search",
    "--skip-skills",
    "--skip-ui",
    "--skip-hooks",
];

/// Waits (at most 90 s) until the gateway has written its Control UI
/// assets into the state (`vault::regenerable`), and returns their size in
/// bytes. `exec` runs a command in the gateway's container and returns its
/// exit code and output.
pub fn wait_for_ui_assets(mut exec: impl FnMut(&[&str]) -> (i64, String)) -> u64 {
    let dir = format!(
        "{}/{}",
        safeclaw::runtime::layout::STATE_DIR,
        safeclaw::vault::regenerable::REGENERABLE[0]
    );
    let start = Instant::now();
    let mut last = 0;
    loop {
        let (code, out) = exec(&["du", "-sk", &dir]);
        let kb: u64 = out
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        // An empty directory is made at start; the assets come later, and
        // are whole once two readings agree.
        if code == 0 && kb > 1024 && kb == last {
            return kb * 1024;
        }
        last = kb;
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "OpenClaw never wrote {dir}: {out}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Runs `cmd` in the container as the harness, not as safeclaw: what the
/// bot itself or Telegram would cause. Returns (exit code, stdout+stderr).
pub fn exec_raw(
    rt: &tokio::runtime::Runtime,
    docker: &Docker,
    name: &str,
    cmd: &[&str],
) -> (i64, String) {
    rt.block_on(async {
        let created = docker
            .create_exec(
                name,
                bollard::models::ExecConfig {
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    env: Some(vec![
                        "OPENCLAW_STATE_DIR=/state".into(),
                        "HOME=/home/openclaw".into(),
                    ]),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut text = String::new();
        if let bollard::exec::StartExecResults::Attached { mut output, .. } =
            docker.start_exec(&created.id, None).await.unwrap()
        {
            while let Some(Ok(o)) = futures_util::StreamExt::next(&mut output).await {
                text.push_str(&o.to_string());
            }
        }
        let code = docker
            .inspect_exec(&created.id)
            .await
            .unwrap()
            .exit_code
            .unwrap_or(-1);
        (code, text)
    })
}

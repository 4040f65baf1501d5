//! How long a checkpoint freezes the gateway (SIGSTOP of its process group,
//! copy of the state dir, SIGCONT) and how long the background seal takes,
//! at 10, 100 and 500 MB of state. The guard runs on the host here (no
//! engine needed); in a container the state dir and the staging dir are
//! tmpfs, so `SAFECLAW_BENCH_DIR` should point at a tmpfs to match
//! (default: /dev/shm).
//!
//! `cargo bench --bench checkpoint`

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use safeclaw::runtime::guard::protocol::{self, GuardSettings, Status};

const BIN: &str = env!("CARGO_BIN_EXE_safeclaw");

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let base = std::env::var("SAFECLAW_BENCH_DIR").unwrap_or_else(|_| "/dev/shm".into());
    let work = tempfile::TempDir::new_in(&base).unwrap();
    println!(
        "\ncheckpoint: gateway frozen (copy of the state dir) and background seal; state on {base}"
    );
    println!(
        "{:<8} {:>5} {:>12} {:>12} {:>10}",
        "state", "runs", "pause (ms)", "seal (ms)", "files"
    );
    for mb in [10usize, 100, 500] {
        let dir = work.path().join(format!("{mb}"));
        let tree = dir.join("tree");
        std::fs::create_dir_all(tree.join("memory")).unwrap();
        // Mostly one database-like file, plus many small memory notes.
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let big: Vec<u8> = (0..(mb << 20) * 9 / 10)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        std::fs::write(tree.join("openclaw.sqlite"), &big).unwrap();
        let small = (mb << 20) / 10 / 500;
        for i in 0..500 {
            std::fs::write(tree.join(format!("memory/note{i}.md")), vec![b'x'; small]).unwrap();
        }
        let pw = dir.join("pw");
        std::fs::write(&pw, "bench\n").unwrap();
        std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let vault = dir.join("v.vault");
        let ok = Command::new(BIN)
            .args([
                "-q",
                "vault",
                "create",
                "--kdf-memory",
                "64KiB",
                "--kdf-iterations",
                "1",
                "--kdf-parallelism",
                "1",
                "--from",
            ])
            .arg(&tree)
            .arg("--out")
            .arg(&vault)
            .arg("--password-file")
            .arg(&pw)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success());
        let key = {
            let v = safeclaw::vault::VaultFile::open(&vault).unwrap();
            v.unlock(&safeclaw::password::Password::new(b"bench").unwrap())
                .unwrap()
                .0
        };
        let (state, staging) = (dir.join("state"), dir.join("staging"));
        std::fs::create_dir(&state).unwrap();
        std::fs::create_dir(&staging).unwrap();
        let settings = GuardSettings {
            vault: vault.clone(),
            state: state.clone(),
            checkpoint_dir: staging.clone(),
            key_timeout: protocol::KEY_TIMEOUT,
            keep_generations: 1,
            checkpoint_interval: Duration::ZERO,
            drain: Duration::from_secs(30),
            relay: None,
            egress_policy: None,
            pinned_skills: None,
            gateway: vec!["sleep".into(), "600".into()],
        };
        let mut guard = Command::new(BIN)
            .arg(protocol::COMMAND)
            .args(settings.to_argv())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        guard
            .stdin
            .take()
            .unwrap()
            .write_all(protocol::key_line(&key).as_bytes())
            .unwrap();
        let mut lines = BufReader::new(guard.stdout.take().unwrap()).lines();
        let ready = lines.next().unwrap().unwrap();
        assert!(
            matches!(Status::parse(&ready), Some(Status::Ready { .. })),
            "{ready}"
        );
        let runs = 5;
        let (mut pauses, mut seals) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            Command::new("kill")
                .args(["-USR1", &guard.id().to_string()])
                .status()
                .unwrap();
            let start = Instant::now();
            loop {
                let line = lines.next().unwrap().unwrap();
                if let Some(Status::Checkpoint { pause, seal, .. }) = Status::parse(&line) {
                    pauses.push(pause.as_secs_f64() * 1000.0);
                    seals.push(seal.as_secs_f64() * 1000.0);
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(300));
            }
        }
        Command::new("kill")
            .args(["-TERM", &guard.id().to_string()])
            .status()
            .unwrap();
        let _ = guard.wait();
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        println!(
            "{:<8} {:>5} {:>12.1} {:>12.0} {:>10}",
            format!("{mb} MB"),
            runs,
            median(&mut pauses),
            median(&mut seals),
            501
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!("(median of the runs; target: pause under 100 ms at 100 MB)");
}

//! Seal, verify and export throughput and peak memory of safeclaw against
//! the guide's pipeline (tar czf | openssl enc -aes-256-cbc -pbkdf2) and
//! against tar | zstd | age, on one generated corpus, in one run.
//!
//! `cargo bench --bench vault` (1 GiB corpus by default;
//! `SAFECLAW_BENCH_MIB=N` for another size). Needs bash, tar, gzip,
//! openssl, zstd, age and GNU time (`apt-get install age zstd time`).
//! All runs read a corpus that fits in the page cache, so these are
//! warm-cache figures: CPU cost, not disk speed. Each step starts after a
//! `sync`, so no step pays for an earlier one's writeback; no tool fsyncs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_safeclaw");

struct Run {
    secs: f64,
    rss_mb: f64,
}

/// Runs a bash command under GNU time; returns wall time and the peak RSS
/// of the largest process in it (wait4 reports the maximum over children).
fn measure(script: &str) -> Run {
    // Earlier steps' dirty pages must not be written back during this one.
    assert!(Command::new("sync").status().unwrap().success());
    let rss_file = std::env::temp_dir().join(format!("safeclaw-bench-rss-{}", std::process::id()));
    let start = Instant::now();
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&rss_file)
        .args(["bash", "-euo", "pipefail", "-c", script])
        .status()
        .expect("GNU time at /usr/bin/time (apt-get install time)");
    let secs = start.elapsed().as_secs_f64();
    assert!(status.success(), "benchmark step failed: {script}");
    let kb: f64 = fs::read_to_string(&rss_file)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = fs::remove_file(rss_file);
    Run {
        secs,
        rss_mb: kb / 1024.0,
    }
}

/// A corpus of `mib` MiB: 40% compressible text, 40% incompressible bytes,
/// 20% in thousands of small text files.
fn make_corpus(root: &Path, mib: u64) {
    if root.join(".complete").exists() {
        return;
    }
    let _ = fs::remove_dir_all(root);
    fs::create_dir_all(root.join("text")).unwrap();
    fs::create_dir_all(root.join("random")).unwrap();
    let total = mib << 20;
    let mut rng = 0x9E3779B97F4A7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let words = [
        "session",
        "memory",
        "owner",
        "telegram",
        "gateway",
        "token",
        "assistant",
        "the",
        "a",
        "of",
        "pairing",
        "approve",
        "workspace",
        "config",
        "json",
        "sqlite",
        "agent",
        "note",
        "today",
        "tea",
    ];
    let text = |len: usize, next: &mut dyn FnMut() -> u64| {
        let mut s = String::with_capacity(len + 64);
        while s.len() < len {
            let w = words[(next() % words.len() as u64) as usize];
            s.push_str(w);
            s.push(if next() % 12 == 0 { '\n' } else { ' ' });
            if next() % 9 == 0 {
                s.push_str(&(next() % 100_000).to_string());
                s.push(' ');
            }
        }
        s.truncate(len);
        s.into_bytes()
    };
    let big = total * 2 / 5;
    let per_file = 32 << 20;
    for i in 0..big.div_ceil(per_file) {
        let n = per_file.min(big - i * per_file) as usize;
        fs::write(root.join(format!("text/log{i:03}.txt")), text(n, &mut next)).unwrap();
        let mut r = vec![0u8; n];
        for c in r.chunks_mut(8) {
            let v = next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
        fs::write(root.join(format!("random/blob{i:03}.bin")), r).unwrap();
    }
    let small_total = total - 2 * big;
    let mut written = 0u64;
    let mut i = 0;
    while written < small_total {
        let n = (1024 + next() % (60 * 1024)).min(small_total - written) as usize;
        let dir = root.join(format!("small/d{:02}", i % 64));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("note{i:05}.md")), text(n, &mut next)).unwrap();
        written += n as u64;
        i += 1;
    }
    fs::write(root.join(".complete"), "").unwrap();
}

fn size_mb(path: &Path) -> f64 {
    fs::metadata(path)
        .map(|m| m.len() as f64 / 1e6)
        .unwrap_or(0.0)
}

fn row(op: &str, tool: &str, r: &Run, corpus_mb: f64, out_mb: Option<f64>) {
    let out = out_mb
        .map(|m| format!("{m:>9.1}"))
        .unwrap_or_else(|| format!("{:>9}", "-"));
    println!(
        "{op:<8} {tool:<28} {:>8.2} s {:>8.1} MB/s {out} MB {:>8.1} MB",
        r.secs,
        corpus_mb / r.secs,
        r.rss_mb
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches; nothing to list.
    }
    let mib: u64 = std::env::var("SAFECLAW_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench");
    fs::create_dir_all(&work).unwrap();
    let corpus = work.join(format!("corpus-{mib}"));
    eprintln!("generating a {mib} MiB corpus in {} ...", corpus.display());
    make_corpus(&corpus, mib);
    // Every tool then reads the corpus from the page cache, the first too.
    measure(&format!("tar cf - -C {} . >/dev/null", corpus.display()));
    let out = work.join("out");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    let pw = out.join("pw");
    fs::write(&pw, "correct horse battery staple\n").unwrap();
    fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let key = out.join("age.key");
    let status = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .expect("age-keygen (apt-get install age)");
    assert!(status.status.success());
    let recipient = fs::read_to_string(&key)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_string))
        .unwrap();
    let corpus_mb = (mib << 20) as f64 / 1e6;
    let (c, o, p, k) = (corpus.display(), out.display(), pw.display(), key.display());
    // The fixed cost of one Argon2id derivation, measured next to each
    // safeclaw step: unlocking a vault of one small file.
    fs::create_dir_all(out.join("tiny")).unwrap();
    fs::write(out.join("tiny/f"), "x").unwrap();
    let created = Command::new(BIN)
        .args(["-q", "vault", "create", "--from"])
        .arg(out.join("tiny"))
        .arg("--out")
        .arg(out.join("tiny.vault"))
        .arg("--password-file")
        .arg(&pw)
        .output()
        .unwrap();
    assert!(created.status.success());
    let kdf = || {
        measure(&format!(
            "{BIN} -q vault verify {o}/tiny.vault --password-file {p} >/dev/null"
        ))
        .secs
    };
    let guide_dec = format!(
        "openssl enc -d -aes-256-cbc -salt -pbkdf2 -iter 100000 -pass file:{p} -in {o}/g.enc"
    );

    println!("\ncorpus {mib} MiB ({corpus_mb:.0} MB): 40% text, 40% random, 20% small files; warm page cache, sync before each step");
    println!("safeclaw: default Argon2id (512 MiB, t=3, p=4) included in every timing; zstd -3 on 2 threads");
    println!("peers: guide = tar czf | openssl enc -aes-256-cbc -pbkdf2 -iter 100000; age = tar | zstd -3 -T2 | age -r\n");
    println!(
        "{:<8} {:<28} {:>10} {:>13} {:>12} {:>11}",
        "op", "tool", "time", "throughput", "output", "peak RSS"
    );

    let kdf_seal = kdf();
    let seal_s = measure(&format!("{BIN} -q --no-progress vault create --from {c} --out {o}/s.vault --password-file {p} >/dev/null"));
    row(
        "seal",
        "safeclaw",
        &seal_s,
        corpus_mb,
        Some(size_mb(&out.join("s.vault"))),
    );
    let seal_g = measure(&format!(
        "tar czf - -C {c} . | openssl enc -aes-256-cbc -salt -pbkdf2 -iter 100000 -pass file:{p} -out {o}/g.enc"
    ));
    row(
        "seal",
        "guide (gzip+openssl)",
        &seal_g,
        corpus_mb,
        Some(size_mb(&out.join("g.enc"))),
    );
    let seal_a = measure(&format!(
        "tar cf - -C {c} . | zstd -3 -T2 -q | age -r {recipient} -o {o}/a.age"
    ));
    row(
        "seal",
        "tar|zstd|age",
        &seal_a,
        corpus_mb,
        Some(size_mb(&out.join("a.age"))),
    );

    let kdf_verify = kdf();
    let ver_s = measure(&format!(
        "{BIN} -q --no-progress vault verify {o}/s.vault --password-file {p} >/dev/null"
    ));
    row("verify", "safeclaw", &ver_s, corpus_mb, None);
    let ver_g = measure(&format!("{guide_dec} | gzip -dc >/dev/null"));
    row("verify", "guide (decrypt|gunzip)", &ver_g, corpus_mb, None);
    let ver_a = measure(&format!("age -d -i {k} {o}/a.age | zstd -dc -q >/dev/null"));
    row("verify", "age|zstd -d", &ver_a, corpus_mb, None);

    let kdf_export = kdf();
    let exp_s = measure(&format!("{BIN} -q --no-progress vault export {o}/s.vault --to {o}/x1 --password-file {p} >/dev/null"));
    row("export", "safeclaw", &exp_s, corpus_mb, None);
    let exp_g = measure(&format!(
        "mkdir {o}/x2 && {guide_dec} | tar xzf - -C {o}/x2"
    ));
    row("export", "guide (openssl|tar xz)", &exp_g, corpus_mb, None);
    let exp_a = measure(&format!(
        "mkdir {o}/x3 && age -d -i {k} {o}/a.age | zstd -dc -q | tar xf - -C {o}/x3"
    ));
    row("export", "age|zstd|tar", &exp_a, corpus_mb, None);
    let floor = measure(&format!(
        "mkdir {o}/x4 && tar cf - -C {c} . | tar xf - -C {o}/x4"
    ));
    row("export", "floor: tar cf | tar xf", &floor, corpus_mb, None);
    // The guide's file is a legacy secrets.enc: migrate it (last, since
    // migrate renames it), against decrypting and untarring it.
    let kdf_migrate = kdf();
    let mig = measure(&format!(
        "{BIN} -q --no-progress vault migrate {o}/g.enc --out {o}/m.vault --password-file {p} --keep-password >/dev/null"
    ));
    row(
        "migrate",
        "safeclaw (guide's file)",
        &mig,
        corpus_mb,
        Some(size_mb(&out.join("m.vault"))),
    );
    let same = Command::new("diff")
        .args(["-r", "-q"])
        .arg(&corpus)
        .arg(out.join("x1"))
        .status()
        .unwrap();
    assert!(same.success(), "safeclaw's export differs from the corpus");

    println!(
        "\nArgon2id unlock alone, measured before each step: {kdf_seal:.2} s, {kdf_verify:.2} s, {kdf_export:.2} s, {kdf_migrate:.2} s"
    );
    println!("\nratios (higher is better for safeclaw):");
    println!(
        "  seal    {:>5.2}x the guide    {:>5.2}x tar|zstd|age   (targets >= 5x, >= 1x)",
        seal_g.secs / seal_s.secs,
        seal_a.secs / seal_s.secs
    );
    println!(
        "  verify  {:>5.2}x the guide    {:>5.2}x age|zstd        (target >= 3x)",
        ver_g.secs / ver_s.secs,
        ver_a.secs / ver_s.secs
    );
    println!("  export  {:>5.2}x the guide    {:>5.2}x age|zstd|tar    (target >= 1x); {:.2}x the copy floor's time (target <= 1.3x)",
        exp_g.secs / exp_s.secs, exp_a.secs / exp_s.secs, exp_s.secs / floor.secs);
    println!(
        "  migrate {:>5.2}x the time of openssl enc -d | tar xz (which writes plaintext to disk; migrate writes none)",
        mig.secs / exp_g.secs
    );
    let (ps, pv, pe) = (
        seal_s.secs - kdf_seal,
        ver_s.secs - kdf_verify,
        exp_s.secs - kdf_export,
    );
    println!("without the fixed unlock cost (payload work only):");
    println!(
        "  seal    {:>5.2}x the guide    {:>5.2}x tar|zstd|age    ({:.0} MB/s)",
        seal_g.secs / ps,
        seal_a.secs / ps,
        corpus_mb / ps
    );
    println!(
        "  verify  {:>5.2}x the guide    {:>5.2}x age|zstd        ({:.0} MB/s)",
        ver_g.secs / pv,
        ver_a.secs / pv,
        corpus_mb / pv
    );
    println!(
        "  export  {:>5.2}x the guide    {:>5.2}x age|zstd|tar    {:.2}x the copy floor's time",
        exp_g.secs / pe,
        exp_a.secs / pe,
        pe / floor.secs
    );

    // Flat memory: the same operations on a corpus a tenth the size.
    if mib >= 200 {
        let small_mib = mib / 10;
        let small = work.join(format!("corpus-{small_mib}"));
        make_corpus(&small, small_mib);
        let sc = small.display();
        let s_seal = measure(&format!("{BIN} -q --no-progress vault create --from {sc} --out {o}/small.vault --password-file {p} >/dev/null"));
        let s_exp = measure(&format!("{BIN} -q --no-progress vault export {o}/small.vault --to {o}/x5 --password-file {p} >/dev/null"));
        println!(
            "\npeak RSS, {small_mib} MiB -> {mib} MiB: seal {:.1} -> {:.1} MB, export {:.1} -> {:.1} MB (Argon2 alone: 512 MiB)",
            s_seal.rss_mb, seal_s.rss_mb, s_exp.rss_mb, exp_s.rss_mb
        );
    }
    let _ = fs::remove_dir_all(&out);
}

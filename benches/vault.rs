//! Seal, verify and export time and peak memory of safeclaw against the
//! tools people would pick instead, measured side by side in one run on
//! one generated corpus: the guide's pipeline (tar czf | openssl enc
//! -aes-256-cbc -pbkdf2), tar | zstd -3 | age, and for export the copy
//! floor `tar cf - | tar xf -`. Prints issue 20's table: the median of N
//! runs of every cell with its spread (min-max), and the ratios against
//! the peers with their targets.
//!
//! `cargo bench --bench vault`. Settings (environment):
//! - `SAFECLAW_BENCH_MIB=N`: corpus size (default 1024 MiB);
//! - `SAFECLAW_BENCH_RUNS=N`: runs per cell (default 5). The runs are
//!   interleaved (round 1 of every tool, then round 2, ...), so a burst of
//!   load elsewhere on the machine falls on all columns alike;
//! - `SAFECLAW_BENCH_BASELINE=/path/to/safeclaw`: an older build measured
//!   in the same rounds, as a column of its own (before/after figures
//!   under the same load);
//! - `SAFECLAW_BENCH_OUT=DIR`: where the vaults and the exports go
//!   (default: next to the corpus, under the target directory). It holds
//!   up to 5 exports and 4 sealed files at once, about 7 GB at 1 GiB: a
//!   tmpfs (`/dev/shm/...`) when the disk is short, which also leaves out
//!   the file system's allocation work (say so with the figures).
//!
//! Needs bash, tar, gzip, openssl, zstd and GNU time (`apt-get install
//! zstd time`); age is optional (`apt-get install age`): without it its
//! column says so and is left out. All runs read a corpus that fits in
//! the page cache, so these are warm-cache figures: CPU cost, not disk
//! speed. Each step starts after a `sync`, so no step pays for an earlier
//! one's writeback; no tool fsyncs. The load average is printed before
//! and after: on a shared 2-core machine it says how much to trust a run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

/// The bytes under `dir` (a vault and its blob store), in MB.
fn tree_size_mb(dir: &Path) -> f64 {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size_mb(&e.path()),
            _ => size_mb(&e.path()),
        })
        .sum()
}

fn size_mb(path: &Path) -> f64 {
    fs::metadata(path)
        .map(|m| m.len() as f64 / 1e6)
        .unwrap_or(0.0)
}

/// Waits until 40 s have passed since the last exports were removed.
/// ext4 without a journal (this machine's disk) skips inodes freed less
/// than 30 to 35 s ago when it allocates new ones (`recently_deleted`),
/// checking each: creating 6,500 files right after removing as many took
/// seconds of system time in `find_inode_bit`, more with every round, and
/// fell on whichever export came first. Seal and verify (well over 40 s
/// with the guide's seal) mostly cover the wait.
fn settle(removed: Instant) {
    let wait = std::time::Duration::from_secs(40).saturating_sub(removed.elapsed());
    if !wait.is_zero() {
        eprintln!(
            "waiting {:.0} s for freed inodes to age",
            wait.as_secs_f64()
        );
        std::thread::sleep(wait);
    }
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The runs of one cell of the table.
#[derive(Default)]
struct Cell {
    secs: Vec<f64>,
    rss_mb: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

impl Cell {
    fn push(&mut self, r: Run) {
        self.secs.push(r.secs);
        self.rss_mb.push(r.rss_mb);
    }
    fn median(&self) -> f64 {
        median(&self.secs)
    }
    fn rss(&self) -> f64 {
        self.rss_mb.iter().copied().fold(0.0, f64::max)
    }
    fn show(&self) -> String {
        if self.secs.is_empty() {
            return "-".into();
        }
        let min = self.secs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.secs.iter().copied().fold(0.0, f64::max);
        format!("{:.2} s ({min:.2}-{max:.2})", self.median())
    }
}

/// A table column: one tool, its seal, verify and export.
struct Column {
    name: String,
    seal: Cell,
    verify: Cell,
    export: Cell,
}

impl Column {
    fn new(name: &str) -> Self {
        Column {
            name: name.into(),
            seal: Cell::default(),
            verify: Cell::default(),
            export: Cell::default(),
        }
    }
}

/// `peer / ours` as "N.NNx", with whether it meets `at_least`.
fn faster(ours: &Cell, peer: &Cell, at_least: f64, target: &str) -> String {
    if ours.secs.is_empty() || peer.secs.is_empty() {
        return format!("-            ({target})");
    }
    let r = peer.median() / ours.median();
    let verdict = if r >= at_least { "met" } else { "NOT met" };
    format!("{r:>5.2}x faster ({target}: {verdict})")
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches; nothing to list.
    }
    let env_num = |name: &str, default: u64| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mib = env_num("SAFECLAW_BENCH_MIB", 1024);
    let runs = env_num("SAFECLAW_BENCH_RUNS", 5).max(1);
    let baseline = std::env::var("SAFECLAW_BENCH_BASELINE").ok();
    let with_age = have("age") && have("age-keygen");
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench");
    fs::create_dir_all(&work).unwrap();
    let corpus = work.join(format!("corpus-{mib}"));
    eprintln!("generating a {mib} MiB corpus in {} ...", corpus.display());
    make_corpus(&corpus, mib);
    // Every tool then reads the corpus from the page cache, the first too.
    measure(&format!("tar cf - -C {} . >/dev/null", corpus.display()));
    let out = std::env::var_os("SAFECLAW_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| work.join("out"));
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    let pw = out.join("pw");
    fs::write(&pw, "correct horse battery staple\n").unwrap();
    fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let key = out.join("age.key");
    let recipient = if with_age {
        let status = Command::new("age-keygen")
            .arg("-o")
            .arg(&key)
            .output()
            .unwrap();
        assert!(status.status.success());
        fs::read_to_string(&key)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("# public key: ").map(str::to_string))
            .unwrap()
    } else {
        String::new()
    };
    let corpus_mb = (mib << 20) as f64 / 1e6;
    let (c, o, p, k) = (corpus.display(), out.display(), pw.display(), key.display());
    // The fixed cost of one Argon2id derivation, measured in every round:
    // unlocking a vault of one small file.
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
    let guide_dec = format!(
        "openssl enc -d -aes-256-cbc -salt -pbkdf2 -iter 100000 -pass file:{p} -in {o}/g.enc"
    );

    println!("\ncorpus {mib} MiB ({corpus_mb:.0} MB): 40% text, 40% random, 20% small files; warm page cache, sync before each step");
    println!("safeclaw: default Argon2id (512 MiB, t=3, p=4) included in every timing; zstd -3 on 2 threads");
    println!("peers: guide = tar czf | openssl enc -aes-256-cbc -pbkdf2 -iter 100000; age = tar | zstd -3 -T2 | age -r; floor = tar cf - | tar xf -");
    println!("vaults and exports in {}", out.display());
    println!(
        "{} cores; {runs} interleaved runs per cell; load average (1, 5, 15 min) before: {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        load_average()
    );
    if !with_age {
        println!("age: not installed (apt-get install age): its column is skipped");
    }

    let mut ours = Column::new("safeclaw");
    let mut base = Column::new("safeclaw (baseline)");
    let mut age = Column::new("tar | zstd -3 | age");
    let mut guide = Column::new("guide's openssl pipeline");
    let mut floor = Column::new("floor");
    let mut kdf = Cell::default();
    let mut sizes = (0.0, 0.0, 0.0);
    // Seal and verify first, export last in each round, and the exports
    // removed only after the round: see `settle`.
    let seal_verify = |bin: &str, col: &mut Column, tag: &str| {
        // A directory per vault: version 4 keeps its blocks beside the file.
        let dir = out.join(format!("s{tag}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        col.seal.push(measure(&format!("{bin} -q --no-progress vault create --from {c} --out {o}/s{tag}/v.vault --password-file {p} >/dev/null")));
        col.verify.push(measure(&format!(
            "{bin} -q --no-progress vault verify {o}/s{tag}/v.vault --password-file {p} >/dev/null"
        )));
    };
    let export = |bin: &str, col: &mut Column, tag: &str| {
        col.export.push(measure(&format!("{bin} -q --no-progress vault export {o}/s{tag}/v.vault --to {o}/x1{tag} --password-file {p} >/dev/null")));
    };
    let exports = ["x1", "x1b", "x2", "x3", "x4"];
    let remove_exports = |keep_ours: bool| {
        for x in exports {
            if !(keep_ours && x == "x1") {
                let _ = fs::remove_dir_all(out.join(x));
            }
        }
        Instant::now()
    };
    let mut removed = Instant::now();
    for round in 1..=runs {
        eprintln!("round {round}/{runs} (load {})", load_average());
        kdf.push(measure(&format!(
            "{BIN} -q vault verify {o}/tiny.vault --password-file {p} >/dev/null"
        )));
        seal_verify(BIN, &mut ours, "");
        if let Some(b) = &baseline {
            seal_verify(b, &mut base, "b");
        }
        guide.seal.push(measure(&format!(
            "tar czf - -C {c} . | openssl enc -aes-256-cbc -salt -pbkdf2 -iter 100000 -pass file:{p} -out {o}/g.enc"
        )));
        guide
            .verify
            .push(measure(&format!("{guide_dec} | gzip -dc >/dev/null")));
        if with_age {
            age.seal.push(measure(&format!(
                "tar cf - -C {c} . | zstd -3 -T2 -q | age -r {recipient} -o {o}/a.age"
            )));
            age.verify.push(measure(&format!(
                "age -d -i {k} {o}/a.age | zstd -dc -q >/dev/null"
            )));
        }
        settle(removed);
        export(BIN, &mut ours, "");
        if let Some(b) = &baseline {
            export(b, &mut base, "b");
        }
        guide.export.push(measure(&format!(
            "mkdir {o}/x2 && {guide_dec} | tar xzf - -C {o}/x2"
        )));
        if with_age {
            age.export.push(measure(&format!(
                "mkdir {o}/x3 && age -d -i {k} {o}/a.age | zstd -dc -q | tar xf - -C {o}/x3"
            )));
        }
        floor.export.push(measure(&format!(
            "mkdir {o}/x4 && tar cf - -C {c} . | tar xf - -C {o}/x4"
        )));
        removed = remove_exports(round == runs);
        // So that a run cut short still leaves its figures.
        for col in [&ours, &base, &age, &guide, &floor] {
            let last = |c: &Cell| c.secs.last().map(|s| format!("{s:.2}"));
            if !col.export.secs.is_empty() {
                eprintln!(
                    "  {:<26} seal {:>6} verify {:>6} export {:>6}",
                    col.name,
                    last(&col.seal).unwrap_or_default(),
                    last(&col.verify).unwrap_or_default(),
                    last(&col.export).unwrap_or_default()
                );
            }
        }
    }
    let load_after = load_average();
    sizes.0 = tree_size_mb(&out.join("s"));
    sizes.1 = size_mb(&out.join("a.age"));
    sizes.2 = size_mb(&out.join("g.enc"));
    let same = Command::new("diff")
        .args(["-r", "-q"])
        .arg(&corpus)
        .arg(out.join("x1"))
        .status()
        .unwrap();
    assert!(same.success(), "safeclaw's export differs from the corpus");

    let mut columns = vec![&ours];
    if baseline.is_some() {
        columns.push(&base);
    }
    if with_age {
        columns.push(&age);
    }
    columns.push(&guide);
    columns.push(&floor);
    println!("\nmedian of {runs} runs (min-max), seconds, KDF included:\n");
    let mut line = String::from("| |");
    for col in &columns {
        line += &format!(" {} |", col.name.replace('|', "\\|"));
    }
    println!("{line}");
    println!("|---|{}", "---|".repeat(columns.len()));
    for (op, cell) in [
        (
            "seal",
            (|c: &Column| c.seal.show()) as fn(&Column) -> String,
        ),
        ("verify", |c: &Column| c.verify.show()),
        ("export", |c: &Column| c.export.show()),
    ] {
        let mut line = format!("| {op} |");
        for col in &columns {
            line += &format!(" {} |", cell(col));
        }
        println!("{line}");
    }
    println!(
        "\nArgon2id unlock alone (a one-file vault's verify): {}",
        kdf.show()
    );
    println!(
        "output size: safeclaw {:.1} MB, tar|zstd|age {:.1} MB, guide {:.1} MB",
        sizes.0, sizes.1, sizes.2
    );
    println!(
        "peak RSS (max over runs): safeclaw seal {:.0} MB, verify {:.0} MB, export {:.0} MB (Argon2 alone: 512 MiB)",
        ours.seal.rss(),
        ours.verify.rss(),
        ours.export.rss()
    );
    println!("load average after: {load_after}");

    println!("\nratios of medians (peer's time / safeclaw's; issue 20's targets):");
    if with_age {
        println!(
            "  seal    vs age   {}",
            faster(&ours.seal, &age.seal, 1.0, "target: at least level")
        );
    }
    println!(
        "  seal    vs guide {}",
        faster(&ours.seal, &guide.seal, 5.0, "target >= 5x")
    );
    if with_age {
        println!(
            "  verify  vs age   {}",
            faster(&ours.verify, &age.verify, 1.0, "target: no slower")
        );
    }
    println!(
        "  verify  vs guide {}",
        faster(&ours.verify, &guide.verify, 3.0, "target >= 3x")
    );
    if with_age {
        println!(
            "  export  vs age   {}",
            faster(&ours.export, &age.export, 1.0, "target: no slower")
        );
    }
    println!(
        "  export  vs guide {}",
        faster(&ours.export, &guide.export, 1.0, "no target")
    );
    let to_floor = ours.export.median() / floor.export.median();
    println!(
        "  export  vs floor {to_floor:>5.2}x the floor's time (target <= 1.3x: {})",
        if to_floor <= 1.3 { "met" } else { "NOT met" }
    );
    if baseline.is_some() {
        println!(
            "  this build vs the baseline (same rounds): seal {:.2}x, verify {:.2}x, export {:.2}x faster",
            base.seal.median() / ours.seal.median(),
            base.verify.median() / ours.verify.median(),
            base.export.median() / ours.export.median()
        );
    }
    let unlock = kdf.median();
    println!(
        "without the unlock (safeclaw's median minus the KDF's {unlock:.2} s; payload work only):"
    );
    for (op, ours, peers) in [
        ("seal", &ours.seal, [&age.seal, &guide.seal, &floor.seal]),
        (
            "verify",
            &ours.verify,
            [&age.verify, &guide.verify, &floor.verify],
        ),
        (
            "export",
            &ours.export,
            [&age.export, &guide.export, &floor.export],
        ),
    ] {
        let pay = ours.median() - unlock;
        let mut line = format!("  {op:<7} {pay:.2} s, {:>5.0} MB/s;", corpus_mb / pay);
        for (name, peer) in ["age", "guide", "floor"].iter().zip(peers) {
            if !peer.secs.is_empty() {
                line += &format!(" {:.2}x faster than {name};", peer.median() / pay);
            }
        }
        println!("{line}");
    }

    // The guide's file is a legacy secrets.enc: migrate it (last, since
    // migrate renames it), against decrypting and untarring it.
    fs::create_dir_all(out.join("m")).unwrap();
    let mig = measure(&format!(
        "{BIN} -q --no-progress vault migrate {o}/g.enc --out {o}/m/v.vault --password-file {p} --keep-password >/dev/null"
    ));
    println!(
        "\nmigrate of the guide's file (one run): {:.2} s, {:.2}x the time of openssl enc -d | tar xz (which writes plaintext to disk; migrate writes none)",
        mig.secs,
        mig.secs / guide.export.median()
    );

    // Flat memory: the same operations on a corpus a tenth the size.
    if mib >= 200 {
        let small_mib = mib / 10;
        let small = work.join(format!("corpus-{small_mib}"));
        make_corpus(&small, small_mib);
        let sc = small.display();
        fs::create_dir_all(out.join("small")).unwrap();
        let s_seal = measure(&format!("{BIN} -q --no-progress vault create --from {sc} --out {o}/small/v.vault --password-file {p} >/dev/null"));
        let s_exp = measure(&format!("{BIN} -q --no-progress vault export {o}/small/v.vault --to {o}/x5 --password-file {p} >/dev/null"));
        println!(
            "peak RSS, {small_mib} MiB -> {mib} MiB: seal {:.1} -> {:.1} MB, export {:.1} -> {:.1} MB (Argon2 alone: 512 MiB)",
            s_seal.rss_mb,
            ours.seal.rss(),
            s_exp.rss_mb,
            ours.export.rss()
        );
    }
    let _ = fs::remove_dir_all(&out);
}

//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use bollard::Docker;
use std::time::{Duration, Instant};

mod shared_with_benches;
// Not every test crate uses all of them.
#[allow(unused_imports)]
pub use shared_with_benches::{
    exec_raw, noise, wait_for_ui_assets, FAST_KDF, NOISE_SEED, ONBOARD_NON_INTERACTIVE,
};

pub fn safeclaw() -> Command {
    let mut cmd = Command::cargo_bin("safeclaw").unwrap();
    cmd.env_remove("NO_COLOR");
    // A Nix-installed safeclaw's pin must not leak into tests of others.
    cmd.env_remove("SAFECLAW_IMAGE");
    // Never the real ~/.safeclaw (tests that need a home set their own).
    cmd.env("SAFECLAW_HOME", test_home());
    cmd
}

/// `safeclaw` as `safeclaw()` sets it up, in a network namespace of its
/// own with no route (`unshare -rn`), for tests that name an address off
/// this machine: even a bug dials nothing. None where this user may not
/// make one.
pub fn safeclaw_offline() -> Option<Command> {
    let allowed = std::process::Command::new("unshare")
        .args(["-rn", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !allowed {
        return None;
    }
    let mut cmd = Command::new("unshare");
    cmd.arg("-rn")
        .arg(env!("CARGO_BIN_EXE_safeclaw"))
        .env_remove("NO_COLOR")
        .env_remove("SAFECLAW_IMAGE")
        .env("SAFECLAW_HOME", test_home());
    Some(cmd)
}

const TEST_HOME_PREFIX: &str = "safeclaw-test-home-";

/// The SAFECLAW_HOME every command of this test process runs with. A test
/// process cannot clean up after its last test (no hook runs then), so the
/// first call removes the homes of test processes that have ended.
pub fn test_home() -> PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| {
        let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(TEST_HOME_PREFIX))
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    });
    std::env::temp_dir().join(format!("{TEST_HOME_PREFIX}{}", std::process::id()))
}

/// `safeclaw vault export VAULT --to DIR --password-file PW`.
pub fn export_cmd(
    vault: impl AsRef<Path>,
    to: impl AsRef<Path>,
    password_file: impl AsRef<Path>,
) -> Command {
    let mut cmd = safeclaw();
    cmd.args(["vault", "export"])
        .arg(vault.as_ref())
        .arg("--to")
        .arg(to.as_ref())
        .arg("--password-file")
        .arg(password_file.as_ref());
    cmd
}

/// A 0600 password file holding `password` and a newline.
pub fn write_password(dir: &Path, name: &str, password: &str) -> PathBuf {
    pw_file(dir, name, format!("{password}\n").as_bytes())
}

/// A 0600 password file holding exactly `bytes` (CRLF cases and the like).
pub fn pw_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A directory shaped like an OpenClaw state dir: JSON config, SQLite with
/// WAL, a workspace git repo, symlinks inside, an empty dir, unicode names,
/// a long path, and a few modes.
pub fn openclaw_like_tree(root: &Path) {
    let w = |rel: &str, data: &[u8], mode: u32| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    };
    fs::create_dir_all(root).unwrap();
    w(
        "openclaw.json",
        br#"{"gateway":{"auth":{"token":"MARKER-gateway"}}}"#,
        0o600,
    );
    w("openclaw.json.bak.1", br#"{"old":true}"#, 0o600);
    let sqlite: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    w("state/openclaw.sqlite", &sqlite, 0o644);
    w("state/openclaw.sqlite-wal", &sqlite[..70_000], 0o644);
    w("state/openclaw.sqlite-shm", &[0u8; 32768], 0o644);
    w("workspace/.git/HEAD", b"ref: refs/heads/main\n", 0o644);
    w(
        "workspace/.git/hooks/pre-commit.sample",
        b"#!/bin/sh\nexit 0\n",
        0o755,
    );
    w(
        "workspace/MEMORY.md",
        "Owner likes tea. Café ☕\n".as_bytes(),
        0o600,
    );
    w(
        "workspace/memory/日記 2026.md",
        "ユニコード\n".as_bytes(),
        0o600,
    );
    let long = format!("agents/{}/session.json", "a".repeat(120));
    w(&long, b"{}", 0o600);
    fs::create_dir_all(root.join("media/empty")).unwrap();
    std::os::unix::fs::symlink("workspace/MEMORY.md", root.join("MEMORY-link.md")).unwrap();
    std::os::unix::fs::symlink("../state", root.join("workspace/state-link")).unwrap();
    std::os::unix::fs::symlink("does-not-exist", root.join("dangling")).unwrap();
}

#[derive(Debug, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    Link { target: PathBuf },
}

/// Everything under `root` (not `root` itself), not following links.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let node = if m.file_type().is_symlink() {
                Node::Link {
                    target: fs::read_link(&p).unwrap(),
                }
            } else if m.is_dir() {
                stack.push(p.clone());
                Node::Dir {
                    mode: m.mode() & 0o777,
                }
            } else {
                Node::File {
                    mode: m.mode() & 0o777,
                    data: fs::read(&p).unwrap(),
                }
            };
            out.insert(rel, node);
        }
    }
    out
}

/// Every path under `root`, for "nothing was written" checks.
pub fn listing(root: &Path) -> Vec<PathBuf> {
    snapshot(root).into_keys().collect()
}

/// `safeclaw vault create --from TREE --out OUT`; the caller adds the
/// password input, the KDF cost and any other flags.
pub fn create_cmd(tree: &Path, out: &Path) -> Command {
    let mut cmd = safeclaw();
    cmd.args(["vault", "create", "--from"])
        .arg(tree)
        .arg("--out")
        .arg(out);
    cmd
}

/// Creates a vault of `tree` with the fast KDF through the real binary.
pub fn create_vault(tree: &Path, out: &Path, password_file: &Path) {
    create_cmd(tree, out)
        .arg("--password-file")
        .arg(password_file)
        .args(FAST_KDF)
        .assert()
        .success();
}

/// `create_vault` with the tree's `.safeclaw/` sealed as the records
/// (`--with-records`); the assertion, for more checks.
pub fn create_vault_with_records(
    tree: &Path,
    out: &Path,
    password_file: &Path,
) -> assert_cmd::assert::Assert {
    create_cmd(tree, out)
        .arg("--with-records")
        .arg("--password-file")
        .arg(password_file)
        .args(FAST_KDF)
        .assert()
        .success()
}

/// A FIFO (named pipe) at `path`, as `mkfifo` makes it.
pub fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Tar archives with arbitrary (hostile) entries. Names are written into
/// the header bytes directly because the tar crate (rightly) refuses to
/// build most of these.
pub mod raw_tar {
    /// One raw tar entry.
    pub struct Raw<'a> {
        pub name: &'a [u8],
        pub kind: u8,
        pub link: &'a [u8],
        pub data: &'a [u8],
    }

    pub fn entry(
        name: &'static str,
        kind: u8,
        link: &'static str,
        data: &'static [u8],
    ) -> Raw<'static> {
        Raw {
            name: name.as_bytes(),
            kind,
            link: link.as_bytes(),
            data,
        }
    }

    pub fn tar(entries: &[Raw]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in entries {
            let mut h = tar::Header::new_gnu();
            {
                let gnu = h.as_gnu_mut().unwrap();
                gnu.name[..e.name.len()].copy_from_slice(e.name);
                gnu.linkname[..e.link.len()].copy_from_slice(e.link);
            }
            h.set_mode(0o644);
            h.set_size(e.data.len() as u64);
            h.set_entry_type(tar::EntryType::new(e.kind));
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(e.data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

// Engine helpers (tests on a real Docker engine).

/// A test that cannot run here: skipped with a reason on a developer
/// machine, a failure in CI (CI=true).
pub fn skip_unless_ci(missing: &str) {
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI=true but {missing}"
    );
    eprintln!("skipping: {missing}");
}

/// The stand-in image's files: this build's safeclaw and stand-in gateway.
pub fn standin_files() -> safeclaw::image::build::Files {
    safeclaw::image::build::standin_files(
        Path::new(env!("CARGO_BIN_EXE_safeclaw")),
        Path::new(env!("CARGO_BIN_EXE_openclaw-standin")),
    )
    .unwrap()
}

/// Builds the stand-in image as `image`.
pub fn build_standin(rt: &tokio::runtime::Runtime, docker: &Docker, image: &str) {
    // Each test's image its own ID: identical images share one, and a
    // test's forced removal of its tag raced another test's build of the
    // same content ("failed to resolve image id … No such image", seen on
    // both image stores).
    let mut files = standin_files();
    files.insert(
        "/etc/safeclaw-test-image".into(),
        safeclaw::image::build::Entry::Symlink(image.to_string()),
    );
    // Docker 20.10 can still lose an image config under a build while
    // another test removes its own image ("failed to get digest sha256:…:
    // no such file or directory", seen once in CI with eighteen fixtures
    // at once): the build is tried again, at most twice.
    // The link alone was seen to give two images one ID and the same
    // link (Docker 20.10's build cache does not hash a link's target): a
    // file with the name (its content is hashed) tells the stand-in which
    // image it runs in, and a label changes the config, whose digest is
    // the ID.
    let named = tempfile::NamedTempFile::new().unwrap();
    fs::write(named.path(), image).unwrap();
    files.insert(
        "/etc/safeclaw-test-image-name".into(),
        safeclaw::image::build::Entry::File(named.path().to_path_buf(), 0o644),
    );
    let recipe = safeclaw::image::build::Recipe {
        files,
        labels: [("dev.safeclaw.test-image".to_string(), image.to_string())].into(),
        ..Default::default()
    };
    let hidden = indicatif::ProgressBar::hidden();
    let mut tries = 0;
    loop {
        let built = safeclaw::image::build::build_recipe(docker, image, &recipe, &hidden);
        match rt.block_on(built) {
            Ok(_) => return,
            Err(e) if tries < 2 && e.message.contains("no such file or directory") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            Err(e) => panic!("building {image}: {e:?}"),
        }
    }
}

/// A new directory only its owner can read (safeclaw refuses a home that
/// others can).
pub fn private_dir(path: &Path) {
    fs::create_dir(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).unwrap();
}

/// A runtime of the tests' own for engine work (safeclaw's commands make
/// theirs in `runtime::engine::Engine`).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// What a test made in the engine, removed when this goes out of scope,
/// whether the test passed or panicked: its containers (forced, by the
/// names the test gave them) and then its images. Only ever given names
/// the test made: other tests (and people) use the same engine.
pub struct Cleanup<'a> {
    rt: &'a tokio::runtime::Runtime,
    docker: &'a Docker,
    containers: Vec<String>,
    images: Vec<String>,
}

impl<'a> Cleanup<'a> {
    pub fn new(rt: &'a tokio::runtime::Runtime, docker: &'a Docker) -> Self {
        Cleanup {
            rt,
            docker,
            containers: Vec::new(),
            images: Vec::new(),
        }
    }

    /// A gateway's container, and its egress proxy's (`start` makes one
    /// with egress locked).
    pub fn container(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.containers
            .push(safeclaw::egress::network::proxy_name(&name));
        self.containers.push(name);
        self
    }

    pub fn image(mut self, name: impl Into<String>) -> Self {
        self.add_image(name);
        self
    }

    /// An image known only once the test has made it (by ID).
    pub fn add_image(&mut self, name: impl Into<String>) {
        self.images.push(name.into());
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        use bollard::query_parameters::{RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder};
        self.rt.block_on(async {
            for name in &self.containers {
                let force = RemoveContainerOptionsBuilder::new().force(true).build();
                let _ = self.docker.remove_container(name, Some(force)).await;
            }
            for image in &self.images {
                let force = RemoveImageOptionsBuilder::new().force(true).build();
                let _ = self.docker.remove_image(image, Some(force), None).await;
            }
        });
    }
}

/// Runs `undo` when dropped (at the end of a test, passed or panicked).
pub struct OnDrop<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// An engine, or None (skip) on a developer machine without one.
pub fn engine() -> Option<(tokio::runtime::Runtime, Docker)> {
    let rt = runtime();
    match rt.block_on(safeclaw::runtime::engine::connect(None)) {
        Ok(docker) => Some((rt, docker)),
        Err(e) => {
            skip_unless_ci(&format!("no Docker engine ({})", e.message));
            None
        }
    }
}

/// What an image ID is on the engine's image store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageStore {
    /// The config's digest (Docker's classic store).
    Classic,
    /// A manifest's digest (the containerd image store, the default of
    /// Docker Engine >= 29 and Docker Desktop >= 4.34).
    Containerd,
}

/// Which store the engine uses, as it says itself: its storage driver's
/// status names containerd's snapshotter (`docker info`: "driver-type:
/// io.containerd.snapshotter.v1").
pub fn image_store(rt: &tokio::runtime::Runtime, docker: &Docker) -> ImageStore {
    let info = rt.block_on(docker.info()).unwrap();
    let containerd = info
        .driver_status
        .unwrap_or_default()
        .iter()
        .any(|kv| kv.iter().any(|v| v == "io.containerd.snapshotter.v1"));
    if containerd {
        ImageStore::Containerd
    } else {
        ImageStore::Classic
    }
}

pub fn wait_healthy(rt: &tokio::runtime::Runtime, docker: &Docker, name: &str) {
    let start = Instant::now();
    let kind = rt
        .block_on(safeclaw::runtime::engine::kind(docker))
        .unwrap();
    loop {
        // The container may not exist yet (`run` is still unlocking).
        // Where the engine's record cannot move (Podman without systemd),
        // safeclaw's own reading runs the image's check, as `status` does.
        let health = rt.block_on(async {
            let c = docker.inspect_container(name, None).await.ok()?;
            safeclaw::runtime::exec::health_in(docker, name, &c, kind)
                .await
                .ok()
                .map(|(h, _)| h)
        });
        if health.as_deref() == Some("healthy") {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{name} never became healthy ({health:?})"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every file under `root`, read (overlay upper dirs hold what a container
/// wrote to its writable layer).
pub fn files_under(root: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => files_under(&p, out),
            Ok(m) if m.is_file() => out.push((p.clone(), fs::read(&p).unwrap_or_default())),
            _ => {}
        }
    }
}

pub fn proc_texts() -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        if e.file_name()
            .to_string_lossy()
            .chars()
            .all(|c| c.is_ascii_digit())
        {
            for f in ["environ", "cmdline"] {
                let p = e.path().join(f);
                if let Ok(b) = fs::read(&p) {
                    out.push((p, b));
                }
            }
        }
    }
    out
}

/// The host pids of every process of a running container: its first
/// process and all of their descendants.
pub fn container_pids(rt: &tokio::runtime::Runtime, docker: &Docker, name: &str) -> Vec<u32> {
    let Some(first) = rt
        .block_on(docker.inspect_container(name, None))
        .ok()
        .and_then(|c| c.state)
        .and_then(|s| s.pid)
        .filter(|p| *p > 0)
    else {
        return Vec::new();
    };
    let mut pids = vec![first as u32];
    let mut i = 0;
    while i < pids.len() {
        let pid = pids[i];
        for task in fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let children = fs::read_to_string(task.path().join("children")).unwrap_or_default();
            pids.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
        i += 1;
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Which of `needles` the memory of process `pid` holds, read as root
/// through /proc/PID/mem: every readable mapping that is anonymous (heap,
/// stacks, the JIT's and allocators' memory) or backed by a file the
/// container wrote (its tmpfs state, /tmp); the image's own files (the
/// binaries, node_modules) cannot hold what the run received. Also the
/// total bytes read, to show the sweep was not empty.
pub fn memory_holds(pid: u32, needles: &[&str]) -> (Vec<String>, u64) {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(maps) = fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return (Vec::new(), 0);
    };
    let Ok(mut mem) = fs::File::open(format!("/proc/{pid}/mem")) else {
        return (Vec::new(), 0);
    };
    let longest = needles.iter().map(|n| n.len()).max().unwrap_or(1);
    let mut found: Vec<String> = Vec::new();
    let mut read = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(range), Some(perms)) = (fields.first(), fields.get(1)) else {
            continue;
        };
        let path = fields.get(5).copied().unwrap_or("");
        let ours = path.is_empty()
            || path.starts_with('[') && path != "[vvar]" && path != "[vsyscall]"
            || path.starts_with("/state")
            || path.starts_with("/tmp")
            || path.starts_with("/dev/shm")
            || path.starts_with("/memfd:");
        if !perms.starts_with('r') || !ours {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        // Chunks overlap by a needle's length, so none is cut in two.
        let mut at = start;
        while at < end {
            let len = ((end - at) as usize).min(buf.len());
            if mem.seek(SeekFrom::Start(at)).is_err() {
                break;
            }
            let Ok(n) = mem.read(&mut buf[..len]) else {
                break;
            };
            if n == 0 {
                break;
            }
            read += n as u64;
            for needle in needles {
                if !found.iter().any(|f| f == needle) && contains(&buf[..n], needle) {
                    found.push(needle.to_string());
                }
            }
            if at + (n as u64) >= end {
                break;
            }
            at += (n as u64).saturating_sub(longest as u64).max(1);
        }
    }
    (found, read)
}

/// Which of `needles` the container `name` holds, as "WHERE: needle":
/// in the memory of any of its processes (read as root through
/// /proc/PID/mem), their environment or command line, or a file of its
/// tmpfs state or /tmp (through /proc/PID/root). Panics if no memory
/// could be read (not root, or no process: a sweep that proves nothing).
pub fn container_holds(
    rt: &tokio::runtime::Runtime,
    docker: &Docker,
    name: &str,
    needles: &[&str],
) -> Vec<String> {
    let pids = container_pids(rt, docker, name);
    assert!(!pids.is_empty(), "{name} has no process to sweep");
    let mut out = Vec::new();
    let mut total = 0;
    let mut files = Vec::new();
    for dir in ["state", "tmp"] {
        files_under(
            &PathBuf::from(format!("/proc/{}/root/{dir}", pids[0])),
            &mut files,
        );
    }
    for &pid in &pids {
        let (found, read) = memory_holds(pid, needles);
        total += read;
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        out.extend(
            found
                .into_iter()
                .map(|n| format!("memory of pid {pid} ({}): {n}", comm.trim())),
        );
        for f in ["environ", "cmdline"] {
            let p = PathBuf::from(format!("/proc/{pid}/{f}"));
            files.push((p.clone(), fs::read(&p).unwrap_or_default()));
        }
    }
    for (path, bytes) in &files {
        for n in needles {
            if contains(bytes, n) {
                out.push(format!("{}: {n}", path.display()));
            }
        }
    }
    assert!(
        total > 0,
        "nothing of {name}'s memory could be read (run as root)"
    );
    out
}

pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The container's writable layer on the host: overlay2 names it in
/// GraphDriver; the containerd store leaves that empty (and Podman's
/// differs), but on every engine it is the `upperdir` of the root mount of
/// the container's first process.
pub fn writable_layer(c: &bollard::models::ContainerInspectResponse) -> String {
    if let Some(upper) = c
        .graph_driver
        .as_ref()
        .and_then(|g| g.data.get("UpperDir").cloned())
    {
        return upper;
    }
    let pid = c
        .state
        .as_ref()
        .and_then(|s| s.pid)
        .expect("a running container");
    root_upperdir(pid)
}

/// The overlay `upperdir` of the root mount of process `pid`, from
/// /proc/PID/mountinfo (the mount at `/` in its mount namespace).
fn root_upperdir(pid: i64) -> String {
    let info = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = info
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no root mount in {info}"));
    root.split(" - ")
        .nth(1)
        .and_then(|tail| tail.split_whitespace().nth(2))
        .and_then(|options| {
            options
                .split(',')
                .find_map(|o| o.strip_prefix("upperdir=").map(str::to_string))
        })
        .unwrap_or_else(|| panic!("the root mount is not an overlay: {root}"))
}

/// Where the engine keeps its containers' files (logs, config): under its
/// data root, which is not /var/lib/docker on every engine (the CI's
/// containerd-store engine has its own).
pub fn engine_containers_dir(rt: &tokio::runtime::Runtime, docker: &Docker) -> PathBuf {
    let root = rt
        .block_on(docker.info())
        .unwrap()
        .docker_root_dir
        .expect("the engine names its data root");
    Path::new(&root).join("containers")
}

/// Creates the container `name` from `body` and starts it (tests that make
/// containers of their own, not through safeclaw).
pub async fn create_and_start(
    docker: &Docker,
    name: &str,
    body: bollard::models::ContainerCreateBody,
) {
    docker
        .create_container(
            Some(
                bollard::query_parameters::CreateContainerOptionsBuilder::new()
                    .name(name)
                    .build(),
            ),
            body,
        )
        .await
        .unwrap();
    docker
        .start_container(
            name,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .unwrap();
}

/// A CA and a certificate for the test's upstream: every API host name it
/// stands in for. The broker trusts the CA only because `--egress-ca`
/// says so (docs/broker.md); nothing else does.
pub fn test_ca(dir: &Path, names: &[&str]) -> PathBuf {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "safeclaw test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
    // Read by the upstream's user (10001) through its own bind mount.
    let certs = dir.join("certs");
    fs::create_dir(&certs).unwrap();
    fs::set_permissions(&certs, fs::Permissions::from_mode(0o755)).unwrap();
    for (name, pem) in [
        ("leaf.pem", leaf.pem()),
        ("leaf.key", leaf_key.serialize_pem()),
        ("ca.pem", ca_cert.pem()),
    ] {
        fs::write(certs.join(name), pem).unwrap();
        fs::set_permissions(certs.join(name), fs::Permissions::from_mode(0o644)).unwrap();
    }
    certs
}

/// The request heads the test's HTTPS upstream received, in order.
pub fn upstream_heads(rt: &tokio::runtime::Runtime, docker: &Docker, name: &str) -> Vec<String> {
    upstream_field(rt, docker, name, "upstream_head")
}

/// The string `field` of each JSON line the test's upstream `name` printed.
pub fn upstream_field(
    rt: &tokio::runtime::Runtime,
    docker: &Docker,
    name: &str,
    field: &str,
) -> Vec<String> {
    rt.block_on(async {
        let mut logs = docker.logs(
            name,
            Some(
                bollard::query_parameters::LogsOptionsBuilder::new()
                    .stdout(true)
                    .build(),
            ),
        );
        let mut text = String::new();
        while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut logs).await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v[field].as_str().map(str::to_string))
            .collect()
    })
}

/// The /28 of a documentation /24 this test process takes for the
/// "internet" it builds (its fourth octet's base): one of eight by the
/// process id, in the half of the /24 `SAFECLAW_TEST_NET_HALF` (0 or 1)
/// names. Engines side by side on this machine (CI runs two legs at once)
/// must not route the same subnet to two bridges: each leg takes a half.
pub fn subnet_base() -> u8 {
    let half = std::env::var("SAFECLAW_TEST_NET_HALF").is_ok_and(|h| h == "1");
    (std::process::id() % 8) as u8 * 16 + if half { 128 } else { 0 }
}

/// `safeclaw --json secrets list` with `cmd` (its home set), of `vault`
/// (None: the home's), as JSON.
pub fn secrets_list(mut cmd: Command, vault: Option<&Path>, pw: &Path) -> serde_json::Value {
    cmd.args(["--json", "secrets", "list", "--password-file"])
        .arg(pw);
    if let Some(v) = vault {
        cmd.arg("--vault").arg(v);
    }
    let out = cmd.assert().success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

/// The placeholder `secrets list` shows for the secret `name`.
pub fn placeholder_of(listed: &serde_json::Value, name: &str) -> String {
    listed["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{listed}"))["placeholder"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `safeclaw --json vault generations VAULT`, parsed.
pub fn generations_json(vault: &Path) -> serde_json::Value {
    let out = safeclaw()
        .args(["--json", "vault", "generations"])
        .arg(vault)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

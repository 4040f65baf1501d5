//! safeclaw on rootless engines, run as the unprivileged user who owns
//! them: rootless Docker at `$XDG_RUNTIME_DIR/docker.sock` (found first, as
//! the docker CLI would) and rootless Podman at
//! `$XDG_RUNTIME_DIR/podman/podman.sock` (named with `--engine` when both
//! run). Each is found at the user's own socket, described as rootless
//! (the good answer to `host.engine-rootful`), and a start where the engine
//! cannot enforce the memory and process limits (rootless on cgroups v1, as
//! on this machine) is refused with nothing left behind, never run weaker.
//!
//! Needs root (to act as that user) and at least one of the user's
//! engines: `SAFECLAW_TEST_ROOTLESS_USER=$(.ci/engine-rootless.sh)`.
//! Skipped without them on a developer machine, a failure in CI.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;
use common::*;

/// Who the rootless engine belongs to, with their uid, home and runtime
/// directory.
struct RootlessUser {
    name: String,
    uid: u32,
    runtime_dir: String,
}

impl RootlessUser {
    fn from_env() -> Option<Self> {
        let Ok(name) = std::env::var("SAFECLAW_TEST_ROOTLESS_USER") else {
            skip_unless_ci("SAFECLAW_TEST_ROOTLESS_USER is not set (.ci/engine-rootless.sh)");
            return None;
        };
        if !rustix::process::geteuid().is_root() {
            skip_unless_ci("acting as the rootless user needs root");
            return None;
        }
        let id = std::process::Command::new("id")
            .args(["-u", &name])
            .output()
            .unwrap();
        assert!(id.status.success(), "no user {name}");
        let uid: u32 = String::from_utf8(id.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Some(RootlessUser {
            runtime_dir: format!("/run/user/{uid}"),
            name,
            uid,
        })
    }

    /// The user's rootless engines that answer, Docker's first (the order
    /// of discovery).
    fn sockets(&self) -> Vec<String> {
        [
            format!("{}/docker.sock", self.runtime_dir),
            format!("{}/podman/podman.sock", self.runtime_dir),
        ]
        .into_iter()
        .filter(|s| std::os::unix::net::UnixStream::connect(s).is_ok())
        .collect()
    }

    /// `safeclaw ARGS` as this user, in a clean environment as a login
    /// would give it: the engine is found, unless `engine` names it.
    fn safeclaw(&self, home: &Path, args: &[&str], engine: Option<&str>) -> Output {
        let engine: Vec<String> = engine
            .map(|e| vec!["--engine".to_string(), e.to_string()])
            .unwrap_or_default();
        std::process::Command::new("runuser")
            .args(["-u", &self.name, "--", "env", "-i"])
            .arg(format!("HOME={}", home.display()))
            .arg(format!("SAFECLAW_HOME={}", home.join("safeclaw").display()))
            .arg(format!("XDG_RUNTIME_DIR={}", self.runtime_dir))
            .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
            .arg(env!("CARGO_BIN_EXE_safeclaw"))
            .args(engine)
            .args(args)
            .current_dir(home)
            .output()
            .unwrap()
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn rootless_engines_are_found_described_and_never_run_a_weaker_container() {
    let Some(user) = RootlessUser::from_env() else {
        return;
    };
    let sockets = user.sockets();
    assert!(
        !sockets.is_empty(),
        "no rootless engine answers for {}",
        user.name
    );
    for (i, socket) in sockets.iter().enumerate() {
        // The first is found as the docker CLI would find it; a later one
        // is named.
        let engine = (i > 0).then(|| format!("unix://{socket}"));
        rootless_engine(&user, socket, engine.as_deref());
    }
}

fn rootless_engine(user: &RootlessUser, socket: &str, engine: Option<&str>) {
    eprintln!("rootless engine at {socket}");
    let rt = runtime();
    // Root reaches the user's socket directly, to build the image in the
    // user's own store; safeclaw itself runs as the user.
    let docker = Docker::connect_with_unix(socket, 120, bollard::API_DEFAULT_VERSION).unwrap();
    let info = rt.block_on(docker.info()).unwrap();
    let cgroups_v1 = info.cgroup_version.map(|v| v.to_string()).as_deref() == Some("1");
    let image = format!("safeclaw-standin:rootless-{}", std::process::id());
    let name = format!("sc-rootless-{}", std::process::id());
    let _made = Cleanup::new(&rt, &docker).container(&name).image(&image);
    build_standin(&rt, &docker, &image);

    // A home the user owns, with a vault made by the user.
    let dir = tempfile::TempDir::new().unwrap();
    let home = dir.path().join("home");
    fs::create_dir(&home).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
    let state = home.join("state");
    fs::create_dir(&state).unwrap();
    fs::write(state.join("openclaw.json"), b"{}").unwrap();
    pw_file(&home, "pw", b"rootless-password\r\n");
    let chown = std::process::Command::new("chown")
        .args(["-R", &format!("{}:{}", user.uid, user.uid)])
        .arg(&home)
        .status()
        .unwrap();
    assert!(chown.success());

    let mut create = vec![
        "vault",
        "create",
        "--from",
        "state",
        "--password-file",
        "pw",
    ];
    create.extend(FAST_KDF);
    let created = user.safeclaw(&home, &create, None);
    assert!(created.status.success(), "{}", text(&created));

    // Found at the user's socket and described.
    let audit = user.safeclaw(&home, &["audit", "--json"], engine);
    let report: serde_json::Value =
        serde_json::from_slice(&audit.stdout).unwrap_or_else(|_| panic!("{}", text(&audit)));
    let subjects = report["subjects"].to_string();
    assert!(
        subjects.contains(socket) && subjects.contains("rootless"),
        "{subjects}"
    );
    assert!(
        !report["findings"]
            .to_string()
            .contains("host.engine-rootful"),
        "{report}"
    );

    let started = user.safeclaw(
        &home,
        &[
            "start",
            "--name",
            &name,
            "--image",
            &image,
            "--password-file",
            "pw",
        ],
        engine,
    );
    if cgroups_v1 {
        // A rootless engine on cgroups v1 cannot enforce the limits
        // (Podman records 0, Docker records them and ignores them):
        // refused before anything is created.
        assert_eq!(started.status.code(), Some(5), "{}", text(&started));
        let err = String::from_utf8_lossy(&started.stderr);
        assert!(
            err.contains("cannot enforce the memory and process limits")
                && err.contains("rootless"),
            "{err}"
        );
        assert!(err.contains("cgroups v2"), "{err}");
    } else {
        assert!(started.status.success(), "{}", text(&started));
        let stopped = user.safeclaw(&home, &["stop", "--name", &name], engine);
        assert!(stopped.status.success(), "{}", text(&stopped));
    }
    let left = rt
        .block_on(
            docker.list_containers(Some(ListContainersOptionsBuilder::new().all(true).build())),
        )
        .unwrap();
    let ours = left
        .iter()
        .filter(|c| {
            c.names
                .iter()
                .flatten()
                .any(|n| n.trim_start_matches('/') == name)
        })
        .count();
    assert_eq!(ours, 0, "a container was left");
}

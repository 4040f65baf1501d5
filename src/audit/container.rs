//! Container and image checks over the engine's own JSON (`GET
//! /containers/{id}/json`, `GET /images/{id}/json`, `GET
//! /containers/{id}/changes`), so any container is audited the same way,
//! safeclaw's or a hand-made one. The runtime checks follow the CIS Docker
//! Benchmark's section 5 where they apply; the product checks are what
//! matters for an assistant holding API keys (docs/audit.md).

use serde_json::Value;

use super::secrets;
use super::{Area, Finding, Findings, Severity};
use crate::runtime::spec::{DEFAULT_CAPS, LOG_MAX_FILES, LOG_MAX_SIZE_MB};

/// What was gathered about one container.
pub struct Subject<'a> {
    pub inspect: &'a Value,
    pub image: Option<&'a Value>,
    /// Paths the container added or changed in its writable layer.
    pub changes: &'a [String],
    /// Every image ID the pinned image is known under, when safeclaw has a
    /// pin: the ID depends on the engine's image store (its config digest,
    /// or the digest of a manifest naming that config; `image_identity`).
    pub pinned_image_ids: Option<&'a [String]>,
    /// Podman's compatible inspect differs from Docker's: it lists the
    /// capabilities it dropped instead of `ALL`, and leaves the log
    /// options out (docs/engines.md).
    pub podman: bool,
}

const SAFECLAW_LABEL: &str = crate::runtime::spec::LABEL_MANAGED;

/// CIS 5.5: host directories a container must not mount.
const SENSITIVE: [&str; 10] = [
    "/",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/proc",
    "/sys",
    "/usr",
    "/root",
    "/var/lib/docker",
];
const ENGINE_SOCKETS: [&str; 4] = [
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
];
/// Capabilities that break container isolation when added.
const DANGEROUS_CAPS: [&str; 8] = [
    "ALL",
    "SYS_ADMIN",
    "SYS_PTRACE",
    "SYS_MODULE",
    "DAC_READ_SEARCH",
    "NET_ADMIN",
    "SYS_RAWIO",
    "BPF",
];

pub(super) fn str_at<'v>(v: &'v Value, path: &str) -> Option<&'v str> {
    v.pointer(path).and_then(Value::as_str)
}

pub(super) fn strings_at(v: &Value, path: &str) -> Vec<String> {
    v.pointer(path)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn num_at(v: &Value, path: &str) -> i64 {
    v.pointer(path).and_then(Value::as_i64).unwrap_or(0)
}

fn cap_name(c: &str) -> String {
    c.trim_start_matches("CAP_").to_ascii_uppercase()
}

/// True when `dir` is `path` or one of its parents.
fn covers(dir: &str, path: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    dir.is_empty() || path == dir || path.starts_with(&format!("{dir}/"))
}

/// How the container's file system keeps `path`: a mount's type, or the
/// writable layer.
fn storage_of(inspect: &Value, path: &str) -> (&'static str, Option<String>) {
    let mut best: Option<(usize, &'static str, Option<String>)> = None;
    let mut consider = |dest: &str, kind: &'static str, source: Option<String>| {
        if covers(dest, path) && best.as_ref().map_or(true, |(len, _, _)| dest.len() > *len) {
            best = Some((dest.len(), kind, source));
        }
    };
    if let Some(mounts) = inspect.pointer("/Mounts").and_then(Value::as_array) {
        for m in mounts {
            let dest = str_at(m, "/Destination").unwrap_or_default();
            let kind = match str_at(m, "/Type").unwrap_or_default() {
                "tmpfs" => "tmpfs",
                "volume" => "volume",
                "bind" => "bind",
                _ => "mount",
            };
            consider(dest, kind, str_at(m, "/Source").map(str::to_string));
        }
    }
    if let Some(tmpfs) = inspect
        .pointer("/HostConfig/Tmpfs")
        .and_then(Value::as_object)
    {
        for dest in tmpfs.keys() {
            consider(dest, "tmpfs", None);
        }
    }
    best.map(|(_, k, s)| (k, s)).unwrap_or(("layer", None))
}

/// `/etc/` as `/etc`, `/` as itself.
fn normalised(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" => "/",
        p => p,
    }
}

pub(super) fn is_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or_default();
    name.is_empty() || name == "root" || name == "0"
}

/// The capabilities the container dropped, by name (`CHOWN`, `ALL`).
pub(super) fn dropped_caps(c: &Value) -> Vec<String> {
    strings_at(c, "/HostConfig/CapDrop")
        .iter()
        .map(|x| cap_name(x))
        .collect()
}

/// True when the container dropped every capability it would get.
pub(super) fn all_caps_dropped(c: &Value) -> bool {
    let dropped = dropped_caps(c);
    let added_any = !strings_at(c, "/HostConfig/CapAdd").is_empty();
    // Podman records `--cap-drop ALL` as the list of what it dropped: every
    // capability of the default set dropped and none added is the same.
    dropped.iter().any(|d| d == "ALL")
        || (!added_any && DEFAULT_CAPS.iter().all(|d| dropped.iter().any(|x| x == d)))
}

/// True when `no-new-privileges` is set (`:` or `=`, with or without `true`).
pub(super) fn no_new_privileges(c: &Value) -> bool {
    strings_at(c, "/HostConfig/SecurityOpt").iter().any(|o| {
        matches!(
            o.replace('=', ":").as_str(),
            "no-new-privileges" | "no-new-privileges:true"
        )
    })
}

/// True for a container safeclaw made (its label).
pub fn is_managed(inspect: &Value) -> bool {
    inspect
        .pointer("/Config/Labels")
        .and_then(Value::as_object)
        .is_some_and(|labels| labels.contains_key(SAFECLAW_LABEL))
}

/// True when the container looks like it runs OpenClaw (the product
/// checks only apply there).
pub fn runs_openclaw(inspect: &Value) -> bool {
    if is_managed(inspect) {
        return true;
    }
    // safeclaw's egress proxy runs the gateway's image (its name often
    // says openclaw) but only `safeclaw egress serve`: no OpenClaw state.
    if super::egress::is_proxy(inspect) {
        return false;
    }
    let mut words = vec![
        str_at(inspect, "/Config/Image")
            .unwrap_or_default()
            .to_string(),
        str_at(inspect, "/Path").unwrap_or_default().to_string(),
    ];
    words.extend(strings_at(inspect, "/Args"));
    words.extend(strings_at(inspect, "/Config/Entrypoint"));
    words.extend(strings_at(inspect, "/Config/Cmd"));
    words
        .iter()
        .any(|w| w.to_ascii_lowercase().contains("openclaw"))
}

/// Where OpenClaw keeps its state in this container: OPENCLAW_STATE_DIR,
/// else `$HOME/.openclaw`, else root's.
fn state_dirs(inspect: &Value) -> Vec<String> {
    let env = strings_at(inspect, "/Config/Env");
    let var = |name: &str| {
        env.iter()
            .find_map(|e| e.strip_prefix(&format!("{name}=")).map(str::to_string))
    };
    if let Some(dir) = var("OPENCLAW_STATE_DIR").filter(|d| !d.is_empty()) {
        return vec![dir];
    }
    if let Some(home) = var("HOME").filter(|h| !h.is_empty()) {
        return vec![format!("{}/.openclaw", home.trim_end_matches('/'))];
    }
    let user = str_at(inspect, "/Config/User").unwrap_or_default();
    if is_root(user) {
        vec!["/root/.openclaw".into()]
    } else {
        vec!["/home/node/.openclaw".into()]
    }
}

/// Bytes of a log size as the engine's log options give it ("1m", "10k",
/// "1.5g", "2MB"): decimal units, as the engine's own parser (go-units
/// FromHumanSize) reads them.
fn log_size_bytes(size: &str) -> Option<u64> {
    let size = size.trim().to_ascii_lowercase();
    let number = size.trim_end_matches(['b', 'i']);
    let (number, unit) = match number.char_indices().last()? {
        (i, 'k') => (&number[..i], 1e3),
        (i, 'm') => (&number[..i], 1e6),
        (i, 'g') => (&number[..i], 1e9),
        (i, 't') => (&number[..i], 1e12),
        _ => (number, 1.0),
    };
    let n: f64 = number.trim().parse().ok()?;
    (n > 0.0).then_some((n * unit) as u64)
}

/// "3 MB", "1.5 GB", "512 kB": decimal, like the option.
fn decimal_size(bytes: u64) -> String {
    for (unit, name) in [(1e9, "GB"), (1e6, "MB"), (1e3, "kB")] {
        if bytes as f64 >= unit {
            return format!("{} {name}", bytes as f64 / unit);
        }
    }
    format!("{bytes} bytes")
}

/// The engine keeps what the container prints in files under its data
/// root, plaintext: a driver that never rotates (json-file without
/// max-size, the engine's default) grows without bound; a bounded one
/// still keeps its last few MB, noted for the record.
fn check_log(c: &Value, name: &str, podman: bool, out: &mut Findings) {
    let driver = str_at(c, "/HostConfig/LogConfig/Type").unwrap_or_default();
    let option = |key: &str| {
        str_at(c, &format!("/HostConfig/LogConfig/Config/{key}")).filter(|v| !v.is_empty())
    };
    let place = str_at(c, "/LogPath")
        .filter(|p| !p.is_empty())
        .map(|p| format!(", in {p}"))
        .unwrap_or_default();
    // The drivers' defaults: json-file keeps one file and never rotates;
    // local rotates at 20m and keeps 5 files.
    let (default_size, default_files) = match driver {
        "json-file" => (None, "1"),
        "local" => (Some("20m"), "5"),
        "" | "none" => return,
        other => {
            out.add(
                "container.log-kept",
                Severity::Info,
                "the container's output goes to a log driver outside the engine",
                format!("{name}: HostConfig.LogConfig is {other}: what the gateway prints is kept wherever that driver sends it"),
                "keep secrets out of the gateway's output; safeclaw containers use json-file, bounded",
                "safeclaw (docs/container.md)",
            );
            return;
        }
    };
    let podman_unreported = podman
        && c.pointer("/HostConfig/LogConfig/Config")
            .map_or(true, Value::is_null);
    if podman_unreported {
        out.add(
            "container.log-limits-unreported",
            Severity::Info,
            "Podman's compatible API does not report the log's limits",
            format!("{name}: HostConfig.LogConfig is {driver} with no options{place}"),
            "`podman inspect` shows LogConfig.Size (safeclaw asks for max-size; Podman keeps one file, it has no max-file)",
            "safeclaw (docs/engines.md)",
        );
        return;
    }
    let Some(size) = option("max-size").or(default_size) else {
        out.add(
            "container.log-unbounded",
            Severity::Medium,
            "the engine's log of the container's output grows without bound, in plaintext on the host disk",
            format!("{name}: HostConfig.LogConfig is json-file without max-size{place}"),
            &format!(
                "--log-opt max-size={LOG_MAX_SIZE_MB}m --log-opt max-file={LOG_MAX_FILES} (safeclaw start sets them)"
            ),
            "safeclaw (docs/container.md)",
        );
        return;
    };
    let files = option("max-file").unwrap_or(default_files);
    let most = log_size_bytes(size)
        .zip(files.parse::<u64>().ok())
        .and_then(|(size, files)| size.checked_mul(files))
        .map(|total| format!(" (at most {})", decimal_size(total)))
        .unwrap_or_default();
    out.add(
        "container.log-kept",
        Severity::Info,
        "the engine keeps the container's latest output, unencrypted, on the host disk",
        format!("{name}: {driver}, max-size {size} × max-file {files}{most}{place}"),
        "nothing to change while the gateway prints no secrets; `safeclaw logs` and `safeclaw stop` read this log",
        "safeclaw (docs/container.md)",
    );
}

pub fn check(s: &Subject) -> Vec<Finding> {
    let mut out = Findings::new(Area::Container);
    let c = s.inspect;
    let name = str_at(c, "/Name").unwrap_or("?").trim_start_matches('/');

    // CIS 4.1 / 5.x: a non-root user.
    let user = str_at(c, "/Config/User").unwrap_or_default();
    if is_root(user) {
        out.add(
            "container.root-user",
            Severity::Medium,
            "runs as root",
            format!("{name}: Config.User is {:?}", user),
            "run as an unprivileged user (--user UID:GID); safeclaw runs as the vault's owner",
            "CIS Docker 4.1",
        );
    }
    if c.pointer("/HostConfig/Privileged").and_then(Value::as_bool) == Some(true) {
        out.add(
            "container.privileged",
            Severity::High,
            "privileged: every capability and every host device",
            format!("{name}: HostConfig.Privileged is true"),
            "remove --privileged",
            "CIS Docker 5.4",
        );
    }
    if !all_caps_dropped(c) {
        out.add(
            "container.capabilities-not-dropped",
            Severity::Medium,
            "keeps the engine's default capabilities",
            format!("{name}: HostConfig.CapDrop is {:?}", dropped_caps(c)),
            "--cap-drop ALL (add back only what is needed)",
            "CIS Docker 5.3",
        );
    }
    let added: Vec<String> = strings_at(c, "/HostConfig/CapAdd")
        .iter()
        .map(|x| cap_name(x))
        .collect();
    let dangerous: Vec<&String> = added
        .iter()
        .filter(|a| DANGEROUS_CAPS.contains(&a.as_str()))
        .collect();
    if !dangerous.is_empty() {
        out.add(
            "container.capabilities-added",
            Severity::High,
            "adds capabilities that break isolation",
            format!("{name}: HostConfig.CapAdd holds {dangerous:?}"),
            "remove these --cap-add",
            "CIS Docker 5.3",
        );
    }
    if c.pointer("/HostConfig/ReadonlyRootfs")
        .and_then(Value::as_bool)
        != Some(true)
    {
        out.add(
            "container.writable-rootfs",
            Severity::Medium,
            "the root file system is writable",
            format!("{name}: HostConfig.ReadonlyRootfs is false"),
            "--read-only, with tmpfs mounts where the program writes",
            "CIS Docker 5.12",
        );
    }
    let security_opt = strings_at(c, "/HostConfig/SecurityOpt");
    let opt = |want: &str| security_opt.iter().any(|o| o.replace('=', ":") == want);
    if !no_new_privileges(c) {
        out.add(
            "container.new-privileges",
            Severity::Medium,
            "processes may gain privileges (setuid binaries)",
            format!("{name}: no no-new-privileges in HostConfig.SecurityOpt {security_opt:?}"),
            "--security-opt no-new-privileges",
            "CIS Docker 5.25",
        );
    }
    if opt("seccomp:unconfined") {
        out.add(
            "container.seccomp-disabled",
            Severity::High,
            "seccomp is disabled",
            format!("{name}: HostConfig.SecurityOpt holds seccomp=unconfined"),
            "drop --security-opt seccomp=unconfined (the default profile is fine)",
            "CIS Docker 5.21",
        );
    }
    if opt("apparmor:unconfined") || str_at(c, "/AppArmorProfile") == Some("unconfined") {
        out.add(
            "container.apparmor-disabled",
            Severity::Medium,
            "AppArmor is disabled",
            format!("{name}: the AppArmor profile is unconfined"),
            "drop --security-opt apparmor=unconfined",
            "CIS Docker 5.1",
        );
    }
    if num_at(c, "/HostConfig/Memory") <= 0 {
        out.add(
            "container.no-memory-limit",
            Severity::Medium,
            "no memory limit",
            format!("{name}: HostConfig.Memory is 0"),
            "--memory 2g (safeclaw: --memory-mib)",
            "CIS Docker 5.10",
        );
    }
    if num_at(c, "/HostConfig/PidsLimit") <= 0 {
        out.add(
            "container.no-pids-limit",
            Severity::Medium,
            "no process limit (a fork bomb takes the host down)",
            format!("{name}: HostConfig.PidsLimit is unset"),
            "--pids-limit 512",
            "CIS Docker 5.28",
        );
    }
    if num_at(c, "/HostConfig/NanoCpus") <= 0
        && num_at(c, "/HostConfig/CpuQuota") <= 0
        && num_at(c, "/HostConfig/CpuShares") <= 0
    {
        out.add(
            "container.no-cpu-limit",
            Severity::Low,
            "no CPU limit",
            format!("{name}: no NanoCpus, CpuQuota or CpuShares"),
            "--cpus 2",
            "CIS Docker 5.11",
        );
    }
    for (field, id, sev, cis) in [
        (
            "NetworkMode",
            "container.host-network",
            Severity::High,
            "CIS Docker 5.9",
        ),
        (
            "PidMode",
            "container.host-pid",
            Severity::High,
            "CIS Docker 5.15",
        ),
        (
            "IpcMode",
            "container.host-ipc",
            Severity::High,
            "CIS Docker 5.16",
        ),
        (
            "UTSMode",
            "container.host-uts",
            Severity::Medium,
            "CIS Docker 5.20",
        ),
        (
            "UsernsMode",
            "container.host-userns",
            Severity::Low,
            "CIS Docker 5.30",
        ),
    ] {
        if str_at(c, &format!("/HostConfig/{field}")) == Some("host") {
            out.add(
                id,
                sev,
                "shares a host namespace",
                format!("{name}: HostConfig.{field} is host"),
                "remove the --net/--pid/--ipc/--uts/--userns=host flag",
                cis,
            );
        }
    }
    if let Some(mounts) = c.pointer("/Mounts").and_then(Value::as_array) {
        for m in mounts {
            let source = str_at(m, "/Source").unwrap_or_default();
            let dest = str_at(m, "/Destination").unwrap_or_default();
            if str_at(m, "/Type") != Some("bind") {
                continue;
            }
            if ENGINE_SOCKETS.contains(&source) || source.ends_with("/docker.sock") {
                out.add(
                    "container.engine-socket",
                    Severity::High,
                    "the engine socket is mounted: root on the host from inside",
                    format!("{name}: {source} -> {dest}"),
                    "never mount the engine socket into the assistant's container",
                    "CIS Docker 5.31",
                );
            } else if SENSITIVE.contains(&normalised(source)) {
                let rw = m.pointer("/RW").and_then(Value::as_bool).unwrap_or(true);
                out.add(
                    "container.sensitive-mount",
                    Severity::High,
                    "a sensitive host directory is mounted",
                    format!(
                        "{name}: {source} -> {dest} ({})",
                        if rw { "read-write" } else { "read-only" }
                    ),
                    "mount only the directories the assistant needs, read-only",
                    "CIS Docker 5.5",
                );
            }
        }
    }
    if let Some(ports) = c
        .pointer("/HostConfig/PortBindings")
        .and_then(Value::as_object)
    {
        for (port, bindings) in ports {
            for b in bindings.as_array().into_iter().flatten() {
                let ip = str_at(b, "/HostIp").unwrap_or_default();
                if ip.is_empty() || ip == "0.0.0.0" || ip == "::" {
                    out.add(
                        "container.port-all-interfaces",
                        Severity::Medium,
                        "a port is published on every host address",
                        format!(
                            "{name}: {port} on {}:{}",
                            if ip.is_empty() { "0.0.0.0" } else { ip },
                            str_at(b, "/HostPort").unwrap_or_default()
                        ),
                        "publish on 127.0.0.1 only (-p 127.0.0.1:PORT:PORT; safeclaw --publish)",
                        "CIS Docker 5.13",
                    );
                }
            }
        }
    }
    let devices = c
        .pointer("/HostConfig/Devices")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if devices > 0 {
        out.add(
            "container.host-devices",
            Severity::Medium,
            "host devices are passed in",
            format!("{name}: {devices} entries in HostConfig.Devices"),
            "remove --device",
            "CIS Docker 5.17",
        );
    }
    let restart = str_at(c, "/HostConfig/RestartPolicy/Name").unwrap_or_default();
    let stdin_key = c.pointer("/Config/OpenStdin").and_then(Value::as_bool) == Some(true)
        && c.pointer("/Config/StdinOnce").and_then(Value::as_bool) != Some(true);
    if restart == "always" || restart == "unless-stopped" {
        out.add(
            "container.restart-policy",
            Severity::Low,
            "restarts forever",
            format!("{name}: HostConfig.RestartPolicy is {restart}"),
            "on-failure with a maximum count, or a supervisor (safeclaw run)",
            "CIS Docker 5.14",
        );
    }
    let healthcheck = c
        .pointer("/Config/Healthcheck/Test")
        .or_else(|| s.image.and_then(|i| i.pointer("/Config/Healthcheck/Test")))
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty() && t[0].as_str() != Some("NONE"));
    if !healthcheck {
        out.add(
            "container.no-healthcheck",
            Severity::Low,
            "no health check: a hung gateway looks running",
            format!("{name}: no Config.Healthcheck"),
            "--health-cmd (safeclaw's guard checks the gateway's /healthz)",
            "CIS Docker 5.26",
        );
    }

    check_log(c, name, s.podman, &mut out);

    // Secrets visible to anyone who can inspect the container.
    for entry in strings_at(c, "/Config/Env") {
        if let Some(why) = secrets::in_env(&entry) {
            out.add(
                "container.secret-in-env",
                Severity::High,
                "a secret is in the environment (docker inspect, /proc/PID/environ)",
                format!("{name}: {why}"),
                "pass secrets as files or over stdin, never -e",
                "guide: security note",
            );
        }
    }
    let mut argv = strings_at(c, "/Config/Entrypoint");
    argv.extend(strings_at(c, "/Config/Cmd"));
    for (i, arg) in argv.iter().enumerate() {
        if let Some(kind) = secrets::shape_in(arg) {
            out.add(
                "container.secret-in-cmd",
                Severity::High,
                "a secret is on the command line (docker inspect, ps)",
                format!("{name}: argument {} holds {kind}", i + 1),
                "pass secrets as files or over stdin",
                "guide flaw 5",
            );
        }
    }
    if let Some(labels) = c.pointer("/Config/Labels").and_then(Value::as_object) {
        for (key, value) in labels {
            let value = value.as_str().unwrap_or_default();
            let kind = secrets::shape_in(value).or_else(|| {
                (secrets::secret_name(key) && !value.is_empty())
                    .then_some("a value named like a secret")
            });
            if let Some(kind) = kind {
                out.add(
                    "container.secret-in-label",
                    Severity::High,
                    "a secret is in a label",
                    format!("{name}: label {key} holds {kind}"),
                    "labels are public metadata: remove it",
                    "safeclaw",
                );
            }
        }
    }

    if runs_openclaw(c) {
        let managed = is_managed(c);
        for dir in state_dirs(c) {
            let (kind, source) = storage_of(c, &dir);
            // What is inside the state dir (not the dir itself), first.
            let mut written: Vec<&String> = s
                .changes
                .iter()
                .filter(|p| covers(&dir, p) && p.as_str() != dir)
                .collect();
            written.sort();
            match kind {
                "tmpfs" => {}
                "layer" => {
                    let seen = if written.is_empty() {
                        format!("{name}: {dir} is on the writable layer")
                    } else {
                        let shown: Vec<&str> = written.iter().take(3).map(|p| p.as_str()).collect();
                        format!(
                            "{name}: {} path{} under {dir} in the writable layer, e.g. {}",
                            written.len(),
                            if written.len() == 1 { "" } else { "s" },
                            shown.join(", ")
                        )
                    };
                    out.add(
                        "container.state-on-disk",
                        Severity::High,
                        "OpenClaw's state (API keys, bot token, memory) is plaintext on the host disk",
                        seen,
                        "keep the state dir on a tmpfs and seal it (safeclaw start)",
                        "guide flaw 3",
                    );
                    if !managed {
                        out.add(
                            "container.state-not-persisted",
                            Severity::Medium,
                            "state changes are lost when the container is removed",
                            format!("{name}: {dir} is in the container only; the guide's launcher removes it at every start"),
                            "persist the state encrypted (safeclaw seals every change into the vault)",
                            "guide flaw 4",
                        );
                    }
                }
                _ => out.add(
                    "container.state-plaintext-mount",
                    Severity::High,
                    "OpenClaw's state is a plaintext host directory or volume",
                    format!(
                        "{name}: {dir} is a {kind} mount{}",
                        source.map(|s| format!(" of {s}")).unwrap_or_default()
                    ),
                    "keep the state dir on a tmpfs and seal it (safeclaw start)",
                    "guide flaw 3",
                ),
            }
        }
        if stdin_key && !managed {
            out.add(
                "container.stdin-key-wait",
                Severity::Medium,
                "stdin is left open with nobody attached: an entrypoint reading a key waits forever",
                format!(
                    "{name}: Config.OpenStdin is true, StdinOnce false{}",
                    if restart == "always" || restart == "unless-stopped" { ", and every restart waits again" } else { "" }
                ),
                "deliver the key through an attach before start (safeclaw start does)",
                "guide flaws 1 and 2",
            );
        }
    }
    out.into_vec()
}

/// The image a container runs: pinned, tagged immutably, non-root.
pub fn check_image(s: &Subject) -> Vec<Finding> {
    let mut out = Findings::new(Area::Image);
    let c = s.inspect;
    let name = str_at(c, "/Name").unwrap_or("?").trim_start_matches('/');
    let reference = str_at(c, "/Config/Image").unwrap_or_default();
    let id = str_at(c, "/Image").unwrap_or_default();
    match s.pinned_image_ids {
        Some(pinned) if !pinned.iter().any(|p| p == id) => out.add(
            "image.not-pinned",
            Severity::Medium,
            "the container does not run the pinned image",
            format!(
                "{name}: runs {reference} ({id}); pinned is {}",
                pinned.join(" or ")
            ),
            "restart it with safeclaw start (no --image)",
            "safeclaw",
        ),
        Some(_) => {}
        None => out.add(
            "image.no-pin",
            Severity::Info,
            "no pinned image to compare with (safeclaw was not installed by Nix)",
            format!("{name}: runs {reference} ({id})"),
            "install safeclaw with Nix for a pinned, reproducible image",
            "safeclaw",
        ),
    }
    let last = reference.rsplit('/').next().unwrap_or_default();
    let digest = reference.contains("@sha256:");
    let tag = last.split_once(':').map(|(_, t)| t);
    if !digest && !reference.starts_with("sha256:") && matches!(tag, None | Some("latest")) {
        out.add(
            "image.mutable-tag",
            Severity::Low,
            "started from a mutable tag",
            format!("{name}: Config.Image is {reference:?}"),
            "use a versioned tag or the image ID (the Nix image's tag is its own hash)",
            "CIS Docker 5.27",
        );
    }
    if let Some(image) = s.image {
        let user = str_at(image, "/Config/User").unwrap_or_default();
        if is_root(user) {
            out.add(
                "image.root-default",
                Severity::Low,
                "the image runs as root unless told otherwise",
                format!("{reference}: Config.User is {user:?}"),
                "set USER in the image (safeclaw's images use uid 10001)",
                "CIS Docker 4.1",
            );
        }
    }
    out.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::ids;
    use serde_json::json;

    #[test]
    fn the_guides_container_gets_every_finding_it_deserves() {
        let inspect = json!({
            "Name": "/openclaw", "Image": "sha256:abc", "Path": "/app/entrypoint.sh", "Args": [],
            "Config": { "User": "", "Image": "secure-openclaw", "OpenStdin": true, "StdinOnce": false,
                        "Env": ["PATH=/usr/bin", "SECRET_KEY=correct horse battery"],
                        "Entrypoint": ["/app/entrypoint.sh"], "Labels": {} },
            "HostConfig": { "Privileged": false, "ReadonlyRootfs": false, "Memory": 0, "PidsLimit": null,
                            "RestartPolicy": { "Name": "unless-stopped" }, "NetworkMode": "bridge" },
            "Mounts": [{ "Type": "bind", "Source": "/home/u/openclaw-secure/data", "Destination": "/app/data", "RW": true }]
        });
        let changes = vec!["/root/.openclaw/openclaw.json".to_string()];
        let s = Subject {
            inspect: &inspect,
            image: None,
            changes: &changes,
            pinned_image_ids: None,
            podman: false,
        };
        let found = check(&s);
        let got = ids(&found);
        for want in [
            "container.root-user",
            "container.capabilities-not-dropped",
            "container.writable-rootfs",
            "container.new-privileges",
            "container.no-memory-limit",
            "container.no-pids-limit",
            "container.no-cpu-limit",
            "container.restart-policy",
            "container.no-healthcheck",
            "container.secret-in-env",
            "container.state-on-disk",
            "container.state-not-persisted",
            "container.stdin-key-wait",
        ] {
            assert!(got.contains(&want), "missing {want} in {got:?}");
        }
        assert!(!got.contains(&"container.privileged"));
        let env = found
            .iter()
            .find(|f| f.id == "container.secret-in-env")
            .unwrap();
        assert!(!env.evidence.contains("horse"), "{}", env.evidence);
        let disk = found
            .iter()
            .find(|f| f.id == "container.state-on-disk")
            .unwrap();
        assert!(disk.evidence.contains("/root/.openclaw/openclaw.json"));
        assert_eq!(ids(&check_image(&s)), ["image.no-pin", "image.mutable-tag"]);
    }

    #[test]
    fn host_namespaces_sockets_ports_and_secrets_are_found() {
        let inspect = json!({
            "Name": "/x", "Image": "sha256:1",
            "Config": { "User": "1000", "Image": "x:1", "Cmd": ["run", "--key", format!("sk-ant-{}", "a".repeat(30))],
                        "Labels": { "token": "abc" } },
            "HostConfig": { "Privileged": true, "CapDrop": ["ALL"], "CapAdd": ["CAP_SYS_ADMIN"],
                            "ReadonlyRootfs": true, "SecurityOpt": ["no-new-privileges", "seccomp=unconfined"],
                            "Memory": 1, "PidsLimit": 10, "NanoCpus": 1, "NetworkMode": "host", "PidMode": "host",
                            "PortBindings": { "18789/tcp": [{ "HostIp": "", "HostPort": "18789" }] } },
            "Mounts": [{ "Type": "bind", "Source": "/var/run/docker.sock", "Destination": "/s", "RW": true },
                       { "Type": "bind", "Source": "/etc", "Destination": "/host-etc", "RW": false }]
        });
        let pinned = ["sha256:2".to_string(), "sha256:3".to_string()];
        let s = Subject {
            inspect: &inspect,
            image: None,
            changes: &[],
            pinned_image_ids: Some(&pinned),
            podman: false,
        };
        let got = check(&s);
        let got = ids(&got);
        for want in [
            "container.privileged",
            "container.capabilities-added",
            "container.seccomp-disabled",
            "container.host-network",
            "container.host-pid",
            "container.engine-socket",
            "container.sensitive-mount",
            "container.port-all-interfaces",
            "container.secret-in-cmd",
            "container.secret-in-label",
        ] {
            assert!(got.contains(&want), "missing {want} in {got:?}");
        }
        for not in [
            "container.root-user",
            "container.new-privileges",
            "container.capabilities-not-dropped",
        ] {
            assert!(!got.contains(&not), "{not} in {got:?}");
        }
        // Not OpenClaw: no product checks.
        assert!(!got.iter().any(|i| i.starts_with("container.state")));
        let image = check_image(&s);
        assert_eq!(ids(&image), ["image.not-pinned"]);
        assert!(image[0].evidence.contains("sha256:2 or sha256:3"));
        // Any of the pinned image's IDs is the pinned image (one per store).
        let also = ["sha256:0".to_string(), "sha256:1".to_string()];
        let s = Subject {
            pinned_image_ids: Some(&also),
            ..s
        };
        assert!(!ids(&check_image(&s)).contains(&"image.not-pinned"));
    }

    fn log_findings(log_config: Value) -> Vec<Finding> {
        let inspect = json!({
            "Name": "/o", "LogPath": "/var/lib/docker/containers/abc/abc-json.log",
            "Config": { "User": "10001", "Image": "x:1" },
            "HostConfig": { "LogConfig": log_config }
        });
        let s = Subject {
            inspect: &inspect,
            image: None,
            changes: &[],
            pinned_image_ids: None,
            podman: false,
        };
        check(&s)
            .into_iter()
            .filter(|f| f.id.starts_with("container.log-"))
            .collect()
    }

    #[test]
    fn an_unbounded_log_is_found_and_a_bounded_one_noted() {
        // The engine's default: json-file, no options.
        let found = log_findings(json!({ "Type": "json-file", "Config": {} }));
        assert_eq!(ids(&found), ["container.log-unbounded"]);
        assert_eq!(found[0].severity, Severity::Medium);
        assert_eq!(
            found[0].evidence,
            "o: HostConfig.LogConfig is json-file without max-size, in /var/lib/docker/containers/abc/abc-json.log"
        );
        assert!(found[0].fix.contains("max-size=1m") && found[0].fix.contains("max-file=3"));
        // A max-file alone bounds nothing.
        let found = log_findings(json!({ "Type": "json-file", "Config": { "max-file": "3" } }));
        assert_eq!(ids(&found), ["container.log-unbounded"]);

        // What safeclaw sets: bounded, and what it keeps is said.
        let found = log_findings(
            json!({ "Type": "json-file", "Config": { "max-size": "1m", "max-file": "3" } }),
        );
        assert_eq!(ids(&found), ["container.log-kept"]);
        assert_eq!(found[0].severity, Severity::Info);
        assert_eq!(
            found[0].evidence,
            "o: json-file, max-size 1m × max-file 3 (at most 3 MB), in /var/lib/docker/containers/abc/abc-json.log"
        );
        // max-file defaults to 1; local rotates by itself (20m × 5).
        let found = log_findings(json!({ "Type": "json-file", "Config": { "max-size": "10k" } }));
        assert!(found[0]
            .evidence
            .contains("max-size 10k × max-file 1 (at most 10 kB)"));
        let found = log_findings(json!({ "Type": "local", "Config": {} }));
        assert_eq!(ids(&found), ["container.log-kept"]);
        assert!(found[0]
            .evidence
            .contains("local, max-size 20m × max-file 5 (at most 100 MB)"));
        // Elsewhere: noted; none: nothing kept, nothing said.
        let found = log_findings(json!({ "Type": "syslog", "Config": {} }));
        assert_eq!(ids(&found), ["container.log-kept"]);
        assert!(found[0].evidence.contains("syslog"));
        assert!(log_findings(json!({ "Type": "none" })).is_empty());
        assert!(log_findings(Value::Null).is_empty());
    }

    #[test]
    fn the_create_body_passes_its_own_log_check() {
        let spec = crate::runtime::spec::Spec {
            image: "x:1".into(),
            vault_dir: "/v".into(),
            vault_file: "openclaw.vault".into(),
            uid: 10001,
            gid: 10001,
            limits: crate::runtime::spec::Limits {
                memory_bytes: 2 << 30,
                nano_cpus: 2_000_000_000,
                pids: 512,
            },
            shares: Vec::new(),
            gateway: Vec::new(),
            publish: None,
            keep_generations: 5,
            checkpoint_interval: std::time::Duration::ZERO,
            drain: std::time::Duration::from_secs(30),
            labels: Vec::new(),
            egress_socket_dir: None,
            egress_policy: None,
            pinned_skills_dir: None,
        };
        let body =
            crate::runtime::spec::create_body(&spec, crate::runtime::spec::EngineKind::Docker);
        let found =
            log_findings(serde_json::to_value(body.host_config.unwrap().log_config).unwrap());
        assert_eq!(ids(&found), ["container.log-kept"]);
        assert!(
            found[0].evidence.contains("(at most 3 MB)"),
            "{}",
            found[0].evidence
        );
    }

    #[test]
    fn a_tmpfs_state_dir_is_fine_and_a_volume_is_not() {
        let mut inspect = json!({
            "Name": "/o", "Config": { "User": "10001", "Image": "openclaw:1", "Env": ["OPENCLAW_STATE_DIR=/state"] },
            "HostConfig": { "Tmpfs": { "/state": "size=1g" } }
        });
        let s = Subject {
            inspect: &inspect,
            image: None,
            changes: &[],
            pinned_image_ids: None,
            podman: false,
        };
        assert!(!ids(&check(&s))
            .iter()
            .any(|i| i.starts_with("container.state")));
        inspect["HostConfig"]["Tmpfs"] = json!({});
        inspect["Mounts"] = json!([{ "Type": "volume", "Source": "/var/lib/docker/volumes/v/_data", "Destination": "/state" }]);
        let s = Subject {
            inspect: &inspect,
            image: None,
            changes: &[],
            pinned_image_ids: None,
            podman: false,
        };
        assert!(ids(&check(&s)).contains(&"container.state-plaintext-mount"));
    }

    /// Podman 4.3.1's compatible inspect of a container safeclaw started
    /// (measured): capabilities as the list it dropped, the log's options
    /// left out.
    fn podman_inspect(cap_add: Value) -> Value {
        json!({
            "Name": "/safeclaw",
            "Config": { "User": "10001:10001", "Image": "x:1" },
            "HostConfig": {
                "CapDrop": ["AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
                            "MKNOD", "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID",
                            "SETPCAP", "SETUID", "SYS_CHROOT"],
                "CapAdd": cap_add,
                "SecurityOpt": ["no-new-privileges"],
                "ReadonlyRootfs": true,
                "LogConfig": { "Type": "json-file", "Config": null }
            }
        })
    }

    #[test]
    fn podman_s_way_of_reporting_a_hardened_container_is_not_a_finding() {
        let inspect = podman_inspect(json!([]));
        let s = Subject {
            inspect: &inspect,
            image: None,
            changes: &[],
            pinned_image_ids: None,
            podman: true,
        };
        let found = check(&s);
        let found = ids(&found);
        for absent in [
            "container.capabilities-not-dropped",
            "container.new-privileges",
            "container.log-unbounded",
        ] {
            assert!(!found.contains(&absent), "{found:?}");
        }
        assert!(
            found.contains(&"container.log-limits-unreported"),
            "{found:?}"
        );
        // The same record from Docker would mean a log without a cap.
        let docker = Subject { podman: false, ..s };
        assert!(ids(&check(&docker)).contains(&"container.log-unbounded"));
        // A capability added back is not "all dropped", whatever the list.
        let inspect = podman_inspect(json!(["NET_RAW"]));
        let added = Subject {
            inspect: &inspect,
            podman: true,
            ..docker
        };
        assert!(ids(&check(&added)).contains(&"container.capabilities-not-dropped"));
        // Most of the default set dropped is not all of it.
        let mut partial = podman_inspect(json!([]));
        partial["HostConfig"]["CapDrop"] = json!(["CHOWN", "KILL"]);
        let partial_s = Subject {
            inspect: &partial,
            podman: true,
            ..docker
        };
        assert!(ids(&check(&partial_s)).contains(&"container.capabilities-not-dropped"));
    }
}

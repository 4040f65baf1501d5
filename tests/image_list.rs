//! `image list`, `image prune` and the guard check of the default twin, on
//! a real engine, with stand-in images labelled as twins (built here from
//! scratch, never pulled). The engine is shared with other tests and
//! people: nothing here removes an image it did not build, so `prune` is
//! run for its plan (`--dry-run`), its refusals and a declined prompt, and
//! the removal itself through the library, given this test's images only.
//! The default twin tag is never touched: its decision is driven through
//! `ensure_default_twin` under a test tag. Skips without an engine outside
//! CI.

mod common;

use std::collections::BTreeMap;
use std::fs;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use bollard::Docker;
use common::*;
use safeclaw::image::build::{build_recipe, Entry, Recipe};
use safeclaw::image::inventory::{self, Removed};
use safeclaw::image::provenance::{
    KIND_TWIN, LABEL_IMAGE, LABEL_NODE, LABEL_OPENCLAW, LABEL_SAFECLAW,
};
use safeclaw::image::resolve::ensure_default_twin;
use safeclaw::printer::Printer;
use tempfile::TempDir;

const OLD_GUARD: &str = "0072ff6d7860255b94e2bee0f5e75c2b5a73ac17196c1eb11d5871afaff385df";
const NEW_GUARD: &str = "b6e40937883db827c51995e6bb71958c561d16e689348c7db67ff550e515b42a";
// A valid Nix base-32 hash part (see nix_store_path's vectors).
const HASH: &str = "cx2j60ggrnmqjrs54c0yzkdbi5kla8q1";

/// Builds a stand-in labelled as a twin of `openclaw`, whose guard has the
/// hash `guard`; returns its ID.
fn build_twin(
    rt: &tokio::runtime::Runtime,
    docker: &Docker,
    tag: &str,
    openclaw: &str,
    guard: &str,
) -> String {
    let mut files = standin_files();
    // Each image its own ID (see `build_standin`).
    files.insert(
        "/etc/safeclaw-test-image".into(),
        Entry::Symlink(tag.to_string()),
    );
    let labels = BTreeMap::from([
        (LABEL_IMAGE.to_string(), KIND_TWIN.to_string()),
        (LABEL_OPENCLAW.to_string(), openclaw.to_string()),
        (LABEL_NODE.to_string(), "24.0.0-test".to_string()),
        (LABEL_SAFECLAW.to_string(), guard.to_string()),
    ]);
    let recipe = Recipe {
        files,
        labels,
        ..Default::default()
    };
    rt.block_on(build_recipe(
        docker,
        tag,
        &recipe,
        &indicatif::ProgressBar::hidden(),
    ))
    .unwrap();
    rt.block_on(docker.inspect_image(tag)).unwrap().id.unwrap()
}

/// A container of `image` that idles, labelled as safeclaw's gateway when
/// `managed`; started when `run`.
fn container(
    rt: &tokio::runtime::Runtime,
    docker: &Docker,
    name: &str,
    image: &str,
    managed: bool,
    run: bool,
) {
    let labels = managed.then(|| [("dev.safeclaw.managed".to_string(), "1".to_string())].into());
    rt.block_on(docker.create_container(
        Some(CreateContainerOptionsBuilder::new().name(name).build()),
        ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(vec!["idle".into()]),
            labels,
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    ))
    .unwrap();
    if run {
        rt.block_on(docker.start_container(name, None)).unwrap();
    }
}

fn by_id<'a>(listed: &'a serde_json::Value, key: &str, id: &str) -> Option<&'a serde_json::Value> {
    listed[key]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
}

#[test]
fn list_shows_twins_with_their_versions_and_which_one_runs() {
    let Some((rt, docker)) = engine() else { return };
    let n = std::process::id();
    let (running_tag, idle_tag) = (
        format!("safeclaw-list:running-{n}"),
        format!("safeclaw-list:idle-{n}"),
    );
    let gateway = format!("sc-list-{n}");
    let mut made = Cleanup::new(&rt, &docker).container(&gateway);
    made.add_image(running_tag.clone());
    made.add_image(idle_tag.clone());
    let running = build_twin(&rt, &docker, &running_tag, "2026.1.2-test", OLD_GUARD);
    let idle = build_twin(&rt, &docker, &idle_tag, "2026.1.1-test", OLD_GUARD);
    container(&rt, &docker, &gateway, &running_tag, true, true);

    let out = safeclaw()
        .args(["--json", "image", "list"])
        .assert()
        .success();
    let listed: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let r = by_id(&listed, "images", &running).expect("the running twin is listed");
    assert_eq!(r["tags"], serde_json::json!([running_tag]));
    assert_eq!(r["kind"], "twin");
    assert_eq!(r["openclaw"], "2026.1.2-test");
    assert_eq!(r["node"], "24.0.0-test");
    assert_eq!(r["safeclaw_sha256"], OLD_GUARD);
    assert_eq!(r["guard"], "other");
    assert_eq!(r["running"], serde_json::json!([gateway]));
    assert_eq!(r["pinned"], false);
    assert_eq!(r["default"], false);
    assert!(r["size"].as_i64().unwrap() > 0 && r["created"].as_str().unwrap().ends_with('Z'));
    let i = by_id(&listed, "images", &idle).expect("the idle twin is listed");
    assert_eq!(i["openclaw"], "2026.1.1-test");
    assert_eq!(i["running"], serde_json::json!([]));
    assert_eq!(listed["default_tag"], "safeclaw/openclaw:2026.9.6");
    assert_eq!(listed["safeclaw_sha256"].as_str().unwrap().len(), 64);

    // The table, for people: one line each, the running one marked.
    let out = safeclaw().args(["image", "list"]).assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let line = |tag: &str| {
        text.lines()
            .find(|l| l.starts_with(tag))
            .unwrap()
            .to_string()
    };
    let r = line(&running_tag);
    assert!(
        r.contains("2026.1.2-test") && r.contains("0072ff6d7860"),
        "{text}"
    );
    assert!(r.contains(&format!("runs {gateway}")), "{text}");
    assert!(r.contains("built by another safeclaw"), "{text}");
    assert!(!line(&idle_tag).contains("runs "), "{text}");
}

#[test]
fn prune_keeps_what_is_used_or_pinned_and_asks_first() {
    let Some((rt, docker)) = engine() else { return };
    let n = std::process::id();
    let tag = |what: &str| format!("safeclaw-prune:{what}-{n}");
    let (old_tag, running_tag, stopped_tag, pinned_tag) =
        (tag("old"), tag("running"), tag("stopped"), tag("pinned"));
    let (gateway, exited) = (format!("sc-prune-{n}"), format!("sc-prune-exited-{n}"));
    let mut made = Cleanup::new(&rt, &docker)
        .container(&gateway)
        .container(&exited);
    for t in [&old_tag, &running_tag, &stopped_tag, &pinned_tag] {
        made.add_image(t.clone());
    }
    let old = build_twin(&rt, &docker, &old_tag, "2025.1.1-test", OLD_GUARD);
    let running = build_twin(&rt, &docker, &running_tag, "2026.1.1-test", OLD_GUARD);
    let stopped = build_twin(&rt, &docker, &stopped_tag, "2026.1.0-test", OLD_GUARD);
    let pinned = build_twin(&rt, &docker, &pinned_tag, "2026.1.3-test", OLD_GUARD);
    container(&rt, &docker, &gateway, &running_tag, true, true);
    // Created, never started: as an exited gateway, the rollback target.
    container(&rt, &docker, &exited, &stopped_tag, true, false);

    // The pin names `pinned`: its record, as a load writes it.
    let dir = TempDir::new().unwrap();
    let (home, store) = (dir.path().join("home"), dir.path().join("store"));
    private_dir(&home);
    fs::create_dir(&store).unwrap();
    let archive = store.join(format!("{HASH}-image.tar.gz"));
    let pins = home.join("image-pins");
    private_dir(&pins);
    let record = serde_json::json!({
        "store_path": archive.display().to_string(),
        "repo_tag": pinned_tag,
        "config_digest": pinned,
    });
    fs::write(
        pins.join(format!("{HASH}.json")),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    let cmd = || {
        let mut c = safeclaw();
        c.env("SAFECLAW_HOME", &home)
            .env("NIX_STORE_DIR", &store)
            .env("SAFECLAW_IMAGE", &archive);
        c
    };

    // The plan: the old one goes; the others stay, each with its reason.
    let out = cmd()
        .args(["--json", "image", "prune", "--dry-run"])
        .assert()
        .success();
    let plan: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(plan["dry_run"], true);
    assert!(by_id(&plan, "would_remove", &old).is_some(), "{plan:#}");
    let kept = |id: &str| {
        by_id(&plan, "kept", id).unwrap_or_else(|| panic!("{id} is not kept: {plan:#}"))
            ["kept_because"]
            .clone()
    };
    assert_eq!(
        kept(&running),
        serde_json::json!([format!("used by {gateway}")])
    );
    assert_eq!(
        kept(&stopped),
        serde_json::json!([format!("used by {exited}")])
    );
    assert_eq!(kept(&pinned), serde_json::json!(["the pinned image"]));
    for id in [&running, &stopped, &pinned] {
        assert!(by_id(&plan, "would_remove", id).is_none(), "{plan:#}");
    }
    let listed: serde_json::Value = serde_json::from_slice(
        &cmd()
            .args(["--json", "image", "list"])
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .unwrap();
    assert_eq!(by_id(&listed, "images", &pinned).unwrap()["pinned"], true);

    // No terminal, no --yes: refused, the plan shown, nothing removed.
    let out = cmd().args(["image", "prune"]).assert().code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("stdin is not a terminal"), "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
    assert!(stderr.contains(&old_tag), "{stderr}");
    cmd()
        .args(["--json", "image", "prune"])
        .assert()
        .code(2)
        .stdout(predicates::str::contains("\"class\": \"usage\""));
    // A terminal, and the answer is no: nothing removed.
    let mut tty = std::process::Command::new(assert_cmd::cargo::cargo_bin("safeclaw"));
    tty.env("SAFECLAW_HOME", &home)
        .env("NIX_STORE_DIR", &store)
        .env("SAFECLAW_IMAGE", &archive)
        .env("NO_COLOR", "1")
        .args(["image", "prune"]);
    let mut p = rexpect::session::spawn_command(tty, Some(30_000)).unwrap();
    p.exp_string("remove them? [y/N] ").unwrap();
    p.send_line("n").unwrap();
    p.exp_string("nothing removed").unwrap();
    p.exp_eof().unwrap();
    let exists = |id: &str| rt.block_on(docker.inspect_image(id)).is_ok();
    assert!([&old, &running, &stopped, &pinned]
        .iter()
        .all(|id| exists(id)));

    // The removal, given this test's images only (the engine is shared).
    let engine = safeclaw::runtime::engine::Engine::new(None).unwrap();
    let record: safeclaw::image::pin::Record = serde_json::from_value(record).unwrap();
    let entries = rt
        .block_on(inventory::gather(
            &docker,
            Some(&record),
            "safeclaw/openclaw:2026.9.6",
            None,
            &[],
        ))
        .unwrap();
    let ours: Vec<_> = entries
        .into_iter()
        .filter(|e| [&old, &running, &stopped, &pinned].contains(&&e.image.id))
        .collect();
    let (remove, _) = inventory::prune_plan(&ours);
    assert_eq!(
        remove.iter().map(|e| &e.image.id).collect::<Vec<_>>(),
        [&old]
    );
    // And one a container uses, as if it had started since the plan.
    let in_use = ours.iter().find(|e| e.image.id == stopped).unwrap();
    let done = engine
        .block_on(inventory::remove(
            engine.docker().unwrap(),
            &[remove[0], in_use],
        ))
        .unwrap();
    assert_eq!(done[0], (old.clone(), Removed::Removed));
    assert_eq!(
        done[1],
        (stopped.clone(), Removed::InUse(vec![exited.clone()]))
    );
    assert!(!exists(&old));
    assert!(exists(&running) && exists(&stopped) && exists(&pinned));
}

#[test]
fn a_default_twin_built_by_another_safeclaw_is_rebuilt_by_up_and_refused_otherwise() {
    let Some((rt, docker)) = engine() else { return };
    // The default tag of a test: the real one is never touched here.
    let tag = format!("safeclaw-default:{}", std::process::id());
    let made = Cleanup::new(&rt, &docker).image(tag.clone());
    let engine = safeclaw::runtime::engine::Engine::new(None).unwrap();
    let printer = Printer::new(false, true, true);
    let ensure = |may_build: bool, built: &mut bool| {
        ensure_default_twin(&engine, &tag, Some(NEW_GUARD), may_build, &printer, || {
            *built = true;
            build_twin(&rt, &docker, &tag, "2026.9.6", NEW_GUARD);
            Ok(format!("built {tag}"))
        })
    };
    let guard_of = || {
        rt.block_on(docker.inspect_image(&tag))
            .ok()
            .and_then(|i| i.config?.labels?.remove(LABEL_SAFECLAW))
    };

    // Missing: `start` goes on (the engine says it is missing), `up` builds.
    let mut built = false;
    ensure(false, &mut built).unwrap();
    assert!(!built && guard_of().is_none());
    ensure(true, &mut built).unwrap();
    assert!(built);
    assert_eq!(guard_of().as_deref(), Some(NEW_GUARD));

    // Built by another safeclaw: refused without building, rebuilt by `up`.
    let stale = build_twin(&rt, &docker, &tag, "2026.9.6", OLD_GUARD);
    let mut built = false;
    let e = ensure(false, &mut built).unwrap_err();
    assert!(!built);
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.message.contains(&tag) && e.message.contains("guard sha256 0072ff6d7860"),
        "{}",
        e.message
    );
    assert!(e.hint.unwrap().contains("safeclaw image build"));
    ensure(true, &mut built).unwrap();
    assert!(built);
    assert_eq!(guard_of().as_deref(), Some(NEW_GUARD));
    // The replaced one is gone (nothing used it).
    assert!(rt.block_on(docker.inspect_image(&stale)).is_err());

    // This safeclaw's: used as it is.
    let mut built = false;
    ensure(false, &mut built).unwrap();
    ensure(true, &mut built).unwrap();
    assert!(!built);
    drop(made);
}

#[test]
fn start_warns_when_its_image_is_a_twin_of_another_safeclaw() {
    let Some((rt, docker)) = engine() else { return };
    let tag = format!("safeclaw-warn:{}", std::process::id());
    let _made = Cleanup::new(&rt, &docker).image(tag.clone());
    build_twin(&rt, &docker, &tag, "2026.9.6", OLD_GUARD);
    let dir = TempDir::new().unwrap();
    let out = safeclaw()
        .args(["start", "--image", &tag, "--vault"])
        .arg(dir.path().join("none.vault"))
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains(&format!(
            "{tag} was built by another safeclaw (guard sha256 0072ff6d7860)"
        )),
        "{stderr}"
    );
    // A stand-in that makes no claim about its guard: no warning.
    let plain = format!("safeclaw-warn:plain-{}", std::process::id());
    let _plain = Cleanup::new(&rt, &docker).image(plain.clone());
    build_standin(&rt, &docker, &plain);
    let out = safeclaw()
        .args(["start", "--image", &plain, "--vault"])
        .arg(dir.path().join("none.vault"))
        .assert()
        .failure();
    assert!(!String::from_utf8_lossy(&out.get_output().stderr).contains("another safeclaw"));
}

//! Password prompts on a real terminal (a pty): no echo, asked twice when
//! creating, colour on a terminal unless NO_COLOR.

mod common;

use std::process::Command;

use common::*;
use rexpect::process::wait::WaitStatus;
use rexpect::session::spawn_command;
use tempfile::TempDir;

const TIMEOUT_MS: Option<u64> = Some(20_000);

fn bin() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("safeclaw"));
    cmd.env_remove("NO_COLOR");
    cmd
}

#[test]
fn create_asks_twice_without_echo_then_verify_asks_once() {
    let dir = TempDir::new().unwrap();
    openclaw_like_tree(&dir.path().join("state"));
    let vault = dir.path().join("v.vault");

    let mut cmd = bin();
    cmd.args(["vault", "create", "--no-progress", "--from"])
        .arg(dir.path().join("state"))
        .arg("--out")
        .arg(&vault)
        .args(FAST_KDF);
    let mut p = spawn_command(cmd, TIMEOUT_MS).unwrap();
    p.exp_string("Enter new vault password: ").unwrap();
    p.send_line("tty-secret-4711").unwrap();
    p.exp_string("Repeat new vault password: ").unwrap();
    p.send_line("tty-secret-4711").unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(rest.contains("sealed 10 files"), "{rest}");
    assert!(!rest.contains("tty-secret-4711"), "password echoed: {rest}");
    assert!(matches!(
        p.process.wait().unwrap(),
        WaitStatus::Exited(_, 0)
    ));

    let mut cmd = bin();
    cmd.args(["vault", "verify", "--no-progress"]).arg(&vault);
    let mut p = spawn_command(cmd, TIMEOUT_MS).unwrap();
    p.exp_string("Enter vault password: ").unwrap();
    p.send_line("tty-secret-4711").unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(rest.contains("authenticated (generation 1)"), "{rest}");
    assert!(!rest.contains("tty-secret-4711"));
    assert!(matches!(
        p.process.wait().unwrap(),
        WaitStatus::Exited(_, 0)
    ));
}

#[test]
fn mismatched_repeat_creates_nothing() {
    let dir = TempDir::new().unwrap();
    openclaw_like_tree(&dir.path().join("state"));
    let vault = dir.path().join("v.vault");
    let mut cmd = bin();
    cmd.args(["vault", "create", "--from"])
        .arg(dir.path().join("state"))
        .arg("--out")
        .arg(&vault)
        .args(FAST_KDF);
    let mut p = spawn_command(cmd, TIMEOUT_MS).unwrap();
    p.exp_string("Enter new vault password: ").unwrap();
    p.send_line("one").unwrap();
    p.exp_string("Repeat new vault password: ").unwrap();
    p.send_line("two").unwrap();
    let rest = p.exp_eof().unwrap();
    // On a terminal the labels are coloured.
    assert!(
        rest.contains("\x1b[1;31merror:\x1b[0m the two passwords differ"),
        "{rest:?}"
    );
    assert!(matches!(
        p.process.wait().unwrap(),
        WaitStatus::Exited(_, 2)
    ));
    assert!(!vault.exists());
    assert_eq!(
        listing(dir.path())
            .iter()
            .filter(|p| p.parent() == Some("".as_ref()))
            .count(),
        1
    );
}

#[test]
fn no_color_turns_colour_off_on_a_terminal() {
    let dir = TempDir::new().unwrap();
    let mut cmd = bin();
    cmd.env("NO_COLOR", "1")
        .args(["vault", "info"])
        .arg(dir.path().join("missing.vault"));
    let mut p = spawn_command(cmd, TIMEOUT_MS).unwrap();
    let out = p.exp_eof().unwrap();
    assert!(out.contains("error: opening"), "{out:?}");
    assert!(!out.contains('\x1b'), "escape codes with NO_COLOR: {out:?}");
}

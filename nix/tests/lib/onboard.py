# Onboards a vault as the service user (non-interactive, no secret on a
# command line: the password is read from a copy only that user can read),
# then checks the layout the module promises. Python, pasted into each
# test's script by nix/tests/lib/default.nix.
def onboard(machine):
    machine.succeed(
        "install -o safeclaw -m 0400 /etc/safeclaw-password /var/lib/safeclaw/.pw",
        "runuser -u safeclaw -- env SAFECLAW_HOME=/var/lib/safeclaw HOME=/var/lib/safeclaw "
        "safeclaw --no-progress onboard --vault /var/lib/safeclaw/vault/openclaw.vault "
        "--password-file /var/lib/safeclaw/.pw --kdf-memory 64MiB --kdf-iterations 1 -- "
        "--non-interactive --accept-risk --mode local --auth-choice skip --skip-channels "
        "--skip-health --skip-daemon --skip-search --skip-skills --skip-ui --skip-hooks",
        "rm /var/lib/safeclaw/.pw",
    )
    machine.succeed("stat -c %a /var/lib/safeclaw | grep -qx 700")
    machine.succeed("stat -c %a /var/lib/safeclaw/vault | grep -qx 700")


def main_pid(machine):
    pid = int(machine.succeed("systemctl show -p MainPID --value safeclaw.service").strip())
    assert pid > 0, f"safeclaw.service has no main process (MainPID={pid})"
    return pid

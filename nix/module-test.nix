# The module in a VM: Docker, a vault onboarded with the real OpenClaw as
# the service user, the service up and healthy with its password from a
# credential, a stop that seals a new generation, and no password in the
# unit's environment or command line.
self:
{
  name = "safeclaw";

  nodes.machine = { ... }: {
    imports = [ self.nixosModules.default ];
    virtualisation = {
      memorySize = 4096;
      diskSize = 8192;
      cores = 2;
    };
    # A test password as a root-only file; in real use, an agenix or
    # sops-nix secret path.
    systemd.tmpfiles.rules = [
      "f /etc/safeclaw-password 0400 root root - nixos-test-password"
    ];
    services.safeclaw = {
      enable = true;
      passwordFile = "/etc/safeclaw-password";
      checkpointInterval = 0;
    };
  };

  testScript = ''
    machine.wait_for_unit("multi-user.target")
    machine.wait_for_unit("docker.service")
    # No vault yet: the unit is skipped, not failing.
    machine.succeed("systemctl show -p ConditionResult safeclaw.service | grep -q no")

    # Onboard as the service user (non-interactive, no secret on a command
    # line); the password is read from a copy only that user can read.
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

    machine.systemctl("start safeclaw.service")
    machine.wait_until_succeeds(
        "docker inspect -f '{{.State.Health.Status}}' openclaw | grep -qx healthy",
        timeout=300,
    )
    # The engine holds exactly the pinned image (by ID), and runs it.
    machine.succeed("runuser -u safeclaw -- env SAFECLAW_HOME=/var/lib/safeclaw safeclaw --json image show | grep -q '\"matches\": true'")

    pid = machine.succeed("systemctl show -p MainPID --value safeclaw.service").strip()
    machine.fail(f"grep -a nixos-test-password /proc/{pid}/environ /proc/{pid}/cmdline")
    machine.fail("grep -q nixos-test-password $(readlink -f /etc/systemd/system/safeclaw.service)")

    machine.systemctl("stop safeclaw.service")
    # Onboarding sealed generation 2; the stop sealed the next one.
    machine.succeed("safeclaw vault info /var/lib/safeclaw/vault/openclaw.vault | grep -qE '^generation +3$'")
  '';
}

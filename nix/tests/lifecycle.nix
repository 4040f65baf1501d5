# The service's life on Docker (on nixos-26.05: Docker 29, containerd image
# store): skipped without a vault, onboarded with the real OpenClaw as the
# service user, up and healthy on exactly the pinned image, and a stop
# that seals a new generation.
{ module }:
let
  lib' = import ./lib;
in
{
  name = "safeclaw-lifecycle";

  nodes.machine = lib'.node {
    inherit module;
    engine = "docker";
  };

  testScript = ''
    ${lib'.python}

    machine.wait_for_unit("multi-user.target")
    machine.wait_for_unit("docker.socket")
    # No vault yet: the unit is skipped, not failing.
    machine.succeed("systemctl show -p ConditionResult safeclaw.service | grep -q no")

    onboard(machine)

    machine.systemctl("start safeclaw.service")
    machine.wait_until_succeeds(
        "docker inspect -f '{{.State.Health.Status}}' openclaw | grep -qx healthy",
        timeout=300,
    )
    main_pid(machine)
    # The engine holds exactly the pinned image (by ID), and runs it.
    machine.succeed(
        "runuser -u safeclaw -- env SAFECLAW_HOME=/var/lib/safeclaw "
        "safeclaw --json image show | grep -q '\"matches\": true'"
    )

    machine.systemctl("stop safeclaw.service")
    # Onboarding sealed generation 2; the stop sealed the next one.
    machine.succeed(
        "safeclaw vault info /var/lib/safeclaw/vault/openclaw.vault | grep -qE '^generation +3$'"
    )
  '';
}

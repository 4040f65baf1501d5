# The service on rootless Podman (services.safeclaw.engine = "podman"):
# the service user's own Podman through its lingering user manager, no
# root-equivalent socket. Written, not yet run (docs/nix.md).
{ module }:
let
  lib' = import ./lib;
in
{
  name = "safeclaw-podman";

  nodes.machine = lib'.node {
    inherit module;
    engine = "podman";
  };

  testScript = ''
    ${lib'.python}

    machine.wait_for_unit("multi-user.target")
    machine.wait_for_unit("user@2001.service")
    onboard(machine)
    machine.systemctl("start safeclaw.service")
    machine.wait_until_succeeds(
        "runuser -u safeclaw -- env XDG_RUNTIME_DIR=/run/user/2001 "
        "podman inspect -f '{{.State.Health.Status}}' openclaw | grep -qx healthy",
        timeout=300,
    )
    main_pid(machine)
    # No root-equivalent socket: the system's Docker and Podman sockets
    # are not there at all.
    machine.fail("test -e /run/docker.sock")
    machine.systemctl("stop safeclaw.service")
    machine.succeed(
        "safeclaw vault info /var/lib/safeclaw/vault/openclaw.vault | grep -qE '^generation +3$'"
    )
  '';
}

# The password reaches safeclaw as a systemd credential only: not in the
# running process's environment or command line, not in the unit file,
# not in the unit's environment.
{ module }:
let
  lib' = import ./lib;
in
{
  name = "safeclaw-credentials";

  nodes.machine = lib'.node {
    inherit module;
    engine = "docker";
  };

  testScript = ''
    ${lib'.python}

    machine.wait_for_unit("multi-user.target")
    onboard(machine)
    machine.systemctl("start safeclaw.service")
    machine.wait_until_succeeds(
        "docker inspect -f '{{.State.Health.Status}}' openclaw | grep -qx healthy",
        timeout=300,
    )

    # A running main process, so the checks below read a real /proc entry.
    pid = main_pid(machine)
    machine.succeed(f"test -r /proc/{pid}/environ && test -r /proc/{pid}/cmdline")
    machine.fail(f"grep -a nixos-test-password /proc/{pid}/environ /proc/{pid}/cmdline")
    machine.succeed(f"grep -a -- '--password-file' /proc/{pid}/cmdline")
    machine.fail("grep -q nixos-test-password $(readlink -f /etc/systemd/system/safeclaw.service)")
    machine.fail("systemctl show -p Environment safeclaw.service | grep -q nixos-test-password")
    machine.fail("docker inspect openclaw | grep -q nixos-test-password")
  '';
}

# What every VM test's machine shares: room for the image, a test password
# as a root-only file (in real use an agenix or sops-nix secret path), and
# the service with checkpoints only on stop (deterministic generations).
{ module, engine }:
{ lib, ... }:
{
  imports = [ module ];
  virtualisation = {
    memorySize = 4096;
    diskSize = 8192;
    cores = 2;
  };
  systemd.tmpfiles.rules = [
    "f /etc/safeclaw-password 0400 root root - nixos-test-password"
  ];
  services.safeclaw = {
    enable = true;
    inherit engine;
    passwordFile = "/etc/safeclaw-password";
    checkpointInterval = 0;
  };
  virtualisation.docker.enable = engine == "docker";
  virtualisation.podman.enable = engine == "podman";
  # Rootless Podman's socket is under /run/user/<uid>: a fixed uid.
  users.users.safeclaw.uid = lib.mkIf (engine == "podman") 2001;
}

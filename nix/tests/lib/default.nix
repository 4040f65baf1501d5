# Shared parts of the VM tests (this directory is not a test itself:
# nix/checks.nix takes only the .nix files directly under nix/tests/).
{
  node = import ./node.nix;
  python = builtins.readFile ./onboard.py;
}

# Every package of the flake, for one nixpkgs. The CLI users run is the
# wrapper: the unwrapped binary plus the pin (the image's store path).
# The flake calls this with its own nixpkgs; the NixOS module with the
# system's (`pkgs.callPackage ./packages.nix { }`), so the service's
# default package is built from the same nixpkgs as the system.
{ callPackage }:
let
  safeclaw-unwrapped = callPackage ./safeclaw.nix { };
  openclaw = callPackage ./openclaw.nix { };
  image = callPackage ./image.nix {
    safeclaw = safeclaw-unwrapped;
    inherit openclaw;
  };
  safeclaw = callPackage ./wrapper.nix {
    safeclaw = safeclaw-unwrapped;
    inherit image;
  };
in
{
  inherit
    safeclaw
    safeclaw-unwrapped
    openclaw
    image
    ;
  default = safeclaw;
}

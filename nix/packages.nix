# Every package of the flake, for one system. The CLI users run is the
# wrapper: the unwrapped binary plus the pin (the image's store path).
{ pkgs }:
let
  safeclaw-unwrapped = pkgs.callPackage ./safeclaw.nix { };
  openclaw = pkgs.callPackage ./openclaw.nix { };
  image = pkgs.callPackage ./image.nix {
    safeclaw = safeclaw-unwrapped;
    inherit openclaw;
  };
  safeclaw = pkgs.callPackage ./wrapper.nix {
    safeclaw = safeclaw-unwrapped;
    inherit image;
  };
in
{
  inherit safeclaw safeclaw-unwrapped openclaw image;
  default = safeclaw;
}

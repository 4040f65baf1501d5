# `nix flake check`: the build (unit tests run inside it), clippy,
# formatting of Rust and Nix, and the NixOS test of the module.
{ pkgs, self }:
let
  packages = self.packages.${pkgs.stdenv.hostPlatform.system};
  unwrapped = packages.safeclaw-unwrapped;
in
{
  build = packages.safeclaw;
  image = packages.image;

  # Same sources and vendored crates as the build, clippy instead of build.
  clippy = unwrapped.overrideAttrs (old: {
    pname = "safeclaw-clippy";
    nativeBuildInputs = old.nativeBuildInputs ++ [ pkgs.clippy ];
    buildPhase = ''
      runHook preBuild
      cargo clippy --offline --all-targets -- -D warnings
      runHook postBuild
    '';
    doCheck = false;
    installPhase = "touch $out";
  });

  format = pkgs.runCommand "safeclaw-format"
    {
      nativeBuildInputs = [ pkgs.cargo pkgs.rustfmt pkgs.nixpkgs-fmt pkgs.deadnix ];
    } ''
    cd ${../.}
    cargo fmt --all -- --check
    nixpkgs-fmt --check flake.nix nix
    deadnix --fail flake.nix nix
    touch $out
  '';

  # pkgs.testers.runNixOSTest: nixos/lib/testing (the NixOS test driver).
  module = pkgs.testers.runNixOSTest (import ./module-test.nix self);
}

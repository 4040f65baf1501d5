# `nix flake check`: the build (unit tests run inside it), clippy,
# formatting of Rust and Nix, and one NixOS VM test per file directly
# under nix/tests/ (the VM tests need KVM: `nixos-test` and `kvm` system
# features; `nix flake check --no-build` evaluates them without it).
{
  lib,
  pkgs,
  packages,
  module,
}:
let
  unwrapped = packages.safeclaw-unwrapped;

  vmTests = lib.mapAttrs' (
    file: _:
    lib.nameValuePair "vm-${lib.removeSuffix ".nix" file}" (
      pkgs.testers.runNixOSTest (import (./tests + "/${file}") { inherit module; })
    )
  ) (lib.filterAttrs (file: type: type == "regular" && lib.hasSuffix ".nix" file) (builtins.readDir ./tests));
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

  format =
    pkgs.runCommand "safeclaw-format"
      {
        nativeBuildInputs = [
          pkgs.rustfmt
          pkgs.nixfmt
          pkgs.deadnix
        ];
        src = lib.fileset.toSource {
          root = ../.;
          fileset = lib.fileset.unions [
            ../flake.nix
            (lib.fileset.fileFilter (file: file.hasExt "rs" || file.hasExt "nix") ../.)
          ];
        };
      }
      ''
        cd $src
        find . -name '*.rs' -print0 | xargs -0 rustfmt --edition 2021 --check
        nixfmt --check flake.nix nix
        deadnix --fail --exclude nix/tests/eval -- flake.nix nix
        deadnix --fail --no-lambda-pattern-names nix/tests/eval
        touch $out
      '';
}
// vmTests

# The stand-in for the flake's one input: `lib` and `legacyPackages.<system>`
# with the packages and functions the flake names. Functions with attribute
# set arguments come from ./signatures.nix; packages the flake only refers
# to are fake derivations (./drv.nix) with a name and meta.mainProgram.
{ lib }:
let
  pkgsFor =
    system:
    let
      drv = import ./drv.nix { inherit lib system; };
      sig = import ./signatures.nix { inherit lib drv; };
      nixos = import ./nixos.nix { inherit lib pkgs; };
      fake = drv.fake;
      fakeNode =
        name:
        drv.fakeVersioned name "24.16.0"
        // {
          meta.mainProgram = "node";
        };

      # pkgs/top-level/splice.nix, lib/customisation.nix (callPackageWith):
      # the function's formal arguments are filled from pkgs, then
      # overridden; a required argument pkgs lacks is an error.
      callPackage =
        fn: overrides:
        let
          f = if builtins.isFunction fn then fn else import fn;
          wanted = builtins.functionArgs f;
          auto = builtins.intersectAttrs wanted pkgs;
          missing = builtins.filter (n: !wanted.${n} && !(auto ? ${n}) && !(overrides ? ${n})) (
            builtins.attrNames wanted
          );
          result = f (auto // overrides);
        in
        if missing != [ ] then
          throw "Function called without required argument \"${builtins.head missing}\" (stand-in callPackage of ${toString fn})"
        else if builtins.isAttrs result then
          result
          // {
            override = newArgs: callPackage fn (overrides // newArgs);
          }
        else
          result;

      pkgs = {
        inherit lib callPackage;
        stdenv = {
          inherit (drv) mkDerivation;
          hostPlatform = {
            inherit system;
            isLinux = true;
            isDarwin = false;
          };
          # stdenv.cc.cc.lib: libstdc++ and libgcc_s for autoPatchelfHook.
          cc.cc.lib = fake "gcc-lib";
        };
        stdenvNoCC = pkgs.stdenv;
        inherit (sig) runCommand mkShell;
        testers.runNixOSTest = sig.runNixOSTest nixos;
        rustPlatform.buildRustPackage = sig.buildRustPackage;
        importNpmLock = {
          inherit (sig) buildNodeModules;
        };
        dockerTools = {
          inherit (sig) buildLayeredImage streamLayeredImage;
        };
        pkgsStatic.busybox = fake "busybox";
        # Setup hooks (derivations in nativeBuildInputs).
        makeBinaryWrapper = fake "make-binary-wrapper-hook";
        autoPatchelfHook = fake "auto-patchelf-hook";
        # Packages.
        nodejs_24 = fakeNode "nodejs";
        nodejs-slim_24 = fakeNode "nodejs-slim";
        cacert = fake "cacert";
        cargo = fake "cargo";
        rustc = fake "rustc";
        clippy = fake "clippy";
        rustfmt = fake "rustfmt";
        openssl = fake "openssl";
        sqlite = fake "sqlite";
        tmux = fake "tmux";
        docker-client = fake "docker";
        nixfmt = fake "nixfmt";
        deadnix = fake "deadnix";
        busybox = fake "busybox";
        podman = fake "podman";
      };
    in
    pkgs;
in
{
  inherit lib;
  legacyPackages = lib.genAttrs [
    "x86_64-linux"
    "aarch64-linux"
  ] pkgsFor;
}

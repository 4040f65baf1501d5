# The safeclaw binary, from Cargo.lock (buildRustPackage's cargoLock:
# every crate's checksum is in the lock, so no extra hash is needed).
# rustPlatform.buildRustPackage: pkgs/build-support/rust/build-rust-package/
# default.nix (lib.extendMkDerivation; its argument set is open, `...`).
{ lib, rustPlatform }:
let
  cargo = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = cargo.package.name;
  inherit (cargo.package) version;

  # Only what cargo reads (constants.toml: build.rs; nix/openclaw: the lock
  # compiled into the twin builder); docs, CI and the other Nix files do
  # not cause a rebuild.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../build.rs
      ../constants.toml
      ../src
      ../tests
      ../benches
      ../examples
      ./openclaw
    ];
  };
  cargoLock.lockFile = ../Cargo.lock;

  # The test stand-in (src/bin/openclaw-standin.rs) is not shipped.
  cargoBuildFlags = [
    "--bin"
    "safeclaw"
  ];
  # The unit tests run in the build; the engine tests need a Docker
  # engine, which the build sandbox has not: the NixOS tests
  # (nix/tests/) and .ci/run run them.
  cargoTestFlags = [ "--lib" ];

  meta = {
    inherit (cargo.package) description;
    license = with lib.licenses; [
      mit
      asl20
    ];
    mainProgram = "safeclaw";
    platforms = lib.platforms.linux;
  };
}

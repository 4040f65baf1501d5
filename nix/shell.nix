# `nix develop`: the Rust toolchain, the tools the tests use (an engine is
# the host's), and the Nix tools CI runs. busybox is only the image twin's
# userland (`safeclaw image build` looks for `busybox` on PATH): a static
# one, exposed as that single command, so its applets never shadow
# coreutils.
{
  mkShell,
  runCommand,
  pkgsStatic,
  cargo,
  rustc,
  clippy,
  rustfmt,
  openssl,
  nodejs_24,
  sqlite,
  tmux,
  docker-client,
  nixfmt,
  deadnix,
}:
let
  busybox = runCommand "busybox-command" { } ''
    mkdir -p $out/bin
    ln -s ${pkgsStatic.busybox}/bin/busybox $out/bin/busybox
  '';
in
mkShell {
  packages = [
    cargo
    rustc
    clippy
    rustfmt
    openssl
    nodejs_24
    sqlite
    tmux
    docker-client
    busybox
    nixfmt
    deadnix
  ];
}

# `nix develop`: the Rust toolchain, the tools the tests use (an engine is
# the host's), and the Nix linters CI runs.
{ pkgs }:
pkgs.mkShell {
  packages = with pkgs; [
    cargo
    rustc
    clippy
    rustfmt
    openssl
    nodejs_24
    sqlite
    tmux
    busybox
    docker-client
    nixpkgs-fmt
    deadnix
  ];
}

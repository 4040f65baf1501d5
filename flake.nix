{
  description = "safeclaw: the OpenClaw assistant in a hardened container, its state sealed in an authenticated vault";

  # One input: everything (Rust toolchain, Node.js, busybox, the image
  # builder, the NixOS test driver) comes from this nixpkgs.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs = { self, nixpkgs }:
    let
      # Linux only: the image and the guard inside it are Linux programs
      # (see README, "macOS").
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: import ./nix/packages.nix { inherit pkgs; });

      apps = forAllSystems (pkgs:
        let
          app = {
            type = "app";
            program = "${self.packages.${pkgs.stdenv.hostPlatform.system}.safeclaw}/bin/safeclaw";
          };
        in
        {
          safeclaw = app;
          default = app;
        });

      nixosModules.default = import ./nix/module.nix self;

      checks = forAllSystems (pkgs: import ./nix/checks.nix { inherit pkgs self; });

      devShells = forAllSystems (pkgs: { default = import ./nix/shell.nix { inherit pkgs; }; });

      formatter = forAllSystems (pkgs: pkgs.nixpkgs-fmt);
    };
}

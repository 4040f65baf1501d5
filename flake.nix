{
  description = "safeclaw: the OpenClaw assistant in a hardened container, its state sealed in an authenticated vault";

  # One input: everything (Rust toolchain, Node.js, busybox, the image
  # builder, the NixOS test driver) comes from this nixpkgs.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      # Linux only: the image and the guard inside it are Linux programs
      # (see README, "macOS").
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: import ./nix/packages.nix { inherit (pkgs) callPackage; });

      apps = forAllSystems (
        pkgs:
        let
          safeclaw = self.packages.${pkgs.stdenv.hostPlatform.system}.safeclaw;
          app = {
            type = "app";
            program = lib.getExe safeclaw;
            meta.description = safeclaw.meta.description;
          };
        in
        {
          safeclaw = app;
          default = app;
        }
      );

      # The module takes nothing from the flake (its default package is
      # built with the system's pkgs), so it is the file itself, which the
      # module system imports with its location for error messages.
      nixosModules.default = ./nix/module.nix;

      checks = forAllSystems (
        pkgs:
        import ./nix/checks.nix {
          inherit lib pkgs;
          packages = self.packages.${pkgs.stdenv.hostPlatform.system};
          module = self.nixosModules.default;
        }
      );

      devShells = forAllSystems (pkgs: {
        default = pkgs.callPackage ./nix/shell.nix { };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt);
    };
}

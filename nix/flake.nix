# The cc-ci server as a flake: the package, the NixOS module, an example host and the VM test.
#
#   inputs.cc-ci.url = "git+https://<cc-ci repository>?dir=nix";
#   nixosConfigurations.ci = nixpkgs.lib.nixosSystem {
#     system = "x86_64-linux";
#     modules = [ cc-ci.nixosModules.cc-ci ./configuration.nix ];
#   };
#
# The flake lives in nix/ but builds the whole repository (package.nix's `../.`): a flake in a
# subdirectory of a git repository is copied with the repository around it.
{
  description = "cc-ci, the CI server for Co-op Cloud recipes";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs = { self, nixpkgs }:
    let
      # abra.nix fetches abra's linux_amd64 release binary: x86_64 only.
      systems = [ "x86_64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: rec {
        cc-ci = pkgs.callPackage ./package.nix { };
        abra = pkgs.callPackage ./abra.nix { };
        default = cc-ci;
      });

      nixosModules.cc-ci = { lib, pkgs, ... }: {
        imports = [ ./module.nix ];
        services.cc-ci.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.cc-ci;
      };
      nixosModules.default = self.nixosModules.cc-ci;

      # `nixos-rebuild build --flake ./nix#example` shows what a server's configuration looks like.
      nixosConfigurations.example = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [ self.nixosModules.cc-ci ./example.nix ];
      };

      checks = forAllSystems (pkgs: {
        vm = import ./tests/vm.nix { inherit pkgs; module = self.nixosModules.cc-ci; };
      });
    };
}

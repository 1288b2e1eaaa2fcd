# cc-ci as a Nix package: the npm project built with its lock file; better-sqlite3 and node-pty
# are native addons built against this Node.
{ lib, buildNpmPackage, nodejs_20, python3 }:

buildNpmPackage {
  pname = "cc-ci";
  version = "0.1.0";
  src = lib.cleanSource ../.;
  nodejs = nodejs_20;
  # Fill in with `prefetch-npm-deps package-lock.json`.
  npmDepsHash = lib.fakeHash;
  nativeBuildInputs = [ python3 ];
  npmBuildScript = "build";
  meta = {
    description = "The CI server for Co-op Cloud recipes";
    mainProgram = "cc-ci";
  };
}

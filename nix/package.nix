# cc-ci as a Nix package: the npm project built from its lock file. importNpmLock fetches each
# dependency by the integrity hash package-lock.json already records, so there is no
# npmDepsHash to keep in step with the lock file by hand. better-sqlite3 and node-pty are
# native addons, compiled here against this Node (node-gyp: python3, a C++ compiler, make)
# instead of downloading prebuilt binaries, which the build sandbox could not anyway.
{ lib, buildNpmPackage, importNpmLock, nodejs_20, python3 }:

let
  src = lib.cleanSource ../.;
in
buildNpmPackage {
  pname = "cc-ci";
  version = (lib.importJSON ../package.json).version;
  inherit src;
  nodejs = nodejs_20;
  npmDeps = importNpmLock { npmRoot = src; };
  npmConfigHook = importNpmLock.npmConfigHook;
  nativeBuildInputs = [ python3 ];
  env = {
    # prebuild-install would try the network; build from source with node-gyp instead.
    npm_config_build_from_source = "true";
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = "1";
  };
  npmBuildScript = "build";
  meta = {
    description = "The CI server for Co-op Cloud recipes";
    license = lib.licenses.agpl3Plus;
    mainProgram = "cc-ci";
    platforms = lib.platforms.linux;
  };
}

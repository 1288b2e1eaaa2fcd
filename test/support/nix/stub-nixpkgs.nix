# A stand-in for the few nixpkgs `lib` and `pkgs` functions nix/module.nix uses, so the module
# can be evaluated where nixpkgs cannot be fetched (test/unit/nix.test.ts). Options become
# plain records with their default; mkIf/mkMerge stay markers that eval-module.nix resolves;
# packages are records with an outPath. This is not nixpkgs: it checks what the module
# produces, not that NixOS accepts it (nix/tests/vm.nix does that, on a machine with nixpkgs).
let
  builtinsLib = builtins;
  drv = name: extra: { _stub = "package"; inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; } // extra;
  type = name: { _stub = "type"; inherit name; };
  lib = rec {
    mkOption = o: { _type = "option"; } // o;
    mkEnableOption = what: mkOption { default = false; description = "Whether to enable ${what}."; type = types.bool; };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    types = {
      package = type "package";
      path = type "path";
      str = type "str";
      bool = type "bool";
      int = type "int";
      nullOr = t: type "nullOr ${t.name}";
      attrsOf = t: type "attrsOf ${t.name}";
      listOf = t: type "listOf ${t.name}";
    };
    optional = c: x: if c then [ x ] else [ ];
    optionalAttrs = c: a: if c then a else { };
    recursiveUpdate = a: b:
      a // builtinsLib.mapAttrs (n: v: if builtinsLib.isAttrs v && builtinsLib.isAttrs (a.${n} or null) then recursiveUpdate a.${n} v else v) b;
    concatStringsSep = builtinsLib.concatStringsSep;
    mapAttrsToList = f: a: map (n: f n a.${n}) (builtinsLib.attrNames a);
    attrNames = builtinsLib.attrNames;
    attrValues = builtinsLib.attrValues;
    toUpper = builtinsLib.replaceStrings
      (builtinsLib.genList (i: builtinsLib.substring i 1 "abcdefghijklmnopqrstuvwxyz") 26)
      (builtinsLib.genList (i: builtinsLib.substring i 1 "ABCDEFGHIJKLMNOPQRSTUVWXYZ") 26);
    all = builtinsLib.all;
    hasPrefix = p: s: builtinsLib.substring 0 (builtinsLib.stringLength p) s == p;
    fix = f: let x = f x; in x;
  };
  pkgs = {
    callPackage = path: _args: drv (baseNameOf (toString path)) { };
    formats.yaml = _: {
      type = type "yaml";
      generate = name: value: drv name { inherit value; };
    };
    writeText = name: text: drv name { inherit text; };
    runCommand = name: env: script: drv name ({ inherit script; } // (env.passthru or { }));
    docker = drv "docker" { };
    git = drv "git" { };
    chromium = drv "chromium" { };
    bubblewrap = drv "bubblewrap" { };
    util-linux = drv "util-linux" { };
    gnugrep = drv "gnugrep" { };
    coreutils = drv "coreutils" { };
  };
in
{ inherit lib pkgs; }

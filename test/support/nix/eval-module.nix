# Evaluates nix/module.nix against stub-nixpkgs.nix with `services.cc-ci` set to `cc` and
# returns the NixOS configuration it produces, markers resolved, packages as their store paths
# (nix-instantiate --eval --strict --json). A small model of the module system: each option is
# the value set for it or its default; mkIf false drops its content; mkMerge merges.
{ cc ? { } }:
let
  inherit (import ./stub-nixpkgs.nix) lib pkgs;
  module = import ../../../nix/module.nix;
  values = opts: set:
    builtins.mapAttrs
      (n: o:
        if (o._type or null) == "option" then
          (if set ? ${n} then set.${n} else if o ? default then o.default else throw "services.cc-ci.${n} has no value and no default")
        else values o (set.${n} or { }))
      opts;
  config = lib.fix (self: {
    services.cc-ci = values (module { config = self; inherit lib pkgs; }).options.services.cc-ci cc;
    virtualisation.docker.package = pkgs.docker;
  });
  # Merges two resolved definitions the way NixOS does for the types used: attribute sets
  # recursively, lists concatenated.
  merge = a: b:
    if builtins.isAttrs a && builtins.isAttrs b then
      a // builtins.mapAttrs (n: v: if a ? ${n} then merge a.${n} v else v) b
    else if builtins.isList a && builtins.isList b then a ++ b
    else throw "conflicting definitions";
  resolveWith = keepPackages: v:
    let r = resolveWith keepPackages; in
    if builtins.isAttrs v then
      (if (v._type or null) == "if" then (if v.condition then r v.content else { })
      else if (v._type or null) == "merge" then builtins.foldl' merge { } (map r v.contents)
      else if (v._stub or null) == "package" && !keepPackages then v.outPath
      else builtins.mapAttrs (_: r) v)
    else if builtins.isList v then map r v
    else v;
  m = module { inherit config lib pkgs; };
  etc = (resolveWith true m.config).environment.etc;
  configFile = etc."cc-ci/config.yaml".source;
in
{
  config = resolveWith false m.config;
  # What the module renders to /etc/cc-ci/config.yaml (the runCommand's passthru), and the
  # build script that checks it: the test writes the former to a file and runs the latter's check.
  settings = configFile.settings;
  configCheckScript = configFile.script;
  # The compose file of the route to serve (cc-ci-route), as generated; null without it.
  routeCompose = if etc ? "cc-ci/route.yml" then etc."cc-ci/route.yml".source.value else null;
}

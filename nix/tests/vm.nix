# A NixOS VM test of the module: boots a host with services.cc-ci, checks the units, the user
# and `cc-ci doctor`, and tests the bundled example recipe (webnotes) end to end with
# `cc-ci run webnotes`.
#
#   nix build ./nix#checks.x86_64-linux.vm
#
# NOT RUN YET: it was written where nixpkgs cannot be fetched, so only its syntax is checked
# (test/unit/nix.test.ts). Two things to expect on the first run: the VM has no network, so the
# images of the example recipe must be loaded into its docker from the store (fixtures/images.ts
# builds them from base images it pulls) and abra must not need to fetch the recipe (cc-ci
# passes --offline where the pinned abra has it); and abra.nix's hash must be filled in.
{ pkgs, module }:

pkgs.testers.runNixOSTest {
  name = "cc-ci";

  nodes.server = { ... }: {
    imports = [ module ];
    virtualisation = { memorySize = 4096; diskSize = 8192; cores = 2; };
    environment.systemPackages = [ pkgs.git ];
    services.cc-ci = {
      enable = true;
      settings = { capacity = 1; ingress.mode = "local"; };
    };
  };

  testScript = ''
    server.wait_for_unit("cc-ci-swarm.service")
    server.wait_for_unit("cc-ci.service")
    server.succeed("systemctl list-timers | grep cc-ci-warm-reconcile")
    server.succeed("test \"$(stat -c '%a %U' /var/lib/cc-ci)\" = '700 cc-ci'")
    server.succeed("id -nG cc-ci | grep -w docker")
    server.wait_until_succeeds("curl -sf http://127.0.0.1:8080/healthz")
    server.succeed("runuser -u cc-ci -- env HOME=/var/lib/cc-ci CCCI_STATE_DIR=/var/lib/cc-ci CCCI_CONFIG=/etc/cc-ci/config.yaml cc-ci doctor >&2")

    # The bundled recipe as a git repository, as setup.sh makes it.
    server.succeed(
      "cp -r ${../../fixtures/recipes/webnotes} /tmp/webnotes && chmod -R u+w /tmp/webnotes"
      " && git -C /tmp/webnotes init -q -b main && git -C /tmp/webnotes add -A"
      " && git -C /tmp/webnotes -c user.email=t@t -c user.name=t commit -qm webnotes"
      " && chown -R cc-ci /tmp/webnotes"
    )
    server.succeed("runuser -u cc-ci -- env HOME=/var/lib/cc-ci CCCI_STATE_DIR=/var/lib/cc-ci CCCI_CONFIG=/etc/cc-ci/config.yaml cc-ci run webnotes --repo /tmp/webnotes --ref main --tiers install >&2")
  '';
}

# NixOS module for a cc-ci server: the controller service, the single-node swarm it needs
# (with the external `proxy` network every recipe joins), and abra pinned to one version.
#
#   imports = [ ./nix/module.nix ];
#   services.cc-ci = {
#     enable = true;
#     package = pkgs.callPackage ./nix/package.nix { };
#     settings = { capacity = 2; domain.base = "ci.example.org"; ingress.mode = "traefik"; };
#   };
{ config, lib, pkgs, ... }:

let
  cfg = config.services.cc-ci;
  yaml = pkgs.formats.yaml { };
  # Runtime settings: the same YAML the CLI reads with --config (docs/configuration.md).
  # What the controller and every CLI call of it need to find the same state and config.
  serviceEnv = {
    CCCI_STATE_DIR = cfg.stateDir;
    CCCI_CONFIG = "${configFile}";
    ABRA_DIR = "${cfg.stateDir}/abra";
  };
  configFile = yaml.generate "cc-ci.yaml" (lib.recursiveUpdate {
    abra = { bin = "${cfg.abraPackage}/bin/abra"; dir = "${cfg.stateDir}/abra"; };
  } cfg.settings);
in
{
  options.services.cc-ci = {
    enable = lib.mkEnableOption "cc-ci, the CI server for Co-op Cloud recipes";

    package = lib.mkOption {
      type = lib.types.package;
      description = "The cc-ci package (its bin/cc-ci).";
    };

    abraPackage = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ./abra.nix { };
      description = "The abra binary cc-ci drives; pinned, because flag spellings change between versions.";
    };

    stateDir = lib.mkOption {
      type = lib.types.path;
      default = "/var/lib/cc-ci";
      description = "State directory: the SQLite store, run specs, run logs and evidence, the canonical ABRA_DIR.";
    };

    settings = lib.mkOption {
      type = yaml.type;
      default = { };
      description = "cc-ci configuration (docs/configuration.md); unknown keys are an error at start.";
    };

    warmReconcile = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = "Run `cc-ci warm reconcile` on a timer: each recipe's warm app converged, its health reported (docs/warm.md).";
      };
      interval = lib.mkOption {
        type = lib.types.str;
        default = "15min";
        description = "How often the timer fires (a systemd time span, OnUnitActiveSec=).";
      };
    };

    swarmAdvertiseAddr = lib.mkOption {
      type = lib.types.str;
      default = "127.0.0.1";
      description = "Address for `docker swarm init --advertise-addr`.";
    };
  };

  config = lib.mkIf cfg.enable {
    virtualisation.docker.enable = true;

    # The host must look like a Co-op Cloud server before any run: a swarm, the proxy network,
    # and an abra server entry.
    systemd.services.cc-ci-swarm = {
      description = "single-node swarm and proxy network for cc-ci";
      after = [ "docker.service" ];
      requires = [ "docker.service" ];
      wantedBy = [ "multi-user.target" ];
      path = [ config.virtualisation.docker.package cfg.abraPackage ];
      environment.ABRA_DIR = "${cfg.stateDir}/abra";
      serviceConfig = { Type = "oneshot"; RemainAfterExit = true; };
      script = ''
        if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
          docker swarm init --advertise-addr ${cfg.swarmAdvertiseAddr}
        fi
        docker network inspect proxy >/dev/null 2>&1 || docker network create -d overlay --attachable proxy
        [ -d "$ABRA_DIR/servers/default" ] || abra server add --local -n
      '';
    };

    systemd.services.cc-ci = {
      description = "cc-ci controller";
      after = [ "cc-ci-swarm.service" "network-online.target" ];
      requires = [ "cc-ci-swarm.service" ];
      wants = [ "network-online.target" ];
      wantedBy = [ "multi-user.target" ];
      path = [ config.virtualisation.docker.package pkgs.git pkgs.chromium pkgs.util-linux ];
      environment = serviceEnv;
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/cc-ci serve";
        # SIGTERM is the graceful stop: no new work, steps in flight stopped and recorded.
        KillSignal = "SIGTERM";
        TimeoutStopSec = 60;
        Restart = "on-failure";
        RestartSec = 5;
        StateDirectory = "cc-ci";
      };
    };

    # The warm-reconcile timer: one pass through the running controller; a warm app that is not
    # healthy fails the unit, so `systemctl --failed` and the journal say which and why.
    systemd.services.cc-ci-warm-reconcile = lib.mkIf cfg.warmReconcile.enable {
      description = "cc-ci: converge the warm canonical apps and report their health";
      after = [ "cc-ci.service" ];
      wants = [ "cc-ci.service" ];
      path = [ config.virtualisation.docker.package pkgs.git ];
      environment = serviceEnv;
      serviceConfig = {
        Type = "oneshot";
        ExecStart = "${cfg.package}/bin/cc-ci warm reconcile";
        TimeoutStartSec = 300;
      };
    };

    systemd.timers.cc-ci-warm-reconcile = lib.mkIf cfg.warmReconcile.enable {
      description = "cc-ci warm reconcile, every ${cfg.warmReconcile.interval}";
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnBootSec = "5min";
        OnUnitActiveSec = cfg.warmReconcile.interval;
        # A pass missed while the machine was off runs at the next boot.
        Persistent = true;
        Unit = "cc-ci-warm-reconcile.service";
      };
    };
  };
}

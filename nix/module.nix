# NixOS module for a cc-ci server: the controller service (hardened, as its own user), the
# single-node swarm it needs (with the external `proxy` network every recipe joins), abra pinned
# to one version, and — `services.cc-ci.infrastructure` — the Traefik and backup-bot-two apps a
# Co-op Cloud CI server runs beside it.
#
#   imports = [ cc-ci.nixosModules.cc-ci ];   # or ./nix/module.nix
#   services.cc-ci = {
#     enable = true;
#     package = cc-ci.packages.x86_64-linux.cc-ci;
#     settings = { capacity = 2; domain.base = "ci.example.org"; ingress.mode = "traefik"; };
#     forgeTokenFile = "/root/secrets/cc-ci-forge-token";
#   };
#
# Only the standard module-system and nixpkgs functions are used; test/support/nix/stub-nixpkgs.nix
# stands in for them where nixpkgs cannot be fetched (test/unit/nix.test.ts). A function used
# here that the stub lacks makes that test fail: add it there too.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.cc-ci;
  yaml = pkgs.formats.yaml { };
  user = "cc-ci";
  group = "cc-ci";

  # systemd puts a unit's credentials here ($CREDENTIALS_DIRECTORY); the config names the
  # copies, so the secrets themselves never enter the Nix store (world-readable).
  credDir = "/run/credentials/cc-ci.service";
  credentials =
    lib.optional (cfg.forgeTokenFile != null) "forge-token:${cfg.forgeTokenFile}"
    ++ lib.optional (cfg.webhookSecretFile != null) "webhook-secret:${cfg.webhookSecretFile}"
    ++ lib.optional (cfg.loginClientSecretFile != null) "login-client-secret:${cfg.loginClientSecretFile}";

  settings = lib.recursiveUpdate
    ({
      abra = { bin = "${cfg.abraPackage}/bin/abra"; dir = "${cfg.stateDir}/abra"; };
    }
    // lib.optionalAttrs (cfg.forgeTokenFile != null) {
      forge = {
        tokenFile = "${credDir}/forge-token";
      } // lib.optionalAttrs (cfg.webhookSecretFile != null) { webhookSecretFile = "${credDir}/webhook-secret"; };
    }
    // lib.optionalAttrs (cfg.loginClientSecretFile != null) {
      login.clientSecretFile = "${credDir}/login-client-secret";
    }
    # Reachable from the route's container (docker_gwbridge), not from outside: the firewall
    # opens the port on docker_gwbridge alone (the route's part of config below).
    // lib.optionalAttrs routeOn { http.host = "0.0.0.0"; })
    cfg.settings;

  # Checked at build time by the package's own loader: a setting `serve` would refuse fails
  # nixos-rebuild, with the same error, instead of the running server.
  uncheckedConfig = yaml.generate "cc-ci-unchecked.yaml" settings;
  configFile = pkgs.runCommand "cc-ci.yaml" { passthru = { inherit settings; }; } ''
    ${cfg.package}/bin/cc-ci config check ${uncheckedConfig}
    cp ${uncheckedConfig} $out
  '';

  # What the controller and every CLI call of it need to find the same state, config and tools.
  serviceEnv = {
    CCCI_STATE_DIR = cfg.stateDir;
    CCCI_CONFIG = "/etc/cc-ci/config.yaml";
    ABRA_DIR = "${cfg.stateDir}/abra";
    # git, docker and Chromium write their own dot-directories; ProtectHome hides /home.
    HOME = cfg.stateDir;
    CCCI_BWRAP = "${pkgs.bubblewrap}/bin/bwrap";
    CCCI_CHROMIUM = "${pkgs.chromium}/bin/chromium";
  };
  servicePath = [
    config.virtualisation.docker.package
    cfg.abraPackage
    pkgs.git
    pkgs.chromium
    pkgs.bubblewrap
    pkgs.util-linux
  ];

  # systemd hardening of the units that run cc-ci. It still drives Docker (through the socket,
  # as a member of `docker`) and bubblewrap (unprivileged user namespaces). Left off on purpose:
  #  - RestrictNamespaces, PrivateUsers: bubblewrap makes user, mount, PID and network
  #    namespaces for every sandboxed hook, check and spec; PrivateUsers would also map the
  #    `docker` group away, and with it the socket.
  #  - MemoryDenyWriteExecute: Node's and Chromium's JITs map memory writable and executable.
  #  - ProcSubset=pid: bubblewrap mounts a fresh /proc and Chromium reads /proc/sys.
  #  - @mount, @privileged in SystemCallFilter: bubblewrap calls mount, pivot_root, unshare;
  #    only groups nothing here uses are denied.
  # CapabilityBoundingSet is empty: cc-ci needs no capability in the host's user namespace, and
  # a new user namespace (bubblewrap's) starts with a full set of its own regardless.
  hardening = {
    User = user;
    Group = group;
    UMask = "0077";
    NoNewPrivileges = true;
    ProtectSystem = "strict";
    ReadWritePaths = [ cfg.stateDir ];
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;
    ProtectProc = "invisible";
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    RemoveIPC = true;
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    # AF_UNIX: the docker socket; AF_INET/6: the forge, git, HTTP probes, the web server;
    # AF_NETLINK: bubblewrap brings up the loopback of a sandbox's own network namespace.
    RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
    SystemCallArchitectures = "native";
    SystemCallFilter = [ "~@clock" "~@cpu-emulation" "~@module" "~@obsolete" "~@raw-io" "~@reboot" "~@swap" ];
  };

  infra = cfg.infrastructure;
  infraAbraDir = "${cfg.stateDir}/infra-abra";
  envLines = env: lib.concatStringsSep "\n" (lib.mapAttrsToList (k: v: "${k}=${v}") env);
  # One recipe at a pinned version: `abra app new` only while the app has no env file, then the
  # keys this module owns written into it and a deploy of the pinned version, which converges an
  # app already at that version and env to itself. Runs at boot and whenever the unit changes.
  deployApp = { recipe, version, domain, env, beforeDeploy ? "", afterDeploy ? "" }: ''
    envfile="$ABRA_DIR/servers/default/${domain}.env"
    if [ ! -f "$envfile" ]; then
      abra app new ${recipe} ${version} --server default --domain ${domain} --no-input
    fi
    cat > "$envfile.cc-ci" <<'CCCI_ENV'
    ${envLines env}
    CCCI_ENV
    # Keys this module sets replace the recipe's sample values; the rest of the file stays.
    grep -v -E '^(${lib.concatStringsSep "|" (lib.attrNames env)})=' "$envfile" > "$envfile.new" || true
    cat "$envfile.cc-ci" >> "$envfile.new" && mv "$envfile.new" "$envfile" && rm "$envfile.cc-ci"
    ${beforeDeploy}
    abra app deploy ${domain} ${version} --no-input --force
    ${afterDeploy}
  '';

  # The route from https://<http.publicUrl> to `cc-ci serve`. serve listens on the host, Traefik
  # is a swarm service on the `proxy` overlay network and reaches only what is on it; so a
  # one-service stack, cc-ci-route, joins `proxy` with the Traefik labels for the server's own
  # name and forwards TCP to serve's port on the host. Where the host is, from inside a swarm
  # task: the task's default route goes through docker_gwbridge (every task on a non-internal
  # overlay network gets that interface for egress), and the gateway is the host's own address
  # on that bridge, so the container asks `ip route` at start. Not `extra_hosts: host-gateway`:
  # dockerd resolves `host-gateway` for `docker run` and compose, but swarm services got it only
  # in recent engines, and the docker in nixpkgs may predate it; the default route works on any.
  route = infra.serveRoute;
  routeOn = infra.enable && route.enable;
  httpPort = toString (cfg.settings.http.port or 8080);
  publicUrl = cfg.settings.http.publicUrl or null;
  serverName =
    let m = if publicUrl == null then null else builtins.match "https?://([^/:?#]+).*" publicUrl;
    in if m == null then null else builtins.head m;
  routeStack = "cc-ci-route";
  routeCompose = yaml.generate "cc-ci-route.yml" {
    version = "3.8";
    services.serve = {
      image = route.image;
      # `$$` is a literal `$` to docker stack deploy's interpolation.
      entrypoint = [
        "/bin/sh"
        "-c"
        "exec socat TCP-LISTEN:${httpPort},fork,reuseaddr TCP:$$(ip route | awk '/^default/ {print $$3; exit}'):${httpPort}"
      ];
      networks = [ "proxy" ];
      deploy = {
        replicas = 1;
        labels = [
          "traefik.enable=true"
          "traefik.http.routers.cc-ci-serve.rule=Host(`${toString serverName}`)"
          "traefik.http.routers.cc-ci-serve.entrypoints=web-secure"
          # The traefik recipe names its ACME resolver after LETS_ENCRYPT_ENV (set below).
          "traefik.http.routers.cc-ci-serve.tls.certresolver=${letsEncryptEnv}"
          "traefik.http.services.cc-ci-serve.loadbalancer.server.port=${httpPort}"
        ];
      };
    };
    networks.proxy.external = true;
  };
  letsEncryptEnv = "production";

  # The DNS provider's API key(s) for Traefik's DNS-01 challenge: each host file reaches the
  # cc-ci-infra unit as the credential `dns-<name>` and becomes the traefik app's abra secret
  # <name>, at a version this unit counts itself. Swarm secrets are immutable, so a changed file
  # is a new version: SECRET_<NAME>_VERSION in the app's .env is bumped, the new secret inserted,
  # the app redeployed with it, and the version before removed. `<ABRA_DIR>/dns-credentials/<name>`
  # (0600, in the unit's 0700 ABRA_DIR) keeps "<version> <sha256 of the value>" to tell a change.
  # A secret already in the swarm at the version due (inserted by hand, or by a run cut short)
  # is skipped, never overwritten: that is what makes the unit safe to run again.
  traefikDomain = "traefik.${infra.domain}";
  # abra's SanitiseAppName (controller/model/naming.ts stackName): dots to underscores, 45 chars.
  traefikStack = builtins.substring 0 45 (builtins.replaceStrings [ "." ] [ "_" ] traefikDomain);
  dnsNames = lib.attrNames infra.traefik.dnsCredentialFiles;
  dnsCredentials = lib.mapAttrsToList (n: f: "dns-${n}:${f}") infra.traefik.dnsCredentialFiles;
  insertDnsSecret = name: ''
    cred="$CREDENTIALS_DIRECTORY/dns-${name}"
    state="$ABRA_DIR/dns-credentials/${name}"
    sum=$(sha256sum < "$cred" | cut -d' ' -f1)
    ver=0 oldsum=
    if [ -f "$state" ]; then read -r ver oldsum < "$state"; fi
    [ "$sum" = "$oldsum" ] || ver=$((ver + 1))
    grep -v '^SECRET_${lib.toUpper name}_VERSION=' "$envfile" > "$envfile.new" || true
    echo "SECRET_${lib.toUpper name}_VERSION=v$ver" >> "$envfile.new" && mv "$envfile.new" "$envfile"
    if docker secret inspect "${traefikStack}_${name}_v$ver" >/dev/null 2>&1; then
      echo "dns credential ${name}: v$ver is in the swarm already, kept"
    else
      # abra's `app secret insert <domain> <secret> <version> <data>` takes the value as an
      # argument; abra 0.10 and later also read <data> as a path with --file (and --trim drops the
      # file's trailing newline). Not verified against the pinned binary here (no abra on this
      # machine): its --help decides. Without --file the value is on abra's command line, where
      # `ps` on this host shows it while abra runs: a known limit of such an abra.
      help=$(abra app secret insert --help 2>&1 || true)
      case "$help" in
        *--file*)
          trim=; case "$help" in *--trim*) trim=--trim ;; esac
          abra app secret insert ${traefikDomain} ${name} "v$ver" "$cred" --file $trim --no-input >/dev/null ;;
        *)
          abra app secret insert ${traefikDomain} ${name} "v$ver" "$(cat "$cred")" --no-input >/dev/null ;;
      esac
      echo "dns credential ${name}: inserted as v$ver"
    fi
    printf '%s %s\n' "$ver" "$sum" > "$state"
  '';
  # After the deploy the service uses the new version; the one before is unused and goes.
  removeOldDnsSecret = name: ''
    read -r ver _ < "$ABRA_DIR/dns-credentials/${name}"
    if [ "$ver" -gt 1 ]; then docker secret rm "${traefikStack}_${name}_v$((ver - 1))" >/dev/null 2>&1 || true; fi
  '';
in
{
  options.services.cc-ci = {
    enable = lib.mkEnableOption "cc-ci, the CI server for Co-op Cloud recipes";

    package = lib.mkOption {
      type = lib.types.package;
      description = "The cc-ci package (its bin/cc-ci); the flake's packages.<system>.cc-ci.";
    };

    abraPackage = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ./abra.nix { };
      defaultText = "pkgs.callPackage ./abra.nix { }";
      description = "The abra binary cc-ci drives; pinned, because flag spellings change between versions.";
    };

    stateDir = lib.mkOption {
      type = lib.types.str;
      default = "/var/lib/cc-ci";
      description = ''
        State directory: the SQLite store, run specs, run logs and evidence, the canonical
        ABRA_DIR. Created mode 0700, owned by the `cc-ci` user; the only path the service may write.
      '';
    };

    user = lib.mkOption {
      type = lib.types.str;
      default = user;
      readOnly = true;
      description = ''
        The system user (and group) cc-ci runs as. It is a member of the `docker` group so that it
        can drive the swarm, and membership in `docker` is root-equivalent: whoever can talk to
        the Docker socket can start a privileged container that mounts the host's root. Treat
        this account, its state directory and API tokens as root on this host (docs/security.md).
      '';
    };

    settings = lib.mkOption {
      type = yaml.type;
      default = { };
      description = ''
        cc-ci configuration (docs/configuration.md), rendered to /etc/cc-ci/config.yaml and checked
        at build time by `cc-ci config check`: an unknown key or a bad value fails the build.
        Secrets do not belong here (the Nix store is world-readable): use forgeTokenFile,
        webhookSecretFile and loginClientSecretFile.
      '';
    };

    forgeTokenFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "/root/secrets/cc-ci-forge-token";
      description = ''
        A file on the host (not in the Nix store) holding the forge bot's API token. Passed to
        the service as the systemd credential `forge-token` (LoadCredential=); sets forge.tokenFile.
        Needs `settings.forge.url`.
      '';
    };

    webhookSecretFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      description = "A host file holding the webhook secret; the credential `webhook-secret`, sets forge.webhookSecretFile.";
    };

    loginClientSecretFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      description = "A host file holding the OAuth2 client secret; the credential `login-client-secret`, sets login.clientSecretFile.";
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

    infrastructure = {
      enable = lib.mkEnableOption "the rest of a Co-op Cloud CI server: Traefik and backup-bot-two, deployed through abra by the cc-ci-infra oneshot";
      domain = lib.mkOption {
        type = lib.types.str;
        default = cfg.settings.domain.base or "ci.localhost";
        defaultText = "settings.domain.base";
        description = "The test domain: Traefik gets a wildcard certificate for *.<domain>; a wildcard DNS record must point at this host.";
      };
      acmeEmail = lib.mkOption {
        type = lib.types.str;
        description = "The ACME (Let's Encrypt) account e-mail for Traefik's certificates.";
      };
      traefik = {
        version = lib.mkOption {
          type = lib.types.str;
          default = "3.3.0+v3.3.5";
          description = "The pinned version of the Co-op Cloud traefik recipe (a tag of its repository).";
        };
        dnsProvider = lib.mkOption {
          type = lib.types.str;
          example = "gandiv5";
          description = "The lego DNS provider for the wildcard certificate's DNS-01 challenge (the recipe's LETS_ENCRYPT_DNS_CHALLENGE_PROVIDER).";
        };
        env = lib.mkOption {
          type = lib.types.attrsOf lib.types.str;
          default = { };
          description = ''
            More lines of the traefik app's .env (names as in the recipe's .env.sample at the
            pinned version), e.g. the COMPOSE_FILE overlay of the DNS provider. The provider's API
            key is an abra secret (dnsCredentialFiles), never here.
          '';
        };
        dnsCredentialFiles = lib.mkOption {
          type = lib.types.attrsOf lib.types.str;
          default = { };
          example = { gandiv5_personal_access_token = "/root/secrets/gandi-pat"; };
          description = ''
            The DNS provider's API key(s) for the DNS-01 challenge: secret name (as the traefik
            recipe's compose overlay of the provider names it; lower case, digits, `_`) to a host
            file outside the Nix store. Each reaches cc-ci-infra as the systemd credential
            `dns-<name>` (LoadCredential=) and is inserted into the traefik app with
            `abra app secret insert` before the deploy; a changed file becomes a new secret
            version and a redeploy at the next `systemctl restart cc-ci-infra` (docs/secrets.md).
          '';
        };
      };
      serveRoute = {
        enable = lib.mkOption {
          type = lib.types.bool;
          default = (cfg.settings.http.publicUrl or null) != null;
          defaultText = "settings.http.publicUrl is set";
          description = ''
            Route https://<host of settings.http.publicUrl> through Traefik to `cc-ci serve`: a
            one-service swarm stack `cc-ci-route` on the `proxy` network, deployed by cc-ci-infra,
            forwarding TCP to serve's port on the host. Sets `http.host` to 0.0.0.0 and opens
            `http.port` in the firewall on the docker_gwbridge interface only.
          '';
        };
        image = lib.mkOption {
          type = lib.types.str;
          # Tag only: the digest could not be looked up where this was written. Append
          # `@sha256:<digest>` (`docker buildx imagetools inspect alpine/socat:<tag>`); the
          # module warns until the image is pinned by digest.
          default = "alpine/socat:1.8.0.3";
          example = "alpine/socat:1.8.0.3@sha256:<digest>";
          description = "The forwarder's image: socat on Alpine (its /bin/sh, ip and awk are used too); pin it by tag and digest.";
        };
      };
      backupBot = {
        version = lib.mkOption {
          type = lib.types.str;
          default = "2.3.0+2.3.0-beta";
          description = "The pinned version of the backup-bot-two recipe (a tag of its repository).";
        };
        env = lib.mkOption {
          type = lib.types.attrsOf lib.types.str;
          default = { };
          description = "More lines of the backup-bot-two app's .env (e.g. its restic repository).";
        };
      };
    };
  };

  config = lib.mkIf cfg.enable (lib.mkMerge [
    {
      assertions = [
        {
          assertion = lib.all (f: f == null || !(lib.hasPrefix "/nix/store" f))
            ([ cfg.forgeTokenFile cfg.webhookSecretFile cfg.loginClientSecretFile ] ++ lib.attrValues infra.traefik.dnsCredentialFiles);
          message = "services.cc-ci: a secret file must not be in the Nix store (it is world-readable there)";
        }
        {
          # The names go into shell commands, docker secret names and SECRET_<NAME>_VERSION.
          assertion = lib.all (n: builtins.match "[a-z0-9_]+" n != null) dnsNames;
          message = "services.cc-ci.infrastructure.traefik.dnsCredentialFiles: a secret name is lower case letters, digits and _";
        }
        {
          assertion = !routeOn || serverName != null;
          message = "services.cc-ci.infrastructure.serveRoute needs settings.http.publicUrl (http:// or https://<name>): the route is for its name";
        }
        {
          assertion = !routeOn || !(builtins.elem (settings.http.host or "") [ "127.0.0.1" "localhost" "::1" ]);
          message = "services.cc-ci.infrastructure.serveRoute: settings.http.host on loopback cannot be reached from the route's container; leave it unset";
        }
        {
          assertion = cfg.webhookSecretFile == null || cfg.forgeTokenFile != null;
          message = "services.cc-ci.webhookSecretFile needs forgeTokenFile: the webhook is the forge's";
        }
      ];

      virtualisation.docker.enable = true;

      users.users.${user} = {
        isSystemUser = true;
        inherit group;
        # Root-equivalent: see the `user` option.
        extraGroups = [ "docker" ];
        home = cfg.stateDir;
      };
      users.groups.${group} = { };

      # The option's directory, not a fixed StateDirectory=: 0700, as only cc-ci reads it (run
      # logs, secrets masked in flight, the database of API token hashes).
      systemd.tmpfiles.rules = [
        "d ${cfg.stateDir} 0700 ${user} ${group} - -"
        "d ${cfg.stateDir}/abra 0700 ${user} ${group} - -"
      ];

      # The operator's `cc-ci doctor`, `cc-ci get runs` … on the host find the same config and state.
      environment.etc."cc-ci/config.yaml".source = configFile;
      environment.systemPackages = [ cfg.package cfg.abraPackage ];
      environment.variables = { CCCI_STATE_DIR = cfg.stateDir; CCCI_CONFIG = "/etc/cc-ci/config.yaml"; };

      # The host must look like a Co-op Cloud server before any run: a swarm, the proxy network,
      # and an abra server entry (made as cc-ci, whose ABRA_DIR it is).
      systemd.services.cc-ci-swarm = {
        description = "single-node swarm and proxy network for cc-ci";
        after = [ "docker.service" "systemd-tmpfiles-setup.service" ];
        requires = [ "docker.service" ];
        wantedBy = [ "multi-user.target" ];
        path = [ config.virtualisation.docker.package cfg.abraPackage pkgs.util-linux ];
        environment = { ABRA_DIR = "${cfg.stateDir}/abra"; HOME = cfg.stateDir; };
        serviceConfig = { Type = "oneshot"; RemainAfterExit = true; };
        script = ''
          if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
            docker swarm init --advertise-addr ${cfg.swarmAdvertiseAddr}
          fi
          docker network inspect proxy >/dev/null 2>&1 || docker network create -d overlay --attachable proxy
          [ -d "$ABRA_DIR/servers/default" ] || runuser -u ${user} -- abra server add --local -n
        '';
      };

      systemd.services.cc-ci = {
        description = "cc-ci controller";
        after = [ "cc-ci-swarm.service" "network-online.target" ];
        requires = [ "cc-ci-swarm.service" ];
        wants = [ "network-online.target" ];
        wantedBy = [ "multi-user.target" ];
        restartTriggers = [ configFile ];
        path = servicePath;
        environment = serviceEnv;
        serviceConfig = hardening // {
          ExecStart = "${cfg.package}/bin/cc-ci serve";
          LoadCredential = credentials;
          # SIGTERM is the graceful stop: no new work, steps in flight stopped and recorded.
          KillSignal = "SIGTERM";
          TimeoutStopSec = 60;
          Restart = "on-failure";
          RestartSec = 5;
        };
      };
    }

    # The warm-reconcile timer: one pass through the running controller; a warm app that is not
    # healthy fails the unit, so `systemctl --failed` and the journal say which and why.
    (lib.mkIf cfg.warmReconcile.enable {
      systemd.services.cc-ci-warm-reconcile = {
        description = "cc-ci: converge the warm canonical apps and report their health";
        after = [ "cc-ci.service" ];
        wants = [ "cc-ci.service" ];
        path = servicePath;
        environment = serviceEnv;
        serviceConfig = hardening // {
          Type = "oneshot";
          ExecStart = "${cfg.package}/bin/cc-ci warm reconcile";
          TimeoutStartSec = 300;
        };
      };

      systemd.timers.cc-ci-warm-reconcile = {
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
    })

    # Traefik (the `traefik` ingress mode: https://<app>.<domain> with a wildcard certificate)
    # and backup-bot-two (the backup and restore tiers), deployed through the pinned abra on the
    # swarm. Their own ABRA_DIR: cc-ci's janitor and runs never see them.
    # serve on 0.0.0.0 (settings above), its port open on docker_gwbridge alone: the route's
    # container reaches it through that bridge, nothing outside does. NixOS's firewall is on by
    # default and opens nothing it is not told to; with it switched off the port is open to
    # all, hence the warning.
    (lib.mkIf routeOn {
      networking.firewall.interfaces.docker_gwbridge.allowedTCPPorts = [ (cfg.settings.http.port or 8080) ];
      environment.etc."cc-ci/route.yml".source = routeCompose;
      warnings =
        lib.optional (!(config.networking.firewall.enable or true))
          "services.cc-ci: the firewall is off, so cc-ci serve (listening on 0.0.0.0:${httpPort} for the Traefik route) is reachable from outside"
        ++ lib.optional (builtins.match ".*@sha256:[0-9a-f]{64}" route.image == null)
          "services.cc-ci.infrastructure.serveRoute.image is not pinned by digest (${route.image}): append @sha256:<digest>";
    })

    (lib.mkIf infra.enable {
      systemd.tmpfiles.rules = [ "d ${infraAbraDir} 0700 ${user} ${group} - -" ];
      systemd.services.cc-ci-infra = {
        description = "cc-ci: Traefik and backup-bot-two through abra, at pinned versions";
        after = [ "cc-ci-swarm.service" "network-online.target" ];
        requires = [ "cc-ci-swarm.service" ];
        wants = [ "network-online.target" ];
        before = [ "cc-ci.service" ];
        requiredBy = [ "cc-ci.service" ];
        wantedBy = [ "multi-user.target" ];
        path = [ config.virtualisation.docker.package cfg.abraPackage pkgs.git pkgs.gnugrep pkgs.coreutils ];
        environment = { ABRA_DIR = infraAbraDir; HOME = cfg.stateDir; };
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          User = user;
          Group = group;
          UMask = "0077";
          TimeoutStartSec = 1800;
          # In /run/credentials/cc-ci-infra.service/, readable by this unit's user alone.
          LoadCredential = dnsCredentials;
        };
        script = ''
          set -eu
          [ -d "$ABRA_DIR/servers/default" ] || abra server add --local -n
          mkdir -p "$ABRA_DIR/dns-credentials"
          ${deployApp {
            recipe = "traefik";
            version = infra.traefik.version;
            domain = traefikDomain;
            beforeDeploy = lib.concatStringsSep "\n" (map insertDnsSecret dnsNames);
            afterDeploy = lib.concatStringsSep "\n" (map removeOldDnsSecret dnsNames);
            env = {
              LETS_ENCRYPT_EMAIL = infra.acmeEmail;
              LETS_ENCRYPT_ENV = letsEncryptEnv;
              WILDCARDS_ENABLED = "1";
              LETS_ENCRYPT_DNS_CHALLENGE_ENABLED = "1";
              LETS_ENCRYPT_DNS_CHALLENGE_PROVIDER = infra.traefik.dnsProvider;
              WILDCARD_DOMAIN = infra.domain;
            } // infra.traefik.env;
          }}
          ${if routeOn then ''
            # https://${toString serverName} → cc-ci serve on the host (the module says how).
            docker stack deploy -c ${routeCompose} ${routeStack}
          '' else ''
            # The route is switched off: remove a stack an earlier generation deployed.
            if docker stack ls --format '{{.Name}}' | grep -qx ${routeStack}; then docker stack rm ${routeStack}; fi
          ''}
          ${deployApp {
            recipe = "backup-bot-two";
            version = infra.backupBot.version;
            domain = "backups.${infra.domain}";
            env = infra.backupBot.env;
          }}
        '';
      };
    })
  ]);
}

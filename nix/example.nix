# An example cc-ci host (flake.nix's nixosConfigurations.example): a NixOS machine with a
# public address, wildcard DNS *.ci.example.org → it, and the secrets put in /root/secrets by
# hand (docs/install.md, docs/secrets.md). Replace the hardware part with your own.
{ ... }:

{
  boot.loader.grub.device = "/dev/sda";
  fileSystems."/" = { device = "/dev/sda1"; fsType = "ext4"; };
  networking.hostName = "cc-ci";
  networking.firewall.allowedTCPPorts = [ 80 443 ];
  system.stateVersion = "25.05";

  services.cc-ci = {
    enable = true;
    forgeTokenFile = "/root/secrets/cc-ci-forge-token";
    webhookSecretFile = "/root/secrets/cc-ci-webhook-secret";
    settings = {
      capacity = 2;
      domain.base = "ci.example.org";
      ingress.mode = "traefik";
      forge = { url = "https://git.example.org"; mode = "webhook"; };
      repos = [ "coop-cloud/custom-html" ];
      # Traefik routes https://ci.example.org to this port through the cc-ci-route stack; the
      # module listens on 0.0.0.0 and opens the port on docker_gwbridge only (docs/install.md).
      http = { port = 8080; publicUrl = "https://ci.example.org"; };
    };
    infrastructure = {
      enable = true;
      acmeEmail = "ops@example.org";
      traefik.dnsProvider = "gandiv5";
      # The provider's API key, inserted into the traefik app by cc-ci-infra (docs/secrets.md).
      traefik.dnsCredentialFiles.gandiv5_personal_access_token = "/root/secrets/gandi-pat";
    };
  };
}

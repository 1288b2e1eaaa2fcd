# abra, pinned. cc-ci checks at start (`cc-ci doctor`) that every flag it passes exists in this
# binary's --help. Bump `version` and the hash together, then run `cc-ci doctor`.
{ lib, stdenvNoCC, fetchurl }:

stdenvNoCC.mkDerivation rec {
  pname = "abra";
  version = "0.13.0-beta";
  src = fetchurl {
    url = "https://git.coopcloud.tech/toolshed/abra/releases/download/${version}/abra_${version}_linux_amd64";
    # Fill in with `nix-prefetch-url` for the pinned release; nixpkgs cannot be fetched here.
    hash = lib.fakeHash;
  };
  dontUnpack = true;
  installPhase = ''
    install -Dm755 $src $out/bin/abra
  '';
  meta = {
    description = "The Co-op Cloud command-line utility";
    homepage = "https://git.coopcloud.tech/toolshed/abra";
    license = lib.licenses.gpl3Plus;
    platforms = [ "x86_64-linux" ];
  };
}

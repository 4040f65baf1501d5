# The image safeclaw runs, reproducible: the same layout as the twin that
# `safeclaw image build` assembles without Nix (src/image_twin.rs,
# docs/image.md), from store paths only.
#
# buildLayeredImage (pkgs/build-support/docker/default.nix) writes a gzip
# docker-archive: one layer per store path of the closure (up to
# maxLayers), then a customisation layer with `contents` and
# `extraCommands`; the config is named by its own sha256 and
# manifest.json comes last (stream_layered_image.py). With `tag` left
# null the tag is the hash part of the image configuration's store path,
# so any change of input changes the tag. `created` defaults to
# 1970-01-01T00:00:01Z and every file's mtime is fixed.
{ dockerTools
, runCommand
, pkgsStatic
, cacert
, nodejs_24
, safeclaw
, openclaw
}:
let
  uid = "10001"; # container_spec::FALLBACK_UID
  busybox = pkgsStatic.busybox;
  lockSha256 = builtins.hashFile "sha256" ./openclaw/package-lock.json;

  # The root file system as links into the store; the closure of these
  # links is what the layers hold.
  root = runCommand "safeclaw-image-root" { } ''
    mkdir -p $out/usr/local/bin $out/usr/bin $out/bin $out/opt/openclaw \
      $out/etc/ssl/certs $out/root $out/home/node

    ln -s ${safeclaw}/bin/safeclaw $out/usr/local/bin/safeclaw
    ln -s ${nodejs_24}/bin/node $out/usr/local/bin/node
    ln -s ${openclaw}/node_modules $out/opt/openclaw/node_modules
    ln -s /opt/openclaw/node_modules/openclaw/openclaw.mjs $out/usr/local/bin/openclaw

    # The shell tools the assistant uses; OpenClaw's launcher starts with
    # `#!/usr/bin/env node`.
    for applet in ${busybox}/bin/*; do
      ln -s "$applet" "$out/bin/$(basename "$applet")"
    done
    ln -s /bin/env $out/usr/bin/env

    ln -s ${cacert}/etc/ssl/certs/ca-bundle.crt $out/etc/ssl/certs/ca-certificates.crt

    # Other setups' state dirs lead into safeclaw's tmpfs state dir, so the
    # absolute paths in a migrated openclaw.json still work.
    ln -s /state $out/root/.openclaw
    ln -s /state $out/home/node/.openclaw

    echo 'root:x:0:0::/:/nonexistent' > $out/etc/passwd
    echo 'openclaw:x:${uid}:${uid}::/home/openclaw:/nonexistent' >> $out/etc/passwd
    echo 'root:x:0:' > $out/etc/group
    echo 'openclaw:x:${uid}:' >> $out/etc/group
  '';
in
dockerTools.buildLayeredImage {
  name = "safeclaw-openclaw";
  contents = [ root ];
  # Mount points of the container spec (tmpfs state, checkpoint, home and
  # tmp; the vault's directory), made in the customisation layer. The
  # engine copies a tmpfs mount point's mode from the image into the tmpfs,
  # so they are 0700 here (docs/container.md).
  extraCommands = ''
    mkdir -p state vault checkpoint tmp home/openclaw
    chmod 0700 state checkpoint tmp home/openclaw
  '';
  config = {
    Entrypoint = [ "/usr/local/bin/safeclaw" ];
    User = "${uid}:${uid}";
    Env = [
      "PATH=/usr/local/bin:/usr/bin:/bin"
      "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
    ];
    Labels = {
      "org.safeclaw.image" = "nix";
      "org.safeclaw.openclaw" = openclaw.version;
      "org.safeclaw.node" = nodejs_24.version;
      "org.safeclaw.lock-sha256" = lockSha256;
    };
  };
  passthru = { inherit root; };
}

# The image safeclaw runs, reproducible: the same layout as the twin that
# `safeclaw image build` assembles without Nix (src/image/twin.rs,
# docs/image.md), from store paths only. Paths, the uid and the stop
# budget come from ../constants.toml, which the Rust side reads too.
#
# dockerTools.buildLayeredImage (pkgs/build-support/docker/default.nix):
# { name, compressor ? "gz", meta ? { }, ... } passed on to
# streamLayeredImage, whose argument set is closed (no `...`). It writes a
# gzip docker-archive: one layer per store path of the closure (up to
# maxLayers), then a customisation layer with `contents` and
# `extraCommands`; the config is named by its own sha256 and manifest.json
# comes last. With `tag` left null the tag is the hash part of the image
# configuration's store path, so any change of input changes the tag.
# `created` and every mtime default to 1970-01-01T00:00:01Z.
{
  lib,
  dockerTools,
  runCommand,
  pkgsStatic,
  cacert,
  nodejs-slim_24,
  safeclaw,
  openclaw,
}:
let
  constants = import ./constants.nix;
  uid = toString constants.uid;
  busybox = pkgsStatic.busybox;
  lockSha256 = builtins.hashFile "sha256" ./openclaw/package-lock.json;
  # "/state" -> "state": mount points are made relative to the image root.
  relative = lib.removePrefix "/";

  # The root file system as links into the store; the closure of these
  # links is what the layers hold.
  root = runCommand "safeclaw-image-root" { } ''
    mkdir -p $out/usr/local/bin $out/usr/bin $out/bin $out${constants.app_dir} \
      $out/etc/ssl/certs $out/root $out/home/node

    ln -s ${safeclaw}/bin/safeclaw $out${constants.safeclaw_in_image}
    ln -s ${nodejs-slim_24}/bin/node $out/usr/local/bin/node
    ln -s ${openclaw}/node_modules $out${constants.app_dir}/node_modules
    ln -s ${constants.app_dir}/node_modules/openclaw/openclaw.mjs $out/usr/local/bin/openclaw

    # The shell tools the assistant uses; OpenClaw's launcher starts with
    # `#!/usr/bin/env node` (patched to the store's node in the package,
    # kept for scripts the assistant writes).
    for applet in ${busybox}/bin/*; do
      ln -s "$applet" "$out/bin/$(basename "$applet")"
    done
    ln -s /bin/env $out/usr/bin/env

    ln -s ${cacert}/etc/ssl/certs/ca-bundle.crt $out${constants.ca_bundle}

    # Other setups' state dirs lead into safeclaw's tmpfs state dir, so the
    # absolute paths in a migrated openclaw.json still work.
    ${lib.concatMapStrings (dir: ''
      ln -s ${constants.state_dir} $out${dir}
    '') constants.legacy_state_dirs}

    # /etc/hosts first, then DNS (src/image/build.rs, NSSWITCH).
    echo 'hosts: files dns' > $out/etc/nsswitch.conf
    echo 'root:x:0:0::/:/nonexistent' > $out/etc/passwd
    echo 'openclaw:x:${uid}:${uid}::${constants.home_dir}:/nonexistent' >> $out/etc/passwd
    echo 'root:x:0:' > $out/etc/group
    echo 'openclaw:x:${uid}:' >> $out/etc/group
  '';

  # Mount points of the container spec (tmpfs state, checkpoint, home and
  # tmp; the vault's directory). The engine copies a tmpfs mount point's
  # mode from the image into the tmpfs, so they are 0700 here
  # (docs/container.md).
  tmpfsDirs = map relative [
    constants.state_dir
    constants.checkpoint_dir
    "/tmp"
    constants.home_dir
  ];
in
dockerTools.buildLayeredImage {
  name = "safeclaw-openclaw";
  contents = [ root ];
  extraCommands = ''
    mkdir -p ${lib.escapeShellArgs (tmpfsDirs ++ [ (relative constants.vault_dir) ])}
    chmod 0700 ${lib.escapeShellArgs tmpfsDirs}
  '';
  config = {
    Entrypoint = [ constants.safeclaw_in_image ];
    User = "${uid}:${uid}";
    Env = [
      "PATH=${constants.path_in_image}"
      "SSL_CERT_FILE=${constants.ca_bundle}"
    ];
    Labels = {
      "org.safeclaw.image" = "nix";
      "org.safeclaw.openclaw" = openclaw.version;
      "org.safeclaw.node" = nodejs-slim_24.version;
      "org.safeclaw.lock-sha256" = lockSha256;
    };
  };
  meta = {
    description = "The OCI image safeclaw runs: its guard, nodejs-slim_24 and the pinned OpenClaw (a gzip docker-archive)";
    platforms = [
      "x86_64-linux"
      "aarch64-linux"
    ];
  };
}

# The safeclaw users run: the binary, told which image it runs. The pin is
# the image archive's store path; safeclaw validates it, loads the archive
# into the engine when needed and checks that the engine's image is the
# archive's, on either image store (src/image/pin.rs, docs/engines.md).
# makeBinaryWrapper: a compiled wrapper, no shell between systemd and
# safeclaw (pkgs/by-name/ma/makeBinaryWrapper).
{
  runCommand,
  makeBinaryWrapper,
  safeclaw,
  image,
}:
let
  constants = import ./constants.nix;
in
runCommand "safeclaw-${safeclaw.version}"
  {
    nativeBuildInputs = [ makeBinaryWrapper ];
    passthru = {
      unwrapped = safeclaw;
      inherit image;
    };
    inherit (safeclaw) meta;
  }
  ''
    mkdir -p $out/bin
    makeWrapper ${safeclaw}/bin/safeclaw $out/bin/safeclaw \
      --set ${constants.env_image} ${image}
  ''

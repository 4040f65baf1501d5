# The safeclaw users run: the binary, told which image it runs. The pin is
# the image archive's store path; safeclaw validates it, loads the archive
# into the engine when needed and checks that the engine's image is the
# archive's, on either image store (src/image_pin.rs, docs/engines.md).
{ runCommand, makeWrapper, safeclaw, image }:
runCommand "safeclaw-${safeclaw.version}"
{
  nativeBuildInputs = [ makeWrapper ];
  passthru = {
    unwrapped = safeclaw;
    inherit image;
  };
  inherit (safeclaw) meta;
} ''
  mkdir -p $out/bin
  makeWrapper ${safeclaw}/bin/safeclaw $out/bin/safeclaw \
    --set SAFECLAW_IMAGE ${image}
''

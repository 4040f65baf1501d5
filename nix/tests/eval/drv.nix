# Stand-in derivations. mkDerivation (pkgs/stdenv/generic/make-derivation.nix)
# is open and takes an attribute set or a function of the final attributes;
# the stand-in hands its attributes to the real `derivation` builtin (with
# __structuredAttrs, as JSON), so a value a derivation cannot carry (a
# function, an attribute set without outPath) fails here as it would in
# nixpkgs. Nothing is built: nix-instantiate --eval only computes paths.
{ lib, system }:
let
  metaTypes = {
    description = builtins.isString;
    longDescription = builtins.isString;
    mainProgram = builtins.isString;
    homepage = builtins.isString;
    license = x: builtins.isAttrs x || builtins.isList x;
    platforms = builtins.isList;
    badPlatforms = builtins.isList;
    maintainers = builtins.isList;
    teams = builtins.isList;
    broken = builtins.isBool;
  };
  checkMeta =
    name: meta:
    lib.all (
      key:
      (metaTypes ? ${key} || throw "stand-in mkDerivation ${name}: meta.${key} is not a meta attribute nixpkgs knows")
      && (metaTypes.${key} meta.${key} || throw "stand-in mkDerivation ${name}: meta.${key} has the wrong type")
    ) (builtins.attrNames meta);

  mkDerivation =
    argsOrFunction:
    let
      attrs =
        if builtins.isFunction argsOrFunction then
          lib.fix (final: argsOrFunction final)
        else
          argsOrFunction;
      name =
        attrs.name or (
          if attrs ? pname && attrs ? version then
            "${attrs.pname}-${attrs.version}"
          else
            throw "stand-in mkDerivation: neither name nor pname and version"
        );
      meta = attrs.meta or { };
      passthru = attrs.passthru or { };
      drvAttrs =
        removeAttrs attrs [
          "meta"
          "passthru"
        ]
        // {
          inherit name system;
          builder = "/bin/sh";
        };
      real = derivation drvAttrs;
    in
    assert checkMeta name meta;
    passthru
    // {
      type = "derivation";
      inherit name meta drvAttrs;
      inherit (real) outPath drvPath;
      outputs = [ "out" ];
      out = real;
      outputName = "out";
      pname = attrs.pname or name;
      version = attrs.version or "";
      overrideAttrs =
        f:
        let
          r = f attrs;
        in
        mkDerivation (attrs // (if builtins.isFunction r then r attrs else r));
    };
in
{
  inherit mkDerivation;

  # A package of nixpkgs the flake only refers to (a build input, a tool):
  # a derivation with a name, a version and meta.mainProgram.
  fake =
    name:
    mkDerivation {
      inherit name;
      version = "0";
      meta.mainProgram = name;
    };

  fakeVersioned =
    pname: version:
    mkDerivation {
      inherit pname version;
      meta.mainProgram = pname;
    };
}

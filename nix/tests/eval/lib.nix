# A stand-in for the part of nixpkgs' lib the flake uses, written from
# lib/*.nix of nixpkgs (read in nix-community/nixpkgs.lib at de42d442,
# 2026-06-14, the lib of nixpkgs master a month after nixos-26.05
# branched). Functions taking attribute sets have lib's formal argument
# sets (mkOption, fileset.toSource, mkPackageOption); the module system
# is a small one with the same properties (mkIf, mkMerge, mkOverride),
# option declarations, types with checks, and "option does not exist"
# for a definition nothing declares. It runs on Nix 2.8.
#
# ./default.nix can also run with nixpkgs' real lib (`run --lib DIR`);
# lib.fileset then stays this one (the real one needs Nix >= 2.14).
let
  inherit (builtins)
    all
    any
    attrNames
    concatMap
    concatStringsSep
    elem
    filter
    foldl'
    head
    isAttrs
    isFunction
    isList
    isPath
    length
    listToAttrs
    mapAttrs
    stringLength
    substring
    typeOf
    ;

  lib = rec {
    inherit
      all
      any
      attrNames
      concatMap
      concatStringsSep
      elem
      filter
      foldl'
      head
      mapAttrs
      ;

    # lib/fixed-points.nix, lib/trivial.nix
    fix = f: let x = f x; in x;
    id = x: x;
    warn = msg: builtins.trace "warning: ${msg}";

    # lib/attrsets.nix
    genAttrs = names: f: listToAttrs (map (n: nameValuePair n (f n)) names);
    nameValuePair = name: value: { inherit name value; };
    filterAttrs =
      pred: set:
      listToAttrs (
        concatMap (n: if pred n set.${n} then [ (nameValuePair n set.${n}) ] else [ ]) (attrNames set)
      );
    mapAttrs' = f: set: listToAttrs (map (n: f n set.${n}) (attrNames set));
    mapAttrsToList = f: set: map (n: f n set.${n}) (attrNames set);
    optionalAttrs = cond: set: if cond then set else { };
    isDerivation = x: isAttrs x && x.type or null == "derivation";
    recursiveUpdate =
      a: b:
      a
      // mapAttrs (n: v: if isAttrs v && isAttrs (a.${n} or null) && !isDerivation v then recursiveUpdate a.${n} v else v) b;

    # lib/lists.nix
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    unique = foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ];
    last = xs: builtins.elemAt xs (length xs - 1);
    toList = x: if isList x then x else [ x ];

    # lib/strings.nix
    hasPrefix = p: s: substring 0 (stringLength p) s == p;
    hasSuffix =
      p: s:
      let
        lp = stringLength p;
        ls = stringLength s;
      in
      lp <= ls && substring (ls - lp) lp s == p;
    removePrefix =
      p: s: if hasPrefix p s then substring (stringLength p) (stringLength s - stringLength p) s else s;
    removeSuffix =
      p: s: if hasSuffix p s then substring 0 (stringLength s - stringLength p) s else s;
    concatMapStrings = f: xs: concatStringsSep "" (map f xs);
    concatMapStringsSep = sep: f: xs: concatStringsSep sep (map f xs);
    escapeShellArg =
      arg:
      let
        s = toString arg;
      in
      if builtins.match "[[:alnum:],._+:@%/-]+" s != null then
        s
      else
        "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] s}'";
    escapeShellArgs = concatMapStringsSep " " escapeShellArg;
    makeBinPath = xs: concatMapStringsSep ":" (x: "${x}/bin") xs;
    versionAtLeast = v1: v2: builtins.compareVersions v1 v2 >= 0;

    # lib/asserts.nix
    assertMsg = pred: msg: pred || throw msg;

    # lib/meta.nix: getExe needs meta.mainProgram (nixpkgs warns and
    # guesses without it; the stand-in refuses).
    getExe =
      x:
      "${x}/bin/${
        x.meta.mainProgram or (throw "getExe: ${x.name or "?"} has no meta.mainProgram")
      }";

    # lib/trivial.nix: importJSON, importTOML
    importJSON = path: builtins.fromJSON (builtins.readFile path);
    importTOML = path: builtins.fromTOML (builtins.readFile path);

    # lib/licenses, lib/systems/doubles.nix
    licenses = {
      mit.spdxId = "MIT";
      asl20.spdxId = "Apache-2.0";
    };
    platforms.linux = [
      "x86_64-linux"
      "aarch64-linux"
    ];

    # lib/options.nix: mkOption is closed.
    mkOption =
      {
        default ? null,
        defaultText ? null,
        example ? null,
        description ? null,
        relatedPackages ? null,
        type ? null,
        apply ? null,
        internal ? null,
        visible ? null,
        readOnly ? null,
      }@attrs:
      attrs // { _type = "option"; };
    mkEnableOption =
      name:
      mkOption {
        default = false;
        example = true;
        description = "Whether to enable ${name}.";
        type = types.bool;
      };
    literalExpression = text: {
      _type = "literalExpression";
      inherit text;
    };
    isOption = x: isAttrs x && x._type or null == "option";

    # lib/modules.nix: properties
    mkIf = condition: content: {
      _type = "if";
      inherit condition content;
    };
    mkMerge = contents: {
      _type = "merge";
      inherit contents;
    };
    mkOverride = priority: content: {
      _type = "override";
      inherit priority content;
    };
    mkDefault = mkOverride 1000;
    mkForce = mkOverride 50;
    mkOptionDefault = mkOverride 1500;
    setDefaultModuleLocation = file: m: {
      _file = file;
      imports = [ m ];
    };
    modules.importApply = file: arg: setDefaultModuleLocation file (import file arg);

    # lib/types.nix, lib/modules.nix: ./modules.nix.
    inherit (import ./modules.nix lib) types evalModules;
    inherit (types) mkOptionType;

    # lib/fileset: toSource is closed ({ root, fileset }). The stand-in
    # checks that every path exists and lies under root, and names a
    # source without copying anything.
    fileset = rec {
      _set = paths: {
        _type = "fileset";
        inherit paths;
      };
      _paths =
        x:
        if isPath x then
          [ x ]
        else if x._type or null == "fileset" then
          x.paths
        else
          throw "lib.fileset: ${typeOf x} is not a path or a file set";
      unions = xs: _set (concatMap _paths xs);
      union = a: b: unions [ a b ];
      maybeMissing = p: _set (if builtins.pathExists p then [ p ] else [ ]);
      fileFilter =
        predicate: path:
        assert isFunction predicate && isPath path;
        _set [ path ];
      toSource =
        { root, fileset }:
        let
          paths = _paths fileset;
          under = p: hasPrefix (toString root) (toString p);
        in
        assert isPath root;
        assert all (
          p: builtins.pathExists p || throw "lib.fileset.toSource: ${toString p} does not exist"
        ) paths;
        assert all (
          p: under p || throw "lib.fileset.toSource: ${toString p} is not under ${toString root}"
        ) paths;
        "/nix/store/${substring 0 32 (builtins.hashString "sha256" (toString paths))}-source";
    };
  };
in
lib

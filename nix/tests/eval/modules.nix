# The stand-in module system (lib/modules.nix, lib/types.nix of nixpkgs,
# much reduced): modules as functions, attribute sets or paths, with
# imports; properties pushed down to the options they define (mkIf's
# condition read only there, so `config = mkIf cfg.enable …` does not
# recurse); priorities; types that check every definition; and an error
# for a definition of an option nothing declares.
lib:
let
  inherit (builtins)
    attrNames
    concatMap
    filter
    foldl'
    isAttrs
    isBool
    isFloat
    isFunction
    isInt
    isList
    isPath
    isString
    listToAttrs
    mapAttrs
    ;
  showLoc = builtins.concatStringsSep ".";
  showFiles = defs: builtins.concatStringsSep ", " (map (d: toString (d.file or "<unknown>")) defs);

  # Properties at a level above the options: kept on the children.
  pushDown =
    loc: v:
    if v._type or null == "merge" then
      concatMap (pushDown loc) v.contents
    else if v._type or null == "if" then
      map (mapAttrs (_: lib.mkIf v.condition)) (pushDown loc v.content)
    else if v._type or null == "override" then
      map (mapAttrs (_: lib.mkOverride v.priority)) (pushDown loc v.content)
    else if isAttrs v && !(lib.isDerivation v) then
      [ v ]
    else
      throw "stand-in modules: the definition of `${showLoc loc}' must be an attribute set, not a ${builtins.typeOf v}";

  # Properties at an option: resolved.
  discharge =
    loc: v:
    if v._type or null == "merge" then
      concatMap (discharge loc) v.contents
    else if v._type or null == "if" then
      if !isBool v.condition then
        throw "stand-in modules: mkIf at `${showLoc loc}' has a ${builtins.typeOf v.condition} as condition"
      else if v.condition then
        discharge loc v.content
      else
        [ ]
    else if v._type or null == "override" then
      map (d: d // { priority = if d.explicit then d.priority else v.priority; explicit = true; }) (
        discharge loc v.content
      )
    else
      [
        {
          value = v;
          priority = 100;
          explicit = false;
        }
      ];

  # The definitions of one option: discharged, the highest priority kept,
  # checked against the type, merged. Null when nothing defines it.
  evalOption =
    loc: decl: rawDefs:
    let
      type = decl.type or types.unspecified;
      defs = concatMap (d: map (x: x // { inherit (d) file; }) (discharge loc d.value)) rawDefs;
      withDefault =
        if defs == [ ] && decl ? default then
          [
            {
              value = decl.default;
              priority = 1500;
              file = "<default>";
            }
          ]
        else
          defs;
      best = foldl' (p: d: if d.priority < p then d.priority else p) 9999 withDefault;
      chosen = filter (d: d.priority == best) withDefault;
      checked = map (
        d:
        if type.check d.value then
          d
        else
          throw "A definition for option `${showLoc loc}' is not of type `${type.description}'. Definition value in ${toString d.file}."
      ) chosen;
      merged = type.merge loc checked;
    in
    if chosen == [ ] then
      null
    else
      {
        value = if decl.apply or null != null then decl.apply merged else merged;
      };

  # A level of options: every definition must name a declared option.
  evalLevel =
    loc: opts: rawDefs:
    let
      defs = concatMap (d: map (v: { inherit (d) file; value = v; }) (pushDown loc d.value)) rawDefs;
      undeclared = concatMap (
        d:
        map (n: {
          name = n;
          inherit (d) file;
        }) (filter (n: !(opts ? ${n})) (attrNames d.value))
      ) defs;
      defsOf =
        n: concatMap (d: if d.value ? ${n} then [ { inherit (d) file; value = d.value.${n}; } ] else [ ]) defs;
    in
    if undeclared != [ ] then
      let
        u = builtins.head undeclared;
      in
      throw "The option `${showLoc (loc ++ [ u.name ])}' does not exist. Definition values in ${toString u.file}."
    else
      mapAttrs (
        n: decl:
        if lib.isOption decl then
          let
            r = evalOption (loc ++ [ n ]) decl (defsOf n);
          in
          if r == null then
            throw "The option `${showLoc (loc ++ [ n ])}' was accessed but has no value defined."
          else
            r.value
        else
          evalLevel (loc ++ [ n ]) decl (defsOf n)
      ) opts;

  # Modules: paths, functions, attribute sets; imports followed.
  collect =
    args: file: m:
    let
      fileOf = if isPath m || isString m then m else file;
      m1 = if isPath m || isString m then import m else m;
      m2 =
        if isFunction m1 then
          m1 (
            mapAttrs (
              n: _: args.${n} or (throw "stand-in modules: a module in ${toString fileOf} asks for `${n}', which is not passed")
            ) (builtins.functionArgs m1)
          )
        else
          m1;
      f = m2._file or fileOf;
      structured = m2 ? config || m2 ? options;
      known = [
        "_file"
        "_class"
        "key"
        "imports"
        "options"
        "config"
        "meta"
        "disabledModules"
        "freeformType"
      ];
      extra = filter (n: !(builtins.elem n known)) (attrNames m2);
      this = {
        file = f;
        options = m2.options or { };
        config =
          if structured then
            m2.config or { }
          else
            removeAttrs m2 [
              "_file"
              "_class"
              "key"
              "imports"
              "meta"
              "disabledModules"
            ];
      };
    in
    if structured && extra != [ ] then
      throw "Module `${toString f}' has an unsupported attribute `${builtins.head extra}'."
    else
      [ this ] ++ concatMap (collect args f) (m2.imports or [ ]);

  # Option declarations of all modules, merged into one tree.
  mergeDecls =
    a: b:
    a
    // mapAttrs (
      n: v:
      if a ? ${n} then
        if lib.isOption v || lib.isOption a.${n} then
          throw "The option `${n}' is declared twice."
        else
          mergeDecls a.${n} v
      else
        v
    ) b;

  evalModules =
    {
      modules,
      specialArgs ? { },
      prefix ? [ ],
    }:
    let
      args = {
        inherit lib config options;
      }
      // specialArgs;
      all = concatMap (collect args "<unknown>") modules;
      options = foldl' mergeDecls { } (map (m: m.options) all);
      config = evalLevel prefix options (
        map (m: {
          inherit (m) file;
          value = m.config;
        }) all
      );
    in
    {
      inherit config options;
    };

  mkOptionType =
    {
      name,
      description ? name,
      check ? (_: true),
      merge ? mergeEqual,
      ...
    }@t:
    t
    // {
      _type = "option-type";
      inherit
        name
        description
        check
        merge
        ;
    };

  mergeEqual =
    loc: defs:
    let
      first = (builtins.head defs).value;
    in
    if lib.all (d: d.value == first) defs then
      first
    else
      throw "The option `${showLoc loc}' has conflicting definition values in ${showFiles defs}.";

  mergeOne =
    loc: defs:
    if builtins.length defs == 1 then
      (builtins.head defs).value
    else
      throw "The unique option `${showLoc loc}' is defined multiple times in ${showFiles defs}.";

  simple =
    name: check:
    mkOptionType {
      inherit name check;
    };

  attrsWith =
    name: elemType:
    mkOptionType {
      name = "${name}Of";
      description = "attribute set of (${elemType.description})";
      check = isAttrs;
      merge =
        loc: defs:
        let
          names = lib.unique (concatMap (d: attrNames d.value) defs);
          results = map (n: {
            name = n;
            r = evalOption (loc ++ [ n ]) { type = elemType; } (
              concatMap (d: if d.value ? ${n} then [ { inherit (d) file; value = d.value.${n}; } ] else [ ]) defs
            );
          }) names;
        in
        listToAttrs (
          concatMap (
            x:
            if x.r == null then
              [ ]
            else
              [
                {
                  inherit (x) name;
                  value = x.r.value;
                }
              ]
          ) results
        );
    };

  types = rec {
    inherit mkOptionType;
    unspecified = simple "unspecified" (_: true);
    anything = mkOptionType {
      name = "anything";
      merge =
        loc: defs:
        if lib.all (d: isAttrs d.value && !(lib.isDerivation d.value)) defs then
          foldl' lib.recursiveUpdate { } (map (d: d.value) defs)
        else
          mergeEqual loc defs;
    };
    raw = mkOptionType {
      name = "raw";
      merge = mergeOne;
    };
    bool = simple "bool" isBool;
    int = simple "int" isInt;
    float = simple "float" isFloat;
    str = simple "str" isString;
    singleLineStr = simple "singleLineStr" (x: isString x && builtins.match ".*\n.*" x == null);
    lines = mkOptionType {
      name = "lines";
      check = isString;
      merge = _: defs: builtins.concatStringsSep "\n" (map (d: d.value) defs);
    };
    path = simple "path" (
      x: isPath x || lib.isDerivation x || (isString x && builtins.substring 0 1 x == "/")
    );
    package = simple "package" (
      x: lib.isDerivation x || (isString x && lib.hasPrefix builtins.storeDir x)
    );
    passwdEntry = t: addCheck t (x: isString x && builtins.match ".*[:\n].*" x == null);
    enum =
      values:
      simple "enum" (x: builtins.elem x values)
      // {
        description = "one of ${builtins.concatStringsSep ", " (map builtins.toJSON values)}";
      };
    port = ints.between 0 65535;
    ints = {
      positive = simple "positiveInt" (x: isInt x && x > 0);
      unsigned = simple "unsignedInt" (x: isInt x && x >= 0);
      between =
        lo: hi:
        simple "intBetween" (x: isInt x && x >= lo && x <= hi)
        // {
          description = "integer between ${toString lo} and ${toString hi} (both inclusive)";
        };
    };
    numbers.positive = simple "positive number" ((x: (isInt x || isFloat x) && x > 0));
    addCheck =
      t: f:
      t
      // {
        check = x: t.check x && f x;
      };
    nullOr =
      t:
      mkOptionType {
        name = "nullOr";
        description = "null or ${t.description}";
        check = x: x == null || t.check x;
        merge =
          loc: defs:
          if lib.all (d: d.value == null) defs then
            null
          else if lib.any (d: d.value == null) defs then
            throw "The option `${showLoc loc}' is defined both null and not null, in ${showFiles defs}."
          else
            t.merge loc defs;
      };
    either =
      a: b:
      mkOptionType {
        name = "either";
        description = "${a.description} or ${b.description}";
        check = x: a.check x || b.check x;
        merge = loc: defs: if lib.all (d: a.check d.value) defs then a.merge loc defs else b.merge loc defs;
      };
    oneOf = ts: foldl' either (builtins.head ts) (builtins.tail ts);
    listOf =
      t:
      mkOptionType {
        name = "listOf";
        description = "list of ${t.description}";
        check = isList;
        merge =
          loc: defs:
          concatMap (
            d:
            map (
              x:
              if t.check x then
                x
              else
                throw "A definition for option `${showLoc loc}' has an element that is not of type `${t.description}'. Definition value in ${toString d.file}."
            ) d.value
          ) defs;
      };
    attrsOf = attrsWith "attrs";
    lazyAttrsOf = attrsWith "lazyAttrs";
    submodule =
      m:
      mkOptionType {
        name = "submodule";
        check = x: isAttrs x || isFunction x;
        merge =
          loc: defs:
          (evalModules {
            modules = [ m ] ++ map (d: { _file = d.file; config = d.value; }) defs;
            specialArgs.name = lib.last loc;
            prefix = loc;
          }).config;
      };
    # A module given as a value: kept, for the stand-in test driver.
    deferredModule = mkOptionType {
      name = "deferredModule";
      check = x: isAttrs x || isFunction x || isPath x;
      merge = _: defs: { imports = map (d: d.value) defs; };
    };
  };
in
{
  inherit evalModules types;
}

# The NixOS side the module meets: the option declarations it defines or
# reads (names and types as NixOS declares them), the module arguments
# (`utils`), the unit text systemd would get, and a stand-in for the test
# driver's runTest. Read in:
#   nixos/modules/misc/assertions.nix           assertions, warnings
#   nixos/modules/config/system-path.nix        environment.systemPackages
#   nixos/modules/config/users-groups.nix       users.users.<name>.{…, uid, linger, autoSubUidGidRange}, users.groups
#   nixos/modules/system/boot/systemd/tmpfiles.nix  systemd.tmpfiles.rules
#   nixos/lib/systemd-unit-options.nix          systemd.services.<name>.* (unitOption: lists repeat, others merge equal)
#   nixos/lib/utils.nix                         escapeSystemdExecArgs: toJSON, then % -> %%, $ -> $$
#   nixos/modules/virtualisation/docker.nix     virtualisation.docker.enable (docker.service, group docker, /run/docker.sock)
#   nixos/modules/virtualisation/podman/default.nix  virtualisation.podman.enable (user podman.socket for every user)
#   nixos/modules/virtualisation/qemu-vm.nix    virtualisation.{memorySize,diskSize,cores} (test nodes)
#   nixos/lib/testing/*.nix                     the test options (name, nodes, testScript, …)
{ lib, pkgs }:
let
  inherit (lib) mkOption types;
  opt = type: default: mkOption { inherit type default; };
  listOfStr = opt (types.listOf types.str) [ ];

  unitOption = lib.mkOptionType {
    name = "systemd option";
    check = x: builtins.isBool x || builtins.isInt x || builtins.isString x || builtins.isList x || builtins.isPath x || lib.isDerivation x;
    merge =
      loc: defs:
      if builtins.isList (builtins.head defs).value then
        builtins.concatMap (d: d.value) defs
      else if lib.all (d: d.value == (builtins.head defs).value) defs then
        (builtins.head defs).value
      else
        throw "The option `${builtins.concatStringsSep "." loc}' has conflicting definitions.";
  };

  service = {
    options = {
      enable = opt types.bool true;
      description = opt types.singleLineStr "";
      documentation = listOfStr;
      wantedBy = listOfStr;
      requiredBy = listOfStr;
      aliases = listOfStr;
      requires = listOfStr;
      wants = listOfStr;
      after = listOfStr;
      before = listOfStr;
      bindsTo = listOfStr;
      partOf = listOfStr;
      conflicts = listOfStr;
      requisite = listOfStr;
      onFailure = listOfStr;
      unitConfig = opt (types.attrsOf unitOption) { };
      serviceConfig = opt (types.attrsOf unitOption) { };
      environment = opt (types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]))) { };
      path = opt (types.listOf (types.oneOf [ types.package types.str ])) [ ];
      script = opt types.lines "";
      preStart = opt types.lines "";
      postStart = opt types.lines "";
      preStop = opt types.lines "";
      postStop = opt types.lines "";
      restartIfChanged = opt types.bool true;
      reloadIfChanged = opt types.bool false;
      stopIfChanged = opt types.bool true;
      restartTriggers = opt (types.listOf types.unspecified) [ ];
      startAt = opt (types.either types.str (types.listOf types.str)) [ ];
    };
  };

  user = {
    options = {
      enable = opt types.bool true;
      name = opt types.str "";
      description = opt types.str "";
      uid = opt (types.nullOr types.int) null;
      isSystemUser = opt types.bool false;
      isNormalUser = opt types.bool false;
      group = opt types.str "";
      extraGroups = listOfStr;
      home = opt types.path "/var/empty";
      createHome = opt types.bool false;
      linger = opt (types.nullOr types.bool) null;
      autoSubUidGidRange = opt types.bool false;
    };
  };

  declarations = {
    options = {
      assertions = opt (types.listOf types.unspecified) [ ];
      warnings = listOfStr;
      environment.systemPackages = opt (types.listOf types.package) [ ];
      users.users = opt (types.attrsOf (types.submodule user)) { };
      users.groups = opt (types.attrsOf (types.submodule {
        options.gid = opt (types.nullOr types.int) null;
        options.members = listOfStr;
      })) { };
      systemd.tmpfiles.rules = listOfStr;
      systemd.services = opt (types.attrsOf (types.submodule service)) { };
      virtualisation.docker.enable = opt types.bool false;
      virtualisation.podman.enable = opt types.bool false;
      virtualisation.podman.dockerSocket.enable = opt types.bool false;
      virtualisation.memorySize = opt types.int 1024;
      virtualisation.diskSize = opt types.int 1024;
      virtualisation.cores = opt types.int 1;
    };
  };

  utils = {
    escapeSystemdExecArg =
      arg:
      let
        s =
          if builtins.isPath arg || builtins.isString arg || lib.isDerivation arg then
            "${arg}"
          else if builtins.isInt arg || builtins.isFloat arg then
            toString arg
          else
            throw "escapeSystemdExecArg only allows strings, paths, numbers and derivations";
      in
      builtins.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON s);
    escapeSystemdExecArgs = lib.concatMapStringsSep " " utils.escapeSystemdExecArg;
  };

  # systemd-lib's rendering: a list is one line per element, a bool
  # true/false, the rest its string.
  toValue = v: if builtins.isBool v then (if v then "true" else "false") else toString v;
  section =
    name: attrs:
    "[${name}]\n"
    + lib.concatMapStrings (
      k:
      let
        v = attrs.${k};
      in
      lib.concatMapStrings (x: "${k}=${toValue x}\n") (lib.toList v)
    ) (builtins.attrNames attrs);
  unitText =
    s:
    section "Unit" (
      lib.filterAttrs (_: v: v != [ ] && v != "") {
        Description = s.description;
        After = s.after;
        Before = s.before;
        Requires = s.requires;
        Wants = s.wants;
        BindsTo = s.bindsTo;
        PartOf = s.partOf;
      }
      // s.unitConfig
    )
    + section "Service" (
      {
        Environment = lib.mapAttrsToList (k: v: builtins.toJSON "${k}=${toString v}") (
          lib.filterAttrs (_: v: v != null) s.environment
        );
      }
      // s.serviceConfig
    )
    + section "Install" { WantedBy = s.wantedBy; };

  eval =
    modules:
    let
      r = lib.evalModules {
        modules = [ declarations ] ++ modules;
        specialArgs = { inherit pkgs utils; };
      };
    in
    r
    // {
      units = builtins.mapAttrs (_: unitText) r.config.systemd.services;
      failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) r.config.assertions);
    };

  testOptions = [
    "name"
    "nodes"
    "testScript"
    "defaults"
    "extraBaseModules"
    "extraPythonPackages"
    "skipLint"
    "skipTypeCheck"
    "globalTimeout"
    "enableOCR"
    "interactive"
    "meta"
  ];
in
{
  inherit eval utils;

  runTest =
    test:
    let
      t = if builtins.isFunction test then test { inherit lib pkgs; } else test;
      unknown = builtins.filter (n: !(builtins.elem n testOptions)) (builtins.attrNames t);
      nodes = builtins.mapAttrs (_: node: eval [ node ]) (t.nodes or { });
      nodeFacts = builtins.mapAttrs (
        name: n:
        if n.failedAssertions != [ ] then
          throw "test ${t.name}, node ${name}: failed assertions: ${builtins.concatStringsSep "; " n.failedAssertions}"
        else
          n.units
      ) nodes;
    in
    if unknown != [ ] then
      throw "runNixOSTest: `${builtins.head unknown}' is not a test option"
    else
      pkgs.stdenv.mkDerivation {
        name = "vm-test-run-${t.name}";
        testScript = t.testScript;
        nodeUnits = builtins.toJSON nodeFacts;
        requiredSystemFeatures = [
          "nixos-test"
          "kvm"
        ];
      };
}

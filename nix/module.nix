# services.safeclaw: `safeclaw run` in the foreground under systemd. It
# unlocks the vault with a password systemd hands over as a credential,
# starts the hardened container through the engine's socket, streams the
# gateway's logs to the journal, and on stop seals the state into the
# vault's next generation.
#
# The flake exports this file as nixosModules.default. It needs nothing
# from the flake: the default package is built with the system's own
# nixpkgs (pkgs.callPackage ./packages.nix), not taken from the flake's.
{
  config,
  lib,
  pkgs,
  utils,
  ...
}:
let
  cfg = config.services.safeclaw;
  constants = import ./constants.nix;
  inherit (lib)
    concatMap
    mkEnableOption
    mkIf
    mkMerge
    mkOption
    optionals
    optionalAttrs
    types
    ;

  # The home keeps safeclaw's records; the vault has a directory of its
  # own, the only one the container may write. Before that layout the
  # vault sat in the home itself: `safeclaw run` moves it on start.
  home = "/var/lib/safeclaw";
  defaultVault = "${home}/${constants.home_vault_dir}/${constants.vault_file}";
  legacyVault = "${home}/${constants.vault_file}";
  defaultUser = "safeclaw";

  uid = config.users.users.${cfg.user}.uid;
  userRuntimeDir = "/run/user/${toString uid}";

  # Everything that depends on the engine, in one place.
  engine =
    {
      docker = {
        enabled = config.virtualisation.docker.enable;
        option = "virtualisation.docker.enable";
        units = [ "docker.service" ];
        groups = [ "docker" ];
        socket = "/run/docker.sock";
        environment = { };
      };
      # Rootless: the service user's own Podman, served by its systemd
      # user manager (lingering, so it runs from boot), on the user's
      # podman.socket that virtualisation.podman enables for every user.
      podman = {
        enabled = config.virtualisation.podman.enable;
        option = "virtualisation.podman.enable";
        units = [ "user@${toString uid}.service" ];
        groups = [ ];
        socket = "${userRuntimeDir}/podman/podman.sock";
        environment.XDG_RUNTIME_DIR = userRuntimeDir;
      };
    }
    .${cfg.engine};

  args = [
    (lib.getExe cfg.package)
    "--no-progress"
    "run"
    "--name"
    cfg.containerName
    "--vault"
    cfg.vault
    "--memory-mib"
    cfg.memoryMiB
    "--cpus"
    cfg.cpus
    "--pids"
    cfg.pids
    "--checkpoint-interval"
    cfg.checkpointInterval
    "--keep-generations"
    cfg.keepGenerations
    "--drain"
    cfg.drain
  ]
  ++ optionals (cfg.egress != null) [
    "--egress"
    cfg.egress
  ]
  ++ [
    "--egress-network"
    cfg.egressNetwork
  ]
  ++ concatMap (h: [
    "--egress-host"
    h
  ]) cfg.egressHosts
  ++ optionals (cfg.egressCa != null) [
    "--egress-ca"
    (toString cfg.egressCa)
  ]
  ++ concatMap (s: [
    "--skill"
    (toString s)
  ]) cfg.skills
  ++ optionals (cfg.publish != null) [
    "--publish"
    cfg.publish
  ]
  ++ optionals (cfg.image != null) [
    "--image"
    cfg.image
  ]
  ++ optionals cfg.allowUnpinnedImage [ "--allow-unpinned-image" ]
  ++ cfg.extraFlags
  ++ [ "--password-file" ];
in
{
  options.services.safeclaw = {
    enable = mkEnableOption "the OpenClaw assistant gateway in a hardened container, its state sealed in a safeclaw vault";

    package = mkOption {
      type = types.package;
      default = (pkgs.callPackage ./packages.nix { }).safeclaw;
      defaultText = lib.literalExpression "safeclaw.packages.\${system}.safeclaw, built with this system's pkgs";
      description = ''
        safeclaw, wrapped with the image it runs: the wrapper names the
        image archive's store path, and safeclaw loads it into the engine
        and checks the engine's image before every start.
      '';
    };

    engine = mkOption {
      type = types.enum [
        "docker"
        "podman"
      ];
      default = "docker";
      description = ''
        The container engine safeclaw drives; it must be enabled
        ({option}`virtualisation.docker.enable` or
        {option}`virtualisation.podman.enable`).

        `"docker"`: the system's Docker daemon. The service user joins the
        `docker` group, and that socket is root-equivalent: whoever can
        use it can start a privileged container and own the host. The
        container's hardening keeps OpenClaw in; nothing keeps a
        compromised safeclaw process from the host.

        `"podman"`: rootless Podman as the service user, through the
        user's own `podman.socket` (the user lingers, so its systemd user
        manager runs from boot, and gets subordinate uid and gid ranges).
        No root-equivalent socket is involved. Needs a fixed
        {option}`users.users.<name>.uid` for the service user (the socket
        lives under `/run/user/<uid>`). Not yet tested on NixOS: see the
        warning it prints and docs/engines.md.
      '';
    };

    image = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "safeclaw/openclaw:2026.9.6";
      description = ''
        Run this image (ID or tag) instead of the package's pinned one.
        safeclaw refuses an image that is not the pinned one unless
        {option}`services.safeclaw.allowUnpinnedImage` is set.
      '';
    };

    allowUnpinnedImage = mkOption {
      type = types.bool;
      default = false;
      description = "Run {option}`services.safeclaw.image` even though it is not the pinned image.";
    };

    vault = mkOption {
      type = types.str;
      default = defaultVault;
      description = ''
        The vault holding OpenClaw's state (made by `safeclaw onboard`,
        `safeclaw vault create` or `safeclaw vault migrate`, as the service
        user). Its directory must be owned by the service user, mode 0700,
        and hold nothing else; older generations are kept next to it. The
        service does not start while the file is missing.
      '';
    };

    passwordFile = mkOption {
      type = types.str;
      example = "/run/agenix/safeclaw-password";
      description = ''
        A file whose first line is the vault password, outside the Nix
        store: an agenix or sops-nix secret, or a root-only file. systemd
        reads it (`LoadCredential`) and hands it to safeclaw in the unit's
        private credentials directory: never in the store, the environment
        or a command line.
      '';
    };

    containerName = mkOption {
      type = types.str;
      default = "openclaw";
      description = "The container's name (`safeclaw run --name`; for `safeclaw status`, `logs`, `exec`, `pair`).";
    };

    memoryMiB = mkOption {
      type = types.ints.positive;
      default = 2048;
      description = "The container's memory limit, in MiB (`--memory-mib`).";
    };

    cpus = mkOption {
      type = types.numbers.positive;
      default = 2;
      description = "The container's CPU limit, in cores, may be fractional (`--cpus`).";
    };

    pids = mkOption {
      type = types.ints.positive;
      default = 512;
      description = "The container's process limit (`--pids`).";
    };

    checkpointInterval = mkOption {
      type = types.ints.unsigned;
      default = 300;
      description = ''
        Seconds between checkpoints of the running state into the vault
        (`--checkpoint-interval`; 0: only on stop and after `safeclaw
        exec`/`pair`). A crash loses at most this much.
      '';
    };

    keepGenerations = mkOption {
      type = types.ints.positive;
      default = 5;
      description = "Older vault generations kept next to the vault (`--keep-generations`).";
    };

    drain = mkOption {
      type = types.ints.between 1 60;
      default = 30;
      description = "Seconds the gateway may drain after a stop before it is killed and its state sealed anyway (`--drain`).";
    };

    publish = mkOption {
      type = types.nullOr types.port;
      default = null;
      description = "Publish the gateway's port on 127.0.0.1 at this port, never on other addresses (`--publish`); it needs `egress = \"open\"` (a gateway with egress locked has no network).";
    };

    egress = mkOption {
      type = types.nullOr (
        types.enum [
          "locked"
          "open"
        ]
      );
      default = null;
      description = ''
        The egress firewall (`--egress`, docs/egress.md): `locked`, no
        network but a proxy that allows only the vault's policy (`safeclaw
        egress show/allow/deny`, as the service user, while it is stopped);
        `open`, a route to anywhere (audited). null: the vault's policy,
        locked unless it says open.
      '';
    };

    egressNetwork = mkOption {
      type = types.str;
      default = "bridge";
      description = "The network the egress proxy reaches the world through (`--egress-network`; a bridge network, never host or none).";
    };

    egressHosts = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "llm.lan:192.168.1.10" ];
      description = "NAME:ADDR entries for the egress proxy's name lookups (`--egress-host`), as in /etc/hosts.";
    };

    egressCa = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/etc/ssl/corporate-ca.pem";
      description = "PEM certificates the egress proxy's credential broker trusts besides the system's roots (`--egress-ca`), for the hosts it puts the vault's secrets into (docs/secrets.md).";
    };

    skills = mkOption {
      type = types.listOf types.path;
      default = [ ];
      example = lib.literalExpression ''
        [
          (pkgs.fetchFromGitHub {
            owner = "example";
            repo = "prompt-defence-skill";
            rev = "<a commit you read>";
            hash = "sha256-...";
          })
        ]
      '';
      description = ''
        Skill directories (each with a `SKILL.md`), pinned by hash in the
        vault before each start (`--skill`) and mounted read-only into the
        container: derivations pinned by their own hash, such as
        `fetchFromGitHub`, so nothing is fetched at run time. A skill
        dropped from this list stays pinned until `safeclaw skills remove`
        (docs/skills.md).
      '';
    };

    extraFlags = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [
        "--share"
        "/srv/notes:/data/notes"
      ];
      description = "More `safeclaw run` flags.";
    };

    user = mkOption {
      type = types.str;
      default = defaultUser;
      description = ''
        The user safeclaw runs as. The module creates the default user
        (with the engine's group, or for Podman lingering and subordinate
        ids); another user is yours to create and give the same.
      '';
    };

    group = mkOption {
      type = types.str;
      default = defaultUser;
      description = "The service user's group (created with the default user).";
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions = [
        {
          assertion = engine.enabled;
          message = "services.safeclaw.engine = \"${cfg.engine}\" needs ${engine.option} = true.";
        }
        {
          assertion = cfg.publish != null -> cfg.egress == "open";
          message = "services.safeclaw.publish needs services.safeclaw.egress = \"open\": with egress locked the gateway has no network to publish a port on (docs/egress.md).";
        }
        {
          assertion = cfg.engine == "podman" -> uid != null;
          message = "services.safeclaw.engine = \"podman\" needs a fixed uid for the service user: set users.users.${cfg.user}.uid (its Podman socket is under /run/user/<uid>).";
        }
      ];
      warnings = optionals (cfg.engine == "podman") [
        "services.safeclaw.engine = \"podman\" has not been tested on NixOS yet; safeclaw's Podman support is partial (docs/engines.md: the Nix image's load through Podman's API, health checks)."
      ];

      # For the admin: onboard, status, logs, pair (as the service user).
      environment.systemPackages = [ cfg.package ];

      # One owner of the home and the vault's directory: they exist from
      # boot, so the first onboarding (as the service user, before the
      # unit ever ran) has somewhere to write.
      systemd.tmpfiles.rules = [
        "d ${home} 0700 ${cfg.user} ${cfg.group} -"
        "d ${dirOf cfg.vault} 0700 ${cfg.user} ${cfg.group} -"
      ];

      systemd.services.safeclaw = {
        description = "OpenClaw in a hardened container, state sealed in a safeclaw vault";
        wantedBy = [ "multi-user.target" ];
        after = engine.units;
        requires = engine.units;
        # "|": either one (systemd.unit(5)); a vault of the old layout is
        # moved into place by the first start.
        unitConfig.ConditionPathExists =
          if cfg.vault == defaultVault then
            [
              "|${cfg.vault}"
              "|${legacyVault}"
            ]
          else
            cfg.vault;

        environment = {
          ${constants.env_home} = home;
          HOME = home;
          DOCKER_HOST = "unix://${engine.socket}";
        }
        // engine.environment;

        serviceConfig = {
          # utils.escapeSystemdExecArgs (nixos/lib/utils.nix) quotes for
          # systemd, not for a shell, and doubles % and $; the credential
          # path is appended as is, so systemd expands %d (its
          # credentials directory, systemd.unit(5) "Specifiers").
          ExecStart = "${utils.escapeSystemdExecArgs args} %d/password";
          LoadCredential = [ "password:${cfg.passwordFile}" ];
          User = cfg.user;
          Group = cfg.group;
          UMask = "0077";

          # systemctl stop: SIGTERM to safeclaw only; it stops the
          # container, giving the engine the stop budget (the gateway
          # drains, the guard seals), and exits. Give it that budget and
          # time to report.
          KillMode = "mixed";
          TimeoutStopSec = constants.stop_budget_secs + 30;
          Restart = "on-failure";
          RestartSec = 10;

          # Hardening that still lets it reach the engine's socket:
          # connecting to a Unix socket needs no write access to its file
          # system, so the read-only views keep it usable.
          NoNewPrivileges = true;
          ProtectSystem = "strict";
          ReadWritePaths = lib.unique [
            home
            (dirOf cfg.vault)
          ];
          # Podman's socket is under /run/user, which `true` would hide.
          ProtectHome = if cfg.engine == "podman" then "read-only" else true;
          PrivateTmp = true;
          PrivateDevices = true;
          ProtectKernelTunables = true;
          ProtectKernelModules = true;
          ProtectKernelLogs = true;
          ProtectControlGroups = true;
          ProtectClock = true;
          ProtectHostname = true;
          ProtectProc = "invisible";
          RestrictNamespaces = true;
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          CapabilityBoundingSet = "";
          AmbientCapabilities = "";
          RestrictAddressFamilies = [
            "AF_UNIX"
            "AF_INET"
            "AF_INET6"
          ];
          SystemCallArchitectures = "native";
          SystemCallFilter = [
            "@system-service"
            "~@privileged"
          ];
        };
      };
    }

    # The default user is the module's; another is the admin's.
    (mkIf (cfg.user == defaultUser) {
      users.users.${defaultUser} = {
        isSystemUser = true;
        inherit (cfg) group;
        extraGroups = engine.groups;
        inherit home;
      }
      // optionalAttrs (cfg.engine == "podman") {
        linger = true;
        autoSubUidGidRange = true;
      };
    })
    (mkIf (cfg.group == defaultUser) {
      users.groups.${defaultUser} = { };
    })
  ]);
}

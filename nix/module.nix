# services.safeclaw: `safeclaw run` in the foreground under systemd. It
# unlocks the vault with a password systemd hands over as a credential,
# starts the hardened container through the engine socket, streams the
# gateway's logs to the journal, and on stop seals the state into the
# vault's next generation.
self:
{ config, lib, pkgs, ... }:
let
  cfg = config.services.safeclaw;
  inherit (lib) mkEnableOption mkIf mkOption optionals types;

  # The home keeps safeclaw's records; the vault has a directory of its
  # own, the only one the container may write. Before that layout the
  # vault sat in the home itself: `safeclaw run` moves it on start.
  home = "/var/lib/safeclaw";
  defaultVault = "${home}/vault/openclaw.vault";
  legacyVault = "${home}/openclaw.vault";

  args = [
    "${cfg.package}/bin/safeclaw"
    "--no-progress"
    "run"
    "--name"
    cfg.containerName
    "--vault"
    cfg.vault
    # %d: systemd's credentials directory (systemd.unit(5), "Specifiers").
    "--password-file"
    "%d/password"
    "--memory-mib"
    (toString cfg.memoryMiB)
    "--cpus"
    (toString cfg.cpus)
    "--pids"
    (toString cfg.pids)
    "--checkpoint-interval"
    (toString cfg.checkpointInterval)
    "--keep-generations"
    (toString cfg.keepGenerations)
    "--drain"
    (toString cfg.drainSeconds)
  ]
  ++ optionals (cfg.publish != null) [ "--publish" (toString cfg.publish) ]
  ++ optionals (cfg.image != null) [ "--image" cfg.image ]
  ++ optionals cfg.allowUnpinnedImage [ "--allow-unpinned-image" ]
  ++ cfg.extraFlags;
in
{
  options.services.safeclaw = {
    enable = mkEnableOption "the OpenClaw assistant gateway in a hardened container, its state sealed in a safeclaw vault";

    package = mkOption {
      type = types.package;
      default = self.packages.${pkgs.stdenv.hostPlatform.system}.safeclaw;
      defaultText = lib.literalExpression "safeclaw.packages.\${system}.safeclaw";
      description = ''
        safeclaw, wrapped with the image it runs: the wrapper names the
        image archive's store path, and safeclaw loads it into the engine
        and checks the engine's image ID before every start.
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
        user). Its directory must be owned by the service user, mode 0700;
        older generations are kept next to it. The service does not start
        while the file is missing.
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
      description = "The container's name (for `safeclaw status`, `logs`, `exec`, `pair`).";
    };

    memoryMiB = mkOption {
      type = types.ints.positive;
      default = 2048;
      description = "The container's memory limit, in MiB.";
    };

    cpus = mkOption {
      type = types.numbers.positive;
      default = 2;
      description = "The container's CPU limit, in cores (may be fractional).";
    };

    pids = mkOption {
      type = types.ints.positive;
      default = 512;
      description = "The container's process limit.";
    };

    checkpointInterval = mkOption {
      type = types.ints.unsigned;
      default = 300;
      description = ''
        Seconds between checkpoints of the running state into the vault
        (0: only on stop and after `safeclaw exec`/`pair`). A crash loses at
        most this much.
      '';
    };

    keepGenerations = mkOption {
      type = types.ints.positive;
      default = 5;
      description = "Older vault generations kept next to the vault.";
    };

    drainSeconds = mkOption {
      type = types.ints.between 1 60;
      default = 30;
      description = "Seconds the gateway may drain after a stop before it is killed and its state sealed anyway.";
    };

    publish = mkOption {
      type = types.nullOr types.port;
      default = null;
      description = "Publish the gateway's port on 127.0.0.1 at this port (never on other addresses).";
    };

    extraFlags = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--share" "/srv/notes:/data/notes" ];
      description = "More `safeclaw run` flags.";
    };

    user = mkOption {
      type = types.str;
      default = "safeclaw";
      description = ''
        The user safeclaw runs as. It is put in the `docker` group to reach
        the engine socket (which is root-equivalent on the host: the
        container hardening is what keeps OpenClaw in).
      '';
    };

    group = mkOption {
      type = types.str;
      default = "safeclaw";
      description = "The service user's group.";
    };
  };

  config = mkIf cfg.enable {
    # Docker's socket at /run/docker.sock. Podman: set
    # virtualisation.podman.dockerSocket.enable and DOCKER_HOST (README).
    virtualisation.docker.enable = lib.mkDefault true;
    # For the admin: onboard, status, logs, pair (as the service user).
    environment.systemPackages = [ cfg.package ];

    users.users.${cfg.user} = {
      isSystemUser = true;
      inherit (cfg) group;
      extraGroups = [ "docker" ];
      inherit home;
    };
    users.groups.${cfg.group} = { };

    # The vault's directory exists from boot, so the first onboarding (as
    # the service user, before the unit ever ran) has somewhere to write.
    systemd.tmpfiles.rules = [
      "d ${home} 0700 ${cfg.user} ${cfg.group} -"
      "d ${dirOf cfg.vault} 0700 ${cfg.user} ${cfg.group} -"
    ];

    systemd.services.safeclaw = {
      description = "OpenClaw in a hardened container, state sealed in a safeclaw vault";
      wantedBy = [ "multi-user.target" ];
      after = [ "docker.service" "network-online.target" ];
      requires = [ "docker.service" ];
      wants = [ "network-online.target" ];
      # "|": either one (systemd.unit(5)); a vault of the old layout is
      # moved into place by the first start.
      unitConfig.ConditionPathExists =
        if cfg.vault == defaultVault then [ "|${cfg.vault}" "|${legacyVault}" ] else cfg.vault;

      environment = {
        SAFECLAW_HOME = home;
        HOME = home;
      };

      serviceConfig = {
        ExecStart = lib.escapeShellArgs args;
        LoadCredential = [ "password:${cfg.passwordFile}" ];
        User = cfg.user;
        Group = cfg.group;
        StateDirectory = "safeclaw";
        StateDirectoryMode = "0700";
        UMask = "0077";

        # systemctl stop: SIGTERM to safeclaw only; it stops the container
        # (the gateway drains, the guard seals) and exits. Give it the
        # drain time and the seal.
        KillMode = "mixed";
        TimeoutStopSec = cfg.drainSeconds + 90;
        Restart = "on-failure";
        RestartSec = 10;

        # Hardening that still lets it reach the engine socket: connecting
        # to a Unix socket needs no write access to its file system, so
        # ProtectSystem = "strict" keeps /run/docker.sock usable.
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ReadWritePaths = [ (dirOf cfg.vault) ];
        ProtectHome = true;
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
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" "~@privileged" ];
      };
    };
  };
}

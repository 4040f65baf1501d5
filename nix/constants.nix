# The values the Rust code and the flake share, from the one file both read
# (../constants.toml; the Rust side through build.rs).
builtins.fromTOML (builtins.readFile ../constants.toml)

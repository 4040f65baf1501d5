//! Shared by the tests and the runtime benchmark (`#[path]`), which do
//! not share the rest of `common`.

/// OpenClaw's onboarding without a terminal, as the README gives it: after
/// `--` on `safeclaw onboard` or `up` (the real OpenClaw's tests).
pub const ONBOARD_NON_INTERACTIVE: [&str; 14] = [
    "--",
    "--non-interactive",
    "--accept-risk",
    "--mode",
    "local",
    "--auth-choice",
    "skip",
    "--skip-channels",
    "--skip-health",
    "--skip-daemon",
    "--skip-search",
    "--skip-skills",
    "--skip-ui",
    "--skip-hooks",
];

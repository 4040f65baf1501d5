//! Every environment variable safeclaw reads, in one place. None of them
//! carries a secret: passwords never travel in the environment.

/// Disables colour when set to a non-empty value (https://no-color.org).
pub const NO_COLOR: &str = "NO_COLOR";

//! All output goes through a `Printer`: results on stdout (text or
//! `--json`), warnings, progress and errors on stderr. Colour only on a
//! terminal and never with NO_COLOR; progress bars only on a terminal.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::Error;

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub json: bool,
    pub quiet: bool,
    progress: bool,
    color: bool,
}

impl Printer {
    pub fn new(json: bool, quiet: bool, no_progress: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os(crate::env_vars::NO_COLOR).is_some_and(|v| !v.is_empty());
        Printer {
            json,
            quiet,
            progress: tty && !quiet && !no_progress,
            color: tty && !no_color,
        }
    }

    /// Colour for a result on stdout: a terminal there, and no NO_COLOR.
    pub fn stdout_color(&self) -> bool {
        !self.json
            && std::io::stdout().is_terminal()
            && !std::env::var_os(crate::env_vars::NO_COLOR).is_some_and(|v| !v.is_empty())
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// A byte-counting progress bar on stderr (hidden when not a terminal).
    pub fn bar(&self, total: u64, message: &'static str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let template = if self.color {
            "{msg:>10} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec} {eta}"
        } else {
            "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("template is valid")
                .progress_chars("=> "),
        );
        bar.set_message(message);
        bar
    }

    /// A spinner for work of unknown length (key derivation).
    pub fn spinner(&self, message: &'static str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("template is valid"));
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    pub fn warn(&self, message: &str) {
        eprintln!("{} {message}", self.paint("1;33", "warning:"));
    }

    /// Information for people, on stderr so stdout stays the result.
    pub fn note(&self, message: &str) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// The command's result: text, or the JSON value with `--json`.
    pub fn result(&self, text: &str, json: serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = if self.json {
            writeln!(out, "{json:#}")
        } else if !text.is_empty() {
            writeln!(out, "{text}")
        } else {
            Ok(())
        };
    }

    pub fn error(&self, e: &Error) {
        eprintln!("{} {}", self.paint("1;31", "error:"), e.message);
        if let Some(hint) = &e.hint {
            eprintln!("  {} {hint}", self.paint("1;36", "hint:"));
        }
        // An audit's JSON report already says it failed: one document.
        if self.json && e.class != crate::error::Class::AuditFailed {
            let value = serde_json::json!({
                "ok": false,
                "error": { "class": e.class.name(), "exit_code": e.exit_code(),
                           "message": e.message, "hint": e.hint },
            });
            println!("{value:#}");
        }
    }
}

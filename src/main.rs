#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

use safeclaw::cli::Cli;
use safeclaw::printer::Printer;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The guard's SIGTERM means "stop the gateway, then seal", not "cancel":
    // it handles its signals itself.
    if !matches!(cli.command, safeclaw::cli::Command::Guard { .. }) {
        safeclaw::interrupt::install();
    }
    let printer = Printer::new(cli.json, cli.quiet, cli.no_progress);
    // Every command may hold a password or a data key (`run` for days):
    // before any is read, no core dumps and no ptrace by the same user.
    if let Err(e) = safeclaw::no_dumps::forbid() {
        printer.error(&e);
        return ExitCode::from(e.exit_code());
    }
    match safeclaw::commands::run(cli.command, cli.engine, &printer) {
        Ok(status) => ExitCode::from(status.code()),
        Err(e) => {
            printer.error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

//! One module per command, each a `run(args, printer)`.

mod audit;
mod egress;
pub mod exec;
mod image;
mod onboard;
mod start;
mod stop;
mod tty_exec;
mod up;
mod vault_create;
mod vault_export;
mod vault_info;
mod vault_migrate;
mod vault_passwd;
mod vault_verify;

use crate::cli::{Command, EgressCommand, ImageCommand, VaultCommand};
use crate::error::Result;
use crate::password::{self, Confirm, Password, Source};
use crate::printer::Printer;
use crate::vault::crypto::DataKey;
use crate::vault::VaultFile;

pub fn run(command: Command, printer: &Printer) -> Result<()> {
    match command {
        Command::Vault(VaultCommand::Create(args)) => vault_create::run(args, printer),
        Command::Vault(VaultCommand::Info(args)) => vault_info::run(args, printer),
        Command::Vault(VaultCommand::Verify(args)) => vault_verify::run(args, printer),
        Command::Vault(VaultCommand::Export(args)) => vault_export::run(args, printer),
        Command::Vault(VaultCommand::Passwd(args)) => vault_passwd::passwd(args, printer),
        Command::Vault(VaultCommand::Rekey(args)) => vault_passwd::rekey(args, printer),
        Command::Vault(VaultCommand::Migrate(args)) => vault_migrate::run(args, printer),
        Command::Vault(VaultCommand::Generations(args)) => vault_info::generations(args, printer),
        Command::Up(args) => up::run(args, printer),
        Command::Onboard(args) => onboard::run(args, printer),
        Command::Start(args) => start::run(args, printer),
        Command::Stop(args) => stop::stop(args, printer),
        Command::Status(args) => stop::status(args, printer),
        Command::Run(args) => start::run_foreground(args, printer),
        Command::Logs(args) => exec::logs(args, printer),
        Command::Exec(args) => exec::exec(args, printer),
        Command::Pair(command) => exec::pair(command, printer),
        Command::Image(ImageCommand::Build(args)) => image::build(args, printer),
        Command::Image(ImageCommand::Load(args)) => image::load(args, printer),
        Command::Image(ImageCommand::Show) => image::show(printer),
        Command::Audit(args) => audit::run(args, printer),
        Command::Egress(EgressCommand::Serve(args)) => egress::serve(args),
        Command::Egress(EgressCommand::Relay(args)) => egress::relay(args),
        Command::Egress(EgressCommand::Log(args)) => egress::log(args, printer),
        Command::Idle => std::process::exit(crate::guard::idle()),
        Command::WriteSecret { path } => crate::guard::write_secret(&path),
        Command::Guard(args) => std::process::exit(crate::guard::run(args.into())),
        Command::Health => std::process::exit(crate::guard::health(
            crate::container_spec::GATEWAY_HEALTH_ADDR,
        )),
    }
}

/// Reads a password, warning when its file is readable by other users.
/// A new vault password: asked twice on a prompt, read once from a file
/// or stdin.
fn read_new_password(source: &Source, printer: &Printer) -> Result<Password> {
    read_password(source, "new vault password", Confirm::Twice, printer)
}

fn read_password(
    source: &Source,
    label: &str,
    confirm: Confirm,
    printer: &Printer,
) -> Result<Password> {
    warn_if_exposed(source, printer);
    let (password, warning) = password::read(source, label, confirm)?;
    if let Some(warning) = warning {
        printer.warn(&warning);
    }
    Ok(password)
}

/// Warns when a password file can be read by other users.
fn warn_if_exposed(source: &Source, printer: &Printer) {
    if let Source::File(path) = source {
        if let Some(warning) = crate::private_fs::exposure_warning(path) {
            printer.warn(&warning);
        }
    }
}

/// Asks for the password and unlocks, with a spinner while Argon2 runs.
/// Returns the data key and the index of the slot that opened.
fn unlock(vault: &VaultFile, source: &Source, printer: &Printer) -> Result<(DataKey, usize)> {
    let password = read_password(source, "vault password", Confirm::Once, printer)?;
    let spinner = printer.spinner("deriving key (Argon2id)");
    let result = vault.unlock(&password);
    spinner.finish_and_clear();
    result
}

//! One module per command, each a `run(args, printer)`.

mod audit;
pub mod exec;
mod image;
mod onboard;
mod start;
mod stop;
mod up;
mod vault_create;
mod vault_export;
mod vault_info;
mod vault_migrate;
mod vault_passwd;
mod vault_verify;

use crate::cli::{Command, ImageCommand, VaultCommand};
use crate::error::{ExitStatus, Result};
use crate::password::{self, Confirm, Password, Source};
use crate::printer::Printer;
use crate::runtime::engine::Engine;
use crate::vault::crypto::DataKey;
use crate::vault::VaultFile;

pub fn run(command: Command, engine_flag: Option<String>, printer: &Printer) -> Result<ExitStatus> {
    use crate::runtime::guard::{self, protocol::GuardSettings, tools};
    // One engine handle per command, for the commands that use one.
    let engine = || Engine::new(engine_flag.clone());
    let done = |r: Result<()>| r.map(|()| ExitStatus::Success);
    match command {
        Command::Vault(VaultCommand::Create(args)) => done(vault_create::run(args, printer)),
        Command::Vault(VaultCommand::Info(args)) => done(vault_info::run(args, printer)),
        Command::Vault(VaultCommand::Verify(args)) => done(vault_verify::run(args, printer)),
        Command::Vault(VaultCommand::Export(args)) => done(vault_export::run(args, printer)),
        Command::Vault(VaultCommand::Passwd(args)) => {
            done(vault_passwd::passwd(args, &engine()?, printer))
        }
        Command::Vault(VaultCommand::Rekey(args)) => {
            done(vault_passwd::rekey(args, &engine()?, printer))
        }
        Command::Vault(VaultCommand::Migrate(args)) => done(vault_migrate::run(args, printer)),
        Command::Vault(VaultCommand::Generations(args)) => {
            done(vault_info::generations(args, printer))
        }
        Command::Up(args) => done(up::run(args, &engine()?, printer)),
        Command::Onboard(args) => done(onboard::run(args, &engine()?, printer)),
        Command::Start(args) => done(start::run(args, &engine()?, printer)),
        Command::Stop(args) => done(stop::stop(args, &engine()?, printer)),
        Command::Status(args) => done(stop::status(args, &engine()?, printer)),
        Command::Run(args) => done(start::run_foreground(args, &engine()?, printer)),
        Command::Logs(args) => done(exec::logs(args, &engine()?, printer)),
        Command::Exec(args) => exec::exec(args, &engine()?, printer),
        Command::Pair(command) => exec::pair(command, &engine()?, printer),
        Command::Image(ImageCommand::Build(args)) => done(image::build(args, &engine()?, printer)),
        Command::Image(ImageCommand::Load(args)) => done(image::load(args, &engine()?, printer)),
        Command::Image(ImageCommand::Show) => done(image::show(&engine()?, printer)),
        Command::Audit(args) => done(audit::run(args, &engine()?, printer)),
        Command::Guard { args } => Ok(guard::run(&GuardSettings::parse(&args)?)),
        Command::Idle => Ok(tools::idle()),
        Command::WriteSecret { path } => tools::write_secret(&path),
        Command::Health => Ok(tools::health(crate::runtime::layout::GATEWAY_HEALTH_ADDR)),
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

//! The commands: `settings.rs` resolves the command line once (every path
//! absolute, every default), then each command's file, named after it,
//! does its work through `runtime/`, `image/` and `vault/`, and says what
//! it did through the `Printer`. Commands never call each other; steps
//! several of them take are in `shared.rs`. The result is an `ExitStatus`
//! (or an `Error`) that only `main` turns into an exit code.

mod audit;
mod exec;
mod image_build;
mod image_load;
mod image_show;
mod logs;
mod onboard;
mod pair;
mod run;
pub mod settings;
mod shared;
mod start;
mod status;
mod stop;
mod up;
mod vault_create;
mod vault_export;
mod vault_generations;
mod vault_info;
mod vault_migrate;
mod vault_passwd;
mod vault_verify;

use crate::cli::{Command, ImageCommand, VaultCommand};
use crate::error::{ExitStatus, Result};
use crate::printer::Printer;
use crate::runtime::engine::Engine;

pub fn run(command: Command, engine_flag: Option<String>, printer: &Printer) -> Result<ExitStatus> {
    use crate::runtime::guard::{self, protocol::GuardSettings, tools};
    use settings as s;
    // One engine handle per command, for the commands that use one; it
    // connects on its first request.
    let engine = || Engine::new(engine_flag.clone());
    let done = |r: Result<()>| r.map(|()| ExitStatus::Success);
    match command {
        Command::Vault(command) => match command {
            VaultCommand::Create(a) => {
                done(vault_create::run(s::VaultCreate::resolve(a)?, printer))
            }
            VaultCommand::Info(a) => done(vault_info::run(s::VaultInfo::resolve(a)?, printer)),
            VaultCommand::Verify(a) => {
                done(vault_verify::run(s::VaultVerify::resolve(a)?, printer))
            }
            VaultCommand::Export(a) => {
                done(vault_export::run(s::VaultExport::resolve(a)?, printer))
            }
            VaultCommand::Passwd(a) => done(vault_passwd::run(
                s::VaultRekey::passwd(a)?,
                &engine()?,
                printer,
            )),
            VaultCommand::Rekey(a) => done(vault_passwd::run(
                s::VaultRekey::rekey(a)?,
                &engine()?,
                printer,
            )),
            VaultCommand::Migrate(a) => {
                done(vault_migrate::run(s::VaultMigrate::resolve(a)?, printer))
            }
            VaultCommand::Generations(a) => {
                done(vault_generations::run(s::VaultInfo::resolve(a)?, printer))
            }
        },
        Command::Up(a) => done(up::run(s::Up::resolve(a)?, &engine()?, printer)),
        Command::Onboard(a) => done(onboard::run(s::Onboard::resolve(a)?, &engine()?, printer)),
        Command::Start(a) => done(start::run(s::Start::resolve(a)?, &engine()?, printer)),
        Command::Run(a) => done(run::run(s::Start::resolve(a)?, &engine()?, printer)),
        Command::Stop(a) => done(stop::run(s::Stop::resolve(a), &engine()?, printer)),
        Command::Status(a) => done(status::run(s::Status::resolve(a)?, &engine()?, printer)),
        Command::Logs(a) => done(logs::run(s::Logs::resolve(a), &engine()?)),
        Command::Exec(a) => exec::run(s::Exec::resolve(a), &engine()?),
        Command::Pair(a) => pair::run(s::Pair::resolve(a), &engine()?),
        Command::Image(command) => match command {
            ImageCommand::Build(a) => done(image_build::run(
                s::ImageBuild::resolve(a)?,
                &engine()?,
                printer,
            )),
            ImageCommand::Load(a) => done(image_load::run(
                s::ImageLoad::resolve(a)?,
                &engine()?,
                printer,
            )),
            ImageCommand::Show => done(image_show::run(&engine()?, printer)),
        },
        Command::Audit(a) => done(audit::run(s::Audit::resolve(a)?, &engine()?, printer)),
        // Inside the container: the guard reads its own protocol.
        Command::Guard { args } => Ok(guard::run(&GuardSettings::parse(&args)?)),
        Command::Idle => Ok(tools::idle()),
        Command::WriteSecret { path } => tools::write_secret(&path),
        Command::Health => Ok(tools::health(crate::runtime::layout::GATEWAY_HEALTH_ADDR)),
    }
}

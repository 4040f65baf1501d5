//! One module per command, each a `run(args, printer)`.

mod audit;
mod exec;
mod generations;
mod image;
mod logs;
mod onboard;
mod pair;
mod run;
mod settings;
mod shared;
mod start;
mod status;
mod stop;
mod up;
mod vault_create;
mod vault_export;
mod vault_info;
mod vault_migrate;
mod vault_passwd;
mod vault_verify;

use settings::bot_settings;

use crate::cli::{Command, ImageCommand, VaultCommand};
use crate::error::{ExitStatus, Result};
use crate::printer::Printer;
use crate::runtime::engine::Engine;

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
        Command::Vault(VaultCommand::Generations(args)) => done(generations::run(args, printer)),
        Command::Up(args) => done(up::run(args, &engine()?, printer)),
        Command::Onboard(args) => done(onboard::run(args, &engine()?, printer)),
        Command::Start(args) => done(start::run(args, &engine()?, printer)),
        Command::Stop(args) => done(stop::run(args, &engine()?, printer)),
        Command::Status(args) => done(status::run(args, &engine()?, printer)),
        Command::Run(args) => done(run::run(args, &engine()?, printer)),
        Command::Logs(args) => done(logs::run(args, &engine()?)),
        Command::Exec(args) => exec::run(args, &engine()?),
        Command::Pair(command) => pair::run(command, &engine()?),
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

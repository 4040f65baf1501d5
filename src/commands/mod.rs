//! The commands: `settings.rs` resolves the command line once (every path
//! absolute, every default), then each command's file, named after it,
//! does its work through `runtime/`, `image/` and `vault/`, and says what
//! it did through the `Printer`. Commands never call each other; steps
//! several of them take are in `shared.rs`. The result is an `ExitStatus`
//! (or an `Error`) that only `main` turns into an exit code.

mod audit;
mod egress;
mod egress_policy;
mod exec;
mod image_build;
mod image_list;
mod image_load;
mod image_lock;
mod image_prune;
mod image_show;
mod logs;
mod onboard;
mod pair;
mod rollback;
mod run;
mod secrets;
pub mod settings;
mod shared;
mod skills;
mod start;
mod status;
mod stop;
mod switch;
mod up;
mod upgrade;
mod vault_create;
mod vault_export;
mod vault_generations;
mod vault_info;
mod vault_migrate;
mod vault_passwd;
mod vault_verify;

use crate::cli::{
    Command, EgressCommand, ImageCommand, SecretsCommand, SkillsCommand, VaultCommand,
};
use crate::error::{ExitStatus, Result};
use crate::printer::Printer;
use crate::runtime::engine::Engine;

pub fn run(command: Command, engine_flag: Option<String>, printer: &Printer) -> Result<ExitStatus> {
    use crate::runtime::guard::{self, protocol::GuardSettings, tools};
    use settings::*;
    // The one engine handle of this command, made when it first needs it.
    let made = std::cell::OnceCell::new();
    let engine = || -> Result<&Engine> {
        match made.get() {
            Some(engine) => Ok(engine),
            None => {
                let engine = Engine::new(engine_flag.clone())?;
                Ok(made.get_or_init(|| engine))
            }
        }
    };
    let p = printer;
    let done = |r: Result<()>| r.map(|()| ExitStatus::Success);
    match command {
        Command::Vault(VaultCommand::Create(a)) => {
            done(vault_create::run(VaultCreate::resolve(a)?, p))
        }
        Command::Vault(VaultCommand::Info(a)) => done(vault_info::run(vault_file(a)?, p)),
        Command::Vault(VaultCommand::Verify(a)) => done(vault_verify::run(Unlock::resolve(a)?, p)),
        Command::Vault(VaultCommand::Export(a)) => {
            done(vault_export::run(VaultExport::resolve(a)?, p))
        }
        Command::Vault(VaultCommand::Passwd(a)) => {
            done(vault_passwd::run(VaultRekey::passwd(a)?, engine()?, p))
        }
        Command::Vault(VaultCommand::Rekey(a)) => {
            done(vault_passwd::run(VaultRekey::rekey(a)?, engine()?, p))
        }
        Command::Vault(VaultCommand::Migrate(a)) => {
            done(vault_migrate::run(VaultMigrate::resolve(a)?, p))
        }
        Command::Vault(VaultCommand::Generations(a)) => {
            done(vault_generations::run(vault_file(a)?, p))
        }
        Command::Up(a) => done(up::run(Up::resolve(a)?, engine()?, p)),
        Command::Onboard(a) => done(onboard::run(Onboard::resolve(a)?, engine()?, p)),
        Command::Start(a) => done(start::run(Start::resolve(a)?, engine()?, p)),
        Command::Run(a) => done(run::run(Start::resolve(a)?, engine()?, p)),
        Command::Stop(a) => done(stop::run(&a.name, engine()?, p)),
        Command::Upgrade(a) => done(upgrade::run(Upgrade::resolve(a)?, engine()?, p)),
        Command::Rollback(a) => done(rollback::run(Rollback::resolve(a)?, engine()?, p)),
        Command::Status(a) => done(status::run(Status::resolve(a)?, engine()?, p)),
        Command::Logs(a) => done(logs::run(&a.container.name, a.follow, engine()?)),
        Command::Exec(a) => exec::run(&a.container.name, &a.args, engine()?),
        Command::Pair(a) => pair::run(Pair::resolve(a), engine()?),
        Command::Image(ImageCommand::Build(a)) => {
            done(image_build::run(ImageBuild::resolve(a)?, engine()?, p))
        }
        Command::Image(ImageCommand::Lock(a)) => done(image_lock::run(ImageLock::resolve(a)?, p)),
        Command::Image(ImageCommand::Load(a)) => {
            done(image_load::run(image_archive(a)?, engine()?, p))
        }
        Command::Image(ImageCommand::Show) => done(image_show::run(engine()?, p)),
        Command::Image(ImageCommand::List) => done(image_list::run(engine()?, p)),
        Command::Image(ImageCommand::Prune(a)) => image_prune::run(&a, engine()?, p),
        Command::Audit(a) => done(audit::run(Audit::resolve(a)?, engine()?, p)),
        Command::Egress(EgressCommand::Serve(a)) => done(egress::serve(a)),
        Command::Egress(EgressCommand::Log(a)) if a.vault.is_some() => done(egress_policy::log(
            EgressPolicy::of(&a.vault, &a.password)?,
            p,
        )),
        Command::Egress(EgressCommand::Log(a)) => {
            done(egress::log(&a.container.name, a.follow, engine()?, p))
        }
        // Inside the gateway's container, which has no network.
        Command::Egress(EgressCommand::Relay(a)) => done(egress::relay(a)),
        Command::Egress(EgressCommand::Show(a)) => {
            done(egress_policy::show(EgressPolicy::resolve(&a)?, p))
        }
        Command::Egress(EgressCommand::Allow(a)) => done(egress_policy::change(
            EgressChange::resolve(a)?,
            egress_policy::Change::Allow,
            engine()?,
            p,
        )),
        Command::Egress(EgressCommand::Deny(a)) => done(egress_policy::change(
            EgressChange::resolve(a)?,
            egress_policy::Change::Deny,
            engine()?,
            p,
        )),
        Command::Secrets(SecretsCommand::List(a)) => {
            done(secrets::list(EgressPolicy::resolve(&a)?, p))
        }
        Command::Secrets(SecretsCommand::Set(a)) => {
            done(secrets::change(SecretsChange::set(a)?, engine()?, p))
        }
        Command::Secrets(SecretsCommand::Adopt(a)) => {
            done(secrets::adopt(SecretsChange::adopt(a)?, engine()?, p))
        }
        Command::Secrets(SecretsCommand::Remove(a)) => {
            done(secrets::change(SecretsChange::remove(a)?, engine()?, p))
        }
        Command::Skills(SkillsCommand::Add(a)) => {
            done(skills::add(SkillsChange::add(a)?, engine()?, p))
        }
        Command::Skills(SkillsCommand::List(a)) => {
            done(skills::list(EgressPolicy::resolve(&a)?, p))
        }
        Command::Skills(SkillsCommand::Remove(a)) => {
            done(skills::remove(SkillsChange::remove(a)?, engine()?, p))
        }
        // Inside the container: the guard reads its own protocol.
        Command::Guard { args } => Ok(guard::run(&GuardSettings::parse(&args)?)),
        Command::Idle => Ok(tools::idle()),
        Command::WriteSecret { path } => tools::write_secret(&path),
        Command::ScanSecrets { dir } => tools::scan_secrets(&dir),
        Command::ScanSkills { state, pinned } => tools::scan_skills(&state, &pinned),
        Command::Health => Ok(tools::health(crate::runtime::layout::GATEWAY_HEALTH_ADDR)),
    }
}

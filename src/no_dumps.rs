//! Keeps a process that holds keys out of core dumps and out of reach of
//! other processes of its user: the host CLI (which holds the data key,
//! for days in `safeclaw run`) and the guard (which holds it in the
//! container, next to the gateway running as the same uid).

use crate::error::{Error, Result};

/// Non-dumpable (no core dump, no ptrace attach, no /proc/PID/mem for
/// processes of the same uid) and a core-size limit of zero, hard, so
/// nothing in this process can raise it again.
pub fn forbid() -> Result<()> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| Error::failure(format!("making the process non-dumpable: {e}")))?;
    let none = rustix::process::Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    rustix::process::setrlimit(rustix::process::Resource::Core, none)
        .map_err(|e| Error::failure(format!("turning core dumps off: {e}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn leaves_the_process_non_dumpable_without_core_dumps() {
        // A child process, so the test binary itself stays debuggable.
        if std::env::var_os("SAFECLAW_NO_DUMPS_CHILD").is_some() {
            super::forbid().unwrap();
            let dumpable = rustix::process::dumpable_behavior().unwrap();
            let core = rustix::process::getrlimit(rustix::process::Resource::Core);
            assert_eq!(dumpable, rustix::process::DumpableBehavior::NotDumpable);
            assert_eq!((core.current, core.maximum), (Some(0), Some(0)));
            return;
        }
        let me = std::env::current_exe().unwrap();
        let status = std::process::Command::new(me)
            .args([
                "--exact",
                "no_dumps::tests::leaves_the_process_non_dumpable_without_core_dumps",
            ])
            .env("SAFECLAW_NO_DUMPS_CHILD", "1")
            .status()
            .unwrap();
        assert!(status.success());
    }
}

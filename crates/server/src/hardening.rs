//! Process hardening: no core dumps (they would hold unwrapped keys) and, unless disabled,
//! all memory locked so that keys are never written to swap. Safe wrappers from rustix.

use rustix::mm::{MlockAllFlags, mlockall};
use rustix::process::{Resource, Rlimit, setrlimit};

use crate::ServerError;

/// Turns core dumps off for this process, and makes it non-dumpable: besides no core file,
/// that keeps other processes of the same user from attaching with ptrace or reading
/// `/proc/<pid>/mem`, and makes `/proc/<pid>` files root's (RLIMIT_CORE alone stops only
/// the core file, and a core pattern that pipes to a helper ignores it).
pub(crate) fn disable_core_dumps() -> Result<(), ServerError> {
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(|e| ServerError::Hardening(format!("cannot disable core dumps: {e}")))?;
    set_not_dumpable()
}

#[cfg(target_os = "linux")]
fn set_not_dumpable() -> Result<(), ServerError> {
    use rustix::process::{DumpableBehavior, set_dumpable_behavior};
    set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|e| ServerError::Hardening(format!("cannot mark the process non-dumpable: {e}")))
}

#[cfg(not(target_os = "linux"))]
fn set_not_dumpable() -> Result<(), ServerError> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use rustix::process::{DumpableBehavior, dumpable_behavior, set_dumpable_behavior};

    #[test]
    fn core_dumps_off_means_not_dumpable() {
        let before = dumpable_behavior().unwrap();
        super::disable_core_dumps().unwrap();
        assert_eq!(dumpable_behavior().unwrap(), DumpableBehavior::NotDumpable);
        // Leave the test process as it was.
        set_dumpable_behavior(before).unwrap();
    }
}

/// Locks current and future memory pages into RAM.
pub(crate) fn lock_memory() -> Result<(), ServerError> {
    mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE).map_err(|e| {
        ServerError::Hardening(format!(
            "failed to lock memory ({e}); raise RLIMIT_MEMLOCK or give the process CAP_IPC_LOCK, \
             or set disable_mlock = true in the configuration (keys may then reach swap)"
        ))
    })
}

//! Process hardening: no core dumps (they would hold unwrapped keys) and, unless disabled,
//! all memory locked so that keys are never written to swap. Safe wrappers from rustix.

use rustix::mm::{MlockAllFlags, mlockall};
use rustix::process::{Resource, Rlimit, setrlimit};

use crate::ServerError;

/// Turns core dumps off for this process.
pub(crate) fn disable_core_dumps() -> Result<(), ServerError> {
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(|e| ServerError::Hardening(format!("cannot disable core dumps: {e}")))
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

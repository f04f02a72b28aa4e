//! The configured seal: built from `[seal]`, and the task that unseals the server with it as
//! soon as it can be reached.

use std::sync::Arc;
use std::time::Duration;

use ward_core::seals::{ConfiguredSeal, SealError};
use ward_core::{Core, CoreError};
use zeroize::Zeroizing;

use crate::{SealConfig, ServerError};

/// The environment variable that overrides `pin` (so the PIN need not sit in a file).
const PIN_VARIABLE: &str = "WARD_HSM_PIN";

/// The first wait after a failed automatic unseal, and the longest.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(60);

/// The seal `[seal]` describes (checked by `Config::parse`). Nothing is opened yet.
pub(crate) fn build(settings: &SealConfig) -> Result<ConfiguredSeal, ServerError> {
    let pin = match std::env::var(PIN_VARIABLE) {
        Ok(pin) => Zeroizing::new(pin),
        Err(_) => Zeroizing::new(settings.pin.clone().ok_or_else(|| {
            ServerError::Config(format!("seal: pin (or {PIN_VARIABLE}) is required"))
        })?),
    };
    let mechanism = settings
        .mechanism
        .as_deref()
        .and_then(ward_hsm::WrapMechanism::parse);
    let hsm = ward_hsm::Pkcs11Seal::new(ward_hsm::Pkcs11Settings {
        lib: settings.lib.clone().unwrap_or_default(),
        token_label: settings.token_label.clone(),
        slot: settings.slot,
        pin,
        key_label: settings.key_label.clone().unwrap_or_default(),
        mechanism,
        generate_key: settings.generate_key,
    });
    Ok(ConfiguredSeal {
        seal: Arc::new(hsm),
        disabled: settings.disabled,
    })
}

/// Unseals with the configured seal, retrying with exponential backoff (1 s doubling to
/// 60 s) while the seal cannot be reached, and saying why each time. Until then the server
/// stays sealed: there is nothing weaker to fall back to. Ends once unsealed, when the
/// seal has nothing to do (a migration waiting for shares, a disabled seal), or when the
/// seal refuses the PIN: that is said once and never retried, since every retry would be
/// one more failed login, and a hardware HSM locks its PIN after a few.
pub(crate) async fn unseal_when_reachable(core: Arc<Core>) {
    let mut wait = FIRST_RETRY;
    loop {
        match core.auto_unseal().await {
            Ok(true) => return,
            // Not initialised yet: init unseals by itself; look again in a moment in case
            // another server sharing the storage initialised it.
            Ok(false) if !core.is_initialized().await.unwrap_or(true) => {
                tokio::time::sleep(FIRST_RETRY).await;
                continue;
            }
            Ok(false) => {
                if core.enabled_auto_seal().is_some() {
                    tracing::warn!(
                        "the configured seal differs from the stored one: unseal with the old \
                         shares and migrate=true to migrate"
                    );
                }
                return;
            }
            Err(e @ CoreError::Seal(SealError::CredentialsRefused { .. })) => {
                tracing::error!(
                    error = %e.report(),
                    "the HSM refused the PIN: staying sealed, and not retrying (each try would \
                     count as a failed login, and an HSM locks its PIN after a few); fix `pin` \
                     in [seal] (or {PIN_VARIABLE}) and restart the server (a PIN the token has \
                     locked must first be unlocked by its security officer)"
                );
                return;
            }
            Err(e) => {
                tracing::error!(
                    error = %e.report(),
                    retry_in_seconds = wait.as_secs(),
                    "cannot unseal with the configured seal; staying sealed"
                );
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(LONGEST_RETRY);
    }
}

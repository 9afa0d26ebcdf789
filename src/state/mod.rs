//! The account store: [`accounts`] is the model and the policy over it, [`steering`] the
//! operator's rotation settings and force mode, [`usage`] the accounts' usage windows,
//! [`store`] the store itself (the crash-safe file, or [`postgres`] for a fleet),
//! [`report`] what `accounts` says about them. [`open`] and [`open_existing`] are the
//! only ways in, and the one place the backend is chosen: no caller knows where or how
//! the state is kept.

pub mod accounts;
pub mod postgres;
pub mod report;
pub mod seal;
pub mod steering;
pub mod store;
pub mod usage;

use crate::config::Config;
use crate::error::{Error, Result};

pub use store::{Store, DEFAULT_LOCK_TIMEOUT};

/// Opens the store the configuration names, creating it when missing: the fleet's
/// database when `MOONAUTH_STATE_URL` is set, else the files in `MOONAUTH_STATE_DIR`.
pub fn open(config: &Config) -> Result<Store> {
    match &config.fleet {
        Some(fleet) => Store::open_postgres(&fleet.url.value, &local_dir(config)),
        None => Store::open(&config.state_dir()?.value),
    }
}

/// The store when one exists: commands that only consult accounts (`run`, `renew`,
/// `login`) never create one. A configured database always exists (its schema is made
/// on first use); when it cannot be reached, these commands go on without the stored
/// accounts (with a warning), using the logins this host's volumes hold.
pub fn open_existing(config: &Config) -> Result<Option<Store>> {
    if config.fleet.is_some() {
        return match open(config) {
            Ok(store) => Ok(Some(store)),
            Err(e @ Error::StateUnreachable { .. }) => {
                tracing::warn!("{e}; going on with the logins on this host, without the fleet's accounts");
                Ok(None)
            }
            Err(e) => Err(e),
        };
    }
    match config.state_dir.as_ref() {
        Some(dir) if Store::exists_in(&dir.value) => Ok(Some(Store::open(&dir.value)?)),
        _ => Ok(None),
    }
}

/// This host's state directory, which a database-backed store only names in reports.
fn local_dir(config: &Config) -> std::path::PathBuf {
    config
        .state_dir
        .as_ref()
        .map_or_else(|| std::path::PathBuf::from("/"), |d| d.value.clone())
}

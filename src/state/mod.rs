//! The account store: [`accounts`] is the model and the policy over it, [`steering`] the
//! operator's rotation settings and force mode, [`usage`] the accounts' usage windows,
//! [`store`] the crash-safe file it lives in, [`report`] what `accounts` says about them. [`open`] and
//! [`open_existing`] are the only ways in: no caller knows where or how the state is kept.

pub mod accounts;
pub mod report;
pub mod steering;
pub mod store;
pub mod usage;

use crate::config::Config;
use crate::error::Result;

pub use store::{Store, DEFAULT_LOCK_TIMEOUT};

/// Opens the store the configuration names (`MOONAUTH_STATE_DIR`), creating it when
/// missing: for commands that change accounts.
pub fn open(config: &Config) -> Result<Store> {
    Store::open(&config.state_dir()?.value)
}

/// The store when one exists: commands that only consult accounts (`run`, `renew`,
/// `login`) never create one.
pub fn open_existing(config: &Config) -> Result<Option<Store>> {
    match config.state_dir.as_ref() {
        Some(dir) if Store::exists_in(&dir.value) => Ok(Some(Store::open(&dir.value)?)),
        _ => Ok(None),
    }
}

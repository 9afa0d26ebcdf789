//! The account store: [`accounts`] is the model and the policy over it, [`store`] the
//! crash-safe file it lives in. [`open`] is the only way in.

pub mod accounts;
pub mod store;

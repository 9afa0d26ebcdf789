//! Running under GitHub Actions: what the runner tells a step (`context.rs`), minting an
//! OIDC token to read its claims (`oidc.rs`), the step outputs (`outputs.rs`), the job
//! summary and annotations (`summary.rs`), and masking credential values in the log
//! (`masks.rs`). It knows the runner's files and workflow commands; what a run did is
//! `failover`'s, what a check says is `checks`'.

pub mod context;
pub mod masks;
pub mod oidc;
pub mod outputs;
pub mod summary;

pub use context::{Context, Event, DEFAULT_APP_EVENTS, OIDC_REQUEST_VARS};

//! What is checked before a worker starts, and how a failed check says what to do:
//! [`preflight`] (the container entrypoint).

pub mod preflight;

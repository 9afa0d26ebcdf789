//! moonauth: logins, preflight and runtime resolution for fleets of Claude Code and
//! Codex workers in Docker containers.
//!
//! The binary is a thin wrapper over this library: [`commands::run`] takes parsed
//! arguments and an injected [`source::Env`]. Rust callers use the pieces directly:
//! [`agents::normalize_payload`] and [`agents::default_task_runtime`] to resolve a
//! task's runtime, [`credentials::inspect_dir`] to read a login,
//! [`checks::preflight::run_checks`] for the worker checks, [`state::open`] and
//! [`rotation::next`] for the shared account state,
//! [`failover::classify::OutputClassifier`] to tell how a CLI run ended,
//! [`failover::run`] for the failover loop, and [`renew::renew_dir`] to refresh a shared
//! login under its lease. docs/architecture.md maps the folders and the arrows allowed
//! between them.

pub mod agents;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod docker;
pub mod error;
pub mod exit;
pub mod failover;
pub mod fsx;
pub mod github;
pub mod init;
pub mod lease;
pub mod output;
pub mod redact;
pub mod renew;
pub mod rotation;
pub mod source;
pub mod state;
pub mod time;

#[cfg(test)]
mod architecture;

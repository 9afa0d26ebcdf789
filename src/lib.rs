//! moonauth: logins, preflight and runtime resolution for fleets of Claude Code and
//! Codex workers in Docker containers.
//!
//! The binary is a thin wrapper over this library: [`commands::run`] takes parsed
//! arguments and an injected [`config::Env`]. Rust callers use the pieces directly:
//! [`runtime::normalize_payload`] and [`runtime::default_task_runtime`] to resolve a
//! task's runtime, [`credentials::inspect_dir`] to read a login, [`preflight::run_checks`]
//! for the worker checks, [`store::Store`] and [`accounts::pick`] for the shared account
//! state, [`classify::OutputClassifier`] to tell how a CLI run ended, [`run::run`] for the
//! failover loop, and [`renew::renew_dir`] to refresh a shared login under its lease.

pub mod accounts;
pub mod apply;
pub mod classify;
pub mod cli;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod docker;
pub mod error;
pub mod exit;
pub mod fsx;
pub mod init;
pub mod lease;
pub mod login;
pub mod output;
pub mod preflight;
pub mod redact;
pub mod refresh;
pub mod renew;
pub mod run;
pub mod runtime;
pub mod status;
pub mod store;

//! moonauth's integration tests, in one binary (ripgrep's layout: `autotests = false` in
//! Cargo.toml): one link step, and one support tree for the binary's path, the fixtures
//! and the fakes. Each module is one area of behaviour, run through the built binary; a
//! test's full name is `module::test`, so `-E 'test(/real_cli/)'` picks whole modules.

mod support;

mod accounts;
mod canary;
mod classify_real_cli;
mod classify_samples;
mod closed_stdout;
mod completions_man;
mod compose;
mod config;
mod docker;
mod docs;
mod doctor;
mod exec;
mod github_actions;
mod init;
mod inspect;
mod json_convention;
mod preflight;
mod properties;
mod real_cli;
mod renew;
mod renew_docker;
mod renew_real_cli;
mod run_child;
mod run_real_cli;
mod run_secrets;
mod runtime_resolve;
mod snapshots;
mod store;
mod store_props;
mod workflow_lint;

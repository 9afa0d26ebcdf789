//! `moonauth run claude|codex [--account A] [--report FILE] [--save-state DIR]
//! [--resume-from DIR] -- ARGS…`.

use std::io::Write;

use crate::cli::RunArgs;
use crate::config::{Config, Overrides};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::failover::{self, RunRequest};
use crate::github;
use crate::source::Env;

pub fn run(args: RunArgs, env: &Env) -> Result<Exit> {
    let runtime = super::login_runtime(&args.runtime, "RUNTIME")?;
    let config = Config::resolve(env, &Overrides::default())?;
    let gh = github::Context::from_env(env);
    if gh.actions {
        // Before anything else is printed: the runner masks each value from here on.
        let values = failover::secret_values(&config, env, &github::OIDC_REQUEST_VARS)?;
        if let Err(e) = github::masks::announce(values.iter().map(String::as_str)) {
            tracing::warn!("could not print the ::add-mask:: commands: {e}");
        }
    }
    let clock = super::clock(env)?;
    let request = RunRequest {
        runtime,
        account: args.account.clone(),
        args: args.args.clone(),
        continuation: config.run.continuation.value.clone(),
        api_fallback: args.api_fallback || config.run.api_fallback.value,
        throttle_retries: config.run.throttle_retries.value,
        backoff: config.run.throttle_backoff.value,
        cli_max_retries: config.run.cli_max_retries.value,
        // The agent must not mint OIDC tokens (claude-code-action removes them too).
        removed_vars: github::OIDC_REQUEST_VARS.iter().map(|v| v.to_string()).collect(),
        save_state: args.save_state.clone(),
        resume_from: args.resume_from.clone(),
    };
    let report = failover::run(&config, env, &request, &clock)?;

    let json = serde_json::to_string(&report).expect("the report serializes");
    match &args.report {
        Some(path) => std::fs::write(path, format!("{json}\n"))
            .map_err(|e| Error::io(format!("write the report to {}", path.display()), e))?,
        None => {
            let _ = writeln!(std::io::stderr().lock(), "{json}");
        }
    }
    if report.exhausted {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "moonauth: every {runtime} credential is out:");
        for u in &report.unavailable {
            let until = u.until.as_deref().map(|t| format!(" until {t}")).unwrap_or_default();
            let fix = u.fix.as_deref().map(|f| format!(" — fix: {f}")).unwrap_or_default();
            let _ = writeln!(err, "  {}: {}{until}{fix}", u.account, u.reason);
        }
        if let Some(why) = &report.api_key_not_used {
            let _ = writeln!(err, "  API key not used: {}", why.message);
        }
    }
    if gh.actions {
        if let Some(path) = &gh.output_file {
            if let Err(e) = github::outputs::write(&report, path) {
                tracing::warn!("could not write the step outputs to {}: {e}", path.display());
            }
        }
        if let Err(e) = github::summary::write(&report, gh.summary_file.as_deref()) {
            tracing::warn!("could not write the GitHub job summary: {e}");
        }
    }
    // The child's own status passes through; moonauth's codes only when it ran out.
    Ok(if report.exhausted {
        Exit::AccountsExhausted
    } else {
        Exit::Child(u8::try_from(report.exit_code).unwrap_or(1))
    })
}

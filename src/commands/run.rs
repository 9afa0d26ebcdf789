//! `moonauth run claude|codex [--account A] [--report FILE] -- ARGS…`.

use std::io::Write;

use crate::cli::RunArgs;
use crate::config::{Config, Overrides};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::failover::{self, RunRequest};
use crate::source::Env;

pub fn run(args: RunArgs, env: &Env) -> Result<Exit> {
    let runtime = super::login_runtime(&args.runtime, "RUNTIME")?;
    let config = Config::resolve(env, &Overrides::default())?;
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
    }
    if env.get("GITHUB_ACTIONS") == Some("true") {
        let summary = env.non_blank("GITHUB_STEP_SUMMARY").map(std::path::PathBuf::from);
        if let Err(e) = failover::github_summary(&report, summary.as_deref()) {
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

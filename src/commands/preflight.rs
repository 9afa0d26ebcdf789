//! `moonauth preflight`: check the worker, print the report, exec the worker command.

use std::time::Duration;

use crate::checks::preflight::{self, Inputs};
use crate::cli::PreflightArgs;
use crate::config::{self, Config, Overrides};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::output;
use crate::source::Env;

/// How often `--wait` re-checks.
const WAIT_INTERVAL: Duration = Duration::from_secs(2);

pub fn run(args: PreflightArgs, env: &Env) -> Result<Exit> {
    let overrides = Overrides {
        worker_mode: args.mode.clone(),
        expiry_lead: args.lead.clone(),
        auth_mode: args.auth_mode.clone(),
        ..Default::default()
    };
    let config = Config::resolve(env, &overrides)?;
    let wait = match &args.wait {
        None => None,
        Some(v) => Some(config::parse_duration(v).map_err(|reason| Error::InvalidFlag {
            flag: "--wait",
            value: v.clone(),
            reason,
        })?),
    };
    let now = super::clock(env)?.now();
    let inputs = Inputs {
        config: &config,
        env,
        now,
        deep: args.deep,
    };
    // A moonauth killed mid-refresh leaves Claude's own refresh lock behind, and the
    // worker's claude would wait out its stale time: clear it before starting the worker.
    if let Some(claude) = config.runtime(crate::agents::Runtime::Claude) {
        if config
            .worker_mode
            .value
            .runtimes()
            .contains(&crate::agents::Runtime::Claude)
        {
            crate::lease::release_dead_holders_claude_locks(&claude.login_dir.value);
        }
    }
    let report = preflight::run_until(&inputs, wait, WAIT_INTERVAL);
    let exit = report.exit();

    if args.command.is_empty() || exit != Exit::Ok {
        // With a worker command, the report goes to stderr so the worker owns stdout.
        if args.command.is_empty() {
            super::written(output::emit(&report, args.json))?;
        } else {
            print_to_stderr(&report, args.json);
        }
        return Ok(exit);
    }
    print_to_stderr(&report, args.json);
    Err(preflight::exec_worker(&args.command, env, &report.exec_env))
}

fn print_to_stderr(report: &preflight::PreflightReport, json: bool) {
    use crate::output::Render;
    use std::io::Write;
    let stderr = std::io::stderr();
    let mut w = stderr.lock();
    let _ = if json {
        serde_json::to_writer(&mut w, report)
            .map_err(std::io::Error::from)
            .and_then(|_| writeln!(w))
    } else {
        report.human(&mut w)
    };
}

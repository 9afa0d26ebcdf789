//! `moonauth doctor`: resolve the settings, collect every check (`docker::doctor`),
//! print them all, exit with the first failure's code.

use std::time::SystemTime;

use crate::agents::Runtime;
use crate::cli::DoctorArgs;
use crate::config::{Config, Overrides};
use crate::docker::doctor::{self, Options};
use crate::error::Result;
use crate::exit::Exit;
use crate::output;
use crate::source::{Env, Source};

pub fn run(args: DoctorArgs, env: &Env) -> Result<Exit> {
    let config = Config::resolve(env, &Overrides::default())?;
    // The volumes `status` reports by default: the worker mode's runtimes when it is set, else both.
    let runtimes = if config.worker_mode.source != Source::Default {
        config
            .worker_mode
            .value
            .runtimes()
            .iter()
            .copied()
            .filter(|r| *r != Runtime::Gemini)
            .collect()
    } else {
        super::login_runtimes(&[])?
    };
    let options = Options {
        runtimes,
        now: super::clock(env)?.now(),
        system_now: SystemTime::now(),
        network: args.network,
    };
    let report = doctor::collect(&config, &options)?;
    super::written(output::emit(&report, args.json))?;
    Ok(report.exit())
}

//! `moonauth status`: every configured auth volume and the login it holds.

use crate::agents::Runtime;
use crate::cli::StatusArgs;
use crate::config::{Config, Overrides};
use crate::docker::status::{self, StatusReport};
use crate::docker::{self, Engine};
use crate::error::Result;
use crate::exit::Exit;
use crate::output;
use crate::source::{Env, Source};

pub fn run(args: StatusArgs, env: &Env) -> Result<Exit> {
    let config = Config::resolve(
        env,
        &Overrides {
            expiry_lead: args.lead.clone(),
            ..Default::default()
        },
    )?;
    let runtimes = if args.runtimes.is_empty() && config.worker_mode.source != Source::Default {
        config
            .worker_mode
            .value
            .runtimes()
            .iter()
            .copied()
            .filter(|r| *r != Runtime::Gemini)
            .collect()
    } else {
        super::login_runtimes(&args.runtimes)?
    };
    let now = super::clock(env)?.now();
    let rt = docker::runtime()?;
    let mut report = rt.block_on(async {
        let engine = Engine::connect(&config.docker).await?;
        let specs = status::configured_specs(&engine, &config, &runtimes, &args.account).await?;
        let volumes = status::collect(&engine, &config, &specs, now).await?;
        Ok::<_, crate::error::Error>(StatusReport::new(&engine, volumes))
    })?;
    // After the runtime's work: the database client runs its own, outside it.
    drop(rt);
    report.fleet = crate::checks::fleet::check(&config);
    super::written(output::emit(&report, args.json))?;
    Ok(report.exit())
}

//! `moonauth status`: every configured auth volume and the login it holds.

use crate::agents::Runtime;
use crate::cli::StatusArgs;
use crate::config::{Config, Overrides};
use crate::docker::status::{self, StatusReport};
use crate::docker::volumes::{self, VolumeSpec, LABEL_ACCOUNT, LABEL_RUNTIME};
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
    let report = rt.block_on(async {
        let engine = Engine::connect(&config.docker).await?;
        let specs = configured_specs(&engine, &config, &runtimes, &args.account).await?;
        let volumes = status::collect(&engine, &config, &specs, now).await?;
        Ok::<_, crate::error::Error>(StatusReport::new(&engine, volumes))
    })?;
    super::written(output::emit(&report, args.json))?;
    Ok(report.exit())
}

/// The default volume of each runtime, the named accounts, and every volume moonauth
/// labelled for a named account.
pub(crate) async fn configured_specs(
    engine: &Engine,
    config: &Config,
    runtimes: &[Runtime],
    accounts: &[String],
) -> Result<Vec<VolumeSpec>> {
    let mut specs = Vec::new();
    for &runtime in runtimes {
        specs.push(volumes::spec(config, runtime, None)?);
        for account in accounts {
            specs.push(volumes::spec(config, runtime, Some(account))?);
        }
    }
    for v in volumes::list_managed(engine).await? {
        let runtime = v
            .labels
            .get(LABEL_RUNTIME)
            .and_then(|r| crate::agents::parse_login_runtime(r).ok());
        let account = v
            .labels
            .get(LABEL_ACCOUNT)
            .cloned()
            .unwrap_or_else(|| volumes::DEFAULT_ACCOUNT.into());
        // Other deployments' default volumes are theirs to report; account volumes are this fleet's.
        if account == volumes::DEFAULT_ACCOUNT {
            continue;
        }
        if let Some(runtime) = runtime.filter(|r| runtimes.contains(r)) {
            if !specs.iter().any(|s| s.name == v.name) {
                specs.push(VolumeSpec {
                    name: v.name.clone(),
                    runtime,
                    account,
                });
            }
        }
    }
    Ok(specs)
}

//! `moonauth volumes ensure|ls|rm`.

use crate::cli::{EnsureArgs, LsArgs, RmArgs, VolumesCommand};
use crate::config::{Config, Overrides};
use crate::docker::status::{self, VolumeList};
use crate::docker::volumes::{self, EnsureReport, EnsuredVolume, RemoveReport, Removed, RemovedVolume};
use crate::docker::{self, Engine};
use crate::error::Result;
use crate::exit::Exit;
use crate::output;
use crate::source::Env;

pub fn run(cmd: VolumesCommand, env: &Env) -> Result<Exit> {
    let config = Config::resolve(env, &Overrides::default())?;
    let rt = docker::runtime()?;
    match cmd {
        VolumesCommand::Ensure(args) => rt.block_on(ensure(&config, args)),
        VolumesCommand::Ls(args) => rt.block_on(ls(&config, env, args)),
        VolumesCommand::Rm(args) => rt.block_on(rm(&config, args)),
    }
}

async fn ensure(config: &Config, args: EnsureArgs) -> Result<Exit> {
    let engine = Engine::connect(&config.docker).await?;
    let mut ensured = Vec::new();
    for runtime in super::login_runtimes(&args.runtimes)? {
        let spec = volumes::spec(config, runtime, args.account.as_deref())?;
        let outcome = volumes::ensure(&engine, &spec).await?;
        ensured.push(EnsuredVolume { spec, outcome });
    }
    let report = EnsureReport::new(ensured);
    super::written(output::emit(&report, args.json))?;
    Ok(Exit::Ok)
}

async fn ls(config: &Config, env: &Env, args: LsArgs) -> Result<Exit> {
    let engine = Engine::connect(&config.docker).await?;
    let runtimes = super::login_runtimes(&[])?;
    let specs = status::listed_specs(&engine, config, &runtimes).await?;
    let now = super::clock(env)?.now();
    let volumes = status::collect(&engine, config, &specs, now).await?;
    let list = VolumeList::new(&engine, volumes);
    super::written(output::emit(&list, args.json))?;
    Ok(Exit::Ok)
}

async fn rm(config: &Config, args: RmArgs) -> Result<Exit> {
    // Usage errors first, for every name, so `rm good bad` removes nothing and a
    // missing --force is exit 2 whatever state the volumes are in (docs/exit-codes.md).
    for name in &args.volumes {
        volumes::validate_name("VOLUME", name)?;
    }
    if !args.force {
        return Err(crate::error::Error::NeedsForce {
            action: format!("removing {} (and the login in it)", args.volumes.join(", ")),
        });
    }
    let engine = Engine::connect(&config.docker).await?;
    let mut removed = Vec::new();
    for name in &args.volumes {
        let outcome = if volumes::remove(&engine, name, args.force).await? {
            Removed::Removed
        } else {
            Removed::Absent
        };
        removed.push(RemovedVolume {
            volume: name.clone(),
            outcome,
        });
    }
    super::written(output::emit(&RemoveReport::new(removed), args.json))?;
    Ok(Exit::Ok)
}

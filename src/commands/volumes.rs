//! `moonauth volumes ensure|ls|rm`.

use serde::Serialize;

use crate::cli::{EnsureArgs, LsArgs, RmArgs, VolumesCommand};
use crate::config::{Config, Overrides};
use crate::docker::status::{self, StatusReport};
use crate::docker::volumes::{self, Ensured, VolumeSpec};
use crate::docker::{self, Engine};
use crate::error::Result;
use crate::exit::Exit;
use crate::output::{self, Render};
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

/// What `volumes ensure` did to each volume.
#[derive(Debug, Serialize)]
pub struct EnsureReport {
    pub volumes: Vec<EnsuredVolume>,
}

#[derive(Debug, Serialize)]
pub struct EnsuredVolume {
    #[serde(flatten)]
    pub spec: VolumeSpec,
    pub outcome: Ensured,
}

impl Render for EnsureReport {
    fn human(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        for v in &self.volumes {
            let what = match v.outcome {
                Ensured::Created => "created",
                Ensured::Existed => "exists",
                Ensured::ExistedUnlabelled => "exists (created outside moonauth; left as it is)",
            };
            writeln!(
                w,
                "{:<28} {:<7} {:<10} {what}",
                v.spec.name, v.spec.runtime, v.spec.account
            )?;
        }
        Ok(())
    }
}

async fn ensure(config: &Config, args: EnsureArgs) -> Result<Exit> {
    let engine = Engine::connect(&config.docker).await?;
    let mut report = EnsureReport { volumes: Vec::new() };
    for runtime in super::login_runtimes(&args.runtimes)? {
        let spec = volumes::spec(config, runtime, args.account.as_deref())?;
        let outcome = volumes::ensure(&engine, &spec).await?;
        report.volumes.push(EnsuredVolume { spec, outcome });
    }
    super::written(output::emit(&report, args.json))?;
    Ok(Exit::Ok)
}

async fn ls(config: &Config, env: &Env, args: LsArgs) -> Result<Exit> {
    let engine = Engine::connect(&config.docker).await?;
    let runtimes = super::login_runtimes(&[])?;
    let specs = super::status::configured_specs(&engine, config, &runtimes, &[]).await?;
    let now = super::clock(env)?.now();
    let volumes = status::collect(&engine, config, &specs, now).await?;
    let report = StatusReport::new(&engine, volumes);
    let list = VolumeList(report);
    super::written(output::emit(&list, args.json))?;
    Ok(Exit::Ok)
}

/// `volumes ls`: the status report as a table.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct VolumeList(StatusReport);

impl Render for VolumeList {
    fn human(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(
            w,
            "{:<28} {:<7} {:<10} {:<8} LOGIN",
            "VOLUME", "RUNTIME", "ACCOUNT", "MANAGED"
        )?;
        for v in &self.0.volumes {
            let login = match (&v.login, v.exists) {
                (_, false) => "(volume does not exist)".to_string(),
                (Some(l), true) => l.inspection.class.as_str().to_string(),
                (None, true) => "-".to_string(),
            };
            let managed = if !v.exists {
                "-"
            } else if v.managed {
                "yes"
            } else {
                "no"
            };
            writeln!(
                w,
                "{:<28} {:<7} {:<10} {:<8} {login}",
                v.volume, v.runtime, v.account, managed
            )?;
        }
        Ok(())
    }
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
    for name in &args.volumes {
        if volumes::remove(&engine, name, args.force).await? {
            println!("removed {name}");
        } else {
            println!("{name} does not exist");
        }
    }
    Ok(Exit::Ok)
}

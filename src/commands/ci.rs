//! `moonauth ci check [--json] [--oidc]`: the GitHub Actions step's checks (`checks::ci`).

use crate::checks::ci;
use crate::cli::CiCheckArgs;
use crate::config::{Config, Overrides};
use crate::error::Result;
use crate::exit::Exit;
use crate::output;
use crate::source::Env;

pub fn check(args: CiCheckArgs, env: &Env) -> Result<Exit> {
    let config = Config::resolve(env, &Overrides::default())?;
    let report = ci::run_checks(&config, env, args.oidc);
    super::written(output::emit(&report, args.json))?;
    Ok(report.exit())
}

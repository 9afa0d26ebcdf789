//! `moonauth init`: the compose init service.

use crate::cli::InitArgs;
use crate::config::{Config, Overrides};
use crate::error::Result;
use crate::exit::Exit;
use crate::init::{self, InitReport};
use crate::output;
use crate::source::Env;

pub fn run(args: InitArgs, env: &Env) -> Result<Exit> {
    // Resolving the configuration validates every variable: a bad one fails the init service.
    let config = Config::resolve(env, &Overrides::default())?;
    let runtimes = super::login_runtimes(&args.runtimes)?;
    let dirs = init::init(&config, &runtimes)?;
    let report = InitReport {
        schema: "moonauth.init.v1",
        uid: config.docker.uid.value,
        gid: config.docker.gid.value,
        dirs,
    };
    super::written(output::emit(&report, args.json))?;
    Ok(Exit::Ok)
}

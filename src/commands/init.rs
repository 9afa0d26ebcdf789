//! `moonauth init`: the compose init service. Outside a container it refuses unless
//! `--yes`; `--dry-run` only reports.

use std::path::Path;

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
    // On a host, init would hand the user's own directories to the worker uid: look
    // first, and refuse with what it would change unless told to go ahead.
    let would = init::init(&config, &runtimes, true)?;
    let dirs = if args.dry_run {
        would
    } else {
        init::refuse_outside_container(Path::new("/"), args.yes, &would)?;
        init::init(&config, &runtimes, false)?
    };
    let report = InitReport {
        schema: "moonauth.init.v1",
        uid: config.docker.uid.value,
        gid: config.docker.gid.value,
        dry_run: args.dry_run,
        dirs,
    };
    super::written(output::emit(&report, args.json))?;
    Ok(Exit::Ok)
}

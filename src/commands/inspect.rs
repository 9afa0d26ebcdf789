//! `moonauth inspect`: what a local login directory holds.

use crate::cli::InspectArgs;
use crate::config::{Config, Overrides};
use crate::credentials;
use crate::error::Result;
use crate::exit::Exit;
use crate::output::{self, InspectReport};
use crate::source::Env;

pub fn run(args: InspectArgs, env: &Env) -> Result<Exit> {
    let runtime = super::login_runtime(&args.runtime, "RUNTIME")?;
    let config = Config::resolve(
        env,
        &Overrides {
            expiry_lead: args.lead.clone(),
            ..Default::default()
        },
    )?;
    let settings = config.runtime(runtime).expect("claude and codex have login settings");
    let dir = args.dir.clone().unwrap_or_else(|| settings.login_dir.value.clone());
    let now = super::clock(env)?.now();
    let mut login = credentials::inspect_dir(settings.runtime, &dir, now, config.expiry_lead.value);
    let env_credentials: Vec<&'static str> = settings.env_credentials.iter().map(|(n, _)| *n).collect();
    // A key or token in the environment logs the CLI in whatever the file holds (the CLI
    // says logged in), so the runtime is usable; `env_credentials` says through what.
    login.usable |= !env_credentials.is_empty();
    let exit = if login.usable { Exit::Ok } else { Exit::LoginUnusable };
    let report = InspectReport {
        schema: "moonauth.inspect.v1",
        ok: exit == Exit::Ok,
        exit_code: exit.code(),
        login,
        env_credentials,
    };
    super::written(output::emit(&report, args.json))?;
    Ok(exit)
}

//! `moonauth login claude|codex [--account A] [--image I] [--sync-from DIR]`.

use crate::cli::LoginArgs;
use crate::config::{Config, Overrides};
use crate::docker::login::{self, Target};
use crate::docker::status::{self, StatusReport};
use crate::docker::{self, session, volumes, Engine};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::output;
use crate::source::Env;

pub fn run(args: LoginArgs, env: &Env) -> Result<Exit> {
    let runtime = super::login_runtime(&args.runtime, "RUNTIME")?;
    let config = Config::resolve(env, &Overrides::default())?;
    let spec = volumes::spec(&config, runtime, args.account.as_deref())?;
    let interactive = args.sync_from.is_none();
    // Before the engine is asked anything: the CLI's own login needs the worker image, and
    // without a static moonauth nothing can be put in place.
    if interactive && args.image.is_none() && config.docker.image.is_none() {
        return Err(Error::NoImage);
    }
    let target = Target::new(&config, &spec, args.image.clone())?;
    let rt = docker::runtime()?;
    if interactive {
        // A missing image is the thing to fix first, whether or not a terminal is attached
        // (a script that gets "needs a terminal" would fix that and then fail on the image).
        rt.block_on(async {
            let engine = Engine::connect(&config.docker).await?;
            login::require_image(&engine, target.image()?).await
        })?;
        if !session::is_interactive() {
            return Err(Error::NeedsTerminal {
                command: format!("moonauth login {runtime}"),
            });
        }
    }
    let command = config
        .docker
        .login_command
        .as_ref()
        .map(|c| c.value.clone())
        .unwrap_or_else(|| login::default_login_command(runtime));
    let now = super::clock(env)?.now();
    let (outcome, report) = rt.block_on(async {
        let engine = Engine::connect(&config.docker).await?;
        let outcome = match &args.sync_from {
            Some(dir) => login::sync(&engine, &target, dir).await?,
            None => login::interactive(&engine, &target, command, login::Console::Terminal).await?,
        };
        let volumes = status::collect(&engine, &config, std::slice::from_ref(&spec), now).await?;
        Ok::<_, Error>((outcome, StatusReport::new(&engine, volumes)))
    })?;
    // A fresh login of a stored account clears its re-login mark.
    if report.ok {
        if let Some(alias) = &args.account {
            if let Some(store) = crate::state::open_existing(&config)? {
                let cleared = store.update(crate::state::DEFAULT_LOCK_TIMEOUT, |state| {
                    state.account(alias).is_some() && state.record_login(alias).is_ok()
                })?;
                if cleared {
                    tracing::info!("account {alias} no longer needs a re-login");
                }
            }
        }
    }
    for warning in &outcome.warnings {
        tracing::warn!("{warning}");
    }
    let volume = format!(
        "{} volume {}",
        if outcome.created_volume { "new" } else { "existing" },
        outcome.volume
    );
    if args.sync_from.is_some() {
        eprintln!("moonauth: copied {} into the {volume}", outcome.files.join(", "));
    } else {
        eprintln!("moonauth: logged {runtime} in; the login is in the {volume}");
    }
    super::written(output::emit(&report, args.json))?;
    Ok(report.exit())
}

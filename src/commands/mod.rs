//! One module per subcommand. Each takes the parsed arguments and the injected
//! environment, builds a report, hands it to `output`, and returns an [`Exit`].

mod accounts;
mod ci;
mod completions;
mod doctor;
mod init;
mod inspect;
mod internal;
mod login;
mod man;
mod preflight;
mod renew;
mod run;
mod runtime;
mod status;
mod volumes;

use crate::cli::{CiCommand, Command, InternalCommand, RuntimeCommand};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::source::Env;
use crate::time::Clock;

/// Runs a parsed command.
pub fn run(command: Command, env: &Env) -> Result<Exit> {
    match command {
        Command::Preflight(args) => preflight::run(args, env),
        Command::Inspect(args) => inspect::run(args, env),
        Command::Runtime(RuntimeCommand::Resolve(args)) => runtime::resolve(args, env),
        Command::Status(args) => status::run(args, env),
        Command::Volumes(cmd) => volumes::run(cmd, env),
        Command::Login(args) => login::run(args, env),
        Command::Init(args) => init::run(args, env),
        Command::Run(args) => run::run(args, env),
        Command::Accounts(cmd) => accounts::run(cmd, env),
        Command::Renew(args) => renew::run(args, env),
        Command::Doctor(args) => doctor::run(args, env),
        Command::Ci(CiCommand::Check(args)) => ci::check(args, env),
        Command::Completions(args) => completions::run(args),
        Command::Man => man::run(),
        Command::Internal(InternalCommand::ApplyLogin(args)) => internal::apply_login(args),
        Command::Internal(InternalCommand::StoreBench(args)) => internal::store_bench(args, env),
    }
}

/// Parses a runtime argument that must have a login (claude or codex), naming `flag` in the error.
pub(crate) fn login_runtime(value: &str, flag: &'static str) -> Result<crate::agents::Runtime> {
    crate::agents::parse_login_runtime(value).map_err(|reason| Error::InvalidFlag {
        flag,
        value: value.to_string(),
        reason,
    })
}

/// Parses runtime arguments (claude, codex); none means both.
pub(crate) fn login_runtimes(values: &[String]) -> Result<Vec<crate::agents::Runtime>> {
    use crate::agents::Runtime;
    if values.is_empty() {
        return Ok(vec![Runtime::Codex, Runtime::Claude]);
    }
    let mut out = Vec::new();
    for v in values {
        let r = login_runtime(v, "RUNTIME")?;
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

/// The command's clock: the system's, or pinned at `MOONAUTH_NOW` (RFC 3339) for
/// reproducible output. Built once per command and passed to whatever reads the time.
pub(crate) fn clock(env: &Env) -> Result<Clock> {
    Clock::from_setting(env.get("MOONAUTH_NOW")).map_err(|reason| Error::InvalidVariable {
        var: "MOONAUTH_NOW".into(),
        value: env.non_blank("MOONAUTH_NOW").unwrap_or_default().to_string(),
        reason,
    })
}

/// Maps an output error: a failed write to stdout is a failure of the command.
pub(crate) fn written(result: std::io::Result<()>) -> Result<()> {
    result.map_err(|e| Error::io("writing the report to stdout", e))
}

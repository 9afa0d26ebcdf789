//! The `moonauth` binary: parse arguments, start logging, run the command, map the
//! outcome to an exit code. Everything else lives in the library.

use std::process::ExitCode;

use moonauth::{cli::Cli, commands, error::Error, exit::Exit, source::Env};

fn main() -> ExitCode {
    let cli = parse().unwrap_or_else(|e| {
        let _ = e.print();
        let args: Vec<String> = std::env::args().collect();
        if let Some(hint) = e.use_stderr().then(|| moonauth::cli::usage_hint(&args)).flatten() {
            eprintln!("  hint: {hint}");
        }
        std::process::exit(e.exit_code())
    });
    let no_color = std::env::var("NO_COLOR").ok();
    let color = cli.color.enabled(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        no_color.as_deref(),
    );
    init_tracing(cli.verbose, cli.quiet, color);
    // Variables that are not valid UTF-8 cannot be moonauth settings; they still reach child processes.
    let process = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let outcome = Env::load(process, cli.env_file.as_deref())
        .map_err(Error::from)
        .and_then(|env| commands::run(cli.command, &env));
    match outcome {
        Ok(exit) => exit.into(),
        Err(err) => {
            eprintln!("moonauth: error: {err}");
            if let Some(hint) = err.hint() {
                eprintln!("  hint: {hint}");
            }
            let exit: Exit = err.exit();
            exit.into()
        }
    }
}

/// Parses the arguments like `Cli::try_parse`, but never frees the command definition:
/// it and the matches live until the process exits anyway, and dropping their trees of
/// strings cost about 9% of a whole `preflight` (callgrind), which runs on every
/// container start.
fn parse() -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = std::mem::ManuallyDrop::new(Cli::command());
    let matches = std::mem::ManuallyDrop::new(command.try_get_matches_from_mut(std::env::args_os())?);
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
}

/// Logs go to stderr: warnings by default, more with -v, only errors with -q; RUST_LOG wins.
/// Colour only when `color` says so (never into `docker logs` or a file by default).
fn init_tracing(verbose: u8, quiet: bool, color: bool) {
    use tracing_subscriber::filter::LevelFilter;
    let level = match (quiet, verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 0) => LevelFilter::WARN,
        (false, 1) => LevelFilter::INFO,
        (false, 2) => LevelFilter::DEBUG,
        (false, _) => LevelFilter::TRACE,
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(color)
        .without_time();
    // Parsing a filter costs time on every container start; only do it when asked to.
    match std::env::var("RUST_LOG") {
        Ok(filter) if !filter.trim().is_empty() => builder
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init(),
        _ => builder.with_max_level(level).init(),
    }
}

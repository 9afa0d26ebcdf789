//! `moonauth completions SHELL`: the completion script, generated from the clap
//! definitions in `cli.rs`, so it never drifts from the real flags.

use std::io::{self, Write};

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::Result;
use crate::exit::Exit;

pub fn run(args: CompletionsArgs) -> Result<Exit> {
    // Generated into memory first: clap_complete panics on a failed write, and a closed
    // pipe (`moonauth completions bash | head`) must end quietly instead.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "moonauth", &mut script);
    super::written(print(&script))?;
    Ok(Exit::Ok)
}

/// Writes generated text to stdout; a closed pipe is not an error.
pub(super) fn print(bytes: &[u8]) -> io::Result<()> {
    let stdout = io::stdout();
    let mut w = stdout.lock();
    match w.write_all(bytes).and_then(|_| w.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

//! `moonauth man`: the man page, generated from the clap definitions in `cli.rs`
//! (nothing is committed that could go stale). `moonauth man | man -l -` reads it;
//! packagers write it to `moonauth.1`.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Error, Result};
use crate::exit::Exit;

pub fn run() -> Result<Exit> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| Error::io("rendering the man page", e))?;
    super::written(super::completions::print(&page))?;
    Ok(Exit::Ok)
}

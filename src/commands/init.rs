//! `moonauth init`: the compose init service.

use serde::Serialize;

use crate::cli::InitArgs;
use crate::config::{Config, Overrides};
use crate::error::Result;
use crate::exit::Exit;
use crate::init::{self, DirReport};
use crate::output::{self, Render};
use crate::source::Env;

/// What init did, per login directory.
#[derive(Debug, Serialize)]
pub struct InitReport {
    pub schema: &'static str,
    pub uid: u32,
    pub gid: u32,
    pub dirs: Vec<DirReport>,
}

impl Render for InitReport {
    fn human(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        for d in &self.dirs {
            let what = d.runtime.map(|r| r.as_str()).unwrap_or("store");
            if d.changes.is_empty() {
                writeln!(
                    w,
                    "{:<7} {}: ready for {}:{} (no changes)",
                    what,
                    d.dir.display(),
                    self.uid,
                    self.gid
                )?;
            } else {
                writeln!(w, "{:<7} {}: {} change(s)", what, d.dir.display(), d.changes.len())?;
                for c in &d.changes {
                    writeln!(w, "          {}: {}", c.path.display(), c.what)?;
                }
            }
        }
        Ok(())
    }
}

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

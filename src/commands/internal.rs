//! `moonauth internal …`: steps moonauth runs inside containers it starts.

use crate::apply;
use crate::cli::ApplyLoginArgs;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::runtime;

pub fn apply_login(args: ApplyLoginArgs) -> Result<Exit> {
    let runtime = runtime::parse_login_runtime(&args.runtime).map_err(|reason| Error::InvalidFlag {
        flag: "--runtime",
        value: args.runtime.clone(),
        reason,
    })?;
    if args.discard {
        apply::discard(&args.staging)?;
        return Ok(Exit::Ok);
    }
    let applied = apply::apply_login(runtime, &args.dir, &args.staging, args.uid, args.gid, args.prune)?;
    tracing::info!(installed = ?applied.installed, removed = ?applied.removed, "login applied");
    Ok(Exit::Ok)
}

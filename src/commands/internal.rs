//! `moonauth internal …`: steps moonauth runs inside containers it starts, and a
//! store benchmark for tests and scripts.

use std::time::Instant;

use crate::cli::{ApplyLoginArgs, StoreBenchArgs};
use crate::config::{Config, Overrides};
use crate::credentials::apply;
use crate::error::Result;
use crate::exit::Exit;
use crate::rotation;
use crate::source::Env;
use crate::state::store;

pub fn apply_login(args: ApplyLoginArgs) -> Result<Exit> {
    let runtime = super::login_runtime(&args.runtime, "--runtime")?;
    if args.discard {
        apply::discard(&args.staging)?;
        return Ok(Exit::Ok);
    }
    let applied = apply::apply_login(
        runtime.require_login()?,
        &args.dir,
        &args.staging,
        args.uid,
        args.gid,
        args.prune,
    )?;
    tracing::info!(installed = ?applied.installed, removed = ?applied.removed, "login applied");
    Ok(Exit::Ok)
}

/// `internal store-bench`: `--ops` read-modify-writes of the store in
/// `MOONAUTH_STATE_DIR`, each the one a task start makes (pick an account, mark it
/// used), then one JSON line with the rate. Run many at once to measure contention;
/// the store's `revision` counts the writes, so lost updates show.
pub fn store_bench(args: StoreBenchArgs, env: &Env) -> Result<Exit> {
    let runtime = super::login_runtime(&args.runtime, "--runtime")?;
    let config = Config::resolve(env, &Overrides::default())?;
    // With --keep-going a store that cannot be opened yet (a database restarting while
    // this process starts) is tried again, for at most 100 tries 100 ms apart.
    let mut tries = 0;
    let store = loop {
        match crate::state::open(&config) {
            Ok(store) => break store,
            Err(e) if args.keep_going && tries < 100 => {
                tracing::warn!("could not open the store yet: {e}");
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    };
    let settings = rotation::Settings::default();
    let mut rng = fastrand::Rng::new();
    let start = Instant::now();
    let (mut landed, mut failed) = (0u64, 0u64);
    for _ in 0..args.ops {
        let now = std::time::SystemTime::now();
        let updated = store.update(store::DEFAULT_LOCK_TIMEOUT, |state| {
            let picked = rotation::pick(state, runtime, &settings, now, &mut rng).map(|a| a.alias.clone());
            if let Some(alias) = picked {
                // The alias was just found in this state, so marking it cannot fail.
                let _ = state.mark_used(&alias, now);
            }
        });
        match updated {
            Ok(()) => landed += 1,
            Err(e) if args.keep_going => {
                tracing::warn!("update failed: {e}");
                failed += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "ops": args.ops,
            "landed": landed,
            "failed": failed,
            "seconds": seconds,
            "ops_per_sec": landed as f64 / seconds.max(f64::EPSILON),
        })
    );
    Ok(Exit::Ok)
}

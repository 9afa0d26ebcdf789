//! `moonauth renew`: refresh shared OAuth logins ahead of expiry, once or (`--watch`)
//! for as long as the service runs.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::agents::{self, LoginRuntime, Runtime};
use crate::cli::RenewArgs;
use crate::config::{Config, Overrides};
use crate::credentials::{self, human_duration};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::lease::LoginKey;
use crate::output;
use crate::renew::{self, RenewOptions, RenewOutcome, RenewReport, RenewStatus};
use crate::source::Env;

/// Set by SIGTERM / SIGINT: the current refresh finishes, its locks are released, and
/// the command ends with the status it has.
static STOP: AtomicBool = AtomicBool::new(false);

/// One login to renew, and whether the user named it (a missing login they named is an
/// error; a configured default that does not exist on this machine is not).
struct Target {
    runtime: Runtime,
    dir: PathBuf,
    named: bool,
    /// The store account whose login this is, to record a failed refresh on it.
    account: Option<String>,
}

pub fn run(args: RenewArgs, env: &Env) -> Result<Exit> {
    let config = Config::resolve(
        env,
        &Overrides {
            renew_lead: args.lead.clone(),
            ..Default::default()
        },
    )?;
    let targets = targets(&args, &config)?;
    let mut opts = RenewOptions::from_config(&config);
    opts.force = args.force;
    opts.dry_run = args.dry_run;
    opts.stop = Some(&STOP);
    install_stop_handlers();

    if args.watch {
        let logins: Vec<(LoginKey, PathBuf)> = targets
            .iter()
            .map(|t| (LoginKey::new(t.runtime, t.account.clone()), t.dir.clone()))
            .collect();
        tracing::info!(logins = logins.len(), lead = %human_duration(opts.lead), "watching");
        let clock = || super::clock(env).map_or_else(|_| std::time::SystemTime::now(), |c| c.now());
        let mut failed = None;
        renew::watch(&logins, &opts, &STOP, &clock, &mut |o| {
            if let Some(alias) = targets.iter().find(|t| t.dir == o.dir).and_then(|t| t.account.as_ref()) {
                if let Err(e) = record_in_store(&config, alias, o) {
                    tracing::warn!("could not record the failure of {alias} in the store: {e}");
                }
            }
            if let Err(e) = print_event(o, args.json) {
                // Nobody reads our output any more: stop as on SIGTERM.
                failed.get_or_insert(e);
                STOP.store(true, Ordering::SeqCst);
            }
        });
        return match failed {
            Some(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Error::io("writing to stdout", e)),
            _ => Ok(Exit::Ok),
        };
    }

    let now = super::clock(env)?.now();
    let mut logins = Vec::with_capacity(targets.len());
    let mut exit = Exit::Ok;
    for t in &targets {
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        let key = LoginKey::new(t.runtime, t.account.clone());
        let outcome = renew::renew_login(&key, &t.dir, &opts, now);
        if let Some(alias) = t.account.as_ref().filter(|_| !args.dry_run) {
            record_in_store(&config, alias, &outcome)?;
        }
        let this = match outcome.status {
            RenewStatus::Missing if !t.named => Exit::Ok,
            _ => outcome.exit(),
        };
        exit = worst(exit, this);
        logins.push(outcome);
    }
    let report = RenewReport::new(opts.lead, logins, exit);
    super::written(output::emit(&report, args.json))?;
    Ok(exit)
}

/// A login that cannot be used outranks one that failed for now.
fn worst(a: Exit, b: Exit) -> Exit {
    let rank = |e: Exit| match e {
        Exit::Ok => 0,
        Exit::Failure => 1,
        _ => 2,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn print_event(o: &RenewOutcome, json: bool) -> io::Result<()> {
    let stdout = io::stdout();
    let mut w = stdout.lock();
    if json {
        serde_json::to_writer(&mut w, o).map_err(io::Error::from)?;
        writeln!(w)?;
    } else {
        output::renew_line(&mut w, o)?;
    }
    w.flush()
}

fn targets(args: &RenewArgs, config: &Config) -> Result<Vec<Target>> {
    let runtime = match &args.runtime {
        None => None,
        Some(v) => Some(agents::parse_login_runtime(v).map_err(|reason| Error::InvalidFlag {
            flag: "RUNTIME",
            value: v.clone(),
            reason,
        })?),
    };
    let configured = |rt: Runtime, named: bool| Target {
        runtime: rt,
        dir: config
            .runtime(rt)
            .map(|s| s.login_dir.value.clone())
            .unwrap_or_default(),
        named,
        account: None,
    };
    let stored = stored_accounts(config)?;
    if let Some(alias) = &args.account {
        let Some(a) = stored.iter().find(|a| &a.alias == alias) else {
            return Err(Error::InvalidFlag {
                flag: "--account",
                value: alias.clone(),
                reason: "no account has this alias (see `moonauth accounts ls`)".into(),
            });
        };
        let Some(dir) = a.login_dir.clone() else {
            return Err(Error::InvalidFlag {
                flag: "--account",
                value: alias.clone(),
                reason: "it is an API key: there is no login to refresh".into(),
            });
        };
        if runtime.is_some_and(|rt| rt != a.runtime) {
            return Err(Error::InvalidFlag {
                flag: "--account",
                value: alias.clone(),
                reason: format!("it is a {} account", a.runtime),
            });
        }
        return Ok(vec![Target {
            runtime: a.runtime,
            dir,
            named: true,
            account: Some(alias.clone()),
        }]);
    }
    let mut out: Vec<Target> = Vec::new();
    match runtime {
        Some(rt) if args.dir.is_empty() => out.push(configured(rt, true)),
        Some(rt) => out.extend(args.dir.iter().map(|d| Target {
            runtime: rt,
            dir: d.clone(),
            named: true,
            account: None,
        })),
        None => {
            if args.all || args.dir.is_empty() {
                out.push(configured(Runtime::Codex, false));
                out.push(configured(Runtime::Claude, false));
            }
            for d in &args.dir {
                for rt in detect(d)? {
                    out.push(Target {
                        runtime: rt,
                        dir: d.clone(),
                        named: true,
                        account: None,
                    });
                }
            }
        }
    }
    if let (Some(rt), true) = (runtime, args.all) {
        out.push(configured(rt, false));
    }
    if args.all {
        for a in stored
            .iter()
            .filter(|a| a.enabled && runtime.is_none_or(|rt| rt == a.runtime))
        {
            if let Some(dir) = &a.login_dir {
                out.push(Target {
                    runtime: a.runtime,
                    dir: dir.clone(),
                    named: false,
                    account: Some(a.alias.clone()),
                });
            }
        }
    }
    let mut seen = Vec::new();
    out.retain(|t| {
        let key = (t.runtime, t.dir.clone());
        !seen.contains(&key) && {
            seen.push(key);
            true
        }
    });
    Ok(out)
}

/// The OAuth accounts in the store, when there is one.
fn stored_accounts(config: &Config) -> Result<Vec<crate::state::accounts::Account>> {
    match crate::state::open_existing(config)? {
        Some(store) => {
            let state = store.read_unlocked()?;
            Ok(state.accounts.into_iter().filter(|a| a.login_dir.is_some()).collect())
        }
        None => Ok(Vec::new()),
    }
}

/// Marks a store account whose refresh failed (dead at once; three in a row otherwise),
/// so `accounts ls`, `pick` and `run` know it needs a new login.
fn record_in_store(config: &Config, alias: &str, outcome: &RenewOutcome) -> Result<()> {
    let dead = match outcome.status {
        RenewStatus::Dead | RenewStatus::Blocked => true,
        RenewStatus::Failed => false,
        _ => return Ok(()),
    };
    let Some(store) = crate::state::open_existing(config)? else {
        return Ok(());
    };
    let now = std::time::SystemTime::now();
    store.update(crate::state::DEFAULT_LOCK_TIMEOUT, |s| {
        s.record_refresh_failure(alias, &outcome.detail, dead, now).map(|_| ())
    })??;
    Ok(())
}

/// The runtimes whose login file a directory holds.
fn detect(dir: &Path) -> Result<Vec<Runtime>> {
    let found: Vec<Runtime> = [LoginRuntime::Codex, LoginRuntime::Claude]
        .into_iter()
        .filter(|rt| credentials::login_file(*rt, dir).exists())
        .map(LoginRuntime::runtime)
        .collect();
    if found.is_empty() {
        return Err(Error::InvalidFlag {
            flag: "--dir",
            value: dir.display().to_string(),
            reason: "holds neither .credentials.json (claude) nor auth.json (codex); name the runtime: moonauth renew claude --dir DIR".into(),
        });
    }
    Ok(found)
}

extern "C" fn on_stop(_: nix::libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGTERM and SIGINT set [`STOP`] instead of killing the process mid-write.
fn install_stop_handlers() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(SigHandler::Handler(on_stop), SaFlags::SA_RESTART, SigSet::empty());
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        if let Err(e) = unsafe { sigaction(sig, &action) } {
            tracing::warn!(signal = %sig, error = %e, "cannot install a signal handler");
        }
    }
}

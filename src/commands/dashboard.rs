//! `moonauth dashboard [--port N] [--bind ADDR]`: checks the address (loopback only),
//! opens the store, makes the per-start token, prints the URL with it and serves until
//! Ctrl-C or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;

use crate::cli::DashboardArgs;
use crate::config::{Config, Overrides};
use crate::dashboard::{self, App, Token};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::source::Env;

pub fn run(args: DashboardArgs, env: &Env) -> Result<Exit> {
    let ip = dashboard::parse_bind(&args.bind)?;
    let config = Config::resolve(env, &Overrides::default())?;
    let store = crate::state::open(&config)?;
    let clock = super::clock(env)?;
    // Two workers: the machine's other work (the workers, Docker) matters more.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, args.port))
            .await
            .map_err(|e| Error::io(format!("listen on {ip} port {}", args.port), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("read the dashboard's address", e))?;
        let token = Token::generate().map_err(|e| Error::io("make the dashboard's token", e))?;
        // The URL (with the token) goes to stdout only, never to the logs.
        let mut stdout = std::io::stdout();
        super::written(writeln!(stdout, "{}", dashboard::url(addr, &token)).and_then(|_| stdout.flush()))?;
        eprintln!("moonauth: dashboard on {addr}; open the URL above (it holds this start's token); Ctrl-C stops it");
        let app = App::new(store, env.clone(), config, clock, token, addr);
        dashboard::serve(listener, app, stop_signal()).await
    })?;
    Ok(Exit::Ok)
}

/// Resolves on Ctrl-C or SIGTERM (`docker stop`).
async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

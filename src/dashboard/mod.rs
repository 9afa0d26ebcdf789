//! `moonauth dashboard`: a loopback HTTP server with a JSON API over the account store
//! and one page that drives it. It serves the same report structs the CLI's `--json`
//! prints ([`crate::state::report`]), changes accounts through the store's locked
//! update, and runs re-auths with [`crate::docker::login`]. Who may talk to it is
//! [`security`]'s; the API is [`api`]'s; the page is `page/` (compiled in, nothing
//! fetched at run time). It decides nothing about rotation itself.

pub mod api;
pub mod cache;
pub mod reauth;
pub mod security;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::json;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::source::Env;
use crate::state::Store;
use crate::time::Clock;

pub use security::Token;

/// The addresses `--bind` accepts: loopback only.
pub const BIND_RULE: &str = "the dashboard listens on loopback only: 127.0.0.1 or ::1";

/// Parses `--bind`: 127.0.0.1 or ::1; anything else (another address, a name, 0.0.0.0)
/// is refused, since the API can change every account.
pub fn parse_bind(value: &str) -> Result<IpAddr> {
    let refused = || Error::InvalidFlag {
        flag: "--bind",
        value: value.to_string(),
        reason: BIND_RULE.into(),
    };
    let ip: IpAddr = value.trim_matches(['[', ']']).parse().map_err(|_| refused())?;
    if ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST) {
        Ok(ip)
    } else {
        Err(refused())
    }
}

/// The URL to open, with the token (like Jupyter's): printed once at start.
pub fn url(addr: SocketAddr, token: &Token) -> String {
    let host = security::allowed_hosts(addr).swap_remove(0);
    format!("http://{host}/?token={}", token.expose())
}

/// What every handler shares.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub env: Arc<Env>,
    pub config: Arc<Config>,
    pub clock: Clock,
    pub reauths: reauth::Reauths,
    /// The last state read, while `state.json` is unchanged.
    pub cache: Arc<cache::StateCache>,
    token: Token,
    hosts: Arc<Vec<String>>,
}

impl App {
    /// The dashboard's state for a server listening on `addr`.
    pub fn new(store: Store, env: Env, config: Config, clock: Clock, token: Token, addr: SocketAddr) -> App {
        App {
            store,
            env: Arc::new(env),
            config: Arc::new(config),
            clock,
            reauths: reauth::Reauths::default(),
            cache: Arc::default(),
            token,
            hosts: Arc::new(security::allowed_hosts(addr)),
        }
    }
}

const PAGE: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/app.css");

/// The routes: the page and its two files, and the API (every `/api/` route answers
/// only with the token; see [`security::check`]).
pub fn router(app: App) -> Router {
    let api = Router::new()
        .route("/api/accounts", get(api::accounts))
        .route("/api/accounts/{alias}/enabled", put(api::set_enabled))
        .route(
            "/api/accounts/{alias}/reauth",
            get(api::reauth_state).post(api::reauth_start),
        )
        .route("/api/accounts/{alias}/reauth/code", post(api::reauth_code))
        .route("/api/force", post(api::force_set))
        .route("/api/force/clear", post(api::force_clear))
        .route("/api/settings", get(api::settings_get).put(api::settings_put))
        .route("/api/settings/reset", post(api::settings_reset))
        .route("/api/decisions", get(api::decisions));
    Router::new()
        .route("/", get(|| async { asset(PAGE, "text/html; charset=utf-8") }))
        .route(
            "/app.js",
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route("/app.css", get(|| async { asset(STYLE, "text/css; charset=utf-8") }))
        .merge(api)
        .fallback(|| async { api::ApiError::not_found("route") })
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Refuses what [`security::check`] refuses, and sets the headers every answer carries:
/// no caching, no sniffing, no framing, no referrer (the page's URL holds the token),
/// and a content policy that allows only the dashboard's own files.
async fn guard(State(app): State<App>, request: Request, next: Next) -> Response {
    let checked = security::check(
        request.method(),
        request.uri().path(),
        request.headers(),
        &app.hosts,
        &app.token,
    );
    let mut response = match checked {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            // The path only: the query may hold the token.
            tracing::info!(path = request.uri().path(), ?refusal, "request refused");
            refused(refusal).into_response()
        }
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn refused(refusal: security::Refusal) -> api::ApiError {
    use security::Refusal::*;
    let (status, code, message) = match refusal {
        ForeignHost => (
            StatusCode::FORBIDDEN,
            "foreign-host",
            "the Host header is not this dashboard's loopback address and port",
        ),
        MissingToken => (
            StatusCode::UNAUTHORIZED,
            "missing-token",
            "send the token printed at start as `Authorization: Bearer TOKEN`",
        ),
        ForeignOrigin => (
            StatusCode::FORBIDDEN,
            "foreign-origin",
            "the request comes from another site's page",
        ),
    };
    api::ApiError::new(status, code, message, json!({}))
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::io("serve the dashboard", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_accepts_loopback_only() {
        assert_eq!(parse_bind("127.0.0.1").unwrap(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(parse_bind("::1").unwrap(), IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(parse_bind("[::1]").unwrap(), IpAddr::V6(Ipv6Addr::LOCALHOST));
        for refused in ["0.0.0.0", "::", "192.168.1.5", "localhost", "127.0.0.2", ""] {
            let err = parse_bind(refused).unwrap_err();
            assert_eq!(err.exit(), crate::exit::Exit::Usage, "{refused}");
            assert!(err.to_string().contains("loopback only"), "{err}");
        }
    }
}

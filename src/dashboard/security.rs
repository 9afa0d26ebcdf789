//! Who may talk to the dashboard. Any web page the operator visits can send requests to
//! a localhost port, so binding to loopback is not enough: a request is served only when
//! its `Host` is the loopback address and port the server listens on (a DNS-rebinding
//! page names its own host there), every `/api/` request carries the per-start token
//! (`Authorization: Bearer …`, compared in constant time), and a request a browser marks
//! with an `Origin` comes from the dashboard's own origin (CSRF). docs/dashboard.md.

use std::net::{IpAddr, SocketAddr};

use axum::http::{header, HeaderMap, Method};
use subtle::ConstantTimeEq;

/// The per-start token: 32 random bytes from the OS, as 64 hex digits. Its `Debug`
/// prints `[redacted]`; only the start-up line that prints the URL formats it.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::redact::REDACTED)
    }
}

impl Token {
    /// A fresh token from the operating system's randomness.
    pub fn generate() -> std::io::Result<Token> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Token(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// The token itself, for the one line that prints the dashboard's URL.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is the token, in time that does not depend on where they differ.
    pub fn matches(&self, given: &str) -> bool {
        bool::from(self.0.as_bytes().ct_eq(given.as_bytes()))
    }
}

/// Why a request was refused before any handler saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` is not the loopback address and port the dashboard listens on.
    ForeignHost,
    /// No `Authorization: Bearer` with the per-start token.
    MissingToken,
    /// `Origin` is set and is not the dashboard's own.
    ForeignOrigin,
}

/// The `Host` values the dashboard answers to: its address and port, and `localhost`
/// with the same port (a name nobody else can point at this machine).
pub fn allowed_hosts(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let ip = match addr.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    vec![format!("{ip}:{port}"), format!("localhost:{port}")]
}

/// Checks a request's headers: `Host` always; for `/api/` the token and `Origin`.
pub fn check(method: &Method, path: &str, headers: &HeaderMap, hosts: &[String], token: &Token) -> Result<(), Refusal> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return Err(Refusal::ForeignHost);
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let own = hosts
            .iter()
            .any(|h| origin.eq_ignore_ascii_case(&format!("http://{h}")));
        // A page's own GETs carry no Origin; a foreign one on a read is refused too, so
        // no other site learns anything through a misconfigured browser.
        if !own && (path.starts_with("/api/") || !is_safe(method)) {
            return Err(Refusal::ForeignOrigin);
        }
    }
    if path.starts_with("/api/") {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or("");
        if !token.matches(bearer.trim()) {
            return Err(Refusal::MissingToken);
        }
    }
    Ok(())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn hosts_are_the_bound_address_and_localhost_with_the_port() {
        assert_eq!(
            allowed_hosts("127.0.0.1:8080".parse().unwrap()),
            ["127.0.0.1:8080", "localhost:8080"]
        );
        assert_eq!(allowed_hosts("[::1]:9".parse().unwrap()), ["[::1]:9", "localhost:9"]);
    }

    #[test]
    fn a_request_needs_the_host_the_token_and_no_foreign_origin() {
        let token = Token::generate().unwrap();
        let bearer = format!("Bearer {}", token.expose());
        let hosts = allowed_hosts("127.0.0.1:8080".parse().unwrap());
        let check = |m: Method, path: &str, h: &HeaderMap| check(&m, path, h, &hosts, &token);
        let good = headers(&[(header::HOST, "127.0.0.1:8080"), (header::AUTHORIZATION, &bearer)]);
        assert_eq!(check(Method::PUT, "/api/settings", &good), Ok(()));
        let rebound = headers(&[(header::HOST, "evil.example:8080"), (header::AUTHORIZATION, &bearer)]);
        assert_eq!(check(Method::GET, "/api/accounts", &rebound), Err(Refusal::ForeignHost));
        assert_eq!(check(Method::GET, "/", &headers(&[])), Err(Refusal::ForeignHost));
        let no_token = headers(&[(header::HOST, "localhost:8080")]);
        assert_eq!(
            check(Method::GET, "/api/accounts", &no_token),
            Err(Refusal::MissingToken)
        );
        assert_eq!(check(Method::GET, "/", &no_token), Ok(()));
        let wrong = headers(&[(header::HOST, "localhost:8080"), (header::AUTHORIZATION, "Bearer 00")]);
        assert_eq!(check(Method::GET, "/api/accounts", &wrong), Err(Refusal::MissingToken));
        let mut csrf = good.clone();
        csrf.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert_eq!(
            check(Method::POST, "/api/force/clear", &csrf),
            Err(Refusal::ForeignOrigin)
        );
        let mut own = good.clone();
        own.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert_eq!(check(Method::POST, "/api/force/clear", &own), Ok(()));
    }

    #[test]
    fn the_token_never_shows_in_debug() {
        let token = Token::generate().unwrap();
        assert_eq!(token.expose().len(), 64);
        assert!(!format!("{token:?}").contains(token.expose()));
    }
}

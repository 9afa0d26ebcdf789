//! Reading a JWT's payload (base64url JSON) without verifying it: moonauth only needs
//! the claims a person wants to see (expiry, e-mail, plan). The token is never kept.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

/// The decoded claims of a JWT, or why they could not be read (the reason never
/// contains any part of the token).
pub fn claims(token: &str) -> Result<Value, &'static str> {
    let mut parts = token.split('.');
    let (_header, payload) = match (parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(_sig)) => (h, p),
        _ => return Err("not a JWT (expected three dot-separated parts)"),
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "JWT payload is not base64url")?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| "JWT payload is not JSON")?;
    if value.is_object() {
        Ok(value)
    } else {
        Err("JWT payload is not a JSON object")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_payload_claims() {
        // {"exp":4102444800,"email":"a@b.c"}
        let payload = URL_SAFE_NO_PAD.encode(br#"{"exp":4102444800,"email":"a@b.c"}"#);
        let token = format!("eyJhbGciOiJub25lIn0.{payload}.sig");
        let c = claims(&token).unwrap();
        assert_eq!(c["exp"], 4102444800u64);
        assert_eq!(c["email"], "a@b.c");
    }

    #[test]
    fn rejects_non_jwts_without_echoing_them() {
        let err = claims("rt_secret-value").unwrap_err();
        assert!(!err.contains("secret"));
        assert!(claims("a.!!!.c").is_err());
    }
}

//! The one place that knows what a secret looks like.
//!
//! Tokens travel inside [`Secret`], whose `Debug` and `Display` print `[redacted]`;
//! only code that hands a token to a child process or a file calls [`Secret::expose`].
//! [`scrub`] masks anything token-shaped in text that came from elsewhere (a CLI's
//! output, a server's error body) before it reaches a log line or a report.

use std::fmt;

/// What a redacted value prints as.
pub const REDACTED: &str = "[redacted]";

/// A credential value: a token, an API key. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a raw value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The raw value, for handing to a child process or writing to a credentials file.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Prefixes that start a credential in the formats the CLIs use.
const TOKEN_PREFIXES: &[&str] = &["sk-", "rt_", "eyJ", "ya29.", "ghp_", "gho_", "github_pat_"];

/// Masks every token-shaped word in `text`: known credential prefixes, JWTs, and long
/// unbroken runs of token characters. Redacts first, so a caller may truncate after.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for ch in text.chars() {
        if is_token_char(ch) {
            word.push(ch);
        } else {
            flush_word(&mut out, &mut word);
            out.push(ch);
        }
    }
    flush_word(&mut out, &mut word);
    out
}

fn is_token_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.' | '+' | '/' | '=' | '*')
}

fn flush_word(out: &mut String, word: &mut String) {
    if looks_like_token(word) {
        out.push_str(REDACTED);
    } else {
        out.push_str(word);
    }
    word.clear();
}

/// A known credential prefix, with more after it, at the start of `word` or glued behind a
/// mark such as `=` (`key=sk-ant-…`, `Bearer+sk-…`): not behind a letter or digit, so
/// `task-list` is no `sk-` token.
fn has_token_prefix(word: &str) -> bool {
    TOKEN_PREFIXES.iter().any(|prefix| {
        word.match_indices(prefix).any(|(at, _)| {
            let behind_a_mark = word[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_ascii_alphanumeric());
            behind_a_mark && word.len() - at > 6
        })
    })
}

fn looks_like_token(word: &str) -> bool {
    let trimmed = word.trim_matches(|c: char| c == '.' || c == '/');
    if has_token_prefix(trimmed) {
        return true;
    }
    // A long run that mixes letters and digits and is not a path or a URL piece is
    // more likely a token than a word.
    let long = trimmed.len() >= 32 && !trimmed.contains('/');
    let has_digit = trimmed.chars().any(|c| c.is_ascii_digit());
    let has_alpha = trimmed.chars().any(|c| c.is_ascii_alphabetic());
    long && has_digit && has_alpha
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats_its_value() {
        let s = Secret::new("sk-ant-api03-abcdef");
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(s.expose(), "sk-ant-api03-abcdef");
    }

    #[test]
    fn scrub_masks_known_token_shapes() {
        let text = "API key configured - sk-proj-***abcd and rt_secretvalue1 plus eyJhbGciOi.eyJzdWIi.sig";
        let out = scrub(text);
        assert!(!out.contains("sk-proj"), "{out}");
        assert!(!out.contains("rt_secret"), "{out}");
        assert!(!out.contains("eyJ"), "{out}");
        assert!(out.starts_with("API key configured - [redacted]"));
    }

    #[test]
    fn scrub_keeps_ordinary_prose_and_paths() {
        let text = "Not logged in · Please run /login in /home/app/.claude (exit 1)";
        assert_eq!(scrub(text), text);
    }

    #[test]
    fn a_key_in_the_wrong_variable_is_not_echoed_by_the_error() {
        let e = crate::error::Error::InvalidVariable {
            var: "MOONAUTH_AUTH_MODE".into(),
            value: "sk-ant-api03-secretvalue".into(),
            reason: "allowed values: auto, oauth, api-key".into(),
        };
        let msg = e.to_string();
        assert!(
            msg.contains("MOONAUTH_AUTH_MODE") && !msg.contains("secretvalue"),
            "{msg}"
        );
    }

    #[test]
    fn scrub_masks_a_token_glued_behind_a_mark() {
        let out = scrub("key=sk-proj-CANARY9U1im2q7B9 and auth=Bearer+rt_CANARYvalue");
        assert!(!out.contains("CANARY"), "{out}");
        assert_eq!(scrub("task-list-entries, disk-usage"), "task-list-entries, disk-usage");
    }

    #[test]
    fn scrub_masks_long_mixed_runs() {
        let out = scrub("token=0123456789abcdef0123456789abcdef0123 done");
        assert!(out.contains(REDACTED) && !out.contains("0123456789abcdef"), "{out}");
    }
}

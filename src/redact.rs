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

/// Shortest value [`Redactor`] masks: shorter ones (`1`, `true`) would blank out prose,
/// and no token or key moonauth knows is that short.
pub const MIN_KNOWN_SECRET_CHARS: usize = 8;

/// Masks the exact credential values moonauth knows (the stored accounts' tokens and
/// keys, the credential variables of the run), then everything [`scrub`] would: a shape
/// rule alone misses a token like `CANARY-tok-abc/def+ghi=` or `token=abcdef…`.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a value that contains another is masked whole.
    values: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} values)", self.values.len())
    }
}

impl Redactor {
    /// A redactor that knows no values yet (it still scrubs shapes).
    pub fn new() -> Self {
        Redactor::default()
    }

    /// Adds a credential value (and the forms it takes in JSON text and in a JWT's parts).
    pub fn add(&mut self, value: &str) {
        let value = value.trim();
        if value.chars().count() < MIN_KNOWN_SECRET_CHARS {
            return;
        }
        let mut forms = vec![value.to_string()];
        // JSON output may escape `/` as `\/`.
        if value.contains('/') {
            forms.push(value.replace('/', "\\/"));
        }
        // A JWT's parts travel apart too (a CLI may print only the payload).
        if value.starts_with("eyJ") {
            forms.extend(value.split('.').filter(|p| p.len() >= 16).map(str::to_string));
        }
        for form in forms {
            if !self.values.contains(&form) {
                self.values.push(form);
            }
        }
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// Every form of every value it knows, longest first (for `::add-mask::`).
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(String::as_str)
    }

    /// Whether it knows any value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with only the known values masked: for text that is parsed afterwards
    /// (a CLI's output lines), where masking shapes would also blank session ids.
    pub fn mask_known(&self, text: &str) -> String {
        let mut out = text.to_string();
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), REDACTED);
            }
        }
        out
    }

    /// `text` with every known value and every token shape masked.
    pub fn redact(&self, text: &str) -> String {
        scrub(&self.mask_known(text))
    }

    /// A redacted excerpt of at most `max` characters: redacted first, then cut, so a
    /// cut never leaves a secret's prefix that no longer matches the value.
    pub fn excerpt(&self, text: &str, max: usize) -> String {
        truncate(self.redact(text).trim(), max)
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

/// Text from a file a person may have edited (an alias), made safe for a terminal:
/// token-shaped words masked, control characters escaped (`\u{1b}`, never a raw escape
/// sequence), cut to `max` characters after that.
pub fn printable(text: &str, max: usize) -> String {
    let escaped: String = scrub(text)
        .chars()
        .flat_map(|c| {
            let keep = !c.is_control() && c != '\u{2028}' && c != '\u{2029}';
            let out: Vec<char> = if keep { vec![c] } else { c.escape_default().collect() };
            out
        })
        .collect();
    truncate(&escaped, max)
}

/// Cuts `text` to at most `max` characters, marking a cut with `…`. Call it on text that
/// is redacted already: a cut through a secret would leave a prefix no pattern knows.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
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

/// Names that, before `=`, say the value after it is a credential (`token=…`, `api_key=…`).
const SECRET_NAMES: &[&str] = &["token", "key", "secret", "password", "passwd", "credential", "auth"];

/// Values that say a credential is absent (`key=unset`), which are worth keeping in a
/// message and are never a secret.
fn is_placeholder(value: &str) -> bool {
    const WORDS: &[&str] = &[
        "unset", "none", "null", "nil", "empty", "missing", "set", "true", "false", "yes", "no",
    ];
    let v = value.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    v.is_empty() || WORDS.iter().any(|w| v.eq_ignore_ascii_case(w))
}

fn looks_like_token(word: &str) -> bool {
    let trimmed = word.trim_matches(|c: char| c == '.' || c == '/');
    if let Some((name, value)) = trimmed.split_once('=') {
        let name = name.to_ascii_lowercase();
        if !value.is_empty() && !is_placeholder(value) && SECRET_NAMES.iter().any(|s| name.ends_with(s)) {
            return true;
        }
    }
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
    fn a_known_value_is_masked_whatever_its_shape_and_before_any_cut() {
        let mut r = Redactor::new();
        r.add("CANARY-tok-abc/def+ghi=");
        r.add("CANARYabcdefghijklmnopqrstu");
        r.add("short");
        let text = "401 OAuth token revoked CANARY-tok-abc/def+ghi= (key CANARYabcdefghijklmnopqrstu) short";
        let out = r.redact(text);
        assert!(!out.contains("CANARY"), "{out}");
        assert!(out.ends_with("short"), "values under the minimum are left: {out}");
        // Cut inside where the secret was: the excerpt still holds none of it.
        let cut = r.excerpt(text, 30);
        assert!(!cut.contains("CANARY") && cut.chars().count() <= 30, "{cut}");
        assert!(!r.redact(r#"{"t":"CANARY-tok-abc\/def+ghi="}"#).contains("CANARY"));
    }

    #[test]
    fn scrub_masks_values_named_as_credentials() {
        let out = scrub("failed: token=CANARYabcdefghijklmnopqrstu, api_key=xyz and mode=fast");
        assert!(!out.contains("CANARY") && !out.contains("xyz"), "{out}");
        assert!(out.contains("mode=fast"), "{out}");
        assert_eq!(
            scrub("key=unset token=none"),
            "key=unset token=none",
            "absence is no secret"
        );
    }

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(printable("\u{1b}[31mx\u{7}", 40), "\\u{1b}[31mx\\u{7}");
        assert_eq!(printable("abcdef", 4), "abc…");
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

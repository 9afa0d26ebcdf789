//! Time: the one [`Clock`] every command reads (the system's, or `MOONAUTH_NOW` for
//! reproducible output), and every way moonauth writes or reads a time (RFC 3339, a
//! duration for people). Imports nothing of moonauth.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

/// Where "now" comes from: the system clock, or an instant pinned by `MOONAUTH_NOW` that
/// does not move, so every reading of one command is the same and its output is
/// reproducible. Waits measure with `Instant`, never with a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    System,
    Pinned { at: SystemTime },
}

impl Clock {
    /// A clock pinned at `at`.
    pub fn pinned(at: SystemTime) -> Clock {
        Clock::Pinned { at }
    }

    /// The clock a command uses: pinned when `moonauth_now` (the value of
    /// `MOONAUTH_NOW`) is set, else the system's. Errors name the rule.
    pub fn from_setting(moonauth_now: Option<&str>) -> Result<Clock, String> {
        match moonauth_now.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(Clock::System),
            Some(v) => humantime::parse_rfc3339_weak(v)
                .map(Clock::pinned)
                .map_err(|_| "expected an RFC 3339 time such as 2026-11-24T12:00:00Z".to_string()),
        }
    }

    /// Now.
    pub fn now(&self) -> SystemTime {
        match self {
            Clock::System => SystemTime::now(),
            Clock::Pinned { at } => *at,
        }
    }
}

/// The last second moonauth builds from a login file or a token service's answer:
/// 9999-12-31T23:59:59Z, the last one RFC 3339 (four-digit years) can write. A later
/// expiry is clamped to it and read as "far future", so no input can overflow
/// `SystemTime` or make the formatting of a report fail.
pub const LATEST_EPOCH_SECS: u64 = 253_402_300_799;

/// [`LATEST_EPOCH_SECS`] as a time.
pub fn latest_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(LATEST_EPOCH_SECS)
}

/// The time `secs` seconds after the epoch (a JWT's `exp`), clamped to [`latest_time`].
pub fn time_from_secs(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.min(LATEST_EPOCH_SECS))
}

/// The time `ms` milliseconds after the epoch (Claude's `expiresAt`), clamped to [`latest_time`].
pub fn time_from_millis(ms: u64) -> SystemTime {
    if ms / 1000 >= LATEST_EPOCH_SECS {
        latest_time()
    } else {
        UNIX_EPOCH + Duration::from_millis(ms)
    }
}

/// Whether `t` is at (or past) [`latest_time`]: an expiry that was clamped.
pub fn is_far_future(t: SystemTime) -> bool {
    t >= latest_time()
}

/// RFC 3339 to the second for any time: humantime panics before the epoch and fails
/// past the year 9999, so the time is first brought into that range.
pub fn rfc3339(t: SystemTime) -> String {
    let t = t.clamp(UNIX_EPOCH, latest_time());
    humantime::format_rfc3339_seconds(t).to_string()
}

/// RFC 3339 to the microsecond (Codex's `last_refresh`), for any time (clamped like [`rfc3339`]).
pub fn rfc3339_micros(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t.clamp(UNIX_EPOCH, latest_time())).to_string()
}

/// Serde for `Option<SystemTime>` as RFC 3339 to the second, or null.
pub mod serde_rfc3339_seconds_opt {
    use std::time::SystemTime;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match time {
            Some(t) => s.serialize_some(&super::rfc3339(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| humantime::parse_rfc3339_weak(&s).map_err(D::Error::custom))
            .transpose()
    }
}

/// A duration for people: its two largest units (`3h 12m`, `22d 8h`, `1y 10mo`).
pub fn human_duration(d: Duration) -> String {
    const UNITS: [(&str, u64); 6] = [
        ("y", 365 * 86_400),
        ("mo", 30 * 86_400),
        ("d", 86_400),
        ("h", 3600),
        ("m", 60),
        ("s", 1),
    ];
    let mut left = d.as_secs();
    let mut parts = Vec::with_capacity(2);
    for (name, size) in UNITS {
        if left >= size || (parts.is_empty() && size == 1) {
            parts.push(format!("{}{name}", left / size));
            left %= size;
        } else if !parts.is_empty() {
            break;
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.join(" ")
}

/// Formats a time the way the store and reports write it: RFC 3339, UTC, milliseconds.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parses an RFC 3339 UTC time as the store writes it.
pub fn parse_time(s: &str) -> std::result::Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(s).map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))
}

/// Serde for `SystemTime` as RFC 3339.
pub mod serde_rfc3339 {
    use super::*;

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&format_time(*t))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<SystemTime, D::Error> {
        parse_time(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Serde for `Option<SystemTime>` as RFC 3339 or null.
pub mod serde_rfc3339_opt {
    use super::*;

    pub fn serialize<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> std::result::Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format_time(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<SystemTime>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => parse_time(&s).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

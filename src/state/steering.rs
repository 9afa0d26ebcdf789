//! How operators steer the rotation, as the store keeps it: the stored settings
//! (strategy, preset, weights, thresholds) with their rules, and force mode (one alias
//! that is always chosen until it expires or stops being eligible). The values are
//! checked here, so a store, an environment variable, a flag and the dashboard all
//! refuse the same things with the same words. Resolving the effective settings (default
//! < store < environment < flags) and acting on them is `rotation`'s business.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// How the next account is chosen among the eligible ones of the best tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The least recently used first (never used first), so every account takes turns.
    #[default]
    RoundRobin,
    /// Lower priority first, then the least recently used (moonauth's order before 0.x).
    Priority,
    /// At random in proportion to each account's weight (opt-in).
    WeightedRoundRobin,
    /// The account whose window resets soonest, so quota about to reset is not wasted.
    DrainSoonest,
}

impl Strategy {
    pub const ALL: [Strategy; 4] = [
        Strategy::RoundRobin,
        Strategy::Priority,
        Strategy::WeightedRoundRobin,
        Strategy::DrainSoonest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round-robin",
            Strategy::Priority => "priority",
            Strategy::WeightedRoundRobin => "weighted-round-robin",
            Strategy::DrainSoonest => "drain-soonest",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = SettingError;
    fn from_str(s: &str) -> Result<Self, SettingError> {
        Strategy::ALL
            .into_iter()
            .find(|v| v.as_str() == s.trim())
            .ok_or_else(|| {
                SettingError::new(
                    "strategy",
                    s,
                    "one of round-robin, priority, weighted-round-robin, drain-soonest",
                )
            })
    }
}

/// A named set of defaults for the weighted strategy and the thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Minimum weight 0.1, thresholds critical 10 / low 30.
    #[default]
    Balanced,
    /// Spares accounts early: minimum weight 0.2, thresholds 20 / 50.
    Conservative,
    /// Uses accounts nearly to the end: minimum weight 0.05, thresholds 5 / 15.
    Aggressive,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Balanced, Preset::Conservative, Preset::Aggressive];

    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Balanced => "balanced",
            Preset::Conservative => "conservative",
            Preset::Aggressive => "aggressive",
        }
    }

    /// The smallest weight an account gets (a weight below it counts as it).
    pub fn min_weight(self) -> f64 {
        match self {
            Preset::Balanced => 0.1,
            Preset::Conservative => 0.2,
            Preset::Aggressive => 0.05,
        }
    }

    /// The default thresholds (critical, low), percent remaining.
    pub fn thresholds(self) -> (u8, u8) {
        match self {
            Preset::Balanced => (10, 30),
            Preset::Conservative => (20, 50),
            Preset::Aggressive => (5, 15),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Preset {
    type Err = SettingError;
    fn from_str(s: &str) -> Result<Self, SettingError> {
        Preset::ALL
            .into_iter()
            .find(|v| v.as_str() == s.trim())
            .ok_or_else(|| SettingError::new("preset", s, "one of balanced, conservative, aggressive"))
    }
}

/// A setting value that breaks its rule: the field, the value as given (made safe to
/// print) and the rule in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting {field} = {value:?} is not valid: it must be {rule}")]
pub struct SettingError {
    pub field: String,
    pub value: String,
    pub rule: String,
}

impl SettingError {
    pub fn new(field: &str, value: &str, rule: &str) -> SettingError {
        SettingError {
            field: field.to_string(),
            value: crate::redact::printable(&crate::redact::scrub(value), 64),
            rule: rule.to_string(),
        }
    }
}

impl SettingError {
    /// The error found at `origin` (`settings set`, `env VAR`, `store`, `flag --…`).
    pub fn at(self, origin: impl std::fmt::Display) -> crate::error::Error {
        crate::error::Error::InvalidSetting {
            origin: origin.to_string(),
            field: self.field,
            value: self.value,
            rule: self.rule,
        }
    }
}

/// Parses a weight: a number in (0, 1].
pub fn parse_weight(field: &str, value: &str) -> Result<f64, SettingError> {
    match value.trim().parse::<f64>() {
        Ok(w) if w > 0.0 && w <= 1.0 => Ok(w),
        _ => Err(SettingError::new(field, value, "a number greater than 0 and at most 1")),
    }
}

/// Parses a threshold: a whole percent remaining, 0–100.
pub fn parse_threshold(field: &str, value: &str) -> Result<u8, SettingError> {
    match value.trim().parse::<u8>() {
        Ok(p) if p <= 100 => Ok(p),
        _ => Err(SettingError::new(field, value, "a whole percent from 0 to 100")),
    }
}

/// Checks that critical < low.
pub fn check_thresholds(critical: u8, low: u8) -> Result<(), SettingError> {
    if critical < low {
        Ok(())
    } else {
        Err(SettingError::new(
            "threshold.critical",
            &critical.to_string(),
            &format!("below threshold.low ({low})"),
        ))
    }
}

/// The settings stored by `moonauth settings set` (unset fields fall back to the
/// defaults; the environment and flags override them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// Per-alias weights for weighted-round-robin, each in (0, 1]; 1 when unset.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<u8>,
}

impl StoredSettings {
    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        *self == StoredSettings::default()
    }
}

/// Checks a settings key: `strategy`, `preset`, `threshold.critical`, `threshold.low`
/// or `weight.ALIAS` (ALIAS by the alias rule).
pub fn check_key(key: &str) -> Result<(), SettingError> {
    let fixed = ["strategy", "preset", "threshold.critical", "threshold.low"];
    let weight_alias = key.strip_prefix("weight.");
    if fixed.contains(&key) || weight_alias.is_some_and(|a| crate::state::accounts::validate_alias(a).is_ok()) {
        Ok(())
    } else {
        Err(SettingError::new(
            "key",
            key,
            "one of strategy, preset, weight.ALIAS, threshold.critical, threshold.low",
        ))
    }
}

impl StoredSettings {
    /// Stores `key = value` (what `settings set` and the dashboard's `PUT /api/settings`
    /// do): the key and the value are checked, and the thresholds as they will be in
    /// effect (the stored ones, else the preset's) must keep critical < low. On an
    /// error nothing is changed. Whether `weight.ALIAS` names an account is the
    /// caller's check.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), SettingError> {
        check_key(key)?;
        let mut next = self.clone();
        match key {
            "strategy" => next.strategy = Some(value.parse()?),
            "preset" => next.preset = Some(value.parse()?),
            "threshold.critical" => next.critical = Some(parse_threshold(key, value)?),
            "threshold.low" => next.low = Some(parse_threshold(key, value)?),
            _ => {
                let alias = key.strip_prefix("weight.").unwrap_or(key);
                next.weights.insert(alias.to_string(), parse_weight(key, value)?);
            }
        }
        let (critical, low) = next.preset.unwrap_or_default().thresholds();
        let (critical, low) = (next.critical.unwrap_or(critical), next.low.unwrap_or(low));
        if critical >= low {
            return Err(if key == "threshold.low" {
                SettingError::new(
                    "threshold.low",
                    &low.to_string(),
                    &format!("above threshold.critical ({critical})"),
                )
            } else {
                SettingError::new(
                    "threshold.critical",
                    &critical.to_string(),
                    &format!("below threshold.low ({low})"),
                )
            });
        }
        *self = next;
        Ok(())
    }
}

/// Force mode: `alias` is chosen whenever it is eligible, until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Force {
    pub alias: String,
    #[serde(with = "crate::time::serde_rfc3339")]
    pub until: SystemTime,
    /// The strategy in effect when it was forced, in effect again when it ends.
    pub replaced: Strategy,
    /// Who forced it: `user@host`, or `dashboard`.
    pub forced_by: String,
    #[serde(with = "crate::time::serde_rfc3339")]
    pub since: SystemTime,
}

impl Force {
    /// Whether it still holds at `now`.
    pub fn active(&self, now: SystemTime) -> bool {
        now < self.until
    }
}

/// Why force mode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForceEnd {
    /// `accounts force --clear` (or the dashboard).
    Cleared,
    /// Its time ran out.
    Expired,
    /// The account was disabled.
    Disabled,
    /// The account was removed.
    Removed,
    /// The account stopped being eligible (cooling down, re-login, login unusable).
    Ineligible,
}

impl ForceEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            ForceEnd::Cleared => "cleared",
            ForceEnd::Expired => "expired",
            ForceEnd::Disabled => "disabled",
            ForceEnd::Removed => "removed",
            ForceEnd::Ineligible => "ineligible",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_and_errors_name_the_field_and_the_rule() {
        assert_eq!("drain-soonest".parse::<Strategy>().unwrap(), Strategy::DrainSoonest);
        let e = "fastest".parse::<Strategy>().unwrap_err();
        assert_eq!(e.field, "strategy");
        assert!(e.to_string().contains("round-robin"), "{e}");
        assert_eq!(parse_weight("weight.a", "1").unwrap(), 1.0);
        for bad in ["0", "-0.5", "1.01", "NaN", "x", ""] {
            let e = parse_weight("weight.a", bad).unwrap_err();
            assert!(
                e.to_string().contains("weight.a") && e.rule.contains("greater than 0"),
                "{e}"
            );
        }
        assert_eq!(parse_threshold("threshold.low", "100").unwrap(), 100);
        assert!(parse_threshold("threshold.low", "101").is_err());
        assert!(check_thresholds(10, 30).is_ok());
        assert!(check_thresholds(30, 30).is_err());
        let mut stored = StoredSettings::default();
        stored.set("threshold.low", "60").unwrap();
        let before = stored.clone();
        assert_eq!(
            stored.set("threshold.critical", "60").unwrap_err().field,
            "threshold.critical"
        );
        assert_eq!(stored.set("colour", "blue").unwrap_err().field, "key");
        assert_eq!(stored, before, "a refused value changed the settings");
        stored.set("weight.a", "0.5").unwrap();
        assert_eq!(stored.weights["a"], 0.5);
        let e = SettingError::new("weight.a", "sk-ant-oat01-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x");
        assert!(!e.to_string().contains("AAAAAAAAAAAAAAAA"), "{e}");
    }
}

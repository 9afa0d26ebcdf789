//! The rotation settings in effect: each value resolved default < store < environment <
//! flags, with where it came from. The rules each value must keep live with the stored
//! form ([`crate::state::steering`]); this module only layers the sources.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::source::{Env, Source, Sourced};
use crate::state::steering::{self, Preset, SettingError, StoredSettings, Strategy};

/// `MOONAUTH_ROTATION_STRATEGY`: the strategy.
pub const STRATEGY_VAR: &str = "MOONAUTH_ROTATION_STRATEGY";
/// `MOONAUTH_ROTATION_PRESET`: the preset.
pub const PRESET_VAR: &str = "MOONAUTH_ROTATION_PRESET";
/// `MOONAUTH_ROTATION_WEIGHTS`: `alias=weight,alias=weight`.
pub const WEIGHTS_VAR: &str = "MOONAUTH_ROTATION_WEIGHTS";
/// `MOONAUTH_THRESHOLD_CRITICAL`: percent remaining below which an account is critical.
pub const CRITICAL_VAR: &str = "MOONAUTH_THRESHOLD_CRITICAL";
/// `MOONAUTH_THRESHOLD_LOW`: percent remaining below which an account is low.
pub const LOW_VAR: &str = "MOONAUTH_THRESHOLD_LOW";

/// The settings keys `moonauth settings get|set` takes (`weight.ALIAS` besides).
pub const KEYS: [&str; 4] = ["strategy", "preset", "threshold.critical", "threshold.low"];

/// Values given on the command line (the highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub strategy: Option<Strategy>,
}

/// The settings in effect, each with its source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub strategy: Sourced<Strategy>,
    pub preset: Sourced<Preset>,
    /// Weights of weighted-round-robin by alias (accounts not listed weigh 1).
    pub weights: BTreeMap<String, Sourced<f64>>,
    /// The smallest weight an account gets (the preset's).
    pub min_weight: f64,
    /// Percent remaining in the tightest window below which an account is critical.
    pub critical: Sourced<u8>,
    /// Percent remaining in the tightest window below which an account is low.
    pub low: Sourced<u8>,
}

impl Default for Settings {
    fn default() -> Self {
        let preset = Preset::default();
        let (critical, low) = preset.thresholds();
        Settings {
            strategy: Sourced::new(Strategy::default(), Source::Default),
            preset: Sourced::new(preset, Source::Default),
            weights: BTreeMap::new(),
            min_weight: preset.min_weight(),
            critical: Sourced::new(critical, Source::Default),
            low: Sourced::new(low, Source::Default),
        }
    }
}

impl Settings {
    /// The weight `alias` is picked with: its own (1 when unset), at least the minimum.
    pub fn weight(&self, alias: &str) -> f64 {
        self.weights.get(alias).map_or(1.0, |w| w.value).max(self.min_weight)
    }
}

/// A value that broke its rule, and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub source: Source,
    pub error: SettingError,
}

impl From<Invalid> for crate::error::Error {
    fn from(e: Invalid) -> crate::error::Error {
        e.error.at(e.source)
    }
}

/// Resolves the settings: defaults (from the preset), then the store, then the
/// environment, then `flags`. An invalid value anywhere is an error that names it.
pub fn resolve(stored: &StoredSettings, env: &Env, flags: &Flags) -> Result<Settings, Invalid> {
    let mut s = Settings::default();
    let at = |source: Source| move |error: SettingError| Invalid { source, error };

    // The preset first: it gives the defaults of the thresholds and the minimum weight.
    if let Some(p) = stored.preset {
        s.preset = Sourced::new(p, Source::Store);
    }
    if let Some(v) = env.non_blank(PRESET_VAR) {
        let p = v.parse::<Preset>().map_err(at(env.source_of(PRESET_VAR)))?;
        s.preset = Sourced::new(p, env.source_of(PRESET_VAR));
    }
    let (critical, low) = s.preset.value.thresholds();
    s.min_weight = s.preset.value.min_weight();
    s.critical = Sourced::new(critical, Source::Default);
    s.low = Sourced::new(low, Source::Default);

    if let Some(v) = stored.strategy {
        s.strategy = Sourced::new(v, Source::Store);
    }
    if let Some(v) = stored.critical {
        s.critical = Sourced::new(v, Source::Store);
    }
    if let Some(v) = stored.low {
        s.low = Sourced::new(v, Source::Store);
    }
    for (alias, w) in &stored.weights {
        s.weights.insert(alias.clone(), Sourced::new(*w, Source::Store));
    }

    if let Some(v) = env.non_blank(STRATEGY_VAR) {
        let src = env.source_of(STRATEGY_VAR);
        s.strategy = Sourced::new(v.parse().map_err(at(src.clone()))?, src);
    }
    if let Some(v) = env.non_blank(CRITICAL_VAR) {
        let src = env.source_of(CRITICAL_VAR);
        s.critical = Sourced::new(
            steering::parse_threshold("threshold.critical", v).map_err(at(src.clone()))?,
            src,
        );
    }
    if let Some(v) = env.non_blank(LOW_VAR) {
        let src = env.source_of(LOW_VAR);
        s.low = Sourced::new(
            steering::parse_threshold("threshold.low", v).map_err(at(src.clone()))?,
            src,
        );
    }
    if let Some(list) = env.non_blank(WEIGHTS_VAR) {
        let src = env.source_of(WEIGHTS_VAR);
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((alias, w)) = item.split_once('=') else {
                return Err(Invalid {
                    source: src,
                    error: SettingError::new("weights", item, "a list of alias=weight, separated by commas"),
                });
            };
            let alias = alias.trim();
            let w = steering::parse_weight(&format!("weight.{alias}"), w).map_err(at(src.clone()))?;
            s.weights.insert(alias.to_string(), Sourced::new(w, src.clone()));
        }
    }

    if let Some(v) = flags.strategy {
        s.strategy = Sourced::new(v, Source::Flag("--strategy"));
    }
    steering::check_thresholds(s.critical.value, s.low.value).map_err(at(s.critical.source.clone()))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_then_store_then_environment_then_flags_each_with_its_source() {
        let none = Env::default();
        let s = resolve(&StoredSettings::default(), &none, &Flags::default()).unwrap();
        assert_eq!(s.strategy, Sourced::new(Strategy::RoundRobin, Source::Default));
        assert_eq!((s.critical.value, s.low.value), (10, 30));

        let stored = StoredSettings {
            strategy: Some(Strategy::Priority),
            preset: Some(Preset::Conservative),
            low: Some(60),
            weights: [("a".to_string(), 0.5)].into(),
            ..StoredSettings::default()
        };
        let s = resolve(&stored, &none, &Flags::default()).unwrap();
        assert_eq!(s.strategy, Sourced::new(Strategy::Priority, Source::Store));
        // The preset's threshold where the store has none.
        assert_eq!(s.critical, Sourced::new(20, Source::Default));
        assert_eq!(s.low, Sourced::new(60, Source::Store));
        assert_eq!(s.weight("a"), 0.5);
        assert_eq!(s.weight("zz"), 1.0);

        let env = Env::from_pairs([(STRATEGY_VAR, "drain-soonest"), (WEIGHTS_VAR, "a=0.01,b=0.7")]);
        let s = resolve(&stored, &env, &Flags::default()).unwrap();
        assert_eq!(
            s.strategy,
            Sourced::new(Strategy::DrainSoonest, Source::Env(STRATEGY_VAR.into()))
        );
        // Below the preset's minimum weight counts as the minimum.
        assert_eq!(s.weight("a"), 0.2);
        assert_eq!(s.weight("b"), 0.7);

        let flags = Flags {
            strategy: Some(Strategy::WeightedRoundRobin),
        };
        let s = resolve(&stored, &env, &flags).unwrap();
        assert_eq!(s.strategy.source, Source::Flag("--strategy"));
    }

    #[test]
    fn an_invalid_value_names_its_variable_field_and_rule() {
        let e = resolve(
            &StoredSettings::default(),
            &Env::from_pairs([(CRITICAL_VAR, "40")]),
            &Flags::default(),
        )
        .unwrap_err();
        assert_eq!(e.source, Source::Env(CRITICAL_VAR.into()));
        assert_eq!(e.error.field, "threshold.critical");
        assert!(e.error.rule.contains("below threshold.low"), "{:?}", e.error);
        let e = resolve(
            &StoredSettings::default(),
            &Env::from_pairs([(WEIGHTS_VAR, "a=2")]),
            &Flags::default(),
        )
        .unwrap_err();
        assert_eq!(e.error.field, "weight.a");
    }
}

//! One rotation decision: which account of a runtime a new task uses, by the strategy in
//! effect or force mode, and for every other account why it was not chosen. The same
//! eligibility serves `accounts pick`, `run` and the dashboard:
//!
//! - out: disabled, cooling down, needing a re-login, or a login this environment finds
//!   unusable;
//! - eligible, in tiers tried in order: `normal`; `probation` (just back from a cooldown
//!   or a failure); `low` (the tightest known window has less than the low threshold
//!   left); `critical` (less than the critical threshold: chosen only when nothing else
//!   is eligible). OAuth accounts come before API keys in every tier.
//!
//! Pure: the state, the settings, `now` and a seeded random generator come in; a
//! [`Decision`] comes out. Recording it (mark used, end force mode, log it) is the
//! caller's, under the store's lock.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::agents::Runtime;
use crate::state::accounts::{availability, Account, AccountKind, Availability, State};
use crate::state::steering::{Force, ForceEnd, Strategy};

use super::settings::Settings;

/// How long an account just back from a cooldown or a failure goes after the others.
pub const PROBATION: Duration = Duration::from_secs(10 * 60);

/// What a decision reads besides the state.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub now: SystemTime,
    pub settings: &'a Settings,
    /// What this environment found wrong with logins, by alias (their words): such an
    /// account is not eligible.
    pub login_problems: &'a BTreeMap<String, String>,
}

/// Where an eligible account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    Normal,
    Probation,
    Low,
    Critical,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Normal => "normal",
            Tier::Probation => "probation",
            Tier::Low => "low",
            Tier::Critical => "critical",
        }
    }
}

/// Whether an account can be chosen, and where it stands or why it cannot.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "eligible", rename_all = "kebab-case")]
pub enum Eligibility {
    /// It can be chosen, in this tier; `why` explains a tier other than normal.
    #[serde(rename = "yes")]
    Eligible { tier: Tier, why: Option<String> },
    /// It cannot: `status` is `disabled`, `cooling-down`, `needs-relogin` or
    /// `login-unusable`; `why` says it in words.
    #[serde(rename = "no")]
    Out { status: &'static str, why: String },
}

impl Eligibility {
    pub fn tier(&self) -> Option<Tier> {
        match self {
            Eligibility::Eligible { tier, .. } => Some(*tier),
            Eligibility::Out { .. } => None,
        }
    }
}

/// Whether `account` can be chosen at `inputs.now`, and in which tier.
pub fn eligibility(state: &State, account: &Account, inputs: &Inputs) -> Eligibility {
    let now = inputs.now;
    let failure = || {
        account
            .last_failure
            .as_ref()
            .map(|f| format!(" ({})", f.reason))
            .unwrap_or_default()
    };
    match availability(account, now) {
        Availability::Ready => {}
        Availability::Disabled => {
            return Eligibility::Out {
                status: "disabled",
                why: "disabled".into(),
            }
        }
        Availability::NeedsRelogin => {
            return Eligibility::Out {
                status: "needs-relogin",
                why: format!("needs a re-login{}", failure()),
            }
        }
        Availability::CoolingDown(until) => {
            return Eligibility::Out {
                status: "cooling-down",
                why: format!("cooling down until {}{}", crate::time::rfc3339(until), failure()),
            }
        }
    }
    if let Some(problem) = inputs.login_problems.get(&account.alias) {
        return Eligibility::Out {
            status: "login-unusable",
            why: format!("login unusable here: {problem}"),
        };
    }
    let s = inputs.settings;
    if let Some(left) = state.usage_of(&account.alias).and_then(|h| h.tightest_remaining(now)) {
        if left < f64::from(s.critical.value) {
            return Eligibility::Eligible {
                tier: Tier::Critical,
                why: Some(format!(
                    "critical: {left:.0}% left in its tightest window (threshold {}%)",
                    s.critical.value
                )),
            };
        }
        if left < f64::from(s.low.value) {
            return Eligibility::Eligible {
                tier: Tier::Low,
                why: Some(format!(
                    "low: {left:.0}% left in its tightest window (threshold {}%)",
                    s.low.value
                )),
            };
        }
    }
    if let Some(why) = probation(account, now) {
        return Eligibility::Eligible {
            tier: Tier::Probation,
            why: Some(why),
        };
    }
    Eligibility::Eligible {
        tier: Tier::Normal,
        why: None,
    }
}

/// Why an account is on probation at `now`, if it is: its cooldown ended, or it
/// failed, less than [`PROBATION`] ago.
fn probation(account: &Account, now: SystemTime) -> Option<String> {
    let recent = |t: SystemTime| t <= now && now.duration_since(t).is_ok_and(|d| d < PROBATION);
    if let Some(until) = account.cooldown_until.filter(|t| recent(*t)) {
        return Some(format!(
            "probation: back from a cooldown at {}",
            crate::time::rfc3339(until)
        ));
    }
    if let Some(f) = account.last_failure.as_ref().filter(|f| recent(f.at)) {
        return Some(format!(
            "probation: failed ({}) at {}",
            f.reason,
            crate::time::rfc3339(f.at)
        ));
    }
    None
}

/// One account as a decision saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub alias: String,
    pub kind: AccountKind,
    pub chosen: bool,
    #[serde(flatten)]
    pub eligibility: Eligibility,
    /// Why it was or was not chosen, in words.
    pub reason: String,
}

/// The force state a decision saw, and how it ended if it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForceState {
    #[serde(flatten)]
    pub force: Force,
    /// Set when this decision ended it (the caller clears it from the store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<ForceEnd>,
}

/// What [`decide`] decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub runtime: Runtime,
    /// The strategy in effect (force mode aside).
    pub strategy: Strategy,
    /// Force mode as the decision found it.
    pub force: Option<ForceState>,
    /// The account to use; `None` when none is eligible.
    pub chosen: Option<String>,
    /// Why the choice is not the plain strategy's (a lower tier, force ended), if so.
    pub fallback: Option<String>,
    /// Every account of the runtime: eligible ones in the order to try them, then the
    /// others (cooling down by reset, then re-login, login unusable, disabled).
    pub candidates: Vec<Candidate>,
}

impl Decision {
    /// The eligible aliases in the order to try them.
    pub fn order(&self) -> impl Iterator<Item = &Candidate> {
        self.candidates.iter().filter(|c| c.eligibility.tier().is_some())
    }
}

/// Decides the account a new task of `runtime` uses. `rng` is drawn from only by the
/// weighted strategy.
pub fn decide(state: &State, runtime: Runtime, inputs: &Inputs, rng: &mut fastrand::Rng) -> Decision {
    let now = inputs.now;
    let strategy = inputs.settings.strategy.value;
    let mut seen: Vec<(&Account, Eligibility)> = state
        .accounts
        .iter()
        .filter(|a| a.runtime == runtime)
        .map(|a| (a, eligibility(state, a, inputs)))
        .collect();

    // Order the eligible ones: OAuth before keys, then tier, then the strategy.
    let keys: Vec<f64> = match strategy {
        // Efraimidis–Spirakis: u^(1/w) sorted descending is a weighted draw without
        // replacement, so the first is chosen with probability w / Σw.
        Strategy::WeightedRoundRobin => seen
            .iter()
            .map(|(a, _)| rng.f64().powf(1.0 / inputs.settings.weight(&a.alias)))
            .collect(),
        _ => vec![0.0; seen.len()],
    };
    let mut indexed: Vec<usize> = (0..seen.len()).collect();
    let group = |e: &Eligibility| -> (u8, u8) {
        match e {
            Eligibility::Eligible { tier, .. } => (0, *tier as u8),
            Eligibility::Out { status, .. } => match *status {
                "cooling-down" => (1, 0),
                "needs-relogin" => (2, 0),
                "login-unusable" => (3, 0),
                _ => (4, 0),
            },
        }
    };
    // Computed once per account, not per comparison (1,000 accounts: docs/benchmarks.md).
    let groups: Vec<(u8, u8)> = seen.iter().map(|(_, e)| group(e)).collect();
    let resets: Vec<Option<SystemTime>> = match strategy {
        Strategy::DrainSoonest => seen
            .iter()
            .map(|(a, _)| state.usage_of(&a.alias).and_then(|h| h.soonest_reset(now)))
            .collect(),
        _ => Vec::new(),
    };
    indexed.sort_by(|&i, &j| {
        let (a, _) = &seen[i];
        let (b, _) = &seen[j];
        let (ga, gb) = (groups[i], groups[j]);
        (ga.0)
            .cmp(&gb.0)
            .then((a.kind == AccountKind::ApiKey).cmp(&(b.kind == AccountKind::ApiKey)))
            .then(ga.1.cmp(&gb.1))
            .then_with(|| {
                if ga.0 == 1 {
                    a.cooldown_until.cmp(&b.cooldown_until)
                } else {
                    Ordering::Equal
                }
            })
            .then_with(|| match strategy {
                Strategy::WeightedRoundRobin if ga.0 == 0 => keys[j].total_cmp(&keys[i]),
                _ => Ordering::Equal,
            })
            .then_with(|| strategy_order(strategy, a, b, (resets.get(i), resets.get(j))))
    });

    // Force mode: the forced account goes first while it holds and is eligible.
    let mut force = state.force.as_ref().map(|f| ForceState {
        force: f.clone(),
        ended: None,
    });
    let mut fallback = None;
    if let Some(fs) = force.as_mut() {
        let target = state.account(&fs.force.alias);
        let ended = if !fs.force.active(now) {
            Some(ForceEnd::Expired)
        } else {
            match target {
                None => Some(ForceEnd::Removed),
                Some(a) if !a.enabled => Some(ForceEnd::Disabled),
                Some(a) if a.runtime != runtime => None,
                Some(a) => match eligibility(state, a, inputs) {
                    Eligibility::Out { .. } => Some(ForceEnd::Ineligible),
                    Eligibility::Eligible { .. } => {
                        if let Some(pos) = indexed.iter().position(|&i| seen[i].0.alias == a.alias) {
                            let i = indexed.remove(pos);
                            indexed.insert(0, i);
                        }
                        None
                    }
                },
            }
        };
        if let Some(end) = ended {
            fs.ended = Some(end);
            fallback = Some(format!(
                "force mode on {} ended ({}); back to {}",
                fs.force.alias,
                end.as_str(),
                fs.force.replaced
            ));
        }
    }
    let forced_alias = force
        .as_ref()
        .filter(|f| f.ended.is_none())
        .map(|f| f.force.alias.clone());

    let chosen_idx = indexed.first().copied().filter(|&i| seen[i].1.tier().is_some());
    let chosen = chosen_idx.map(|i| seen[i].0.alias.clone());
    let chosen_tier = chosen_idx.and_then(|i| seen[i].1.tier());
    let forced_chosen = forced_alias.is_some() && forced_alias == chosen;
    if !forced_chosen {
        let tier_note = match chosen_tier {
            Some(Tier::Critical) => Some("every eligible account is critical: using one anyway"),
            Some(Tier::Low) => Some("no account above the low threshold: using a low one"),
            Some(Tier::Probation) => Some("only accounts on probation are eligible"),
            _ => None,
        };
        if let Some(note) = tier_note {
            fallback = Some(match fallback {
                Some(f) => format!("{f}; {note}"),
                None => note.to_string(),
            });
        }
    }
    if chosen.is_none() {
        fallback = Some(match fallback {
            Some(f) => format!("{f}; no account of the runtime is eligible"),
            None => "no account of the runtime is eligible".into(),
        });
    }

    let chosen_kind = chosen_idx.map(|i| seen[i].0.kind);
    let mut candidates = Vec::with_capacity(indexed.len());
    for (rank, &i) in indexed.iter().enumerate() {
        let (a, e) = (
            seen[i].0,
            std::mem::replace(
                &mut seen[i].1,
                Eligibility::Eligible {
                    tier: Tier::Normal,
                    why: None,
                },
            ),
        );
        let is_chosen = chosen_idx == Some(i);
        let reason = match (&e, is_chosen) {
            (_, true) if forced_chosen => format!(
                "chosen: forced by {}",
                force.as_ref().map_or("", |f| f.force.forced_by.as_str())
            ),
            (Eligibility::Eligible { tier, why }, true) => {
                let base = format!("chosen by {strategy}{}", strategy_note(strategy, a, now, state));
                match (tier, why) {
                    (Tier::Normal, _) | (_, None) => base,
                    (_, Some(why)) => format!("{base}; {why}"),
                }
            }
            (Eligibility::Eligible { tier, why }, false) => {
                let order = if forced_chosen {
                    "eligible; force mode chose another".to_string()
                } else if chosen_kind == Some(AccountKind::Oauth) && a.kind == AccountKind::ApiKey {
                    "eligible; API keys go after OAuth accounts".to_string()
                } else if Some(*tier) > chosen_tier {
                    format!("eligible but {}; a better tier was chosen", tier.as_str())
                } else {
                    format!("eligible; later in {strategy} order (#{})", rank + 1)
                };
                match why {
                    Some(why) => format!("{order}: {why}"),
                    None => order,
                }
            }
            (Eligibility::Out { why, .. }, _) => why.clone(),
        };
        candidates.push(Candidate {
            alias: a.alias.clone(),
            kind: a.kind,
            chosen: is_chosen,
            eligibility: e,
            reason,
        });
    }
    Decision {
        runtime,
        strategy: force.as_ref().map_or(
            strategy,
            |f| {
                if f.ended.is_some() {
                    f.force.replaced
                } else {
                    strategy
                }
            },
        ),
        force,
        chosen,
        fallback,
        candidates,
    }
}

/// The order within a tier for the deterministic strategies (and the tie-break of the
/// weighted one): total, so equal inputs always give the same decision.
fn strategy_order(
    strategy: Strategy,
    a: &Account,
    b: &Account,
    (reset_a, reset_b): (Option<&Option<SystemTime>>, Option<&Option<SystemTime>>),
) -> Ordering {
    let lru = a.last_used.cmp(&b.last_used);
    let by_alias = || a.alias.cmp(&b.alias);
    match strategy {
        Strategy::Priority => a.priority.cmp(&b.priority).then(lru).then_with(by_alias),
        Strategy::RoundRobin | Strategy::WeightedRoundRobin => {
            lru.then(a.priority.cmp(&b.priority)).then_with(by_alias)
        }
        Strategy::DrainSoonest => {
            // Known resets first, soonest first; unknown after, least recently used first.
            match (reset_a.copied().flatten(), reset_b.copied().flatten()) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
            .then(lru)
            .then(a.priority.cmp(&b.priority))
            .then_with(by_alias)
        }
    }
}

/// What made the chosen account first under `strategy`, in a few words.
fn strategy_note(strategy: Strategy, a: &Account, now: SystemTime, state: &State) -> String {
    match strategy {
        Strategy::Priority => format!(" (priority {})", a.priority),
        Strategy::RoundRobin => match a.last_used {
            None => " (never used)".into(),
            Some(t) => format!(" (least recently used: {})", crate::time::rfc3339(t)),
        },
        Strategy::WeightedRoundRobin => " (weighted draw)".into(),
        Strategy::DrainSoonest => match state.usage_of(&a.alias).and_then(|h| h.soonest_reset(now)) {
            Some(t) => format!(" (its window resets first, at {})", crate::time::rfc3339(t)),
            None => " (no known window reset; least recently used)".into(),
        },
    }
}

//! What rotation reports, to people (`output`), to `--json` and to the dashboard's API
//! alike: each account with whether it can be chosen and why, its cooldown, re-login
//! mark, usage windows with freshness, last use and force state ([`AccountView`]); the
//! reports of `accounts pick`, `accounts force`, `settings` and `accounts log`. Library
//! types: `commands/` builds them, `output` renders them.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use crate::agents::Runtime;
use crate::exit::Exit;
use crate::source::Sourced;
use crate::state::accounts::{Account, State};
use crate::state::report::AccountRow;
use crate::state::steering::{Force, ForceEnd, Preset, Strategy};

use super::decide::{Candidate, Decision, Eligibility, ForceState, Tier};
use super::log::Logged;
use super::settings::Settings;

/// One account as rotation sees it now: the stored record and what it means
/// ([`AccountRow`], with usage windows), and whether it can be chosen and why.
#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    #[serde(flatten)]
    pub row: AccountRow,
    /// Whether it can be chosen now.
    pub eligible: bool,
    /// Its tier when eligible: `normal`, `probation`, `low`, `critical`.
    pub tier: Option<Tier>,
    /// Why it was or would be chosen or not, in words.
    pub why: String,
    /// Whether force mode names it.
    pub forced: bool,
}

impl AccountView {
    /// The view of `account` as `candidate` (its decision's line) saw it.
    pub fn new(state: &State, account: &Account, candidate: Option<&Candidate>, now: SystemTime) -> AccountView {
        let row = AccountRow::new(account, now).with_usage(state, now);
        let (eligible, tier) = match candidate.map(|c| &c.eligibility) {
            Some(Eligibility::Eligible { tier, .. }) => (true, Some(*tier)),
            _ => (false, None),
        };
        AccountView {
            row,
            eligible,
            tier,
            why: candidate.map_or_else(String::new, |c| c.reason.clone()),
            forced: state
                .force
                .as_ref()
                .is_some_and(|f| f.alias == account.alias && f.active(now)),
        }
    }
}

/// Force mode as reported: who forced which account until when, and the time left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForceView {
    pub alias: String,
    pub until: String,
    /// Seconds left (0 when it has run out).
    pub seconds_left: u64,
    /// The strategy in effect again when it ends.
    pub replaced: Strategy,
    pub forced_by: String,
    pub since: String,
}

impl ForceView {
    pub fn new(force: &Force, now: SystemTime) -> ForceView {
        ForceView {
            alias: force.alias.clone(),
            until: crate::time::rfc3339(force.until),
            seconds_left: force.until.duration_since(now).map_or(0, |d| d.as_secs()),
            replaced: force.replaced,
            forced_by: force.forced_by.clone(),
            since: crate::time::rfc3339(force.since),
        }
    }

    /// The force in `state` that still holds at `now`.
    pub fn active(state: &State, now: SystemTime) -> Option<ForceView> {
        state
            .force
            .as_ref()
            .filter(|f| f.active(now))
            .map(|f| ForceView::new(f, now))
    }
}

/// The report of `accounts pick` (schema `moonauth.accounts-pick.v1`).
#[derive(Debug, Serialize)]
pub struct PickReport {
    pub schema: &'static str,
    pub ok: bool,
    pub exit_code: u8,
    pub runtime: Runtime,
    /// The account a new task should use; `null` when none can be used (exit 10).
    pub picked: Option<AccountView>,
    /// Whether the decision was recorded (the account marked used, the decision logged);
    /// not with `--peek`.
    pub marked_used: bool,
    /// The strategy in effect and where it came from.
    pub strategy: Sourced<Strategy>,
    /// Force mode as the decision found it (with `ended` when it ended it).
    pub force: Option<ForceState>,
    /// Why the choice is not the strategy's plain one, when it is not.
    pub fallback: Option<String>,
    /// Every account of the runtime: eligible ones in the order they would be tried,
    /// then the others soonest back first, each with why.
    pub accounts: Vec<AccountView>,
}

impl PickReport {
    /// The report of `decision` over `state` (the state after the decision was recorded).
    pub fn new(state: &State, decision: &Decision, settings: &Settings, recorded: bool, now: SystemTime) -> PickReport {
        let view = |c: &Candidate| {
            state
                .account(&c.alias)
                .map(|a| AccountView::new(state, a, Some(c), now))
        };
        let exit = if decision.chosen.is_some() {
            Exit::Ok
        } else {
            Exit::AccountsExhausted
        };
        PickReport {
            schema: "moonauth.accounts-pick.v1",
            ok: exit == Exit::Ok,
            exit_code: exit.code(),
            runtime: decision.runtime,
            picked: decision.candidates.iter().find(|c| c.chosen).and_then(view),
            marked_used: recorded && decision.chosen.is_some(),
            strategy: settings.strategy.clone(),
            force: decision.force.clone(),
            fallback: decision.fallback.clone(),
            accounts: decision.candidates.iter().filter_map(view).collect(),
        }
    }

    pub fn exit(&self) -> Exit {
        if self.picked.is_some() {
            Exit::Ok
        } else {
            Exit::AccountsExhausted
        }
    }
}

/// What `accounts force` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForceAction {
    /// Force mode is on for the alias (new).
    Forced,
    /// The alias was already forced: kept as it was (the time is not extended).
    AlreadyForced,
    /// Force mode was cleared.
    Cleared,
    /// `--clear` with no force mode on.
    NotForced,
}

/// The report of `accounts force` (schema `moonauth.accounts-force.v1`).
#[derive(Debug, Serialize)]
pub struct ForceReport {
    pub schema: &'static str,
    pub ok: bool,
    pub exit_code: u8,
    pub action: ForceAction,
    /// Force mode after the command (`null` when off).
    pub force: Option<ForceView>,
    /// The strategy in effect after the command.
    pub strategy: Strategy,
    /// How the previous force mode ended, when this command ended it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<ForceEnd>,
}

impl ForceReport {
    pub fn new(
        action: ForceAction,
        state: &State,
        strategy: Strategy,
        ended: Option<ForceEnd>,
        now: SystemTime,
    ) -> ForceReport {
        ForceReport {
            schema: "moonauth.accounts-force.v1",
            ok: true,
            exit_code: Exit::Ok.code(),
            action,
            force: ForceView::active(state, now),
            strategy,
            ended,
        }
    }
}

/// One setting as reported: its key, its value and where the value came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettingView {
    pub key: String,
    pub value: serde_json::Value,
    /// `default`, `store`, `env VAR`, `.env VAR` or `flag --…`.
    pub source: String,
}

/// The report of `settings get|set|reset` (schema `moonauth.settings.v1`).
#[derive(Debug, Serialize)]
pub struct SettingsReport {
    pub schema: &'static str,
    pub ok: bool,
    pub exit_code: u8,
    /// What the command did: `get`, `set`, `reset`.
    pub action: &'static str,
    /// The settings in effect after it, each with its source (only KEY with `get KEY`).
    pub settings: Vec<SettingView>,
    /// The smallest weight of the preset in effect.
    pub min_weight: f64,
    /// Force mode, when on: it replaces the strategy until it ends.
    pub force: Option<ForceView>,
}

impl SettingsReport {
    /// The report of `settings` in effect; `only` keeps one key.
    pub fn new(
        action: &'static str,
        settings: &Settings,
        state: &State,
        only: Option<&str>,
        now: SystemTime,
    ) -> SettingsReport {
        let mut views = vec![
            view("strategy", &settings.strategy),
            view("preset", &settings.preset),
            view("threshold.critical", &settings.critical),
            view("threshold.low", &settings.low),
        ];
        for (alias, w) in &settings.weights {
            views.push(view(&format!("weight.{alias}"), w));
        }
        if let Some(key) = only {
            views.retain(|v| v.key == key);
            if views.is_empty() {
                // A weight that was never set: 1, by default.
                if let Some(alias) = key.strip_prefix("weight.") {
                    views.push(SettingView {
                        key: key.to_string(),
                        value: serde_json::json!(settings.weight(alias)),
                        source: "default".into(),
                    });
                }
            }
        }
        SettingsReport {
            schema: "moonauth.settings.v1",
            ok: true,
            exit_code: Exit::Ok.code(),
            action,
            settings: views,
            min_weight: settings.min_weight,
            force: ForceView::active(state, now),
        }
    }
}

fn view<T: Serialize>(key: &str, v: &Sourced<T>) -> SettingView {
    SettingView {
        key: key.to_string(),
        value: serde_json::to_value(&v.value).unwrap_or(serde_json::Value::Null),
        source: v.source.to_string(),
    }
}

/// The report of `accounts log` (schema `moonauth.accounts-log.v1`): the last decisions,
/// newest last.
#[derive(Debug, Serialize)]
pub struct LogReport {
    pub schema: &'static str,
    pub ok: bool,
    pub exit_code: u8,
    pub decisions: Vec<Logged>,
}

impl LogReport {
    pub fn new(lines: &[String]) -> LogReport {
        LogReport {
            schema: "moonauth.accounts-log.v1",
            ok: true,
            exit_code: Exit::Ok.code(),
            decisions: lines.iter().filter_map(|l| Logged::parse(l)).collect(),
        }
    }
}

/// Every account of every runtime as rotation sees it now: the dashboard's
/// `GET /api/accounts` (schema `moonauth.fleet.v1`).
#[derive(Debug, Serialize)]
pub struct FleetReport {
    pub schema: &'static str,
    pub ok: bool,
    pub exit_code: u8,
    pub revision: u64,
    pub strategy: Sourced<Strategy>,
    pub preset: Sourced<Preset>,
    pub force: Option<ForceView>,
    pub accounts: Vec<AccountView>,
}

impl FleetReport {
    /// The fleet from each runtime's decision (peeked, never recorded), in store order.
    pub fn new(state: &State, decisions: &[Decision], settings: &Settings, now: SystemTime) -> FleetReport {
        let lines: BTreeMap<&str, &Candidate> = decisions
            .iter()
            .flat_map(|d| d.candidates.iter())
            .map(|c| (c.alias.as_str(), c))
            .collect();
        FleetReport {
            schema: "moonauth.fleet.v1",
            ok: true,
            exit_code: Exit::Ok.code(),
            revision: state.revision,
            strategy: settings.strategy.clone(),
            preset: settings.preset.clone(),
            force: ForceView::active(state, now),
            accounts: state
                .accounts
                .iter()
                .map(|a| AccountView::new(state, a, lines.get(a.alias.as_str()).copied(), now))
                .collect(),
        }
    }
}

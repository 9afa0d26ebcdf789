//! Usage windows: how much of each subscription window an account has used, as the CLI
//! itself reported it during a real `moonauth run` (Claude's `rate_limit_event`, Codex's
//! rollout `token_count` events). Never from a probe request. This module keeps the
//! history per account (the last [`HISTORY_LIMIT`] snapshots), decides which snapshot is
//! authoritative, and says how fresh it is at a given time. Reading the CLIs' output is
//! `failover`'s business; what rotation does with the numbers is `rotation`'s.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// Snapshots kept per account; the oldest is dropped first.
pub const HISTORY_LIMIT: usize = 100;
/// A snapshot younger than this is `fresh`.
pub const FRESH_FOR: Duration = Duration::from_secs(5 * 60);
/// A snapshot younger than this (and not fresh) is `stale`; older is `unknown`.
pub const STALE_FOR: Duration = Duration::from_secs(60 * 60);

/// One window as the CLI reported it (Claude: `five_hour`, `seven_day`, per-model ones;
/// Codex: `primary`, `secondary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// The CLI's name for the window.
    pub name: String,
    /// Percent of the window used, 0–100 (Claude's utilization × 100, Codex's `used_percent`).
    pub used_percent: f64,
    /// When the window starts over.
    #[serde(default, with = "crate::time::serde_rfc3339_opt")]
    pub resets_at: Option<SystemTime>,
    /// The window's length, when the CLI says (Codex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_minutes: Option<u64>,
    /// The CLI's status word for it (`allowed`, `rejected`, …), when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl Window {
    /// Percent left, 0–100.
    pub fn remaining_percent(&self) -> f64 {
        (100.0 - self.used_percent).clamp(0.0, 100.0)
    }

    /// Whether the window has started over since the snapshot (its numbers no longer hold).
    pub fn has_reset(&self, now: SystemTime) -> bool {
        self.resets_at.is_some_and(|r| r <= now)
    }
}

/// Where a snapshot came from: which run, when, and how that run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    /// The `moonauth run` that saw it.
    pub run_id: String,
    #[serde(with = "crate::time::serde_rfc3339")]
    pub at: SystemTime,
    /// The attempt's outcome (`success`, `usage-limit`, `auth-failure`, …).
    pub outcome: String,
}

/// Every window one answered request reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(flatten)]
    pub source: Capture,
    pub windows: Vec<Window>,
}

/// A capture that failed: the API answered but its windows could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureError {
    #[serde(flatten)]
    pub source: Capture,
    /// Why, in words (never a value from the file).
    pub reason: String,
}

/// An account's usage history, oldest first, and its last failed capture.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default)]
    pub snapshots: VecDeque<Snapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<CaptureError>,
}

/// How much a snapshot can be trusted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Freshness {
    /// Captured under 5 minutes ago.
    Fresh,
    /// Captured under 60 minutes ago.
    Stale,
    /// The last capture failed (newer than the last good snapshot).
    Error,
    /// Never captured, or over 60 minutes ago: shown as unknown, never as 0 %.
    Unknown,
}

impl Freshness {
    pub fn as_str(self) -> &'static str {
        match self {
            Freshness::Fresh => "fresh",
            Freshness::Stale => "stale",
            Freshness::Error => "error",
            Freshness::Unknown => "unknown",
        }
    }
}

impl History {
    /// Adds a snapshot in capture order. A snapshot older than the newest one is kept
    /// in the history but never becomes the latest: a later snapshot never loses to an
    /// earlier one (two runs of one account can finish out of order).
    pub fn record(&mut self, snapshot: Snapshot) {
        let at = snapshot.source.at;
        let pos = self
            .snapshots
            .iter()
            .rposition(|s| s.source.at <= at)
            .map_or(0, |i| i + 1);
        self.snapshots.insert(pos, snapshot);
        while self.snapshots.len() > HISTORY_LIMIT {
            self.snapshots.pop_front();
        }
        if self.last_error.as_ref().is_some_and(|e| e.source.at <= at) {
            self.last_error = None;
        }
    }

    /// Records a capture that failed; the last good snapshot stays.
    pub fn record_error(&mut self, error: CaptureError) {
        let newer = self.last_error.as_ref().is_none_or(|e| e.source.at <= error.source.at);
        if newer && self.latest().is_none_or(|s| s.source.at <= error.source.at) {
            self.last_error = Some(error);
        }
    }

    /// The newest snapshot.
    pub fn latest(&self) -> Option<&Snapshot> {
        self.snapshots.back()
    }

    /// How fresh the newest snapshot is at `now`.
    pub fn freshness(&self, now: SystemTime) -> Freshness {
        if self.last_error.is_some() {
            return Freshness::Error;
        }
        match self.latest() {
            None => Freshness::Unknown,
            Some(s) => freshness_of(s.source.at, now),
        }
    }

    /// The percent left in the tightest window that still holds at `now` (`None` when no
    /// window is known: never captured, too old, or every window has reset since).
    pub fn tightest_remaining(&self, now: SystemTime) -> Option<f64> {
        let latest = self.latest()?;
        if freshness_of(latest.source.at, now) == Freshness::Unknown {
            return None;
        }
        latest
            .windows
            .iter()
            .filter(|w| !w.has_reset(now))
            .map(Window::remaining_percent)
            .min_by(f64::total_cmp)
    }

    /// The soonest reset among the windows that still hold at `now` (drain-soonest).
    pub fn soonest_reset(&self, now: SystemTime) -> Option<SystemTime> {
        let latest = self.latest()?;
        if freshness_of(latest.source.at, now) == Freshness::Unknown {
            return None;
        }
        latest
            .windows
            .iter()
            .filter_map(|w| w.resets_at)
            .filter(|r| *r > now)
            .min()
    }
}

/// Fresh, stale or unknown for a capture at `at` (a capture in the future is fresh).
pub fn freshness_of(at: SystemTime, now: SystemTime) -> Freshness {
    match now.duration_since(at) {
        Err(_) => Freshness::Fresh,
        Ok(age) if age < FRESH_FOR => Freshness::Fresh,
        Ok(age) if age < STALE_FOR => Freshness::Stale,
        Ok(_) => Freshness::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time;

    const MIN: Duration = Duration::from_secs(60);

    fn t0() -> SystemTime {
        parse_time("2026-11-24T12:00:00Z").unwrap()
    }

    fn snap(at: SystemTime, used: f64) -> Snapshot {
        Snapshot {
            source: Capture {
                run_id: "r".into(),
                at,
                outcome: "success".into(),
            },
            windows: vec![Window {
                name: "five_hour".into(),
                used_percent: used,
                resets_at: Some(at + 120 * MIN),
                window_minutes: None,
                status: None,
            }],
        }
    }

    #[test]
    fn freshness_follows_the_age_of_the_newest_snapshot() {
        let mut h = History::default();
        assert_eq!(h.freshness(t0()), Freshness::Unknown);
        assert_eq!(h.tightest_remaining(t0()), None);
        h.record(snap(t0(), 25.0));
        assert_eq!(h.freshness(t0() + 4 * MIN), Freshness::Fresh);
        assert_eq!(h.freshness(t0() + 5 * MIN), Freshness::Stale);
        assert_eq!(h.freshness(t0() + 59 * MIN), Freshness::Stale);
        assert_eq!(h.freshness(t0() + 60 * MIN), Freshness::Unknown);
        assert_eq!(h.tightest_remaining(t0() + 59 * MIN), Some(75.0));
        // Unknown is unknown, never 0 % or 100 %.
        assert_eq!(h.tightest_remaining(t0() + 60 * MIN), None);
    }

    #[test]
    fn a_later_snapshot_never_loses_to_an_earlier_one() {
        let mut h = History::default();
        h.record(snap(t0() + MIN, 40.0));
        h.record(snap(t0(), 10.0));
        assert_eq!(h.latest().unwrap().windows[0].used_percent, 40.0);
        assert_eq!(h.snapshots.len(), 2);
    }

    #[test]
    fn a_failed_capture_keeps_the_last_good_snapshot_and_reads_error() {
        let mut h = History::default();
        h.record(snap(t0(), 40.0));
        h.record_error(CaptureError {
            source: Capture {
                run_id: "r2".into(),
                at: t0() + MIN,
                outcome: "success".into(),
            },
            reason: "no rollout".into(),
        });
        assert_eq!(h.freshness(t0() + MIN), Freshness::Error);
        assert_eq!(h.latest().unwrap().windows[0].used_percent, 40.0);
        h.record(snap(t0() + 2 * MIN, 50.0));
        assert_eq!(h.freshness(t0() + 2 * MIN), Freshness::Fresh);
    }

    #[test]
    fn only_the_last_hundred_snapshots_are_kept_oldest_dropped_first() {
        let mut h = History::default();
        for i in 0..130u32 {
            h.record(snap(t0() + i * MIN, f64::from(i % 100)));
        }
        assert_eq!(h.snapshots.len(), HISTORY_LIMIT);
        assert_eq!(h.snapshots.front().unwrap().source.at, t0() + 30 * MIN);
    }

    #[test]
    fn a_window_that_has_reset_no_longer_counts() {
        let mut h = History::default();
        h.record(snap(t0(), 95.0));
        assert_eq!(h.tightest_remaining(t0() + MIN), Some(5.0));
        // resets_at = t0 + 120 min, but by then the snapshot is unknown anyway; check directly.
        assert!(h.latest().unwrap().windows[0].has_reset(t0() + 120 * MIN));
        assert_eq!(h.soonest_reset(t0()), Some(t0() + 120 * MIN));
    }
}

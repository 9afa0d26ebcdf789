//! `renew --watch`: keeps a set of logins outside the lead until stopped, renewing each
//! through [`super::renew_login`] when it is due and backing off after failures.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::{jittered, renew_login, RenewOptions, RenewOutcome, RenewStatus};
use crate::lease::LoginKey;

/// How often `watch` looks at every login even when none is due (other holders may change them).
pub const WATCH_POLL: Duration = Duration::from_secs(60);

/// A watcher adds a random share of the lead (up to a twentieth, at most 3 minutes) to
/// it, drawn again after each renewal, so a fleet of watchers does not act in step.
fn extra_lead(lead: Duration) -> Duration {
    let cap = (lead / 20).min(Duration::from_secs(180));
    Duration::from_millis(fastrand::u64(0..=cap.as_millis() as u64))
}

/// Keeps every login in `logins` outside the lead until `stop` turns true: renews each
/// when due, then sleeps until the next is due (looking again at least every
/// [`WATCH_POLL`], jittered). A login whose renewal failed is retried after a growing
/// pause (1, 2, 4 … 15 minutes). `report` sees the first outcome of each login, every
/// refresh and failure, and every change of state. The current renewal always finishes
/// before `stop` is honoured.
pub fn watch(
    logins: &[(LoginKey, PathBuf)],
    opts: &RenewOptions,
    stop: &AtomicBool,
    clock: &dyn Fn() -> SystemTime,
    report: &mut dyn FnMut(&RenewOutcome),
) {
    let n = logins.len();
    let mut next_try: Vec<Instant> = vec![Instant::now(); n];
    let mut pauses: Vec<Duration> = vec![Duration::ZERO; n];
    let mut extra: Vec<Duration> = (0..n).map(|_| extra_lead(opts.lead)).collect();
    let mut last: Vec<Option<RenewStatus>> = vec![None; n];
    let mut first = true;
    while !stop.load(Ordering::SeqCst) {
        let mut wake = Instant::now() + jittered_around(WATCH_POLL);
        for (i, (key, dir)) in logins.iter().enumerate() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            if Instant::now() < next_try[i] {
                wake = wake.min(next_try[i]);
                continue;
            }
            let mut o = opts.clone();
            o.force = opts.force && first;
            o.lead = opts.lead + extra[i];
            let outcome = renew_login(key, dir, &o, clock());
            // Every event that did something, and every change; not the same state each poll.
            let acted = matches!(
                outcome.status,
                RenewStatus::Refreshed | RenewStatus::RefreshedElsewhere | RenewStatus::Failed
            );
            if acted || last[i] != Some(outcome.status) {
                report(&outcome);
            }
            last[i] = Some(outcome.status);
            if matches!(outcome.status, RenewStatus::Refreshed | RenewStatus::RefreshedElsewhere) {
                extra[i] = extra_lead(opts.lead);
            }
            if outcome.status == RenewStatus::Failed {
                pauses[i] = (pauses[i] * 2).clamp(Duration::from_secs(60), Duration::from_secs(900));
                next_try[i] = Instant::now() + jittered(pauses[i]);
            } else {
                pauses[i] = Duration::ZERO;
                let due_in = outcome
                    .expires_at
                    .and_then(|e| e.checked_sub(opts.lead + extra[i]))
                    .map(|d| d.duration_since(clock()).unwrap_or_default());
                // Without an expiry (or a login that is blocked or missing), look again at the next poll.
                next_try[i] = match (outcome.status, due_in) {
                    (RenewStatus::Refreshed | RenewStatus::RefreshedElsewhere | RenewStatus::Fresh, Some(d)) => {
                        Instant::now() + d
                    }
                    _ => Instant::now() + jittered_around(WATCH_POLL),
                };
            }
            wake = wake.min(next_try[i].max(Instant::now() + Duration::from_secs(1)));
        }
        first = false;
        while !stop.load(Ordering::SeqCst) && Instant::now() < wake {
            std::thread::sleep(Duration::from_millis(100).min(wake.saturating_duration_since(Instant::now())));
        }
    }
}

fn jittered_around(d: Duration) -> Duration {
    // ±20 %.
    let fifth = d.as_millis() as u64 / 5;
    d - Duration::from_millis(fifth) + Duration::from_millis(fastrand::u64(0..=2 * fifth))
}

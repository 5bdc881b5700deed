//! Refused calls, coalesced per caller uid, so that a loop of refused calls (`Begin` for
//! another user, admin calls by a non-admin) can neither fill the disk with audit rows and
//! log lines nor hold the store's lock against real logins.
//!
//! In each minute (from a uid's first refusal), a uid's first [`RECORDED_PER_WINDOW`]
//! refusals are recorded one by one, as every other decision is; the rest are only counted,
//! and one summary row and log line says how many there were and why the first of them was
//! refused. The summary is written by the first record after the minute ends, or by the
//! daemon's housekeeping, whichever comes first, so a flood that stops is still told.
//! Successes and failures of logins are never coalesced: only results `refused` come here.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::store::{AuditEntry, AuditResult};

/// Refusals of one uid recorded one by one per window.
pub const RECORDED_PER_WINDOW: u32 = 10;
/// The window, in seconds.
pub const WINDOW_SECONDS: u64 = 60;
/// The `method` of a summary row.
pub const SUMMARY_METHOD: &str = "refusals";

/// One uid's current window.
struct Window {
    start: u64,
    recorded: u32,
    suppressed: u64,
    /// The first refusal that was only counted: the summary names its reason.
    first: Option<AuditEntry>,
}

/// What to do with a refusal: whether to record it, and the summaries now due (of windows
/// that ended, this uid's or another's), to be recorded first.
pub struct Admitted {
    pub record: bool,
    pub summaries: Vec<AuditEntry>,
}

/// Held in memory only: entries are dropped when their window ends, so there is one per uid
/// that was refused in the last minute (local uids, and root for refusals of sshd's calls).
#[derive(Default)]
pub struct Refusals {
    windows: Mutex<HashMap<u32, Window>>,
}

impl Refusals {
    fn windows(&self) -> MutexGuard<'_, HashMap<u32, Window>> {
        crate::lock::lock(&self.windows)
    }

    /// A refused call at `entry.time`.
    pub fn admit(&self, entry: &AuditEntry) -> Admitted {
        let now = entry.time;
        let mut windows = self.windows();
        let summaries = take_due(&mut windows, now);
        let w = windows.entry(entry.caller_uid).or_insert(Window {
            start: now,
            recorded: 0,
            suppressed: 0,
            first: None,
        });
        let record = if w.recorded < RECORDED_PER_WINDOW {
            w.recorded += 1;
            true
        } else {
            w.suppressed += 1;
            if w.first.is_none() {
                w.first = Some(entry.clone());
            }
            false
        };
        Admitted { record, summaries }
    }

    /// The summaries of windows that ended by `now`.
    pub fn due(&self, now: u64) -> Vec<AuditEntry> {
        let mut windows = self.windows();
        if windows.is_empty() {
            return Vec::new();
        }
        take_due(&mut windows, now)
    }
}

/// Removes the windows that ended by `now`; returns a summary for each that counted any.
fn take_due(windows: &mut HashMap<u32, Window>, now: u64) -> Vec<AuditEntry> {
    let ended: Vec<u32> = windows
        .iter()
        .filter(|(_, w)| now >= w.start.saturating_add(WINDOW_SECONDS))
        .map(|(uid, _)| *uid)
        .collect();
    let mut summaries = Vec::new();
    for uid in ended {
        if let Some(w) = windows.remove(&uid)
            && let Some(first) = w.first
        {
            summaries.push(summary(uid, w.suppressed, &first, now));
        }
    }
    summaries
}

fn summary(uid: u32, count: u64, first: &AuditEntry, now: u64) -> AuditEntry {
    AuditEntry {
        time: now,
        method: SUMMARY_METHOD.to_owned(),
        result: AuditResult::Refused,
        reason: format!(
            "{count} {} from uid {uid} in the last minute (first reason: {}: {}); \
             beyond the first {RECORDED_PER_WINDOW} a minute, refusals are counted, not \
             recorded one by one",
            if count == 1 { "refusal" } else { "refusals" },
            first.method,
            first.reason
        ),
        ..first.clone()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::store::AuditCtx;

    fn refusal(uid: u32, time: u64) -> AuditEntry {
        AuditCtx {
            user: "bob".into(),
            caller_uid: uid,
            ..AuditCtx::default()
        }
        .entry(time, "begin", AuditResult::Refused, "permission denied")
    }

    #[test]
    fn the_first_refusals_of_a_minute_are_recorded_the_rest_summed_up_once() {
        let r = Refusals::default();
        let recorded = (0..1000)
            .filter(|i| r.admit(&refusal(1000, 100 + i / 100)).record)
            .count();
        assert_eq!(recorded, RECORDED_PER_WINDOW as usize);
        // Another uid has its own allowance.
        assert!(r.admit(&refusal(1001, 105)).record);
        assert!(r.due(159).is_empty(), "the minute is not over");
        let due = r.due(160);
        assert_eq!(due.len(), 1, "{due:?}");
        let s = &due[0];
        assert_eq!(
            (s.caller_uid, s.time, s.result),
            (1000, 160, AuditResult::Refused)
        );
        assert_eq!(s.method, SUMMARY_METHOD);
        assert!(
            s.reason.starts_with(
                "990 refusals from uid 1000 in the last minute (first reason: begin: permission denied)"
            ),
            "{}",
            s.reason
        );
        assert!(
            r.due(10_000).is_empty(),
            "uid 1001 counted nothing: no summary"
        );
        // A new minute: recorded again.
        assert!(r.admit(&refusal(1000, 161)).record);
    }

    #[test]
    fn the_next_refusal_after_the_minute_brings_the_summary() {
        let r = Refusals::default();
        for _ in 0..=RECORDED_PER_WINDOW {
            r.admit(&refusal(1000, 100));
        }
        let a = r.admit(&refusal(1000, 170));
        assert!(a.record);
        assert_eq!(a.summaries.len(), 1);
        assert!(a.summaries[0].reason.starts_with("1 refusal from uid 1000"));
    }
}

//! How much an unauthenticated caller may write into the permanent audit.
//!
//! Every refused call at an edge (a 401 of the API or the gateway, a command of a Telegram
//! user who is not an approver) is counted in a metric, always. But the audit is permanent and
//! hash-chained, so a flood of refused calls must not become a flood of rows: per source (a
//! peer address, a Telegram user id) at most [`ThrottleLimits::per_window`] refusals per window
//! are audited one by one; the rest of the window is summarised in a single audit event with
//! the counts, published once the window is over (the caller schedules it when
//! [`AuditThrottle::admit`] says a window got its first suppressed refusal).
//!
//! The decisions are pure functions of the state and `now`; the edge publishes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// How many refusals are audited one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// Refusals audited per source and window.
    pub per_window: u32,
    pub window: Duration,
    /// Sources tracked per window; later ones share one budget (`other`), so a caller with
    /// many addresses cannot grow the table without end.
    pub max_sources: usize,
}

impl Default for ThrottleLimits {
    /// 5 per source per minute, 1024 sources.
    fn default() -> Self {
        ThrottleLimits {
            per_window: 5,
            window: Duration::from_secs(60),
            max_sources: 1024,
        }
    }
}

/// What to do with one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Audit it as usual.
    Audit,
    /// Do not audit it; it is counted in the window's summary. `summary_at` is set on the
    /// window's first suppressed refusal: publish [`AuditThrottle::take_summary`] then.
    Suppress { summary_at: Option<Instant> },
}

/// The refusals of one window that were not audited one by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Suppressed refusals in all.
    pub suppressed: u64,
    /// The sources with the most suppressed refusals, most first (at most [`TOP_SOURCES`]).
    pub top_sources: Vec<(String, u64)>,
    pub window: Duration,
}

/// Sources named in a summary.
pub const TOP_SOURCES: usize = 10;

/// The source of refusals once [`ThrottleLimits::max_sources`] are tracked.
pub const OTHER_SOURCE: &str = "other";

/// Shared by every handler of one edge (cheap to clone).
#[derive(Debug, Clone)]
pub struct AuditThrottle {
    limits: ThrottleLimits,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// When the current window started; `None` before the first refusal.
    started: Option<Instant>,
    /// Per source: (audited, suppressed) in the current window.
    sources: HashMap<String, (u32, u64)>,
    /// Suppressed counts of windows that ended and were not summarised yet.
    closed: HashMap<String, u64>,
    /// The summary of the current window is scheduled.
    scheduled: bool,
}

impl AuditThrottle {
    pub fn new(limits: ThrottleLimits) -> Self {
        AuditThrottle {
            limits,
            state: Arc::default(),
        }
    }

    pub fn limits(&self) -> ThrottleLimits {
        self.limits
    }

    /// Decides whether the refusal of a call from `source` at `now` is audited.
    pub fn admit(&self, source: &str, now: Instant) -> Admission {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.roll(now, self.limits.window);
        let limits = self.limits;
        let key = if state.sources.contains_key(source) || state.sources.len() < limits.max_sources
        {
            source
        } else {
            OTHER_SOURCE
        };
        let counts = state.sources.entry(key.to_string()).or_default();
        if counts.0 < limits.per_window {
            counts.0 += 1;
            return Admission::Audit;
        }
        counts.1 += 1;
        if state.scheduled {
            return Admission::Suppress { summary_at: None };
        }
        state.scheduled = true;
        let started = state.started.unwrap_or(now);
        Admission::Suppress {
            summary_at: Some(started + limits.window),
        }
    }

    /// The suppressed refusals of every window that ended by `now` (nothing when none were).
    pub fn take_summary(&self, now: Instant) -> Option<Summary> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.roll(now, self.limits.window);
        let closed = std::mem::take(&mut state.closed);
        let suppressed: u64 = closed.values().sum();
        if suppressed == 0 {
            return None;
        }
        let mut top_sources: Vec<(String, u64)> = closed.into_iter().collect();
        top_sources.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top_sources.truncate(TOP_SOURCES);
        Some(Summary {
            suppressed,
            top_sources,
            window: self.limits.window,
        })
    }
}

/// The data of the summary's `access_denied` audit event.
pub fn summary_data(summary: &Summary) -> serde_json::Value {
    let sources: Vec<serde_json::Value> = summary
        .top_sources
        .iter()
        .map(|(source, count)| serde_json::json!({ "source": source, "count": count }))
        .collect();
    serde_json::json!({
        "reason": SUMMARY_REASON,
        "suppressed": summary.suppressed,
        "window_secs": summary.window.as_secs(),
        "top_sources": sources,
    })
}

/// The `reason` of a summary event.
pub const SUMMARY_REASON: &str = "refusals_summarised";

impl Default for AuditThrottle {
    fn default() -> Self {
        Self::new(ThrottleLimits::default())
    }
}

impl State {
    /// Closes the current window when `now` is past it.
    fn roll(&mut self, now: Instant, window: Duration) {
        match self.started {
            Some(started) if now < started + window => {}
            Some(_) => {
                for (source, (_, suppressed)) in self.sources.drain() {
                    if suppressed > 0 {
                        *self.closed.entry(source).or_default() += suppressed;
                    }
                }
                self.started = Some(now);
                self.scheduled = false;
            }
            None => self.started = Some(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(per_window: u32, max_sources: usize) -> AuditThrottle {
        AuditThrottle::new(ThrottleLimits {
            per_window,
            window: Duration::from_secs(60),
            max_sources,
        })
    }

    #[test]
    fn a_source_is_audited_up_to_the_limit_then_summarised_once_per_window() {
        let throttle = throttle(3, 100);
        let start = Instant::now();
        let decisions: Vec<Admission> = (0..6).map(|_| throttle.admit("10.0.0.1", start)).collect();
        assert_eq!(&decisions[..3], &[Admission::Audit; 3]);
        assert_eq!(
            decisions[3],
            Admission::Suppress {
                summary_at: Some(start + Duration::from_secs(60))
            }
        );
        assert_eq!(
            &decisions[4..],
            &[Admission::Suppress { summary_at: None }; 2]
        );
        // Nothing to summarise while the window runs.
        assert_eq!(throttle.take_summary(start + Duration::from_secs(59)), None);
        let summary = throttle
            .take_summary(start + Duration::from_secs(60))
            .expect("a summary");
        assert_eq!(summary.suppressed, 3);
        assert_eq!(summary.top_sources, [("10.0.0.1".to_string(), 3)]);
        assert_eq!(throttle.take_summary(start + Duration::from_secs(61)), None);
        // A new window has a new budget.
        assert_eq!(
            throttle.admit("10.0.0.1", start + Duration::from_secs(61)),
            Admission::Audit
        );
    }

    #[test]
    fn sources_have_their_own_budgets() {
        let throttle = throttle(1, 100);
        let now = Instant::now();
        assert_eq!(throttle.admit("a", now), Admission::Audit);
        assert_eq!(throttle.admit("b", now), Admission::Audit);
        assert!(matches!(
            throttle.admit("a", now),
            Admission::Suppress { .. }
        ));
    }

    #[test]
    fn sources_past_the_table_share_one_budget() {
        let throttle = throttle(2, 2);
        let now = Instant::now();
        for source in ["a", "b"] {
            assert_eq!(throttle.admit(source, now), Admission::Audit);
        }
        let spread: Vec<Admission> = (0..5)
            .map(|index| throttle.admit(&format!("new-{index}"), now))
            .collect();
        assert_eq!(&spread[..2], &[Admission::Audit; 2]);
        assert!(
            spread[2..]
                .iter()
                .all(|decision| matches!(decision, Admission::Suppress { .. }))
        );
        let summary = throttle
            .take_summary(now + Duration::from_secs(60))
            .unwrap();
        assert_eq!(summary.top_sources, [(OTHER_SOURCE.to_string(), 3)]);
    }

    #[test]
    fn a_summary_names_the_busiest_sources_and_counts_them_all() {
        let throttle = throttle(0, 100);
        let now = Instant::now();
        for index in 0..(TOP_SOURCES + 5) {
            for _ in 0..=index {
                let _ = throttle.admit(&format!("s{index:02}"), now);
            }
        }
        let summary = throttle
            .take_summary(now + Duration::from_secs(60))
            .unwrap();
        let all = (TOP_SOURCES + 5) as u64;
        assert_eq!(summary.suppressed, all * (all + 1) / 2);
        assert_eq!(summary.top_sources.len(), TOP_SOURCES);
        assert_eq!(summary.top_sources[0], (format!("s{:02}", all - 1), all));
    }
}

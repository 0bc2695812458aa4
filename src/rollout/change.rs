//! Who changed the rollout, proven: the change an operator asks for, the mark the watcher
//! writes with it, and the pure attribution of every revision of the flags for the audit.
//!
//! Operators ask the watcher on `wingman.rollout.change.<their NATS user>` (only that user
//! may publish there); the watcher writes the flags by compare-and-set with a [`ChangeMark`]
//! naming the author and the revision it replaced. The watcher's watch on the bucket audits
//! every revision: one whose mark replaces the revision that really came before it was
//! written by the watcher; anything else (an `admin` `kv put`, a copied value, a delete) is a
//! direct write whose author is unproven.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Rollout;
use crate::events::AuditKind;
use crate::events::payload::Payload;

/// What the audit says instead of a name when the author is not proven.
pub const UNPROVEN: &str = "direct write, author unproven";

/// The longest reason a change may carry.
pub const MAX_REASON_CHARS: usize = 500;

/// The seed's phases, in order: validation enforced for 10 %, 50 %, then 100 % of requests
/// (shadow mode, 0 %, comes before them).
pub const PHASE_STEPS: [u8; 3] = [10, 50, 100];

/// The phase after one enforcing `effective` % (`None` at 100 %).
pub fn next_step(effective: u8) -> Option<u8> {
    PHASE_STEPS.into_iter().find(|step| *step > effective)
}

/// What an operator asks the watcher for (`wingman rollout set|enable|disable|promote`). The
/// author is never in the body: it is the subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// To the next phase of the seed's schedule (shadow → 10 → 50 → 100 %).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub promote: bool,
    /// Why (kept in the audit and the phase history; required with `force`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Raise the rollout although the promote gate refuses (audited with the reason).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

impl ChangeRequest {
    /// # Errors
    /// When nothing would change, the percent is above 100, `promote` comes with flags, or a
    /// forced change has no reason (the message names the field).
    pub fn validate(&self) -> Result<(), String> {
        let flags = self.percent.is_some() || self.enabled.is_some();
        if !flags && !self.promote {
            return Err("a rollout change needs `percent`, `enabled` or `promote`".into());
        }
        if flags && self.promote {
            return Err(
                "promote: moves to the next phase; it takes no `percent` or `enabled`".into(),
            );
        }
        if let Some(percent) = self.percent
            && percent > 100
        {
            return Err(format!("percent: must be between 0 and 100, got {percent}"));
        }
        if let Some(reason) = &self.reason {
            if reason.trim().is_empty() {
                return Err("reason: is empty".into());
            }
            if reason.chars().count() > MAX_REASON_CHARS {
                return Err(format!("reason: longer than {MAX_REASON_CHARS} characters"));
            }
        }
        if self.force && self.reason.is_none() {
            return Err("reason: a forced change needs a reason (--reason)".into());
        }
        Ok(())
    }

    /// The flags after this change (a promotion at 100 % changes nothing).
    pub fn apply(&self, current: &Rollout) -> Rollout {
        if self.promote {
            return match next_step(current.effective_percent()) {
                Some(percent) => Rollout {
                    enabled: true,
                    percent,
                    ..current.clone()
                },
                None => current.clone(),
            };
        }
        Rollout {
            enabled: self.enabled.unwrap_or(current.enabled),
            percent: self.percent.unwrap_or(current.percent),
            ..current.clone()
        }
    }
}

/// What a write adds to its mark besides the author: the operator's reason, and for a raise
/// what the promote gate said and whether it was forced past it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeNote {
    pub reason: Option<String>,
    pub forced: bool,
    pub gate: Option<String>,
}

/// Who wrote a revision through the watcher, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeMark {
    /// The author, proven by the subject of the request (or the watcher's own guard).
    pub author: String,
    /// The subject the change was asked on, or `guard`.
    pub via: String,
    /// The revision of the flags this write replaced (its compare-and-set revision): a value
    /// copied into a later direct write names a revision that no longer came before it.
    pub replaces: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The change raised the rollout although the promote gate refused (`--force`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
    /// What the promote gate said about a raise (GO, or the refusals a force overrode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
}

/// The value in the bucket: the flags and, when the watcher wrote them, its mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    #[serde(flatten)]
    pub flags: Rollout,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeMark>,
}

/// One revision of the flags as the watch saw it: `None` for a delete, a purge or a value
/// that does not decode.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub revision: u64,
    pub stored: Option<Stored>,
}

/// What the audit records about one revision: the `rollout_changed` payload, written by the
/// watcher's watch, read by the report's phases (`report::phases_of`) and the console's chart
/// (`store::console::rollout_changes`). Read leniently: rows from before a key existed (the
/// first rows had only `by`, `old`, `new` and `reason`) read it as its default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    #[serde(default)]
    pub revision: u64,
    /// The proven author, or [`UNPROVEN`].
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub author_proven: bool,
    /// The name the value gives itself when the author is unproven (`updated_by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Raised past a refusing promote gate (`--force`, with its reason).
    #[serde(default)]
    pub forced: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    /// The flags before (unknown when the previous revision is no longer retained).
    #[serde(default)]
    pub old: Option<RecordedFlags>,
    /// The flags after (`None`: deleted or unreadable).
    #[serde(default)]
    pub new: Option<RecordedFlags>,
    /// When the NATS server stored the revision (the row's `at` is when the watcher audited
    /// it, later after a restart): the phases start here. Set by the watcher, which has the
    /// server's time; absent in rows from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_at: Option<DateTime<Utc>>,
}

impl Payload for Attribution {
    const KIND: AuditKind = AuditKind::RolloutChanged;
}

/// The flags as a `rollout_changed` row records them: a [`Rollout`] (all four keys written),
/// read leniently so that a row which lacks who and when still tells the phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFlags {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub percent: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl RecordedFlags {
    /// As [`Rollout::effective_percent`]: 0 when disabled.
    pub fn effective_percent(&self) -> u8 {
        if self.enabled { self.percent } else { 0 }
    }
}

impl From<Rollout> for RecordedFlags {
    fn from(flags: Rollout) -> Self {
        Self {
            enabled: flags.enabled,
            percent: flags.percent,
            updated_by: Some(flags.updated_by),
            updated_at: Some(flags.updated_at),
        }
    }
}

/// Attributes `seen`, given the revision of the same key the watch saw just before it
/// (`None` when it is the first one retained).
pub fn attribute(previous: Option<&Seen>, seen: &Seen) -> Attribution {
    let mark = seen
        .stored
        .as_ref()
        .and_then(|stored| stored.change.as_ref());
    let proven = match (previous, mark) {
        (Some(previous), Some(mark)) if mark.replaces == previous.revision => Some(mark),
        _ => None,
    };
    let new = seen.stored.as_ref().map(|stored| stored.flags.clone());
    let old = previous
        .and_then(|previous| previous.stored.as_ref())
        .map(|stored| RecordedFlags::from(stored.flags.clone()));
    if let Some(mark) = proven {
        Attribution {
            revision: seen.revision,
            by: mark.author.clone(),
            author_proven: true,
            claimed_by: None,
            via: Some(mark.via.clone()),
            reason: mark.reason.clone(),
            forced: mark.forced,
            gate: mark.gate.clone(),
            old,
            new: new.map(RecordedFlags::from),
            written_at: None,
        }
    } else {
        Attribution {
            revision: seen.revision,
            by: UNPROVEN.to_string(),
            author_proven: false,
            claimed_by: new.as_ref().map(|flags| flags.updated_by.clone()),
            via: None,
            reason: None,
            forced: false,
            gate: None,
            old,
            new: new.map(RecordedFlags::from),
            written_at: None,
        }
    }
}

/// Whether `new` only lowers the rollout: no higher percent, and not enabled when `old` was
/// not. The watcher's guard may write nothing else.
pub fn lowers(old: &Rollout, new: &Rollout) -> bool {
    new.percent <= old.percent && (old.enabled || !new.enabled)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn flags(enabled: bool, percent: u8, by: &str) -> Rollout {
        Rollout {
            enabled,
            percent,
            updated_by: by.into(),
            updated_at: Utc::now(),
        }
    }

    fn seen(revision: u64, flags: Rollout, change: Option<ChangeMark>) -> Seen {
        Seen {
            revision,
            stored: Some(Stored { flags, change }),
        }
    }

    fn mark(author: &str, replaces: u64) -> ChangeMark {
        ChangeMark {
            author: author.into(),
            via: format!("wingman.rollout.change.{author}"),
            replaces,
            reason: None,
            forced: false,
            gate: None,
        }
    }

    #[test]
    fn a_change_the_watcher_wrote_names_its_proven_author() {
        let before = seen(3, flags(true, 100, "environment"), None);
        let after = seen(5, flags(true, 50, "operator"), Some(mark("operator", 3)));
        let attribution = attribute(Some(&before), &after);
        assert_eq!(
            (attribution.by.as_str(), attribution.author_proven),
            ("operator", true)
        );
        assert_eq!(attribution.old.map(|old| old.percent), Some(100));
        assert_eq!(attribution.new.map(|new| new.percent), Some(50));
    }

    #[test]
    fn a_direct_write_is_unproven_whatever_name_it_gives() {
        let before = seen(3, flags(true, 100, "environment"), None);
        let after = seen(4, flags(true, 10, "operator"), None);
        let attribution = attribute(Some(&before), &after);
        assert_eq!(
            (attribution.by.as_str(), attribution.author_proven),
            (UNPROVEN, false)
        );
        assert_eq!(attribution.claimed_by.as_deref(), Some("operator"));
    }

    #[test]
    fn a_copied_mark_does_not_prove_a_later_write() {
        let first = seen(3, flags(true, 100, "environment"), None);
        let by_watcher = seen(5, flags(true, 50, "operator"), Some(mark("operator", 3)));
        assert!(attribute(Some(&first), &by_watcher).author_proven);
        let copied = seen(6, flags(true, 100, "operator"), Some(mark("operator", 3)));
        assert!(!attribute(Some(&by_watcher), &copied).author_proven);
    }

    #[test]
    fn the_first_retained_revision_and_a_delete_are_unproven() {
        let after = seen(5, flags(true, 50, "operator"), Some(mark("operator", 3)));
        assert!(!attribute(None, &after).author_proven);
        let deleted = Seen {
            revision: 6,
            stored: None,
        };
        let attribution = attribute(Some(&after), &deleted);
        assert_eq!((attribution.author_proven, attribution.new), (false, None));
    }

    /// The `rollout_changed` data as the watcher wrote it before it was typed (the
    /// attribution, then `written_at` added to it), and as older versions wrote it: the
    /// first rows had only `by`, `old`, `new` and `reason`.
    #[test]
    fn the_rollout_changed_record_is_the_json_written_before_and_old_rows_read() {
        let updated_at = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let written_at = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:01.5Z")
            .unwrap()
            .with_timezone(&Utc);
        let stamped = |enabled, percent, by: &str| Rollout {
            enabled,
            percent,
            updated_by: by.into(),
            updated_at,
        };
        let before = seen(3, stamped(false, 100, "environment"), None);
        let mut raised = mark("ops-carol", 3);
        raised.reason = Some("shadow looked right".into());
        raised.forced = true;
        raised.gate = Some("refused: too few samples".into());
        let after = seen(4, stamped(true, 10, "ops-carol"), Some(raised));
        let proven = Attribution {
            written_at: Some(written_at),
            ..attribute(Some(&before), &after)
        };
        let flags = |enabled: bool, percent: u8, by: &str| {
            serde_json::json!({
                "enabled": enabled, "percent": percent, "updated_by": by,
                "updated_at": "2026-12-01T10:00:00Z",
            })
        };
        let old = serde_json::json!({
            "revision": 4, "by": "ops-carol", "author_proven": true,
            "via": "wingman.rollout.change.ops-carol", "reason": "shadow looked right",
            "forced": true, "gate": "refused: too few samples",
            "old": flags(false, 100, "environment"), "new": flags(true, 10, "ops-carol"),
            "written_at": "2026-12-01T10:00:01.500Z",
        });
        assert_eq!(proven.to_data(), old);
        assert_eq!(Attribution::from_data(&old).unwrap(), proven);

        let deleted = Attribution {
            written_at: Some(written_at),
            ..attribute(
                Some(&after),
                &Seen {
                    revision: 5,
                    stored: None,
                },
            )
        };
        let old = serde_json::json!({
            "revision": 5, "by": UNPROVEN, "author_proven": false, "forced": false,
            "old": flags(true, 10, "ops-carol"), "new": null,
            "written_at": "2026-12-01T10:00:01.500Z",
        });
        assert_eq!(deleted.to_data(), old);
        assert_eq!(Attribution::from_data(&old).unwrap(), deleted);

        let first_rows = serde_json::json!({
            "by": "watcher (rollout guard)", "reason": "false approvals",
            "old": flags(true, 50, "ops"), "new": {"enabled": true, "percent": 10},
        });
        let read = Attribution::from_data(&first_rows).unwrap();
        assert_eq!(
            (
                read.by.as_str(),
                read.forced,
                read.written_at,
                read.revision
            ),
            ("watcher (rollout guard)", false, None, 0)
        );
        assert_eq!(read.new.map(|new| new.effective_percent()), Some(10));
    }

    #[test]
    fn the_guard_may_lower_but_never_raise_or_enable() {
        assert!(lowers(&flags(true, 100, "a"), &flags(true, 50, "b")));
        assert!(lowers(&flags(true, 50, "a"), &flags(false, 50, "b")));
        assert!(lowers(&flags(false, 50, "a"), &flags(false, 10, "b")));
        assert!(!lowers(&flags(true, 50, "a"), &flags(true, 100, "b")));
        assert!(!lowers(&flags(false, 50, "a"), &flags(true, 50, "b")));
        assert!(!lowers(&flags(false, 100, "a"), &flags(true, 10, "b")));
    }

    #[test]
    fn a_change_request_names_the_field_it_gets_wrong() {
        let none = ChangeRequest::default();
        assert!(
            none.validate()
                .unwrap_err()
                .contains("`percent`, `enabled` or `promote`")
        );
        let high = ChangeRequest {
            percent: Some(101),
            ..ChangeRequest::default()
        };
        assert!(high.validate().unwrap_err().starts_with("percent:"));
        let unknown = serde_json::from_str::<ChangeRequest>(r#"{"percent":5,"by":"mallory"}"#);
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `by`")
        );
        let enable = ChangeRequest {
            enabled: Some(true),
            ..ChangeRequest::default()
        };
        let applied = enable.apply(&flags(false, 50, "a"));
        assert_eq!((applied.enabled, applied.percent), (true, 50));
    }

    #[test]
    fn a_forced_change_needs_a_reason_and_a_promotion_takes_no_flags() {
        let forced = ChangeRequest {
            promote: true,
            force: true,
            ..ChangeRequest::default()
        };
        assert!(forced.validate().unwrap_err().starts_with("reason:"));
        let blank = ChangeRequest {
            promote: true,
            reason: Some("  ".into()),
            ..ChangeRequest::default()
        };
        assert_eq!(blank.validate().unwrap_err(), "reason: is empty");
        let mixed = ChangeRequest {
            promote: true,
            percent: Some(50),
            ..ChangeRequest::default()
        };
        assert!(mixed.validate().unwrap_err().starts_with("promote:"));
        let fine = ChangeRequest {
            promote: true,
            force: true,
            reason: Some("incident 4411: the 10 % phase was judged on the shadow run".into()),
            ..ChangeRequest::default()
        };
        assert_eq!(fine.validate(), Ok(()));
    }

    #[test]
    fn a_promotion_follows_the_seeds_schedule_from_shadow_to_100() {
        let promote = ChangeRequest {
            promote: true,
            ..ChangeRequest::default()
        };
        let mut flags = flags(false, 100, "environment");
        let mut seen = Vec::new();
        for _ in 0..4 {
            flags = promote.apply(&flags);
            seen.push(flags.effective_percent());
        }
        assert_eq!(seen, [10, 50, 100, 100]);
        assert_eq!(next_step(0), Some(10));
        assert_eq!(next_step(30), Some(50));
        assert_eq!(next_step(100), None);
    }
}

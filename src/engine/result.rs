//! What an operation did: [`ExecutionResult`] and its per-target [`TargetResult`]s, the
//! [`Limits`] that bound it, and the bounded text buffer its output is written to.

use serde::{Deserialize, Serialize};

/// How far one operation may go, set by the gateway's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Upper bound for a stop or restart timeout (`-t`); larger requests are clamped so
    /// one approval cannot hold the gateway for long.
    pub max_stop_timeout_secs: u32,
    /// Upper bound for [`ExecutionResult::output`], in bytes, since it is stored in the
    /// audit log and shown in chat.
    pub max_output_bytes: usize,
    /// Lines of logs returned when the operation does not say `--tail`.
    pub logs_tail_default: u32,
}

/// The outcome of one performed operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionResult {
    /// Every target ended in the wanted state.
    pub ok: bool,
    /// 0 when `ok`, 1 when some target failed, like the docker CLI.
    pub exit_code: i32,
    /// One line for humans.
    pub summary: String,
    /// Per target what happened, then logs or inspect text; at most
    /// [`Limits::max_output_bytes`] bytes.
    pub output: String,
    /// In the order they were acted on (sorted by name for compose).
    pub targets: Vec<TargetResult>,
}

/// What happened to one container or volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetResult {
    pub name: String,
    /// Short and lowercase: `stopped`, `already stopped`, `removed`, `not found`, …
    pub outcome: String,
    pub ok: bool,
}

/// Starts the marker appended after output that was cut at [`Limits::max_output_bytes`]:
/// `… (cut 1234 bytes)`, or `… (cut 1234 bytes, the rest not read)` for logs whose reading
/// stopped at the bound. The audit and the status event thus say how much is missing.
pub const CUT_MARKER: &str = "\n… (cut ";

/// Seconds a stop or restart waits before killing when the operation does not say.
pub const DEFAULT_STOP_TIMEOUT_SECS: u32 = 10;

const MAX_SUMMARY_BYTES: usize = 300;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stop_timeout_secs: 30,
            max_output_bytes: 16 * 1024,
            logs_tail_default: 200,
        }
    }
}

impl Limits {
    /// The stop timeout to use: the requested one or the default, clamped.
    pub fn stop_timeout_secs(&self, requested: Option<u32>) -> u32 {
        requested
            .unwrap_or(DEFAULT_STOP_TIMEOUT_SECS)
            .min(self.max_stop_timeout_secs)
    }
}

/// Collects target results and output text while an operation runs.
pub(crate) struct Report {
    /// What the operation acted on, for the summary: `stop container api`.
    heading: String,
    targets: Vec<TargetResult>,
    /// Replaces the per-target tally, for listings.
    summary: Option<String>,
    output: String,
    max_output_bytes: usize,
    /// Bytes written past the bound and dropped.
    dropped: usize,
    /// A reader stopped at the bound: there was more than `dropped` says.
    unread: bool,
}

impl Report {
    pub(crate) fn new(heading: String, limits: &Limits) -> Self {
        Report {
            heading,
            targets: Vec::new(),
            summary: None,
            output: String::new(),
            max_output_bytes: limits.max_output_bytes,
            dropped: 0,
            unread: false,
        }
    }

    /// Records a target and writes `name: outcome` to the output.
    pub(crate) fn target(&mut self, name: &str, outcome: impl Into<String>, ok: bool) {
        let outcome = outcome.into();
        self.line(&format!("{name}: {outcome}"));
        self.listed_target(name, outcome, ok);
    }

    /// Records a target without writing it, for listings that format their own output.
    pub(crate) fn listed_target(&mut self, name: &str, outcome: impl Into<String>, ok: bool) {
        self.targets.push(TargetResult {
            name: name.to_string(),
            outcome: outcome.into(),
            ok,
        });
    }

    /// Ends the summary with `tally` instead of the per-target count.
    pub(crate) fn summarise_as(&mut self, tally: String) {
        self.summary = Some(format!("{}: {tally}", self.heading));
    }

    pub(crate) fn line(&mut self, text: &str) {
        self.text(text);
        self.text("\n");
    }

    /// Appends text, dropping what goes past the bound (the cut happens in `finish`).
    pub(crate) fn text(&mut self, text: &str) {
        if self.is_full() {
            self.dropped += text.len();
            return;
        }
        let room = self.max_output_bytes + 1 - self.output.len();
        let end = floor_char_boundary(text, room);
        self.output.push_str(&text[..end]);
        self.dropped += text.len() - end;
    }

    /// A reader stopped at the bound without reading everything (logs).
    pub(crate) fn mark_unread(&mut self) {
        self.unread = true;
    }

    /// More output would be cut anyway, so readers of long streams can stop early.
    pub(crate) fn is_full(&self) -> bool {
        self.output.len() > self.max_output_bytes
    }

    pub(crate) fn finish(self) -> ExecutionResult {
        let ok = self.targets.iter().all(|target| target.ok);
        let summary = self
            .summary
            .unwrap_or_else(|| summarise(&self.heading, &self.targets));
        let summary = cut(summary.replace('\n', " "), MAX_SUMMARY_BYTES, " … (cut)");
        ExecutionResult {
            ok,
            exit_code: if ok { 0 } else { 1 },
            summary,
            output: cut_counted(
                self.output,
                self.dropped,
                self.unread,
                self.max_output_bytes,
            ),
            targets: self.targets,
        }
    }
}

/// Cuts `text` to at most `max` bytes on a char boundary, ending in a [`CUT_MARKER`] that
/// says how many bytes were dropped (unless `max` cannot even hold the marker).
pub fn bounded(text: String, max: usize) -> String {
    cut_counted(text, 0, false, max)
}

/// [`bounded`] for text that already lost `dropped` bytes on its way in.
fn cut_counted(mut text: String, dropped: usize, unread: bool, max: usize) -> String {
    let total = text.len() + dropped;
    if total <= max && !unread {
        return text;
    }
    // The marker is sized for the most that could be dropped, so the text it ends fits.
    let longest = cut_marker(total, unread);
    if max < longest.len() {
        text.truncate(floor_char_boundary(&text, max));
        return text;
    }
    let kept = floor_char_boundary(&text, (max - longest.len()).min(text.len()));
    text.truncate(kept);
    text.push_str(&cut_marker(total - kept, unread));
    text
}

fn cut_marker(dropped: usize, unread: bool) -> String {
    let rest = if unread { ", the rest not read" } else { "" };
    format!("{CUT_MARKER}{dropped} bytes{rest})")
}

fn cut(mut text: String, max: usize, marker: &str) -> String {
    if text.len() <= max {
        return text;
    }
    if max < marker.len() {
        text.truncate(floor_char_boundary(&text, max));
        return text;
    }
    text.truncate(floor_char_boundary(&text, max - marker.len()));
    text.push_str(marker);
    text
}

fn summarise(heading: &str, targets: &[TargetResult]) -> String {
    match targets {
        [] => format!("{heading}: nothing to do"),
        [target] => format!("{heading}: {}", target.outcome),
        _ => {
            let ok_count = targets.iter().filter(|target| target.ok).count();
            let mut summary = format!("{heading}: {ok_count} of {} ok", targets.len());
            let failed: Vec<String> = targets
                .iter()
                .filter(|target| !target.ok)
                .map(|target| format!("{} ({})", target.name, target.outcome))
                .collect();
            if !failed.is_empty() {
                summary.push_str("; failed: ");
                summary.push_str(&failed.join(", "));
            }
            summary
        }
    }
}

/// The largest char boundary of `text` at or below `index`.
fn floor_char_boundary(text: &str, index: usize) -> usize {
    if index >= text.len() {
        return text.len();
    }
    (0..=index)
        .rev()
        .find(|&candidate| text.is_char_boundary(candidate))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_left_alone() {
        assert_eq!(bounded("hello".to_string(), 5), "hello");
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary_and_marked() {
        let text = "é".repeat(100);
        let cut = bounded(text, 40);
        assert!(cut.len() <= 40, "{}", cut.len());
        let (kept, marker) = cut.split_once(CUT_MARKER).expect("a marker");
        assert!(kept.chars().all(|c| c == 'é'));
        assert_eq!(marker, format!("{} bytes)", 200 - kept.len()));
    }

    #[test]
    fn a_bound_smaller_than_the_marker_still_holds() {
        assert_eq!(bounded("abcdefghijklmnop".to_string(), 3), "abc");
    }

    #[test]
    fn the_report_never_exceeds_its_bound() {
        let limits = Limits {
            max_output_bytes: 64,
            ..Limits::default()
        };
        let mut report = Report::new("logs container a".to_string(), &limits);
        for index in 0..100 {
            report.line(&format!("line {index} ✓"));
        }
        assert!(report.is_full());
        let result = report.finish();
        assert!(result.output.len() <= 64);
        let written: usize = (0..100)
            .map(|index| format!("line {index} ✓\n").len())
            .sum();
        let (kept, marker) = result.output.split_once(CUT_MARKER).expect("a marker");
        assert_eq!(marker, format!("{} bytes)", written - kept.len()));
    }

    #[test]
    fn the_stop_timeout_defaults_to_ten_seconds_and_is_clamped() {
        let limits = Limits {
            max_stop_timeout_secs: 30,
            ..Limits::default()
        };
        assert_eq!(limits.stop_timeout_secs(None), 10);
        assert_eq!(limits.stop_timeout_secs(Some(3)), 3);
        assert_eq!(limits.stop_timeout_secs(Some(600)), 30);
    }

    #[test]
    fn the_summary_names_failed_targets() {
        let mut report = Report::new("stop containers a, b".to_string(), &Limits::default());
        report.target("a", "stopped", true);
        report.target("b", "not found", false);
        let result = report.finish();
        assert!(!result.ok);
        assert_eq!(result.exit_code, 1);
        assert_eq!(
            result.summary,
            "stop containers a, b: 1 of 2 ok; failed: b (not found)"
        );
        assert_eq!(result.output, "a: stopped\nb: not found\n");
    }
}

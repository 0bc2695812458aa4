//! The code scanner's text half: dangerous instructions and secrets in free text.
//!
//! All patterns (dangerous ones, then secrets) run as one [`RegexSet`] over the title
//! and the description, so clean text costs one pass; only the patterns that matched are
//! run again one by one to find their spans. Secrets are never copied into a finding:
//! their span is redacted (`AKIA****`), and so is any secret inside a dangerous span.

use std::borrow::Cow;
use std::ops::Range;

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::validation::config::{ConfigError, ValidationConfig};
use crate::validation::report::{CODE_SCANNER, Finding, Severity};

/// The longest span shown in a finding, in bytes.
const MAX_SPAN_BYTES: usize = 120;
/// Cache of the lazy DFA that runs all text patterns at once.
const DFA_CACHE_BYTES: usize = 16 * 1024 * 1024;
/// A secret value shorter than this is not reported (`password=1`).
const MIN_SECRET_BYTES: usize = 4;

#[derive(Debug, Clone)]
pub(crate) struct TextScanner {
    set: RegexSet,
    patterns: Vec<TextPattern>,
    allowed_secret_values: RegexSet,
    max_per_pattern: usize,
}

#[derive(Debug, Clone)]
struct TextPattern {
    code: String,
    reason: String,
    /// `None` for a secret, which is always critical.
    severity: Option<Severity>,
    regex: Regex,
    /// The index of the `value` capture group: the secret part of a match.
    value_group: Option<usize>,
}

impl TextScanner {
    pub(crate) fn new(config: &ValidationConfig) -> Result<Self, ConfigError> {
        let scanner = &config.code_scanner;
        let mut patterns = Vec::new();
        let mut keys = Vec::new();
        for (index, dangerous) in scanner.dangerous.iter().enumerate() {
            let key = format!("code_scanner.dangerous[{index}].pattern");
            patterns.push(TextPattern::new(
                &key,
                &dangerous.pattern,
                &dangerous.code,
                &dangerous.reason,
                Some(dangerous.severity),
            )?);
            keys.push(key);
        }
        for (index, secret) in scanner.secrets.iter().enumerate() {
            let key = format!("code_scanner.secrets[{index}].pattern");
            patterns.push(TextPattern::new(
                &key,
                &secret.pattern,
                &secret.code,
                &secret.reason,
                None,
            )?);
            keys.push(key);
        }
        let sources = scanner
            .dangerous
            .iter()
            .map(|pattern| pattern.pattern.as_str())
            .chain(
                scanner
                    .secrets
                    .iter()
                    .map(|pattern| pattern.pattern.as_str()),
            );
        let set = RegexSetBuilder::new(sources)
            .unicode(false)
            // Room for the lazy DFA of all patterns together, so varied texts do not
            // keep clearing its cache (measured: the default slowed mixed traffic).
            .dfa_size_limit(DFA_CACHE_BYTES)
            .build()
            .map_err(|error| ConfigError::Pattern {
                key: "code_scanner".to_string(),
                pattern: "(all dangerous and secret patterns together)".to_string(),
                problem: error.to_string(),
            })?;
        let allowed = &config.whitelist.allowed_secret_values;
        for (index, pattern) in allowed.iter().enumerate() {
            compile(
                &format!("whitelist.allowed_secret_values[{index}]"),
                pattern,
            )?;
        }
        let allowed_secret_values = RegexSetBuilder::new(allowed)
            .unicode(false)
            .build()
            .map_err(|error| ConfigError::Pattern {
                key: "whitelist.allowed_secret_values".to_string(),
                pattern: "(all allowed secret values together)".to_string(),
                problem: error.to_string(),
            })?;
        Ok(Self {
            set,
            patterns,
            allowed_secret_values,
            max_per_pattern: usize::try_from(scanner.max_findings_per_pattern).unwrap_or(1),
        })
    }

    /// Adds a finding for every dangerous instruction and secret in `text`.
    pub(crate) fn scan(&self, text: &str, findings: &mut Vec<Finding>) {
        let haystack = text.as_bytes();
        // Most texts are clean: a search that stops at the first match is much cheaper
        // than the overlapping search that says which patterns match.
        if !self.set.is_match(haystack) {
            return;
        }
        let matched = self.set.matches(haystack);
        // Secrets first, so dangerous spans can be redacted where they overlap one.
        let mut secrets: Vec<Range<usize>> = Vec::new();
        for index in matched.iter() {
            let pattern = &self.patterns[index];
            if pattern.severity.is_none() {
                self.find_secrets(pattern, haystack, &mut secrets, findings);
            }
        }
        for index in matched.iter() {
            let pattern = &self.patterns[index];
            let Some(severity) = pattern.severity else {
                continue;
            };
            for found in pattern.regex.find_iter(haystack).take(self.max_per_pattern) {
                let span = masked(haystack, found.range(), &secrets);
                findings.push(pattern.finding(severity, span));
            }
        }
    }

    fn find_secrets(
        &self,
        pattern: &TextPattern,
        haystack: &[u8],
        secrets: &mut Vec<Range<usize>>,
        findings: &mut Vec<Finding>,
    ) {
        let mut reported = 0;
        for captures in pattern.regex.captures_iter(haystack) {
            if reported == self.max_per_pattern {
                break;
            }
            let Some(whole) = captures.get(0) else {
                continue;
            };
            let secret = match pattern.value_group {
                // The pattern marks its secret part; a match without one (a private key
                // header alone) holds nothing secret itself.
                Some(group) => match captures.get(group) {
                    Some(value) => value.range(),
                    None => whole.end()..whole.end(),
                },
                None => whole.range(),
            };
            let value = &haystack[secret.clone()];
            let has_value = !secret.is_empty();
            if has_value
                && (value.len() < MIN_SECRET_BYTES || self.allowed_secret_values.is_match(value))
            {
                continue;
            }
            if secrets
                .iter()
                .any(|seen| seen.start < secret.end && secret.start < seen.end)
            {
                continue; // the same secret, already reported by another pattern
            }
            let span = masked(haystack, whole.range(), std::slice::from_ref(&secret));
            secrets.push(secret);
            findings.push(pattern.finding(Severity::Critical, span));
            reported += 1;
        }
    }
}

impl TextPattern {
    fn new(
        key: &str,
        source: &str,
        code: &str,
        reason: &str,
        severity: Option<Severity>,
    ) -> Result<Self, ConfigError> {
        let regex = compile(key, source)?;
        let value_group = regex.capture_names().position(|name| name == Some("value"));
        Ok(Self {
            code: code.to_string(),
            reason: reason.to_string(),
            severity,
            regex,
            value_group,
        })
    }

    fn finding(&self, severity: Severity, span: String) -> Finding {
        let reason = match self.severity {
            Some(_) => format!("dangerous instruction in the text: {}", self.reason),
            None => format!(
                "secret in the text: {} (rotate it: approval messages are stored and shown to approvers)",
                self.reason
            ),
        };
        Finding {
            validator: Cow::Borrowed(CODE_SCANNER),
            severity,
            code: Cow::Owned(self.code.clone()),
            reason,
            span: Some(span),
        }
    }
}

fn compile(key: &str, pattern: &str) -> Result<Regex, ConfigError> {
    RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .map_err(|error| ConfigError::Pattern {
            key: key.to_string(),
            pattern: pattern.to_string(),
            problem: error.to_string().replace('\n', " "),
        })
}

/// The text of `range`, with every overlapping secret replaced by its redaction, cut to
/// [`MAX_SPAN_BYTES`].
fn masked(haystack: &[u8], range: Range<usize>, secrets: &[Range<usize>]) -> String {
    let mut span = String::new();
    let mut at = range.start;
    let mut overlapping: Vec<&Range<usize>> = secrets
        .iter()
        .filter(|secret| !secret.is_empty() && secret.start < range.end && range.start < secret.end)
        .collect();
    overlapping.sort_by_key(|secret| secret.start);
    for secret in overlapping {
        let start = secret.start.max(at);
        let end = secret.end.min(range.end);
        if start >= end {
            continue;
        }
        span.push_str(&String::from_utf8_lossy(&haystack[at..start]));
        span.push_str(&redact(&haystack[secret.start..secret.end]));
        at = end;
    }
    span.push_str(&String::from_utf8_lossy(&haystack[at..range.end]));
    // Patterns match a delimiter around some secrets (`[^0-9]` before a bot token).
    let trimmed = span.trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '.' | ',' | ';' | '(' | ')' | '"' | '\'' | '`')
    });
    truncate(trimmed)
}

/// A secret reduced to a short prefix and a mask: `AKIAIOSFODNN7EXAMPLE` → `AKIA****`.
/// At most a quarter of the secret, and never more than four characters, is shown.
pub(crate) fn redact(secret: &[u8]) -> String {
    let shown = (secret.len() / 4).min(4);
    let prefix = String::from_utf8_lossy(&secret[..shown]);
    // A cut inside a multi-byte character shows as U+FFFD; drop it.
    format!("{}****", prefix.trim_end_matches('\u{FFFD}'))
}

fn truncate(span: &str) -> String {
    if span.len() <= MAX_SPAN_BYTES {
        return span.to_string();
    }
    let mut cut = MAX_SPAN_BYTES;
    while !span.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &span[..cut])
}

#[cfg(test)]
mod tests;

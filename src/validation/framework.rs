//! The original's ten-section instruction framework, found in a description.
//!
//! A heading is a line that starts with a section name, in any case, with `_`, `-` or a
//! space between its words, optionally after `#`s, `*`s, a bullet or a number, and
//! followed by a colon (`DELIVERABLES:`, `**Success criteria:**`, `3. BOUNDARIES: none`)
//! or standing alone after `#` or in capitals (`## TEST_PROCESS`). A section's text is
//! what follows its colon up to the next heading.

/// The ten sections, in the framework's order.
pub(crate) const SECTIONS: [&str; 10] = [
    "DELIVERABLES",
    "SUCCESS_CRITERIA",
    "BOUNDARIES",
    "DEPENDENCIES",
    "MITIGATION",
    "TEST_PROCESS",
    "TEST_RESULTS_FORMAT",
    "RESOURCE_REQUIREMENTS",
    "RISK_ASSESSMENT",
    "QUALITY_METRICS",
];

/// For each of [`SECTIONS`], its text when the description has that heading (the first
/// one, if repeated).
pub(crate) fn sections(description: &str) -> [Option<&str>; 10] {
    let mut found: [Option<&str>; 10] = [None; 10];
    // The open section: its index and where its text starts.
    let mut open: Option<(usize, usize)> = None;
    let mut offset = 0;
    for line in description.split_inclusive('\n') {
        if let Some((index, text_start)) = heading(line) {
            close(description, &mut found, open, offset);
            open = (found[index].is_none()).then_some((index, offset + text_start));
        }
        offset += line.len();
    }
    close(description, &mut found, open, description.len());
    found
}

fn close<'a>(
    description: &'a str,
    found: &mut [Option<&'a str>; 10],
    open: Option<(usize, usize)>,
    end: usize,
) {
    if let Some((index, start)) = open {
        found[index] = Some(description.get(start..end).unwrap_or_default().trim());
    }
}

/// The section a line is the heading of, and where in the line its text starts.
fn heading(line: &str) -> Option<(usize, usize)> {
    let trimmed = line.trim_start();
    let hashed = trimmed.starts_with('#');
    let rest = trimmed.trim_start_matches(['#', '*', '-', '>', ' ', '\t']);
    let rest = strip_numbering(rest);
    let bytes = rest.as_bytes();
    for (index, name) in SECTIONS.iter().enumerate() {
        let Some(candidate) = bytes.get(..name.len()) else {
            continue;
        };
        if !same_heading(candidate, name.as_bytes()) {
            continue;
        }
        let after = &rest[name.len()..];
        if after
            .as_bytes()
            .first()
            .is_some_and(|byte| byte.is_ascii_alphanumeric())
        {
            continue; // a longer word, e.g. TEST_PROCESSES
        }
        let after_marks = after.trim_start_matches(['*', ' ', '\t']);
        let consumed = line.len() - after_marks.len();
        if let Some(text) = after_marks.strip_prefix(':') {
            let text = text.trim_start_matches('*');
            return Some((index, line.len() - text.len()));
        }
        let written_in_capitals = candidate.iter().all(|byte| !byte.is_ascii_lowercase());
        if after_marks.trim().is_empty() && (hashed || written_in_capitals) {
            return Some((index, consumed));
        }
    }
    None
}

/// Drops a leading `3.` or `3)` list number.
fn strip_numbering(text: &str) -> &str {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return text;
    }
    match text[digits..].strip_prefix(['.', ')']) {
        Some(rest) => rest.trim_start(),
        None => text,
    }
}

/// Compares a heading as written with a section name: case-insensitive, and `_`, `-`
/// and a space are the same separator.
fn same_heading(written: &[u8], name: &[u8]) -> bool {
    written.iter().zip(name).all(|(written, name)| {
        if *name == b'_' {
            matches!(written, b'_' | b'-' | b' ')
        } else {
            written.eq_ignore_ascii_case(name)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_are_found_in_their_common_spellings() {
        let description = "DELIVERABLES: the gateway service\n\
                           ## SUCCESS_CRITERIA\nhealth endpoint answers 200\n\
                           **Boundaries:** only the prd stack\n\
                           4. Dependencies: postgres and nats\n\
                           - risk assessment: medium, downtime of two minutes\n";
        let found = sections(description);
        assert_eq!(found[0], Some("the gateway service"));
        assert_eq!(found[1], Some("health endpoint answers 200"));
        assert_eq!(found[2], Some("only the prd stack"));
        assert_eq!(found[3], Some("postgres and nats"));
        assert_eq!(found[8], Some("medium, downtime of two minutes"));
        assert_eq!(found[4], None);
    }

    #[test]
    fn a_section_runs_until_the_next_heading() {
        let found = sections("MITIGATION:\nroll back with\nthe previous image\nTEST_PROCESS: curl");
        assert_eq!(found[4], Some("roll back with\nthe previous image"));
        assert_eq!(found[5], Some("curl"));
    }

    #[test]
    fn prose_that_starts_with_a_section_word_is_not_a_heading() {
        let found = sections("Deliverables are listed below\nTest process documents exist");
        assert!(found.iter().all(Option::is_none));
        assert!(sections("TEST_PROCESSES: many")[5].is_none());
    }
}

//! Keyword counting: every configured word list, found in one pass over the text.
//!
//! The validators ask many small questions of a request's text: does it mention a
//! rollback, a verification, a deployment word, the action "restart"? Instead of one
//! regex per list, all keywords of all lists form one literal alternation (which the
//! regex crate runs as a multi-literal automaton), and each hit is mapped back to its
//! categories. Keywords are whole words or phrases; a keyword written with a trailing `*`
//! also matches longer words (`deploy*` matches "deploying").

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use regex::bytes::{Regex, RegexBuilder};

use crate::validation::config::ConfigError;

/// What a keyword says about a request; one per configured word list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    Deployment,
    Operational,
    Reason,
    Rollback,
    Verification,
    Vague,
    Stateful,
    InstructionWideScope,
    WideScope,
    DataSafe,
    EnvDev,
    EnvTest,
    EnvPrd,
    Restart,
    Stop,
    Start,
    Kill,
    Remove,
    Down,
    Inspect,
    Logs,
    Status,
}

const CATEGORY_COUNT: usize = Category::Status as usize + 1;

/// How many times each category's keywords occur in a text (saturating at 255).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counts([u8; CATEGORY_COUNT]);

/// The compiled keyword lists.
#[derive(Debug, Clone)]
pub(crate) struct Lexicon {
    /// Every keyword, longest first so the longest one wins where several start.
    alternation: Regex,
    /// For each keyword, its categories as a whole word and as the start of a longer
    /// word (from a trailing `*`).
    masks: HashMap<Box<[u8]>, Masks, BuildHasherDefault<Fnv>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Masks {
    exact: u32,
    prefix: u32,
}

/// FNV-1a: the keys are a few hundred short keywords of our own config, so a fast hash
/// beats the DoS-resistant default, which showed in profiles of `scan`.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Counts {
    pub(crate) fn get(&self, category: Category) -> u8 {
        self.0[category as usize]
    }

    pub(crate) fn has(&self, category: Category) -> bool {
        self.get(category) > 0
    }

    pub(crate) fn add(&mut self, other: &Counts) {
        for (count, more) in self.0.iter_mut().zip(other.0) {
            *count = count.saturating_add(more);
        }
    }

    fn count(&mut self, mut bits: u32) {
        while bits != 0 {
            let index = bits.trailing_zeros() as usize;
            if let Some(count) = self.0.get_mut(index) {
                *count = count.saturating_add(1);
            }
            bits &= bits - 1;
        }
    }
}

impl Lexicon {
    /// Builds the lexicon from `(key, category, keywords)` lists; `key` names the config
    /// key in an error.
    pub(crate) fn new(lists: &[(&str, Category, &[String])]) -> Result<Self, ConfigError> {
        let mut masks: HashMap<Box<[u8]>, Masks, BuildHasherDefault<Fnv>> = HashMap::default();
        for (_, category, keywords) in lists {
            let bit = 1u32 << (*category as u32);
            for keyword in keywords.iter() {
                let (word, prefix) = match keyword.strip_suffix('*') {
                    Some(word) => (word, true),
                    None => (keyword.as_str(), false),
                };
                let word = word.to_ascii_lowercase().into_bytes().into_boxed_slice();
                let entry = masks.entry(word).or_default();
                if prefix {
                    entry.prefix |= bit;
                } else {
                    entry.exact |= bit;
                }
            }
        }
        let mut words: Vec<&[u8]> = masks.keys().map(|word| &word[..]).collect();
        words.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        let pattern = words
            .iter()
            .map(|word| regex::escape(&String::from_utf8_lossy(word)))
            .collect::<Vec<_>>()
            .join("|");
        let alternation = RegexBuilder::new(&pattern)
            .unicode(false)
            .build()
            .map_err(|error| ConfigError::Pattern {
                key: lists.first().map_or("keywords", |list| list.0).to_string(),
                pattern: "(all keyword lists together)".to_string(),
                problem: error.to_string(),
            })?;
        Ok(Self { alternation, masks })
    }

    /// Counts the categories of every keyword in `text`, which must be ASCII-lowercased.
    pub(crate) fn scan(&self, text: &[u8]) -> Counts {
        let mut counts = Counts::default();
        for found in self.alternation.find_iter(text) {
            let (start, end) = (found.start(), found.end());
            let word = found.as_bytes();
            let starts_word = !word.first().copied().is_some_and(is_word_byte)
                || start == 0
                || !is_word_byte(text[start - 1]);
            if !starts_word {
                continue;
            }
            let Some(masks) = self.masks.get(word) else {
                continue;
            };
            let ends_word = !word.last().copied().is_some_and(is_word_byte)
                || text.get(end).is_none_or(|next| !is_word_byte(*next));
            counts.count(if ends_word {
                masks.exact | masks.prefix
            } else {
                masks.prefix
            });
        }
        counts
    }
}

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A byte that continues a word: ASCII letters, digits, `_`, and any non-ASCII byte (so a
/// keyword never matches inside a word with accents).
fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexicon(lists: &[(Category, &[&str])]) -> Lexicon {
        let owned: Vec<(Category, Vec<String>)> = lists
            .iter()
            .map(|(category, words)| (*category, words.iter().map(|w| w.to_string()).collect()))
            .collect();
        let borrowed: Vec<(&str, Category, &[String])> = owned
            .iter()
            .map(|(category, words)| ("test", *category, words.as_slice()))
            .collect();
        Lexicon::new(&borrowed).unwrap()
    }

    #[test]
    fn keywords_match_whole_words_only() {
        let lexicon = lexicon(&[(Category::Stop, &["stop"]), (Category::Logs, &["log"])]);
        let counts = lexicon.scan(b"unstoppable catalog; stop the log");
        assert_eq!(counts.get(Category::Stop), 1);
        assert_eq!(counts.get(Category::Logs), 1);
    }

    #[test]
    fn a_trailing_star_matches_longer_words() {
        let lexicon = lexicon(&[(Category::Deployment, &["deploy*"])]);
        let counts = lexicon.scan(b"deploying after the deploy, redeploy excluded");
        assert_eq!(counts.get(Category::Deployment), 2);
    }

    #[test]
    fn one_keyword_may_count_for_several_categories() {
        let lexicon = lexicon(&[
            (Category::Operational, &["restart*"]),
            (Category::Restart, &["restart"]),
        ]);
        let counts = lexicon.scan(b"restart, then restarting");
        assert_eq!(counts.get(Category::Operational), 2);
        assert_eq!(counts.get(Category::Restart), 1);
    }

    #[test]
    fn phrases_and_punctuated_keywords_match() {
        let lexicon = lexicon(&[
            (Category::Rollback, &["roll back"]),
            (Category::DataSafe, &["without -v"]),
        ]);
        let counts = lexicon.scan(b"we roll back without -v.");
        assert!(counts.has(Category::Rollback));
        assert!(counts.has(Category::DataSafe));
    }
}

//! What the validators need to know about a request, worked out once per validation.
//!
//! The text is lowercased once and its keywords counted in one pass
//! ([`crate::validation::lexicon`]); the command is read from its typed
//! [`DockerOperation`], never from the raw line, so `--format` can never read as `rm`.

use crate::docker::{ComposeAction, ContainerAction, DockerOperation};
use crate::request::Request;
use crate::validation::Validator;
use crate::validation::lexicon::{Category, Counts};

/// The facts about one request that more than one validator uses.
pub(crate) struct Facts<'a> {
    pub request: &'a Request,
    /// Title, a line break, and description, ASCII-lowercased.
    pub lower: String,
    /// Where the title ends in `lower` (the line break follows).
    pub title_end: usize,
    /// Keyword counts of title and description together.
    pub counts: Counts,
    /// Keyword counts of the title alone (the profile weighs the title double).
    pub title_counts: Counts,
    pub description_words: usize,
    pub title_words: usize,
    /// `container_rm`, `compose_down`, … or `instruction` when there is no command.
    pub operation_name: &'static str,
    pub operation: Option<OperationFacts<'a>>,
}

/// The shape of a docker operation, as the validators judge it.
pub(crate) struct OperationFacts<'a> {
    pub operation: &'a DockerOperation,
    /// What it acts on, for humans: `container api`, `compose project shop (all services)`.
    pub summary: String,
    /// Containers, or compose services; empty for a whole compose project.
    pub targets: &'a [String],
    /// A compose operation on every service of its project.
    pub whole_project: bool,
    /// Targets whose name looks like a database or a broker (or, for a whole project,
    /// whether the project's name does).
    pub stateful_targets: usize,
    /// Targets the title or description names, by full name or by last name part.
    pub mentioned_targets: usize,
    pub project_mentioned: bool,
    pub volumes: bool,
    pub force: bool,
    pub remove_orphans: bool,
    /// `stop` or `restart` with a KILL signal: no graceful stop.
    pub kill_signal: bool,
}

impl<'a> Facts<'a> {
    pub(crate) fn new(validator: &Validator, request: &'a Request) -> Self {
        let mut lower = String::with_capacity(request.title.len() + request.description.len() + 1);
        lower.push_str(&request.title);
        let title_end = lower.len();
        lower.push('\n');
        lower.push_str(&request.description);
        lower.make_ascii_lowercase();
        let lexicon = &validator.compiled.lexicon;
        let title_counts = lexicon.scan(&lower.as_bytes()[..title_end]);
        let mut counts = lexicon.scan(&lower.as_bytes()[title_end..]);
        counts.add(&title_counts);
        let operation = request
            .command
            .as_ref()
            .map(|command| OperationFacts::new(validator, &command.operation, &lower));
        Self {
            request,
            operation_name: operation
                .as_ref()
                .map_or("instruction", |facts| facts.operation.name()),
            operation,
            title_end,
            counts,
            title_counts,
            description_words: request.description.split_ascii_whitespace().count(),
            title_words: request.title.split_ascii_whitespace().count(),
            lower,
        }
    }

    pub(crate) fn has(&self, category: Category) -> bool {
        self.counts.has(category)
    }

    /// The lowercased title.
    pub(crate) fn title_lower(&self) -> &str {
        &self.lower[..self.title_end]
    }

    /// The lowercased description.
    pub(crate) fn description_lower(&self) -> &str {
        self.lower.get(self.title_end + 1..).unwrap_or_default()
    }

    /// Whether the operation reads only (inspect, logs, compose ps, a probe exec).
    pub(crate) fn read_only(&self) -> bool {
        self.operation
            .as_ref()
            .is_some_and(|facts| facts.operation.is_read_only())
    }

    /// How many containers or services the request touches; `None` for a whole compose
    /// project or an instruction approval (unbounded).
    pub(crate) fn target_count(&self) -> Option<usize> {
        match &self.operation {
            Some(facts) if !facts.whole_project => Some(facts.targets.len()),
            _ => None,
        }
    }
}

impl<'a> OperationFacts<'a> {
    fn new(validator: &Validator, operation: &'a DockerOperation, lower: &str) -> Self {
        let stateful = |name: &str| validator.compiled.stateful_target.is_match(name.as_bytes());
        let mentioned = |targets: &[String]| {
            targets
                .iter()
                .filter(|target| mentions_target(lower, target))
                .count()
        };
        match operation {
            DockerOperation::Container(op) => {
                let kill_signal =
                    matches!(op.action, ContainerAction::Stop | ContainerAction::Restart)
                        && op.options.signal.as_deref().is_some_and(is_kill_signal);
                Self {
                    operation,
                    summary: operation.targets_summary(),
                    targets: &op.targets,
                    whole_project: false,
                    stateful_targets: op.targets.iter().filter(|name| stateful(name)).count(),
                    mentioned_targets: mentioned(&op.targets),
                    project_mentioned: false,
                    volumes: op.action == ContainerAction::Rm && op.options.volumes,
                    force: op.action == ContainerAction::Rm && op.options.force,
                    remove_orphans: false,
                    kill_signal,
                }
            }
            DockerOperation::Compose(op) => {
                let whole_project = op.services.is_empty() && op.action != ComposeAction::Ps;
                let stateful_targets = if op.services.is_empty() {
                    usize::from(stateful(&op.project))
                } else {
                    op.services.iter().filter(|name| stateful(name)).count()
                };
                Self {
                    operation,
                    summary: operation.targets_summary(),
                    targets: &op.services,
                    whole_project,
                    stateful_targets,
                    mentioned_targets: mentioned(&op.services),
                    project_mentioned: mentions_word(lower, &op.project),
                    volumes: op.action == ComposeAction::Down && op.options.volumes,
                    force: false,
                    remove_orphans: matches!(op.action, ComposeAction::Down | ComposeAction::Up)
                        && op.options.remove_orphans,
                    kill_signal: false,
                }
            }
            DockerOperation::Exec(op) => {
                let targets = std::slice::from_ref(&op.container);
                Self {
                    operation,
                    summary: operation.targets_summary(),
                    targets,
                    whole_project: false,
                    stateful_targets: usize::from(stateful(&op.container)),
                    mentioned_targets: mentioned(targets),
                    project_mentioned: false,
                    volumes: false,
                    force: false,
                    remove_orphans: false,
                    kill_signal: false,
                }
            }
        }
    }
}

/// Whether `lower` names a target: by its full name, or by the last part of a name such
/// as `wingman-prd-api` ("the api container"), if that part has three letters or more.
fn mentions_target(lower: &str, target: &str) -> bool {
    if mentions_word(lower, target) {
        return true;
    }
    let last = target.rsplit(['-', '_', '.']).next().unwrap_or(target);
    last.len() >= 3 && last.len() < target.len() && mentions_word(lower, last)
}

/// Whether `lower` contains `word` (compared ASCII-case-insensitively) between word
/// boundaries. Only letters and digits continue a word here, so `api` is found in
/// "wingman-prd-api" and `validation` in "validation_enabled".
pub(crate) fn mentions_word(lower: &str, word: &str) -> bool {
    find_word(lower, word, true)
}

/// Whether `lower` has a word starting like `word` less its last two letters, so an
/// inflection counts: "requests" is found in "request", "enable" in "enabled". Only for
/// words of six letters or more; shorter ones must match whole.
pub(crate) fn mentions_stem(lower: &str, word: &str) -> bool {
    word.len() >= 6 && word.is_ascii() && find_word(lower, &word[..word.len() - 2], false)
}

fn find_word(lower: &str, word: &str, whole: bool) -> bool {
    if word.is_empty() {
        return false;
    }
    let continues = |byte: u8| byte.is_ascii_alphanumeric() || byte >= 0x80;
    let haystack = lower.as_bytes();
    let needle = word.as_bytes();
    let first = needle[0].to_ascii_lowercase();
    let mut from = 0;
    while let Some(offset) = haystack
        .get(from..)
        .and_then(|rest| memchr_byte(first, rest))
    {
        let start = from + offset;
        let end = start + needle.len();
        let Some(candidate) = haystack.get(start..end) else {
            return false;
        };
        if candidate.eq_ignore_ascii_case(needle)
            && (start == 0 || !continues(haystack[start - 1]))
            && (!whole || haystack.get(end).is_none_or(|next| !continues(*next)))
        {
            return true;
        }
        from = start + 1;
    }
    false
}

fn memchr_byte(byte: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|candidate| *candidate == byte)
}

fn is_kill_signal(signal: &str) -> bool {
    matches!(signal, "KILL" | "SIGKILL" | "9")
}

//! Parses the arguments of `docker stop|start|restart|kill|rm|inspect|logs`.
//!
//! Each action accepts only the flags in its table below; targets are container names or
//! ids. Flags may come before or after the targets, as with docker itself.

use crate::docker::error::{CommandError, NameKind};
use crate::docker::flags::{FlagSpec, Mode, read_flags};
use crate::docker::operation::{ContainerAction, ContainerOp, ContainerOptions};
use crate::docker::values;

/// Maps a docker subcommand to a container action, if it is one.
pub(crate) fn action(subcommand: &str) -> Option<ContainerAction> {
    ContainerAction::ALL
        .iter()
        .copied()
        .find(|action| action.as_str() == subcommand)
}

/// Parses the arguments after the subcommand. `label` is the subcommand as the user
/// spelled it (`stop` or `container stop`), for error messages.
pub(crate) fn parse(
    action: ContainerAction,
    args: &[String],
    label: &str,
) -> Result<ContainerOp, CommandError> {
    let parsed = read_flags(args, specs(action), label, Mode::Interspersed)?;
    let mut options = ContainerOptions::default();
    for flag in &parsed.flags {
        let (spelled, text) = (flag.spelled.as_str(), flag.text.as_str());
        match flag.flag {
            Flag::Time => options.timeout_secs = Some(values::seconds(spelled, text)?),
            Flag::Signal => options.signal = Some(values::signal(spelled, text)?),
            Flag::Force => options.force = flag.on,
            Flag::Volumes => options.volumes = flag.on,
            Flag::Tail => options.tail = values::tail(spelled, text)?,
            Flag::Since => options.since = Some(values::since(spelled, text)?),
            Flag::Timestamps => options.timestamps = flag.on,
            Flag::Format => options.format = Some(values::text(spelled, text)?),
            Flag::Size => options.size = flag.on,
            Flag::Follow => {}
        }
    }
    let targets = values::names(NameKind::Container, &parsed.positionals)?;
    if targets.is_empty() {
        return Err(CommandError::MissingTarget {
            subcommand: label.to_string(),
        });
    }
    Ok(ContainerOp {
        action,
        targets,
        options,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    Time,
    Signal,
    Force,
    Volumes,
    Tail,
    Since,
    Timestamps,
    Format,
    Size,
    Follow,
}

const STOP_FLAGS: &[FlagSpec<Flag>] = &[
    FlagSpec::value(Flag::Time, Some('t'), &["time", "timeout"]),
    FlagSpec::value(Flag::Signal, Some('s'), &["signal"]),
];
const KILL_FLAGS: &[FlagSpec<Flag>] = &[FlagSpec::value(Flag::Signal, Some('s'), &["signal"])];
const RM_FLAGS: &[FlagSpec<Flag>] = &[
    FlagSpec::switch(Flag::Force, Some('f'), &["force"]),
    FlagSpec::switch(Flag::Volumes, Some('v'), &["volumes"]),
];
const LOGS_FLAGS: &[FlagSpec<Flag>] = &[
    FlagSpec::value(Flag::Tail, Some('n'), &["tail"]),
    FlagSpec::value(Flag::Since, None, &["since"]),
    FlagSpec::switch(Flag::Timestamps, Some('t'), &["timestamps"]),
    FlagSpec::switch(Flag::Follow, Some('f'), &["follow"])
        .refused("following logs never ends, so the gateway could not finish the operation"),
];
const INSPECT_FLAGS: &[FlagSpec<Flag>] = &[
    FlagSpec::value(Flag::Format, Some('f'), &["format"]),
    FlagSpec::switch(Flag::Size, Some('s'), &["size"]),
];

fn specs(action: ContainerAction) -> &'static [FlagSpec<Flag>] {
    match action {
        ContainerAction::Stop | ContainerAction::Restart => STOP_FLAGS,
        ContainerAction::Kill => KILL_FLAGS,
        ContainerAction::Rm => RM_FLAGS,
        ContainerAction::Logs => LOGS_FLAGS,
        ContainerAction::Inspect => INSPECT_FLAGS,
        ContainerAction::Start => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(action: ContainerAction, words: &str) -> Result<ContainerOp, CommandError> {
        let args: Vec<String> = words.split_whitespace().map(str::to_string).collect();
        parse(action, &args, action.as_str())
    }

    #[test]
    fn stop_reads_time_and_signal_in_any_position() {
        let op =
            parse_words(ContainerAction::Stop, "api -t 5 worker --signal=term").expect("parses");
        assert_eq!(op.targets, vec!["api", "worker"]);
        assert_eq!(op.options.timeout_secs, Some(5));
        assert_eq!(op.options.signal.as_deref(), Some("SIGTERM"));
    }

    #[test]
    fn stop_accepts_the_timeout_alias() {
        let op = parse_words(ContainerAction::Restart, "--timeout 10 api").expect("parses");
        assert_eq!(op.options.timeout_secs, Some(10));
    }

    #[test]
    fn kill_reads_a_signal() {
        let op = parse_words(ContainerAction::Kill, "-s HUP api").expect("parses");
        assert_eq!(op.options.signal.as_deref(), Some("SIGHUP"));
        let error = parse_words(ContainerAction::Kill, "-t 5 api").unwrap_err();
        assert_eq!(error.code(), "unknown_flag");
    }

    #[test]
    fn rm_reads_force_and_volumes_bundled_or_apart() {
        let bundled = parse_words(ContainerAction::Rm, "-fv api").expect("parses");
        let apart = parse_words(ContainerAction::Rm, "--force --volumes api").expect("parses");
        assert_eq!(bundled, apart);
        assert!(bundled.options.force && bundled.options.volumes);
    }

    #[test]
    fn logs_reads_tail_since_and_timestamps() {
        let op = parse_words(ContainerAction::Logs, "-n 50 --since 10m -t api").expect("parses");
        assert_eq!(op.options.tail, Some(50));
        assert_eq!(op.options.since.as_deref(), Some("10m"));
        assert!(op.options.timestamps);
        let op = parse_words(ContainerAction::Logs, "--tail=all api").expect("parses");
        assert_eq!(op.options.tail, None);
    }

    #[test]
    fn logs_refuses_to_follow() {
        let error = parse_words(ContainerAction::Logs, "-f api").unwrap_err();
        assert_eq!(error.code(), "unsupported");
        assert!(error.to_string().contains("never ends"), "{error}");
    }

    #[test]
    fn inspect_records_format_and_size() {
        let op =
            parse_words(ContainerAction::Inspect, "-f {{.State.Status}} -s api").expect("parses");
        assert_eq!(op.options.format.as_deref(), Some("{{.State.Status}}"));
        assert!(op.options.size);
    }

    #[test]
    fn start_takes_no_flags() {
        let error = parse_words(ContainerAction::Start, "-a api").unwrap_err();
        assert_eq!(
            error,
            CommandError::UnknownFlag {
                flag: "-a".into(),
                subcommand: "start".into()
            }
        );
    }

    #[test]
    fn a_container_action_needs_a_target() {
        let error = parse_words(ContainerAction::Stop, "-t 5").unwrap_err();
        assert_eq!(
            error.to_string(),
            "`docker stop` needs at least one container name or id"
        );
        assert_eq!(error.code(), "missing_target");
    }

    #[test]
    fn targets_must_be_valid_names() {
        let error = parse_words(ContainerAction::Rm, "-f api ../etc").unwrap_err();
        assert_eq!(error.code(), "invalid_name");
        assert!(error.to_string().contains("`../etc`"), "{error}");
    }

    #[test]
    fn bad_numbers_name_the_flag() {
        let error = parse_words(ContainerAction::Stop, "--time=soon api").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid value `soon` for `--time`: expected a whole number of seconds"
        );
    }
}

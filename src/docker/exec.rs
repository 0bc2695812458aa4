//! Parses the arguments of `docker exec`: `<container> <command> [arg...]`, without options.
//!
//! An exec is accepted here in any shape a probe could have; whether its argv is a probe
//! the policy declares for the container's project is the gateway's decision
//! ([`crate::policy`]), taken on the container Docker resolved. Options are refused: a
//! probe runs as declared, so `-u root`, `-e`, `-w`, `--privileged`, `-i` and `-t` have no
//! place. The argv is kept exactly as typed; no shell ever reads it.

use crate::docker::error::{CommandError, NameKind};
use crate::docker::operation::ExecOp;
use crate::docker::values;

/// Parses the arguments after `exec` (or `container exec`).
pub(crate) fn parse(args: &[String]) -> Result<ExecOp, CommandError> {
    let Some((container, argv)) = args.split_first() else {
        return Err(CommandError::ExecCommandMissing);
    };
    if container.starts_with('-') {
        return Err(CommandError::ExecOption {
            flag: container.clone(),
        });
    }
    let container = values::name(NameKind::Container, container)?;
    if argv.is_empty() {
        return Err(CommandError::ExecCommandMissing);
    }
    let argv = argv
        .iter()
        .map(|arg| values::text("exec argument", arg))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ExecOp { container, argv })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &str) -> Result<ExecOp, CommandError> {
        let args: Vec<String> = words.split_whitespace().map(str::to_string).collect();
        parse(&args)
    }

    #[test]
    fn the_argv_after_the_container_is_kept_as_typed() {
        let op = parse_words("shop-web-1 wget -qO- http://127.0.0.1:8080/health").expect("parses");
        assert_eq!(op.container, "shop-web-1");
        assert_eq!(op.argv, ["wget", "-qO-", "http://127.0.0.1:8080/health"]);
    }

    #[test]
    fn options_before_the_container_are_refused() {
        for words in [
            "-u root api id",
            "-it api sh",
            "--privileged api id",
            "-e A=1 api env",
        ] {
            let error = parse_words(words).unwrap_err();
            assert_eq!(error.code(), "unsupported", "{words}");
            assert!(error.to_string().contains("runs only a probe"), "{error}");
        }
    }

    #[test]
    fn a_container_and_a_command_are_required() {
        for words in ["", "api"] {
            let error = parse_words(words).unwrap_err();
            assert_eq!(error, CommandError::ExecCommandMissing, "{words:?}");
        }
        assert_eq!(parse_words("../x id").unwrap_err().code(), "invalid_name");
    }
}

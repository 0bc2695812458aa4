//! Parses `docker compose [global options] <down|stop|start|restart|ps|up|pull> [options]
//! [service...]`.
//!
//! The gateway finds a project's containers by the `com.docker.compose.project` label, so
//! `-p` is required. `up` and `pull` need the project's compose model, which the gateway
//! takes from the project's registration in its policy, never from the request; `up` must
//! be detached (`-d`), since an attached `up` never ends. `-f`, `--env-file` and `--project-directory` are recorded in the
//! operation, and the gateway's policy accepts them only when they name the files of a
//! project registered for the environment (`[projects.<name>]` in `config/policy.toml`).
//! `--profile` is refused here: a profile selects services from compose files, and which
//! containers it meant cannot be told from their labels. Global options must come before
//! the action, as with compose itself.

use crate::docker::error::{CommandError, NameKind};
use crate::docker::flags::{FlagSpec, Mode, read_flags};
use crate::docker::operation::{ComposeAction, ComposeOp, ComposeOptions};
use crate::docker::values;

/// Parses the arguments after `docker compose` (or after a legacy `docker-compose`).
pub(crate) fn parse(args: &[String]) -> Result<ComposeOp, CommandError> {
    let global = read_flags(args, GLOBAL_FLAGS, "compose", Mode::StopAtFirstPositional)?;
    let Some((action_word, action_args)) = global.positionals.split_first() else {
        return Err(CommandError::MissingSubcommand {
            context: "docker compose".to_string(),
        });
    };
    let label = format!("compose {action_word}");
    let action = action(action_word).ok_or_else(|| CommandError::Unsupported {
        subcommand: label.clone(),
    })?;

    let mut project = None;
    let mut files = Vec::new();
    let mut env_file = None;
    let mut options = ComposeOptions::default();
    for flag in &global.flags {
        let (spelled, text) = (flag.spelled.as_str(), flag.text.as_str());
        match flag.flag {
            Flag::File => files.push(values::text(spelled, text)?),
            Flag::Project => project = Some(values::name(NameKind::Project, text)?),
            Flag::EnvFile => env_file = Some(values::text(spelled, text)?),
            Flag::ProjectDirectory => {
                options.project_directory = Some(values::text(spelled, text)?)
            }
            _ => {}
        }
    }

    let parsed = read_flags(
        action_args,
        action_specs(action),
        &label,
        Mode::Interspersed,
    )?;
    for flag in &parsed.flags {
        let (spelled, text) = (flag.spelled.as_str(), flag.text.as_str());
        match flag.flag {
            Flag::Timeout => options.timeout_secs = Some(values::seconds(spelled, text)?),
            Flag::RemoveOrphans => options.remove_orphans = flag.on,
            Flag::Volumes => options.volumes = flag.on,
            Flag::All => options.all = flag.on,
            Flag::Quiet => options.quiet = flag.on,
            Flag::Format => options.format = Some(values::text(spelled, text)?),
            Flag::Services => options.services_only = flag.on,
            Flag::Detach => options.detach = flag.on,
            Flag::Build => options.build = flag.on,
            _ => {}
        }
    }
    if action == ComposeAction::Up && !options.detach {
        return Err(CommandError::DetachRequired);
    }
    let services = values::names(NameKind::Service, &parsed.positionals)?;
    let project = project.ok_or(CommandError::ComposeProjectRequired)?;
    Ok(ComposeOp {
        action,
        project,
        services,
        files,
        env_file,
        options,
    })
}

fn action(word: &str) -> Option<ComposeAction> {
    ComposeAction::ALL
        .iter()
        .copied()
        .find(|action| action.as_str() == word)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    File,
    Project,
    EnvFile,
    ProjectDirectory,
    Profile,
    Timeout,
    RemoveOrphans,
    Volumes,
    Rmi,
    All,
    Quiet,
    Format,
    Services,
    Detach,
    Build,
    NoBuild,
}

const GLOBAL_FLAGS: &[FlagSpec<Flag>] = &[
    FlagSpec::value(Flag::File, Some('f'), &["file"]).repeatable(),
    FlagSpec::value(Flag::Project, Some('p'), &["project-name"]),
    FlagSpec::value(Flag::EnvFile, None, &["env-file"]),
    FlagSpec::value(Flag::ProjectDirectory, None, &["project-directory"]),
    FlagSpec::value(Flag::Profile, None, &["profile"]).refused(
        "a profile selects services from compose files, which the gateway cannot see in the \
         containers' labels: name the services instead",
    ),
];
const DOWN_FLAGS: &[FlagSpec<Flag>] = &[
    FlagSpec::switch(Flag::RemoveOrphans, None, &["remove-orphans"]),
    FlagSpec::switch(Flag::Volumes, Some('v'), &["volumes"]),
    FlagSpec::value(Flag::Timeout, Some('t'), &["timeout"]),
    FlagSpec::value(Flag::Rmi, None, &["rmi"])
        .refused("removing images is outside the gateway's allowlist"),
];
const STOP_FLAGS: &[FlagSpec<Flag>] = &[FlagSpec::value(Flag::Timeout, Some('t'), &["timeout"])];
const UP_FLAGS: &[FlagSpec<Flag>] = &[
    FlagSpec::switch(Flag::Detach, Some('d'), &["detach"]),
    FlagSpec::switch(Flag::Build, None, &["build"]),
    FlagSpec::switch(Flag::RemoveOrphans, None, &["remove-orphans"]),
    FlagSpec::switch(Flag::NoBuild, None, &["no-build"])
        .refused("leave out `--build` instead: without it, compose builds only missing images"),
];
const PS_FLAGS: &[FlagSpec<Flag>] = &[
    FlagSpec::switch(Flag::All, Some('a'), &["all"]),
    FlagSpec::switch(Flag::Quiet, Some('q'), &["quiet"]),
    FlagSpec::value(Flag::Format, None, &["format"]),
    FlagSpec::switch(Flag::Services, None, &["services"]),
];

fn action_specs(action: ComposeAction) -> &'static [FlagSpec<Flag>] {
    match action {
        ComposeAction::Down => DOWN_FLAGS,
        ComposeAction::Stop | ComposeAction::Restart => STOP_FLAGS,
        ComposeAction::Ps => PS_FLAGS,
        ComposeAction::Up => UP_FLAGS,
        ComposeAction::Start | ComposeAction::Pull => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &str) -> Result<ComposeOp, CommandError> {
        let args: Vec<String> = words.split_whitespace().map(str::to_string).collect();
        parse(&args)
    }

    #[test]
    fn the_seed_runbook_down_parses_to_the_expected_operation() {
        let op = parse_words("-f docker-compose.prd.yml -p wingman-prd --env-file .env.prd down")
            .expect("parses");
        assert_eq!(
            op,
            ComposeOp {
                action: ComposeAction::Down,
                project: "wingman-prd".into(),
                services: vec![],
                files: vec!["docker-compose.prd.yml".into()],
                env_file: Some(".env.prd".into()),
                options: ComposeOptions::default(),
            }
        );
    }

    #[test]
    fn down_reads_its_options() {
        let op = parse_words("-p wingman-prd down --remove-orphans -v -t 30").expect("parses");
        assert!(op.options.remove_orphans && op.options.volumes);
        assert_eq!(op.options.timeout_secs, Some(30));
    }

    #[test]
    fn down_refuses_to_remove_images() {
        let error = parse_words("-p wingman-prd down --rmi all").unwrap_err();
        assert_eq!(error.code(), "unsupported");
        assert!(error.to_string().contains("`--rmi`"), "{error}");
    }

    #[test]
    fn files_keep_their_order() {
        let op = parse_words("-f b.yml --file=a.yml -p p stop").expect("parses");
        assert_eq!(op.files, vec!["b.yml", "a.yml"]);
    }

    #[test]
    fn a_profile_is_refused_with_the_reason() {
        for words in ["--profile web -p p stop", "-p p --profile=web down"] {
            let error = parse_words(words).unwrap_err();
            assert_eq!(error.code(), "unsupported", "{words}");
            assert!(
                error
                    .to_string()
                    .starts_with("flag `--profile` of `docker compose` is not supported: "),
                "{error}"
            );
        }
    }

    #[test]
    fn services_may_follow_the_action() {
        let op = parse_words("--project-name=wingman-prd restart -t 5 api worker").expect("parses");
        assert_eq!(op.action, ComposeAction::Restart);
        assert_eq!(op.services, vec!["api", "worker"]);
    }

    #[test]
    fn ps_reads_its_options() {
        let op = parse_words("-p p ps -aq --format json --services").expect("parses");
        assert!(op.options.all && op.options.quiet && op.options.services_only);
        assert_eq!(op.options.format.as_deref(), Some("json"));
    }

    #[test]
    fn a_project_is_required() {
        let error = parse_words("-f docker-compose.prd.yml down").unwrap_err();
        assert_eq!(error, CommandError::ComposeProjectRequired);
        assert_eq!(error.code(), "compose_project_required");
    }

    #[test]
    fn project_names_must_be_lowercase() {
        let error = parse_words("-p Wingman down").unwrap_err();
        assert_eq!(
            error,
            CommandError::InvalidName {
                kind: NameKind::Project,
                name: "Wingman".into()
            }
        );
    }

    #[test]
    fn global_options_after_the_action_are_unknown() {
        let error = parse_words("down -p wingman-prd").unwrap_err();
        assert_eq!(
            error,
            CommandError::UnknownFlag {
                flag: "-p".into(),
                subcommand: "compose down".into()
            }
        );
    }

    #[test]
    fn the_seed_runbook_stage_c_parses_to_a_detached_build() {
        let op = parse_words(
            "-f docker-compose.prd.yml -p wingman-prd --env-file .env.prd up -d --build",
        )
        .expect("parses");
        assert_eq!(op.action, ComposeAction::Up);
        assert!(op.options.detach && op.options.build && !op.options.remove_orphans);
        assert_eq!(op.files, vec!["docker-compose.prd.yml"]);
        assert!(op.services.is_empty());
    }

    #[test]
    fn up_reads_services_and_remove_orphans_in_any_order() {
        let op = parse_words("-p shop up web --detach --remove-orphans worker").expect("parses");
        assert_eq!(op.services, vec!["web", "worker"]);
        assert!(op.options.detach && op.options.remove_orphans && !op.options.build);
    }

    #[test]
    fn an_attached_up_is_refused_with_the_reason() {
        let error = parse_words("-p shop up --build").unwrap_err();
        assert_eq!(error, CommandError::DetachRequired);
        assert_eq!(error.code(), "detach_required");
        assert!(error.to_string().contains("`-d`"), "{error}");
    }

    #[test]
    fn up_refuses_flags_outside_its_list() {
        for (words, code) in [
            ("-p shop up -d --no-build", "unsupported"),
            ("-p shop up -d --scale web=3", "unknown_flag"),
            ("-p shop up -d -t 5", "unknown_flag"),
        ] {
            assert_eq!(parse_words(words).unwrap_err().code(), code, "{words}");
        }
    }

    #[test]
    fn pull_takes_services_and_no_flags() {
        let op = parse_words("-p shop pull web").expect("parses");
        assert_eq!(op.action, ComposeAction::Pull);
        assert_eq!(op.services, vec!["web"]);
        assert_eq!(
            parse_words("-p shop pull --ignore-pull-failures")
                .unwrap_err()
                .code(),
            "unknown_flag"
        );
    }

    #[test]
    fn other_compose_actions_are_unsupported() {
        for (words, subcommand) in [
            ("-p wingman-prd build", "compose build"),
            ("-p wingman-prd run web sh", "compose run"),
            ("-p wingman-prd exec web sh", "compose exec"),
        ] {
            assert_eq!(
                parse_words(words).unwrap_err(),
                CommandError::Unsupported {
                    subcommand: subcommand.into()
                }
            );
        }
    }

    #[test]
    fn compose_without_an_action_is_refused() {
        let error = parse_words("-p wingman-prd").unwrap_err();
        assert_eq!(
            error.to_string(),
            "`docker compose` needs a subcommand: send one docker command"
        );
    }
}

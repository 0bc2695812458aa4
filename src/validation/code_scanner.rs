//! The code scanner: what the command does, and what the text asks for.
//!
//! The command is judged from its typed [`DockerOperation`] (action, targets, flags), never
//! by searching the raw line, so `docker inspect --format '{{.Name}}' rm-tool` is read-only
//! whatever its words say. A whitelisted operation (config `whitelist.operations`) raises
//! no command finding. The title and description are scanned for dangerous instructions
//! and secrets (`text_scan`); any secret is a critical finding, which auto-rejects.
//!
//! Score: 100 minus the configured penalty of each finding's severity.

use crate::docker::{ComposeAction, ContainerAction, DockerOperation};
use crate::validation::config::{CommandSeverity, EnvSeverity};
use crate::validation::facts::{Facts, OperationFacts};
use crate::validation::report::{CODE_SCANNER, Finding, Severity, ValidatorResult};
use crate::validation::{Validator, clamp_score, rules};

pub(crate) fn scan(validator: &Validator, facts: &Facts<'_>) -> ValidatorResult {
    let config = &validator.config;
    let mut findings = Vec::with_capacity(8);
    match &facts.operation {
        None => findings.push(Finding::new(
            CODE_SCANNER,
            Severity::Info,
            "no_command",
            "instruction approval: there is no command to check, only the text was scanned",
        )),
        Some(operation) => {
            let whitelisted = config
                .whitelist
                .operations
                .iter()
                .find(|entry| rules::matches(entry, facts));
            match whitelisted {
                Some(entry) => findings.push(
                    Finding::new(
                        CODE_SCANNER,
                        Severity::Info,
                        "whitelisted",
                        format!("whitelisted ({}): {}", entry.name, entry.reason),
                    )
                    .with_span(facts.operation_name),
                ),
                None => command_findings(validator, facts, operation, &mut findings),
            }
        }
    }
    let request = facts.request;
    validator.compiled.text.scan(&request.title, &mut findings);
    validator
        .compiled
        .text
        .scan(&request.description, &mut findings);
    let penalties = &config.code_scanner.penalties;
    let penalty: i64 = findings
        .iter()
        .map(|finding| penalties.get(finding.severity))
        .sum();
    ValidatorResult {
        score: clamp_score(100 - penalty),
        findings,
    }
}

/// Findings about the operation itself, with severities from
/// `code_scanner.command_severity` for the request's environment.
fn command_findings(
    validator: &Validator,
    facts: &Facts<'_>,
    operation: &OperationFacts<'_>,
    findings: &mut Vec<Finding>,
) {
    let scanner = &validator.config.code_scanner;
    let severity = &scanner.command_severity;
    let environment = facts.request.environment;
    let mass = usize::try_from(scanner.mass_target_count).unwrap_or(usize::MAX);
    let mut add = |level: &EnvSeverity, code: &'static str, reason: String| {
        findings.push(Finding::new(
            CODE_SCANNER,
            level.get(environment),
            code,
            format!("{reason} in {environment}"),
        ));
    };
    let summary = &operation.summary;
    match operation.operation {
        DockerOperation::Container(op) => match op.action {
            ContainerAction::Rm => {
                if op.targets.len() >= mass {
                    add(
                        &severity.mass_removal,
                        "mass_removal",
                        format!("mass removal of {summary}"),
                    );
                } else {
                    add(
                        &severity.container_removal,
                        "container_removal",
                        format!("removes {summary}"),
                    );
                }
                if operation.force {
                    add(
                        &severity.force_removal,
                        "force_removal",
                        "`--force` removes running containers".into(),
                    );
                }
                if operation.volumes {
                    add(
                        &severity.volume_deletion,
                        "volume_deletion",
                        format!("volume deletion: `-v` deletes the anonymous volumes of {summary}"),
                    );
                }
            }
            ContainerAction::Kill => {
                add(
                    &severity.kill,
                    "kill",
                    format!("kills {summary} without a graceful stop"),
                );
                if op.targets.len() >= mass {
                    add(
                        &severity.many_targets,
                        "many_targets",
                        format!("acts on {} containers at once", op.targets.len()),
                    );
                }
            }
            ContainerAction::Stop | ContainerAction::Restart | ContainerAction::Start => {
                state_change(
                    severity,
                    &mut add,
                    op.action.as_str(),
                    summary,
                    op.targets.len() >= mass,
                    false,
                );
                if operation.kill_signal {
                    add(
                        &severity.kill_signal,
                        "kill_signal",
                        format!("{} with SIGKILL: no graceful stop", op.action.as_str()),
                    );
                }
            }
            ContainerAction::Inspect | ContainerAction::Logs => {}
        },
        DockerOperation::Compose(op) => {
            match op.action {
                ComposeAction::Down => {
                    if operation.whole_project {
                        add(
                            &severity.mass_removal,
                            "mass_removal",
                            format!(
                                "mass removal: compose down removes every container and network of project {}",
                                op.project
                            ),
                        );
                    } else {
                        add(
                            &severity.container_removal,
                            "container_removal",
                            format!("compose down removes {summary}"),
                        );
                    }
                    if operation.volumes {
                        add(
                            &severity.volume_deletion,
                            "volume_deletion",
                            format!(
                                "volume deletion: `down -v` deletes the named and anonymous volumes of project {}",
                                op.project
                            ),
                        );
                    }
                    if operation.remove_orphans {
                        add(&severity.remove_orphans, "remove_orphans", "`--remove-orphans` also removes containers no longer in the compose files".into());
                    }
                }
                ComposeAction::Stop | ComposeAction::Restart | ComposeAction::Start => {
                    let many = op.services.len() >= mass;
                    state_change(
                        severity,
                        &mut add,
                        op.action.as_str(),
                        summary,
                        many,
                        operation.whole_project,
                    );
                }
                ComposeAction::Up => {
                    add(
                        &severity.deploy,
                        "deploy",
                        format!("compose up creates or recreates the containers of {summary}"),
                    );
                    if op.options.build {
                        add(
                            &severity.build,
                            "build",
                            format!(
                                "`--build` builds new images from project {}'s directory before recreating",
                                op.project
                            ),
                        );
                    }
                    if operation.remove_orphans {
                        add(&severity.remove_orphans, "remove_orphans", "`--remove-orphans` also removes containers no longer in the compose files".into());
                    }
                }
                ComposeAction::Pull => {
                    add(
                        &severity.pull,
                        "pull",
                        format!("compose pull replaces the images of {summary} for the next up"),
                    );
                }
                ComposeAction::Ps => {}
            }
        }
        // A probe the gateway's policy declares: read-only, like inspect.
        DockerOperation::Exec(_) => {}
    }
}

/// A stop, start or restart: of a whole project, of many targets, or of a few.
fn state_change(
    severity: &CommandSeverity,
    add: &mut impl FnMut(&EnvSeverity, &'static str, String),
    action: &str,
    summary: &str,
    many: bool,
    whole_project: bool,
) {
    if whole_project {
        add(
            &severity.project_wide,
            "project_wide",
            format!("{action} of every service: {summary}"),
        );
    } else if many {
        add(
            &severity.many_targets,
            "many_targets",
            format!("{action} of {summary}"),
        );
    } else {
        add(
            &severity.state_change,
            "state_change",
            format!("{action} of {summary}"),
        );
    }
}

#[cfg(test)]
mod tests;

//! Compose operations, performed on a project's containers found by label.
//!
//! A project is the set of containers labelled `com.docker.compose.project=<project>`,
//! narrowed to `com.docker.compose.service` in the requested services: the members the
//! gateway resolved ([`crate::docker::Resolved::Compose`]) and its policy allowed. They are
//! acted on by id, so a container that joins the project after the decision is left alone.
//! So `down --remove-orphans` changes nothing: orphans carry the
//! project label and are removed anyway. `down --volumes` removes the volumes labelled
//! with the project (only when no services are named, since named volumes are shared
//! by the project's services) and, always, the removed containers' anonymous volumes.
//! `down` does not remove the project's networks.

use std::collections::{BTreeSet, HashMap};

use bollard::models::ContainerSummary;
use bollard::query_parameters::{ListContainersOptions, ListVolumesOptions};

use crate::docker::{ComposeAction, ComposeOp, ContainerFacts, PROJECT_LABEL, SERVICE_LABEL};
use crate::engine::container::{self, Change, Outcome, record};
use crate::engine::result::Report;
use crate::engine::{Engine, EngineError, ExecutionResult, Limits};

/// One container of the project, as listed for `ps`.
struct Member {
    name: String,
    id: String,
    service: String,
    state: String,
    status: String,
}

/// Performs `op` on `members`, the project's containers as resolved before the decision.
pub(crate) async fn perform(
    engine: &Engine,
    op: &ComposeOp,
    members: &[ContainerFacts],
    limits: &Limits,
) -> Result<ExecutionResult, EngineError> {
    let services = match op.services.as_slice() {
        [] => String::new(),
        services => format!(" (services {})", services.join(", ")),
    };
    let heading = format!(
        "compose {} project {}{services}",
        op.action.as_str(),
        op.project
    );
    let mut report = Report::new(heading, limits);
    if op.action == ComposeAction::Ps {
        ps(engine, op, members, &mut report).await?;
        return Ok(report.finish());
    }
    for service in missing_services(op, members) {
        report.target(&format!("service {service}"), "not found", false);
    }
    let timeout_secs = limits.stop_timeout_secs(op.options.timeout_secs);
    match op.action {
        ComposeAction::Down => down(engine, op, members, timeout_secs, &mut report).await?,
        ComposeAction::Stop | ComposeAction::Start | ComposeAction::Restart => {
            if members.is_empty() && op.services.is_empty() {
                report.target(&format!("project {}", op.project), "not found", false);
            }
            let change = match op.action {
                ComposeAction::Stop => Change::Stop {
                    timeout_secs,
                    signal: None,
                },
                ComposeAction::Start => Change::Start,
                _ => Change::Restart {
                    timeout_secs,
                    signal: None,
                },
            };
            for member in members {
                container::apply(engine, &member.id, &member.name, &change, &mut report).await?;
            }
        }
        ComposeAction::Ps => {}
        ComposeAction::Up | ComposeAction::Pull => {
            return Err(EngineError::Unsupported {
                what: format!(
                    "compose {} runs through the compose binary (Engine::perform_admitted)",
                    op.action.as_str()
                ),
            });
        }
    }
    Ok(report.finish())
}

/// Stops and removes the members, then (with `--volumes`, for the whole project) the
/// project's volumes. An absent project is already down.
async fn down(
    engine: &Engine,
    op: &ComposeOp,
    members: &[ContainerFacts],
    timeout_secs: u32,
    report: &mut Report,
) -> Result<(), EngineError> {
    if members.is_empty() {
        report.line(&format!("no containers for project {}", op.project));
    }
    for member in members {
        let attempt = take_down(engine, &member.id, timeout_secs, op.options.volumes).await;
        record(engine, report, &member.name, attempt)?;
    }
    if op.options.volumes && op.services.is_empty() {
        let filters = label_filter(PROJECT_LABEL, &op.project);
        let listed = engine
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(|source| EngineError::Docker {
                call: "list_volumes",
                source,
            })?;
        let mut names: Vec<String> = listed
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|volume| volume.name)
            .collect();
        names.sort();
        for name in names {
            let attempt = engine
                .docker
                .remove_volume(
                    &name,
                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                )
                .await
                .map(|()| Outcome::done("removed"));
            record(engine, report, &format!("volume {name}"), attempt)?;
        }
    }
    Ok(())
}

async fn take_down(
    engine: &Engine,
    id: &str,
    timeout_secs: u32,
    volumes: bool,
) -> Result<Outcome, bollard::errors::Error> {
    let stopped = container::stop(engine, id, timeout_secs, None).await?;
    // Force only covers a restart policy bringing the container back after the stop.
    container::remove(engine, id, true, volumes).await?;
    Ok(Outcome::done(if stopped.text == "stopped" {
        "stopped, removed"
    } else {
        "removed"
    }))
}

/// Lists the members like `docker compose ps`: running ones unless `--all`; names with
/// service, state and status, or ids (`--quiet`), service names (`--services`) or JSON
/// lines (`--format json`). Only the resolved members are shown.
async fn ps(
    engine: &Engine,
    op: &ComposeOp,
    resolved: &[ContainerFacts],
    report: &mut Report,
) -> Result<(), EngineError> {
    let options = &op.options;
    let json = match options.format.as_deref() {
        None | Some("table") => false,
        Some("json") => true,
        Some(other) => {
            return Err(EngineError::Unsupported {
                what: format!("compose ps --format {other:?}: only table and json are supported"),
            });
        }
    };
    let members: Vec<Member> = members(engine, op, options.all)
        .await?
        .into_iter()
        .filter(|member| resolved.iter().any(|facts| facts.id == member.id))
        .collect();
    for member in &members {
        report.listed_target(&member.name, member.state.clone(), true);
    }
    report.summarise_as(format!("{} containers", members.len()));
    if options.services_only {
        let services: BTreeSet<&str> = members.iter().map(|m| m.service.as_str()).collect();
        services
            .into_iter()
            .for_each(|service| report.line(service));
    } else if options.quiet {
        members.iter().for_each(|member| report.line(&member.id));
    } else if json {
        for member in &members {
            let line = serde_json::json!({
                "ID": member.id,
                "Name": member.name,
                "Project": op.project,
                "Service": member.service,
                "State": member.state,
                "Status": member.status,
            });
            report.line(&line.to_string());
        }
    } else {
        let width = |column: fn(&Member) -> &str, title: &str| {
            members
                .iter()
                .map(|member| column(member).len())
                .chain([title.len()])
                .max()
                .unwrap_or(0)
        };
        let (name_width, service_width, state_width) = (
            width(|m| &m.name, "NAME"),
            width(|m| &m.service, "SERVICE"),
            width(|m| &m.state, "STATE"),
        );
        report.line(&format!(
            "{:name_width$}  {:service_width$}  {:state_width$}  STATUS",
            "NAME", "SERVICE", "STATE"
        ));
        for member in &members {
            report.line(&format!(
                "{:name_width$}  {:service_width$}  {:state_width$}  {}",
                member.name, member.service, member.state, member.status
            ));
        }
    }
    Ok(())
}

/// The project's containers in the requested services, sorted by name.
async fn members(engine: &Engine, op: &ComposeOp, all: bool) -> Result<Vec<Member>, EngineError> {
    let listed = engine
        .docker
        .list_containers(Some(ListContainersOptions {
            all,
            filters: Some(label_filter(PROJECT_LABEL, &op.project)),
            ..ListContainersOptions::default()
        }))
        .await
        .map_err(|source| EngineError::Docker {
            call: "list_containers",
            source,
        })?;
    let mut members: Vec<Member> = listed
        .into_iter()
        .map(member)
        .filter(|member| op.services.is_empty() || op.services.contains(&member.service))
        .collect();
    members.sort_by(|left, right| left.name.cmp(&right.name));
    Ok(members)
}

fn member(summary: ContainerSummary) -> Member {
    let name = summary
        .names
        .as_ref()
        .and_then(|names| names.first())
        .map(|name| name.trim_start_matches('/').to_string())
        .unwrap_or_default();
    let service = summary
        .labels
        .as_ref()
        .and_then(|labels| labels.get(SERVICE_LABEL))
        .cloned()
        .unwrap_or_default();
    Member {
        name,
        id: summary.id.unwrap_or_default(),
        service,
        state: summary
            .state
            .map(|state| state.as_ref().to_string())
            .unwrap_or_default(),
        status: summary.status.unwrap_or_default(),
    }
}

/// Requested services with no container in the project, in the order requested.
fn missing_services<'a>(op: &'a ComposeOp, members: &[ContainerFacts]) -> Vec<&'a str> {
    op.services
        .iter()
        .filter(|service| {
            !members
                .iter()
                .any(|member| member.service.as_ref() == Some(*service))
        })
        .map(String::as_str)
        .collect()
}

fn label_filter(label: &str, value: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{label}={value}")])])
}

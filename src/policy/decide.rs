//! The decision: an operation in an environment, on what Docker says its targets are.
//!
//! Pure: `(policy, environment, operation, resolved targets) -> Result<(), PolicyRefusal>`.
//! The rules, in the order they are checked:
//! 1. the environment has a policy, and allows the operation (`allow`);
//! 2. `-f` / `--env-file` / `--project-directory` name a registered project's files, and
//!    `compose up` / `compose pull` act on a registered project only (`projects`);
//! 3. volume removal and the stop timeout (`allow_volume_removal`, `max_stop_timeout_secs`);
//! 4. compose targets by name: a protected project or service, or a mutating operation on
//!    the control plane's project (whatever services it names), is refused even when none of
//!    its containers exists right now;
//! 5. every resolved container: no target may be ambiguous (`targets`), none may be a
//!    protected container (canonical name), service or project (labels), and a mutating
//!    operation may not touch the control plane (labels);
//! 6. an exec runs only a probe declared for the resolved container's compose project
//!    (`projects.<name>.probes`).
//!
//! [`Policy::admit`] is [`Policy::check`] plus what the engine needs from the policy to
//! perform what it allowed: the registered project `up` and `pull` run from, the probe an
//! exec runs.

use crate::docker::{ComposeOp, ContainerFacts, DockerOperation, Resolution, Resolved};
use crate::engine::Admission;
use crate::policy::{ControlPlane, EnvironmentPolicy, Policy, PolicyRefusal, projects};
use crate::request::Environment;

impl Policy {
    /// The rules that need no Docker (1–4), for refusing before the targets are resolved.
    pub fn check_operation(
        &self,
        environment: Environment,
        operation: &DockerOperation,
    ) -> Result<(), PolicyRefusal> {
        let rules = self.rules(environment)?;
        rules.operation(operation)
    }

    /// Every rule, on the targets as Docker resolved them.
    pub fn check(
        &self,
        environment: Environment,
        operation: &DockerOperation,
        resolved: &Resolved,
    ) -> Result<(), PolicyRefusal> {
        let rules = self.rules(environment)?;
        rules.operation(operation)?;
        rules.targets(operation, resolved)?;
        rules.probe(operation, resolved).map(|_| ())
    }

    /// Every rule, and what the engine needs from the policy to perform the operation.
    pub fn admit(
        &self,
        environment: Environment,
        operation: &DockerOperation,
        resolved: &Resolved,
    ) -> Result<Admission, PolicyRefusal> {
        let rules = self.rules(environment)?;
        rules.operation(operation)?;
        rules.targets(operation, resolved)?;
        let probe = rules.probe(operation, resolved)?;
        let project = match operation {
            DockerOperation::Compose(op) => {
                projects::registered(environment, &self.projects, &op.project)
                    .map(|registration| registration.compose_project(&op.project))
            }
            _ => None,
        };
        Ok(Admission { project, probe })
    }

    fn rules(&self, environment: Environment) -> Result<Rules<'_>, PolicyRefusal> {
        let env = environment.as_str();
        match self.environments.get(env) {
            Some(policy) => Ok(Rules {
                environment,
                policy,
                all: self,
            }),
            None => Err(PolicyRefusal {
                rule: format!("environments.{env}"),
                reason: format!("no policy for environment {env}: nothing may run there"),
            }),
        }
    }
}

/// One environment's rules, with the whole policy for the registered projects.
struct Rules<'a> {
    environment: Environment,
    policy: &'a EnvironmentPolicy,
    all: &'a Policy,
}

impl Rules<'_> {
    fn refuse(&self, setting: &str, reason: String) -> Result<(), PolicyRefusal> {
        Err(PolicyRefusal {
            rule: format!("environments.{}.{setting}", self.environment.as_str()),
            reason,
        })
    }

    fn env(&self) -> &'static str {
        self.environment.as_str()
    }

    /// Rules 1–4.
    fn operation(&self, operation: &DockerOperation) -> Result<(), PolicyRefusal> {
        let (env, name) = (self.env(), operation.name());
        if !self.policy.allow.iter().any(|allowed| allowed == name) {
            return self.refuse("allow", format!("{name} is not allowed in {env}"));
        }
        let (volumes, timeout) = match operation {
            DockerOperation::Container(op) => (op.options.volumes, op.options.timeout_secs),
            DockerOperation::Compose(op) => {
                projects::check_files(self.environment, &self.all.projects, op)?;
                projects::check_registered(self.environment, &self.all.projects, op)?;
                (op.options.volumes, op.options.timeout_secs)
            }
            DockerOperation::Exec(_) => (false, None),
        };
        if volumes && !self.policy.allow_volume_removal {
            return self.refuse(
                "allow_volume_removal",
                format!("removing volumes is not allowed in {env}"),
            );
        }
        if let Some(timeout) = timeout.filter(|t| *t > self.policy.max_stop_timeout_secs) {
            return self.refuse(
                "max_stop_timeout_secs",
                format!(
                    "a {timeout} s stop timeout exceeds {} s in {env}",
                    self.policy.max_stop_timeout_secs
                ),
            );
        }
        match operation {
            DockerOperation::Compose(op) => self.compose_by_name(op, operation.is_mutating()),
            DockerOperation::Container(_) | DockerOperation::Exec(_) => Ok(()),
        }
    }

    /// Rule 4: what a compose operation names, whatever exists right now.
    fn compose_by_name(&self, op: &ComposeOp, mutating: bool) -> Result<(), PolicyRefusal> {
        let env = self.env();
        let project = &op.project;
        let includes =
            |service: &str| op.services.is_empty() || op.services.iter().any(|s| s == service);
        let scope = match op.services.as_slice() {
            [] => "all services".to_string(),
            services => format!("services {}", services.join(", ")),
        };
        if self.policy.protected_projects.contains(project) {
            return self.refuse(
                "protected_projects",
                format!("compose project {project} is protected in {env}"),
            );
        }
        if let Some(protected) =
            self.policy.protected_services.iter().find(|protected| {
                &protected.project == project && includes(protected.service.as_str())
            })
        {
            return self.refuse(
                "protected_services",
                format!(
                    "compose project {project} ({scope}) includes service {} of project \
                     {project}, protected in {env}",
                    protected.service
                ),
            );
        }
        // Whatever services it names: compose acts on the project as a whole (`up` and `pull`
        // through Wingman's own registered files, in its own directory), and a name outside
        // the list is a mistake (the seed's `wingman-api`) or a service the list forgot.
        if let Some(plane) = self.control_plane()
            && mutating
            && &plane.project == project
        {
            let touched: Vec<&str> = plane
                .services
                .iter()
                .filter(|service| includes(service.as_str()))
                .map(String::as_str)
                .collect();
            let what = if touched.is_empty() {
                format!(
                    "would run on Wingman's own compose project, its control plane (services \
                     {}), though it names none of them",
                    plane.services.join(", ")
                )
            } else {
                format!(
                    "would change Wingman's own control plane (services {})",
                    touched.join(", ")
                )
            };
            return self.refuse(
                "control_plane",
                format!(
                    "compose {} of project {project} ({scope}) {what}: {}",
                    op.action.as_str(),
                    self.instead(plane)
                ),
            );
        }
        Ok(())
    }

    /// Rule 5: every container Docker resolved.
    fn targets(
        &self,
        operation: &DockerOperation,
        resolved: &Resolved,
    ) -> Result<(), PolicyRefusal> {
        let mutating = operation.is_mutating();
        match resolved {
            Resolved::Containers(targets) => {
                for target in targets {
                    match &target.resolution {
                        Resolution::Found(facts) if target.typed == facts.name => {
                            self.container(facts, "", mutating)?;
                        }
                        Resolution::Found(facts) => {
                            let typed = format!(" (typed as `{}`)", target.typed);
                            self.container(facts, &typed, mutating)?;
                        }
                        Resolution::Ambiguous { matches } => {
                            return Err(PolicyRefusal {
                                rule: "targets".to_string(),
                                reason: format!(
                                    "`{}` is an id prefix of {matches} containers: name the \
                                     container by its name or full id",
                                    target.typed
                                ),
                            });
                        }
                        Resolution::Missing => {}
                    }
                }
            }
            Resolved::Compose(members) => {
                for facts in members {
                    self.container(facts, "", mutating)?;
                }
            }
        }
        Ok(())
    }

    /// Rule 6: the probe an exec runs, declared for the resolved container's project. A
    /// container that does not exist is left to the engine, which reports it not found.
    fn probe(
        &self,
        operation: &DockerOperation,
        resolved: &Resolved,
    ) -> Result<Option<crate::engine::Probe>, PolicyRefusal> {
        let DockerOperation::Exec(op) = operation else {
            return Ok(None);
        };
        let facts = match resolved {
            Resolved::Containers(targets) => {
                targets.iter().find_map(|target| match &target.resolution {
                    Resolution::Found(facts) => Some(facts),
                    _ => None,
                })
            }
            Resolved::Compose(_) => None,
        };
        let Some(facts) = facts else {
            return Ok(None);
        };
        projects::probe_for(
            self.environment,
            &self.all.projects,
            op,
            &facts.name,
            facts.project.as_deref(),
        )
        .map(Some)
    }

    /// One container, by its canonical name and compose labels.
    fn container(
        &self,
        facts: &ContainerFacts,
        typed: &str,
        mutating: bool,
    ) -> Result<(), PolicyRefusal> {
        let env = self.env();
        let name = &facts.name;
        if self.policy.protected_containers.contains(name) {
            return self.refuse(
                "protected_containers",
                format!("container {name}{typed} is protected in {env}"),
            );
        }
        let (Some(project), service) = (&facts.project, &facts.service) else {
            return Ok(());
        };
        if self.policy.protected_projects.contains(project) {
            return self.refuse(
                "protected_projects",
                format!("container {name}{typed} belongs to compose project {project}, protected in {env}"),
            );
        }
        let Some(service) = service else {
            return Ok(());
        };
        if self
            .policy
            .protected_services
            .iter()
            .any(|protected| &protected.project == project && &protected.service == service)
        {
            return self.refuse(
                "protected_services",
                format!(
                    "container {name}{typed} is service {service} of compose project {project}, \
                     protected in {env}"
                ),
            );
        }
        if let Some(plane) = self.control_plane()
            && mutating
            && &plane.project == project
            && plane.services.contains(service)
        {
            return self.refuse(
                "control_plane",
                format!(
                    "container {name}{typed} is Wingman's {service} (compose project {project}), \
                     part of its own control plane: {}",
                    self.instead(plane)
                ),
            );
        }
        Ok(())
    }

    fn control_plane(&self) -> Option<&ControlPlane> {
        self.policy.control_plane.as_ref()
    }

    /// What to do instead of changing the control plane through Wingman.
    fn instead(&self, plane: &ControlPlane) -> String {
        let command = self
            .all
            .projects
            .get(&plane.project)
            .filter(|project| project.environments.contains(&self.environment))
            .map_or_else(
                || format!("docker compose -p {} …", plane.project),
                |project| project.command_prefix(&plane.project),
            );
        format!(
            "the gateway never stops, restarts, removes, recreates or rebuilds Wingman's own \
             services in {} (read-only operations and declared probes are allowed); an operator \
             upgrades or restarts Wingman on its host after an approved instruction request, as \
             README \"Production → Upgrade\" says: `{command} up -d --no-build` after \
             building the new WINGMAN_IMAGE_TAG",
            self.env()
        )
    }
}

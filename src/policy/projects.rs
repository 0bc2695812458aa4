//! Registered compose projects (`[projects.<name>]`) and the rule for `-f`, `--env-file` and
//! `--project-directory`.
//!
//! The gateway finds a project's containers by label and reads no compose file, so a `-f`
//! it ignored would let a request look like it acts on `other.yml`'s services while the
//! gateway acts on every container of the project. These flags are therefore accepted only
//! when they name exactly the files registered for the project in this environment,
//! compared as the runbook types them (`-f docker-compose.prd.yml --env-file .env.prd`).
//! A registration also says where the project lives: `compose up` and `compose pull` run
//! the compose binary from there, with an argv the gateway builds itself, so they need one
//! ([`check_registered`]). And it declares the project's probes (`[projects.<name>.probes]`,
//! see `probes`): the only argvs `docker exec` runs in the project's containers.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::docker::ExecOp;
use crate::docker::{ComposeOp, NameKind, check_name};
use crate::engine::ComposeProject;
use crate::engine::Probe;
use crate::policy::PolicyRefusal;
use crate::policy::probes::ProbeSpec;
use crate::request::Environment;

/// A compose project the gateway knows the files of.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisteredProject {
    /// Where it may be acted on.
    pub environments: Vec<Environment>,
    /// The directory compose runs in (absolute), holding the files below.
    pub project_directory: String,
    /// The `-f` files, in order (later ones override earlier ones), relative to the directory.
    pub compose_files: Vec<String>,
    /// The `--env-file`, relative to the directory, if the project uses one.
    #[serde(default)]
    pub env_file: Option<String>,
    /// The probes `docker exec` may run in the project's containers, by name.
    #[serde(default)]
    pub probes: BTreeMap<String, ProbeSpec>,
}

impl RegisteredProject {
    /// Checks one `[projects.<name>]`.
    pub(crate) fn validate(&self, name: &str) -> anyhow::Result<()> {
        check_name(NameKind::Project, name).map_err(|error| anyhow::anyhow!("{error}"))?;
        anyhow::ensure!(
            !self.environments.is_empty(),
            "environments: name at least one of dev, test, prd"
        );
        anyhow::ensure!(
            self.project_directory.starts_with('/'),
            "project_directory: `{}` must be an absolute path",
            self.project_directory
        );
        anyhow::ensure!(
            !self.compose_files.is_empty(),
            "compose_files: name at least one compose file"
        );
        let files = self.compose_files.iter().chain(&self.env_file);
        for file in files {
            anyhow::ensure!(
                !file.is_empty() && !file.chars().any(char::is_control),
                "compose_files and env_file: `{}` is not a file name",
                file.escape_debug()
            );
        }
        let mut argvs = Vec::new();
        for (probe_name, probe) in &self.probes {
            probe.validate(probe_name)?;
            let argv = probe.argv();
            anyhow::ensure!(
                !argvs.contains(&argv),
                "probes.{probe_name}: the same argv as another probe"
            );
            argvs.push(argv);
        }
        Ok(())
    }

    /// What the compose binary needs to run for this project.
    pub fn compose_project(&self, project: &str) -> ComposeProject {
        ComposeProject {
            project: project.to_string(),
            directory: self.project_directory.clone().into(),
            files: self.compose_files.clone(),
            env_file: self.env_file.clone(),
        }
    }

    /// The `-f … -p … --env-file …` part of a compose command line for this project.
    pub fn command_prefix(&self, project: &str) -> String {
        let mut words = vec!["docker".to_string(), "compose".to_string()];
        for file in &self.compose_files {
            words.extend(["-f".to_string(), file.clone()]);
        }
        words.extend(["-p".to_string(), project.to_string()]);
        if let Some(env_file) = &self.env_file {
            words.extend(["--env-file".to_string(), env_file.clone()]);
        }
        words.join(" ")
    }
}

/// Accepts `-f`, `--env-file` and `--project-directory` only when they name the files of
/// `op.project` as registered for `environment`; an operation without them is not affected.
pub(crate) fn check_files(
    environment: Environment,
    projects: &std::collections::BTreeMap<String, RegisteredProject>,
    op: &ComposeOp,
) -> Result<(), PolicyRefusal> {
    let directory = op.options.project_directory.as_ref();
    if op.files.is_empty() && op.env_file.is_none() && directory.is_none() {
        return Ok(());
    }
    let env = environment.as_str();
    let name = &op.project;
    let refuse = |rule: String, reason: String| Err(PolicyRefusal { rule, reason });
    let Some(project) = projects
        .get(name)
        .filter(|project| project.environments.contains(&environment))
    else {
        return refuse(
            "projects".to_string(),
            format!(
                "compose project {name} is not registered for {env} ([projects.{name}]): -f, \
                 --env-file and --project-directory are accepted only when they name a \
                 registered project's files; leave them out to act on the project's containers \
                 by label"
            ),
        );
    };
    if !op.files.is_empty() && op.files != project.compose_files {
        return refuse(
            format!("projects.{name}.compose_files"),
            format!(
                "-f {} does not name the compose files registered for project {name} (-f {})",
                op.files.join(" -f "),
                project.compose_files.join(" -f ")
            ),
        );
    }
    if let Some(env_file) = &op.env_file
        && project.env_file.as_ref() != Some(env_file)
    {
        let registered = project
            .env_file
            .as_deref()
            .map_or("none".to_string(), |file| format!("--env-file {file}"));
        return refuse(
            format!("projects.{name}.env_file"),
            format!(
                "--env-file {env_file} is not the env file registered for project {name} \
                 ({registered})"
            ),
        );
    }
    if let Some(directory) = directory
        && directory != &project.project_directory
    {
        return refuse(
            format!("projects.{name}.project_directory"),
            format!(
                "--project-directory {directory} is not the directory registered for project \
                 {name} ({})",
                project.project_directory
            ),
        );
    }
    Ok(())
}

/// The project registered as `name` for `environment`, if any.
pub(crate) fn registered<'a>(
    environment: Environment,
    projects: &'a BTreeMap<String, RegisteredProject>,
    name: &str,
) -> Option<&'a RegisteredProject> {
    projects
        .get(name)
        .filter(|project| project.environments.contains(&environment))
}

/// `compose up` and `compose pull` need the project's compose model: its registration.
pub(crate) fn check_registered(
    environment: Environment,
    projects: &BTreeMap<String, RegisteredProject>,
    op: &ComposeOp,
) -> Result<(), PolicyRefusal> {
    if !op.action.reads_compose_files() || registered(environment, projects, &op.project).is_some()
    {
        return Ok(());
    }
    let (env, name) = (environment.as_str(), &op.project);
    Err(PolicyRefusal {
        rule: "projects".to_string(),
        reason: format!(
            "compose {} needs the project's files, and compose project {name} is not registered \
             for {env}: register its directory and files as [projects.{name}] in the policy",
            op.action.as_str()
        ),
    })
}

/// The declared probe of `project` whose argv is the exec's, or why there is none.
pub(crate) fn probe_for(
    environment: Environment,
    projects: &BTreeMap<String, RegisteredProject>,
    op: &ExecOp,
    container: &str,
    project: Option<&str>,
) -> Result<Probe, PolicyRefusal> {
    let env = environment.as_str();
    let typed = shlex::try_join(op.argv.iter().map(String::as_str))
        .unwrap_or_else(|_| format!("{:?}", op.argv));
    let Some(project) = project else {
        return Err(PolicyRefusal {
            rule: "projects".to_string(),
            reason: format!(
                "container {container} belongs to no compose project: the gateway runs only \
                 probes declared for a registered project ([projects.<name>.probes])"
            ),
        });
    };
    let Some(registration) = registered(environment, projects, project) else {
        return Err(PolicyRefusal {
            rule: "projects".to_string(),
            reason: format!(
                "container {container} belongs to compose project {project}, which is not \
                 registered for {env}: the gateway runs only probes declared for a registered \
                 project ([projects.{project}.probes])"
            ),
        });
    };
    match registration
        .probes
        .iter()
        .find(|(_, probe)| probe.argv() == op.argv)
    {
        Some((name, probe)) => Ok(probe.to_probe(name)),
        None => {
            let declared: Vec<String> = registration
                .probes
                .values()
                .map(|probe| format!("`{}`", probe.argv().join(" ")))
                .collect();
            let declared = if declared.is_empty() {
                "none".to_string()
            } else {
                declared.join(", ")
            };
            Err(PolicyRefusal {
                rule: format!("projects.{project}.probes"),
                reason: format!(
                    "`{typed}` is not a probe declared for compose project {project} (declared: \
                     {declared}): the gateway never runs an arbitrary command in a container"
                ),
            })
        }
    }
}

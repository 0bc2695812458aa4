//! Registered compose projects (`[projects.<name>]`) and the rule for `-f`, `--env-file` and
//! `--project-directory`.
//!
//! The gateway finds a project's containers by label and reads no compose file, so a `-f`
//! it ignored would let a request look like it acts on `other.yml`'s services while the
//! gateway acts on every container of the project. These flags are therefore accepted only
//! when they name exactly the files registered for the project in this environment,
//! compared as the runbook types them (`-f docker-compose.prd.yml --env-file .env.prd`).
//! A registration also says where the project lives, so that a later `compose up` can be
//! run from it with an argv the gateway builds itself.

use serde::Deserialize;

use crate::docker::{ComposeOp, NameKind, check_name};
use crate::policy::PolicyRefusal;
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
        Ok(())
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

//! Tests against a real Docker Engine, the private one `scripts/docker-engine.sh` starts.
//!
//! Each test makes its own containers from `wingman-test/busybox` (network mode `none`,
//! with an init process so `sleep` dies on SIGTERM), named and labelled with a random
//! tag, and removes everything with that tag when its [`Fixture`] drops, even when an
//! assertion failed.

mod compose;
mod container;
mod read;
mod resolve;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, ContainerInspectResponse, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListVolumesOptions, RemoveContainerOptions,
};

use crate::docker::{DockerOperation, parse_command_line};
use crate::engine::{Engine, ExecutionResult, Limits};

/// Used when `DOCKER_HOST` is not set: the socket `scripts/docker-engine.sh` creates.
const WINGMAN_SOCKET: &str = "unix:///var/run/wingman-docker/docker.sock";
const TEST_IMAGE: &str = "wingman-test/busybox:latest";
/// Every container and volume a fixture makes carries this label with its tag.
const TAG_LABEL: &str = "wingman-test.tag";

pub(super) struct Fixture {
    pub(super) engine: Engine,
    /// A separate client for setting up and checking, so tests do not go through the
    /// code under test to verify it.
    pub(super) docker: Docker,
    pub(super) tag: String,
    host: String,
}

impl Fixture {
    /// Connects to the engine.
    ///
    /// # Panics
    /// When the engine is unreachable or the test image is missing, with a message
    /// saying how to start it.
    pub(super) async fn start() -> Fixture {
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| WINGMAN_SOCKET.to_string());
        let help = "start it with `scripts/docker-engine.sh` (as root) and export the DOCKER_HOST it prints";
        let engine = match Engine::connect(Some(&host)).await {
            Ok(engine) => engine,
            Err(error) => panic!("docker engine at {host} is unreachable ({error:?}); {help}"),
        };
        let docker = Docker::connect_with_unix(&host, 120, bollard::API_DEFAULT_VERSION)
            .expect("connect test client")
            .negotiate_version()
            .await
            .expect("negotiate test client version");
        if docker.inspect_image(TEST_IMAGE).await.is_err() {
            panic!("test image {TEST_IMAGE} is missing at {host}; {help}");
        }
        Fixture {
            engine,
            docker,
            tag: random_tag(),
            host,
        }
    }

    /// A name unique to this test: `wt-<tag>-<name>`.
    pub(super) fn name(&self, name: &str) -> String {
        format!("wt-{}-{name}", self.tag)
    }

    /// Creates and starts a container running `sleep 600`.
    pub(super) async fn sleeper(&self, name: &str) -> String {
        self.run(name, &[], &["sleep", "600"]).await
    }

    /// Creates and starts the container [`Fixture::name`]`(name)` running `cmd`, with
    /// `labels` and the fixture's tag.
    pub(super) async fn run(&self, name: &str, labels: &[(&str, &str)], cmd: &[&str]) -> String {
        let name = self.name(name);
        let mut all_labels: HashMap<String, String> = labels
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        all_labels.insert(TAG_LABEL.to_string(), self.tag.clone());
        let body = ContainerCreateBody {
            image: Some(TEST_IMAGE.to_string()),
            cmd: Some(cmd.iter().map(|arg| arg.to_string()).collect()),
            labels: Some(all_labels),
            host_config: Some(HostConfig {
                network_mode: Some("none".to_string()),
                init: Some(true),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..CreateContainerOptions::default()
        };
        self.docker
            .create_container(Some(options), body)
            .await
            .expect("create container");
        self.docker
            .start_container(&name, None)
            .await
            .expect("start container");
        name
    }

    /// A compose-labelled container running `sleep 600`.
    pub(super) async fn service(&self, name: &str, project: &str, service: &str) -> String {
        let labels = [
            ("com.docker.compose.project", project),
            ("com.docker.compose.service", service),
        ];
        self.run(name, &labels, &["sleep", "600"]).await
    }

    /// Inspects through the test client; `None` when the engine answers 404.
    pub(super) async fn inspect(&self, name: &str) -> Option<ContainerInspectResponse> {
        match self.docker.inspect_container(name, None).await {
            Ok(inspected) => Some(inspected),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => None,
            Err(error) => panic!("inspect {name}: {error}"),
        }
    }

    pub(super) async fn is_running(&self, name: &str) -> bool {
        let inspected = self.inspect(name).await.expect("container exists");
        inspected.state.and_then(|state| state.running) == Some(true)
    }

    pub(super) async fn started_at(&self, name: &str) -> String {
        let inspected = self.inspect(name).await.expect("container exists");
        inspected
            .state
            .and_then(|state| state.started_at)
            .expect("started at")
    }

    /// Parses and performs a docker command line with default limits.
    pub(super) async fn perform(&self, line: &str) -> ExecutionResult {
        self.perform_with(line, &Limits::default()).await
    }

    pub(super) async fn perform_with(&self, line: &str, limits: &Limits) -> ExecutionResult {
        self.engine
            .perform(&operation(line), limits)
            .await
            .unwrap_or_else(|error| panic!("perform {line:?}: {error:?}"))
    }
}

impl Drop for Fixture {
    /// Removes every container and volume tagged by this fixture. Runs on its own thread
    /// and runtime, since `Drop` cannot await.
    fn drop(&mut self) {
        let (host, tag) = (self.host.clone(), self.tag.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(remove_tagged(&host, &tag));
        });
        if cleanup.join().is_err() {
            eprintln!("cleanup of test tag {} failed", self.tag);
        }
    }
}

async fn remove_tagged(host: &str, tag: &str) {
    let Ok(docker) = Docker::connect_with_unix(host, 60, bollard::API_DEFAULT_VERSION) else {
        return;
    };
    let filters = HashMap::from([("label".to_string(), vec![format!("{TAG_LABEL}={tag}")])]);
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..ListContainersOptions::default()
        }))
        .await
        .unwrap_or_default();
    for container in containers {
        if let Some(id) = container.id {
            let options = RemoveContainerOptions {
                force: true,
                v: true,
                link: false,
            };
            let _ = docker.remove_container(&id, Some(options)).await;
        }
    }
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters),
        }))
        .await
        .ok()
        .and_then(|listed| listed.volumes)
        .unwrap_or_default();
    for volume in volumes {
        let _ = docker
            .remove_volume(
                &volume.name,
                None::<bollard::query_parameters::RemoveVolumeOptions>,
            )
            .await;
    }
}

pub(super) fn operation(line: &str) -> DockerOperation {
    parse_command_line(line).unwrap_or_else(|error| panic!("parse {line:?}: {error}"))
}

/// Retries `check` for up to five seconds, for output a container writes after start.
pub(super) async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..50 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Eight hex digits from the standard library's random hasher seed.
fn random_tag() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or(0),
    );
    format!("{:08x}", hasher.finish() as u32)
}

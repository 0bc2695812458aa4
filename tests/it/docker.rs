//! Test containers on the real Docker Engine: busybox from `docker import`, network `none`.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, RemoveContainerOptionsBuilder,
    StartContainerOptions,
};

use crate::helpers::docker_host;

pub const IMAGE: &str = "wingman-test/busybox:latest";

pub async fn client() -> Docker {
    let host = docker_host();
    let path = host.trim_start_matches("unix://");
    let docker = Docker::connect_with_unix(path, 60, bollard::API_DEFAULT_VERSION)
        .expect("no Docker Engine: start it with scripts/docker-engine.sh (scripts/test does)");
    docker
        .negotiate_version()
        .await
        .expect("no Docker Engine: start it with scripts/docker-engine.sh (scripts/test does)")
}

/// Starts a sleeping container named `name` (with compose labels when `project` is given).
pub async fn start_container(name: &str, project: Option<(&str, &str)>) {
    let docker = client().await;
    let mut labels = HashMap::from([("wingman.test".to_string(), "1".to_string())]);
    if let Some((project, service)) = project {
        labels.insert("com.docker.compose.project".into(), project.into());
        labels.insert("com.docker.compose.service".into(), service.into());
    }
    let body = ContainerCreateBody {
        image: Some(IMAGE.into()),
        cmd: Some(vec!["sleep".into(), "3600".into()]),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            init: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(name).build()),
            body,
        )
        .await
        .expect("create a test container (is the test image built? scripts/docker-engine.sh)");
    docker
        .start_container(name, None::<StartContainerOptions>)
        .await
        .unwrap();
}

/// (running, started_at) of a container, or None when it does not exist.
pub async fn state(name: &str) -> Option<(bool, String)> {
    match client()
        .await
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
    {
        Ok(details) => {
            let state = details.state.unwrap_or_default();
            Some((
                state.running.unwrap_or(false),
                state.started_at.unwrap_or_default(),
            ))
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => None,
        Err(error) => panic!("inspect {name}: {error}"),
    }
}

/// Containers of a compose project (running or not).
pub async fn project_containers(project: &str) -> usize {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("com.docker.compose.project={project}")],
    )]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    client()
        .await
        .list_containers(Some(options))
        .await
        .unwrap()
        .len()
}

pub async fn remove(name: &str) {
    let _ = client()
        .await
        .remove_container(
            name,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await;
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// A Unix socket that forwards to the Docker Engine until [`Proxy::stop`]: then every
/// connection through it is cut and a new one is refused, as when the Engine is down.
pub struct Proxy {
    dir: tempfile::TempDir,
    connections: std::sync::Arc<tokio::sync::Mutex<tokio::task::JoinSet<()>>>,
    listening: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::UnixListener::bind(dir.path().join("docker.sock")).unwrap();
        let engine = docker_host().trim_start_matches("unix://").to_string();
        let connections = std::sync::Arc::new(tokio::sync::Mutex::new(tokio::task::JoinSet::new()));
        let tracked = std::sync::Arc::clone(&connections);
        let listening = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let engine = engine.clone();
                tracked.lock().await.spawn(async move {
                    if let Ok(mut upstream) = tokio::net::UnixStream::connect(&engine).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        Self {
            dir,
            connections,
            listening,
        }
    }

    /// `DOCKER_HOST` for a client that goes through this proxy.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    pub async fn stop(&mut self) {
        self.listening.abort();
        let _ = (&mut self.listening).await;
        let mut connections = self.connections.lock().await;
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

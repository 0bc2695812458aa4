//! The test containers the benchmark starts on the private Docker Engine (no network).

use std::process::Command;

use uuid::Uuid;

/// Starts a long-running test container on the private engine; returns its name.
pub fn start_container(prefix: &str) -> anyhow::Result<String> {
    let name = format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let created = Command::new("docker")
        .args(["-H", &docker_host(), "run", "-d", "--name", &name])
        .args(["--network", "none", "--init", "wingman-test/busybox"])
        .args(["sleep", "3600"])
        .output()?;
    anyhow::ensure!(
        created.status.success(),
        "start the container {name}: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    Ok(name)
}

pub fn remove_container(name: &str) {
    let _ = Command::new("docker")
        .args(["-H", &docker_host(), "rm", "-f", name])
        .output();
}

pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .unwrap_or_else(|_| "unix:///var/run/wingman-docker/docker.sock".into())
}

//! A scrape of the metrics after a request went through every stage: valid Prometheus text
//! (`promtool check metrics`), histograms with buckets, and no name outside the catalogue.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use uuid::Uuid;
use wingman::metrics;
use wingman::request::Environment;

use crate::docker;
use crate::helpers::{READ_KEY, TestEnv, wait_for_status, well_explained};

#[tokio::test]
async fn every_stage_exports_valid_catalogued_metrics() {
    let mut env = TestEnv::start().await;
    let name = docker::unique("wt-metrics");
    docker::start_container(&name, None).await;
    env.spawn_intake_validating(100).await;
    env.spawn_approvals(None, &["cli:ops"], 1).await;
    env.spawn_authority().await;
    env.spawn_gateway(&[Environment::Dev]).await;
    env.spawn_recorder().await;
    let address = env.spawn_api().await;
    let request_id = Uuid::new_v4();
    let payload = well_explained(request_id, "dev", &format!("docker restart {name}"), &name);
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        payload.to_string(),
    )
    .await;
    wait_for_status(&env, request_id, "SUCCEEDED").await;
    // An auto-approved request never reaches approvals: one in prd waits for a human there.
    let pending = Uuid::new_v4();
    let payload = well_explained(pending, "prd", &format!("docker restart {name}"), &name);
    env.publish_raw(
        &format!("{}.requests.submitted.anonymous", env.prefix),
        payload.to_string(),
    )
    .await;
    wait_for_status(&env, pending, "PENDING").await;
    env.settle_all().await;

    let scrape = reqwest::Client::new()
        .get(format!("http://{address}/metrics"))
        .header("x-api-key", READ_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for stage in ["intake", "authority", "gateway", "recorder", "approvals"] {
        assert!(
            scrape.contains(&format!("{}{{stage=\"{stage}\"", metrics::MESSAGES_TOTAL)),
            "{stage} missing:\n{scrape}"
        );
    }
    for histogram in [metrics::HANDLE_DURATION, metrics::VALIDATOR_SCORE] {
        assert!(
            scrape.contains(&format!("# TYPE {histogram} histogram")),
            "{histogram} missing:\n{scrape}"
        );
    }
    let build_info = format!(
        "{}{{version=\"{}\",revision=\"",
        metrics::BUILD_INFO,
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        scrape.contains(&build_info),
        "{build_info} missing:\n{scrape}"
    );
    let succeeded = format!(
        "{}{{operation=\"container_restart\",environment=\"dev\",result=\"succeeded\"}} ",
        metrics::EXECUTIONS
    );
    assert!(
        scrape.contains(&succeeded),
        "{succeeded} missing:\n{scrape}"
    );

    let catalogue: BTreeSet<&str> = metrics::CATALOGUE.iter().map(|(name, ..)| *name).collect();
    let exported: BTreeSet<String> = scrape
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let unknown: Vec<&String> = exported
        .iter()
        .filter(|name| !catalogue.contains(name.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "exported but not in the catalogue: {unknown:?}"
    );

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is missing: scripts/test installs it (apt-get install prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    docker::remove(&name).await;
    env.stop().await;
}

//! The HTTP API fuzzed against its own OpenAPI description (`GET /openapi.json`) by
//! schemathesis (PyPI; `scripts/test` installs it): every operation, with valid and invalid
//! inputs the schema implies, must answer without a server error (no 5xx), with each role's
//! key. A bounded run (examples per operation, a fixed seed) so it fits CI; the README has the
//! long run.

use std::process::Stdio;

use crate::helpers::{DECIDE_KEY, OPERATOR_KEY, TestEnv, text};

/// Runs `st run` against the API at `address` with `key`, on the operations `tag` names.
async fn schemathesis(
    address: &std::net::SocketAddr,
    key: &str,
    tag: &str,
) -> std::process::Output {
    let st = std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("st"))
                .find(|path| path.exists())
        })
        .expect("schemathesis is missing: scripts/test installs it (pip install schemathesis)");
    let reports = tempfile::tempdir().unwrap();
    tokio::process::Command::new(st)
        .current_dir(reports.path())
        .args(["run", &format!("http://{address}/openapi.json")])
        .args(["--checks", "not_a_server_error"])
        .args(["--include-tag", tag])
        .args([
            "--max-examples",
            "25",
            "--seed",
            "20261204",
            "--workers",
            "1",
        ])
        .args(["--request-timeout", "10"])
        .args(["--header", &format!("X-API-Key: {key}")])
        .args(["--generation-database", "none"])
        .arg("--report-dir")
        .arg(reports.path())
        .args(["--output-truncate", "true"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run schemathesis")
}

#[tokio::test]
async fn the_api_answers_every_input_its_openapi_description_allows_without_a_server_error() {
    let mut env = TestEnv::start().await;
    env.spawn_intake_validating(100).await;
    env.spawn_recorder().await;
    env.spawn_approvals(None, &["cli:ops"], 1).await;
    let address = env.spawn_api().await;

    let document: serde_json::Value = reqwest::get(format!("http://{address}/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|version| version.starts_with("3."))
    );

    for (key, tag) in [
        (OPERATOR_KEY, "requests"),
        (DECIDE_KEY, "decisions"),
        (OPERATOR_KEY, "operations"),
    ] {
        let output = schemathesis(&address, key, tag).await;
        let report = format!("{}{}", text(&output.stdout), text(&output.stderr));
        println!("--- schemathesis, tag {tag}:\n{report}");
        assert!(
            output.status.success(),
            "schemathesis found a server error (or could not run) on `{tag}`:\n{report}"
        );
    }
    env.stop().await;
}

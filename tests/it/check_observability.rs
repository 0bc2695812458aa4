//! `scripts/check-observability` refuses what it cannot check and what is untested: run on a
//! copy of the files it reads (the script, `grafana/`, the metric catalogue, the README), with
//! one thing broken in the copy. The script checks the rules, their promtool test cases and
//! the dashboards first, so a failure there ends it before the slow `promtool test rules`.

use std::path::Path;
use std::process::{Command, Output};

use crate::helpers::text;
use crate::observability::repo_path;

/// A copy of what the script reads, in a temporary directory laid out like the repository.
fn copy_of_the_checked_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for folder in ["scripts", "src"] {
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
    }
    for file in ["scripts/check-observability", "src/metrics.rs", "README.md"] {
        std::fs::copy(repo_path(file), dir.path().join(file)).unwrap();
    }
    let copied = Command::new("cp")
        .arg("-r")
        .arg(repo_path("grafana"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(copied.success(), "cp -r grafana");
    dir
}

/// Runs the copy's script with `env` added.
fn check(copy: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(copy.join("scripts/check-observability"));
    command.envs(env.iter().copied());
    command.output().expect(
        "run scripts/check-observability (promtool and amtool: scripts/lib.sh's ensure_prometheus)",
    )
}

#[test]
fn check_observability_fails_when_python_cannot_import_yaml() {
    let copy = copy_of_the_checked_files();
    // A `yaml` module that cannot be imported, first on python3's path.
    let no_yaml = tempfile::tempdir().unwrap();
    std::fs::write(
        no_yaml.path().join("yaml.py"),
        "raise ImportError('no yaml in this test')\n",
    )
    .unwrap();
    let output = check(
        copy.path(),
        &[("PYTHONPATH", no_yaml.path().to_str().unwrap())],
    );
    let said = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(
        !output.status.success(),
        "the check passed without yaml (its rule checks skipped):\n{said}"
    );
    assert!(said.contains("install python3-yaml"), "{said}");
}

#[test]
fn an_alert_rule_without_a_promtool_test_case_fails_the_check() {
    let copy = copy_of_the_checked_files();
    let rules = copy.path().join("grafana/alerts/wingman.rules.yml");
    // A complete alert (catalogue metric, severity, summary, runbook): only its tests are missing.
    let untested = r#"
      - alert: UntestedAlert
        expr: sum(increase(wingman_validation_errors_total[15m])) > 100
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: "an alert nobody tested"
          runbook_url: "README.md#validationerrors"
          description: "added by the test"
"#;
    let mut text_of_rules = std::fs::read_to_string(&rules).unwrap();
    text_of_rules.push_str(untested);
    std::fs::write(&rules, text_of_rules).unwrap();
    let output = check(copy.path(), &[]);
    let said = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains("alert UntestedAlert has no promtool test case"),
        "{said}"
    );
    assert!(
        !said.contains("alert ValidationErrors has no"),
        "only the untested alert is named: {said}"
    );
}

#[test]
fn a_dashboard_annotation_query_is_checked_like_a_panel_query() {
    let copy = copy_of_the_checked_files();
    let path = copy.path().join("grafana/dashboards/rollout.json");
    let mut dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let annotation = dashboard["annotations"]["list"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|annotation| annotation.get("expr").is_some())
        .expect("the rollout dashboard has a query annotation");
    annotation["expr"] = "changes(max(wingman_not_in_the_catalogue)[2m:15s]) > 0".into();
    std::fs::write(&path, dashboard.to_string()).unwrap();
    let output = check(copy.path(), &[]);
    let said = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains("annotation 'Rollout changes'")
            && said.contains("'wingman_not_in_the_catalogue' is not a metric in CATALOGUE"),
        "{said}"
    );
}

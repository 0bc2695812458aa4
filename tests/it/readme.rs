//! The README's examples, run as printed: "Try it" (the dev request auto-approved, the prd
//! one PENDING and approved by the second approver it makes), and what "Production" says the
//! docker wrapper submits. The text is read from README.md, so an edit that changes what the
//! examples do fails here.

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use uuid::Uuid;
use wingman::docker::{Classification, classify};
use wingman::request::Environment;

use crate::helpers::{TestEnv, text, wait_for_status};

/// The README, as the test binary was built with it.
pub(crate) const README: &str = include_str!("../../README.md");

/// The text under `heading` (a whole heading line, `### Try it`) up to the next heading of
/// its level or above; lines inside code fences are never taken for headings.
///
/// # Panics
/// When the README has no such heading.
pub(crate) fn section(heading: &str) -> String {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let mut lines = README.lines();
    assert!(
        lines.any(|line| line == heading),
        "README.md has no heading `{heading}`"
    );
    let mut taken = Vec::new();
    let mut fenced = false;
    for line in lines {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !fenced && hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
            break;
        }
        taken.push(line);
    }
    taken.join("\n")
}

/// The bodies of the code blocks fenced as ```` ```lang ```` in `text`.
pub(crate) fn code_blocks(text: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        match &mut current {
            None if line == format!("```{lang}") => current = Some(Vec::new()),
            Some(body) if line == "```" => {
                blocks.push(body.join("\n"));
                current = None;
            }
            Some(body) => body.push(line),
            None => {}
        }
    }
    blocks
}

/// The lines of the "Try it" block, each shell continuation (`\` at the end) joined to the
/// next.
fn try_it_lines() -> Vec<String> {
    let block = code_blocks(&section("### Try it"), "bash").remove(0);
    block
        .replace("\\\n", " ")
        .lines()
        .map(str::to_string)
        .collect()
}

/// The one line of the block that contains `needle`.
fn line_with(lines: &[String], needle: &str) -> String {
    let found: Vec<&String> = lines.iter().filter(|line| line.contains(needle)).collect();
    assert_eq!(
        found.len(),
        1,
        "one README \"Try it\" line with `{needle}`: {found:?}"
    );
    found[0].clone()
}

/// Runs one `wingman …` line of the README as a shell would, in `directory`, with the
/// test's corner (`env.child_env()`), `$ID` standing for `id`, `"$(cat FILE)"` for the file's
/// content and `user` for `$USER`. Leading `NAME=value` words are the child's environment;
/// a trailing `# comment` is dropped.
async fn run_line(
    env: &TestEnv,
    directory: &Path,
    user: &str,
    line: &str,
    id: Option<&str>,
) -> Output {
    let mut line = line.to_string();
    if let Some(id) = id {
        line = line.replace("\"$ID\"", id);
    }
    let cat = regex::Regex::new(r#""\$\(cat ([^)]+)\)""#).unwrap();
    if let Some(found) = cat.captures(&line.clone()) {
        let content = std::fs::read_to_string(directory.join(&found[1])).unwrap();
        line = line.replace(&found[0], &shlex::try_quote(content.trim()).unwrap());
    }
    let words = shlex::split(&line).unwrap_or_else(|| panic!("not shell words: {line}"));
    let at = words
        .iter()
        .position(|word| word == "wingman")
        .unwrap_or_else(|| panic!("not a wingman command: {line}"));
    let assignments: Vec<(String, String)> = words[..at]
        .iter()
        .map(|word| {
            let (name, value) = word
                .split_once('=')
                .unwrap_or_else(|| panic!("`{word}` before `wingman` in: {line}"));
            (name.to_string(), value.to_string())
        })
        .collect();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_wingman"))
        .current_dir(directory)
        .envs(env.child_env())
        .env("USER", user)
        .env_remove("WINGMAN_REQUESTER")
        .envs(assignments)
        .args(&words[at + 1..])
        .output()
        .await
        .expect("run wingman")
}

/// The decision, score and decider of a request, as recorded.
async fn recorded(env: &TestEnv, request_id: Uuid) -> (String, Option<i32>, Option<String>) {
    sqlx::query_as(
        "SELECT status, composite_score, decided_by FROM approval_requests WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_readmes_try_it_auto_approves_the_dev_request_and_the_second_approver_approves_the_prd_one()
 {
    let lines = try_it_lines();
    let mut env = TestEnv::start().await;
    // As `scripts/dev` runs it: every request validated, you a console approver.
    env.spawn_intake_validating(100).await;
    let you = "ops-you";
    env.spawn_approvals(None, &[you], 1).await;
    env.spawn_authority().await;
    // The gateway may act in neither dev nor prd here: it refuses the tokens before asking
    // Docker anything, so nothing touches a container named `demo-api` on the shared engine
    // (it may be a developer's own, from this very README).
    env.spawn_gateway(&[Environment::Test]).await;
    env.spawn_recorder().await;
    let directory = tempfile::tempdir().unwrap();
    let directory = directory.path();

    // dev: validated and auto-approved (then run by the gateway, which here refuses it).
    let dev = run_line(
        &env,
        directory,
        you,
        &line_with(&lines, "wingman request --env dev"),
        None,
    )
    .await;
    let said = text(&dev.stdout);
    assert!(
        said.contains("AUTO_APPROVED"),
        "{said}\n{}",
        text(&dev.stderr)
    );
    env.settle_all().await;
    let dev_id: Uuid =
        sqlx::query_scalar("SELECT request_id FROM approval_requests WHERE environment = 'dev'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    let (status, _, decided_by) = recorded(&env, dev_id).await;
    assert_eq!(status, "AUTO_APPROVED");
    assert_eq!(decided_by, None, "no human decided it");

    // A second approver identity with its own key, registered in the roster.
    for needle in ["wingman approvers keygen", "wingman approvers add"] {
        let made = run_line(&env, directory, you, &line_with(&lines, needle), None).await;
        assert!(made.status.success(), "{needle}: {}", text(&made.stderr));
    }

    // prd: submitted without waiting, PENDING with the score the README prints.
    let submit = line_with(&lines, "wingman request --env prd");
    let inner = submit
        .split_once("$(")
        .and_then(|(_, rest)| rest.split_once(" | sed"))
        .map(|(command, _)| command)
        .unwrap_or_else(|| panic!("`ID=$(wingman request … | sed …)`: {submit}"));
    let submitted = run_line(&env, directory, you, inner, None).await;
    assert!(submitted.status.success(), "{}", text(&submitted.stderr));
    let answer: Value = serde_json::from_slice(&submitted.stdout).unwrap();
    let prd_id = answer["request_id"].as_str().unwrap().to_string();
    wait_for_status(&env, prd_id.parse().unwrap(), "PENDING").await;
    env.settle_all().await;
    let pending_line = line_with(&lines, "wingman pending");
    let printed_score = regex::Regex::new(r"PENDING, score (\d+) < (\d+)")
        .unwrap()
        .captures(&pending_line)
        .unwrap_or_else(|| panic!("the README's pending comment: {pending_line}"))[1]
        .parse::<i32>()
        .unwrap();
    let (status, score, _) = recorded(&env, prd_id.parse().unwrap()).await;
    assert_eq!((status.as_str(), score), ("PENDING", Some(printed_score)));
    let pending = run_line(&env, directory, you, &pending_line, None).await;
    assert!(
        text(&pending.stdout).contains(&prd_id[..8]),
        "{}",
        text(&pending.stdout)
    );

    // Approving it as yourself is refused: you asked.
    let own_key = env.approver_key(you);
    let own_vote = format!(
        "WINGMAN_APPROVER={you} WINGMAN_APPROVER_KEY_FILE={} wingman approve \"$ID\"",
        own_key.display()
    );
    let refused = run_line(&env, directory, you, &own_vote, Some(&prd_id)).await;
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused.stdout));
    assert!(
        text(&refused.stderr).contains("a requester cannot approve their own request"),
        "{}",
        text(&refused.stderr)
    );

    // The second approver, as the README names it, approves it.
    let vote = line_with(&lines, "wingman approve \"$ID\"");
    let approver = regex::Regex::new(r"WINGMAN_APPROVER=([a-z-]+)")
        .unwrap()
        .captures(&vote)
        .unwrap_or_else(|| panic!("the README's approver: {vote}"))[1]
        .to_string();
    assert_ne!(approver, you);
    let approved = run_line(&env, directory, you, &vote, Some(&prd_id)).await;
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    wait_for_status(&env, prd_id.parse().unwrap(), "APPROVED").await;
    env.settle_all().await;
    let (status, _, decided_by) = recorded(&env, prd_id.parse().unwrap()).await;
    assert_eq!(
        (status.as_str(), decided_by.as_deref()),
        ("APPROVED", Some(approver.as_str()))
    );

    // A description of "..." is auto-rejected, as the README says under the block.
    let careless = inner.replace(
        &regex::Regex::new(r#"--description "[^"]*""#)
            .unwrap()
            .find(inner)
            .unwrap()
            .as_str()
            .to_string(),
        "--description \"...\"",
    );
    let submitted = run_line(&env, directory, you, &careless, None).await;
    let answer: Value = serde_json::from_slice(&submitted.stdout).unwrap();
    wait_for_status(
        &env,
        answer["request_id"].as_str().unwrap().parse().unwrap(),
        "AUTO_REJECTED",
    )
    .await;
    env.stop().await;
}

#[test]
fn production_says_every_changing_stage_of_the_seed_goes_through_the_wrapper() {
    let production = section("## Production");
    let paragraph = production
        .split("\n\n")
        .find(|paragraph| paragraph.contains("through the docker wrapper"))
        .expect("README \"Production\" says what the docker wrapper submits");
    let paragraph = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
    // The seed's stages A, B, C and D on a registered project: each changes something, so the
    // wrapper submits it (and the README must say so), none is passed straight to docker.
    for (stage, line, named) in [
        (
            "A",
            "compose -f docker-compose.prd.yml -p shop --env-file .env.prd down",
            "`down`",
        ),
        (
            "B",
            "compose -f docker-compose.prd.yml -p shop --env-file .env.prd down --remove-orphans",
            "`down --remove-orphans`",
        ),
        (
            "C",
            "compose -f docker-compose.prd.yml -p shop --env-file .env.prd up -d --build",
            "`up -d [--build]`",
        ),
        (
            "D",
            "exec shop-web-1 wget -qO- http://127.0.0.1:8080/health",
            "`docker exec` probes",
        ),
    ] {
        let args: Vec<String> = line.split(' ').map(str::to_string).collect();
        assert!(
            matches!(classify(&args), Classification::Mutating { .. }),
            "stage {stage}: the wrapper submits `docker {line}`"
        );
        assert!(
            paragraph.contains(named),
            "stage {stage}: README \"Production\" names {named} as submitted: {paragraph}"
        );
    }
    for read_only in [
        "inspect shop-web-1",
        "logs shop-web-1",
        "compose -p shop ps",
    ] {
        let args: Vec<String> = read_only.split(' ').map(str::to_string).collect();
        assert_eq!(classify(&args), Classification::ReadOnly, "{read_only}");
    }
    assert!(
        paragraph.contains("read-only commands (`inspect`, `logs`, `ps`) go straight to docker"),
        "{paragraph}"
    );
}

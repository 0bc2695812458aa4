//! `wingman-docker`: the docker wrapper, installed as `docker` earlier on a user's PATH.
//!
//! Read-only commands run the real docker (`DOCKER_BIN`) unchanged. A command that changes
//! state is blocked unless it carries a reason (`--wingman-reason "…"` or `WINGMAN_REASON`);
//! with one, it becomes a Wingman request (environment `WINGMAN_ENV`), the wrapper shows it
//! moving through its stages, and prints the gateway's result. Decided by parsing argv, never
//! by matching substrings: `docker ps --format '{{.Names}}'` passes.

use std::os::unix::process::CommandExt;
use std::process::ExitCode as ProcessExit;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;
use wingman::bus::Bus;
use wingman::bus::publish::{Outgoing, publish_all};
use wingman::cli::ExitCode;
use wingman::cli::submit::{Progress, exit_code, follow_progress, request_json};
use wingman::config::{Settings, duration_var, var};
use wingman::docker::{Classification, classify, parse_argv};
use wingman::envelope::RequestId;
use wingman::request::parse_request;

const REASON_FLAG: &str = "--wingman-reason";

#[tokio::main]
async fn main() -> ProcessExit {
    wingman::telemetry::init("wingman-docker", "warn");
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match run(arguments).await {
        Ok(code) => ProcessExit::from(code),
        Err(error) => {
            eprintln!("wingman-docker: {error:#}");
            ProcessExit::from(ExitCode::Error as u8)
        }
    }
}

async fn run(arguments: Vec<String>) -> anyhow::Result<u8> {
    let (arguments, flag_reason) = take_reason(arguments)?;
    let reason = flag_reason.or_else(|| var("WINGMAN_REASON"));
    let command_line =
        shlex::try_join(std::iter::once("docker").chain(arguments.iter().map(String::as_str)))?;
    let why = match classify(&arguments) {
        Classification::ReadOnly => return Err(pass_through(&arguments)),
        Classification::Mutating { reason } => reason,
    };
    let Some(reason) = reason else {
        eprintln!("❌ BLOCKED: Destructive docker command requires Wingman approval");
        eprintln!("   command: {command_line}");
        eprintln!("   why:     {why}");
        eprintln!("   to proceed, say why (what it touches, how to roll back, how to verify):");
        eprintln!("     {command_line} {REASON_FLAG} \"…\"      (or set WINGMAN_REASON)");
        eprintln!("   it then goes to an approver and runs through the Wingman gateway");
        return Ok(ExitCode::Denied as u8);
    };
    let argv: Vec<String> = std::iter::once("docker".to_string())
        .chain(arguments.iter().cloned())
        .collect();
    if let Err(error) = parse_argv(&argv) {
        eprintln!("❌ BLOCKED: the Wingman gateway cannot run this command: {error}");
        return Ok(ExitCode::Denied as u8);
    }
    let environment = var("WINGMAN_ENV")
        .context("set WINGMAN_ENV to the environment this docker acts on (dev, test or prd)")?;
    let requester = var("WINGMAN_REQUESTER")
        .or_else(wingman::config::login_name)
        .unwrap_or_else(|| "docker-wrapper".into());
    let title: String = command_line.chars().take(200).collect();
    let json = request_json(
        &requester,
        &environment,
        &title,
        &reason,
        None,
        None,
        Some(&command_line),
    );
    let request = parse_request(json.to_string().as_bytes(), RequestId::generate)
        .map_err(|invalid| anyhow::anyhow!("invalid request: {invalid}"))?;
    let settings = Settings::from_env()?;
    let bus = Bus::connect(&settings.nats, "wingman-docker").await?;
    let outgoing = Outgoing::json(
        bus.subjects.submitted(&bus.principal),
        request.request_id.to_string(),
        &request.to_public_json(),
    );
    publish_all(&bus.js, &[outgoing])
        .await
        .context("submit the request to Wingman")?;
    eprintln!(
        "⏳ submitted {} for approval; waiting (ctrl-c stops waiting, not the request)",
        request.request_id
    );
    let timeout = duration_var("WINGMAN_WAIT")?.unwrap_or(Duration::from_secs(3600));
    let Some(last) = follow_progress(
        &bus,
        request.request_id,
        wingman::bus::status_feed::Goal::Execution,
        timeout,
        Progress::Stderr,
    )
    .await?
    else {
        eprintln!(
            "gave up waiting; follow it with: wingman status {} --wait",
            request.request_id
        );
        return Ok(ExitCode::TimedOut as u8);
    };
    // The output is on this user's own subject, not in the status event everyone reads.
    if last.details.contains_key("output_subject") {
        match bus.output(&bus.principal, request.request_id).await {
            Ok(Some(output)) => {
                print!("{output}");
                if !output.ends_with('\n') && !output.is_empty() {
                    println!();
                }
            }
            Ok(None) => {}
            Err(error) => eprintln!("could not read the output: {error:#}"),
        }
    }
    let code = exit_code(&last);
    if code != ExitCode::Ok {
        let detail = last
            .details
            .get("error")
            .or_else(|| last.details.get("result"))
            .and_then(Value::as_str)
            .unwrap_or("");
        eprintln!("❌ {}: {detail}", last.status);
    }
    Ok(code as u8)
}

/// Removes `--wingman-reason X` / `--wingman-reason=X` from the arguments.
fn take_reason(arguments: Vec<String>) -> anyhow::Result<(Vec<String>, Option<String>)> {
    let mut kept = Vec::with_capacity(arguments.len());
    let mut reason = None;
    let mut iter = arguments.into_iter();
    while let Some(argument) = iter.next() {
        if argument == REASON_FLAG {
            reason = Some(iter.next().context("--wingman-reason needs a value")?);
        } else if let Some(value) = argument.strip_prefix("--wingman-reason=") {
            reason = Some(value.to_string());
        } else {
            kept.push(argument);
        }
    }
    Ok((kept, reason.filter(|text| !text.trim().is_empty())))
}

/// Replaces this process with the real docker; returns only if that fails.
fn pass_through(arguments: &[String]) -> anyhow::Error {
    let docker = var("DOCKER_BIN").unwrap_or_else(|| "/usr/bin/docker".into());
    let error = std::process::Command::new(&docker).args(arguments).exec();
    anyhow::anyhow!("run the real docker ({docker}; set DOCKER_BIN): {error}")
}

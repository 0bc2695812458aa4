//! `wingman request`: submit a request, then show it moving through its stages.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Map, Value, json};

use crate::bus::Bus;
use crate::bus::publish::{Outgoing, publish_all};
use crate::bus::status_feed::{self as watch, Goal, follow};
use crate::cli::ExitCode;
use crate::envelope::RequestId;
use crate::events::{PublicStatus, StatusEvent};
use crate::request::{Execution, parse_request};
use crate::status::Status;

/// What `wingman request` was asked to submit.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The public request JSON (validated before it is sent).
    pub request: Value,
    pub wait: bool,
    pub json: bool,
    /// Print only the request id (then wait silently, unless not waiting).
    pub quiet: bool,
    pub timeout: Duration,
    /// Submit through the HTTP API (as its key) instead of over NATS (as the NATS user).
    pub api: Option<ApiTarget>,
}

/// The HTTP API to submit through, and the key to submit with.
#[derive(Clone)]
pub struct ApiTarget {
    pub url: String,
    key: String,
}

impl std::fmt::Debug for ApiTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTarget")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl ApiTarget {
    /// The key from `WINGMAN_API_KEY`, else from the file named by `WINGMAN_API_KEY_FILE`.
    pub fn from_env(url: &str) -> anyhow::Result<Self> {
        let key = match std::env::var("WINGMAN_API_KEY") {
            Ok(key) => key,
            Err(_) => {
                let path = std::env::var("WINGMAN_API_KEY_FILE").context(
                    "--api-url needs an API key with the submit role: set WINGMAN_API_KEY or WINGMAN_API_KEY_FILE",
                )?;
                std::fs::read_to_string(&path)
                    .with_context(|| format!("read the API key from {path}"))?
            }
        };
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            key: key.trim().to_string(),
        })
    }

    /// `POST /requests`; the API validates it again and names the field of a refusal.
    async fn submit(&self, request: &Value) -> anyhow::Result<()> {
        let url = format!("{}/requests", self.url);
        let response = reqwest::Client::new()
            .post(&url)
            .header("x-api-key", &self.key)
            .json(request)
            .send()
            .await
            .with_context(|| format!("submit the request to {url}"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let reason = body["error"].as_str().unwrap_or("no reason given");
        anyhow::bail!("the API refused the request ({status}): {reason}")
    }
}

/// Builds the public request JSON from command-line pieces.
pub fn request_json(
    requester: &str,
    environment: &str,
    title: &str,
    description: &str,
    risk_level: Option<&str>,
    request_id: Option<RequestId>,
    command: Option<&str>,
) -> Value {
    let mut object = Map::new();
    if let Some(request_id) = request_id {
        object.insert("request_id".into(), json!(request_id));
    }
    object.insert("requester".into(), json!(requester));
    object.insert("environment".into(), json!(environment));
    if let Some(command) = command {
        object.insert("command".into(), json!(command));
    }
    object.insert("title".into(), json!(title));
    object.insert("description".into(), json!(description));
    if let Some(risk_level) = risk_level {
        object.insert("risk_level".into(), json!(risk_level));
    }
    Value::Object(object)
}

pub async fn run(bus: &Bus, submission: Submission) -> anyhow::Result<ExitCode> {
    let request = parse_request(
        submission.request.to_string().as_bytes(),
        RequestId::generate,
    )
    .map_err(|invalid| anyhow::anyhow!("invalid request: {invalid}"))?;
    let request_id = request.request_id;
    let goal = match request.execution {
        Execution::Manual => Goal::Token,
        Execution::Automatic => Goal::for_command(request.command.is_some()),
    };
    match &submission.api {
        Some(api) => api.submit(&request.to_public_json()).await?,
        None => {
            let outgoing = Outgoing::json(
                bus.subjects.submitted(&bus.principal),
                request_id.to_string(),
                &request.to_public_json(),
            );
            publish_all(&bus.js, &[outgoing])
                .await
                .context("submit the request")?;
        }
    }
    if submission.quiet {
        println!("{request_id}");
        if !submission.wait {
            return Ok(ExitCode::Ok);
        }
        let last =
            follow_progress(bus, request_id, goal, submission.timeout, Progress::Silent).await?;
        return Ok(last.as_ref().map_or(ExitCode::TimedOut, exit_code));
    }
    if !submission.wait {
        if submission.json {
            println!(
                "{}",
                json!({ "request_id": request_id, "status": "SUBMITTED" })
            );
        } else {
            println!("submitted {request_id}");
            println!("follow it with: wingman status {request_id} --wait");
        }
        return Ok(ExitCode::Ok);
    }
    if !submission.json {
        eprintln!(
            "submitted {request_id}; waiting for its stages (ctrl-c stops waiting, not the request)"
        );
    }
    wait_for(bus, request_id, goal, submission.timeout, submission.json).await
}

/// Follows a request until it settles, printing each stage; the exit code tells the end.
pub async fn wait_for(
    bus: &Bus,
    request_id: RequestId,
    goal: Goal,
    timeout: Duration,
    json_output: bool,
) -> anyhow::Result<ExitCode> {
    let progress = if json_output {
        Progress::Json
    } else {
        Progress::Stdout
    };
    let last = follow_progress(bus, request_id, goal, timeout, progress).await?;
    let Some(event) = last else {
        let latest = watch::last_status(bus, request_id).await.ok().flatten();
        if json_output {
            println!(
                "{}",
                json!({ "request_id": request_id, "status": latest.map(|e| e.status), "timed_out": true })
            );
        } else {
            eprintln!(
                "gave up waiting after {}; the request goes on: wingman status {request_id} --wait",
                crate::duration::show(timeout)
            );
        }
        return Ok(ExitCode::TimedOut);
    };
    if json_output {
        // Already printed as the stream's last line.
    } else if goal == Goal::Token && event.details.contains_key("token_expires_at") {
        let holder = event
            .details
            .get("holder")
            .and_then(serde_json::Value::as_str);
        println!(
            "ready for manual execution by {}: POST /gateway/token {{\"request_id\": \"{request_id}\"}}, then POST /gateway/execute with the token, with the API key that submitted it",
            holder.unwrap_or("the principal that submitted it")
        );
    }
    Ok(exit_code(&event))
}

/// Where the stage lines go while waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Stdout,
    /// For wrappers whose stdout is the command's own output.
    Stderr,
    /// One JSON object per status event on stdout (NDJSON), as it happens.
    Json,
    /// Nothing (`-q`: the id was printed; the exit code tells the end).
    Silent,
}

/// Follows a request until it settles (or `timeout`), printing one line per stage; returns
/// the settling event. On a terminal, one live line below them (a spinner with the current
/// stage, what it waits for and how long) replaces the periodic "still waiting" lines;
/// elsewhere (a pipe, a CI log) only the stage lines are printed.
pub async fn follow_progress(
    bus: &Bus,
    request_id: RequestId,
    goal: Goal,
    timeout: Duration,
    progress: Progress,
) -> anyhow::Result<Option<StatusEvent>> {
    let live = (matches!(progress, Progress::Stdout | Progress::Stderr)
        && std::io::stderr().is_terminal())
    .then(|| live_line(request_id));
    let print = |line: String| {
        let show = || match progress {
            Progress::Stdout => println!("{line}"),
            Progress::Stderr => eprintln!("{line}"),
            Progress::Silent => {}
            Progress::Json => {
                use std::io::Write as _;
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "{line}");
                let _ = stdout.flush();
            }
        };
        match &live {
            Some(spinner) => spinner.suspend(show),
            None => show(),
        }
    };
    let settled = follow(
        bus,
        request_id,
        goal,
        timeout,
        Duration::from_secs(1),
        |event| {
            if progress == Progress::Json {
                print(serde_json::to_string(event).unwrap_or_default());
            } else {
                print(describe(event));
            }
            if let Some(spinner) = &live {
                spinner.set_message(waiting_for(Some(event.status), request_id));
            }
        },
        |_| {},
    )
    .await;
    if let Some(spinner) = live {
        spinner.finish_and_clear();
    }
    settled
}

/// The live line: `⠋ 00:42 PENDING · waiting for an approver: …`.
fn live_line(request_id: RequestId) -> indicatif::ProgressBar {
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    spinner.set_message(waiting_for(None, request_id));
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

pub fn exit_code(event: &StatusEvent) -> ExitCode {
    match event.status {
        PublicStatus::Invalid | PublicStatus::Refused => ExitCode::Denied,
        PublicStatus::Request(
            Status::Rejected | Status::AutoRejected | Status::Expired | Status::Cancelled,
        ) => ExitCode::Denied,
        PublicStatus::Request(Status::Failed | Status::Indeterminate) => ExitCode::Failed,
        PublicStatus::Request(_) => ExitCode::Ok,
    }
}

/// What the live line says after `status` (`None`: submitted, no status event yet): what the
/// request waits for, and for a human decision, how to give it.
fn waiting_for(status: Option<PublicStatus>, request_id: RequestId) -> String {
    let what = match status {
        None => "waiting for intake".to_string(),
        Some(PublicStatus::Request(Status::Received)) => "waiting for validation".to_string(),
        Some(PublicStatus::Request(Status::Pending)) => {
            let short: String = request_id.to_string().chars().take(13).collect();
            format!(
                "waiting for an approver other than you: Telegram, or `wingman approve {short}`"
            )
        }
        Some(PublicStatus::Request(Status::Approved | Status::AutoApproved)) => {
            "waiting for the authority and the gateway".to_string()
        }
        Some(PublicStatus::Request(Status::Executing)) => "the gateway is running it".to_string(),
        Some(_) => "waiting".to_string(),
    };
    let word = status.map_or("SUBMITTED", PublicStatus::as_str);
    format!("{word} · {what}")
}

/// One line per stage: time, status, stage, and what the step adds.
pub fn describe(event: &StatusEvent) -> String {
    let detail = |key: &str| {
        event
            .details
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let number = |key: &str| event.details.get(key).and_then(Value::as_i64);
    let mut summary = Vec::new();
    if let Some(environment) = detail("environment") {
        summary.push(environment);
    }
    // Intake's event (the decision, taken in the hop that receives) names what was asked.
    if event.stage == crate::events::Stage::Intake && event.status != PublicStatus::Invalid {
        summary
            .push(detail("command").unwrap_or_else(|| "instruction approval (no command)".into()));
    }
    if let Some(score) = number("composite_score") {
        let profile = detail("profile").unwrap_or_default();
        summary.push(format!("score {score} {profile}").trim().to_string());
    }
    if let Some(expires) = detail("token_expires_at") {
        let short = chrono::DateTime::parse_from_rfc3339(&expires)
            .map_or(expires.clone(), |at| at.format("%H:%M:%S UTC").to_string());
        summary.push(format!("capability token minted (expires {short})"));
        if let Some(holder) = detail("holder") {
            summary.push(format!(
                "manual execution: {holder} fetches and runs it at the gateway"
            ));
        }
    }
    if let Some(first) = event
        .details
        .get("reasons")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(Value::as_str)
    {
        summary.push(first.to_string());
    }
    for key in ["decided_by", "note", "error", "result"] {
        if let Some(value) = detail(key) {
            summary.push(format!("{}: {value}", key.replace('_', " ")));
        }
    }
    if let Some(expires_at) = detail("expires_at") {
        let shown = chrono::DateTime::parse_from_rfc3339(&expires_at)
            .map_or(expires_at, |at| at.format("%H:%M:%S UTC").to_string());
        summary.push(format!("expires {shown}"));
    }
    format!(
        "{}  {:<14} {:<10} {}",
        event.at.format("%H:%M:%S UTC"),
        event.status,
        event.stage.as_str(),
        summary.join(" · ")
    )
}

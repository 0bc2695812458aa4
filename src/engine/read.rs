//! The read-only container operations: inspect and logs.
//!
//! Both write what they read into the report's bounded output. Logs are read as a stream
//! and reading stops once the bound is reached, so a chatty container cannot make the
//! gateway hold megabytes. Both are redacted first ([`redact`]): the inspect JSON before
//! a `--format` template or the excerpt sees it, the log text before it is written.

use std::time::{SystemTime, UNIX_EPOCH};

use bollard::container::LogOutput;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{InspectContainerOptions, LogsOptions};
use futures::StreamExt;
use serde_json::{Map, Value};

use crate::docker::ContainerOptions;
use crate::engine::container::{Outcome, record};
use crate::engine::redact;
use crate::engine::result::Report;
use crate::engine::template::Template;
use crate::engine::{Aim, Engine, EngineError, Limits, since};

/// The top-level inspect fields kept in the default excerpt.
const EXCERPT_FIELDS: &[&str] = &[
    "Id",
    "Name",
    "Created",
    "Image",
    "State",
    "RestartCount",
    "SizeRw",
    "SizeRootFs",
];

/// Inspects each target: the rendered `--format` template, or a JSON excerpt of its
/// identity, state and configuration. A target already `read` (by full id, while the
/// gateway resolved it: [`Engine::look`]) is reported from that answer, not asked again.
pub(crate) async fn inspect(
    engine: &Engine,
    aims: &[Aim],
    options: &ContainerOptions,
    read: &[(String, ContainerInspectResponse)],
    report: &mut Report,
) -> Result<(), EngineError> {
    let template = options.format.as_deref().map(Template::parse).transpose()?;
    let query = InspectContainerOptions { size: options.size };
    for aim in aims {
        let id = match &aim.id {
            Ok(id) => id,
            Err(outcome) => {
                report.target(&aim.shown, outcome.clone(), false);
                continue;
            }
        };
        let inspected = match read.iter().find(|(read_id, _)| read_id == id) {
            Some((_, response)) => Ok(response.clone()),
            None => {
                engine
                    .docker
                    .inspect_container(id, Some(query.clone()))
                    .await
            }
        };
        let text = match &inspected {
            Ok(response) => {
                let mut value = serde_json::to_value(response).unwrap_or(Value::Null);
                redact::inspect(&mut value);
                Some(match &template {
                    Some(template) => template.render(&value),
                    None => excerpt(&value),
                })
            }
            Err(_) => None,
        };
        record(
            engine,
            report,
            &aim.shown,
            inspected.map(|_| Outcome::done("inspected")),
        )?;
        if let Some(text) = text {
            report.line(&text);
        }
    }
    Ok(())
}

/// Reads each target's logs (stdout and stderr), `--tail` lines or the default number.
pub(crate) async fn logs(
    engine: &Engine,
    aims: &[Aim],
    options: &ContainerOptions,
    limits: &Limits,
    report: &mut Report,
) -> Result<(), EngineError> {
    let since = match options.since.as_deref() {
        Some(value) => since::unix_seconds(value, now_unix_seconds())?,
        None => 0,
    };
    let query = LogsOptions {
        stdout: true,
        stderr: true,
        since,
        timestamps: options.timestamps,
        tail: options.tail.unwrap_or(limits.logs_tail_default).to_string(),
        ..LogsOptions::default()
    };
    for aim in aims {
        if aims.len() > 1 {
            report.line(&format!("==> {} <==", aim.shown));
        }
        let id = match &aim.id {
            Ok(id) => id,
            Err(outcome) => {
                report.target(&aim.shown, outcome.clone(), false);
                continue;
            }
        };
        let read = read_logs(engine, id, query.clone(), limits.max_output_bytes).await;
        let text = read.as_ref().ok().map(|logs| redact::text(&logs.text));
        let unread = read.as_ref().is_ok_and(|logs| logs.cut);
        let attempt = read.map(|logs| {
            let cut = if logs.cut { ", cut" } else { "" };
            Outcome::done(format!("read {} lines{cut}", logs.lines))
        });
        record(engine, report, &aim.shown, attempt)?;
        if let Some(text) = text {
            report.text(&text);
        }
        if unread {
            report.mark_unread();
        }
    }
    Ok(())
}

struct Logs {
    text: String,
    lines: usize,
    /// Reading stopped at the bound before the stream ended.
    cut: bool,
}

async fn read_logs(
    engine: &Engine,
    target: &str,
    query: LogsOptions,
    max_bytes: usize,
) -> Result<Logs, bollard::errors::Error> {
    let mut stream = engine.docker.logs(target, Some(query));
    let mut logs = Logs {
        text: String::new(),
        lines: 0,
        cut: false,
    };
    while let Some(chunk) = stream.next().await {
        let message = match chunk? {
            LogOutput::StdOut { message }
            | LogOutput::StdErr { message }
            | LogOutput::Console { message }
            | LogOutput::StdIn { message } => message,
        };
        if logs.text.len() > max_bytes {
            logs.cut = true;
            break;
        }
        let text = String::from_utf8_lossy(&message);
        logs.lines += text.matches('\n').count();
        logs.text.push_str(&text);
    }
    Ok(logs)
}

/// A pretty JSON object with [`EXCERPT_FIELDS`], the config's image, command and labels,
/// and the network mode and restart policy.
fn excerpt(inspected: &Value) -> String {
    let mut kept = Map::new();
    for field in EXCERPT_FIELDS {
        if let Some(value) = inspected.get(*field) {
            kept.insert((*field).to_string(), value.clone());
        }
    }
    let pick = |section: &str, fields: &[&str]| -> Value {
        let mut picked = Map::new();
        for field in fields {
            if let Some(value) = inspected.get(section).and_then(|s| s.get(*field)) {
                picked.insert((*field).to_string(), value.clone());
            }
        }
        Value::Object(picked)
    };
    kept.insert(
        "Config".to_string(),
        pick("Config", &["Image", "Cmd", "Entrypoint", "Labels"]),
    );
    kept.insert(
        "HostConfig".to_string(),
        pick("HostConfig", &["NetworkMode", "RestartPolicy", "Init"]),
    );
    serde_json::to_string_pretty(&Value::Object(kept)).unwrap_or_default()
}

fn now_unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

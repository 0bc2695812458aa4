//! `wingman explain`: run the validators on a request without submitting it (for tuning), and
//! say what else would decide its fate: the gateway policy's verdict on its operation, and
//! whether it falls in the validated cohort of the live rollout (or only gets a shadow score).

use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::json;

use crate::cli::ExitCode;
use crate::config::Settings;
use crate::envelope::RequestId;
use crate::policy::Policy;
use crate::request::{Request, parse_request};
use crate::rollout::{Rollout, RolloutStore};
use crate::validation::{Validation, ValidationConfig, Validator, ValidatorResult};

/// `wingman explain`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// A request's JSON (as submitted); stdin when omitted.
    pub file: Option<PathBuf>,
    /// Print {"decision", "validator_scores", "policy", "cohort"} as JSON.
    #[arg(long)]
    pub json: bool,
    /// A validation config file (default: $WINGMAN_VALIDATION_CONFIG, else the shipped one).
    #[arg(long, env = "WINGMAN_VALIDATION_CONFIG")]
    pub config: Option<PathBuf>,
    /// The gateway policy file (default: $WINGMAN_POLICY_FILE, else the shipped one).
    #[arg(long, env = "WINGMAN_POLICY_FILE")]
    pub policy: Option<PathBuf>,
}

/// Reads the request, the validation config and the policy, asks the bus for the live
/// rollout flags (a bus out of reach is reported, not fatal) and prints the explanation.
pub async fn run(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let payload = match args.file {
        Some(path) => std::fs::read(&path).with_context(|| format!("read {}", path.display()))?,
        None => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("read the request from stdin")?;
            bytes
        }
    };
    let config = match args.config {
        Some(path) => ValidationConfig::load(&path)?,
        None => ValidationConfig::default_config(),
    };
    let validator = Validator::new(config).context("validation config")?;
    let policy = match args.policy {
        Some(path) => Policy::load(&path)?,
        None => Policy::default_policy(),
    };
    let flags = live_flags().await;
    let flags = match &flags {
        Ok(flags) => Ok(flags),
        Err(why) => Err(why.as_str()),
    };
    explain(&validator, &policy, flags, &payload, args.json)?;
    Ok(ExitCode::Ok)
}

/// The gateway policy's verdict on a request's operation, from the rules that need no Docker
/// (the gateway still resolves the targets and checks them at execution time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum PolicyVerdict {
    /// The operation passes the rules that need no Docker.
    Allowed {
        note: String,
    },
    Refused {
        rule: String,
        reason: String,
    },
    /// An instruction approval runs nothing through the gateway.
    NotApplicable {
        note: String,
    },
}

/// Where the request falls in the live rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CohortView {
    pub request_id: RequestId,
    /// The request id's bucket, 0..100 (a request id chosen by the publisher keeps its bucket).
    pub bucket: u8,
    /// `enabled, 50 %`, or why the flags are unknown.
    pub rollout: String,
    /// `Some(true)`: validation's decision would be enforced; `Some(false)`: shadow only
    /// (scored and audited, a human decides); `None`: the flags could not be read.
    pub in_cohort: Option<bool>,
}

/// The policy's verdict on `request`.
pub fn policy_verdict(policy: &Policy, request: &Request) -> PolicyVerdict {
    match &request.command {
        None => PolicyVerdict::NotApplicable {
            note: "an instruction approval: nothing runs through the gateway".into(),
        },
        Some(command) => match policy.check_operation(request.environment, &command.operation) {
            Ok(()) => PolicyVerdict::Allowed {
                note: "the targets are resolved and checked again by the gateway when it runs"
                    .into(),
            },
            Err(refusal) => PolicyVerdict::Refused {
                rule: refusal.rule,
                reason: refusal.reason,
            },
        },
    }
}

/// Where `request` falls given the live flags (`Err`: why they could not be read).
pub fn cohort_view(request: &Request, flags: Result<&Rollout, &str>) -> CohortView {
    let bucket = request.request_id.rollout_bucket();
    match flags {
        Ok(flags) => CohortView {
            request_id: request.request_id,
            bucket,
            rollout: flags.describe(),
            in_cohort: Some(flags.cohort(request.request_id).applied),
        },
        Err(why) => CohortView {
            request_id: request.request_id,
            bucket,
            rollout: format!("unknown ({why})"),
            in_cohort: None,
        },
    }
}

/// Prints each validator's score and findings, the decision, the policy's verdict and the
/// cohort; `--json` prints `{"decision", "validator_scores", "policy", "cohort"}` with the keys
/// of CONTRACTS.md, "Validation scores".
pub fn explain(
    validator: &Validator,
    policy: &Policy,
    flags: Result<&Rollout, &str>,
    payload: &[u8],
    json_output: bool,
) -> anyhow::Result<Validation> {
    let request = parse_request(payload, RequestId::generate)
        .map_err(|invalid| anyhow::anyhow!("invalid request: {invalid}"))?;
    let validation = validator.validate(&request);
    let verdict = policy_verdict(policy, &request);
    let cohort = cohort_view(&request, flags);
    if json_output {
        let output = json!({
            "decision": validation.decision,
            "validator_scores": validation.validator_scores,
            "policy": verdict,
            "cohort": cohort,
        });
        println!("{}", serde_json::to_string_pretty(&output)?);
        return Ok(validation);
    }
    let scores = &validation.validator_scores;
    let composite = &scores.composite;
    println!(
        "decision: {} (composite {} / 100, profile {})",
        decision_word(&validation),
        composite.score,
        composite.profile.as_str()
    );
    for reason in &composite.reasons {
        println!("  - {reason}");
    }
    for (name, result) in scores.results() {
        print_validator(name.as_str(), result);
    }
    match &verdict {
        PolicyVerdict::Allowed { note } => println!("gateway policy: allowed ({note})"),
        PolicyVerdict::Refused { rule, reason } => {
            println!("gateway policy: REFUSED by rule `{rule}`: {reason}")
        }
        PolicyVerdict::NotApplicable { note } => {
            println!("gateway policy: not applicable ({note})")
        }
    }
    let placement = match cohort.in_cohort {
        Some(true) => "in the validated cohort: this decision would be enforced",
        Some(false) => "outside the cohort: shadow only — scored and audited, a human decides",
        None => "cohort unknown",
    };
    println!(
        "rollout: {} — request {} is in bucket {}: {placement}",
        cohort.rollout, cohort.request_id, cohort.bucket
    );
    Ok(validation)
}

/// The live rollout flags, or why they could not be read (within 5 s).
async fn live_flags() -> Result<Rollout, String> {
    let read = async {
        let bus = crate::cli::connect(&Settings::from_env()?).await?;
        let (flags, _) = RolloutStore::open(&bus).await?.current().await?;
        anyhow::Ok(flags)
    };
    match tokio::time::timeout(Duration::from_secs(5), read).await {
        Ok(Ok(flags)) => Ok(flags),
        Ok(Err(error)) => Err(format!("cannot read the rollout flags: {error:#}")),
        Err(_) => Err("the bus did not answer within 5 s".into()),
    }
}

fn decision_word(validation: &Validation) -> String {
    serde_json::to_value(validation.decision)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn print_validator(name: &str, result: &ValidatorResult) {
    println!("{name:<20} {:>3}", result.score);
    for finding in &result.findings {
        let severity = serde_json::to_value(finding.severity)
            .ok()
            .and_then(|value| value.as_str().map(str::to_string))
            .unwrap_or_default();
        match &finding.span {
            Some(span) => println!(
                "    [{severity}] {}: {} (`{span}`)",
                finding.code, finding.reason
            ),
            None => println!("    [{severity}] {}: {}", finding.code, finding.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(environment: &str, command: Option<&str>) -> Request {
        let mut value = json!({
            "request_id": "0190f5a0-0000-7000-8000-000000000000",
            "requester": "agent-7",
            "environment": environment,
            "title": "Look at the api",
            "description": "Check how the api container is configured after the incident.",
        });
        if let Some(command) = command {
            value["command"] = json!(command);
        }
        parse_request(value.to_string().as_bytes(), RequestId::generate).unwrap()
    }

    #[test]
    fn explain_gives_the_gateway_policys_verdict_on_the_operation() {
        let policy = Policy::default_policy();
        assert!(matches!(
            policy_verdict(&policy, &request("prd", Some("docker inspect api"))),
            PolicyVerdict::Allowed { .. }
        ));
        assert!(matches!(
            policy_verdict(&policy, &request("prd", None)),
            PolicyVerdict::NotApplicable { .. }
        ));
        // The shipped prd policy refuses a stop of Wingman's own control plane by name.
        let PolicyVerdict::Refused { rule, .. } = policy_verdict(
            &policy,
            &request("prd", Some("docker compose -p wingman-prd stop")),
        ) else {
            panic!("the control plane is never stopped in prd");
        };
        assert!(!rule.is_empty());
    }

    #[test]
    fn explain_says_whether_the_request_is_in_the_cohort_or_only_shadowed() {
        let request = request("dev", None);
        let bucket = request.request_id.rollout_bucket();
        let flags = |enabled, percent| Rollout {
            enabled,
            percent,
            updated_by: "test".into(),
            updated_at: chrono::Utc::now(),
        };
        let above = flags(true, bucket.saturating_add(1).min(100));
        assert_eq!(cohort_view(&request, Ok(&above)).in_cohort, Some(true));
        let below = flags(true, bucket);
        assert_eq!(cohort_view(&request, Ok(&below)).in_cohort, Some(false));
        assert_eq!(
            cohort_view(&request, Ok(&flags(false, 100))).in_cohort,
            Some(false)
        );
        let unknown = cohort_view(&request, Err("the bus is not reachable"));
        assert_eq!(unknown.in_cohort, None);
        assert_eq!(unknown.bucket, bucket);
    }
}

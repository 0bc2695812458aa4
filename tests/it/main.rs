//! The one integration-test binary: real NATS, real Postgres, the real stages in-process
//! (and real worker processes where a test kills one).

mod alerting;
mod api;
mod api_fuzz;
mod approvals;
mod architecture;
mod audit;
mod audit_forgery;
// The pipeline bench's pure parts, tested in `bench_parts`: a `harness = false` bench's own
// tests never run. Only what those tests call is used in this binary.
#[allow(dead_code)]
#[path = "../../benches/pipeline/args.rs"]
mod bench_args;
#[path = "../../benches/pipeline/batches.rs"]
mod bench_batches;
#[allow(dead_code)]
#[path = "../../benches/pipeline/cpu.rs"]
mod bench_cpu;
#[allow(dead_code)]
#[path = "../../benches/pipeline/growth.rs"]
mod bench_growth;
#[allow(dead_code)]
#[path = "../../benches/pipeline/nats.rs"]
mod bench_nats;
mod bench_parts;
mod browser;
mod cancel;
mod check_observability;
mod cli;
mod cluster;
mod compose;
mod console;
mod dashboards;
mod decide;
mod deploy;
mod docker;
mod execution;
mod fake_telegram;
mod fresh_machine;
mod helpers;
mod identity;
mod intake;
mod manual;
mod metrics;
mod migrations;
mod monitoring;
mod nats_auth;
mod nats_permissions;
mod nats_server;
mod observability;
mod policy;
mod processes;
mod readiness;
mod readme;
mod recorder;
mod redaction;
mod rollout;
mod rollout_audit;
mod rollout_environment;
mod runbook;
mod status_consumers;
mod storage;
mod unauthenticated;
mod web_console;
mod wrapper;

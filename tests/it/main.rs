//! The one integration-test binary: real NATS, real Postgres, the real stages in-process
//! (and real worker processes where a test kills one).

mod api;
mod approvals;
mod audit;
mod audit_forgery;
mod cli;
mod cluster;
mod compose;
mod console;
mod decide;
mod deploy;
mod docker;
mod execution;
mod fake_telegram;
mod helpers;
mod identity;
mod intake;
mod manual;
mod metrics;
mod migrations;
mod nats_auth;
mod nats_permissions;
mod nats_server;
mod policy;
mod processes;
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

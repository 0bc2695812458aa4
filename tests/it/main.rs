//! The one integration-test binary: real NATS, real Postgres, the real stages in-process
//! (and real worker processes where a test kills one).

mod api;
mod approvals;
mod audit;
mod cli;
mod cluster;
mod console;
mod deploy;
mod docker;
mod execution;
mod fake_telegram;
mod helpers;
mod intake;
mod metrics;
mod nats_auth;
mod nats_permissions;
mod nats_server;
mod processes;
mod recorder;
mod redaction;
mod rollout;
mod status_consumers;
mod storage;
mod unauthenticated;
mod wrapper;

//! Wingman: an approval-gated execution pipeline for destructive infrastructure commands.
//!
//! Layout (see ARCHITECTURE.md for the journey of a request and the invariants):
//! - [`request`]: the public request contract and its validation.
//! - [`envelope`], [`events`], [`status`]: ids, the event types, the state machine.
//! - [`bus`]: NATS subjects, the topology declared in `nats/`, publishing, the consume loop.
//! - [`stages`]: one module per pipeline stage (intake, recorder, …).
//! - [`store`]: Postgres tables (written by the recorder only).
//! - [`api`]: the HTTP API; [`console`]: the web console; [`web`]: both, as the API worker
//!   serves them; [`access`]: API keys by role at the HTTP edge (API and gateway).
//! - [`docker`]: the docker command line → typed operation parser.
//! - [`engine`]: performs typed operations on the Docker Engine API (the gateway's only tool).
//! - [`identity`]: who submitted and who approves, as authenticated ([`principal`], the approver roster).
//! - [`claims`]: once-only KV writes and the claims bucket's typed keys.
//! - [`token`]: capability tokens (PASETO v4.public): minted by the authority, verified by the gateway.
//! - [`cli`]: the `wingman` command's subcommands.
//! - [`config`], [`telemetry`], [`metrics`], [`shutdown`], [`worker`], [`failpoint`]:
//!   cross-cutting plumbing; `named`: `named_enum!`, an enum declared with its list of names.

pub mod access;
pub mod api;
pub mod approval;
pub mod bus;
pub mod claims;
pub mod cli;
pub mod config;
pub mod console;
pub mod docker;
pub mod duration;
pub mod engine;
pub mod envelope;
pub mod events;
pub mod failpoint;
pub mod gateway_http;
pub mod identity;
pub mod metrics;
mod named;
pub mod policy;
pub mod principal;
pub mod readiness;
pub mod report;
pub mod request;
pub mod rollout;
pub mod settings;
pub mod shutdown;
pub mod stages;
pub mod status;
pub mod store;
pub mod telegram;
pub mod telemetry;
pub mod token;
pub mod validation;
pub mod web;
pub mod worker;

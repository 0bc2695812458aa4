//! Who did something, as authenticated — never a name the sender typed.
//!
//! Sits below the stages: intake reads a request's [`Principal`] from the subject it arrived
//! on, and the approval desk resolves every vote to one approver of the [`roster::Roster`].
//!
//! - **Requesters.** A publisher submits on `wingman.requests.submitted.<its NATS user>`;
//!   nats-server lets each user publish on its own suffix only (`nats/auth.conf`), so the
//!   suffix is proven by the server. The HTTP API, which checks API keys, submits on
//!   `wingman.requests.submitted.api.<key name>` (only the API's NATS user may). The reserved
//!   suffix `anonymous` is for deployments without NATS authentication (local runs): there
//!   nothing is proven, and the self-approval rule falls back to the `requester` label. The
//!   `requester` field of a request stays a display label.
//! - **Approvers.** One person is one entry of the roster, with the credentials that prove
//!   them: console keys (Ed25519, votes signed with `wingman approve`), Telegram user ids, API
//!   key names (votes through the HTTP API, [`api_vote`]). One credential belongs to at most one person, so one principal is one vote
//!   whatever name it types. See [`roster`] and [`console_vote`].

pub mod api_vote;
pub mod console_vote;
pub mod roster;

use serde::{Deserialize, Serialize};

pub use crate::principal::{ANONYMOUS, API_TOKEN, MAX_NAME, Principal, check_name};

/// What an approver's vote says, on every channel (Telegram, console, API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Reject,
}

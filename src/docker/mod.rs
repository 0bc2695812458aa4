//! Docker command lines as typed operations.
//!
//! Publishers describe what they want done as a docker command line. Intake and the
//! validator turn it into a [`DockerOperation`] with [`parse_command_line`] (or
//! [`parse_argv`]); the authority binds a capability token to
//! [`DockerOperation::argv_hash`]; the gateway performs the operation through the Docker
//! Engine API, never through a shell. Anything that cannot be expressed as a typed
//! operation is refused here with a [`CommandError`].
//!
//! [`classify`] serves a different caller: the `docker` wrapper on a user's PATH, which
//! only needs to know whether a command is read-only (pass through) or mutating (send
//! it through the pipeline).
//!
//! Layout:
//! - `line`: command line to argv, refusing shell syntax
//! - `command`: argv to operation, the top-level dispatch
//! - `operation`: the typed operation; `kind`: [`OperationKind`], the one list of names
//! - `canonical`: its canonical argv, hash and display
//! - `container`, `compose` and `exec`: the per-family argument parsers
//! - `flags` and `values`: the shared flag reader and value checks
//! - `error`: [`CommandError`]
//! - `resolved`: what Docker says the targets are ([`Resolved`]), matched like the daemon
//! - `classify`: read-only versus mutating, for the wrapper

mod canonical;
mod classify;
mod command;
mod compose;
mod container;
mod error;
mod exec;
mod flags;
mod kind;
mod line;
mod operation;
mod resolved;
mod values;

pub use classify::{Classification, classify};
pub use command::{MAX_LINE_BYTES, parse_argv, parse_canonical};
pub use error::{CommandError, NameKind};
pub use kind::OperationKind;
pub use line::parse_command_line;
pub use operation::{
    ComposeAction, ComposeOp, ComposeOptions, ContainerAction, ContainerOp, ContainerOptions,
    DockerOperation, ExecOp,
};
pub use resolved::{
    ContainerFacts, PROJECT_LABEL, Resolution, Resolved, ResolvedTarget, SERVICE_LABEL,
    canonical_name, resolve, resolve_container,
};
pub(crate) use values::name as check_name;

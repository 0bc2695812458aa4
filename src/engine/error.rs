//! [`EngineError`]: why an operation could not be performed as a whole.
//!
//! A problem with one target (a missing container, a refused removal) is not an error
//! here: it is a [`crate::engine::TargetResult`] with `ok: false`, next to the targets
//! that worked. An `EngineError` means the engine could not be asked at all, or the
//! operation cannot be expressed through the Engine API. When it happens halfway through
//! a multi-target operation, earlier targets may already have changed: the caller must
//! treat the operation as indeterminate, not retry it blindly.

use bollard::errors::Error as DockerError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The socket is missing, refuses connections, or a call timed out.
    #[error("docker engine unreachable at {host}")]
    Unreachable {
        host: String,
        #[source]
        source: DockerError,
    },
    /// The engine answered a call that the whole operation depends on (listing a
    /// project's containers, say) with an error.
    #[error("docker engine call {call} failed")]
    Docker {
        call: &'static str,
        #[source]
        source: DockerError,
    },
    /// The host string is not a `unix://` socket address.
    #[error("unsupported docker host {host:?}: expected unix:///path/to/docker.sock")]
    UnsupportedHost { host: String },
    /// The operation asks for something the gateway cannot do through the Engine API,
    /// such as an inspect template beyond the supported subset.
    #[error("unsupported by the engine executor: {what}")]
    Unsupported { what: String },
    /// The compose binary ran past its timeout and was killed: it may have changed part of
    /// the project.
    #[error(
        "compose {action} ran past {seconds} s and was killed; it may have changed part of the project"
    )]
    ComposeTimedOut { action: &'static str, seconds: u64 },
    /// An option value that the parser let through but that cannot be interpreted,
    /// such as a `--since` date that does not exist.
    #[error("invalid {option} value {value:?}: {reason}")]
    InvalidOption {
        option: &'static str,
        value: String,
        reason: &'static str,
    },
}

impl EngineError {
    /// Whether trying again later may succeed: only connection problems and the
    /// engine's own 5xx answers qualify.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Unreachable { .. } => true,
            EngineError::Docker { source, .. } => {
                status_code(source).is_none_or(|status| status >= 500)
            }
            EngineError::UnsupportedHost { .. }
            | EngineError::Unsupported { .. }
            | EngineError::ComposeTimedOut { .. }
            | EngineError::InvalidOption { .. } => false,
        }
    }
}

/// The HTTP status the engine answered with, if it answered at all.
pub(crate) fn status_code(error: &DockerError) -> Option<u16> {
    match error {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The engine's own message for an error it answered with.
pub(crate) fn server_message(error: &DockerError) -> Option<&str> {
    match error {
        DockerError::DockerResponseServerError { message, .. } => Some(message),
        _ => None,
    }
}

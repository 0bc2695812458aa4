//! Fault injection for the crash tests: `WINGMAN_FAILPOINT=<name>:<action>` makes a worker
//! stop at a named point, so a test can kill it exactly there.
//!
//! Names: `before_ack` (the effect is durable, the message not yet acked); the gateway's
//! `gateway_before_executing` (the token being claimed, EXECUTING not yet published) and
//! `gateway_after_claim` (the token claimed and EXECUTING recorded, Docker not yet called).
//! Actions: `pause` (print `failpoint <name> reached` on stderr, then hang until killed) and
//! `abort` (end the process at once). Unset in production; read once.

use std::sync::OnceLock;

static CONFIGURED: OnceLock<Option<(String, String)>> = OnceLock::new();

fn configured() -> &'static Option<(String, String)> {
    CONFIGURED.get_or_init(|| {
        let text = crate::config::var("WINGMAN_FAILPOINT")?;
        let (name, action) = text.split_once(':').unwrap_or((text.as_str(), "pause"));
        Some((name.to_string(), action.to_string()))
    })
}

/// Stops here if the failpoint `name` is configured.
pub async fn hit(name: &str) {
    let Some((configured_name, action)) = configured() else {
        return;
    };
    if configured_name != name {
        return;
    }
    eprintln!("failpoint {name} reached");
    tracing::warn!(failpoint = name, action = %action, "failpoint reached");
    if action == "abort" {
        std::process::abort();
    }
    std::future::pending::<()>().await;
}

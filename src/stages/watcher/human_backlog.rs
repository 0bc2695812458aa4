//! The human backlog: what waits for an approver, as Postgres has it now.
//!
//! 1. On every tick of the watcher's clock, counts the PENDING requests of each environment,
//!    the age of the oldest, and how many expire within [`EXPIRY_WARNING`].
//! 2. Reads `approval_requests` (read-only); publishes nothing.
//! 3. Sets the `wingman_approvals_pending`, `wingman_approvals_oldest_pending_age_seconds` and
//!    `wingman_approvals_expiring_soon` gauges for every environment, 0 where nothing waits, so
//!    they follow the state (a decision, an expiry, a restart) and not only the events seen.
//! 4. It never decides or expires anything (`expire_due` does).

use std::time::Duration;

use sqlx::PgPool;

use crate::metrics;
use crate::request::Environment;

/// A PENDING request whose deadline is this close counts as expiring soon (the
/// `ApprovalsAboutToExpire` alert): time for an approver to act before the default deny.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(15 * 60);

/// What waits for a human in one environment.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Backlog {
    pub pending: u64,
    /// How long the oldest PENDING request has waited (zero when none).
    pub oldest: Duration,
    /// PENDING requests whose deadline is within [`EXPIRY_WARNING`] (or already past).
    pub expiring_soon: u64,
}

/// Reads the backlog of every environment (those with nothing pending included).
pub async fn read(pool: &PgPool) -> anyhow::Result<Vec<(Environment, Backlog)>> {
    let rows: Vec<(String, i64, f64, i64)> = sqlx::query_as(
        "SELECT environment,
                count(*),
                COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8,
                count(*) FILTER (WHERE expires_at <= now() + make_interval(secs => $1))
         FROM approval_requests WHERE status = 'PENDING' GROUP BY environment",
    )
    .bind(EXPIRY_WARNING.as_secs_f64())
    .fetch_all(pool)
    .await?;
    Ok(Environment::ALL
        .iter()
        .map(|environment| {
            let backlog = rows
                .iter()
                .find(|(name, ..)| name == environment.as_str())
                .map(|(_, pending, oldest, expiring)| Backlog {
                    pending: u64::try_from(*pending).unwrap_or(0),
                    oldest: Duration::from_secs_f64(oldest.max(0.0)),
                    expiring_soon: u64::try_from(*expiring).unwrap_or(0),
                })
                .unwrap_or_default();
            (*environment, backlog)
        })
        .collect())
}

/// Reads the backlog and sets the gauges; a failed read keeps the last values and is logged.
pub async fn report(pool: &PgPool) {
    match read(pool).await {
        Ok(backlogs) => {
            for (environment, backlog) in backlogs {
                metrics::human_backlog(
                    environment.as_str(),
                    backlog.pending,
                    backlog.oldest,
                    backlog.expiring_soon,
                );
            }
        }
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "human backlog read failed; will retry");
        }
    }
}

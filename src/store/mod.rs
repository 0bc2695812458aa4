//! Postgres: one file per table group. Only the recorder writes; everyone else reads.

pub mod audit;
pub mod chain;
pub mod executions;
pub mod requests;

use anyhow::Context as _;

/// Applies the migrations in `migrations/` (idempotent; sqlx serializes concurrent runs).
pub async fn migrate(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations")
        .run(pool)
        .await
        .context("run database migrations")
}

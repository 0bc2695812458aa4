//! Postgres: one file per table group. Only the recorder writes; everyone else reads.

pub mod audit;
pub mod chain;
pub mod console;
pub mod executions;
pub mod requests;

use anyhow::Context as _;

/// Applies the migrations in `migrations/` (idempotent; sqlx serializes concurrent runs).
///
/// Migrations a newer version applied and this one does not know are left alone: after a
/// rollback the previous version's `migrate` service runs on the newer schema, and must
/// succeed there for the workers to start (README "Roll back"). The ones it knows are still
/// checked against their checksums.
pub async fn migrate(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator.run(pool).await.context("run database migrations")
}

/// The login role of the recorder (the only writer) and of every other service (readers),
/// created by the migrations without LOGIN.
pub const WRITER_ROLE: &str = "wingman_writer";
pub const READER_ROLE: &str = "wingman_reader";

/// Lets the application roles log in with these passwords (`wingman migrate` does, from
/// `WINGMAN_DB_WRITER_PASSWORD(_FILE)` and `WINGMAN_DB_READER_PASSWORD(_FILE)`). The
/// password is quoted by Postgres itself (`quote_literal`): utility statements take no bind
/// parameters.
pub async fn set_role_password(
    pool: &sqlx::PgPool,
    role: &'static str,
    password: &str,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        role == WRITER_ROLE || role == READER_ROLE,
        "{role} is not an application role"
    );
    anyhow::ensure!(
        password.len() >= 16,
        "the password of {role} must have at least 16 characters"
    );
    let quoted: String = sqlx::query_scalar("SELECT quote_literal($1)")
        .bind(password)
        .fetch_one(pool)
        .await
        .context("quote the role password")?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER ROLE {role} WITH LOGIN PASSWORD {quoted}"
    )))
    .execute(pool)
    .await
    .with_context(|| format!("set the password of {role}"))?;
    Ok(())
}

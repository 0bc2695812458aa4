//! `wingman list`: recent requests from Postgres, newest first: the decision (STATUS) and,
//! once the gateway started it, how the execution went (EXECUTION).

use chrono::{DateTime, Utc};

use crate::cli::ExitCode;
use crate::config::Settings;
use crate::status::Status;
use crate::store::requests::{self, ListFilter, RequestRow};

/// `wingman list`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// A decision (RECEIVED, AUTO_APPROVED, AUTO_REJECTED, PENDING, APPROVED, REJECTED,
    /// EXPIRED) filters the decision, whether or not the request ran; an execution word
    /// (EXECUTING, SUCCEEDED, FAILED, INDETERMINATE) filters how it ran.
    #[arg(long)]
    pub status: Option<Status>,
    /// Only requests newer than this: a duration ago (24h, 7d) or an RFC 3339 time.
    #[arg(long, value_parser = crate::duration::since)]
    pub since: Option<DateTime<Utc>>,
    /// At most this many rows, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    /// Print the rows as a JSON array.
    #[arg(long)]
    pub json: bool,
    /// Print only the request ids, one per line.
    #[arg(short, long, conflicts_with = "json")]
    pub quiet: bool,
}

/// Lists the requests in `DATABASE_URL` that pass the filters.
pub async fn run(args: ListArgs) -> anyhow::Result<ExitCode> {
    let pool = Settings::from_env()?.database.pool()?;
    let filter = ListFilter {
        status: args.status,
        since: args.since,
        limit: args.limit,
    };
    print(&pool, filter, args.json, args.quiet).await?;
    Ok(ExitCode::Ok)
}

/// Prints the rows: a table, a JSON array (`json`) or only the ids (`quiet`).
pub async fn print(
    pool: &sqlx::PgPool,
    filter: ListFilter,
    json: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    let rows = requests::list(pool, &filter).await?;
    if quiet {
        for row in &rows {
            println!("{}", row.request_id);
        }
        return Ok(());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no requests match");
        return Ok(());
    }
    println!(
        "{:<36}  {:<14} {:<13} {:<4} {:<19}  TITLE",
        "REQUEST", "STATUS", "EXECUTION", "ENV", "CREATED (UTC)"
    );
    for row in &rows {
        println!("{}", line(row));
    }
    Ok(())
}

fn line(row: &RequestRow) -> String {
    let title: String = row.title.chars().take(60).collect();
    format!(
        "{:<36}  {:<14} {:<13} {:<4} {:<19}  {title}",
        row.request_id,
        row.status,
        row.execution_status.as_deref().unwrap_or("-"),
        row.environment,
        row.created_at.format("%Y-%m-%d %H:%M:%S")
    )
}

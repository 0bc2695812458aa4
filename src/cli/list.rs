//! `wingman list`: recent requests from Postgres, newest first: the decision (STATUS) and,
//! once the gateway started it, how the execution went (EXECUTION).

use crate::store::requests::{self, ListFilter, RequestRow};

pub async fn run(
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

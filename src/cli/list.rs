//! `wingman list`: recent requests from Postgres, newest first.

use crate::store::requests::{self, ListFilter, RequestRow};

pub async fn run(pool: &sqlx::PgPool, filter: ListFilter, json: bool) -> anyhow::Result<()> {
    let rows = requests::list(pool, &filter).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no requests match");
        return Ok(());
    }
    println!(
        "{:<36}  {:<14} {:<4} {:<19}  TITLE",
        "REQUEST", "STATUS", "ENV", "CREATED (UTC)"
    );
    for row in &rows {
        println!("{}", line(row));
    }
    Ok(())
}

fn line(row: &RequestRow) -> String {
    let title: String = row.title.chars().take(60).collect();
    format!(
        "{:<36}  {:<14} {:<4} {:<19}  {title}",
        row.request_id,
        row.status,
        row.environment,
        row.created_at.format("%Y-%m-%d %H:%M:%S")
    )
}

//! `wingman migrate`: apply the database migrations, then let the application roles log in
//! with the passwords the deploy gives them.

use crate::cli::ExitCode;
use crate::config::Settings;

/// `wingman migrate`'s arguments.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Print {"migrated": true, "roles_may_log_in": [...]} as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Migrates the database in `DATABASE_URL`, then sets the writer's and the reader's
/// passwords from `WINGMAN_DB_WRITER_PASSWORD(_FILE)` and `WINGMAN_DB_READER_PASSWORD(_FILE)`,
/// when set.
pub async fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let json = args.json;
    let pool = Settings::from_env()?.database.pool()?;
    crate::store::migrate(&pool).await?;
    if !json {
        println!("migrations applied");
    }
    let mut may_log_in = Vec::new();
    let passwords = [
        (
            crate::store::WRITER_ROLE,
            crate::config::secret_var("WINGMAN_DB_WRITER_PASSWORD")?,
        ),
        (
            crate::store::READER_ROLE,
            crate::config::secret_var("WINGMAN_DB_READER_PASSWORD")?,
        ),
    ];
    for (role, password) in passwords {
        if let Some(password) = password {
            crate::store::set_role_password(&pool, role, &password).await?;
            if !json {
                println!("{role} may log in");
            }
            may_log_in.push(role);
        }
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"migrated": true, "roles_may_log_in": may_log_in})
        );
    }
    Ok(ExitCode::Ok)
}

//! The migrations move existing rows as they claim: applied one by one from the files, as
//! `wingman migrate` would to a database of the previous version, on real Postgres.

use sqlx::PgPool;

use crate::helpers::postgres_base;

/// The split of the execution state out of `status`.
const SPLIT: &str = "20261204000001_split_execution_status.sql";

async fn apply(pool: &PgPool, file: &std::path::Path) {
    let sql = std::fs::read_to_string(file).unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
}

/// An empty database of its own: the server's admin pool, its name, a pool on it.
async fn fresh_database() -> (PgPool, String, PgPool) {
    let database = format!("wt_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let admin = PgPool::connect(&format!("{}/postgres", postgres_base()))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&admin)
        .await
        .unwrap();
    let pool = PgPool::connect(&format!("{}/{database}", postgres_base()))
        .await
        .unwrap();
    (admin, database, pool)
}

async fn drop_database(admin: PgPool, database: String, pool: PgPool) {
    pool.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .unwrap();
}

#[tokio::test]
async fn executed_rows_get_their_decision_back_and_their_execution_in_its_own_column() {
    let (admin, database, pool) = fresh_database().await;
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    let split = files
        .iter()
        .position(|file| file.ends_with(SPLIT))
        .expect("the split migration");
    for file in &files[..split] {
        apply(&pool, file).await;
    }
    // Rows as the previous version left them: `status` moved on to the execution's word.
    sqlx::raw_sql(
        "INSERT INTO approval_requests
            (request_id, requester, environment, title, description, status, created_at, updated_at, decided_by)
         VALUES
            ('00000000-0000-0000-0000-000000000001', 'ci', 'dev', 't', 'd', 'SUCCEEDED', now(), now(), NULL),
            ('00000000-0000-0000-0000-000000000002', 'ci', 'dev', 't', 'd', 'FAILED', now(), now(), 'alice'),
            ('00000000-0000-0000-0000-000000000003', 'ci', 'dev', 't', 'd', 'INDETERMINATE', now(), now(), NULL),
            ('00000000-0000-0000-0000-000000000004', 'ci', 'dev', 't', 'd', 'PENDING', now(), now(), NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    for file in &files[split..] {
        apply(&pool, file).await;
    }
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT status, execution_status FROM approval_requests ORDER BY request_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let rows: Vec<(&str, Option<&str>)> = rows
        .iter()
        .map(|(status, execution)| (status.as_str(), execution.as_deref()))
        .collect();
    assert_eq!(
        rows,
        [
            ("AUTO_APPROVED", Some("SUCCEEDED")),
            ("APPROVED", Some("FAILED")),
            ("AUTO_APPROVED", Some("INDETERMINATE")),
            ("PENDING", None),
        ]
    );
    // The table refuses the old shape and an execution without an approval.
    for statement in [
        "UPDATE approval_requests SET status = 'SUCCEEDED' WHERE status = 'PENDING'",
        "UPDATE approval_requests SET execution_status = 'EXECUTING' WHERE status = 'PENDING'",
    ] {
        let error = sqlx::query(statement).execute(&pool).await.unwrap_err();
        assert!(
            error.to_string().contains("check constraint"),
            "`{statement}`: {error}"
        );
    }
    drop_database(admin, database, pool).await;
}

/// A rollback starts the previous version's `migrate` service on the schema the newer one
/// left: it meets a migration it does not know, and must still succeed, or `setup-nats` and
/// every worker after it never start (README "Roll back").
#[tokio::test]
async fn the_previous_version_migrates_a_database_a_newer_version_migrated() {
    let (admin, database, pool) = fresh_database().await;
    wingman::store::migrate(&pool).await.unwrap();
    // A migration only a newer version has, recorded as sqlx records it.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99991231000000, 'added by a newer version', true, '\\x00', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    wingman::store::migrate(&pool)
        .await
        .expect("migrate beside a newer version's migration");
    drop_database(admin, database, pool).await;
}

/// The recorder's one-statement batch exists once, with the argument list the recorder
/// calls: the overload kept for the version before (migration 20261206000001) is dropped, so
/// no second entry point into the chain's append remains to be granted or forgotten.
#[tokio::test]
async fn the_recorders_batch_function_has_one_signature_left() {
    let (admin, database, pool) = fresh_database().await;
    wingman::store::migrate(&pool).await.unwrap();
    let signatures: Vec<i16> = sqlx::query_scalar(
        "SELECT pronargs FROM pg_proc WHERE proname = 'wingman_record_received' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(signatures, vec![35], "the function's argument counts");
    drop_database(admin, database, pool).await;
}

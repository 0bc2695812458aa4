//! The fault-injection suite: under a steady load, SIGKILL each worker in turn (and restart
//! it), restart nats-server, stop PostgreSQL for 20 s; then every submitted request must reach
//! its final state exactly once and the audit chain must verify. The load is open-loop at
//! `--faults-rate` requests per second (1 000 by default), on a nats-server of its own (run as
//! the compose file runs it, [`crate::nats::AS_COMPOSE_RUNS_IT`]), which it kills and starts
//! again on the same store.

use std::sync::{Arc, Mutex};

use std::process::Command;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use serde_json::Value;
use uuid::Uuid;

use crate::WORKERS;
use crate::args::Options;
use crate::bodies::{instruction, restart};
use crate::containers::{remove_container, start_container};
use crate::harness::Pipeline;

const PORT: u16 = 14_222;

fn postgres(action: &str) -> anyhow::Result<()> {
    let version = std::fs::read_dir("/etc/postgresql")?
        .filter_map(|entry| {
            entry
                .ok()
                .map(|e| e.file_name().to_string_lossy().to_string())
        })
        .max()
        .ok_or_else(|| anyhow::anyhow!("no PostgreSQL cluster in /etc/postgresql"))?;
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", action])
        .status()?;
    anyhow::ensure!(status.success(), "pg_ctlcluster {action} failed");
    Ok(())
}

/// A publisher that retries until JetStream acks (same id: a retry is a duplicate, dropped).
async fn submit(js: &jetstream::Context, subject: &str, id: Uuid, body: &Value) {
    loop {
        let sent = js
            .send_publish(
                subject.to_string(),
                PublishMessage::build()
                    .payload(body.to_string().into())
                    .message_id(id.to_string()),
            )
            .await;
        if let Ok(ack) = sent
            && tokio::time::timeout(Duration::from_secs(5), ack.into_future())
                .await
                .is_ok_and(|ack| ack.is_ok())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A request that never became final: id, decision, execution, command, its audit trail.
type NotFinal = (uuid::Uuid, String, Option<String>, Option<String>, String);

pub async fn run(options: &Options) -> anyhow::Result<()> {
    let quick = options.quick;
    let rate = f64::from(options.faults_rate);
    // Restarts on the real engine stay near the old load's 2.5/s whatever the rate: one in
    // `every` requests, so the gateway's one-job-at-a-time queue does not grow without end.
    let every = (options.faults_rate / 25 * 10).max(10) as u64;
    println!(
        "fault suite under {}/s of load, one request in {every} a restart on the real engine",
        options.faults_rate
    );
    let store = crate::nats::store()?;
    let mut nats = crate::nats::spawn(PORT, store.path())?;
    crate::nats::wait_port(PORT).await?;
    let url = format!("nats://127.0.0.1:{PORT}");
    let mut run = Pipeline::start(&url).await?;
    let container = start_container("wf")?;

    let submitted: Arc<Mutex<Vec<(Uuid, bool)>>> = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let load = {
        let (js, subject, submitted, stop, container) = (
            run.js.clone(),
            format!("{}.requests.submitted.bench", run.prefix),
            Arc::clone(&submitted),
            stop.clone(),
            container.clone(),
        );
        // Open loop: request `index` is due at `start + index / rate`; each is its own task
        // that retries until JetStream acks it, so an outage does not slow the schedule.
        tokio::spawn(async move {
            let start = Instant::now();
            let mut pending = tokio::task::JoinSet::new();
            let mut index = 0u64;
            while !stop.is_cancelled() {
                let due = start + Duration::from_secs_f64(index as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let id = Uuid::now_v7();
                let executing = index.is_multiple_of(every);
                let body = if executing {
                    restart(id, "faults", &container)
                } else {
                    instruction(id, "faults", "dev", &container)
                };
                let (js, subject, submitted) =
                    (js.clone(), subject.clone(), Arc::clone(&submitted));
                pending.spawn(async move {
                    submit(&js, &subject, id, &body).await;
                    submitted.lock().unwrap().push((id, executing));
                });
                while pending.try_join_next().is_some() {}
                index += 1;
            }
            while pending.join_next().await.is_some() {}
        })
    };
    let pause = |seconds: u64| tokio::time::sleep(Duration::from_secs(seconds));
    pause(3).await;
    for name in WORKERS {
        println!("fault: SIGKILL wingman-{name}, then start it again");
        run.kill_and_restart(name)?;
        pause(if quick { 1 } else { 3 }).await;
        run.revive()?;
    }
    println!("fault: restart nats-server");
    nats.kill()?;
    nats.wait()?;
    pause(1).await;
    nats = crate::nats::spawn(PORT, store.path())?;
    crate::nats::wait_port(PORT).await?;
    for _ in 0..5 {
        pause(1).await;
        run.revive()?;
    }
    println!("fault: stop PostgreSQL for 20 s");
    postgres("stop")?;
    for _ in 0..20 {
        pause(1).await;
        run.revive()?;
    }
    postgres("start")?;
    pause(3).await;
    stop.cancel();
    load.await?;
    let submitted = submitted.lock().unwrap().clone();
    let executing = submitted.iter().filter(|(_, executing)| *executing).count();
    println!(
        "load stopped: {} submitted ({executing} executing); waiting for every request to settle",
        submitted.len()
    );

    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut final_count, mut rows) = (0i64, 0i64);
    while Instant::now() < deadline {
        run.revive()?;
        if let Ok((f, r)) = sqlx::query_as::<_, (i64, i64)>(
            "SELECT count(*) FILTER (WHERE (command IS NULL AND status <> 'RECEIVED')
                                      OR execution_status IN ('SUCCEEDED', 'FAILED', 'INDETERMINATE')),
                    count(*) FROM approval_requests",
        )
        .fetch_one(&run.pool)
        .await
        {
            (final_count, rows) = (f, r);
            if final_count as usize == submitted.len() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let duplicates: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT request_id, kind FROM audit_events
           WHERE kind IN ('request_received', 'request_validated', 'token_minted', 'execution_started', 'execution_finished')
           GROUP BY 1, 2 HAVING count(*) > 1) AS twice",
    )
    .fetch_one(&run.pool)
    .await?;
    let double_executions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT request_id FROM executions GROUP BY 1 HAVING count(*) > 1) AS twice",
    )
    .fetch_one(&run.pool)
    .await?;
    let indeterminate: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM approval_requests WHERE execution_status = 'INDETERMINATE'",
    )
    .fetch_one(&run.pool)
    .await?;
    let chain = wingman::store::chain::verify(&run.pool).await?;
    let lost = submitted.len() as i64 - rows;
    // What a request that never became final went through, to find where it stopped.
    let stuck: Vec<NotFinal> = sqlx::query_as(
        "SELECT r.request_id, r.status, r.execution_status, r.command,
                coalesce(string_agg(a.stage || ':' || a.kind, ' → ' ORDER BY a.seq), '')
           FROM approval_requests r LEFT JOIN audit_events a ON a.request_id = r.request_id
          WHERE NOT ((r.command IS NULL AND r.status <> 'RECEIVED')
                     OR r.execution_status IN ('SUCCEEDED', 'FAILED', 'INDETERMINATE'))
          GROUP BY 1, 2, 3, 4 LIMIT 20",
    )
    .fetch_all(&run.pool)
    .await
    .unwrap_or_else(|error| {
        println!("could not list the requests that are not final: {error}");
        Vec::new()
    });
    for (request_id, status, execution, command, trail) in &stuck {
        println!(
            "not final: {request_id} {status} {} {} — {trail}",
            execution.as_deref().unwrap_or("-"),
            command.as_deref().unwrap_or("(no command)")
        );
    }
    println!(
        "fault suite: submitted {}, final {final_count}, lost {lost}, duplicates {duplicates}, double executions {double_executions}, \
         indeterminate {indeterminate}, audit chain {} ({} rows)",
        submitted.len(),
        match &chain.broken {
            None => "verifies".to_string(),
            Some((seq, problem)) => format!("BROKEN at {seq}: {problem}"),
        },
        chain.rows,
    );
    remove_container(&container);
    run.stop().await;
    nats.kill()?;
    let _ = nats.wait();
    anyhow::ensure!(
        lost == 0
            && duplicates == 0
            && double_executions == 0
            && chain.broken.is_none()
            && final_count as usize == submitted.len(),
        "the fault suite found a problem (see the line above)"
    );
    println!("{} passed, 0 failed", submitted.len());
    Ok(())
}

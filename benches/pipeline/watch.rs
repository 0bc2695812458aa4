//! When each request became visible, durable and executed, as this process saw it.
//!
//! - **Visible**: its decision's status event (AUTO_APPROVED, AUTO_REJECTED or PENDING)
//!   arrived on `<prefix>.status.<id>` (a core NATS subscription to `<prefix>.status.>`).
//! - **Executed**: its SUCCEEDED, FAILED or INDETERMINATE status event arrived.
//! - **Durable**: the transaction that wrote its decision into `approval_requests` committed.
//!   Two statement-level triggers, created in the bench's own database only, `pg_notify` the
//!   ids whose `validation_decision` became set, 150 ids per notification; Postgres delivers a
//!   notification only when the transaction commits, so its arrival here is the commit time
//!   (plus a loopback hop), never a timestamp copied from an event. Each notification starts
//!   with the `clock_timestamp()` of the statement that wrote the decision (microseconds since
//!   the epoch, then `;`): the per-request trace ([`crate::trace`]) tells the recorder's work
//!   before that write from the commit after it.
//!   What it costs the measured system: per recorder statement on `approval_requests`, a
//!   transition table of the rows it touched and one query over it; per committed batch, a
//!   few notifications through Postgres' queue to one listening connection. No polling query.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Deserialize;
use tokio::task::JoinHandle;
use uuid::Uuid;
use wingman::events::PublicStatus;
use wingman::status::Status;

use crate::harness::Pipeline;

const CHANNEL: &str = "wb_decided";

const TRIGGERS: &[&str] = &[
    "CREATE OR REPLACE FUNCTION wb_notify_decided() RETURNS trigger LANGUAGE plpgsql AS $$
     DECLARE chunk text;
       written text := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint::text;
     BEGIN
       IF TG_OP = 'INSERT' THEN
         FOR chunk IN SELECT string_agg(id, ',') FROM (
             SELECT n.request_id::text AS id, (row_number() OVER ()) / 150 AS part
             FROM wb_new n WHERE n.validation_decision IS NOT NULL) AS ids GROUP BY part
         LOOP PERFORM pg_notify('wb_decided', written || ';' || chunk); END LOOP;
       ELSE
         FOR chunk IN SELECT string_agg(id, ',') FROM (
             SELECT n.request_id::text AS id, (row_number() OVER ()) / 150 AS part
             FROM wb_new n JOIN wb_old o USING (request_id)
             WHERE n.validation_decision IS NOT NULL AND o.validation_decision IS NULL) AS ids
           GROUP BY part
         LOOP PERFORM pg_notify('wb_decided', written || ';' || chunk); END LOOP;
       END IF;
       RETURN NULL;
     END $$",
    "CREATE TRIGGER wb_decided_on_insert AFTER INSERT ON approval_requests
     REFERENCING NEW TABLE AS wb_new FOR EACH STATEMENT EXECUTE FUNCTION wb_notify_decided()",
    "CREATE TRIGGER wb_decided_on_update AFTER UPDATE ON approval_requests
     REFERENCING OLD TABLE AS wb_old NEW TABLE AS wb_new
     FOR EACH STATEMENT EXECUTE FUNCTION wb_notify_decided()",
];

/// What was seen of one request (each the first time it was seen).
#[derive(Debug, Clone, Copy, Default)]
pub struct Marks {
    pub visible: Option<Instant>,
    pub durable: Option<Instant>,
    /// When the recorder's statement wrote the decision (Postgres' clock), before its commit.
    pub written: Option<chrono::DateTime<chrono::Utc>>,
    pub executed: Option<Instant>,
}

pub struct Watch {
    marks: Arc<Mutex<HashMap<Uuid, Marks>>>,
    tasks: Vec<JoinHandle<()>>,
}

/// The two fields of a status event the watch needs (the word decoded without a copy).
#[derive(Deserialize)]
struct StatusEvent {
    request_id: Uuid,
    status: PublicStatus,
}

impl Watch {
    /// Creates the triggers (after any preload, so its rows notify nobody), listens, and
    /// subscribes to the status events.
    pub async fn start(run: &Pipeline) -> anyhow::Result<Self> {
        for statement in TRIGGERS {
            sqlx::query(*statement).execute(&run.pool).await?;
        }
        let marks: Arc<Mutex<HashMap<Uuid, Marks>>> = Arc::default();
        let mut listener = sqlx::postgres::PgListener::connect(&run.database_url()).await?;
        listener.listen(CHANNEL).await?;
        let durable = {
            let marks = Arc::clone(&marks);
            tokio::spawn(async move {
                while let Ok(notification) = listener.recv().await {
                    let now = Instant::now();
                    let (written, ids) = notification
                        .payload()
                        .split_once(';')
                        .unwrap_or(("", notification.payload()));
                    let written = written
                        .parse::<i64>()
                        .ok()
                        .and_then(chrono::DateTime::from_timestamp_micros);
                    let mut marks = marks.lock().expect("marks");
                    for id in ids.split(',') {
                        if let Ok(id) = id.parse::<Uuid>() {
                            let mark = marks.entry(id).or_default();
                            if mark.durable.is_none() {
                                mark.durable = Some(now);
                                mark.written = written;
                            }
                        }
                    }
                }
            })
        };
        let mut status = run
            .client
            .subscribe(format!("{}.status.>", run.prefix))
            .await?;
        let visible = {
            let marks = Arc::clone(&marks);
            tokio::spawn(async move {
                while let Some(message) = status.next().await {
                    let now = Instant::now();
                    let Ok(event) = serde_json::from_slice::<StatusEvent>(&message.payload) else {
                        continue;
                    };
                    let mut marks = marks.lock().expect("marks");
                    let entry = marks.entry(event.request_id).or_default();
                    match event.status {
                        PublicStatus::Request(
                            Status::AutoApproved | Status::AutoRejected | Status::Pending,
                        ) => {
                            entry.visible.get_or_insert(now);
                        }
                        PublicStatus::Request(
                            Status::Succeeded | Status::Failed | Status::Indeterminate,
                        )
                        | PublicStatus::Refused => {
                            entry.executed.get_or_insert(now);
                        }
                        _ => {}
                    }
                }
            })
        };
        Ok(Self {
            marks,
            tasks: vec![durable, visible],
        })
    }

    /// Waits until every id is durable (and visible), or `patience` passed without progress.
    pub async fn wait_durable(&self, ids: &[Uuid], patience: Duration) {
        let mut waiting: Vec<Uuid> = ids.to_vec();
        let mut progressed = Instant::now();
        while !waiting.is_empty() && progressed.elapsed() < patience {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let before = waiting.len();
            {
                let marks = self.marks.lock().expect("marks");
                waiting.retain(|id| {
                    marks
                        .get(id)
                        .is_none_or(|mark| mark.durable.is_none() || mark.visible.is_none())
                });
            }
            if waiting.len() < before {
                progressed = Instant::now();
            }
        }
    }

    /// Waits until every id has its execution outcome, or `patience` passed without progress.
    pub async fn wait_executed(&self, ids: &[Uuid], patience: Duration) {
        let mut waiting: Vec<Uuid> = ids.to_vec();
        let mut progressed = Instant::now();
        while !waiting.is_empty() && progressed.elapsed() < patience {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let before = waiting.len();
            {
                let marks = self.marks.lock().expect("marks");
                waiting.retain(|id| marks.get(id).is_none_or(|mark| mark.executed.is_none()));
            }
            if waiting.len() < before {
                progressed = Instant::now();
            }
        }
    }

    /// The marks of these ids, forgotten here (so a long soak does not grow this process).
    pub fn take(&self, ids: &[Uuid]) -> Vec<Marks> {
        let mut marks = self.marks.lock().expect("marks");
        ids.iter()
            .map(|id| marks.remove(id).unwrap_or_default())
            .collect()
    }

    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }

    /// Stops watching and drops the triggers, so a preload that follows notifies nobody and
    /// a watch started after it creates them again.
    pub async fn finish(self, run: &Pipeline) -> anyhow::Result<()> {
        self.stop();
        for statement in [
            "DROP TRIGGER IF EXISTS wb_decided_on_insert ON approval_requests",
            "DROP TRIGGER IF EXISTS wb_decided_on_update ON approval_requests",
        ] {
            sqlx::query(statement).execute(&run.pool).await?;
        }
        Ok(())
    }
}

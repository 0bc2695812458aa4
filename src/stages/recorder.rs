//! Recorder: the only writer to Postgres.
//!
//! 1. Admits an audit event only from the stage its subject proves and that owns its kind
//!    (`stages::admission`), appends it to the hash-chained `audit_events` and projects it
//!    into `approval_requests` (the decision in `status`, the execution's state in
//!    `execution_status`) and `executions`.
//! 2. Consumes `wingman.audit.>`; publishes nothing but the dead letters of forged events
//!    (`wingman.dlq.recorder`, audited as its own `message_rejected`).
//! 3. Its effect is a committed transaction per batch, idempotent on (stage, `event_id`): a
//!    redelivered or republished event is recorded once, and a planted event with another
//!    stage's id is a row of its own, never a reason to drop the real one.
//! 4. It never records a forged event, never moves a request against the state machine, and
//!    never updates or deletes an audit row.

use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, PgPool, Postgres};
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::bus::consume::{self, Delivery, Handler, LoopOptions, Outcome, StageError, Turn};
use crate::bus::subjects::Subjects;
use crate::envelope::Envelope;
use crate::events::payload::{ExecutionEnd, ExecutionStarted, Payload as _, RequestReceived};
use crate::events::{AuditKind, AuditRecord, Stage};
use crate::metrics;
use crate::settings::RecorderSettings;
use crate::stages::admission;
use crate::status::Status;
use crate::store::{audit, executions, requests};

/// How long the recorder waits to fill a batch: none. With one batch in flight, what arrives
/// while a batch commits is the next batch, so batches grow with the load by themselves; a
/// wait would only add itself to every request's durable latency when the load is light.
pub const RECORDER_LINGER: std::time::Duration = std::time::Duration::ZERO;

pub struct RecorderDeps {
    /// The database the recorder alone writes.
    pub pool: PgPool,
}

impl RecorderDeps {
    /// The recorder on `pool`; with `settings.migrate`, the migrations are applied first.
    ///
    /// # Errors
    /// When a migration fails.
    pub async fn open(pool: PgPool, settings: &RecorderSettings) -> anyhow::Result<Self> {
        if settings.migrate {
            crate::store::migrate(&pool).await?;
        }
        Ok(Self { pool })
    }
}

/// The recorder as the consume loop runs it: its deps and the subjects it reads the proven
/// stage from.
struct Recorder {
    pool: PgPool,
    kept: Kept,
    subjects: Subjects,
    known: KnownHead,
}

impl Recorder {
    /// Decodes an audit message and admits it with the records it carries, or refuses it for
    /// good (dead letter, audit, metric). The refusal names no request: a forged event must
    /// not reach the status of the request it targets; its reason carries the id it claimed.
    fn admitted(&self, delivery: &Delivery) -> Result<Vec<Envelope<AuditRecord>>, StageError> {
        let event = delivery.envelope::<AuditRecord>()?;
        let source = self.subjects.audit_source(&delivery.subject);
        admission::admit(source, &event.body).map_err(|forgery| {
            StageError::permanent(
                forgery.code(),
                format!(
                    "forged audit event refused: {forgery} (subject {}, event {}, request {})",
                    delivery.subject, event.event_id, event.request_id
                ),
                None,
            )
        })?;
        Ok(event.into_records())
    }
}

impl Handler for Recorder {
    const STAGE: Stage = Stage::Recorder;

    async fn handle(&self, delivery: &Delivery) -> Result<Outcome, StageError> {
        let events = self.admitted(delivery)?;
        record_batch(
            &self.pool,
            &self.kept,
            &events,
            &mut Turn::first(),
            &self.known,
        )
        .await?;
        Ok(Outcome::Done)
    }

    async fn handle_batch(&self, deliveries: &[Delivery]) -> Vec<Result<Outcome, StageError>> {
        self.handle_batch_in_turn(deliveries, Turn::first()).await
    }

    /// One transaction for the whole batch, taking the chain lock after the batch before it
    /// took it (so batches append in stream order while one decodes as the other commits); if
    /// it fails, each message is retried alone so one early event (or a poison one) does not
    /// hold back the others.
    async fn handle_batch_in_turn(
        &self,
        deliveries: &[Delivery],
        mut turn: Turn,
    ) -> Vec<Result<Outcome, StageError>> {
        let mut decoded: Vec<Result<Vec<Envelope<AuditRecord>>, StageError>> = deliveries
            .iter()
            .map(|delivery| self.admitted(delivery))
            .collect();
        let counts: Vec<usize> = decoded
            .iter()
            .map(|events| events.as_ref().map_or(0, Vec::len))
            .collect();
        if decoded.iter().filter(|events| events.is_ok()).count() > 1 {
            let events: Vec<Envelope<AuditRecord>> = decoded
                .iter_mut()
                .filter_map(|events| events.as_mut().ok())
                .flat_map(std::mem::take)
                .collect();
            if record_batch(&self.pool, &self.kept, &events, &mut turn, &self.known)
                .await
                .is_ok()
            {
                return decoded
                    .into_iter()
                    .map(|events| events.map(|_| Outcome::Done))
                    .collect();
            }
            // Put each message's records back to retry them alone, in the same order.
            let mut events = events.into_iter();
            for (slot, count) in decoded.iter_mut().zip(counts) {
                if let Ok(records) = slot {
                    *records = events.by_ref().take(count).collect();
                }
            }
        }
        let mut results = Vec::with_capacity(decoded.len());
        for events in decoded {
            results.push(match events {
                Ok(events) => record_batch(&self.pool, &self.kept, &events, &mut turn, &self.known)
                    .await
                    .map(|()| Outcome::Done),
                Err(error) => Err(error),
            });
        }
        results
    }
}

/// The durable consumers this stage reads (its readiness checks them).
pub const CONSUMERS: &[&str] = &["recorder"];

pub async fn run(
    deps: RecorderDeps,
    bus: Bus,
    options: LoopOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let consumer = bus.consumer(CONSUMERS[0]).await?;
    // Two batches at a time, appended in stream order (a one-statement batch names the head
    // the one before it leaves, a transaction starts once the one before it settled: `Turn`),
    // so a request's `request_received` always comes before its moves, and one batch decodes
    // and sends while the other commits.
    let options = LoopOptions {
        in_flight: 2,
        linger: options.linger.max(RECORDER_LINGER),
        ..options
    };
    let recorder = Recorder {
        pool: deps.pool,
        kept: Kept::default(),
        subjects: bus.subjects.clone(),
        known: KnownHead::default(),
    };
    consume::run(Arc::new(recorder), bus, consumer, options, shutdown).await
}

/// The chain's head as this recorder's last append left it, or as the one-statement batch in
/// flight will leave it, or `None` when not known (at start, after a failed batch). Set before
/// the commit, so the batch after it need not read it; an append checks it in its insert
/// (`audit::append`, `wingman_record_received`), so a head that is wrong (the commit failed,
/// another recorder appended) costs a read, never a broken chain.
#[derive(Default)]
struct KnownHead(std::sync::Mutex<Option<audit::Head>>);

impl KnownHead {
    fn get(&self) -> Option<audit::Head> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, head: Option<audit::Head>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = head;
    }
}

/// The recorder's connections, kept between its batches rather than given back to the pool.
/// sqlx tests a pooled connection with a round trip to Postgres (`Sync`, `ReadyForQuery`)
/// each time the pool hands it out and again each time it comes back, so a batch through
/// the pool cost three round trips where its statement is one; at 500 requests/s a batch is
/// a request, and the first of those trips was in line before every decision's commit.
/// A connection is kept only after a batch that succeeded on it; after an error it goes back
/// to the pool, whose checks close it if it is broken (a restarted Postgres).
#[derive(Default)]
struct Kept(std::sync::Mutex<Vec<PoolConnection<Postgres>>>);

/// As many as the recorder has batches in flight ([`run`]).
const KEPT_CONNECTIONS: usize = 2;

impl Kept {
    async fn take(&self, pool: &PgPool) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        let kept = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match kept {
            Some(connection) => Ok(connection),
            None => pool.acquire().await,
        }
    }

    fn keep(&self, connection: PoolConnection<Postgres>) {
        let mut kept = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() < KEPT_CONNECTIONS {
            kept.push(connection);
        }
    }
}

/// Records the events in one transaction: appended on the assumption that they are all new,
/// and if one is recorded already (a redelivery), appended again without the ones recorded.
async fn record_batch(
    pool: &PgPool,
    kept: &Kept,
    events: &[Envelope<AuditRecord>],
    turn: &mut Turn,
    known: &KnownHead,
) -> Result<(), StageError> {
    let mut connection = kept.take(pool).await?;
    let recorded = std::collections::HashSet::new();
    let result = match record_once(&mut connection, events, &recorded, turn, known).await {
        Err(Attempt::RecordedAlready) => match audit::recorded(&mut connection, events).await {
            Ok(recorded) => record_once(&mut connection, events, &recorded, turn, known)
                .await
                .map_err(Attempt::into_stage_error),
            Err(error) => Err(error.into()),
        },
        result => result.map_err(Attempt::into_stage_error),
    };
    turn.settled();
    if events.len() > SHRINK_AFTER_EVENTS {
        // sqlx keeps a connection's buffers at the largest message it carried, for the
        // connection's life; the pool hands its connections out in turn, so every backlog
        // (large batches after a stall) left one more of them holding a large batch's
        // buffers: the recorder's RSS stepped up at each stall of a 30-minute soak.
        connection.shrink_buffers();
    }
    if result.is_ok() {
        kept.keep(connection);
    }
    result
}

/// A batch above this many events has its connection's buffers shrunk after it: at full load
/// a batch holds 6 events on average, so only a backlog's batches pay the reallocation.
const SHRINK_AFTER_EVENTS: usize = 64;

/// Why one transaction did not record its batch.
enum Attempt {
    /// An event (not in the recorded set given) is recorded already.
    RecordedAlready,
    Failed(StageError),
}

impl Attempt {
    fn into_stage_error(self) -> StageError {
        match self {
            Self::RecordedAlready => StageError::Transient(anyhow::anyhow!(
                "an event of the batch is recorded already, though the lookup did not find it"
            )),
            Self::Failed(error) => error,
        }
    }
}

impl From<StageError> for Attempt {
    fn from(error: StageError) -> Self {
        Self::Failed(error)
    }
}

impl From<sqlx::Error> for Attempt {
    fn from(error: sqlx::Error) -> Self {
        if audit::is_recorded_already(&error) {
            Self::RecordedAlready
        } else {
            Self::Failed(error.into())
        }
    }
}

/// The batch in one statement when it is the common kind ([`record_in_one_trip`]); else one
/// transaction, once the batch before it settled: the chain's lock, the append after the
/// known head (or the head read, when it is not known or was wrong), the request tables, the
/// commit.
async fn record_once(
    connection: &mut PgConnection,
    events: &[Envelope<AuditRecord>],
    recorded: &std::collections::HashSet<(uuid::Uuid, String)>,
    turn: &mut Turn,
    known: &KnownHead,
) -> Result<(), Attempt> {
    turn.wait_previous().await;
    let fresh = audit::fresh(events, recorded);
    let projection = Projection::of(&fresh_events(events, &fresh))?;
    if recorded.is_empty()
        && projection.moves.is_empty()
        && record_in_one_trip(
            connection,
            events,
            &fresh,
            &projection.received,
            turn,
            known,
        )
        .await?
    {
        return Ok(());
    }
    // Once the batch before it settled: a one-statement batch still in flight holds no lock
    // yet, and this transaction must not take it first.
    turn.wait_previous_settled().await;
    let locked = audit::begin_locked(connection).await;
    turn.reached();
    let mut transaction = locked?;
    let mut remembered = known.get();
    known.set(None);
    let head = loop {
        let read = remembered.is_none();
        let head = match remembered.take() {
            Some(head) => head,
            None => audit::head(&mut transaction).await?,
        };
        match audit::append(&mut transaction, events, &fresh, &head).await? {
            audit::Appended::Done { head } => break head,
            audit::Appended::NotAtHead if read => {
                return Err(Attempt::Failed(StageError::Transient(anyhow::anyhow!(
                    "the audit chain's head moved while this recorder held its lock"
                ))));
            }
            audit::Appended::NotAtHead => {}
        }
    };
    projection.apply(&mut transaction).await?;
    // The next batch takes the lock once this commit ends it; it finds the head here.
    known.set(Some(head));
    if let Err(error) = transaction.commit().await {
        known.set(None);
        return Err(error.into());
    }
    count(events, &fresh);
    Ok(())
}

/// The common batch in one round trip (`audit::Append::with_received`): when its new events
/// are requests received (each with intake's decision, which travels in the same message) and
/// nothing else moves (the caller asks its [`Projection`]: `received` is all it does), and this
/// recorder knows the chain's head (from its last append, or the
/// head the batch before this one will leave). The next batch may send its own as soon as this
/// one's rows are known: each statement waits for the chain's lock and appends only after the
/// head it names, so the batches append in turn whichever reaches Postgres first. One that
/// found the chain not yet where the batch before leaves it waits for that batch to settle and
/// tries once more. `Ok(false)` when the batch is not the common kind, or the head is still
/// another (nothing written): the caller records it in a transaction that takes the lock and
/// reads the head.
async fn record_in_one_trip(
    connection: &mut PgConnection,
    events: &[Envelope<AuditRecord>],
    fresh: &[bool],
    received: &[requests::Received],
    turn: &mut Turn,
    known: &KnownHead,
) -> Result<bool, Attempt> {
    let Some(head) = known.get() else {
        return Ok(false);
    };
    let append = audit::Append::after(events, fresh, &head);
    known.set(Some(append.head_after().clone()));
    turn.reached();
    let mut waited = false;
    loop {
        match append.with_received(connection, received).await {
            Ok(audit::Appended::Done { .. }) => {
                turn.settled();
                count(events, fresh);
                return Ok(true);
            }
            Ok(audit::Appended::NotAtHead) if !waited => {
                turn.wait_previous_settled().await;
                waited = true;
            }
            Ok(audit::Appended::NotAtHead) => {
                known.set(None);
                return Ok(false);
            }
            Err(error) => {
                known.set(None);
                return Err(error.into());
            }
        }
    }
}

fn count(events: &[Envelope<AuditRecord>], fresh: &[bool]) {
    for (event, is_new) in events.iter().zip(fresh) {
        if *is_new {
            metrics::audit_recorded(event.body.kind);
        }
    }
}

/// The events the append found new.
fn fresh_events<'a>(
    events: &'a [Envelope<AuditRecord>],
    fresh: &[bool],
) -> Vec<&'a Envelope<AuditRecord>> {
    events
        .iter()
        .zip(fresh)
        .filter_map(|(event, is_new)| is_new.then_some(event))
        .collect()
}

/// What new audit events do to the request tables: the received requests — each with its
/// decision when intake's validation record came in the same batch (it travels in the same
/// message), so the common request is one INSERT and no UPDATE — and the other status
/// moves, in order.
struct Projection<'a> {
    received: Vec<requests::Received>,
    moves: Vec<(&'a Envelope<AuditRecord>, Status)>,
}

impl<'a> Projection<'a> {
    fn of(events: &[&'a Envelope<AuditRecord>]) -> Result<Self, StageError> {
        let mut received: Vec<requests::Received> = Vec::new();
        let mut waiting: std::collections::HashMap<crate::envelope::RequestId, usize> =
            std::collections::HashMap::new();
        let mut moves: Vec<(&Envelope<AuditRecord>, Status)> = Vec::new();
        for &event in events {
            if event.body.kind == AuditKind::RequestReceived {
                let RequestReceived { request } = RequestReceived::from_data(&event.body.data)
                    .map_err(|error| {
                        StageError::permanent(
                            "undecodable",
                            format!("request_received without a valid request: {error}"),
                            Some(event.request_id),
                        )
                    })?;
                waiting.insert(event.request_id, received.len());
                received.push(requests::Received {
                    request,
                    at: event.at,
                    first_move: None,
                });
            } else if let Some(status) = event.body.status {
                // The decision that follows a receipt in this batch goes into the insert.
                if event.body.kind == AuditKind::RequestValidated
                    && status.can_follow(Status::Received)
                    && let Some(index) = waiting.remove(&event.request_id)
                {
                    received[index].first_move = Some(move_of(event, status));
                    continue;
                }
                waiting.remove(&event.request_id);
                moves.push((event, status));
            }
        }
        Ok(Self { received, moves })
    }

    /// Applies it, a few statements per batch: the received requests in one insert, then the
    /// other status moves in rounds (the first move of each request, then the second, …) so
    /// each request's moves keep their order.
    async fn apply(self, connection: &mut PgConnection) -> Result<(), StageError> {
        let Self {
            received,
            mut moves,
        } = self;
        requests::insert_received(connection, &received).await?;
        if !moves.is_empty() {
            // The appends and the insert above ran on generic plans; the moves join the
            // requests table and are planned with their parameters
            // (`audit::plan_with_parameters`).
            audit::plan_with_parameters(connection).await?;
        }
        while !moves.is_empty() {
            let mut seen = std::collections::HashSet::new();
            let (round, later): (Vec<_>, Vec<_>) = moves
                .into_iter()
                .partition(|(event, _)| seen.insert(event.request_id));
            moves = later;
            apply_round(connection, &round, &moves).await?;
        }
        Ok(())
    }
}

/// The move an event makes. Data that does not read as its kind's payload (a key of another
/// type) still moves the status, with no fields: as when a key that did not read was skipped.
fn move_of(event: &Envelope<AuditRecord>, status: Status) -> requests::Move {
    let fields = requests::StatusFields::of(event.body.kind, &event.body.data)
        .unwrap_or_else(|error| {
            tracing::warn!(%error, request_id = %event.request_id, kind = event.body.kind.as_str(), "audit data not as its kind writes it; status moved without its fields");
            requests::StatusFields::default()
        });
    requests::Move {
        request_id: event.request_id.as_uuid(),
        status,
        at: event.at,
        fields,
        event_id: Some(event.event_id),
    }
}

/// One move per request: the decisions move `status`, the executions move `execution_status`
/// (one statement each), then the `executions` rows they record. `pending` are the moves of
/// later rounds.
async fn apply_round(
    connection: &mut PgConnection,
    round: &[(&Envelope<AuditRecord>, Status)],
    pending: &[(&Envelope<AuditRecord>, Status)],
) -> Result<(), StageError> {
    let (executions_round, decisions_round): (Vec<_>, Vec<_>) = round
        .iter()
        .copied()
        .partition(|(_, status)| status.is_execution());
    let moves_of = |part: &[(&Envelope<AuditRecord>, Status)]| -> Vec<requests::Move> {
        part.iter()
            .map(|(event, status)| move_of(event, *status))
            .collect()
    };
    let mut moved = requests::move_statuses(connection, &moves_of(&decisions_round)).await?;
    moved.extend(requests::move_executions(connection, &moves_of(&executions_round)).await?);
    let mut started_now = Vec::new();
    let mut to_run_now = Vec::new();
    for ((event, status), moved) in decisions_round.iter().chain(&executions_round).zip(moved) {
        let record = &event.body;
        match moved {
            requests::Moved::Applied if Status::Executing.can_follow(*status) => {
                to_run_now.push(Decision {
                    request_id: event.request_id.as_uuid(),
                    at: crate::envelope::truncate_to_micros(event.at),
                });
            }
            requests::Moved::Applied => match record.kind {
                AuditKind::ExecutionStarted => match ExecutionStarted::from_data(&record.data) {
                    Ok(started) => {
                        executions::started(
                            connection,
                            event.request_id.as_uuid(),
                            &started,
                            event.at,
                        )
                        .await?;
                        started_now.push(Start {
                            request_id: event.request_id.as_uuid(),
                            token_id: started.token_id,
                            at: crate::envelope::truncate_to_micros(event.at),
                        });
                    }
                    Err(error) => undecodable_execution(event, &error),
                },
                AuditKind::ExecutionFinished => {
                    match ExecutionEnd::from_record(*status, &record.data) {
                        Ok(end) => {
                            executions::finished(connection, *status, &end, event.at).await?;
                        }
                        Err(error) => undecodable_execution(event, &error),
                    }
                }
                _ => {}
            },
            requests::Moved::Refused { current } => {
                tracing::warn!(request_id = %event.request_id, %current, wanted = %status, "status move refused by the state machine; audited only");
            }
            requests::Moved::Missing => {
                return Err(StageError::Transient(anyhow::anyhow!(
                    "request {} is not recorded yet; its received event will come first",
                    event.request_id
                )));
            }
        }
    }
    started_now.extend(apply_early_starts(connection, &to_run_now, pending).await?);
    apply_early_finishes(connection, &started_now, pending).await
}

/// A decision to run (APPROVED, AUTO_APPROVED) applied in this batch: whose, stamped when by
/// the stage that decided.
struct Decision {
    request_id: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
}

/// Applies the starts recorded before their decision to run. The gateway runs a command only
/// on a token minted after the decision, but when the database failed under the batch that
/// held the decision, JetStream redelivers it after the gateway's start: the start found no
/// approval and was audited only, and the request would never show that it ran. So each of
/// `decided` is followed by the earliest start of the request already in the log that the
/// gateway stamped at or after the decision; a start stamped before it is no execution of
/// this decision and stays audited only. Returns the starts applied (their finishes follow in
/// [`apply_early_finishes`]).
async fn apply_early_starts(
    connection: &mut PgConnection,
    decided: &[Decision],
    pending: &[(&Envelope<AuditRecord>, Status)],
) -> Result<Vec<Start>, StageError> {
    if decided.is_empty() {
        return Ok(Vec::new());
    }
    let request_ids: Vec<uuid::Uuid> = decided.iter().map(|decision| decision.request_id).collect();
    let pending: Vec<uuid::Uuid> = pending.iter().map(|(event, _)| event.event_id).collect();
    let rows = audit::gateway_rows(
        connection,
        AuditKind::ExecutionStarted,
        &request_ids,
        &pending,
    )
    .await?;
    let mut firsts: Vec<(requests::Move, ExecutionStarted)> = Vec::new();
    for row in rows {
        let Some(request_id) = row.request_id else {
            continue;
        };
        let after_decision = decided
            .iter()
            .any(|decision| decision.request_id == request_id && row.at >= decision.at);
        let taken = firsts
            .iter()
            .any(|(start, _)| start.request_id == request_id);
        if !after_decision || taken {
            continue;
        }
        let Ok(started) = ExecutionStarted::from_data(&row.data.0) else {
            continue;
        };
        let fields = requests::StatusFields::of(AuditKind::ExecutionStarted, &row.data.0)
            .unwrap_or_default();
        firsts.push((
            requests::Move {
                request_id,
                status: Status::Executing,
                at: row.at,
                fields,
                event_id: Some(row.event_id),
            },
            started,
        ));
    }
    let moves: Vec<requests::Move> = firsts.iter().map(|(start, _)| start.clone()).collect();
    let moved = requests::move_executions(connection, &moves).await?;
    let mut applied = Vec::new();
    for ((start, started), moved) in firsts.iter().zip(moved) {
        if matches!(moved, requests::Moved::Applied) {
            tracing::info!(request_id = %start.request_id, "a start recorded before its approval applied after it");
            executions::started(connection, start.request_id, started, start.at).await?;
            applied.push(Start {
                request_id: start.request_id,
                token_id: started.token_id,
                at: start.at,
            });
        }
    }
    Ok(applied)
}

/// An execution start applied in this batch: whose, of which token, stamped when by the
/// gateway (as the audit row keeps it, to the microsecond).
struct Start {
    request_id: uuid::Uuid,
    token_id: Option<uuid::Uuid>,
    at: chrono::DateTime<chrono::Utc>,
}

/// Applies the finishes recorded before their start. The gateway publishes a start before
/// its finish, but JetStream redelivers a message it was told to retry after the ones behind
/// it: when the database failed under a batch, a start can be recorded after its finish,
/// which found no execution to end and was audited only. Without this the row would stay
/// EXECUTING for good; with it, each of the `started` is followed by the earliest finish of
/// the same token already in the log that the gateway stamped at or after the start (a finish
/// stamped before it is no end of this start: it stays audited only). `pending` are this
/// batch's moves still to come, which apply in their own round.
async fn apply_early_finishes(
    connection: &mut PgConnection,
    started: &[Start],
    pending: &[(&Envelope<AuditRecord>, Status)],
) -> Result<(), StageError> {
    if started.is_empty() {
        return Ok(());
    }
    let request_ids: Vec<uuid::Uuid> = started.iter().map(|start| start.request_id).collect();
    let pending: Vec<uuid::Uuid> = pending.iter().map(|(event, _)| event.event_id).collect();
    let rows = audit::gateway_rows(
        connection,
        AuditKind::ExecutionFinished,
        &request_ids,
        &pending,
    )
    .await?;
    let mut moves = Vec::new();
    let mut ends = Vec::new();
    for row in rows {
        let Some(request_id) = row.request_id else {
            continue;
        };
        let Some(start) = started.iter().find(|start| start.request_id == request_id) else {
            continue;
        };
        let Some(status) = row
            .status
            .as_deref()
            .and_then(|status| status.parse::<Status>().ok())
            .filter(|status| status.can_follow(Status::Executing))
        else {
            continue;
        };
        let Ok(end) = ExecutionEnd::from_record(status, &row.data.0) else {
            continue;
        };
        let taken = moves
            .iter()
            .any(|taken: &requests::Move| taken.request_id == request_id);
        if end.token_id() != start.token_id || row.at < start.at || taken {
            continue;
        }
        moves.push(requests::Move {
            request_id,
            status,
            at: row.at,
            fields: requests::StatusFields::default(),
            event_id: Some(row.event_id),
        });
        ends.push((row.event_id, status, end, row.at));
    }
    let moved = requests::move_executions(connection, &moves).await?;
    for ((event_id, status, end, at), moved) in ends.iter().zip(moved) {
        if matches!(moved, requests::Moved::Applied) {
            tracing::info!(%event_id, %status, "a finish recorded before its start applied after it");
            executions::finished(connection, *status, end, *at).await?;
        }
    }
    Ok(())
}

/// An execution record whose data does not read as the gateway writes it (a key of another
/// type): its status moved, its `executions` row is left as it is, as when a key that did
/// not read was skipped.
fn undecodable_execution(event: &Envelope<AuditRecord>, error: &serde_json::Error) {
    tracing::warn!(%error, request_id = %event.request_id, kind = event.body.kind.as_str(), "execution audit data not as the gateway writes it; executions row not written");
}

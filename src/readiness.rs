//! Readiness: what `GET /health` answers on a worker's ops port (and on the API and gateway
//! HTTP ports). A worker is ready only when every dependency it works with answers *now*:
//! its NATS connection, the JetStream consumers it reads (a JetStream API round trip, so a
//! server whose JetStream is gone is not mistaken for a live one), Postgres for the workers
//! that write or read it, the Docker Engine for the gateway.
//!
//! The answer names each dependency: 200 `{"status": "ok", "nats": "ok", "consumers": "ok"}`
//! when ready, 503 with `"status": "unavailable"` and the missing dependency's reason, e.g.
//! `"nats": "unreachable: disconnected"`, when not. Every check is bounded by
//! [`CHECK_TIMEOUT`], so a hung dependency reads as "not ready" rather than as a hung probe
//! (compose's healthcheck and `depends_on: service_healthy` rely on it).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::bus::Bus;

/// How long one dependency may take to answer before it counts as unreachable.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Check = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// The dependencies a worker checks, added as it opens them (cheap to clone; shared with the
/// ops server, which starts before the stage has opened everything).
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<RwLock<Vec<(&'static str, Check)>>>,
}

/// One answer: whether every dependency answered, and what each said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Dependency → `"ok"` or `"unreachable: <why>"`.
    pub dependencies: BTreeMap<&'static str, String>,
}

impl Report {
    pub fn is_ready(&self) -> bool {
        self.dependencies.values().all(|answer| answer == "ok")
    }

    /// The HTTP answer: 200 when ready, else 503; the body names every dependency.
    pub fn response(&self) -> (StatusCode, Json<Value>) {
        let ready = self.is_ready();
        let mut body = serde_json::Map::new();
        body.insert(
            "status".into(),
            json!(if ready { "ok" } else { "unavailable" }),
        );
        for (name, answer) in &self.dependencies {
            body.insert((*name).into(), json!(answer));
        }
        let code = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (code, Json(Value::Object(body)))
    }
}

impl Readiness {
    /// Adds a dependency: `check` answers `Ok(())` when it is usable now, else why not.
    pub fn add<F, Fut>(&self, name: &'static str, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let check: Check = Arc::new(move || Box::pin(check()));
        self.checks
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((name, check));
    }

    /// The NATS connection is up (what the client knows; the consumers' check goes further).
    pub fn nats(&self, bus: &Bus) {
        let client = bus.client.clone();
        self.add("nats", move || {
            let state = client.connection_state();
            async move {
                match state {
                    async_nats::connection::State::Connected => Ok(()),
                    other => Err(format!("{other}")),
                }
            }
        });
    }

    /// The durable consumers this worker reads exist and JetStream answers for them.
    pub fn consumers(&self, bus: &Bus, durables: &'static [&'static str]) {
        if durables.is_empty() {
            return;
        }
        let bus = bus.clone();
        self.add("consumers", move || {
            let bus = bus.clone();
            async move {
                for durable in durables {
                    bus.consumer(durable)
                        .await
                        .map_err(|error| format!("{error:#}"))?;
                }
                Ok(())
            }
        });
    }

    /// Postgres answers a query on this pool.
    pub fn postgres(&self, pool: &sqlx::PgPool) {
        let pool = pool.clone();
        self.add("postgres", move || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i32>("SELECT 1")
                    .fetch_one(&pool)
                    .await
                    .map(drop)
                    .map_err(|error| error.to_string())
            }
        });
    }

    /// Asks every dependency at once, each bounded by [`CHECK_TIMEOUT`].
    pub async fn check(&self) -> Report {
        let checks: Vec<(&'static str, Check)> = self
            .checks
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let answers =
            futures::future::join_all(checks.into_iter().map(|(name, check)| async move {
                let answer = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                    Ok(Ok(())) => "ok".to_string(),
                    Ok(Err(why)) => format!("unreachable: {why}"),
                    Err(_) => format!(
                        "unreachable: no answer within {} s",
                        CHECK_TIMEOUT.as_secs()
                    ),
                };
                (name, answer)
            }))
            .await;
        Report {
            dependencies: answers.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_missing_dependency_makes_the_worker_unavailable_and_is_named() {
        let readiness = Readiness::default();
        readiness.add("nats", || async { Ok(()) });
        readiness.add("postgres", || async {
            Err("connection refused".to_string())
        });
        let report = readiness.check().await;
        assert!(!report.is_ready());
        let (code, Json(body)) = report.response();
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "unavailable");
        assert_eq!(body["nats"], "ok");
        assert_eq!(body["postgres"], "unreachable: connection refused");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dependency_that_hangs_is_unavailable_after_the_timeout_not_a_hung_probe() {
        let readiness = Readiness::default();
        readiness.add("consumers", std::future::pending);
        let report = readiness.check().await;
        assert_eq!(
            report.dependencies["consumers"],
            format!(
                "unreachable: no answer within {} s",
                CHECK_TIMEOUT.as_secs()
            )
        );
    }

    #[tokio::test]
    async fn every_dependency_answering_is_ready() {
        let readiness = Readiness::default();
        readiness.add("nats", || async { Ok(()) });
        readiness.add("consumers", || async { Ok(()) });
        let (code, Json(body)) = readiness.check().await.response();
        assert_eq!(code, StatusCode::OK);
        assert_eq!(
            body,
            json!({"status": "ok", "nats": "ok", "consumers": "ok"})
        );
    }
}

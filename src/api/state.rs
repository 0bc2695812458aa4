//! What every handler of the API worker may use: the API's routes and the web console's.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::access::guard::Guard;
use crate::bus::Bus;
use crate::policy::Policy;
use crate::settings::ApiSettings;

/// What every handler may use.
#[derive(Clone)]
pub struct ApiState {
    /// Submissions are published to the bus, as any publisher would.
    pub bus: Bus,
    /// Read-only use: the recorder owns the writes.
    pub pool: PgPool,
    pub metrics: PrometheusHandle,
    /// Who we are in audit events.
    pub actor: String,
    /// The API keys and their roles; also audits refused calls.
    pub guard: Guard,
    /// The web console's settings (`crate::console`).
    pub console: crate::config::ConsoleSettings,
    /// The policy the console shows verdicts of; None when it could not be read.
    pub policy: Option<Arc<Policy>>,
}

impl ApiState {
    /// The API worker's state: `bus` to publish on, `pool` to read, `guard` for the keys, and
    /// the console and policy of `settings`. The worker's main and the tests build it here.
    pub fn new(
        bus: Bus,
        pool: PgPool,
        guard: Guard,
        metrics: PrometheusHandle,
        actor: String,
        settings: &ApiSettings,
    ) -> Self {
        Self {
            bus,
            pool,
            metrics,
            actor,
            guard,
            console: settings.console.clone(),
            policy: settings.policy.clone().map(Arc::new),
        }
    }
}

//! What every handler of the API worker may use: the API's routes and the web console's.

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::access::guard::Guard;
use crate::bus::Bus;

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
}

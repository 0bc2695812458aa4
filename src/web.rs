//! The API worker's HTTP face: the API's routes ([`crate::api`]) and the web console's
//! ([`crate::console`]) on one router, with one state. The console votes through the API's
//! own decide path, so it sits above the API; this module sits above both.

use axum::Router;

use crate::api::ApiState;

/// Serves [`router`] on `listener` until `shutdown`; the peer address names the source of
/// refused calls (their audit is rate-limited).
///
/// # Errors
/// When serving fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    crate::access::guard::serve(listener, router(state), shutdown, "the API").await
}

/// Everything the API worker serves.
pub fn router(state: ApiState) -> Router {
    crate::api::routes(&state)
        .merge(crate::console::router(state.clone()))
        .with_state(state)
}

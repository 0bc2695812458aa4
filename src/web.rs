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
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
    .map_err(|error| anyhow::anyhow!("serve the API: {error}"))
}

/// Everything the API worker serves.
pub fn router(state: ApiState) -> Router {
    crate::api::routes(&state)
        .merge(crate::console::router(state.clone()))
        .with_state(state)
}

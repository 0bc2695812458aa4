//! `GET /requests/{id}/events`: a request's status events as Server-Sent Events, from the
//! first, as they happen (`event: status`, `id:` the event id, `data:` the status event's
//! JSON, the same as on `wingman.status.<id>`). The stream ends after the event that settles
//! the request — its decision for an instruction, the end of its execution for a command —
//! so a client needs no polling and no NATS connection. Keep-alive comments every 15 s.
//!
//! An id with no status event is a 404 — after a short grace ([`FIRST_EVENT_GRACE`]), so a
//! client that opens the stream right after its `202` still gets the stream, not a 404.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};

use crate::api::error::ApiError;
use crate::api::state::ApiState;
use crate::bus::status_feed::{self, Goal, is_settled};

/// How long a stream waits for the first status event of an id before answering 404.
pub const FIRST_EVENT_GRACE: Duration = Duration::from_secs(1);

#[utoipa::path(
    get, path = "/requests/{request_id}/events", tag = "requests",
    params(("request_id" = String, Path, format = Uuid, description = "the request's id")),
    responses(
        (status = 200, description = "text/event-stream: `event: status` with the status event's JSON, until it settles", content_type = "text/event-stream", body = String),
        (status = 400, description = "not a UUID", body = crate::api::schema::ErrorBody),
        (status = 401, description = "no key, or not a read key", body = crate::api::schema::ErrorBody),
        (status = 404, description = "no status event of this id (after a 1 s grace)", body = crate::api::schema::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn events(
    State(state): State<ApiState>,
    Path(request_id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let request_id = crate::api::error::request_id(&request_id)?;
    let mut feed = Box::pin(
        status_feed::events(&state.bus, request_id)
            .await
            .map_err(|error| ApiError::Unavailable(format!("{error:#}")))?,
    );
    let first = match tokio::time::timeout(FIRST_EVENT_GRACE, feed.next()).await {
        Ok(Some(first)) => first,
        Ok(None) | Err(_) => {
            crate::metrics::api_request("events", 404);
            return Err(ApiError::NotFound(format!(
                "no request {request_id}: no status event within {} s",
                FIRST_EVENT_GRACE.as_secs()
            )));
        }
    };
    crate::metrics::api_request("events", 200);
    let feed = futures::stream::once(async move { first }).chain(feed);
    let stream = futures::stream::unfold(
        (Box::pin(feed), Goal::FromEvents, false),
        |(mut feed, goal, ended)| async move {
            if ended {
                return None;
            }
            match feed.next().await? {
                Err(error) => {
                    let event = Event::default().event("error").data(format!("{error:#}"));
                    Some((Ok(event), (feed, goal, true)))
                }
                Ok(status) => {
                    let goal = goal.learn(&status);
                    let settled = is_settled(&status, goal);
                    let event = Event::default()
                        .event("status")
                        .id(status.event_id.to_string())
                        .json_data(&status)
                        .unwrap_or_else(|error| {
                            Event::default().event("error").data(error.to_string())
                        });
                    Some((Ok(event), (feed, goal, settled)))
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

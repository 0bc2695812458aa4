//! The axum middleware that asks for a key of one role on a route, and audits refusals.
//!
//! Use it per method:
//! `get(list).route_layer(middleware::from_fn_with_state(guard.with(Role::Read), check))`. The key comes in
//! `X-API-Key: <key>` or `Authorization: Bearer <key>`. A refusal is a 401 with
//! `{"error", "code"}` (`missing_api_key`, `invalid_api_key`, `wrong_role`) and an
//! `access_denied` audit event with the route, the method and the reason (and, for a wrong
//! role, the key's name). The key itself is never logged, audited or echoed.
//!
//! Refusals come from anyone who reaches the port, so what they may write into the permanent
//! audit is bounded ([`AuditThrottle`]): every one is counted in `wingman_access_denied_total`,
//! but per peer address only a few per minute are audited one by one; the rest of the minute
//! becomes one summary event with the count. The peer address is known when the router is served with
//! `into_make_service_with_connect_info::<SocketAddr>()` (the API and the gateway are).

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::access::throttle::{Admission, AuditThrottle};
use crate::access::{ApiKeys, Denied, KeyName, Role};
use crate::bus::Bus;
use crate::bus::step::publish_audit;
use crate::events::{AuditKind, Stage};

/// The keys of one HTTP edge, and how to audit its refusals.
#[derive(Clone)]
pub struct Guard {
    pub keys: ApiKeys,
    /// Refusals are published as `access_denied` audit events.
    pub bus: Bus,
    /// `api` or `gateway`: who refused, in the audit trail.
    pub stage: Stage,
    pub actor: String,
    /// How many refusals per peer address are audited one by one (shared by all routes).
    pub throttle: AuditThrottle,
}

/// Serves `router`, whose routes sit behind the guard, on `listener` until `shutdown`, with
/// each call's peer address (the guard names the source of refused calls by it and rate-limits
/// their audit per source). `what` names the server in the error.
///
/// # Errors
/// When serving fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: tokio_util::sync::CancellationToken,
    what: &str,
) -> anyhow::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
    .map_err(|error| anyhow::anyhow!("serve {what}: {error}"))
}

impl Guard {
    /// The guard of the HTTP edge of `stage` (`api` or `gateway`), as `actor`, with `keys`.
    pub fn new(keys: ApiKeys, bus: Bus, stage: Stage, actor: String) -> Self {
        Self {
            keys,
            bus,
            stage,
            actor,
            throttle: AuditThrottle::default(),
        }
    }

    /// The state of [`check`] for a route that needs `role`:
    /// `route_layer(middleware::from_fn_with_state(guard.with(Role::Read), check))`.
    pub fn with(&self, role: Role) -> (Guard, Role) {
        (self.clone(), role)
    }
}

/// Lets the call through when it carries a key of the route's role; otherwise answers 401
/// and audits the refusal.
pub async fn check(
    State((guard, role)): State<(Guard, Role)>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = presented_key(request.headers());
    match guard.keys.check(presented.as_deref(), role) {
        Ok(name) => {
            let name = KeyName(name.to_string());
            request.extensions_mut().insert(name);
            next.run(request).await
        }
        Err(denied) => {
            let route = request.extensions().get::<MatchedPath>().map_or_else(
                || request.uri().path().to_string(),
                |path| path.as_str().to_string(),
            );
            let method = request.method().to_string();
            let source = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_string(), |peer| peer.0.ip().to_string());
            let admission = guard.throttle.admit(&source, tokio::time::Instant::now());
            crate::metrics::access_denied(guard.stage.as_str(), admission == Admission::Audit);
            match admission {
                Admission::Audit => {
                    audit_denied(&guard, &route, &method, &source, role, &denied).await;
                }
                Admission::Suppress { summary_at } => {
                    tracing::debug!(route, method, source, "API call refused (audit suppressed)");
                    if let Some(at) = summary_at {
                        schedule_summary(&guard, at);
                    }
                }
            }
            refusal(role, &denied)
        }
    }
}

/// The key from `X-API-Key`, or from `Authorization: Bearer`.
fn presented_key(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(value.trim().to_string()).filter(|key| !key.is_empty());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|key| key.trim().to_string())
        .filter(|key| !key.is_empty())
}

fn refusal(role: Role, denied: &Denied) -> Response {
    let message = match denied {
        Denied::Missing => format!(
            "an API key with the `{}` role is required (header X-API-Key or Authorization: Bearer)",
            role.as_str()
        ),
        Denied::Invalid => "the API key is not valid".to_string(),
        Denied::WrongRole { .. } => {
            format!("this API key does not have the `{}` role", role.as_str())
        }
    };
    crate::metrics::api_request("access_denied", 401);
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({ "error": message, "code": denied.code(), "required_role": role.as_str() })),
    )
        .into_response()
}

/// Publishes the refusal as an audit event (best effort: the caller gets its 401 either way).
async fn audit_denied(
    guard: &Guard,
    route: &str,
    method: &str,
    source: &str,
    role: Role,
    denied: &Denied,
) {
    let mut data = json!({
        "route": route,
        "method": method,
        "reason": denied.code(),
        "required_role": role.as_str(),
        "source": source,
    });
    if let Denied::WrongRole { key } = denied {
        data["key_name"] = json!(key);
    }
    tracing::warn!(route, method, reason = denied.code(), "API call refused");
    let audited = publish_audit(
        &guard.bus,
        None,
        AuditKind::AccessDenied,
        guard.stage,
        &guard.actor,
        data,
    )
    .await;
    if let Err(error) = audited {
        tracing::warn!(error = %format!("{error:#}"), "could not audit a refused API call");
    }
}

/// Publishes the window's summary of suppressed refusals once the window is over.
fn schedule_summary(guard: &Guard, at: tokio::time::Instant) {
    let guard = guard.clone();
    tokio::spawn(async move {
        tokio::time::sleep_until(at).await;
        let Some(summary) = guard.throttle.take_summary(tokio::time::Instant::now()) else {
            return;
        };
        let audited = publish_audit(
            &guard.bus,
            None,
            AuditKind::AccessDenied,
            guard.stage,
            &guard.actor,
            crate::access::throttle::summary_data(&summary),
        )
        .await;
        if let Err(error) = audited {
            tracing::warn!(error = %format!("{error:#}"), "could not audit the refused calls' summary");
        }
    });
}

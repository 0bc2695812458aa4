//! The web console for approvers and operators, served by the API worker under `/console`.
//!
//! Server-rendered HTML (minijinja templates, autoescaped: every string from a request is
//! text, never markup), one small static script for the live parts (countdowns, the status
//! timeline), and no other front-end build. Every page works without the script.
//!
//! - `/console/login`: an approver or operator logs in with their API key (`read` or `decide`
//!   role); the session is server-side ([`session`]), the cookie `HttpOnly; SameSite=Strict`.
//! - `/console/pending`: requests waiting for a decision, oldest first.
//! - `/console/requests/{id}`: the whole evidence (full command, parsed operation and the
//!   policy's verdict, description, every validator's findings, the cohort (outside it the
//!   shadow decision is not shown: approvers decide unprimed), the live status timeline, the audit trail and its chain check) and Approve / Reject,
//!   which vote through the same path as `POST /requests/{id}/approve` ([`crate::api::decide`]).
//! - `/console/overview`: the rollout state and report, the rates chart ([`chart`]), the human
//!   backlog and recent executions (INDETERMINATE ones flagged for a human).
//!
//! Every form carries the session's CSRF token; a POST without it, with another session's, or
//! without a session is refused (403) and audited (`access_denied`). Responses carry a strict
//! Content-Security-Policy (no inline script or style) and the usual security headers.

pub mod chart;
pub mod pages;
pub mod session;
pub mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::Environment;

use crate::api::state::ApiState;
use crate::policy::Policy;
use session::Sessions;

/// The Content-Security-Policy of every console response: only our own script, style and
/// images; no inline code, no framing, forms post only to us.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = include_str!("static/console.css");
const SCRIPT: &str = include_str!("static/console.js");

/// What the console's handlers share.
#[derive(Clone)]
pub struct ConsoleState {
    pub api: ApiState,
    pub sessions: Sessions,
    pub templates: Arc<Environment<'static>>,
    /// The gateway's policy (`WINGMAN_POLICY_FILE`, else the shipped one), for the verdict a
    /// request page shows before execution; `None` when the file does not load (the page
    /// says so rather than show another policy's verdict).
    pub policy: Option<Arc<Policy>>,
    /// The approvals bucket (the votes counted on a waiting request), opened at the first
    /// request page that needs it and kept; not at start, where a NATS user without the read
    /// permission would stop the whole console for one line of it.
    pub approvals: Arc<tokio::sync::OnceCell<async_nats::jetstream::kv::Store>>,
}

/// The templates, autoescaped (their names end in `.html`).
///
/// # Errors
/// When a template does not parse (a test renders each).
pub fn templates() -> anyhow::Result<Environment<'static>> {
    let mut environment = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("login.html", include_str!("templates/login.html")),
        ("pending.html", include_str!("templates/pending.html")),
        ("request.html", include_str!("templates/request.html")),
        ("timeline.html", include_str!("templates/timeline.html")),
        ("overview.html", include_str!("templates/overview.html")),
        ("refused.html", include_str!("templates/refused.html")),
    ] {
        environment
            .add_template(name, source)
            .map_err(|error| anyhow::anyhow!("console template {name}: {error}"))?;
    }
    Ok(environment)
}

/// The console's routes, to merge into the API's router.
pub fn router(api: ApiState) -> Router<ApiState> {
    let policy = api.policy.clone();
    let state = ConsoleState {
        api,
        sessions: Sessions::default(),
        templates: Arc::new(templates().expect("the console's templates parse")),
        policy,
        approvals: Arc::default(),
    };
    Router::new()
        .route("/console", get(pages::home))
        .route("/console/", get(pages::home))
        .route("/console/login", get(pages::login_form).post(pages::login))
        .route("/console/logout", post(pages::logout))
        .route("/console/pending", get(pages::pending))
        .route("/console/requests/{request_id}", get(pages::request))
        .route(
            "/console/requests/{request_id}/timeline",
            get(pages::timeline),
        )
        .route("/console/requests/{request_id}/decide", post(pages::decide))
        .route("/console/overview", get(pages::overview))
        .route("/console/overview/rates.svg", get(pages::rates_chart))
        .route("/console/static/console.css", get(style))
        .route("/console/static/console.js", get(script))
        .layer(from_fn(security_headers))
        .with_state(state)
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

/// Adds the security headers to every console response.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=()",
        ),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses() {
        super::templates().unwrap();
    }
}

//! The console's handlers: login and logout, the pending list, a request's page (and its
//! live timeline fragment), the vote forms, and the operators' overview.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{Duration, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::approval::Verdict;
use crate::console::ConsoleState;
use crate::console::session::{self, COOKIE, LOGIN_COOKIE, LoginRefused, Session};
use crate::console::view;
use crate::envelope::RequestId;
use crate::events::{AuditKind, PublicStatus, Stage, StatusEvent};
use crate::identity::api_vote::Outcome;
use crate::identity::roster::{Roster, RosterStore};
use crate::report::{Basis, Criteria, rates, verdict};
use crate::request::Environment;
use crate::rollout::RolloutStore;
use crate::status::Status;
use crate::store::{audit, console as store, requests};

/// How far back the overview's report and chart look.
const REPORT_DAYS: i64 = 14;

/// How many requests the pending list shows at most (the oldest; the page says how many wait).
const PENDING_PAGE: i64 = 500;

/// The peer of the connection (for the audit of refusals), when the server knows it.
fn peer(connect: Option<&ConnectInfo<SocketAddr>>) -> String {
    connect.map_or_else(|| "unknown".to_string(), |info| info.0.ip().to_string())
}

/// Renders `name` with `context`; a template error is a 500 whose cause is logged.
fn render(
    state: &ConsoleState,
    name: &str,
    status: StatusCode,
    context: minijinja::Value,
) -> Response {
    match state
        .templates
        .get_template(name)
        .and_then(|template| template.render(context))
    {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, template = name, "console template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// The page context every logged-in page shares.
fn chrome(id: &str, session: &Session, state: &ConsoleState, page: &str) -> minijinja::Value {
    context! {
        logged_in => true,
        key_name => session.key_name.clone(),
        can_decide => session.can_decide,
        csrf => session.csrf.clone(),
        page => page,
        flash => state.sessions.take_flash(id),
    }
}

/// The live session of the request (pages without one redirect to [`to_login`]).
fn require(state: &ConsoleState, headers: &HeaderMap) -> Option<(String, Session)> {
    state.sessions.get(headers, tokio::time::Instant::now())
}

/// The login page, coming back to `next` (a console page) after the login.
fn to_login(next: &str) -> Response {
    match safe_next(Some(next)) {
        Some(next) => Redirect::to(&format!("/console/login?next={next}")).into_response(),
        None => Redirect::to("/console/login").into_response(),
    }
}

/// Where a login may send the browser: a console page (`/console/…` of plain path characters),
/// never another site or a scheme-relative URL.
pub fn safe_next(next: Option<&str>) -> Option<&str> {
    next.filter(|next| {
        next.starts_with("/console/")
            && !next.contains("//")
            && next
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
            && !next.contains("..")
    })
}

/// A 500 page for a store or bus error (the cause is logged, never shown).
fn unavailable(state: &ConsoleState, error: &anyhow::Error) -> Response {
    tracing::error!(error = %format!("{error:#}"), "console page failed");
    render(
        state,
        "refused.html",
        StatusCode::SERVICE_UNAVAILABLE,
        context! { title => "Unavailable", message => "Wingman could not load this page; try again in a moment." },
    )
}

/// Refuses a console call (403), and audits it (`access_denied`, rate-limited per source
/// like the API's refusals).
async fn refuse(
    state: &ConsoleState,
    source: &str,
    route: &str,
    reason: &str,
    key_name: Option<&str>,
    request_id: Option<RequestId>,
) -> Response {
    let guard = &state.api.guard;
    let admission = guard.throttle.admit(source, tokio::time::Instant::now());
    let audited = admission == crate::access::throttle::Admission::Audit;
    crate::metrics::access_denied("console", audited);
    if audited {
        let mut data = json!({ "route": route, "method": "POST", "reason": reason, "source": source, "edge": "console" });
        if let Some(key) = key_name {
            data["key_name"] = json!(key);
        }
        tracing::warn!(route, reason, "console call refused");
        if let Err(error) = crate::bus::step::publish_audit(
            &state.api.bus,
            request_id,
            AuditKind::AccessDenied,
            Stage::Api,
            &state.api.actor,
            data,
        )
        .await
        {
            tracing::warn!(error = %format!("{error:#}"), "could not audit a refused console call");
        }
    }
    let message = match reason {
        "csrf_mismatch" => {
            "This form is not from your session (missing or wrong CSRF token). Reload the page and try again."
        }
        "no_session" => "You are not logged in (or your session expired). Log in and try again.",
        "wrong_role" => "Your key may not decide requests.",
        _ => "Refused.",
    };
    render(
        state,
        "refused.html",
        StatusCode::FORBIDDEN,
        context! { title => "Refused", message => message, reason => reason },
    )
}

pub async fn home(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    match require(&state, &headers) {
        Some(_) => Redirect::to("/console/pending").into_response(),
        None => to_login("/console/pending"),
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn login_form(
    State(state): State<ConsoleState>,
    Query(query): Query<LoginQuery>,
) -> Response {
    login_page(&state, StatusCode::OK, None, query.next.as_deref())
}

/// The login page with a fresh login CSRF token (in a cookie and the form).
fn login_page(
    state: &ConsoleState,
    status: StatusCode,
    error: Option<&str>,
    next: Option<&str>,
) -> Response {
    let token = session::random_token();
    let cookie = session::set_cookie(
        LOGIN_COOKIE,
        &token,
        std::time::Duration::from_secs(3600),
        state.api.console.secure(),
    );
    let mut response = render(
        state,
        "login.html",
        status,
        context! { logged_in => false, csrf => token, error => error, page => "login", next => safe_next(next) },
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

pub async fn login(
    State(state): State<ConsoleState>,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let source = peer(connect.as_ref().map(|c| &c.0));
    let expected = session::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let result = if session::same_token(&expected, &form.csrf) {
        state.sessions.login(
            &state.api.guard.keys,
            Some(&form.key),
            state.api.console.session_ttl,
            tokio::time::Instant::now(),
        )
    } else {
        Err(LoginRefused::Csrf)
    };
    match result {
        Ok((id, session)) => {
            crate::metrics::api_request("console_login", 303);
            tracing::info!(key = %session.key_name, "console login");
            let cookie = session::set_cookie(
                COOKIE,
                &id,
                state.api.console.session_ttl,
                state.api.console.secure(),
            );
            let clear = session::set_cookie(
                LOGIN_COOKIE,
                "",
                std::time::Duration::ZERO,
                state.api.console.secure(),
            );
            let target = safe_next(form.next.as_deref()).unwrap_or("/console/pending");
            let mut response = Redirect::to(target).into_response();
            for value in [cookie, clear] {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            response
        }
        Err(refused) => {
            let key_name = match &refused {
                LoginRefused::Key(crate::access::Denied::WrongRole { key }) => Some(key.as_str()),
                _ => None,
            };
            // Audited like the API's refusals (the response is the login page again).
            let _ = refuse(
                &state,
                &source,
                "/console/login",
                refused.code(),
                key_name,
                None,
            )
            .await;
            let message = match refused {
                LoginRefused::Csrf => "The login form expired; try again.",
                LoginRefused::Key(crate::access::Denied::WrongRole { .. }) => {
                    "This key may neither read nor decide: the console needs a read or decide key."
                }
                LoginRefused::Key(_) => "That API key is not valid.",
            };
            login_page(
                &state,
                StatusCode::UNAUTHORIZED,
                Some(message),
                form.next.as_deref(),
            )
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(state): State<ConsoleState>,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let source = peer(connect.as_ref().map(|c| &c.0));
    let Some((id, session)) = state.sessions.get(&headers, tokio::time::Instant::now()) else {
        return Redirect::to("/console/login").into_response();
    };
    if !session::same_token(&session.csrf, &form.csrf) {
        return refuse(
            &state,
            &source,
            "/console/logout",
            "csrf_mismatch",
            Some(&session.key_name),
            None,
        )
        .await;
    }
    state.sessions.logout(&id);
    let mut response = Redirect::to("/console/login").into_response();
    let clear = session::set_cookie(
        COOKIE,
        "",
        std::time::Duration::ZERO,
        state.api.console.secure(),
    );
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// One row of the pending list.
#[derive(Debug, Serialize)]
struct PendingRow {
    request_id: String,
    title: String,
    environment: String,
    requester: String,
    submitted_by: String,
    created_at: String,
    expires_at: String,
    countdown: String,
    score: String,
}

pub async fn pending(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    let Some((id, session)) = require(&state, &headers) else {
        return to_login("/console/pending");
    };
    let pool = &state.api.pool;
    let (rows, backlog) =
        match tokio::try_join!(store::waiting(pool, PENDING_PAGE), store::backlog(pool)) {
            Ok(read) => read,
            Err(error) => return unavailable(&state, &error.into()),
        };
    // A request may arrive between the two reads: never say fewer wait than are shown.
    let waiting = backlog
        .waiting
        .max(i64::try_from(rows.len()).unwrap_or(i64::MAX));
    let now = Utc::now();
    let rows: Vec<PendingRow> = rows
        .into_iter()
        .map(|row| PendingRow {
            request_id: row.request_id.to_string(),
            title: row.title,
            environment: row.environment,
            requester: row.requester,
            submitted_by: row.submitted_by,
            created_at: row.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            expires_at: row.expires_at.map(|at| at.to_rfc3339()).unwrap_or_default(),
            countdown: view::countdown(row.expires_at, now),
            score: row
                .composite_score
                .map_or_else(|| "–".to_string(), |score| score.to_string()),
        })
        .collect();
    crate::metrics::api_request("console_pending", 200);
    render(
        &state,
        "pending.html",
        StatusCode::OK,
        context! { ..chrome(&id, &session, &state, "pending"), ..context! { rows => rows, waiting => waiting } },
    )
}

fn parse_id(text: &str) -> Option<RequestId> {
    text.parse().ok()
}

async fn roster_of(state: &ConsoleState) -> anyhow::Result<Roster> {
    let bus = &state.api.bus;
    Ok(RosterStore::open(bus).await?.load().await?.0)
}

/// The approvers whose approval of a waiting request is counted, and how many it needs, from
/// the approvals stage's record ([`crate::approval::ApprovalRecord`]). Shown for information
/// only: when the record cannot be read the page shows none (and logs why).
async fn approvals_counted(
    state: &ConsoleState,
    request_id: RequestId,
) -> (Vec<String>, Option<usize>) {
    let bus = &state.api.bus;
    let read = async {
        let approvals = state
            .approvals
            .get_or_try_init(|| {
                let name = bus.subjects.localize_name(crate::approval::BUCKET);
                async move { crate::bus::topology::open_bucket(&bus.js, &name).await }
            })
            .await?;
        crate::approval::read_record(approvals, request_id).await
    };
    match read.await {
        Ok(Some((record, _))) => (record.votes, record.needed),
        Ok(None) => (Vec::new(), None),
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), %request_id, "the console cannot read the approvals counted");
            (Vec::new(), None)
        }
    }
}

/// Every status event of a request, in order (the status stream keeps the last 64 of each).
pub async fn status_events(
    bus: &crate::bus::Bus,
    request_id: RequestId,
) -> anyhow::Result<Vec<StatusEvent>> {
    let stream = bus.stream("WINGMAN_STATUS").await?;
    let subject = bus.subjects.status(request_id);
    let mut events = Vec::new();
    let mut next = 1;
    for _ in 0..64 {
        let message = match stream
            .raw_message_builder()
            .sequence(next)
            .next_by_subject(subject.clone())
            .send()
            .await
        {
            Ok(message) => message,
            Err(error)
                if error.kind()
                    == async_nats::jetstream::stream::RawMessageErrorKind::NoMessageFound =>
            {
                break;
            }
            Err(error) => anyhow::bail!("read the status of {request_id}: {error}"),
        };
        next = message.sequence + 1;
        match serde_json::from_slice::<StatusEvent>(&message.payload) {
            Ok(event) => events.push(event),
            Err(error) => tracing::warn!(%error, "undecodable status event skipped"),
        }
    }
    Ok(events)
}

/// One line of the timeline.
#[derive(Debug, Serialize)]
struct TimelineItem {
    at: String,
    status: String,
    stage: String,
    details: Vec<(String, String)>,
    tone: &'static str,
}

fn timeline_items(events: &[StatusEvent]) -> Vec<TimelineItem> {
    events
        .iter()
        .map(|event| TimelineItem {
            at: event.at.format("%H:%M:%S%.3f").to_string(),
            status: event.status.to_string(),
            stage: event.stage.as_str().to_string(),
            details: event
                .details
                .iter()
                .map(|(key, value)| {
                    let text = match value {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    (key.clone(), crate::telegram::clip(&text, 400))
                })
                .collect(),
            tone: match event.status {
                PublicStatus::Request(
                    Status::Succeeded | Status::Approved | Status::AutoApproved,
                ) => "good",
                PublicStatus::Request(
                    Status::Failed | Status::Rejected | Status::AutoRejected | Status::Expired,
                )
                | PublicStatus::Refused
                | PublicStatus::Invalid => "bad",
                PublicStatus::Request(Status::Indeterminate) => "alert",
                PublicStatus::Request(_) => "neutral",
            },
        })
        .collect()
}

/// The timeline fragment (`<li>` items), polled by the page's script while the request is
/// not settled (`X-Timeline-Settled: 1` says it is).
pub async fn timeline(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Path(request_id): Path<String>,
) -> Response {
    if require(&state, &headers).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Some(request_id) = parse_id(&request_id) else {
        return (StatusCode::BAD_REQUEST, "request_id: not a UUID").into_response();
    };
    let events = match status_events(&state.api.bus, request_id).await {
        Ok(events) => events,
        Err(error) => return unavailable(&state, &error),
    };
    let mut response = render(
        &state,
        "timeline.html",
        StatusCode::OK,
        context! { timeline => timeline_items(&events) },
    );
    if view::timeline_settled(&events) {
        response
            .headers_mut()
            .insert("x-timeline-settled", HeaderValue::from_static("1"));
    }
    response
}

/// The operation as the gateway will parse it, and the policy's verdict before the targets
/// are resolved.
#[derive(Debug, Serialize)]
struct OperationView {
    name: String,
    targets: String,
    argv: String,
    mutating: bool,
    destructive: bool,
    policy: String,
    policy_allows: bool,
}

fn operation_view(state: &ConsoleState, command: &str, environment: &str) -> Option<OperationView> {
    let operation = crate::docker::parse_command_line(command).ok()?;
    let (policy, policy_allows) = match (environment.parse::<Environment>(), &state.policy) {
        (Err(_), _) => (format!("unknown environment `{environment}`"), false),
        (Ok(_), None) => (
            "unknown here: the console could not load WINGMAN_POLICY_FILE (the gateway checks the policy before it acts)".to_string(),
            false,
        ),
        (Ok(environment), Some(policy)) => match policy.check_operation(environment, &operation) {
            Ok(()) => (
                format!(
                    "allowed by the {environment} policy so far; the gateway resolves the targets with Docker and checks them again before it acts"
                ),
                true,
            ),
            Err(refusal) => (refusal.to_string(), false),
        },
    };
    Some(OperationView {
        name: operation.name().to_string(),
        targets: operation.targets_summary(),
        argv: operation
            .canonical_argv()
            .iter()
            .map(|word| {
                shlex::try_quote(word).map_or_else(|_| word.clone(), |quoted| quoted.into_owned())
            })
            .collect::<Vec<_>>()
            .join(" "),
        mutating: operation.is_mutating(),
        destructive: operation.is_destructive(),
        policy,
        policy_allows,
    })
}

pub async fn request(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Path(request_id): Path<String>,
) -> Response {
    let Some((id, session)) = require(&state, &headers) else {
        return to_login(&format!("/console/requests/{request_id}"));
    };
    let Some(request_id) = parse_id(&request_id) else {
        return render(
            &state,
            "refused.html",
            StatusCode::BAD_REQUEST,
            context! { title => "Not a request", message => "request_id: not a UUID" },
        );
    };
    match request_page(&state, &id, &session, request_id).await {
        Ok(response) => response,
        Err(error) => unavailable(&state, &error),
    }
}

async fn request_page(
    state: &ConsoleState,
    id: &str,
    session: &Session,
    request_id: RequestId,
) -> anyhow::Result<Response> {
    let pool = &state.api.pool;
    let events = status_events(&state.api.bus, request_id).await?;
    let Some(row) = requests::get(pool, request_id.as_uuid()).await? else {
        return Ok(render(
            state,
            "refused.html",
            StatusCode::NOT_FOUND,
            context! {
                ..chrome(id, session, state, "request"),
                ..context! {
                    title => "Not recorded (yet)",
                    message => format!("No request {request_id} is recorded. If it was just submitted, reload in a moment."),
                    timeline => timeline_items(&events),
                }
            },
        ));
    };
    let roster = roster_of(state).await?;
    let (votes, needed) = if view::waits_for_a_human(&row) {
        approvals_counted(state, request_id).await
    } else {
        (Vec::new(), None)
    };
    let panel = view::decision_panel(&row, &roster, &votes, &session.key_name, session.can_decide);
    let audit_rows = audit::for_request(pool, request_id.as_uuid()).await?;
    let predecessors: Vec<i64> = audit_rows.iter().map(|row| row.seq - 1).collect();
    let links = store::hashes_at(pool, &predecessors).await?;
    let chain = view::chain_check(&audit_rows, &links);
    let scores = row.validator_scores.as_ref().map(|json| &json.0);
    let operation = row
        .command
        .as_deref()
        .and_then(|command| operation_view(state, command, &row.environment));
    let needs_reason = row.status == "AUTO_REJECTED";
    let now = Utc::now();
    crate::metrics::api_request("console_request", 200);
    Ok(render(
        state,
        "request.html",
        StatusCode::OK,
        context! {
            ..chrome(id, session, state, "request"),
            ..context! {
                request_id => request_id.to_string(),
                title => row.title.clone(),
                status => row.status.clone(),
                execution_status => row.execution_status.clone(),
                environment => row.environment.clone(),
                requester => row.requester.clone(),
                submitted_by => row.submitted_by.clone(),
                created_at => row.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                expires_at => row.expires_at.map(|at| at.to_rfc3339()).unwrap_or_default(),
                countdown => view::countdown(row.expires_at, now),
                command => row.command.clone(),
                operation => operation,
                description => row.description.clone(),
                risk_level => row.risk_level.clone(),
                score => row.composite_score,
                profile => row.profile.clone(),
                reasons => view::composite_reasons(scores),
                validators => view::validators(scores),
                cohort => view::cohort(&row),
                panel => panel,
                approvals => view::approvals_so_far(&votes, needed),
                needed => needed,
                needs_reason => needs_reason,
                timeline => timeline_items(&events),
                timeline_settled => view::timeline_settled(&events),
                chain_ok => chain.is_ok(),
                chain => match &chain { Ok(text) | Err(text) => text.clone() },
                audit => view::audit_lines(&audit_rows),
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    verdict: String,
    #[serde(default)]
    reason: String,
}

/// A vote from the request page: the session's key votes through the API's decide path.
pub async fn decide(
    State(state): State<ConsoleState>,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Path(request_id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Response {
    let source = peer(connect.as_ref().map(|c| &c.0));
    let route = "/console/requests/{request_id}/decide";
    let parsed = parse_id(&request_id);
    let Some((id, session)) = state.sessions.get(&headers, tokio::time::Instant::now()) else {
        return refuse(&state, &source, route, "no_session", None, parsed).await;
    };
    if !session::same_token(&session.csrf, &form.csrf) {
        return refuse(
            &state,
            &source,
            route,
            "csrf_mismatch",
            Some(&session.key_name),
            parsed,
        )
        .await;
    }
    if !session.can_decide {
        return refuse(
            &state,
            &source,
            route,
            "wrong_role",
            Some(&session.key_name),
            parsed,
        )
        .await;
    }
    let Some(request_id) = parsed else {
        return render(
            &state,
            "refused.html",
            StatusCode::BAD_REQUEST,
            context! { title => "Not a request", message => "request_id: not a UUID" },
        );
    };
    let verdict = match form.verdict.as_str() {
        "approve" => Verdict::Approve,
        "reject" => Verdict::Reject,
        other => {
            return render(
                &state,
                "refused.html",
                StatusCode::BAD_REQUEST,
                context! { title => "Bad vote", message => format!("verdict: `{other}` is not approve or reject") },
            );
        }
    };
    // A browser sends a textarea's line breaks as CRLF (the HTML form encoding): the reason
    // keeps them as the LF a reason sent to the API has, so a two-line reason is no control
    // character.
    let reason = form.reason.replace("\r\n", "\n");
    let answer = crate::api::decide::cast(
        &state.api.bus,
        &session.key_name,
        request_id,
        verdict,
        Some(reason.as_str()),
    )
    .await;
    let notice = match answer {
        Ok(answer) => match answer.outcome {
            Outcome::Applied => format!("Done: {}.", answer.message),
            Outcome::Counted => format!("Counted: {}.", answer.message),
            Outcome::Refused => match (&answer.code.as_deref(), &answer.decided_by) {
                (Some("already_decided"), Some(by)) => format!(
                    "Already decided by {by}: {}. Your vote changed nothing.",
                    answer.message
                ),
                _ => format!(
                    "Refused ({}): {}.",
                    answer.code.as_deref().unwrap_or("refused"),
                    answer.message
                ),
            },
        },
        Err(error) => {
            // Audited like the API's invalid votes (`message_rejected`).
            crate::api::decide::audit_invalid(
                &state.api,
                "console",
                request_id,
                &session.key_name,
                &error,
            )
            .await;
            format!("Your vote was not applied: {error}")
        }
    };
    crate::metrics::api_request("console_decide", 303);
    state.sessions.flash(&id, notice);
    Redirect::to(&format!("/console/requests/{request_id}")).into_response()
}

/// One execution in the overview.
#[derive(Debug, Serialize)]
struct ExecutionItem {
    request_id: String,
    environment: String,
    title: String,
    operation: String,
    status: String,
    started_at: String,
    outcome: String,
    indeterminate: bool,
}

/// The rates of one day (the chart's table, for screen readers and exact values).
#[derive(Debug, Serialize)]
struct DayItem {
    day: String,
    validated: i64,
    auto_reject: String,
    auto_approve: String,
    manual_review: String,
    false_positive: String,
}

pub async fn overview(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    let Some((id, session)) = require(&state, &headers) else {
        return to_login("/console/overview");
    };
    match overview_page(&state, &id, &session).await {
        Ok(response) => response,
        Err(error) => unavailable(&state, &error),
    }
}

async fn overview_page(
    state: &ConsoleState,
    id: &str,
    session: &Session,
) -> anyhow::Result<Response> {
    let pool = &state.api.pool;
    let bus = &state.api.bus;
    let since = Utc::now() - Duration::days(REPORT_DAYS);
    let rollout = RolloutStore::open(bus).await?;
    let flags = rollout.current().await.ok().map(|(flags, _)| flags);
    let counts = crate::report::counts(pool, since, None).await?;
    // The current phase, judged as `wingman rollout report` judges it (with its promote gate);
    // a misconfigured minimum shows as an error on the page, not a failed page.
    let phase = match crate::settings::phase_minimums() {
        Ok(minimums) => crate::report::current_phase(pool, flags.as_ref(), &minimums)
            .await
            .map(|phase| phase_view(&phase))
            .unwrap_or_else(|error| json!({ "error": format!("{error:#}") })),
        Err(error) => json!({ "error": format!("{error:#}") }),
    };
    let criteria = Criteria::default();
    let report_rates = rates(&counts, Basis::Cohort);
    let report_verdict = serde_json::to_value(verdict(&counts, &criteria, Basis::Cohort))?;
    let days = store::daily_counts(pool, since).await?;
    let changes = store::rollout_changes(pool, since).await?;
    let backlog = store::backlog(pool).await?;
    let executions = store::recent_executions(pool, 20).await?;
    let percent = |value: f64| format!("{value:.1} %");
    let day_items: Vec<DayItem> = days
        .iter()
        .map(|day| {
            let day_rates = rates(&day.counts, Basis::Cohort);
            // A day without validated requests has no rates (0 of 0 is not 0 %).
            let rate = |value: f64| {
                if day.counts.validated == 0 {
                    "–".to_string()
                } else {
                    percent(value)
                }
            };
            DayItem {
                day: day.day.format("%Y-%m-%d").to_string(),
                validated: day.counts.validated,
                auto_reject: rate(day_rates.auto_reject),
                auto_approve: rate(day_rates.auto_approve),
                manual_review: rate(day_rates.manual_review),
                false_positive: rate(day_rates.false_positive),
            }
        })
        .collect();
    let execution_items: Vec<ExecutionItem> = executions
        .into_iter()
        .map(|execution| ExecutionItem {
            request_id: execution.request_id.to_string(),
            environment: execution.environment,
            title: execution.title,
            operation: execution.operation,
            indeterminate: execution.status == "INDETERMINATE",
            outcome: match (&execution.error, execution.exit_code) {
                (Some(error), _) => crate::telegram::clip(error, 200),
                (None, Some(code)) => format!("exit code {code}"),
                (None, None) => String::new(),
            },
            status: execution.status,
            started_at: execution
                .started_at
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
        })
        .collect();
    let phases: Vec<Value> = changes
        .iter()
        .map(|change| {
            json!({
                "at": change.at.format("%Y-%m-%d %H:%M UTC").to_string(),
                "percent": change.percent,
                "by": change.by,
            })
        })
        .collect();
    crate::metrics::api_request("console_overview", 200);
    Ok(render(
        state,
        "overview.html",
        StatusCode::OK,
        context! {
            ..chrome(id, session, state, "overview"),
            ..context! {
                days_back => REPORT_DAYS,
                phase => phase,
                rollout => flags.as_ref().map(|flags| json!({
                    "describe": flags.describe(),
                    "enabled": flags.enabled,
                    "percent": flags.percent,
                    "updated_by": flags.updated_by,
                    "updated_at": flags.updated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                })),
                counts => counts,
                rates => json!({
                    "auto_reject": percent(report_rates.auto_reject),
                    "auto_approve": percent(report_rates.auto_approve),
                    "manual_review": percent(report_rates.manual_review),
                    "false_positive": percent(report_rates.false_positive),
                }),
                verdict => report_verdict,
                criteria => criteria,
                days => day_items,
                phases => phases,
                backlog_waiting => backlog.waiting,
                backlog_oldest => backlog.oldest.map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string()),
                executions => execution_items,
            }
        },
    ))
}

/// What the overview shows of the current phase: percent (or shadow), since when, its
/// verdict and rates over what it is judged on, and what the promote gate says.
fn phase_view(phase: &crate::report::PhaseReport) -> serde_json::Value {
    let report = &phase.report;
    let samples = report.counts.samples(report.basis);
    let percent = |value: f64| format!("{value:.1} %");
    json!({
        "number": phase.phase.number,
        "name": if phase.phase.effective_percent == 0 {
            "shadow (0 % enforced, every request scored)".to_string()
        } else {
            format!("{} % enforced", phase.phase.effective_percent)
        },
        "since": phase.phase.started_at.map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string()),
        "by": phase.phase.by,
        "basis": match report.basis {
            crate::report::Basis::Cohort => "validated requests",
            crate::report::Basis::Shadow => "shadow-scored requests",
        },
        "samples": samples,
        "verdict": serde_json::to_value(&report.verdict).unwrap_or_default(),
        "rates": {
            "auto_reject": percent(report.rates.auto_reject),
            "auto_approve": percent(report.rates.auto_approve),
            "manual_review": percent(report.rates.manual_review),
            "false_positive": percent(report.rates.false_positive),
        },
        "gate": {
            "open": phase.gate.open,
            "next": phase.gate.next_percent,
            "summary": phase.gate.summary(),
        },
    })
}

/// The rates chart as an SVG image.
pub async fn rates_chart(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    if require(&state, &headers).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let pool = &state.api.pool;
    let end = Utc::now();
    let since = end - Duration::days(REPORT_DAYS);
    let drawn = async {
        let days = store::daily_counts(pool, since).await?;
        let changes = store::rollout_changes(pool, since).await?;
        crate::console::chart::rates_svg(&days, &changes, &Criteria::default(), since, end)
    }
    .await;
    match drawn {
        Ok(svg) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response(),
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "rollout chart failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn a_login_returns_only_to_a_console_page() {
        assert_eq!(
            safe_next(Some("/console/requests/0193-ab")),
            Some("/console/requests/0193-ab")
        );
        for bad in [
            "https://evil.example/console/",
            "//evil.example/console/x",
            "/console//evil.example",
            "/console/../api",
            "/console/x?y=<script>",
            "/requests/1",
        ] {
            assert_eq!(safe_next(Some(bad)), None, "{bad}");
        }
    }
}

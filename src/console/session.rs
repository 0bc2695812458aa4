//! Console sessions: an approver or operator logs in with their API key; the server keeps the
//! session (key name, roles, CSRF token, expiry) and the browser holds only a random id in a
//! `HttpOnly; SameSite=Strict` cookie. Every form carries the session's CSRF token; a POST
//! without it, with another session's, or from a session that expired is refused.
//!
//! Sessions live in the API process (one copy serves the console; a restart logs everyone
//! out). The key itself is never stored: only its name and roles, as [`ApiKeys`] proved them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header;
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use crate::access::{ApiKeys, Denied, Role};

/// The session cookie.
pub const COOKIE: &str = "wingman_session";
/// The login form's own CSRF cookie (before there is a session).
pub const LOGIN_COOKIE: &str = "wingman_login";
/// Sessions kept at most (the oldest expire first beyond it).
const MAX_SESSIONS: usize = 10_000;

/// One logged-in visitor.
#[derive(Debug, Clone)]
pub struct Session {
    /// The API key's name: who this is, as proven at login.
    pub key_name: String,
    pub can_read: bool,
    pub can_decide: bool,
    /// The token every form of this session carries.
    pub csrf: String,
    pub expires: Instant,
    /// A notice to show on the next page (a vote's answer), shown once.
    pub flash: Option<String>,
}

/// Every session of this process.
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Session>>>,
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginRefused {
    /// No key, an unknown key, or a key that may neither read nor decide.
    Key(Denied),
    /// The login form's CSRF token did not match its cookie.
    Csrf,
}

impl LoginRefused {
    pub fn code(&self) -> &'static str {
        match self {
            LoginRefused::Key(denied) => denied.code(),
            LoginRefused::Csrf => "csrf_mismatch",
        }
    }
}

/// A random token: 64 hex digits from the OS's random source.
pub fn random_token() -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    hex::encode(bytes)
}

/// Whether two tokens are equal, in constant time (an empty one never matches).
pub fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_string())
}

/// A `Set-Cookie` value for the console (`Path=/console`, `HttpOnly`, `SameSite=Strict`;
/// `Secure` when served over https). `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path=/console; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        max_age.as_secs()
    )
}

impl Sessions {
    /// Logs in with `presented` (an API key with the `read` or `decide` role); returns the new
    /// session's id.
    ///
    /// # Errors
    /// The key is missing, unknown, or may neither read nor decide.
    pub fn login(
        &self,
        keys: &ApiKeys,
        presented: Option<&str>,
        ttl: Duration,
        now: Instant,
    ) -> Result<(String, Session), LoginRefused> {
        let presented = presented.map(str::trim).filter(|key| !key.is_empty());
        let decide = keys.check(presented, Role::Decide);
        let read = keys.check(presented, Role::Read);
        let key_name = match (&decide, &read) {
            (Ok(name), _) | (_, Ok(name)) => (*name).to_string(),
            (Err(denied), _) => return Err(LoginRefused::Key(denied.clone())),
        };
        let session = Session {
            key_name,
            can_read: read.is_ok(),
            can_decide: decide.is_ok(),
            csrf: random_token(),
            expires: now + ttl,
            flash: None,
        };
        let id = random_token();
        let mut sessions = self.inner.lock().expect("sessions lock");
        sessions.retain(|_, session| session.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, session)| session.expires)
                .map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    /// The live session of the request's cookie.
    pub fn get(&self, headers: &HeaderMap, now: Instant) -> Option<(String, Session)> {
        let id = cookie(headers, COOKIE)?;
        let sessions = self.inner.lock().expect("sessions lock");
        sessions
            .get(&id)
            .filter(|session| session.expires > now)
            .map(|session| (id.clone(), session.clone()))
    }

    pub fn logout(&self, id: &str) {
        self.inner.lock().expect("sessions lock").remove(id);
    }

    /// Leaves a notice for the session's next page.
    pub fn flash(&self, id: &str, notice: String) {
        if let Some(session) = self.inner.lock().expect("sessions lock").get_mut(id) {
            session.flash = Some(notice);
        }
    }

    /// Takes the session's notice (shown once).
    pub fn take_flash(&self, id: &str) -> Option<String> {
        self.inner
            .lock()
            .expect("sessions lock")
            .get_mut(id)
            .and_then(|session| session.flash.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ApiKeys {
        ApiKeys::from_keys(&[
            ("alice", "k-alice", &[Role::Decide]),
            ("ops", "k-ops", &[Role::Read]),
            ("ci", "k-ci", &[Role::Submit]),
        ])
    }

    #[test]
    fn a_decide_or_read_key_logs_in_and_a_submit_key_does_not() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        let (_, alice) = sessions.login(&keys(), Some("k-alice"), ttl, now).unwrap();
        assert!(alice.can_decide && !alice.can_read);
        let (_, ops) = sessions.login(&keys(), Some("k-ops"), ttl, now).unwrap();
        assert!(ops.can_read && !ops.can_decide);
        assert_eq!(
            sessions.login(&keys(), Some("k-ci"), ttl, now).unwrap_err(),
            LoginRefused::Key(Denied::WrongRole { key: "ci".into() })
        );
        assert_eq!(
            sessions.login(&keys(), Some("nope"), ttl, now).unwrap_err(),
            LoginRefused::Key(Denied::Invalid)
        );
        assert_eq!(
            sessions.login(&keys(), Some("  "), ttl, now).unwrap_err(),
            LoginRefused::Key(Denied::Missing)
        );
    }

    #[test]
    fn a_session_is_found_by_its_cookie_until_it_expires_or_logs_out() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let (id, _) = sessions
            .login(&keys(), Some("k-alice"), Duration::from_secs(60), now)
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            format!("other=1; {COOKIE}={id}").parse().unwrap(),
        );
        assert!(sessions.get(&headers, now).is_some());
        assert!(
            sessions
                .get(&headers, now + Duration::from_secs(61))
                .is_none()
        );
        sessions.logout(&id);
        assert!(sessions.get(&headers, now).is_none());
    }

    #[test]
    fn tokens_compare_whole_and_never_empty() {
        let token = random_token();
        assert_eq!(token.len(), 64);
        assert!(same_token(&token, &token.clone()));
        assert!(!same_token(&token, &token[..63]));
        assert!(!same_token("", ""));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let value = set_cookie(COOKIE, "x", Duration::from_secs(5), true);
        assert!(value.contains("HttpOnly") && value.contains("SameSite=Strict"));
        assert!(value.ends_with("; Secure"));
        assert!(!set_cookie(COOKIE, "x", Duration::from_secs(5), false).contains("Secure"));
    }
}

//! `wingman.status.<request_id>`: the status event a publisher waits on, and its public status
//! word ([`PublicStatus`]): a request's [`Status`], or `INVALID` / `REFUSED` for a message that
//! moved no request. Built by the stages (through `bus::step`) and the consume loop; read by
//! the CLI (`wingman status --wait`), the API's event stream, the console, the approvals
//! worker's prompt updates and the pipeline bench.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::Stage;
use crate::envelope::RequestId;
use crate::status::Status;

/// `wingman.status.<request_id>`: what a publisher waits on. `details` are flattened into
/// the object (scores, approver, token expiry, result, error).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusEvent {
    pub event_id: Uuid,
    pub request_id: RequestId,
    pub status: PublicStatus,
    pub at: DateTime<Utc>,
    pub stage: Stage,
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

/// The `status` of a status event, on the wire the bare word (`"PENDING"`, `"INVALID"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublicStatus {
    /// The request's status after the step (a word of the state machine, as in its row).
    Request(Status),
    /// Intake refused the message: the request never entered the pipeline. Only ever
    /// published on the status subject, never stored as a row status.
    Invalid,
    /// The gateway refused the job (bad token, policy): nothing ran, and the request keeps
    /// its row status.
    Refused,
}

impl PublicStatus {
    /// Every word a status event may carry.
    pub const ALL: [PublicStatus; 14] = [
        PublicStatus::Request(Status::Received),
        PublicStatus::Request(Status::AutoApproved),
        PublicStatus::Request(Status::AutoRejected),
        PublicStatus::Request(Status::Pending),
        PublicStatus::Request(Status::Approved),
        PublicStatus::Request(Status::Rejected),
        PublicStatus::Request(Status::Expired),
        PublicStatus::Request(Status::Cancelled),
        PublicStatus::Request(Status::Executing),
        PublicStatus::Request(Status::Succeeded),
        PublicStatus::Request(Status::Failed),
        PublicStatus::Request(Status::Indeterminate),
        PublicStatus::Invalid,
        PublicStatus::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PublicStatus::Request(status) => status.as_str(),
            PublicStatus::Invalid => "INVALID",
            PublicStatus::Refused => "REFUSED",
        }
    }

    /// The status named exactly `word` (no trimming or case folding: this is the wire form).
    pub fn parse(word: &str) -> Option<PublicStatus> {
        PublicStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == word)
    }

    /// The request's status, when the step moved it (`None` for INVALID and REFUSED).
    pub fn request(self) -> Option<Status> {
        match self {
            PublicStatus::Request(status) => Some(status),
            PublicStatus::Invalid | PublicStatus::Refused => None,
        }
    }

    /// INVALID or REFUSED: the message moved no request, and nothing follows it.
    pub fn is_refusal(self) -> bool {
        self.request().is_none()
    }
}

impl From<Status> for PublicStatus {
    fn from(status: Status) -> Self {
        PublicStatus::Request(status)
    }
}

impl PartialEq<Status> for PublicStatus {
    fn eq(&self, other: &Status) -> bool {
        self.request() == Some(*other)
    }
}

impl fmt::Display for PublicStatus {
    /// The word, padded as asked (`{:<14}` lines up `wingman status` columns, as the word did
    /// when it was a `String`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for PublicStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PublicStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Word;

        impl serde::de::Visitor<'_> for Word {
            type Value = PublicStatus;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a status word (PENDING, …, INVALID, REFUSED)")
            }

            fn visit_str<E: serde::de::Error>(self, word: &str) -> Result<PublicStatus, E> {
                PublicStatus::parse(word).ok_or_else(|| {
                    let words: Vec<&str> = PublicStatus::ALL.iter().map(|s| s.as_str()).collect();
                    E::custom(format!(
                        "unknown status `{word}` (expected one of {})",
                        words.join(", ")
                    ))
                })
            }
        }

        // `deserialize_str` lets a borrowing deserializer hand over the word without a copy.
        deserializer.deserialize_str(Word)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_public_status_is_its_old_word_on_the_wire_and_reads_back() {
        let words = [
            "RECEIVED",
            "AUTO_APPROVED",
            "AUTO_REJECTED",
            "PENDING",
            "APPROVED",
            "REJECTED",
            "EXPIRED",
            "CANCELLED",
            "EXECUTING",
            "SUCCEEDED",
            "FAILED",
            "INDETERMINATE",
            "INVALID",
            "REFUSED",
        ];
        assert_eq!(PublicStatus::ALL.len(), words.len());
        for (status, word) in PublicStatus::ALL.into_iter().zip(words) {
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{word}\"")
            );
            assert_eq!(
                serde_json::from_str::<PublicStatus>(&format!("\"{word}\"")).unwrap(),
                status
            );
            assert_eq!(status.to_string(), word);
            assert_eq!(format!("{status:<16}|"), format!("{word:<16}|"));
        }
        for status in Status::ALL {
            assert_eq!(PublicStatus::from(status).as_str(), status.as_str());
            assert_eq!(PublicStatus::from(status), status);
        }
        assert!(serde_json::from_str::<PublicStatus>("\"DONE\"").is_err());
        assert!(serde_json::from_str::<PublicStatus>("\"pending\"").is_err());
    }

    /// The event as `wingman status --json` and the API's stream print it, and as the
    /// status consumers of every version read it: flat, the word as before.
    #[test]
    fn a_status_event_keeps_its_flat_json() {
        let event_id = Uuid::parse_str("0193a5e0-0000-7000-8000-000000000001").unwrap();
        let request_id: RequestId = "0193a5e0-0000-4000-8000-000000000002".parse().unwrap();
        let at = DateTime::parse_from_rfc3339("2026-12-04T14:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut details = Map::new();
        details.insert("code".into(), json!("token_reused"));
        details.insert("error".into(), json!("this token was already used"));
        let refused = StatusEvent {
            event_id,
            request_id,
            status: PublicStatus::Refused,
            at,
            stage: Stage::Gateway,
            details,
        };
        let old = json!({
            "event_id": "0193a5e0-0000-7000-8000-000000000001",
            "request_id": "0193a5e0-0000-4000-8000-000000000002",
            "status": "REFUSED",
            "at": "2026-12-04T14:00:00.123456Z",
            "stage": "gateway",
            "code": "token_reused",
            "error": "this token was already used",
        });
        assert_eq!(serde_json::to_value(&refused).unwrap(), old);
        assert_eq!(serde_json::from_value::<StatusEvent>(old).unwrap(), refused);
        let moved = StatusEvent {
            status: Status::Executing.into(),
            details: Map::new(),
            ..refused
        };
        assert_eq!(serde_json::to_value(&moved).unwrap()["status"], "EXECUTING");
    }
}

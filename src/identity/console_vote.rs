//! Console votes, signed by the approver's own key.
//!
//! `wingman approve` / `reject` sign a [`VoteStatement`] (which request, which verdict, the
//! note, a two-minute expiry) with the approver's Ed25519 key (`WINGMAN_APPROVER_KEY_FILE`,
//! made by `wingman approvers keygen`), as a PASETO v4.public document whose purpose is
//! [`PURPOSE`]. The approvals worker opens it with the public keys the roster lists for the
//! named approver: whoever can publish on `wingman.console.decisions` still cannot vote as
//! anybody whose key they do not hold.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::envelope::RequestId;
use crate::identity::Verdict;
use crate::identity::roster::{Approver, Roster};
use crate::token::{SigningKey, VerifyKey, open_document, sign_document};

/// The signed document's purpose (a PASETO implicit assertion): a capability token or an
/// audit checkpoint never passes for a vote.
pub const PURPOSE: &str = "wingman-console-vote";
/// How long a signed vote stays good.
pub const VALIDITY: Duration = Duration::minutes(2);

/// What the approver signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteStatement {
    pub approver: String,
    pub request_id: RequestId,
    pub verdict: Verdict,
    pub note: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// What travels on `wingman.console.decisions`: the signed statement, and in the clear the
/// approver (which keys to try), the request and the verdict (so even a refused vote is
/// audited on the right request). [`open`] checks the clear fields against the statement.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedVote {
    pub approver: String,
    pub request_id: RequestId,
    pub verdict: Verdict,
    pub statement: String,
}

/// Why a signed vote proves nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteProblem {
    #[error("{0} is not on the approver list")]
    UnknownApprover(String),
    #[error("the vote is not signed by a key registered to {0}")]
    BadSignature(String),
    #[error("the signed vote expired at {0}")]
    Expired(String),
}

/// Signs a vote; `now` sets its expiry.
///
/// # Errors
/// When signing fails (it does not with a valid key).
pub fn sign(
    key: &SigningKey,
    approver: &str,
    request_id: RequestId,
    verdict: Verdict,
    note: Option<String>,
    now: DateTime<Utc>,
) -> anyhow::Result<SignedVote> {
    let statement = VoteStatement {
        approver: approver.to_string(),
        request_id,
        verdict,
        note,
        expires_at: now + VALIDITY,
    };
    let document = sign_document(key, PURPOSE, &serde_json::to_vec(&statement)?)
        .map_err(|error| anyhow::anyhow!("sign the vote: {error}"))?;
    Ok(SignedVote {
        approver: approver.to_string(),
        request_id,
        verdict,
        statement: document,
    })
}

/// Opens a signed vote with the keys the roster lists for its approver.
///
/// # Errors
/// [`VoteProblem`]: an approver the roster does not know, a signature none of their keys
/// makes (or a statement that says otherwise than the clear fields), an expired statement.
pub fn open<'a>(
    roster: &'a Roster,
    vote: &SignedVote,
    now: DateTime<Utc>,
) -> Result<(&'a Approver, VoteStatement), VoteProblem> {
    let approver = roster
        .by_name(&vote.approver)
        .ok_or_else(|| VoteProblem::UnknownApprover(vote.approver.clone()))?;
    let bad_signature = || VoteProblem::BadSignature(approver.name.clone());
    let statement = approver
        .console_keys
        .iter()
        .filter_map(|text| VerifyKey::from_text(text).ok())
        .find_map(|key| open_document(&key, PURPOSE, &vote.statement).ok())
        .ok_or_else(bad_signature)?;
    let statement: VoteStatement = serde_json::from_str(&statement).map_err(|_| bad_signature())?;
    if statement.approver != approver.name
        || statement.request_id != vote.request_id
        || statement.verdict != vote.verdict
    {
        return Err(bad_signature());
    }
    if statement.expires_at <= now {
        return Err(VoteProblem::Expired(
            statement
                .expires_at
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
        ));
    }
    Ok((approver, statement))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::generate_keypair;

    fn roster_with(name: &str, key: &VerifyKey) -> Roster {
        Roster {
            approvers: vec![Approver {
                name: name.into(),
                console_keys: vec![key.to_text()],
                telegram_ids: Vec::new(),
                api_keys: Vec::new(),
                publishers: Vec::new(),
                added_at: Utc::now(),
            }],
        }
    }

    #[test]
    fn a_vote_signed_by_the_approvers_key_opens_as_theirs() {
        let (key, public) = generate_keypair();
        let roster = roster_with("alice", &public);
        let id = RequestId::generate();
        let vote = sign(&key, "alice", id, Verdict::Approve, None, Utc::now()).unwrap();
        let (approver, statement) = open(&roster, &vote, Utc::now()).unwrap();
        assert_eq!(approver.name, "alice");
        assert_eq!(statement.request_id, id);
        assert_eq!(statement.verdict, Verdict::Approve);
    }

    #[test]
    fn a_vote_in_another_approvers_name_is_refused() {
        let (mallory_key, _) = generate_keypair();
        let (_, alice_public) = generate_keypair();
        let roster = roster_with("alice", &alice_public);
        let forged = sign(
            &mallory_key,
            "alice",
            RequestId::generate(),
            Verdict::Approve,
            None,
            Utc::now(),
        )
        .unwrap();
        assert_eq!(
            open(&roster, &forged, Utc::now()).unwrap_err(),
            VoteProblem::BadSignature("alice".into())
        );
    }

    #[test]
    fn a_statement_relabelled_with_another_name_is_refused() {
        let (key, public) = generate_keypair();
        let mut roster = roster_with("alice", &public);
        let mut second = roster.approvers[0].clone();
        second.name = "alice-2".into();
        second.console_keys = vec![public.to_text()];
        roster.approvers.push(second);
        // Alice signs as herself, then sends it under the other name: the statement says alice.
        let mut vote = sign(
            &key,
            "alice",
            RequestId::generate(),
            Verdict::Approve,
            None,
            Utc::now(),
        )
        .unwrap();
        vote.approver = "alice-2".into();
        assert_eq!(
            open(&roster, &vote, Utc::now()).unwrap_err(),
            VoteProblem::BadSignature("alice-2".into())
        );
    }

    #[test]
    fn a_signed_approval_replayed_as_another_request_or_verdict_is_refused() {
        let (key, public) = generate_keypair();
        let roster = roster_with("alice", &public);
        let vote = sign(
            &key,
            "alice",
            RequestId::generate(),
            Verdict::Reject,
            Some("no".into()),
            Utc::now(),
        )
        .unwrap();
        let mut elsewhere = vote.clone();
        elsewhere.request_id = RequestId::generate();
        assert!(open(&roster, &elsewhere, Utc::now()).is_err());
        let mut flipped = vote;
        flipped.verdict = Verdict::Approve;
        assert!(open(&roster, &flipped, Utc::now()).is_err());
    }

    #[test]
    fn an_expired_or_unknown_vote_is_refused() {
        let (key, public) = generate_keypair();
        let roster = roster_with("alice", &public);
        let signed_at = Utc::now() - Duration::minutes(5);
        let old = sign(
            &key,
            "alice",
            RequestId::generate(),
            Verdict::Approve,
            None,
            signed_at,
        )
        .unwrap();
        assert!(matches!(
            open(&roster, &old, Utc::now()),
            Err(VoteProblem::Expired(_))
        ));
        let stranger = sign(
            &key,
            "eve",
            RequestId::generate(),
            Verdict::Approve,
            None,
            Utc::now(),
        )
        .unwrap();
        assert_eq!(
            open(&roster, &stranger, Utc::now()).unwrap_err(),
            VoteProblem::UnknownApprover("eve".into())
        );
    }
}

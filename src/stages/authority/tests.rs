//! Unit tests of the authority's pure decisions: who a minted token is handed to.

use chrono::Utc;
use uuid::Uuid;

use super::*;

fn minted(holder: Option<Principal>) -> Minted {
    Minted {
        token: "v4.public.x".into(),
        token_id: Uuid::now_v7(),
        expires_at: Utc::now(),
        approvers: vec!["validator".into()],
        holder,
    }
}

fn code(minted: Option<&Minted>, asker: &Principal) -> &'static str {
    match hand_out(RequestId::generate(), minted, asker) {
        Ok(_) => "handed_out",
        Err(refusal) => refusal.code,
    }
}

#[test]
fn a_manual_token_is_handed_to_its_submitter_and_to_nobody_else() {
    let alice = Principal::ApiKey("alice".into());
    let manual = minted(Some(alice.clone()));
    assert_eq!(code(Some(&manual), &alice), "handed_out");
    for other in [
        Principal::ApiKey("mallory".into()),
        Principal::Nats("alice".into()),
        Principal::Anonymous,
    ] {
        assert_eq!(code(Some(&manual), &other), "not_the_submitter", "{other}");
    }
}

#[test]
fn an_automatic_token_is_handed_to_nobody_not_even_its_submitter() {
    let alice = Principal::ApiKey("alice".into());
    let refusal = hand_out(RequestId::generate(), Some(&minted(None)), &alice).unwrap_err();
    assert_eq!(refusal.code, "automatic_execution");
    assert!(
        refusal.reason.contains("\"execution\": \"manual\""),
        "{}",
        refusal.reason
    );
    assert_eq!(code(None, &alice), "no_token");
}

#[test]
fn a_minted_record_from_before_manual_execution_reads_as_automatic() {
    let old = serde_json::json!({
        "token": "v4.public.x", "token_id": Uuid::now_v7(), "expires_at": Utc::now(),
        "approvers": ["validator"],
    });
    let minted: Minted = serde_json::from_value(old).unwrap();
    assert_eq!(minted.holder, None);
}

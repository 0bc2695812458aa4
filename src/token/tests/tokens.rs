//! Minting and verifying tokens.

use chrono::Duration;
use pasetors::Public;
use pasetors::token::UntrustedToken;
use pasetors::version4::{PublicToken, V4};

use super::{ARGV_HASH, OTHER_ARGV_HASH, base64url, expected_for, now, sample_claims};
use crate::envelope::RequestId;
use crate::principal::Principal;
use crate::request::Environment;
use crate::token::claims::Payload;
use crate::token::{
    Expected, MAX_TOKEN_BYTES, Presenter, SigningKey, TokenError, VerifyKey, check_presenter,
    generate_keypair, mint, verify,
};

fn verify_code(key: &VerifyKey, token: &str, expected: &Expected<'_>) -> &'static str {
    match verify(key, token, expected) {
        Ok(_) => "accepted",
        Err(error) => error.code(),
    }
}

/// Signs an arbitrary payload with `key`, bypassing `mint`'s checks.
fn sign_payload(key: &SigningKey, payload: &Payload) -> String {
    let json = serde_json::to_vec(payload).expect("payload serializes");
    PublicToken::sign(key.as_pasetors(), &json, None, None).expect("signing works")
}

#[test]
fn a_minted_token_verifies_and_round_trips_every_claim() {
    let (signing_key, verify_key) = generate_keypair();
    let claims = sample_claims();

    let token = mint(&signing_key, &claims).expect("mint");
    let verified = verify(&verify_key, &token, &expected_for(&claims)).expect("verify");

    assert!(token.starts_with("v4.public."), "{token}");
    assert_eq!(verified, claims);
}

#[test]
fn a_token_carries_the_registered_claims_in_its_payload() {
    let (signing_key, _) = generate_keypair();
    let claims = sample_claims();
    let token = mint(&signing_key, &claims).expect("mint");

    let untrusted = UntrustedToken::<Public, V4>::try_from(token.as_str()).expect("parse");
    let payload: serde_json::Value =
        serde_json::from_slice(untrusted.untrusted_payload()).expect("json payload");

    assert_eq!(payload["iss"], "wingman-authority");
    assert_eq!(payload["aud"], "wingman-gateway");
    assert_eq!(payload["sub"], claims.request_id.to_string());
    assert_eq!(payload["jti"], claims.token_id.to_string());
    assert_eq!(payload["iat"], "2026-02-25T06:13:20.123456789Z");
    assert_eq!(payload["nbf"], payload["iat"]);
    assert_eq!(payload["exp"], "2026-02-25T06:18:20.123456789Z");
    assert_eq!(payload["environment"], "prd");
}

#[test]
fn a_token_signed_by_another_key_is_a_bad_signature() {
    let (_, verify_key) = generate_keypair();
    let (other_signing_key, _) = generate_keypair();
    let claims = sample_claims();
    let token = mint(&other_signing_key, &claims).expect("mint");

    assert_eq!(
        verify_code(&verify_key, &token, &expected_for(&claims)),
        "bad_signature"
    );
}

#[test]
fn a_token_with_any_byte_tampered_is_never_accepted() {
    let (signing_key, verify_key) = generate_keypair();
    let claims = sample_claims();
    let token = mint(&signing_key, &claims).expect("mint");
    let message = UntrustedToken::<Public, V4>::try_from(token.as_str())
        .expect("parse")
        .untrusted_message()
        .to_vec();

    for index in 0..message.len() {
        let mut tampered = message.clone();
        tampered[index] ^= 0x01;
        let tampered_token = format!("v4.public.{}", base64url(&tampered));
        let code = verify_code(&verify_key, &tampered_token, &expected_for(&claims));
        assert!(
            code == "bad_signature" || code == "malformed",
            "byte {index} tampered gave {code}"
        );
    }
    // The helper really rebuilds tokens: the untouched message still verifies.
    let rebuilt = format!("v4.public.{}", base64url(&message));
    assert_eq!(
        verify_code(&verify_key, &rebuilt, &expected_for(&claims)),
        "accepted"
    );
}

#[test]
fn a_token_past_its_expiry_is_expired() {
    let (signing_key, verify_key) = generate_keypair();
    let claims = sample_claims();
    let token = mint(&signing_key, &claims).expect("mint");
    let mut expected = expected_for(&claims);

    expected.now = claims.expires_at + expected.max_clock_skew;
    assert_eq!(verify_code(&verify_key, &token, &expected), "expired");

    expected.now = claims.expires_at + expected.max_clock_skew - Duration::nanoseconds(1);
    assert_eq!(verify_code(&verify_key, &token, &expected), "accepted");
}

#[test]
fn a_token_issued_in_the_future_beyond_the_skew_is_not_yet_valid() {
    let (signing_key, verify_key) = generate_keypair();
    let claims = sample_claims();
    let token = mint(&signing_key, &claims).expect("mint");
    let mut expected = expected_for(&claims);

    expected.now = claims.issued_at - expected.max_clock_skew - Duration::nanoseconds(1);
    assert_eq!(verify_code(&verify_key, &token, &expected), "not_yet_valid");

    expected.now = claims.issued_at - expected.max_clock_skew;
    assert_eq!(verify_code(&verify_key, &token, &expected), "accepted");
}

#[test]
fn each_mismatch_with_the_job_is_refused_with_its_own_code() {
    let (signing_key, verify_key) = generate_keypair();
    let claims = sample_claims();
    let token = mint(&signing_key, &claims).expect("mint");

    let mut other_request = expected_for(&claims);
    other_request.request_id = RequestId::generate();
    let mut other_environment = expected_for(&claims);
    other_environment.environment = Environment::Dev;
    let mut other_command = expected_for(&claims);
    other_command.argv_hash = OTHER_ARGV_HASH;

    assert_eq!(
        verify_code(&verify_key, &token, &other_request),
        "wrong_request"
    );
    assert_eq!(
        verify_code(&verify_key, &token, &other_environment),
        "wrong_environment"
    );
    assert_eq!(
        verify_code(&verify_key, &token, &other_command),
        "command_mismatch"
    );
}

#[test]
fn an_environment_outside_the_allowed_list_is_not_allowed() {
    let (signing_key, verify_key) = generate_keypair();
    let claims = sample_claims();
    let token = mint(&signing_key, &claims).expect("mint");
    let mut expected = expected_for(&claims);
    expected.allowed_environments = &[Environment::Dev, Environment::Test];

    assert_eq!(
        verify_code(&verify_key, &token, &expected),
        "environment_not_allowed"
    );
}

#[test]
fn a_token_for_another_audience_or_issuer_is_refused() {
    let (signing_key, verify_key) = generate_keypair();
    let claims = sample_claims();
    let mut other_audience = Payload::from_claims(&claims);
    other_audience.aud = "someone-else".to_owned();
    let mut other_issuer = Payload::from_claims(&claims);
    other_issuer.iss = "someone-else".to_owned();

    let audience_token = sign_payload(&signing_key, &other_audience);
    let issuer_token = sign_payload(&signing_key, &other_issuer);

    let expected = expected_for(&claims);
    assert_eq!(
        verify_code(&verify_key, &audience_token, &expected),
        "wrong_audience"
    );
    assert_eq!(
        verify_code(&verify_key, &issuer_token, &expected),
        "wrong_issuer"
    );
}

#[test]
fn garbage_empty_local_and_oversized_tokens_are_malformed() {
    let (signing_key, verify_key) = generate_keypair();
    let claims = sample_claims();
    let expected = expected_for(&claims);
    let token = mint(&signing_key, &claims).expect("mint");
    let body = token.trim_start_matches("v4.public.");
    let oversized = format!("v4.public.{}", "A".repeat(MAX_TOKEN_BYTES));

    for garbage in [
        "",
        "not a token",
        "v4.public.",
        "v4.public.!!!not-base64!!!",
        "v4.public.AAAA",
        &format!("v4.local.{body}"),
        &format!("v3.public.{body}"),
        &oversized,
    ] {
        assert_eq!(
            verify_code(&verify_key, garbage, &expected),
            "malformed",
            "{garbage:.40}"
        );
    }
}

#[test]
fn a_signed_payload_that_is_not_a_claim_set_is_malformed() {
    let (signing_key, verify_key) = generate_keypair();
    let claims = sample_claims();
    let token = PublicToken::sign(signing_key.as_pasetors(), b"{\"hello\":1}", None, None)
        .expect("signing works");

    assert_eq!(
        verify_code(&verify_key, &token, &expected_for(&claims)),
        "malformed"
    );
}

#[test]
fn mint_refuses_claims_that_could_never_verify() {
    let (signing_key, _) = generate_keypair();
    let mut backwards = sample_claims();
    backwards.expires_at = backwards.issued_at;
    let mut bad_hash = sample_claims();
    bad_hash.argv_hash = ARGV_HASH.to_uppercase();
    let mut unapproved = sample_claims();
    unapproved.approvers.clear();
    let mut oversized = sample_claims();
    oversized.approvers = vec!["approver".repeat(100); 10];

    for claims in [backwards, bad_hash, unapproved, oversized] {
        let error = mint(&signing_key, &claims).expect_err("refused");
        assert_eq!(error.code(), "mint_failed", "{error}");
    }
}

#[test]
fn error_codes_are_distinct_and_messages_lowercase() {
    let request_id = RequestId::generate();
    let errors = [
        TokenError::malformed("bad encoding"),
        TokenError::BadSignature,
        TokenError::Expired { expires_at: now() },
        TokenError::NotYetValid { valid_from: now() },
        TokenError::WrongRequest {
            expected: request_id,
            found: request_id,
        },
        TokenError::WrongEnvironment {
            expected: Environment::Dev,
            found: Environment::Prd,
        },
        TokenError::EnvironmentNotAllowed {
            environment: Environment::Prd,
        },
        TokenError::CommandMismatch {
            expected: ARGV_HASH.into(),
            found: ARGV_HASH.into(),
        },
        TokenError::WrongAudience { found: "x".into() },
        TokenError::WrongIssuer { found: "x".into() },
        TokenError::AutomaticToken,
        TokenError::ManualToken {
            holder: "api:alice".into(),
        },
        TokenError::NotTheHolder {
            holder: "api:alice".into(),
            caller: "api:mallory".into(),
        },
        TokenError::Mint {
            reason: "signing failed",
        },
    ];
    let mut codes: Vec<_> = errors.iter().map(TokenError::code).collect();
    codes.sort_unstable();
    codes.dedup();

    assert_eq!(codes.len(), errors.len());
    for error in &errors {
        let message = error.to_string();
        assert!(message.starts_with(char::is_lowercase), "{message}");
        assert!(!message.ends_with('.'), "{message}");
    }
}

#[test]
fn a_manual_tokens_holder_round_trips_and_an_automatic_token_carries_no_holder_claim() {
    let (signing_key, verify_key) = generate_keypair();
    let automatic = sample_claims();
    let token = mint(&signing_key, &automatic).expect("mint");
    let untrusted = UntrustedToken::<Public, V4>::try_from(token.as_str()).expect("parse");
    let payload: serde_json::Value =
        serde_json::from_slice(untrusted.untrusted_payload()).expect("json payload");
    assert!(payload.get("holder").is_none(), "{payload}");

    let manual = crate::token::Claims {
        holder: Some(Principal::ApiKey("alice".into())),
        ..sample_claims()
    };
    let token = mint(&signing_key, &manual).expect("mint");
    let verified = verify(&verify_key, &token, &expected_for(&manual)).expect("verify");
    assert_eq!(verified.holder, Some(Principal::ApiKey("alice".into())));
}

#[test]
fn only_the_pipeline_presents_an_automatic_token_and_only_its_holder_a_manual_one() {
    let alice = Principal::ApiKey("alice".into());
    let mallory = Principal::ApiKey("mallory".into());
    let alice_on_nats = Principal::Nats("alice".into());
    let automatic = sample_claims();
    let manual = crate::token::Claims {
        holder: Some(alice.clone()),
        ..sample_claims()
    };
    let code = |claims: &crate::token::Claims, presenter| match check_presenter(claims, presenter) {
        Ok(()) => "accepted",
        Err(error) => error.code(),
    };
    assert_eq!(code(&automatic, Presenter::Pipeline), "accepted");
    assert_eq!(
        code(&automatic, Presenter::Client(&alice)),
        "automatic_token"
    );
    assert_eq!(code(&manual, Presenter::Client(&alice)), "accepted");
    assert_eq!(code(&manual, Presenter::Pipeline), "manual_token");
    assert_eq!(code(&manual, Presenter::Client(&mallory)), "not_the_holder");
    assert_eq!(
        code(&manual, Presenter::Client(&alice_on_nats)),
        "not_the_holder",
        "a NATS user named like the key is another principal"
    );
}

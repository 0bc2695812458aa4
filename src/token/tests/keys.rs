//! Keys as text and as files.

use std::fs::{self, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::{base64url, expected_for, sample_claims};
use crate::token::{
    KeyError, SigningKey, VerifyKey, generate_keypair, mint, read_signing_key, read_verify_key,
    verify, write_keypair,
};

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn keys_round_trip_through_their_paserk_text() {
    let (signing_key, verify_key) = generate_keypair();
    let secret_text = signing_key.to_pem_or_text();
    let public_text = verify_key.to_text();

    let signing_again = SigningKey::from_text(&format!("  {secret_text}\n")).expect("secret");
    let verify_again = VerifyKey::from_text(&format!("{public_text}\n")).expect("public");

    assert!(secret_text.starts_with("k4.secret."), "{secret_text}");
    assert!(public_text.starts_with("k4.public."), "{public_text}");
    assert_eq!(signing_again.to_pem_or_text(), secret_text);
    assert!(verify_again == verify_key);
    assert!(signing_again.verify_key() == verify_key);
}

#[test]
fn the_wrong_kind_of_key_text_is_refused() {
    let (signing_key, verify_key) = generate_keypair();

    assert!(matches!(
        SigningKey::from_text(&verify_key.to_text()),
        Err(KeyError::Invalid {
            expected: "k4.secret"
        })
    ));
    assert!(matches!(
        VerifyKey::from_text(&signing_key.to_pem_or_text()),
        Err(KeyError::Invalid {
            expected: "k4.public"
        })
    ));
    assert!(SigningKey::from_text("").is_err());
    assert!(VerifyKey::from_text("k4.public.not-base64!").is_err());
}

#[test]
fn a_secret_key_whose_public_half_does_not_match_is_refused() {
    let (signing_key, _) = generate_keypair();
    let (other_signing_key, _) = generate_keypair();
    // A v4 secret key is the 32-byte seed followed by the 32-byte public key.
    let mut spliced = signing_key.as_pasetors().as_bytes()[..32].to_vec();
    spliced.extend_from_slice(&other_signing_key.as_pasetors().as_bytes()[32..]);

    let text = format!("k4.secret.{}", base64url(&spliced));

    assert!(matches!(
        SigningKey::from_text(&text),
        Err(KeyError::Invalid { .. })
    ));
}

#[test]
fn debug_of_a_signing_key_does_not_show_the_key() {
    let (signing_key, _) = generate_keypair();
    let secret_text = signing_key.to_pem_or_text();
    let encoded = secret_text.trim_start_matches("k4.secret.");

    let shown = format!("{signing_key:?} {signing_key:#?}");

    assert_eq!(format!("{signing_key:?}"), "SigningKey(…)");
    assert!(!shown.contains(encoded));
    assert!(!shown.contains(&encoded[..16]));
}

#[test]
fn a_written_key_pair_reads_back_and_signs_verifiable_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (secret_path, public_path) = write_keypair(dir.path(), "authority").expect("write");

    let signing_key = read_signing_key(&secret_path).expect("read secret");
    let verify_key = read_verify_key(&public_path).expect("read public");
    let claims = sample_claims();
    let token = mint(&signing_key, &claims).expect("mint");

    assert_eq!(secret_path, dir.path().join("authority.key"));
    assert_eq!(public_path, dir.path().join("authority.pub"));
    assert!(signing_key.verify_key() == verify_key);
    assert_eq!(
        verify(&verify_key, &token, &expected_for(&claims)),
        Ok(claims)
    );
    let secret_text = fs::read_to_string(&secret_path).expect("read");
    assert!(secret_text.starts_with("k4.secret.") && secret_text.ends_with('\n'));
}

#[test]
fn key_files_get_modes_0600_and_0644() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (secret_path, public_path) = write_keypair(dir.path(), "authority").expect("write");

    assert_eq!(mode_of(&secret_path), 0o600);
    assert_eq!(mode_of(&public_path), 0o644);
}

#[test]
fn writing_a_key_pair_never_overwrites_an_existing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (secret_path, public_path) = write_keypair(dir.path(), "authority").expect("write");
    let secret_before = fs::read_to_string(&secret_path).expect("read");

    let again = write_keypair(dir.path(), "authority");
    fs::remove_file(&secret_path).expect("remove secret");
    let public_left = write_keypair(dir.path(), "authority");

    assert!(
        matches!(again, Err(KeyError::AlreadyExists { .. })),
        "{again:?}"
    );
    assert!(matches!(public_left, Err(KeyError::AlreadyExists { path }) if path == public_path));
    assert!(!secret_path.exists(), "no lone secret key is left behind");
    assert_ne!(secret_before, "");
}

#[test]
fn a_secret_key_file_readable_by_others_is_refused_with_a_chmod_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (secret_path, _) = write_keypair(dir.path(), "authority").expect("write");
    fs::set_permissions(&secret_path, Permissions::from_mode(0o644)).expect("chmod");

    let error = read_signing_key(&secret_path).expect_err("refused");

    assert!(
        matches!(error, KeyError::InsecurePermissions { mode: 0o644, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("chmod 600"), "{error}");
}

#[test]
fn a_secret_key_file_with_garbage_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("garbage.key");
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .expect("create");
    file.write_all(b"not a key\n").expect("write");

    assert!(matches!(
        read_signing_key(&path),
        Err(KeyError::Invalid { .. })
    ));
    assert!(matches!(
        read_verify_key(&dir.path().join("missing.pub")),
        Err(KeyError::Io { action: "open", .. })
    ));
}

#[test]
fn key_names_that_could_escape_the_directory_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");

    for name in ["", "../authority", "a/b", ".hidden", "white space"] {
        assert!(
            matches!(
                write_keypair(dir.path(), name),
                Err(KeyError::InvalidName { .. })
            ),
            "{name:?}"
        );
    }
}

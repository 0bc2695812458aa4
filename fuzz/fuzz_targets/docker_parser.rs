//! Fuzzes the docker command parser: any bytes, read as (lossy) UTF-8, go through
//! `parse_command_line`, and the same text split on whitespace goes through `parse_argv`
//! and `classify`.
//!
//! An accepted line must contain no shell metacharacter, and its operation must be
//! canonical: its canonical argv parses back to the same operation with the same hash,
//! and `validate` accepts it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wingman::docker::{DockerOperation, classify, parse_argv, parse_canonical, parse_command_line};

/// Shell metacharacters that an accepted command line never contains.
const SHELL_METACHARACTERS: &[char] = &[';', '|', '&', '$', '`', '<', '>'];

fn is_lowercase_sha256_hex(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

fn check_accepted(line: &str, op: &DockerOperation) {
    assert!(
        !line.contains(SHELL_METACHARACTERS),
        "accepted a line with a shell metacharacter: {line:?} -> {op:?}"
    );
    assert!(
        op.is_read_only() != op.is_mutating(),
        "read-only and mutating agree for {op:?}"
    );

    let argv = op.canonical_argv();
    let reparsed = parse_canonical(&argv).unwrap_or_else(|error| {
        panic!(
            "canonical argv does not parse: {error}\nline: {line:?}\nop: {op:?}\nargv: {argv:?}"
        )
    });
    assert_eq!(
        &reparsed, op,
        "canonical argv parses to another operation\nline: {line:?}\nargv: {argv:?}"
    );

    let hash = op.argv_hash();
    assert!(is_lowercase_sha256_hex(&hash), "argv hash {hash:?} of {op:?}");
    assert_eq!(hash, reparsed.argv_hash(), "hash changed by reparsing {op:?}");

    if let Err(error) = op.validate() {
        panic!("validate refuses a parsed operation: {error}\nline: {line:?}\nop: {op:?}");
    }
    // Display quotes the canonical argv; it must not panic.
    let _ = op.to_string();
    let _ = op.targets_summary();
}

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    match parse_command_line(&line) {
        Ok(op) => check_accepted(&line, &op),
        Err(error) => {
            // Messages escape and cut user text; formatting must not panic.
            let message = error.to_string();
            assert!(!message.is_empty(), "empty message for {error:?}");
            let _ = error.code();
        }
    }

    let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    if let Err(error) = parse_argv(&words) {
        let _ = error.to_string();
    }
    let _ = classify(&words);
    // The wrapper classifies the arguments after `docker`.
    if let Some((_, args)) = words.split_first() {
        let _ = classify(args);
    }
});

//! Fuzzes the public request contract: any bytes go through `parse_request`.
//!
//! On success the request must respect the field limits and survive a round trip through
//! its public JSON form; on failure the message must be non-empty and, when a field is at
//! fault, start by naming it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wingman::envelope::RequestId;
use wingman::request::{MAX_COMMAND_BYTES, MAX_DESCRIPTION_BYTES, MAX_TITLE, parse_request};

/// A fixed fallback id, so that a run is deterministic for its input.
fn fallback_id() -> RequestId {
    "0190a6f2-7c4e-7a51-9d2b-5c1f3e8a9b10"
        .parse()
        .expect("the fixed fallback id is a UUID")
}

fuzz_target!(|data: &[u8]| {
    match parse_request(data, fallback_id) {
        Ok(request) => {
            let title_chars = request.title.chars().count();
            assert!(title_chars <= MAX_TITLE, "title has {title_chars} characters");
            assert!(
                request.description.len() <= MAX_DESCRIPTION_BYTES,
                "description has {} bytes",
                request.description.len()
            );
            if let Some(command) = &request.command {
                assert!(
                    command.line.len() <= MAX_COMMAND_BYTES,
                    "command has {} bytes",
                    command.line.len()
                );
            }

            let public = serde_json::to_vec(&request.to_public_json())
                .expect("the public JSON of a request serializes");
            let again = parse_request(&public, fallback_id).unwrap_or_else(|error| {
                panic!(
                    "the public JSON of an accepted request is refused: {error}\n\
                     request: {request:?}\npublic JSON: {}",
                    String::from_utf8_lossy(&public)
                )
            });
            assert_eq!(again, request, "the public JSON round trip changed the request");
        }
        Err(error) => {
            let message = error.to_string();
            assert!(!message.is_empty(), "empty message for {error:?}");
            assert!(!error.code.is_empty(), "empty code for {error:?}");
            if let Some(field) = &error.field {
                assert!(
                    message.starts_with("field `"),
                    "message does not name field `{field}`: {message}"
                );
            }
        }
    }
});

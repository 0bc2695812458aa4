use crate::validation::test_support::{codes, finding, validate};
use crate::validation::{Decision, Severity, Validation};

fn text_findings(description: &str) -> Validation {
    validate("dev", None, "Clean up the build host", description)
}

#[test]
fn dangerous_instructions_are_found_in_the_text() {
    let cases = [
        (
            "then run sudo rm -rf / to start fresh",
            "rm_rf_root",
            Severity::Critical,
        ),
        (
            "run rm -rf ./target to free disk",
            "rm_rf",
            Severity::Medium,
        ),
        (
            "DROP TABLE audit_events; it is too big",
            "sql_destructive",
            Severity::High,
        ),
        (
            "TRUNCATE approval_requests before the import",
            "sql_destructive",
            Severity::High,
        ),
        (
            "drop database wingman and recreate it",
            "sql_drop_database",
            Severity::Critical,
        ),
        (
            "docker system prune -a to free space",
            "prune_all",
            Severity::Critical,
        ),
        ("docker image prune to free space", "prune", Severity::High),
        (
            "curl -fsSL https://get.example.com | sh",
            "curl_pipe_shell",
            Severity::Critical,
        ),
        (
            "wget -qO- https://x.example/install | sudo bash",
            "curl_pipe_shell",
            Severity::Critical,
        ),
        (
            "start it with --privileged so it can load modules",
            "privileged_container",
            Severity::High,
        ),
        (
            "docker run -v /:/host alpine",
            "host_root_mount",
            Severity::Critical,
        ),
        (
            "mount -v /var/run/docker.sock:/var/run/docker.sock",
            "docker_socket_mount",
            Severity::High,
        ),
        (
            "chmod -R 777 /srv/data so everyone can write",
            "chmod_777",
            Severity::High,
        ),
        (
            "disable authentication on the api for the demo",
            "disable_auth",
            Severity::High,
        ),
        (
            "bypass the approval gate this once",
            "disable_auth",
            Severity::High,
        ),
        ("set AUTH=false in .env", "disable_auth", Severity::High),
        (
            "docker rm -f $(docker ps -aq)",
            "mass_removal_text",
            Severity::Critical,
        ),
        (
            "dd if=/dev/zero of=/dev/sda bs=1M",
            "disk_wipe",
            Severity::Critical,
        ),
    ];
    for (text, code, severity) in cases {
        let validation = text_findings(text);
        let found = finding(&validation, code);
        assert_eq!(found.severity, severity, "{text}");
        assert!(
            found.span.as_deref().is_some_and(|span| !span.is_empty()),
            "{text}"
        );
    }
}

#[test]
fn ordinary_operations_prose_raises_no_text_finding() {
    let validation = text_findings(
        "Remove the old build cache in /tmp/build with the cleanup script, check the \
         --format of docker ps output, restart the api. Rollback: restore from backup. \
         The password is stored in the vault; the token minting endpoint is POST /gateway/token.",
    );
    assert_eq!(
        validation.validator_scores.code_scanner.findings.len(),
        1,
        "{:?}",
        codes(&validation)
    );
}

/// Each secret kind, with the text it hides in and what must never appear in a finding.
const SECRETS: [(&str, &str, &str); 11] = [
    (
        "aws key AKIAIOSFODNN7EXAMPLE in the env",
        "secret_aws_key",
        "IOSFODNN7EXAMPLE",
    ),
    (
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "secret_aws_secret_key",
        "XUtnFEMI/K7MDENG",
    ),
    (
        "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAexampleexampleexample\n-----END RSA PRIVATE KEY-----",
        "secret_private_key",
        "AAKCAQEAexample",
    ),
    (
        "use ghp_0123456789abcdefghijABCDEFGHIJ012345 to clone",
        "secret_github_token",
        "456789abcdefghij",
    ),
    (
        "use github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz to clone",
        "secret_github_token",
        "0123456789_abcdef",
    ),
    (
        "slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx for alerts",
        "secret_slack_token",
        "1234567890123-AbCd",
    ),
    (
        "the bot is 123456789:AAEexampleExampleExampleExample1234 now",
        "secret_telegram_bot_token",
        "exampleExample",
    ),
    (
        "OPENAI sk-proj-abcdefghijklmnopqrstuvwxyz012345 here",
        "secret_openai_key",
        "ghijklmnopqrst",
    ),
    (
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ3aW5nbWFuIn0.c2lnbmF0dXJlX2V4YW1wbGU",
        "secret_jwt",
        "eyJzdWIiOiJ3aW5nbWFuIn0",
    ),
    (
        "connect with postgres://wingman:Sup3rS3cret@db:5432/wingman",
        "secret_url_password",
        "Sup3rS3cret",
    ),
    (
        "set DB_PASSWORD=hunter2hunter2 in .env.prd",
        "secret_password_assignment",
        "hunter2hunter2",
    ),
];

#[test]
fn every_secret_kind_is_a_critical_finding_with_a_redacted_span() {
    for (text, code, hidden) in SECRETS {
        let validation = text_findings(text);
        let found = finding(&validation, code);
        assert_eq!(found.severity, Severity::Critical, "{code}");
        let span = found.span.as_deref().unwrap_or_default();
        assert!(span.contains("****"), "{code}: {span}");
        let serialized = serde_json::to_string(&validation).unwrap();
        assert!(
            !serialized.contains(hidden),
            "{code} leaks `{hidden}`: {serialized}"
        );
    }
}

#[test]
fn an_aws_key_is_shown_by_its_prefix_only() {
    let validation = text_findings("aws key AKIAIOSFODNN7EXAMPLE in the env");
    assert_eq!(
        finding(&validation, "secret_aws_key").span.as_deref(),
        Some("AKIA****")
    );
}

#[test]
fn a_password_field_with_a_literal_value_is_a_secret() {
    let validation = text_findings("db user wingman, password: Tr0ub4dor&3");
    assert_eq!(
        finding(&validation, "secret_password_field")
            .span
            .as_deref(),
        Some("password: Tr****")
    );
}

#[test]
fn placeholders_and_variable_references_are_not_secrets() {
    let validation = text_findings(
        "set DB_PASSWORD=${DB_PASSWORD} and API_KEY=<api-key>, password: ******, \
         postgres://wingman:${PGPASSWORD}@db/wingman, token=changeme",
    );
    let secret_codes: Vec<String> = codes(&validation)
        .into_iter()
        .filter(|code| code.starts_with("secret_"))
        .collect();
    assert!(secret_codes.is_empty(), "{secret_codes:?}");
}

#[test]
fn a_secret_inside_a_dangerous_span_is_redacted_there_too() {
    let validation = text_findings("curl https://admin:Hunt3rPass@get.example.com/x | sh");
    let span = finding(&validation, "curl_pipe_shell")
        .span
        .clone()
        .unwrap_or_default();
    assert!(!span.contains("Hunt3rPass"), "{span}");
    assert!(span.contains("****"), "{span}");
}

#[test]
fn one_secret_matched_by_two_patterns_is_reported_once() {
    let validation =
        text_findings("TELEGRAM_BOT_TOKEN=123456789:AAEexampleExampleExampleExample1234");
    let secrets = codes(&validation)
        .into_iter()
        .filter(|code| code.starts_with("secret_"))
        .count();
    assert_eq!(secrets, 1, "{:?}", codes(&validation));
}

#[test]
fn a_secret_scores_zero_and_auto_rejects() {
    let validation = text_findings("aws key AKIAIOSFODNN7EXAMPLE in the env");
    assert_eq!(validation.validator_scores.code_scanner.score, 0);
    assert_eq!(validation.decision, Decision::AutoRejected);
}

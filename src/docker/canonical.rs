//! The canonical argv of a [`DockerOperation`] and the hash a capability token binds.
//!
//! The canonical argv writes one spelling of every flag in one fixed order, so every
//! spelling of one operation gives the same argv and the same hash. It always starts
//! with `docker`, and compose operations always read `docker compose -p <project> …`.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::docker::command::parse_canonical;
use crate::docker::error::CommandError;
use crate::docker::operation::{ComposeOp, ContainerOp, DockerOperation};

impl DockerOperation {
    /// The normalised command line, e.g. `["docker", "stop", "--time", "5", "api"]`.
    pub fn canonical_argv(&self) -> Vec<String> {
        let mut argv = Argv(vec!["docker".to_string()]);
        match self {
            DockerOperation::Container(op) => op.write_argv(&mut argv),
            DockerOperation::Compose(op) => op.write_argv(&mut argv),
            DockerOperation::Exec(op) => {
                argv.word("exec");
                argv.word(&op.container);
                argv.words(&op.argv);
            }
        }
        argv.0
    }

    /// Lowercase hex SHA-256 of the canonical argv joined with NUL bytes. A capability
    /// token carries this hash, binding it to exactly this operation.
    pub fn argv_hash(&self) -> String {
        let joined = self.canonical_argv().join("\0");
        hex::encode(Sha256::digest(joined.as_bytes()))
    }

    /// Checks an operation that did not come from the parser, such as one deserialized
    /// from a message: it must be exactly what parsing its own canonical argv gives.
    pub fn validate(&self) -> Result<(), CommandError> {
        if parse_canonical(&self.canonical_argv())? == *self {
            Ok(())
        } else {
            Err(CommandError::NotCanonical {
                canonical: self.to_string(),
            })
        }
    }
}

impl fmt::Display for DockerOperation {
    /// The canonical argv, shell-quoted.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let argv = self.canonical_argv();
        match shlex::try_join(argv.iter().map(String::as_str)) {
            Ok(line) => formatter.write_str(&line),
            // Only a NUL byte fails to quote; show such an argument escaped instead.
            Err(_) => formatter.write_str(&format!("{argv:?}")),
        }
    }
}

impl ContainerOp {
    /// Writes every set option, whatever the action, so that [`DockerOperation::validate`]
    /// catches an option that does not belong to the action.
    fn write_argv(&self, argv: &mut Argv) {
        let options = &self.options;
        argv.word(self.action.as_str());
        argv.value("--time", options.timeout_secs);
        argv.value("--signal", options.signal.as_ref());
        argv.switch("--force", options.force);
        argv.switch("--volumes", options.volumes);
        argv.value("--tail", options.tail);
        argv.value("--since", options.since.as_ref());
        argv.switch("--timestamps", options.timestamps);
        argv.value("--format", options.format.as_ref());
        argv.switch("--size", options.size);
        argv.words(&self.targets);
    }
}

impl ComposeOp {
    fn write_argv(&self, argv: &mut Argv) {
        let options = &self.options;
        argv.word("compose");
        argv.value("-p", Some(&self.project));
        for file in &self.files {
            argv.value("-f", Some(file));
        }
        argv.value("--env-file", self.env_file.as_ref());
        argv.value("--project-directory", options.project_directory.as_ref());
        argv.word(self.action.as_str());
        argv.value("--timeout", options.timeout_secs);
        argv.switch("--detach", options.detach);
        argv.switch("--build", options.build);
        argv.switch("--remove-orphans", options.remove_orphans);
        argv.switch("--volumes", options.volumes);
        argv.switch("--all", options.all);
        argv.switch("--quiet", options.quiet);
        argv.value("--format", options.format.as_ref());
        argv.switch("--services", options.services_only);
        argv.words(&self.services);
    }
}

/// An argv under construction.
struct Argv(Vec<String>);

impl Argv {
    fn word(&mut self, word: &str) {
        self.0.push(word.to_string());
    }

    fn words(&mut self, words: &[String]) {
        self.0.extend(words.iter().cloned());
    }

    fn switch(&mut self, flag: &str, on: bool) {
        if on {
            self.word(flag);
        }
    }

    fn value(&mut self, flag: &str, value: Option<impl ToString>) {
        if let Some(value) = value {
            self.word(flag);
            self.0.push(value.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::docker::{DockerOperation, parse_command_line};

    fn parse(line: &str) -> DockerOperation {
        parse_command_line(line).expect(line)
    }

    #[test]
    fn the_canonical_argv_uses_one_spelling_in_a_fixed_order() {
        let op = parse("docker container stop api -s term -t5");
        assert_eq!(
            op.canonical_argv(),
            vec![
                "docker", "stop", "--time", "5", "--signal", "SIGTERM", "api"
            ]
        );
        let op = parse(
            "docker-compose --env-file .env.prd -p wingman-prd -f a.yml down -v --remove-orphans",
        );
        assert_eq!(
            op.canonical_argv(),
            vec![
                "docker",
                "compose",
                "-p",
                "wingman-prd",
                "-f",
                "a.yml",
                "--env-file",
                ".env.prd",
                "down",
                "--remove-orphans",
                "--volumes"
            ]
        );
    }

    #[test]
    fn two_spellings_of_one_operation_share_a_hash() {
        let pairs = [
            ("docker stop -t 5 api", "docker stop --time=5 api"),
            (
                "docker stop -t 5 api",
                "docker container stop api --timeout 5",
            ),
            (
                "docker rm -fv api",
                "/usr/bin/docker rm --volumes --force api",
            ),
            (
                "docker kill -s KILL api",
                "docker kill --signal=sigkill api",
            ),
            ("docker logs --tail all api", "docker logs api"),
            ("docker stop api api", "docker stop api"),
            (
                "docker-compose -p wingman-prd down",
                "docker compose --project-name=wingman-prd down",
            ),
            (
                "docker compose -p shop up -d --build web",
                "docker-compose -p shop up web --build --detach",
            ),
            (
                "docker exec api wget -qO- http://x/health",
                "docker container exec api wget -qO- http://x/health",
            ),
        ];
        for (first, second) in pairs {
            assert_eq!(
                parse(first).argv_hash(),
                parse(second).argv_hash(),
                "{first} vs {second}"
            );
        }
    }

    #[test]
    fn different_operations_have_different_hashes() {
        let lines = [
            "docker stop api",
            "docker stop worker",
            "docker stop api worker",
            "docker stop -t 5 api",
            "docker restart api",
            "docker rm api",
            "docker rm -f api",
            "docker compose -p wingman-prd down",
            "docker compose -p wingman-stg down",
            "docker compose -p wingman-prd down -v",
            "docker compose -p wingman-prd down api",
            "docker compose -p wingman-prd up -d",
            "docker compose -p wingman-prd up -d --build",
            "docker compose -p wingman-prd up -d --remove-orphans",
            "docker compose -p wingman-prd pull",
            "docker exec api printenv A",
            "docker exec api printenv B",
        ];
        let hashes: std::collections::HashSet<String> =
            lines.iter().map(|line| parse(line).argv_hash()).collect();
        assert_eq!(hashes.len(), lines.len());
    }

    #[test]
    fn the_hash_is_lowercase_hex_sha256_of_the_nul_joined_argv() {
        // sha256(b"docker\0stop\0--time\05\0api"), computed independently.
        assert_eq!(
            parse("docker stop -t 5 api").argv_hash(),
            "2e274644505a57501dd694b888940a4e68ac12664a60a3932c1e84a783d39e86"
        );
    }

    #[test]
    fn an_up_and_an_exec_have_a_canonical_argv_that_reparses() {
        let op = parse("docker-compose -p shop -f a.yml up web --build -d");
        assert_eq!(
            op.canonical_argv(),
            [
                "docker", "compose", "-p", "shop", "-f", "a.yml", "up", "--detach", "--build",
                "web"
            ]
        );
        assert_eq!(op.validate(), Ok(()));
        let op = parse("docker exec api wget -qO- http://x/health");
        assert_eq!(
            op.canonical_argv(),
            ["docker", "exec", "api", "wget", "-qO-", "http://x/health"]
        );
        assert_eq!(op.validate(), Ok(()));
        let json = serde_json::to_string(&op).expect("serializes");
        assert!(json.contains(r#""kind":"exec""#), "{json}");
    }

    #[test]
    fn display_shell_quotes_the_canonical_argv() {
        let op = parse("docker inspect -f '{{.State.Status}} x' api");
        assert_eq!(
            op.to_string(),
            "docker inspect --format '{{.State.Status}} x' api"
        );
    }

    #[test]
    fn an_operation_survives_a_json_round_trip_and_validates() {
        let op = parse("docker compose -p wingman-prd -f a.yml stop -t 10 api");
        let json = serde_json::to_string(&op).expect("serializes");
        assert!(json.contains(r#""kind":"compose""#), "{json}");
        assert!(json.contains(r#""action":"stop""#), "{json}");
        let back: DockerOperation = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, op);
        assert_eq!(back.validate(), Ok(()));
    }

    #[test]
    fn a_tampered_operation_fails_validation() {
        let DockerOperation::Container(mut op) = parse("docker stop api") else {
            panic!("expected a container operation");
        };
        op.targets.push("--force".into());
        assert!(DockerOperation::Container(op.clone()).validate().is_err());

        op.targets = vec!["api".into()];
        op.options.force = true;
        let error = DockerOperation::Container(op).validate().unwrap_err();
        assert_eq!(error.code(), "unknown_flag");

        let json = r#"{"kind":"container","action":"rm","targets":["api;reboot"],"options":{}}"#;
        let op: DockerOperation = serde_json::from_str(json).expect("deserializes");
        assert_eq!(op.validate().unwrap_err().code(), "invalid_name");

        let json =
            r#"{"kind":"container","action":"kill","targets":["api"],"options":{"signal":"kill"}}"#;
        let op: DockerOperation = serde_json::from_str(json).expect("deserializes");
        assert_eq!(op.validate().unwrap_err().code(), "bad_value");
    }
}

#[cfg(test)]
mod long_canonical_tests {
    use crate::docker::{MAX_LINE_BYTES, parse_command_line};

    /// Found by the fuzzer: short flags spelled long push the canonical form past the input
    /// limit; the operation is still valid.
    #[test]
    fn an_operation_whose_canonical_form_outgrows_the_line_limit_still_validates() {
        // 32 valid names of 127 or 126 characters: a 4087-byte line, a 4101-byte canonical form.
        let names: Vec<String> = (0..32)
            .map(|index| {
                format!(
                    "c{index:03}{}",
                    "x".repeat(if index < 10 { 123 } else { 122 })
                )
            })
            .collect();
        let line = format!("docker rm -fv {}", names.join(" "));
        assert!(line.len() <= MAX_LINE_BYTES, "{}", line.len());
        let operation = parse_command_line(&line).unwrap();
        assert!(operation.canonical_argv().join(" ").len() > MAX_LINE_BYTES);
        assert_eq!(operation.validate(), Ok(()));
    }
}

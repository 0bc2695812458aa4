//! A fresh machine whose Postgres asks for a password (stock Debian does): the scripts and
//! the `wingman` binary use `PGPASSWORD` (or the URL, or `~/.pgpass`), never prompt, and say
//! what is missing when they cannot log in. Played on a private Postgres cluster made with
//! `initdb --auth=scram-sha-256`, on its own port.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::helpers::text;
use crate::nats_server::free_port;

const PASSWORD: &str = "fresh-Machine-pw-7";

/// A Postgres cluster that only lets in `postgres` with [`PASSWORD`]; stopped on drop.
struct PasswordPostgres {
    port: u16,
    dir: tempfile::TempDir,
}

fn bin(name: &str) -> PathBuf {
    let versions =
        std::fs::read_dir("/usr/lib/postgresql").expect("Debian's postgresql is installed");
    let mut found: Vec<PathBuf> = versions
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin").join(name))
        .filter(|path| path.exists())
        .collect();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("{name} not found under /usr/lib/postgresql"))
}

/// Runs a Postgres tool as the `postgres` user (initdb and the server refuse root).
fn as_postgres(program: &Path, args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("runuser")
}

impl PasswordPostgres {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let chown = |path: &Path| {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(path)
                .status()
                .unwrap();
            assert!(status.success());
        };
        chown(dir.path());
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        chown(&pwfile);
        let data = dir.path().join("data");
        let init = as_postgres(
            &bin("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                &format!("--pwfile={}", pwfile.display()),
            ],
        );
        assert!(init.status.success(), "initdb: {}", text(&init.stderr));
        let port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.path().display()
        );
        let start = as_postgres(
            &bin("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                dir.path().join("log").to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        assert!(
            start.status.success(),
            "pg_ctl start: {}",
            text(&start.stderr)
        );
        Self { port, dir }
    }

    fn server(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }
}

impl Drop for PasswordPostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(
            &bin("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}

/// `source scripts/lib.sh; <call>` with the test server, and PGPASSWORD only when given.
fn script(server: &str, password: Option<&str>, call: &str) -> Output {
    let mut command = Command::new("bash");
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-c", &format!("source scripts/lib.sh; {call}")])
        .env("WINGMAN_TEST_POSTGRES", server)
        .env("HOME", "/nonexistent")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null());
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    command.output().expect("run bash")
}

fn migrate(database_url: &str, password: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wingman"));
    command
        .args(["migrate", "--json"])
        .env("DATABASE_URL", database_url)
        .env("HOME", "/nonexistent")
        .env("RUST_LOG", "warn")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null());
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    command.output().expect("run wingman migrate")
}

#[test]
fn a_postgres_that_asks_for_a_password_is_used_with_pgpassword_and_its_absence_is_explained() {
    let postgres = PasswordPostgres::start();
    let server = postgres.server();

    // Without a password: no prompt, no hang — one clear message saying what to set.
    let started = std::time::Instant::now();
    let refused = script(&server, None, "check_postgres_login");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the check hung"
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    let message = text(&refused.stderr);
    assert!(
        message.contains("cannot log in to Postgres") && message.contains("export PGPASSWORD"),
        "{message}"
    );

    // With PGPASSWORD: the check passes and the scripts create their database.
    let checked = script(
        &server,
        Some(PASSWORD),
        "check_postgres_login && ensure_database wingman_fresh",
    );
    assert!(checked.status.success(), "{}", text(&checked.stderr));

    // The binary reads PGPASSWORD too (DATABASE_URL without a password, as scripts/dev sets it).
    let database_url = format!("{server}/wingman_fresh");
    let applied = migrate(&database_url, Some(PASSWORD));
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&applied.stdout).unwrap();
    assert_eq!(answer["migrated"], true, "{answer}");

    // And without it, fails with Postgres's own reason, not a hang.
    let denied = migrate(&database_url, None);
    assert_eq!(denied.status.code(), Some(1));
    let message = text(&denied.stderr);
    assert!(message.contains("password"), "{message}");
}

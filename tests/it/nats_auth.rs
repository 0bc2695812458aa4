//! The NATS server's secrets: it knows every password only as a bcrypt hash from the file
//! `scripts/prd-secrets` makes (never from its environment), and the route password keeps
//! strangers out of the cluster (in `cluster.rs`).

use std::path::Path;
use std::process::Command;

use crate::nats_server::{NatsServer, USERS};

/// Runs `scripts/prd-secrets` into `dir` with this build's `wingman` first on PATH.
fn prd_secrets(dir: &Path) {
    let wingman = Path::new(env!("CARGO_BIN_EXE_wingman"));
    let path = format!(
        "{}:{}",
        wingman.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/prd-secrets"))
        .arg(dir)
        .env("PATH", path)
        .output()
        .expect("run scripts/prd-secrets");
    assert!(
        output.status.success(),
        "scripts/prd-secrets failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|error| panic!("{name}: {error}"))
        .trim()
        .to_string()
}

async fn connects(server: &NatsServer, user: &str, password: &str) -> Result<(), String> {
    async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
        .connect(server.url())
        .await
        .map(|_| ())
        .map_err(|error| error.to_string())
}

#[tokio::test]
async fn a_nats_server_from_the_generated_password_file_accepts_the_right_password_and_refuses_a_wrong_one()
 {
    let secrets = tempfile::tempdir().unwrap();
    let dir = secrets.path().join("secrets");
    prd_secrets(&dir);
    let hashes = read(&dir, "nats_passwords.conf");
    let passwords: Vec<(&str, String)> = USERS
        .iter()
        .map(|user| (*user, read(&dir, &format!("nats_{user}_password"))))
        .collect();
    for (user, password) in &passwords {
        assert!(password.len() >= 32, "{user}'s password is short");
        assert!(
            !hashes.contains(password.as_str()),
            "the server's file holds {user}'s password"
        );
    }
    assert!(
        !dir.join("nats.env").exists(),
        "the plain-text env file of the server is gone"
    );

    let server = NatsServer::single_with_password_file(&dir.join("nats_passwords.conf")).await;
    for (user, password) in &passwords {
        connects(&server, user, password)
            .await
            .unwrap_or_else(|error| panic!("{user} with its password: {error}"));
    }
    let (intake, intake_password) = &passwords[3];
    let wrong = connects(&server, intake, "not-the-password").await;
    assert!(wrong.is_err(), "a wrong password was accepted");
    // Another user's password is a wrong password too.
    let (_, admin_password) = &passwords[0];
    assert!(connects(&server, intake, admin_password).await.is_err());
    // The hash itself is not a password either.
    let hash = hashes
        .lines()
        .find(|line| line.starts_with("WINGMAN_NATS_INTAKE_PASSWORD:"))
        .and_then(|line| line.split('"').nth(1))
        .unwrap();
    assert!(hash.starts_with("$2a$11$"), "{hash}");
    assert!(connects(&server, intake, hash).await.is_err());
    assert!(
        server.log().contains("Authorization Violation")
            || server.log().contains("authentication error")
    );
    // What `docker inspect` would show of the server: its environment, without any password.
    let environ = std::fs::read(format!("/proc/{}/environ", server.pid().unwrap())).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    for (user, password) in &passwords {
        assert!(
            !environ.contains(password.as_str()),
            "{user}'s password is in the server's environment"
        );
    }
    assert!(!environ.contains(intake_password.as_str()));
}

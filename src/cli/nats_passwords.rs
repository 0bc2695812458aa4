//! `wingman nats-passwords`: the NATS server's password file, with bcrypt hashes only.
//!
//! The server must check every user's password but never needs the password itself, so it
//! gets bcrypt hashes (nats-server accepts `password: "$2a$…"`) in a file that
//! `nats/auth.conf` includes, mounted into the NATS container as a Docker secret, never as
//! environment variables (`docker inspect` of the server is a read-only operation prd
//! allows). The plain passwords stay in each worker's own secret file (`NATS_PASSWORD_FILE`).
//! `scripts/prd-secrets` writes the file from `secrets/nats_<user>_password`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::ExitCode;

/// `wingman nats-passwords`'s arguments.
#[derive(Debug, clap::Args)]
pub struct NatsPasswordsArgs {
    /// Where the nats_<USER>_password files are.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// The NATS users to include (e.g. intake recorder approvals …).
    #[arg(required = true)]
    pub users: Vec<String>,
    /// Print {"file": TEXT, "users": [...]} as JSON.
    #[arg(long)]
    pub json: bool,
}

/// bcrypt's work factor: nats-server checks the hash once per connection, and workers
/// connect once, so the server can afford what slows an offline guesser down.
pub const COST: u32 = 11;

/// bcrypt reads at most this many bytes of a password; a longer one would be cut silently.
const MAX_PASSWORD_BYTES: usize = 72;

/// Prints the password file for `users`, read from `--dir`.
pub fn run(args: NatsPasswordsArgs) -> anyhow::Result<ExitCode> {
    let NatsPasswordsArgs { dir, users, json } = args;
    let passwords = read_passwords(&dir, &users)?;
    let file = password_file(&passwords, COST)?;
    if json {
        println!("{}", serde_json::json!({ "file": file, "users": users }));
        return Ok(ExitCode::Ok);
    }
    print!("{file}");
    Ok(ExitCode::Ok)
}

/// The variable `nats/auth.conf` reads `user`'s password from: `WINGMAN_NATS_<USER>_PASSWORD`.
pub fn variable(user: &str) -> String {
    format!("WINGMAN_NATS_{}_PASSWORD", user.to_ascii_uppercase())
}

/// The password file for `(user, password)` pairs: one `VARIABLE: "<bcrypt hash>"` line each.
///
/// # Errors
/// When a user name is not a plain word or a password is empty or longer than bcrypt reads.
pub fn password_file(users: &[(String, String)], cost: u32) -> anyhow::Result<String> {
    let mut file = String::from(
        "# Made by `wingman nats-passwords` (scripts/prd-secrets): bcrypt hashes of the NATS\n\
         # users' passwords, included by nats/auth.conf. No password is in this file.\n",
    );
    for (user, password) in users {
        anyhow::ensure!(
            !user.is_empty()
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "user `{user}`: only letters, digits, `_` and `-` are allowed"
        );
        anyhow::ensure!(!password.is_empty(), "user `{user}`: the password is empty");
        anyhow::ensure!(
            password.len() <= MAX_PASSWORD_BYTES,
            "user `{user}`: the password is {} bytes; bcrypt reads only {MAX_PASSWORD_BYTES}",
            password.len()
        );
        let hash = bcrypt::hash_with_result(password, cost)
            .with_context(|| format!("user `{user}`: hash the password"))?
            .format_for_version(bcrypt::Version::TwoA);
        file.push_str(&format!("{}: \"{hash}\"\n", variable(user)));
    }
    Ok(file)
}

/// Reads `<dir>/nats_<user>_password` for each user (trailing newline dropped).
pub fn read_passwords(dir: &Path, users: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    users
        .iter()
        .map(|user| {
            let path = dir.join(format!("nats_{user}_password"));
            let password = std::fs::read_to_string(&path)
                .with_context(|| format!("read {}", path.display()))?;
            Ok((
                user.clone(),
                password.trim_end_matches(['\n', '\r']).to_string(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(user: &str, password: &str) -> (String, String) {
        (user.to_string(), password.to_string())
    }

    #[test]
    fn the_file_holds_verifiable_2a_hashes_and_no_password() {
        let file = password_file(&[pair("intake", "s3cret-intake")], 4).unwrap();
        assert!(!file.contains("s3cret-intake"));
        let line = file
            .lines()
            .find(|line| line.starts_with("WINGMAN_NATS_INTAKE_PASSWORD: \"$2a$04$"))
            .expect(&file);
        let hash = line.split('"').nth(1).unwrap();
        assert!(bcrypt::verify("s3cret-intake", hash).unwrap());
        assert!(!bcrypt::verify("wrong", hash).unwrap());
    }

    #[test]
    fn odd_users_and_unusable_passwords_are_refused_with_the_user_named() {
        for (users, expected) in [
            (vec![pair("in take", "x")], "user `in take`: only letters"),
            (
                vec![pair("intake", "")],
                "user `intake`: the password is empty",
            ),
            (
                vec![pair("api", &"x".repeat(73))],
                "user `api`: the password is 73 bytes",
            ),
        ] {
            let error = password_file(&users, 4).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{error}");
        }
    }
}

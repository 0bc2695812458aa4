//! `wingman apikey`: make an API key. The key is printed once; only its SHA-256 hash goes in
//! the `WINGMAN_API_KEYS_FILE` entry, so the API never holds a key it could leak.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::access::Role;
use crate::cli::ExitCode;

/// `wingman apikey`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ApikeyArgs {
    /// Who or what uses the key (shown in audit events of refused calls).
    #[arg(long)]
    pub name: String,
    /// submit, read or decide; repeat for several.
    #[arg(long = "role", required = true)]
    pub roles: Vec<Role>,
    /// Append the entry to this key file (created mode 0600 when missing).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Print {"name", "roles", "key", "entry"} as JSON (the key is in it: keep it secret).
    #[arg(long)]
    pub json: bool,
}

/// Prints the new key on stdout and its entry on stderr, or appends the entry to `--file`.
pub fn run(args: ApikeyArgs) -> anyhow::Result<ExitCode> {
    let ApikeyArgs {
        name,
        roles,
        file,
        json,
    } = args;
    let key = crate::access::generate_key();
    let entry = crate::access::entry_toml(&name, &key, &roles);
    if let Some(path) = &file {
        append_private(path, &format!("\n{entry}"))?;
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"name": name, "roles": roles, "key": key, "entry": entry, "file": file})
        );
        return Ok(ExitCode::Ok);
    }
    match &file {
        Some(path) => eprintln!("entry for `{name}` appended to {}", path.display()),
        None => eprint!("{entry}"),
    }
    println!("{key}");
    Ok(ExitCode::Ok)
}

/// Appends to a file that only its owner may read (created mode 0600).
fn append_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

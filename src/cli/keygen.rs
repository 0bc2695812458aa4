//! `wingman keygen`: write the capability-token key pair, the signing half for the authority
//! and the verification half for the gateway (also the audit checkpoint keys, `--name audit`).

use std::path::PathBuf;

use anyhow::Context as _;

use crate::cli::ExitCode;

/// `wingman keygen`'s arguments.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Where to write the two files.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// The files' base name.
    #[arg(long, default_value = "wingman")]
    pub name: String,
    /// Print {"signing_key", "verification_key"} (their paths) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Writes `<NAME>.key` (mode 0600) and `<NAME>.pub` in `--dir` and prints their paths.
pub fn run(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    let KeygenArgs { dir, name, json } = args;
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let (secret, public) = crate::token::write_keypair(&dir, &name)?;
    if json {
        println!(
            "{}",
            serde_json::json!({"signing_key": secret, "verification_key": public})
        );
        return Ok(ExitCode::Ok);
    }
    println!(
        "signing key (authority only, mode 0600): {}",
        secret.display()
    );
    println!(
        "verification key (gateway):              {}",
        public.display()
    );
    Ok(ExitCode::Ok)
}

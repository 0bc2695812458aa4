//! `wingman completions <shell>`: print a shell completion script, generated from the parser
//! itself, so it always knows every flag.

use crate::cli::ExitCode;

/// `wingman completions`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

/// Prints the script for `wingman`, the command `parser` describes.
pub fn run(args: CompletionsArgs, mut parser: clap::Command) -> anyhow::Result<ExitCode> {
    clap_complete::generate(args.shell, &mut parser, "wingman", &mut std::io::stdout());
    Ok(ExitCode::Ok)
}

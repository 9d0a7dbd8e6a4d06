//! `matterbak completions SHELL`: prints a shell completion script generated from the clap
//! definitions.

use anyhow::Result;
use clap::Args;

use super::{Cli, EXIT_OK};

#[derive(Args, Debug, Clone)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub(super) fn run(args: &CompletionsArgs) -> Result<u8> {
    let mut command = <Cli as clap::CommandFactory>::command();
    // Into memory first: clap_complete panics when stdout is closed early (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "matterbak", &mut script);
    match std::io::Write::write_all(&mut std::io::stdout().lock(), &script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::from(e).context("cannot write the completion script"))
        }
        _ => Ok(EXIT_OK),
    }
}

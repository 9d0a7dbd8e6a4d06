//! Entry point: parse arguments, run, print the error chain once, exit with the code.
//! May use the library's `cli` (it uses nothing else; `cli` is the driver).

use std::process::ExitCode;

use clap::Parser;
use matterbak::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse_from(cli::args_for_clap(std::env::args_os()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_FATAL);
        }
    };
    // On a worker, not on this thread: the run then shares its threads with the connections
    // it drives instead of being woken across threads for every response.
    let run = runtime.block_on(async { tokio::spawn(cli::run(cli)).await });
    match run.unwrap_or_else(|e| Err(anyhow::anyhow!("the run panicked: {e}"))) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cli::EXIT_FATAL)
        }
    }
}

//! `matterbak mock-server` (hidden): serves the sample (or a generated) workspace as a mock
//! Mattermost server until stdin closes or a signal arrives.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use super::EXIT_OK;
use crate::mock::{self, MockServer, Workspace};

#[derive(Args, Debug, Clone)]
pub struct MockServerArgs {
    /// Address to listen on (loopback only is sensible).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: std::net::SocketAddr,
    /// Serve a generated workspace instead of the sample (benches), e.g.
    /// `posts=20000,attachments=1000,channels=20,teams=2,users=50,attachment_bytes=2048,seed=1`.
    #[arg(long, hide = true, value_name = "SIZES")]
    pub generate: Option<mock::GenSpec>,
    /// Sleep this long before answering each request (benches).
    #[arg(long, hide = true, value_name = "MS", default_value_t = 0)]
    pub latency_ms: u64,
    /// Send `file_ids: []` on posts without files, as current servers do (the Python
    /// `matterexport` fails on posts without the key).
    #[arg(long, hide = true)]
    pub file_ids_always: bool,
}

pub(super) async fn run(args: &MockServerArgs) -> Result<u8> {
    let mut workspace = match &args.generate {
        Some(spec) => Workspace::generated(spec),
        None => Workspace::sample(),
    };
    workspace.file_ids_always = args.file_ids_always;
    let server = MockServer::start_on(args.addr, workspace)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    server.set_faults(mock::Faults {
        latency: Duration::from_millis(args.latency_ms),
        ..mock::Faults::default()
    });
    println!("{}", server.url());
    use std::io::Write;
    std::io::stdout().flush()?;
    // Serve until stdin closes or a signal arrives, so scripts can stop it either way.
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    });
    tokio::select! {
        _ = stdin_closed => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    server.shutdown().await;
    Ok(EXIT_OK)
}

//! `matterbak demo DIR`: starts the sample workspace's mock server on loopback, runs `backup`
//! against it into DIR, builds the website, and prints what to try next.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser};

use super::{Cli, Command, open_read};
use crate::archive::Archive;
use crate::mock::{self, MockServer, Workspace};
use crate::outdir::{self, OutputKind};

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Directory for the demo's archive, data dir, zip and config files: new, empty, or an
    /// earlier demo's.
    #[arg(default_value = "matterbak-demo")]
    pub dir: PathBuf,
}

pub(super) async fn run(args: &DemoArgs) -> Result<u8> {
    let dir = &args.dir;
    outdir::claim_dir(dir, OutputKind::Marked("demo"))?;
    let server = MockServer::start(Workspace::sample())
        .await
        .context("cannot start the sample server on loopback")?;
    let credentials = dir.join("credentials.json");
    let channels = dir.join("channels.json");
    let creds = serde_json::json!({"user": mock::SAMPLE_USER, "password": mock::SAMPLE_PASSWORD, "url": format!("{}/api", server.url())});
    write_private(
        &credentials,
        serde_json::to_string_pretty(&creds)?.as_bytes(),
    )?;
    std::fs::write(&channels, mock::DEMO_CHANNELS_JSON)
        .with_context(|| format!("cannot write {}", channels.display()))?;
    eprintln!("sample Mattermost server listening on {}", server.url());
    let archive = dir.join("archive");
    let data = dir.join("data");
    let zip = dir.join(format!("matterbak_{}.zip", mock::SAMPLE_USER));
    let argv: Vec<std::ffi::OsString> = vec![
        "matterbak".into(),
        "backup".into(),
        "--archive".into(),
        archive.clone().into(),
        "--credentials".into(),
        credentials.into(),
        "--channels".into(),
        channels.into(),
        "--rate-limit".into(),
        "0".into(),
        "-d".into(),
        data.clone().into(),
        "-o".into(),
        zip.clone().into(),
    ];
    let Some(Command::Backup(args)) = Cli::try_parse_from(argv)?.command else {
        unreachable!("the demo's own arguments parse as `backup`");
    };
    let code = super::backup::run(&args).await?;
    server.shutdown().await;
    let site = dir.join("site");
    open_read(&archive, None)
        .and_then(|opened| {
            Ok(crate::export::html::build_site(
                &opened,
                &site,
                &Default::default(),
            )?)
        })
        .context("cannot build the demo's website")?;
    // The hints name this very binary: after `cargo run`, `matterbak` is not on the PATH.
    let bin = std::env::current_exe()
        .map(|p| shell_word(&p.to_string_lossy()))
        .unwrap_or_else(|_| "matterbak".into());
    let archive_arg = shell_word(&archive.to_string_lossy());
    let catalog = shell_word(&Archive::at(&archive).catalog_path().to_string_lossy());
    println!();
    println!("archive (SQLite catalog + blobs): {}", archive.display());
    println!(
        "website (open in a browser): {}",
        site.join("index.html").display()
    );
    println!();
    println!("Try some SQL on the catalog:");
    println!(
        "  {bin} sql --archive {archive_arg} \"SELECT channel, count(*) AS posts FROM messages GROUP BY channel ORDER BY posts DESC\""
    );
    println!("or search it:");
    println!("  {bin} search --archive {archive_arg} deploy");
    println!("or open it in sqlite3 (optional) or any SQLite tool:");
    println!(
        "  sqlite3 {catalog} \"SELECT time, author, message FROM messages WHERE edited ORDER BY time\""
    );
    Ok(code)
}

/// `text` as one word for a POSIX shell: as is when it holds only safe characters, else in
/// single quotes.
fn shell_word(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+:=,@%".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut file, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

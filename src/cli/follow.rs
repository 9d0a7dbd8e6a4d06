//! `matterbak sync --follow`: the sync's flags plus live capture's (`--poll-interval`);
//! runs until SIGINT/SIGTERM, showing a status line on a terminal (state, channels followed,
//! events, posts, age of the last event) or one log line per state change otherwise.
//!
//! May use every library module (it is part of the driver); prints only to stderr.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::EXIT_OK;
use super::sync::{SyncArgs, stop_on_signals};
use super::ui::PlainLog;
use crate::outdir;
use crate::progress::{Level, LiveState, Observer, Progress};
use crate::sync::{self, FollowOptions, FollowReport};

/// `matterbak sync`: the sync's flags and live capture's.
#[derive(Args, Debug, Clone)]
pub struct SyncCommand {
    #[command(flatten)]
    pub sync: SyncArgs,
    #[command(flatten)]
    pub live: FollowArgs,
}

/// The flags of `sync` that only live capture reads.
#[derive(Args, Debug, Clone)]
pub struct FollowArgs {
    /// After the sync, stay connected and archive every post, edit, deletion and reaction as
    /// it happens (WebSocket), until SIGINT/SIGTERM. Holds the archive lock meanwhile;
    /// `sql`, `search`, `stats`, `export` and `verify` work on the live archive.
    #[arg(long)]
    pub follow: bool,
    /// With --follow: every S seconds, an incremental sync of the selected channels whose
    /// events the account does not receive (archived ones), and of nothing else.
    #[arg(long, value_name = "S", default_value_t = 600, requires = "follow", value_parser = clap::value_parser!(u64).range(1..))]
    pub poll_interval: u64,
}

/// Runs `sync --follow` until stopped; the exit code is 0 after a stop by signal.
pub async fn run(args: &SyncArgs, follow: &FollowArgs) -> Result<u8> {
    let stop = stop_on_signals();
    if args.report.is_some() {
        anyhow::bail!("--report is not available with --follow (it never finishes a run)");
    }
    outdir::check_ancestors(&args.archive.archive).context("--archive")?;
    let log = observer(args.quiet);
    let (credentials, options) = args.options(log.as_ref())?;
    let follow_options = FollowOptions {
        poll_interval: Duration::from_secs(follow.poll_interval),
        ..FollowOptions::default()
    };
    let result =
        sync::run_follow(&credentials, &options, &follow_options, log.as_ref(), &stop).await;
    drop(log); // clears the status line before the summary
    let report = result
        .with_context(|| format!("sync --follow into {} failed", options.archive.display()))?;
    print_summary(&report);
    Ok(EXIT_OK)
}

fn print_summary(report: &FollowReport) {
    eprintln!(
        "follow stopped: {} event(s), {} post(s) written, {} reaction change(s), {} attachment(s) fetched, {} catch-up sync(s)",
        report.events,
        report.posts_written,
        report.reactions_written,
        report.files_fetched,
        report.catch_ups
    );
}

/// A status line on a terminal; plain lines otherwise (`--quiet`: only notices, warnings
/// and failures: what a journal needs).
fn observer(quiet: bool) -> Box<dyn Observer> {
    if !quiet && std::io::stderr().is_terminal() {
        Box::new(StatusLine::new())
    } else {
        Box::new(LiveLog {
            plain: PlainLog { quiet },
        })
    }
}

/// The plain log of a sync, plus one line per state change of live capture.
struct LiveLog {
    plain: PlainLog,
}

impl Observer for LiveLog {
    fn note(&self, level: Level, text: &str) {
        self.plain.note(level, text);
    }

    fn progress(&self, event: Progress) {
        match event {
            Progress::Live(LiveState::Live) if !self.plain.quiet => {
                eprintln!("following: caught up, archiving events as they arrive");
            }
            other => self.plain.progress(other),
        }
    }
}

/// What the status line shows.
struct Status {
    state: LiveState,
    events: u64,
    posts: u64,
    last_event: Option<Instant>,
}

/// One line, redrawn every second: `following · live · 120 events · 80 posts · last event 3s ago`.
struct StatusLine {
    bar: ProgressBar,
    status: Mutex<Status>,
}

impl StatusLine {
    fn new() -> StatusLine {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
        bar.enable_steady_tick(Duration::from_millis(1000));
        let line = StatusLine {
            bar,
            status: Mutex::new(Status {
                state: LiveState::CatchingUp,
                events: 0,
                posts: 0,
                last_event: None,
            }),
        };
        line.redraw();
        line
    }

    fn redraw(&self) {
        if let Ok(status) = self.status.lock() {
            self.bar.set_message(status_text(&status, Instant::now()));
        }
    }
}

fn status_text(status: &Status, now: Instant) -> String {
    let state = match status.state {
        LiveState::CatchingUp => "catching up",
        LiveState::Live => "live",
        LiveState::Reconnecting => "reconnecting",
    };
    let last = match status.last_event {
        Some(at) => format!("last event {}s ago", now.duration_since(at).as_secs()),
        None => "no event yet".to_owned(),
    };
    format!(
        "following · {state} · {} events · {} posts written · {last}",
        status.events, status.posts
    )
}

impl Observer for StatusLine {
    fn note(&self, level: Level, text: &str) {
        self.bar.println(level.line(text));
    }

    fn progress(&self, event: Progress) {
        if let Ok(mut status) = self.status.lock() {
            match event {
                Progress::Live(state) => status.state = state,
                Progress::EventsCommitted {
                    events,
                    posts_written,
                } => {
                    status.events = events;
                    status.posts += posts_written;
                    status.last_event = Some(Instant::now());
                }
                Progress::PostsWritten(n) => status.posts += n,
                _ => {}
            }
        }
        self.redraw();
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_names_state_counts_and_the_last_event_age() {
        let now = Instant::now();
        let status = Status {
            state: LiveState::Live,
            events: 120,
            posts: 80,
            last_event: Some(now - Duration::from_secs(3)),
        };
        assert_eq!(
            status_text(&status, now),
            "following · live · 120 events · 80 posts written · last event 3s ago"
        );
        let waiting = Status {
            state: LiveState::Reconnecting,
            events: 0,
            posts: 0,
            last_event: None,
        };
        assert_eq!(
            status_text(&waiting, now),
            "following · reconnecting · 0 events · 0 posts written · no event yet"
        );
    }
}

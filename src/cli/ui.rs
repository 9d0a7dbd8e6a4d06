//! How a sync shows progress on stderr: bars on a terminal, plain lines otherwise (cron mails
//! them). The only code that knows indicatif or terminals; the library reports through the
//! `progress::Observer` trait.
//!
//! May import: `progress`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Level, Observer, Progress};

/// Picks bars when stderr is a terminal and the user did not ask for quiet.
pub fn for_stderr(quiet: bool) -> Box<dyn Observer> {
    if !quiet && std::io::stderr().is_terminal() {
        Box::new(Bars::new())
    } else {
        Box::new(PlainLog { quiet })
    }
}

/// One line per note and per finished channel; with `quiet`, only notices, warnings and
/// failures.
pub struct PlainLog {
    pub quiet: bool,
}

impl Observer for PlainLog {
    fn note(&self, level: Level, text: &str) {
        if !self.quiet || level.important() {
            eprintln!("{}", level.line(text));
        }
    }

    fn progress(&self, event: Progress) {
        if let Progress::ChannelDone {
            label,
            posts_written,
        } = event
            && !self.quiet
        {
            eprintln!("{label}: {posts_written} post(s) written");
        }
    }
}

/// Bars for channels and files, with counts, bytes, rate and ETA.
pub struct Bars {
    multi: MultiProgress,
    channels: ProgressBar,
    files: ProgressBar,
    posts: Mutex<u64>,
}

impl Bars {
    fn new() -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let channels = multi.add(ProgressBar::new(0));
        channels.set_style(
            ProgressStyle::with_template(
                "{spinner} channels {pos}/{len} [{bar:30}] {msg} (ETA {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        channels.set_message("0 posts");
        channels.enable_steady_tick(Duration::from_millis(200));
        let files = multi.add(ProgressBar::new(0));
        files.set_style(
            ProgressStyle::with_template("  files {pos}/{len} {msg} {binary_bytes_per_sec}")
                .expect("valid template"),
        );
        Bars {
            multi,
            channels,
            files,
            posts: Mutex::new(0),
        }
    }
}

impl Observer for Bars {
    fn note(&self, level: Level, text: &str) {
        // Printed above the bars so they are not torn.
        let _ = self.multi.println(level.line(text));
    }

    fn progress(&self, event: Progress) {
        match event {
            Progress::ChannelsPlanned(n) => self.channels.set_length(n as u64),
            Progress::ChannelDone { .. } => self.channels.inc(1),
            Progress::PostsWritten(n) => {
                if let Ok(mut posts) = self.posts.lock() {
                    *posts += n;
                    self.channels.set_message(format!("{} posts", *posts));
                }
            }
            Progress::FilesQueued(n) => self.files.inc_length(n),
            Progress::FileFetched { bytes } => {
                self.files.inc(1);
                self.files
                    .set_message(format!("{}", indicatif::HumanBytes(bytes)));
            }
            Progress::Live(_) | Progress::EventsCommitted { .. } | Progress::Polled { .. } => {}
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.channels.finish_and_clear();
        self.files.finish_and_clear();
    }
}

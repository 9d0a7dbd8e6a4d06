//! How library code reports what it does without printing: the [`Observer`] a caller hands
//! in, the [`Level`] of each note, and the [`Progress`] events a display counts. Drawing
//! (bars, log lines on stderr) is the CLI's (`cli::ui`); tests pass [`Silent`].
//!
//! May import: nothing of the crate. (A leaf, so the engine depends on it and not the other
//! way round.)

use std::fmt;

/// How much a note matters: `--quiet` keeps all but [`Level::Info`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// What the run is doing (channels selected, jitter, partial downloads removed).
    Info,
    /// Something the user should know although nothing failed (`note: …`).
    Notice,
    /// Something the user should fix or check (`warning: …`).
    Warning,
    /// An item that could not be archived this time (`failed: …`).
    Failure,
}

impl Level {
    /// Whether a quiet log still shows notes of this level.
    pub fn important(self) -> bool {
        self != Level::Info
    }

    /// The word a line of this level starts with (none for [`Level::Info`]).
    fn word(self) -> Option<&'static str> {
        match self {
            Level::Info => None,
            Level::Notice => Some("note"),
            Level::Warning => Some("warning"),
            Level::Failure => Some("failed"),
        }
    }

    /// A note as one line of a log: `warning: text`, `failed: text`, `note: text`; info as
    /// it is.
    pub fn line(self, text: &str) -> String {
        Line(self, text).to_string()
    }
}

struct Line<'a>(Level, &'a str);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.word() {
            Some(word) => write!(f, "{word}: {}", self.1),
            None => f.write_str(self.1),
        }
    }
}

/// Receives human-readable notes and progress events; the library never prints.
pub trait Observer: Send + Sync {
    /// `text` without the level's word (see [`Level::line`]).
    fn note(&self, level: Level, text: &str);
    /// Progress for bars and logs; ignored unless an observer cares.
    fn progress(&self, _event: Progress) {}
}

/// What a progress display needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The number of channels this run will sync.
    ChannelsPlanned(usize),
    /// One channel is done (successfully or not).
    ChannelDone { label: String, posts_written: u64 },
    /// Posts written to the catalog (any channel).
    PostsWritten(u64),
    /// Attachments whose bytes are about to be fetched.
    FilesQueued(u64),
    /// One attachment fetched, with its size.
    FileFetched { bytes: u64 },
    /// Live capture (`sync --follow`) changed state.
    Live(LiveState),
    /// Live capture committed a batch: events received so far, and what the batch wrote.
    EventsCommitted { events: u64, posts_written: u64 },
    /// Live capture polled the channels whose events the account does not receive.
    Polled { channels: usize },
}

/// Where live capture stands, for a status line and for tests that wait for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveState {
    /// Running a catch-up sync (at start, after a connection the server could not resume,
    /// when channels changed, or polling); events wait meanwhile.
    CatchingUp,
    /// Connected and caught up: events are applied as they arrive.
    Live,
    /// The connection is down; reconnecting with backoff.
    Reconnecting,
}

/// An observer that drops everything (tests, quiet runs).
pub struct Silent;

impl Observer for Silent {
    fn note(&self, _level: Level, _text: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_starts_with_its_level_word() {
        assert_eq!(Level::Warning.line("x y"), "warning: x y");
        assert_eq!(Level::Failure.line("file f"), "failed: file f");
        assert_eq!(Level::Notice.line("n"), "note: n");
        assert_eq!(
            Level::Info.line("3 channel(s) selected"),
            "3 channel(s) selected"
        );
        assert!(!Level::Info.important());
        assert!(Level::Notice.important() && Level::Warning.important());
    }
}

//! Pages rendered and written off the builder's thread. The builder reads each page's rows,
//! hashes them and places their files (in page order: placing a file has effects and
//! counts), then hands the page to the [`Pool`]: threads that render its posts (Markdown and
//! highlighting are most of a build's CPU) and write it, while the builder reads the next
//! page. The queue between them is bounded, so memory holds a few pages' rows whatever the
//! archive's size.
//!
//! Imports only the site's own modules, the export views and model ids; reads no catalog.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::SiteError;
use super::channel::ChannelPlan;
use super::markdown::{Names, UP};
use super::pages::{NEWEST, day_label, day_of};
use super::paths::write_file;
use super::post::{Authors, ChannelRows};
use super::templates::{BaseT, DayView, PageT, Person, render};
use crate::export::view::Channel;
use crate::model::UserId;

/// What every page's rendering reads of the build: names, people, zone, sidebars. Fixed once
/// the names are loaded, then shared with the render threads.
#[derive(Clone)]
pub(super) struct SiteContext {
    pub(super) site: PathBuf,
    pub(super) people: HashMap<UserId, Person>,
    pub(super) names: Names,
    pub(super) tz: jiff::tz::TimeZone,
    pub(super) zone: String,
    /// The sidebar of every page (teams and channels), by the page's way up to the root.
    pub(super) sidebars: HashMap<String, String>,
}

impl SiteContext {
    /// A whole page: the site's frame (title, sidebar, zone, crumbs) around `body`.
    pub(super) fn page_html(
        &self,
        rel: &str,
        title: &str,
        up: &str,
        crumbs: &str,
        body: &str,
    ) -> Result<String, SiteError> {
        render(
            &BaseT {
                title,
                up,
                sidebar: self.sidebars.get(up).map_or("", String::as_str),
                zone: &self.zone,
                crumbs,
                body,
            },
            || rel.to_owned(),
        )
    }

    /// Renders and writes one page.
    fn write_page(&self, job: PageJob) -> Result<(), SiteError> {
        let chan = &job.rows.chan;
        let (title, body) = match &job.kind {
            PageKind::Channel { k } => self.channel_page(&job.rows, *k, &job.rel)?,
            PageKind::Thread(thread) => self.thread_page(&job.rows, thread, &job.rel)?,
        };
        let html = self.page_html(&job.rel, &title, UP, &chan.crumbs, &body)?;
        let path = self.site.join(&job.rel);
        write_file(&path, html.as_bytes()).map_err(|source| SiteError::Write { path, source })
    }

    /// Page `k` of a channel's pages: its roots under a divider per day, each with its
    /// replies collapsed under it; the newest page with the channel's head. Returns the
    /// page's title and body.
    fn channel_page(
        &self,
        rows: &ChannelRows,
        k: usize,
        rel: &str,
    ) -> Result<(String, String), SiteError> {
        let chan = &rows.chan;
        let plan = &chan.plan;
        let page = &plan.pages[k];
        let newest = page.name == NEWEST;
        let mut days: Vec<DayView> = Vec::new();
        for &r in &page.roots {
            let mut item = self.post_html(rows, r)?;
            if !plan.replies[r].is_empty() {
                item.push_str(&self.replies_html(rows, r)?);
            }
            push_day(&mut days, plan.outlines[r].create_at, &self.tz, item);
        }
        let name = |i: usize| plan.pages.get(i).map(|p| p.name.as_str());
        // The newest page opens scrolled to its end (app.js) unless the address names a
        // place: "newer" from the page before leads to its top.
        let next = name(k + 1).map(|n| {
            if n == NEWEST {
                format!("{n}#page-top")
            } else {
                n.to_owned()
            }
        });
        let title = if newest {
            chan.title.clone()
        } else {
            // Named by its days, which never change (unlike its number among all).
            let first = days.first().map_or("", |d| d.day.as_str());
            let last = days.last().map_or("", |d| d.day.as_str());
            if first == last {
                format!("{} · {first}", chan.title)
            } else {
                format!("{} · {first} to {last}", chan.title)
            }
        };
        let body = render(
            &PageT {
                title: &title,
                head: if newest { &chan.head } else { "" },
                index: NEWEST,
                index_label: "newest messages",
                prev: k.checked_sub(1).and_then(name),
                prev_label: "← older",
                next: next.as_deref(),
                next_label: "newer →",
                newest,
                months: !newest,
                days: &days,
            },
            || rel.to_owned(),
        )?;
        Ok((title, body))
    }

    /// A page of a long thread: its posts in order under a divider per day.
    fn thread_page(
        &self,
        rows: &ChannelRows,
        thread: &ThreadPage,
        rel: &str,
    ) -> Result<(String, String), SiteError> {
        let outlines = &rows.chan.plan.outlines;
        let mut days: Vec<DayView> = Vec::new();
        for &j in &thread.shown {
            push_day(
                &mut days,
                outlines[j].create_at,
                &self.tz,
                self.post_html(rows, j)?,
            );
        }
        let body = render(
            &PageT {
                title: &thread.title,
                head: "",
                index: &thread.back,
                index_label: "channel",
                prev: thread.prev.as_deref(),
                prev_label: "← previous",
                next: thread.next.as_deref(),
                next_label: "next →",
                newest: false,
                months: false,
                days: &days,
            },
            || rel.to_owned(),
        )?;
        Ok((thread.title.clone(), body))
    }
}

/// Adds an item under the divider of its day (at `at` in `tz`): a new one when the day
/// changes.
fn push_day(days: &mut Vec<DayView>, at: i64, tz: &jiff::tz::TimeZone, item: String) {
    let day = day_of(at, tz);
    match days.last_mut() {
        Some(d) if d.day == day => d.items.push(item),
        _ => days.push(DayView {
            label: day_label(at, tz),
            day,
            items: vec![item],
        }),
    }
}

/// A channel as its pages render: its plan, its posts' authors (for thread summaries) and
/// what every page of it shows.
pub(super) struct ChannelPages {
    pub(super) channel: Channel,
    pub(super) plan: ChannelPlan,
    pub(super) authors: Authors,
    pub(super) title: String,
    pub(super) crumbs: String,
    /// The newest page's head: kind, purpose, header, counts, the month menu.
    pub(super) head: String,
}

/// A page of a long thread as the builder planned it.
pub(super) struct ThreadPage {
    /// Its posts (indices into the channel's posts): the root on the first page, then the
    /// replies of this page.
    pub(super) shown: Vec<usize>,
    pub(super) title: String,
    /// The root on its channel page.
    pub(super) back: String,
    pub(super) prev: Option<String>,
    pub(super) next: Option<String>,
}

pub(super) enum PageKind {
    /// Page `k` of the channel's pages.
    Channel {
        k: usize,
    },
    Thread(ThreadPage),
}

/// One page to render and write, with its posts' rows read and files placed.
pub(super) struct PageJob {
    pub(super) rel: String,
    pub(super) rows: ChannelRows,
    pub(super) kind: PageKind,
}

/// The render threads. A page that fails stops the build: its error is kept, later pages
/// are dropped unrendered, and [`Pool::finish`] returns it.
pub(super) struct Pool {
    jobs: Option<SyncSender<PageJob>>,
    workers: Vec<JoinHandle<()>>,
    failed: Arc<Mutex<Option<SiteError>>>,
}

impl Pool {
    /// One thread per core: the builder's own reading and the search index's thread take
    /// little beside them, and wait while the queue is full.
    pub(super) fn start(cx: Arc<SiteContext>) -> Result<Pool, SiteError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let (jobs, queue) = sync_channel::<PageJob>(threads * 2);
        let queue: Arc<Mutex<Receiver<PageJob>>> = Arc::new(Mutex::new(queue));
        let mut pool = Pool {
            jobs: Some(jobs),
            workers: Vec::with_capacity(threads),
            failed: Arc::default(),
        };
        for n in 0..threads {
            let (cx, queue, failed) = (cx.clone(), queue.clone(), pool.failed.clone());
            let worker = std::thread::Builder::new()
                .name(format!("site-pages-{n}"))
                .spawn(move || {
                    let failed = |e: Option<SiteError>| {
                        let mut first = failed.lock().unwrap_or_else(PoisonError::into_inner);
                        if first.is_none() {
                            *first = e;
                        }
                        first.is_some()
                    };
                    loop {
                        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(job) = job else { return };
                        if !failed(None) {
                            failed(cx.write_page(job).err());
                        }
                    }
                })
                .map_err(SiteError::Threads)?;
            pool.workers.push(worker);
        }
        Ok(pool)
    }

    /// Hands a page over, waiting while the queue is full. Once a page has failed, the
    /// build stops at the next page handed over (a full disk is not met again for every
    /// page of the archive).
    pub(super) fn send(&mut self, job: PageJob) -> Result<(), SiteError> {
        let failed = self
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        match &self.jobs {
            Some(jobs) if !failed && jobs.send(job).is_ok() => Ok(()),
            // A page failed, or every thread is gone, which only a panic does: finishing
            // returns the error or raises the panic.
            _ => self.finish(),
        }
    }

    /// Waits until every page handed over is written; the first error met, if any.
    pub(super) fn finish(&mut self) -> Result<(), SiteError> {
        self.jobs = None;
        for worker in self.workers.drain(..) {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        match self
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Pool {
    /// A build that stops early still waits for its threads (they write into the site).
    fn drop(&mut self) {
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

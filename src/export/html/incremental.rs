//! What a rebuild may keep: the manifest of the previous build (page → input hash), each
//! channel's fingerprint and permalink targets, and the removal of pages this build no
//! longer has. A page is written only when its input hash changed or its file is gone.

use std::collections::{BTreeMap, HashSet};

use super::markdown::Names;
use super::paths::{channel_dir, is_plain_relative, safe_id};
use super::{Builder, MANIFEST, SiteError};
use crate::catalog::CatalogError;
use crate::export::view::Channel;
use crate::model::ChannelId;

/// The previous build's manifest and the one being written.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Manifest {
    pub(super) format: String,
    pub(super) pages: BTreeMap<String, String>,
    /// Hash of everything the search index is made from, and how many files it has.
    #[serde(default)]
    pub(super) search: String,
    #[serde(default)]
    pub(super) search_files: u64,
    /// Hash of what every page depends on (see [`Builder::load_names`]).
    #[serde(default)]
    pub(super) context: String,
    /// Channel id → what its pages were built from.
    #[serde(default)]
    pub(super) channels: BTreeMap<ChannelId, ChannelState>,
}

/// What a channel's pages were built from: when a rebuild finds the same, with the same
/// context and no channel its permalinks point into changed, every page of the channel is
/// kept without reading its posts.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct ChannelState {
    /// Hash of the channel's row, its members and the sums of its rows
    /// ([`crate::catalog::Catalog::load_channel_sums`]).
    pub(super) fingerprint: String,
    /// Directories (`c/<dir>`) of the channels its permalinks resolve into: their page
    /// plans are part of its pages.
    pub(super) links: Vec<String>,
    /// Some `…/pl/<id>` resolved to no post: a post arriving anywhere may resolve it.
    pub(super) open_links: bool,
    /// Posts shown.
    pub(super) posts: u64,
}

impl Builder<'_> {
    /// Fingerprints every channel and says which ones keep all their pages: same context,
    /// same fingerprint, no channel their permalinks point into changed (nor any channel at
    /// all when one of their permalinks is unresolved), and every page still on disk. Also
    /// decides whether the search index is made again.
    pub(super) fn clean_channels(&mut self, channels: &[Channel]) -> Result<Vec<bool>, SiteError> {
        let sums = self.catalog.load_channel_sums()?;
        let mut search = blake3::Hasher::new();
        search.update(self.context.as_bytes());
        for channel in channels {
            let c = &channel.record;
            let mut h = blake3::Hasher::new();
            for part in [
                c.id.as_str(),
                &c.team_id,
                c.kind.code(),
                &c.name,
                &c.display_name,
                &c.json,
            ] {
                h.update(part.as_bytes());
                h.update(&[0]);
            }
            h.update(format!("{}{:?}\0", c.delete_at, c.export_name).as_bytes());
            self.catalog.load_channel_members(&c.id, |member| {
                h.update(member.user_id.as_bytes());
                h.update(&[0]);
                Ok::<_, CatalogError>(())
            })?;
            for sum in sums.get(&c.id).into_iter().flatten() {
                h.update(&sum.to_le_bytes());
            }
            let fingerprint = h.finalize().to_hex().to_string();
            search.update(format!("{}\0{fingerprint}\0", c.id).as_bytes());
            self.fingerprints.insert(c.id.clone(), fingerprint);
        }
        self.new.search = search.finalize().to_hex().to_string();
        self.index_needed =
            self.old.search != self.new.search || !self.site.join("search/meta.js").is_file();

        let same_context = self.old.context == self.new.context;
        let changed: HashSet<String> = channels
            .iter()
            .map(|c| &c.record)
            .filter(|c| {
                !same_context
                    || self
                        .old
                        .channels
                        .get(&c.id)
                        .is_none_or(|s| s.fingerprint != self.fingerprints[&c.id])
            })
            .map(|c| safe_id(&c.id))
            .collect();
        let dirs: HashSet<String> = channels.iter().map(|c| safe_id(&c.record.id)).collect();
        Ok(channels
            .iter()
            .map(|c| &c.record)
            .map(|c| {
                let dir = safe_id(&c.id);
                let Some(state) = self.old.channels.get(&c.id) else {
                    return false;
                };
                !changed.contains(&dir)
                    && state
                        .links
                        .iter()
                        .all(|d| dirs.contains(d) && !changed.contains(d))
                    && (!state.open_links || changed.is_empty())
                    && self
                        .old_channel_pages(&c.id)
                        .all(|(rel, _)| self.site.join(rel).is_file())
            })
            .collect())
    }

    /// The previous build's pages of a channel (everything under its directory).
    pub(super) fn old_channel_pages(
        &self,
        channel_id: &str,
    ) -> impl Iterator<Item = (&String, &String)> {
        let prefix = format!("{}/", channel_dir(channel_id));
        self.old
            .pages
            .range(prefix.clone()..)
            .take_while(move |(rel, _)| rel.starts_with(&prefix))
    }

    /// Keeps every page of a clean channel; reads its posts only when the search index is
    /// made again (another channel changed).
    pub(super) fn keep_channel(&mut self, n: usize, channel: &Channel) -> Result<(), SiteError> {
        let id = &channel.record.id;
        let kept: Vec<(String, String)> = self
            .old_channel_pages(id)
            .map(|(rel, hash)| (rel.clone(), hash.clone()))
            .collect();
        self.report.pages_kept += kept.len() as u64;
        self.new.pages.extend(kept);
        let state = self.old.channels[id].clone();
        self.report.posts += state.posts;
        self.new.channels.insert(id.clone(), state);
        if self.index_needed {
            let plan = self.plan_channel(channel)?;
            self.walk_posts(n, channel, &plan, true)?;
        }
        Ok(())
    }
    /// A page's hash from its rendered body and the context (the zone every page states).
    pub(super) fn body_hash(&self, body: &str) -> String {
        let mut h = blake3::Hasher::new();
        h.update(self.context.as_bytes());
        h.update(body.as_bytes());
        h.finalize().to_hex().to_string()
    }

    /// Whether the page at `rel` is up to date (same input hash, file present); records it.
    pub(super) fn keep(&mut self, rel: &str, hash: &str) -> bool {
        let same =
            self.old.pages.get(rel).is_some_and(|h| h == hash) && self.site.join(rel).is_file();
        if same {
            self.new.pages.insert(rel.to_owned(), hash.to_owned());
            self.report.pages_kept += 1;
        }
        same
    }
    /// Removes pages of the previous build that this build no longer has, then writes the
    /// manifest (last, so an interrupted build is redone where it stopped).
    pub(super) fn finish(&mut self) -> Result<(), SiteError> {
        for rel in self.old.pages.keys() {
            if self.new.pages.contains_key(rel) || !is_plain_relative(rel) {
                continue;
            }
            if std::fs::remove_file(self.site.join(rel)).is_ok() {
                self.report.pages_removed += 1;
            }
        }
        self.report.files_linked = self.linked.get();
        self.report.files_copied = self.copied.get();
        self.report.files_kept = self.kept.get();
        self.report.missing_blobs = self.missing.take();
        let json = serde_json::to_vec(&self.new).expect("manifest serializes");
        self.write(MANIFEST, &json)
    }
}

/// Where a channel's permalinks (`…/pl/<post id>`) point.
#[derive(Default)]
pub(super) struct Links {
    /// Directories of the channels holding their targets.
    pub(super) dirs: std::collections::BTreeSet<String>,
    /// One resolved to no post.
    pub(super) open: bool,
}

impl Links {
    /// Finds the permalinks in `text` and returns where they resolve to (for a page hash).
    /// Markdown reads the post id as the URL's last segment, after trailing punctuation is
    /// cut; every prefix of the characters after `/pl/` that names a post is taken, so no
    /// reading of the URL can resolve to a target missed here.
    pub(super) fn scan(&mut self, text: &str, names: &Names) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("/pl/") {
            rest = &rest[at + 4..];
            let run_end = rest
                .char_indices()
                .find(|&(i, ch)| {
                    i >= 256
                        || ch.is_whitespace()
                        || ch.is_control()
                        || "?#/\\\"<>()[]".contains(ch)
                })
                .map_or(rest.len(), |(i, _)| i);
            let run = &rest[..run_end];
            let mut resolved = false;
            for (end, ch) in run.char_indices() {
                let id = &run[..end + ch.len_utf8()];
                if let Some(href) = names.posts.get(id) {
                    resolved = true;
                    out.push_str(href);
                    out.push('\0');
                    if let Some(dir) = href.strip_prefix("c/").and_then(|h| h.split('/').next()) {
                        self.dirs.insert(dir.to_owned());
                    }
                }
            }
            if !resolved {
                self.open = true;
            }
            rest = &rest[run_end..];
        }
        out
    }
}

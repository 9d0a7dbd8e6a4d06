//! The posts of a generated workspace, shaped like a busy real one: where and when each
//! post is written and by whom, which posts start threads and how long those grow, what the
//! messages say, who reacts, which posts carry a file. Pure data from a [`GenSpec`] (no
//! workspace, nothing of the product), so the mock's generated server
//! ([`Workspace::generated`](super::Workspace::generated)) and the archive-only benches
//! (`examples/synth_archive.rs`, which writes the catalog directly) see the same posts.
//!
//! The shape (the module's tests hold the figures):
//! - post `i` is written 30–44 s after post `i - 1`, in a channel drawn with weight
//!   1/(c + 1)^0.8, so a few channels are busy and most are quiet (of 20 channels, the first
//!   gets about a fifth of the posts, the last about 2 %);
//! - about half of the root posts get replies, so about a quarter of all posts start a
//!   thread; a thread's length follows a power law (P(replies ≥ k) ≈ k^-1.7, at most 500),
//!   its replies interleaved with other posts; channel 0 holds one very long thread of
//!   `min(posts / 22, posts of channel 0 / 2, 3,000)` replies, spread over the channel (at
//!   65,000 posts in 20 channels: 2,954 replies);
//! - messages: mostly one or two sentences, then paragraphs, lists, tables, quotes, fenced
//!   code blocks in eight languages, and a few long messages of 2,000 characters up to the
//!   server's limit of 16,383 (`PostMessageMaxRunesV2 = 65535 / 4` in the server's
//!   `server/public/model/post.go`); the first long message is exactly 16,383 characters;
//! - words drawn with Zipf frequencies (weight 1/rank) from `words.txt`, an everyday and
//!   workplace English list of 977 words written for this repository in rough order of
//!   frequency; `@mentions` of users, `@channel`/`@here`, `#hashtags`, `:emoji:`, links,
//!   inline code, bold and italics, and a few non-ASCII words;
//! - authors drawn with Zipf frequencies over the users (a few people write most posts);
//! - reactions on about a fifth of the posts, one to four people each, emoji names with Zipf
//!   frequencies (the generated custom emojis among them);
//! - attachments on `attachments` posts as the generator always placed them (one in every
//!   run of `posts / attachments`), named like documents and logs.
//!
//! Imports: `super` (the spec, user names) and std only. Invariants: the same spec gives the
//! same posts, byte for byte; posts come in `create_at` order; a reply is in its root's
//! channel, after its root.

use super::{GenSpec, username};

/// The server's limit on a message, in characters (runes).
pub const MAX_MESSAGE_CHARS: usize = 16_383;
/// Longest thread a channel gets besides its one very long thread.
const MAX_REPLIES: usize = 500;
/// Replies of the one very long thread, at most.
const LONG_THREAD_MAX: usize = 3_000;
/// Chance that a root post starts a thread.
const THREAD_CHANCE: f64 = 0.5;
/// Chance that a post is a reply while a channel has threads waiting for replies.
const REPLY_CHANCE: f64 = 0.55;
/// Milliseconds between two posts: at least this, plus up to [`GAP_JITTER_MS`].
const GAP_MS: i64 = 30_000;
const GAP_JITTER_MS: u64 = 14_000;

/// Emoji names of reactions, most used first (the generated custom emojis among them).
pub const REACTION_EMOJIS: [&str; 20] = [
    "+1",
    "white_check_mark",
    "eyes",
    "heart",
    "joy",
    "tada",
    "pray",
    "100",
    "smile",
    "fire",
    "gen_party",
    "rocket",
    "thinking_face",
    "raised_hands",
    "clap",
    "-1",
    "gen_ship",
    "ok_hand",
    "wave",
    "gen_wave",
];

const CODE_LANGUAGES: [&str; 8] = ["rust", "python", "sql", "bash", "json", "yaml", "go", ""];

const NON_ASCII: [&str; 10] = [
    "café",
    "naïve",
    "Zürich",
    "São Paulo",
    "Kraków",
    "Ærø",
    "東京",
    "señor",
    "🎉",
    "👍",
];

/// Name stem, extension and MIME type of attachments, in rotation.
const FILE_KINDS: [(&str, &str, &str); 6] = [
    ("report", "pdf", "application/pdf"),
    ("build", "log", "text/plain"),
    ("export", "csv", "text/csv"),
    ("notes", "txt", "text/plain"),
    ("bundle", "zip", "application/zip"),
    ("config", "json", "application/json"),
];

/// One generated post. Users and channels are indices into the spec's; roots are indices of
/// earlier posts in this sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenPost {
    pub index: usize,
    pub channel: usize,
    pub author: usize,
    /// The thread's root, for a reply.
    pub root: Option<usize>,
    /// Milliseconds after the generator's start time.
    pub offset_ms: i64,
    pub message: String,
    /// (user, emoji name), each user once per emoji.
    pub reactions: Vec<(usize, &'static str)>,
    /// The attachment's number among all attachments, when the post carries one.
    pub attachment: Option<GenFile>,
}

/// An attachment's number (0, 1, …), name and MIME type; its bytes are the caller's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenFile {
    pub number: usize,
    pub name: String,
    pub mime_type: &'static str,
}

/// splitmix64: deterministic, fast, good enough for test data.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(super) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `lo..=hi`.
    pub(super) fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

/// Ranks drawn with weight 1/(rank + 1)^s.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (0..n.max(1))
            .map(|r| {
                total += 1.0 / ((r + 1) as f64).powf(s);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    fn draw(&self, rng: &mut Rng) -> usize {
        let target = rng.unit() * self.cumulative.last().copied().unwrap_or(0.0);
        self.cumulative
            .partition_point(|&c| c <= target)
            .min(self.cumulative.len() - 1)
    }
}

/// The vocabulary: `words.txt`, one word per line, most frequent first.
fn words() -> Vec<&'static str> {
    include_str!("words.txt")
        .lines()
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect()
}

/// A thread of a channel that still waits for replies.
struct Open {
    root: usize,
    left: usize,
}

/// The very long thread of channel 0.
struct LongThread {
    root: Option<usize>,
    left: usize,
    /// A reply on every `stride`-th post of channel 0 after the root.
    stride: usize,
}

/// Which channel each post goes to: a pure function of the post's index, so that the sizes
/// of the channels are known without generating the posts.
pub struct ChannelPicker {
    weights: Zipf,
    seed: u64,
}

impl ChannelPicker {
    pub fn new(spec: &GenSpec) -> ChannelPicker {
        ChannelPicker {
            weights: Zipf::new(spec.channels.max(1), 0.8),
            seed: spec.seed,
        }
    }

    pub fn channel_of(&self, i: usize) -> usize {
        let mut rng = Rng(self.seed ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        self.weights.draw(&mut rng)
    }

    /// Posts per channel.
    pub fn sizes(&self, spec: &GenSpec) -> Vec<usize> {
        let mut sizes = vec![0; spec.channels.max(1)];
        for i in 0..spec.posts {
            sizes[self.channel_of(i)] += 1;
        }
        sizes
    }
}

/// The posts of a spec, in order (an iterator: a million posts need not be held at once).
pub struct GenPosts {
    spec: GenSpec,
    channels: ChannelPicker,
    rng: Rng,
    words: Vec<&'static str>,
    word_rank: Zipf,
    user_rank: Zipf,
    emoji_rank: Zipf,
    next: usize,
    offset_ms: i64,
    /// Posts written so far per channel.
    written: Vec<usize>,
    open: Vec<Vec<Open>>,
    long: LongThread,
    files_every: usize,
    files: usize,
    long_messages: usize,
}

impl GenPosts {
    pub fn new(spec: &GenSpec) -> GenPosts {
        let channels = ChannelPicker::new(spec);
        let in_first = channels.sizes(spec)[0];
        let long_replies = (spec.posts / 22).min(in_first / 2).min(LONG_THREAD_MAX);
        let words = words();
        GenPosts {
            rng: Rng(spec.seed ^ 0x5EED_0FC0_FFEE),
            word_rank: Zipf::new(words.len(), 1.0),
            words,
            user_rank: Zipf::new(spec.users, 1.1),
            emoji_rank: Zipf::new(REACTION_EMOJIS.len(), 1.2),
            next: 0,
            offset_ms: 0,
            written: vec![0; spec.channels.max(1)],
            open: (0..spec.channels.max(1)).map(|_| Vec::new()).collect(),
            channels,
            long: LongThread {
                root: None,
                left: long_replies,
                stride: (in_first / (long_replies + 1)).max(2),
            },
            files_every: spec
                .posts
                .checked_div(spec.attachments)
                .map_or(usize::MAX, |n| n.max(1)),
            files: 0,
            long_messages: 0,
            spec: spec.clone(),
        }
    }

    /// The root of the post about to be written in channel `c`, if it is a reply.
    fn thread_of(&mut self, c: usize, k: usize, i: usize) -> Option<usize> {
        if c == 0 && self.long.left > 0 {
            match self.long.root {
                None => {
                    self.long.root = Some(i);
                    return None;
                }
                Some(root) if k.is_multiple_of(self.long.stride) => {
                    self.long.left -= 1;
                    return Some(root);
                }
                Some(_) => {}
            }
        }
        let open = &mut self.open[c];
        if !open.is_empty() && self.rng.chance(REPLY_CHANCE) {
            // Recent threads are the likeliest to get the next reply.
            let back = (open.len() as f64 * self.rng.unit().powi(3)) as usize;
            let at = open.len() - 1 - back.min(open.len() - 1);
            let root = open[at].root;
            open[at].left -= 1;
            if open[at].left == 0 {
                open.remove(at);
            }
            return Some(root);
        }
        if self.rng.chance(THREAD_CHANCE) {
            // P(replies >= k) = k^-1.7: mostly one or two replies, a long tail.
            let u = 1.0 - self.rng.unit();
            let replies = (u.powf(-1.0 / 1.7) as usize).clamp(1, MAX_REPLIES);
            self.open[c].push(Open {
                root: i,
                left: replies,
            });
        }
        None
    }

    fn word(&mut self) -> &'static str {
        self.words[self.word_rank.draw(&mut self.rng)]
    }

    fn user(&mut self) -> usize {
        self.user_rank.draw(&mut self.rng)
    }

    /// A sentence of `n` words with the decorations a chat message has.
    fn sentence(&mut self, n: usize, out: &mut String) {
        for w in 0..n {
            if w > 0 {
                out.push(' ');
            }
            let roll = self.rng.unit();
            let word = self.word();
            match roll {
                r if r < 0.006 => {
                    out.push('@');
                    out.push_str(&username(self.user()));
                }
                r if r < 0.009 => {
                    out.push('#');
                    out.push_str(word);
                    if self.rng.chance(0.5) {
                        out.push_str(&format!("_{}", self.rng.range(1, 999)));
                    }
                }
                r if r < 0.015 => out.push_str(&format!("**{word}**")),
                r if r < 0.019 => out.push_str(&format!("_{word}_")),
                r if r < 0.025 => out.push_str(&format!("`{word}_{}`", self.word())),
                r if r < 0.028 => out.push_str(&format!(
                    "[{word}](https://docs.example.com/{}/{})",
                    self.word(),
                    self.rng.range(1, 9999)
                )),
                r if r < 0.032 => {
                    out.push(':');
                    out.push_str(REACTION_EMOJIS[self.emoji_rank.draw(&mut self.rng)]);
                    out.push(':');
                }
                r if r < 0.034 => out.push_str(NON_ASCII[self.rng.range(0, NON_ASCII.len() - 1)]),
                _ if w == 0 => {
                    let mut chars = word.chars();
                    if let Some(first) = chars.next() {
                        out.extend(first.to_uppercase());
                        out.push_str(chars.as_str());
                    }
                }
                _ => out.push_str(word),
            }
        }
        let end = self.rng.unit();
        out.push_str(if end < 0.8 {
            "."
        } else if end < 0.93 {
            "?"
        } else {
            "!"
        });
    }

    /// Words per sentence: mostly short, sometimes long.
    fn sentence_length(&mut self) -> usize {
        2 + (self.rng.unit().powi(2) * 24.0) as usize
    }

    fn paragraph(&mut self, out: &mut String) {
        for s in 0..self.rng.range(1, 5) {
            if s > 0 {
                out.push(' ');
            }
            let n = self.sentence_length() + 4;
            self.sentence(n, out);
        }
    }

    fn code_block(&mut self, out: &mut String) {
        let lang = CODE_LANGUAGES[self.rng.range(0, CODE_LANGUAGES.len() - 1)];
        out.push_str("```");
        out.push_str(lang);
        out.push('\n');
        let lines = 2 + (self.rng.unit().powi(2) * 38.0) as usize;
        for l in 0..lines {
            let (a, b, n) = (self.word(), self.word(), self.rng.range(0, 999));
            let a = a.replace('\'', "");
            let b = b.replace('\'', "");
            let line = match lang {
                "rust" => match l % 3 {
                    0 => format!("fn {a}_{b}(x: u32) -> Result<u32, Error> {{"),
                    1 => format!("    let {a} = x.checked_mul({n}).ok_or(Error::{b})?;"),
                    _ => format!("    Ok({a}) }}"),
                },
                "python" => match l % 3 {
                    0 => format!("def {a}_{b}(items):"),
                    1 => format!("    {a} = [i for i in items if i.{b} > {n}]"),
                    _ => format!("    return len({a})"),
                },
                "sql" => format!(
                    "SELECT {a}, count(*) FROM {b} WHERE id > {n} GROUP BY {a} ORDER BY 2 DESC;"
                ),
                "bash" => format!("{a} --{b} {n} | grep -v {a} > /tmp/{b}.log"),
                "json" => format!("{{\"{a}\": {n}, \"{b}\": \"{a}-{b}\"}}"),
                "yaml" => format!("{a}:\n  {b}: {n}"),
                "go" => format!("if err := {a}.{b}(ctx, {n}); err != nil {{ return err }}"),
                _ => format!("{a} {b} {n} ERROR {a}: {b} failed after {n} ms"),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str("```");
    }

    fn list(&mut self, out: &mut String) {
        let kind = self.rng.range(0, 2);
        for item in 0..self.rng.range(2, 8) {
            out.push('\n');
            match kind {
                0 => out.push_str("- "),
                1 => out.push_str(&format!("{}. ", item + 1)),
                _ => out.push_str(if self.rng.chance(0.5) {
                    "- [x] "
                } else {
                    "- [ ] "
                }),
            }
            let n = self.sentence_length();
            self.sentence(n, out);
        }
    }

    fn table(&mut self, out: &mut String) {
        let columns = self.rng.range(2, 4);
        let heads: Vec<&str> = (0..columns).map(|_| self.word()).collect();
        out.push_str(&format!(
            "\n| {} |\n|{}\n",
            heads.join(" | "),
            "---|".repeat(columns)
        ));
        for _ in 0..self.rng.range(2, 6) {
            let cells: Vec<String> = (0..columns)
                .map(|c| {
                    if c == 0 {
                        self.word().to_owned()
                    } else {
                        self.rng.range(0, 10_000).to_string()
                    }
                })
                .collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
    }

    /// A long message of exactly `chars` characters: paragraphs, a code block, paragraphs.
    fn long_message(&mut self, chars: usize) -> String {
        let mut out = String::new();
        self.paragraph(&mut out);
        out.push_str("\n\n");
        self.code_block(&mut out);
        while out.chars().count() < chars {
            out.push_str("\n\n");
            self.paragraph(&mut out);
        }
        let cut = out
            .char_indices()
            .nth(chars)
            .map_or(out.len(), |(at, _)| at);
        out.truncate(cut);
        out
    }

    fn message(&mut self, reply: bool) -> String {
        let roll = self.rng.unit();
        if roll < 0.003 {
            self.long_messages += 1;
            let chars = if self.long_messages == 1 {
                MAX_MESSAGE_CHARS
            } else {
                self.rng.range(2_000, MAX_MESSAGE_CHARS)
            };
            return self.long_message(chars);
        }
        let mut out = String::new();
        if self.rng.chance(if reply { 0.15 } else { 0.08 }) {
            out.push('@');
            out.push_str(&username(self.user()));
            out.push(' ');
        } else if !reply && self.rng.chance(0.005) {
            out.push_str(if self.rng.chance(0.5) {
                "@channel "
            } else {
                "@here "
            });
        }
        match roll {
            r if r < 0.05 => {
                let n = self.sentence_length();
                self.sentence(n, &mut out);
                out.push('\n');
                self.code_block(&mut out);
            }
            r if r < 0.08 => {
                let n = self.sentence_length();
                self.sentence(n, &mut out);
                self.list(&mut out);
            }
            r if r < 0.09 => {
                let n = self.sentence_length();
                self.sentence(n, &mut out);
                self.table(&mut out);
            }
            r if r < 0.11 => {
                out.push_str("> ");
                let n = self.sentence_length();
                self.sentence(n, &mut out);
                out.push_str("\n\n");
                let n = self.sentence_length();
                self.sentence(n, &mut out);
            }
            r if r < 0.16 => {
                for p in 0..self.rng.range(2, 4) {
                    if p > 0 {
                        out.push_str("\n\n");
                    }
                    if p == 1 && self.rng.chance(0.3) {
                        out.push_str("### ");
                    }
                    self.paragraph(&mut out);
                }
            }
            _ => {
                for s in 0..self.rng.range(1, 2) {
                    if s > 0 {
                        out.push(' ');
                    }
                    let n = self.sentence_length();
                    self.sentence(n, &mut out);
                }
            }
        }
        if self.rng.chance(0.04) {
            out.push_str(&format!(" #{}", self.word().replace('\'', "")));
        }
        out
    }

    fn reactions(&mut self, author: usize) -> Vec<(usize, &'static str)> {
        if !self.rng.chance(0.2) {
            return Vec::new();
        }
        let count = 1 + (self.rng.unit().powi(2) * 4.0) as usize;
        let mut out: Vec<(usize, &'static str)> = Vec::new();
        for _ in 0..count {
            let user = self.user();
            let emoji = REACTION_EMOJIS[self.emoji_rank.draw(&mut self.rng)];
            if user != author && !out.contains(&(user, emoji)) {
                out.push((user, emoji));
            }
        }
        out
    }
}

impl GenPosts {
    /// Posts not yet generated.
    pub fn len_left(&self) -> usize {
        self.spec.posts - self.next
    }
}

impl Iterator for GenPosts {
    type Item = GenPost;

    fn next(&mut self) -> Option<GenPost> {
        let i = self.next;
        if i >= self.spec.posts {
            return None;
        }
        self.next += 1;
        let c = self.channels.channel_of(i);
        let k = self.written[c];
        self.written[c] += 1;
        if i > 0 {
            self.offset_ms += GAP_MS + (self.rng.next() % GAP_JITTER_MS) as i64;
        }
        let root = self.thread_of(c, k, i);
        let author = self.user();
        let message = self.message(root.is_some());
        let reactions = self.reactions(author);
        // One file in every block of `every` posts, at an offset that rotates, so that the
        // files spread over the channels (a fixed offset would put them all in one channel
        // whenever `every` is a multiple of the channel count).
        let every = self.files_every;
        let attachment = (i % every == (i / every) % every && self.files < self.spec.attachments)
            .then(|| {
                let number = self.files;
                self.files += 1;
                let (stem, ext, mime_type) = FILE_KINDS[number % FILE_KINDS.len()];
                GenFile {
                    number,
                    name: format!("{stem}-{number}.{ext}"),
                    mime_type,
                }
            });
        Some(GenPost {
            index: i,
            channel: c,
            author,
            root,
            offset_ms: self.offset_ms,
            message,
            reactions,
            attachment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn spec(posts: usize, channels: usize) -> GenSpec {
        GenSpec {
            posts,
            channels,
            attachments: posts / 20,
            ..GenSpec::default()
        }
    }

    /// The figures the module docs and `docs/performance.md` state, on 65,000 posts in 20
    /// channels (the size of the workspace issue 23 describes).
    #[test]
    fn the_shape_is_that_of_a_busy_workspace() {
        let posts: Vec<GenPost> = GenPosts::new(&spec(65_000, 20)).collect();
        assert_eq!(posts.len(), 65_000);
        let mut replies: HashMap<usize, usize> = HashMap::new();
        for p in &posts {
            if let Some(root) = p.root {
                assert!(root < p.index, "a reply comes after its root");
                assert_eq!(
                    posts[root].channel, p.channel,
                    "a reply is in its root's channel"
                );
                assert_eq!(posts[root].root, None, "roots are not replies");
                *replies.entry(root).or_default() += 1;
            }
        }
        let starting = replies.len() as f64 / posts.len() as f64;
        assert!(
            (0.22..=0.28).contains(&starting),
            "{starting} of the posts start a thread"
        );
        let longest = replies.values().copied().max().unwrap();
        assert_eq!(longest, 65_000 / 22, "the one very long thread");
        let second = {
            let mut lengths: Vec<usize> = replies.values().copied().collect();
            lengths.sort_unstable();
            lengths[lengths.len() - 2]
        };
        assert!(
            (50..=MAX_REPLIES).contains(&second),
            "a long tail: {second}"
        );
        let chars: Vec<usize> = posts.iter().map(|p| p.message.chars().count()).collect();
        assert_eq!(chars.iter().max(), Some(&MAX_MESSAGE_CHARS));
        assert!(chars.iter().filter(|&&c| c >= 2_000).count() > 50);
        let has = |needle: &str| posts.iter().filter(|p| p.message.contains(needle)).count();
        for (what, needle, at_least) in [
            ("code blocks", "```", 2_000),
            ("mentions", "@user-", 3_000),
            ("hashtags", " #", 1_500),
            ("bold", "**", 1_000),
            ("links", "](https://", 500),
            ("tables", "|---|", 300),
            ("lists", "\n- ", 500),
        ] {
            assert!(has(needle) >= at_least, "{what}: {}", has(needle));
        }
        let reacted = posts.iter().filter(|p| !p.reactions.is_empty()).count();
        assert!(
            (10_000..=15_000).contains(&reacted),
            "{reacted} posts with reactions"
        );
        assert_eq!(
            posts.iter().filter(|p| p.attachment.is_some()).count(),
            3_250
        );
        assert!(posts.windows(2).all(|w| w[0].offset_ms < w[1].offset_ms));
        // Zipf: the commonest word is far commoner than the hundredth.
        let count = |w: &str| {
            posts
                .iter()
                .map(|p| p.message.split(' ').filter(|x| *x == w).count())
                .sum::<usize>()
        };
        let words = words();
        assert!(count(words[1]) > 20 * count(words[200]));
    }

    #[test]
    fn the_same_spec_gives_the_same_posts() {
        let a: Vec<GenPost> = GenPosts::new(&spec(3_000, 3)).collect();
        let b: Vec<GenPost> = GenPosts::new(&spec(3_000, 3)).collect();
        assert_eq!(a, b);
        let other: Vec<GenPost> = GenPosts::new(&GenSpec {
            seed: 2,
            ..spec(3_000, 3)
        })
        .collect();
        assert_ne!(a, other);
    }

    #[test]
    fn the_vocabulary_has_no_duplicates_or_spaces() {
        let words = words();
        assert_eq!(words.len(), 977);
        let mut sorted = words.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), words.len());
        assert!(words.iter().all(|w| !w.contains(' ')));
    }
}

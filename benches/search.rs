//! Full-text search latency on a generated archive of 1,000,000 posts (`matterbak search`
//! runs `Catalog::search_posts`). Target (query issue): well under a second per search.
//!
//! The archive is written through the catalog API as a sync writes it (pages of 200 posts
//! per transaction, the full-text triggers firing), in 20 channels by 50 users over about a
//! year, with messages of 6–20 words drawn from a 5,000-word vocabulary with Zipf-like
//! frequencies, so there are words in most posts, in about 1 % and in a few hundred. It is
//! built once (a minute or two) and kept in `$TMPDIR/matterbak-search-bench-v1` for later
//! runs; delete that directory to rebuild. `MATTERBAK_BENCH_POSTS` changes the size.
//!
//! cargo bench --bench search

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use matterbak::catalog::{Access, Catalog, ChannelCursor, DeletedPosts, LastOutcome, SearchQuery};
use matterbak::model::object::{self, Raw};
use serde_json::value::RawValue;

const CHANNELS: usize = 20;
const USERS: usize = 50;
const VOCABULARY: usize = 5_000;
const PAGE: usize = 200;
const START_MS: i64 = 1_700_000_000_000;

fn raw<T: serde::de::DeserializeOwned>(json: String) -> Raw<T> {
    Raw::parse(RawValue::from_string(json).expect("valid JSON")).expect("parses")
}

fn id(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:0>width$}", width = 26 - prefix.len())
}

/// The word of a vocabulary rank: syllables spelling the rank, at least two of them.
fn word(rank: usize) -> String {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "ze", "bo", "di", "fa", "gu", "he",
        "jo",
    ];
    let mut n = rank;
    let mut w = String::new();
    for _ in 0..2 {
        w.push_str(SYLLABLES[n % 16]);
        n /= 16;
    }
    while n > 0 {
        w.push_str(SYLLABLES[n % 16]);
        n /= 16;
    }
    w
}

/// xorshift64*: deterministic, fast, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A rank with probability roughly proportional to 1/(rank+1) (log-uniform).
    fn rank(&mut self) -> usize {
        ((VOCABULARY as f64 + 1.0).powf(self.unit()) as usize)
            .saturating_sub(1)
            .min(VOCABULARY - 1)
    }
}

fn archive_dir() -> PathBuf {
    std::env::temp_dir().join("matterbak-search-bench-v1")
}

fn posts_wanted() -> usize {
    std::env::var("MATTERBAK_BENCH_POSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// Builds the archive unless a complete one of the wanted size is there.
fn build_archive(dir: &Path, posts: usize) {
    let done = dir.join(format!("complete-{posts}"));
    if done.exists() {
        return;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let started = Instant::now();
    let mut catalog = Catalog::open(&dir.join("catalog.sqlite"), Access::ReadWrite).unwrap();
    let users: Vec<Raw<object::User>> = (0..USERS)
        .map(|u| {
            raw(format!(
                r#"{{"id":"{}","username":"user{u}","update_at":1,"delete_at":0}}"#,
                id("u", u)
            ))
        })
        .collect();
    catalog.upsert_users(&users).unwrap();
    let team = id("t", 0);
    catalog
        .upsert_team(
            &raw(format!(
                r#"{{"id":"{team}","name":"bench","display_name":"Bench","update_at":1}}"#
            )),
            true,
        )
        .unwrap();
    for c in 0..CHANNELS {
        catalog
            .upsert_channel(
                &raw(format!(
                    r#"{{"id":"{}","team_id":"{team}","type":"O","name":"channel-{c}","display_name":"Channel {c}"}}"#,
                    id("c", c)
                )),
                true,
                None,
            )
            .unwrap();
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut page = Vec::with_capacity(PAGE);
    // One post every 30 s: a million posts span about a year.
    for p in 0..posts {
        let channel = id("c", p % CHANNELS);
        let words = 6 + (rng.next() % 15) as usize;
        let message: Vec<String> = (0..words).map(|_| word(rng.rank())).collect();
        let at = START_MS + p as i64 * 30_000;
        page.push(raw::<object::Post>(format!(
            r#"{{"id":"{}","create_at":{at},"update_at":{at},"edit_at":0,"delete_at":0,"user_id":"{}","channel_id":"{channel}","root_id":"","original_id":"","message":"{}","type":"","props":{{}},"metadata":{{}}}}"#,
            id("p", p),
            id("u", (rng.next() % USERS as u64) as usize),
            message.join(" ")
        )));
        // Pages per channel, as a sync writes them.
        if page.len() == PAGE || p + 1 == posts {
            let by_channel = page.drain(..).fold(
                (0..CHANNELS).map(|_| Vec::new()).collect::<Vec<_>>(),
                |mut acc: Vec<Vec<Raw<object::Post>>>, post| {
                    let c = post.value.channel_id[1..].parse::<usize>().unwrap();
                    acc[c].push(post);
                    acc
                },
            );
            for (c, posts) in by_channel.into_iter().enumerate() {
                if !posts.is_empty() {
                    catalog
                        .apply_posts_page(
                            &id("c", c).into(),
                            &posts,
                            &ChannelCursor::default(),
                            LastOutcome::Ok,
                            0,
                        )
                        .unwrap();
                }
            }
        }
        if p > 0 && p % 100_000 == 0 {
            eprintln!("  {p} posts written ({:.0?})", started.elapsed());
        }
    }
    drop(catalog);
    std::fs::write(&done, b"").unwrap();
    eprintln!(
        "built a {posts}-post archive in {:.1?} ({} MB catalog)",
        started.elapsed(),
        std::fs::metadata(dir.join("catalog.sqlite")).unwrap().len() / 1_000_000
    );
}

fn query(words: &[&str]) -> SearchQuery {
    SearchQuery {
        words: words.iter().map(|w| w.to_string()).collect(),
        channel: None,
        team: None,
        from: None,
        created_from: None,
        created_before: None,
        deleted: DeletedPosts::Exclude,
        limit: 20,
        highlight: ("[".into(), "]".into()),
    }
}

fn search(c: &mut Criterion) {
    let dir = archive_dir();
    let posts = posts_wanted();
    build_archive(&dir, posts);
    let catalog = Catalog::open(&dir.join("catalog.sqlite"), Access::ReadOnly).unwrap();

    let (common, medium, rare) = (word(1), word(100), word(3000));
    let mut filtered = query(&[&medium]);
    filtered.channel = Some("channel-7".into());
    filtered.from = Some("user3".into());
    let mut dated = query(&[&medium]);
    dated.created_from = Some(START_MS + 86_400_000 * 90);
    dated.created_before = Some(START_MS + 86_400_000 * 120);
    let prefix = format!("{}*", &word(100)[..3]);
    let cases: Vec<(String, SearchQuery)> = vec![
        (format!("rare word ({rare})"), query(&[&rare])),
        (format!("medium word ({medium})"), query(&[&medium])),
        (format!("common word ({common})"), query(&[&common])),
        (
            format!("two words ({medium} {rare})"),
            query(&[&medium, &rare]),
        ),
        (
            format!("phrase (\"{} {}\")", word(0), word(1)),
            query(&[&format!("{} {}", word(0), word(1))]),
        ),
        (format!("prefix ({prefix})"), query(&[&prefix])),
        ("medium word, --channel --from".to_owned(), filtered),
        ("medium word, --after --before".to_owned(), dated),
    ];
    for (name, q) in &cases {
        let mut all = q.clone();
        all.limit = u32::MAX;
        let matches = catalog.search_posts(&all).unwrap().len();
        eprintln!("{name}: {matches} matching posts of {posts}");
    }

    let mut group = c.benchmark_group(format!("search {posts} posts, top 20"));
    group.sample_size(20);
    group.measurement_time(std::time::Duration::from_secs(5));
    for (name, q) in &cases {
        group.bench_function(name.as_str(), |b| {
            b.iter(|| black_box(catalog.search_posts(q).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);

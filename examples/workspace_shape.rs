//! Measures the shape of the generated workspace the benches use (the mock's `GenPosts`):
//! threads, message lengths and contents, reactions, attachments, channel sizes, words.
//! Prints one block per size; exits 1 if a size does not have the shape the docs state
//! (a quarter of the posts start a thread, one thread of thousands of replies from 65,000
//! posts up, a message of exactly 16,383 characters).
//!
//! usage: workspace_shape [SIZES ...]   (SIZES as for `GenSpec`'s `FromStr`; default:
//!        posts=20000,attachments=1000  posts=200000,attachments=1000  posts=1000000,attachments=1000)

use std::collections::{HashMap, HashSet};

use matterbak::mock::{GenPosts, GenSpec, MAX_MESSAGE_CHARS};

fn main() {
    let mut sizes: Vec<String> = std::env::args().skip(1).collect();
    if sizes.is_empty() {
        sizes = [20_000, 200_000, 1_000_000]
            .iter()
            .map(|p| format!("posts={p},attachments=1000"))
            .collect();
    }
    let mut ok = true;
    for sizes in sizes {
        let spec: GenSpec = sizes.parse().unwrap_or_else(|e| {
            eprintln!("workspace_shape: {sizes}: {e}");
            std::process::exit(2);
        });
        let mut replies: HashMap<usize, usize> = HashMap::new();
        let mut channel_posts = vec![0usize; spec.channels];
        let (mut posts, mut reacted, mut reactions, mut files) = (0usize, 0, 0, 0);
        let (mut longest, mut long_messages, mut chars_total) = (0usize, 0, 0usize);
        let mut with: HashMap<&str, usize> = HashMap::new();
        let mut words: HashMap<String, usize> = HashMap::new();
        let mut word_count = 0usize;
        for post in GenPosts::new(&spec) {
            posts += 1;
            channel_posts[post.channel] += 1;
            if let Some(root) = post.root {
                *replies.entry(root).or_default() += 1;
            }
            reacted += usize::from(!post.reactions.is_empty());
            reactions += post.reactions.len();
            files += usize::from(post.attachment.is_some());
            let chars = post.message.chars().count();
            chars_total += chars;
            longest = longest.max(chars);
            long_messages += usize::from(chars >= 2_000);
            for (what, needle) in [
                ("code block", "```"),
                ("@mention", "@user-"),
                ("#hashtag", " #"),
                ("link", "](https://"),
                ("table", "|---|"),
                ("bold", "**"),
            ] {
                if post.message.contains(needle) {
                    *with.entry(what).or_default() += 1;
                }
            }
            for w in post.message.split_whitespace() {
                let w = w
                    .trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase();
                if !w.is_empty() && w.chars().all(char::is_alphabetic) {
                    word_count += 1;
                    *words.entry(w).or_default() += 1;
                }
            }
        }
        let threads = replies.len();
        let reply_total: usize = replies.values().sum();
        let mut lengths: Vec<usize> = replies.values().copied().collect();
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        let share = |n: usize| 100.0 * n as f64 / posts.max(1) as f64;
        let mut by_count: Vec<(&String, &usize)> = words.iter().collect();
        by_count.sort_unstable_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top = |k: usize| {
            100.0 * by_count.iter().take(k).map(|(_, n)| **n).sum::<usize>() as f64
                / word_count.max(1) as f64
        };
        let percentile = |p: f64| {
            let mut l = lengths.clone();
            l.sort_unstable();
            l.get(((l.len() as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or(0)
        };
        let distinct: HashSet<usize> = lengths.iter().copied().collect();
        println!("{sizes}:");
        println!(
            "  posts {posts}; threads {threads} = {:.1} % of the posts start a thread; replies {reply_total} ({:.1} %)",
            share(threads),
            share(reply_total)
        );
        println!(
            "  replies per thread: median {}, 90th percentile {}, 99th {}, longest {:?}; {} distinct lengths",
            percentile(0.5),
            percentile(0.9),
            percentile(0.99),
            &lengths[..lengths.len().min(3)],
            distinct.len()
        );
        println!(
            "  messages: longest {longest} characters, {long_messages} of 2,000 or more, mean {:.0}",
            chars_total as f64 / posts.max(1) as f64
        );
        let mut kinds: Vec<(&&str, &usize)> = with.iter().collect();
        kinds.sort();
        println!(
            "  posts with {}",
            kinds
                .iter()
                .map(|(k, n)| format!("{k} {:.1} %", share(**n)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "  reactions {reactions} on {:.1} % of the posts; attachments {files}",
            share(reacted)
        );
        println!(
            "  channels: largest {} posts, smallest {}",
            channel_posts.iter().max().unwrap_or(&0),
            channel_posts.iter().min().unwrap_or(&0)
        );
        println!(
            "  words: {word_count} running, {} distinct; the commonest 10 are {:.1} % of all, the commonest 100 {:.1} %; top: {}",
            words.len(),
            top(10),
            top(100),
            by_count
                .iter()
                .take(5)
                .map(|(w, n)| format!("{w} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let start_share = share(threads);
        if !(22.0..=28.0).contains(&start_share)
            || (posts >= 65_000 && lengths.first().copied().unwrap_or(0) < 2_000)
            || (posts >= 20_000 && longest != MAX_MESSAGE_CHARS)
        {
            eprintln!("workspace_shape: {sizes} does not have the documented shape");
            ok = false;
        }
    }
    if !ok {
        std::process::exit(1);
    }
}

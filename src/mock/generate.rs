//! Large deterministic workspaces for benches: sizes are parameters, everything else
//! (ids, timestamps, texts, attachment bytes) follows from them and a seed.
//!
//! Shape: `users` people (the first is [`SAMPLE_USER`] with [`SAMPLE_PASSWORD`]), all
//! members of `teams` teams and of every one of the `channels` open channels (spread over
//! the teams round robin). The posts are those of [`shape`]: shaped like a busy real
//! workspace (threads with a long tail and one very long thread, Markdown, code, mentions,
//! hashtags, reactions, messages up to the server's 16,383 characters, a Zipf vocabulary).
//! `attachments` posts, one in every run of `posts / attachments`, carry one file of
//! `attachment_bytes` pseudo-random bytes each. Every fourth user has uploaded a picture,
//! the first team has an icon, and there are [`GENERATED_EMOJIS`] custom emojis.

pub mod shape;
pub mod stream;

use super::model::{Channel, NewFile, Team, User};
use super::png;
use super::sample::{SAMPLE_PASSWORD, SAMPLE_USER, pseudo_bytes};
use super::workspace::Workspace;

const BASE: i64 = 1_710_000_000_000;
/// Custom emojis in a generated workspace.
pub const GENERATED_EMOJIS: usize = 3;
/// What one page of a list (posts, members, emojis) holds at most.
const PAGE: usize = 200;
/// Users per `POST /users/ids` batch a client needs at least.
const USER_BATCH: usize = 1000;

/// Sizes of a generated workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenSpec {
    pub teams: usize,
    /// Open channels in all, spread over the teams.
    pub channels: usize,
    pub posts: usize,
    pub attachments: usize,
    pub attachment_bytes: usize,
    pub users: usize,
    pub seed: u64,
}

impl Default for GenSpec {
    /// 2 teams, 20 channels, 20,000 posts, 1,000 attachments of 2 KiB, 50 users.
    fn default() -> Self {
        GenSpec {
            teams: 2,
            channels: 20,
            posts: 20_000,
            attachments: 1_000,
            attachment_bytes: 2048,
            users: 50,
            seed: 1,
        }
    }
}

/// The fewest requests a first sync of a generated workspace needs, by kind (login, `me` and
/// logout not included). A list of `n` items paged by 200 takes `n / 200 + 1` pages: a
/// client only knows a list ended when a page comes back short.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinimumRequests {
    pub team_lists: usize,
    pub channel_lists: usize,
    pub member_pages: usize,
    pub emoji_pages: usize,
    pub user_batches: usize,
    pub post_pages: usize,
    pub attachments: usize,
    pub avatars: usize,
    pub team_icons: usize,
    pub emoji_images: usize,
}

impl MinimumRequests {
    pub fn total(&self) -> usize {
        self.team_lists
            + self.channel_lists
            + self.member_pages
            + self.emoji_pages
            + self.user_batches
            + self.post_pages
            + self.attachments
            + self.avatars
            + self.team_icons
            + self.emoji_images
    }
}

impl std::fmt::Display for MinimumRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} team list + {} channel list + {} member pages + {} emoji pages + {} user batches \
             + {} post pages + {} attachments + {} avatars + {} team icons + {} emoji images = {}",
            self.team_lists,
            self.channel_lists,
            self.member_pages,
            self.emoji_pages,
            self.user_batches,
            self.post_pages,
            self.attachments,
            self.avatars,
            self.team_icons,
            self.emoji_images,
            self.total()
        )
    }
}

fn pages(items: usize) -> usize {
    items / PAGE + 1
}

impl GenSpec {
    /// Posts per channel.
    pub fn channel_sizes(&self) -> Vec<usize> {
        shape::ChannelPicker::new(self).sizes(self)
    }

    fn avatars(&self) -> usize {
        (0..self.users).filter(|u| u % 4 == 1).count()
    }

    /// The fewest requests a first sync selecting every channel needs.
    pub fn minimum_requests(&self) -> MinimumRequests {
        let channels = self.channels;
        MinimumRequests {
            team_lists: 1,
            channel_lists: 1,
            member_pages: (self.teams + channels) * pages(self.users),
            emoji_pages: pages(GENERATED_EMOJIS),
            user_batches: self.users.saturating_sub(1).div_ceil(USER_BATCH),
            post_pages: self
                .channel_sizes()
                .iter()
                .map(|&n| n.div_ceil(PAGE).max(1))
                .sum(),
            attachments: self.attachments.min(self.posts),
            avatars: self.avatars(),
            team_icons: usize::from(self.teams > 0),
            emoji_images: GENERATED_EMOJIS,
        }
    }

    /// A `channels.json` selecting every team (and so every channel).
    pub fn channels_json(&self) -> String {
        let teams: serde_json::Map<String, serde_json::Value> = (0..self.teams)
            .map(|t| (team_name(t), serde_json::json!({})))
            .collect();
        serde_json::json!({ "teams": teams }).to_string()
    }
}

/// `key=value` pairs separated by commas, keys as the fields (`posts=200000,attachments=8000`);
/// missing keys keep their [`Default`].
impl std::str::FromStr for GenSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut spec = GenSpec::default();
        for pair in text.split(',').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got {pair:?}"))?;
            let n: usize = value
                .parse()
                .map_err(|_| format!("{key}: expected a number, got {value:?}"))?;
            match key {
                "teams" => spec.teams = n,
                "channels" => spec.channels = n,
                "posts" => spec.posts = n,
                "attachments" => spec.attachments = n,
                "attachment_bytes" => spec.attachment_bytes = n,
                "users" => spec.users = n,
                "seed" => spec.seed = n as u64,
                other => return Err(format!("unknown size {other:?}")),
            }
        }
        if spec.teams == 0 || spec.channels == 0 || spec.users == 0 {
            return Err("teams, channels and users must be at least 1".into());
        }
        Ok(spec)
    }
}

fn team_name(t: usize) -> String {
    format!("team-{t}")
}

/// The username of generated user `u` (the first is [`SAMPLE_USER`]).
pub fn username(u: usize) -> String {
    if u == 0 {
        SAMPLE_USER.to_owned()
    } else {
        format!("user-{u:05}")
    }
}

impl Workspace {
    /// A workspace of the given sizes (see the module docs); the same spec gives the same
    /// workspace, byte for byte.
    pub fn generated(spec: &GenSpec) -> Workspace {
        assert!(spec.users >= 1 && spec.teams >= 1 && spec.channels >= 1);
        let mut ws = Workspace::empty(BASE);
        let user_ids: Vec<String> = (0..spec.users)
            .map(|u| {
                let at = BASE + u as i64;
                let name = username(u);
                let picture = (u % 4 == 1).then(|| png::seeded_picture(&name, 16));
                ws.insert_user(User {
                    id: String::new(),
                    create_at: at,
                    update_at: at,
                    delete_at: 0,
                    email: format!("{name}@example.com"),
                    nickname: String::new(),
                    first_name: format!("First{u}"),
                    last_name: format!("Last{u}"),
                    position: String::new(),
                    roles: "system_user".to_owned(),
                    props: serde_json::Map::new(),
                    last_picture_update: if picture.is_some() { at } else { 0 },
                    locale: "en".to_owned(),
                    is_bot: false,
                    bot_description: String::new(),
                    password: (u == 0).then(|| SAMPLE_PASSWORD.to_owned()),
                    mfa_code: None,
                    avatar: picture,
                    raw_fields: serde_json::Map::new(),
                    username: name,
                })
            })
            .collect();
        let at = BASE + 10_000;
        let team_ids: Vec<String> = (0..spec.teams)
            .map(|t| {
                let id = ws.insert_team(Team {
                    id: String::new(),
                    create_at: at,
                    update_at: at,
                    delete_at: 0,
                    display_name: format!("Team {t}"),
                    name: team_name(t),
                    description: String::new(),
                    kind: 'O',
                    company_name: String::new(),
                    allowed_domains: String::new(),
                    allow_open_invite: true,
                    last_team_icon_update: if t == 0 { at } else { 0 },
                    icon: (t == 0).then(|| png::seeded_picture("team-0", 32)),
                });
                for user_id in &user_ids {
                    ws.join_team(&id, user_id, at);
                }
                id
            })
            .collect();
        let channel_ids: Vec<String> = (0..spec.channels)
            .map(|c| {
                let channel = Channel {
                    name: format!("channel-{c}"),
                    display_name: format!("Channel {c}"),
                    ..Channel::blank('O', &team_ids[c % spec.teams], &user_ids[0], at)
                };
                let id = ws.insert_channel(channel);
                for user_id in &user_ids {
                    ws.join_channel(&id, user_id, at);
                }
                id
            })
            .collect();
        for (e, name) in ["gen_party", "gen_ship", "gen_wave"].iter().enumerate() {
            let picture = png::seeded_picture(name, 16);
            let creator = &user_ids[e % spec.users];
            ws.insert_emoji_at(name, creator, picture, "png", at + e as i64);
        }
        let post_start = BASE + 100_000;
        let mut post_ids: Vec<String> = Vec::with_capacity(spec.posts);
        for post in shape::GenPosts::new(spec) {
            let attached = post
                .attachment
                .iter()
                .map(|file| NewFile {
                    name: file.name.clone(),
                    bytes: pseudo_bytes(
                        spec.seed ^ (file.number as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                        spec.attachment_bytes,
                    ),
                    mime_type: file.mime_type.to_owned(),
                })
                .collect();
            let at = post_start + post.offset_ms;
            let id = ws.insert_post_at(
                &channel_ids[post.channel],
                &user_ids[post.author],
                &post.message,
                post.root.map(|r| post_ids[r].as_str()),
                attached,
                at,
            );
            for (n, (user, emoji)) in post.reactions.iter().enumerate() {
                ws.add_reaction_at(&id, &user_ids[*user], emoji, at + 1 + n as i64);
            }
            post_ids.push(id);
        }
        let latest = ws.latest_timestamp();
        ws.set_clock(latest + 1000);
        ws
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parses_from_pairs() {
        let spec: GenSpec = "posts=5,attachments=2,seed=3".parse().unwrap();
        assert_eq!((spec.posts, spec.attachments, spec.seed), (5, 2, 3));
        assert_eq!(spec.channels, GenSpec::default().channels);
        assert!("posts".parse::<GenSpec>().is_err());
        assert!("colour=3".parse::<GenSpec>().is_err());
        assert!("users=0".parse::<GenSpec>().is_err());
    }

    #[test]
    fn counts_follow_the_spec() {
        let spec = GenSpec {
            teams: 2,
            channels: 5,
            posts: 1_003,
            attachments: 10,
            attachment_bytes: 100,
            users: 9,
            seed: 7,
        };
        let ws = Workspace::generated(&spec);
        assert_eq!(ws.live_post_count(), 1_003);
        assert_eq!(ws.teams.len(), 2);
        assert_eq!(ws.channels.len(), 5);
        assert_eq!(ws.users.len(), 9);
        assert_eq!(ws.emojis.len(), GENERATED_EMOJIS);
        assert_eq!(ws.file_ids().len(), 10);
        assert!(ws.files.values().all(|f| f.bytes.len() == 100));
        let replies = ws.posts.values().filter(|p| !p.root_id.is_empty()).count();
        assert!((300..=700).contains(&replies), "{replies} replies");
        let reactions: usize = ws.posts.values().map(|p| p.reactions.len()).sum();
        assert!(reactions > 100, "{reactions} reactions");
        let avatars = ws.users.values().filter(|u| u.avatar.is_some()).count();
        assert_eq!(avatars, 2);
        assert!(
            ws.user_by_name(SAMPLE_USER)
                .is_some_and(|u| u.password.is_some())
        );
        assert!(ws.now() > ws.latest_timestamp());
        let min = spec.minimum_requests();
        // The channel sizes the minimum assumes are the workspace's.
        let sizes: Vec<usize> = (0..5)
            .map(|c| {
                let team = format!("team-{}", c % 2);
                ws.post_ids(&ws.channel_id(&team, &format!("channel-{c}")))
                    .len()
            })
            .collect();
        assert_eq!(sizes, spec.channel_sizes());
        assert_eq!(sizes.iter().sum::<usize>(), 1_003);
        assert!(
            sizes[0] > 2 * sizes[4],
            "busy and quiet channels: {sizes:?}"
        );
        let pages: usize = sizes.iter().map(|n| n.div_ceil(200).max(1)).sum();
        assert_eq!(min.post_pages, pages);
        assert_eq!(min.member_pages, 7);
        assert_eq!(min.total(), 1 + 1 + 7 + 1 + 1 + pages + 10 + 2 + 1 + 3);
        // Deterministic: same spec, same bytes.
        let again = Workspace::generated(&spec);
        let bytes =
            |w: &Workspace| -> Vec<Vec<u8>> { w.files.values().map(|f| f.bytes.clone()).collect() };
        assert_eq!(bytes(&ws), bytes(&again));
    }
}

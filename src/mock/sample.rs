//! The built-in sample workspace and the standard update scenario.
//!
//! Everything is derived from fixed timestamps (base 1700000000000 ms) and counters, so
//! `Workspace::sample()` is byte-for-byte identical on every run. It is shaped to hit
//! every trap a backup client must survive: a 450-post channel with a 30-post burst
//! sharing one `create_at` across the 200-post page boundary, threads, an edited post
//! (history row), a deleted thread with a file, reactions with custom emojis, an
//! archived channel, unreadable channels and teams, DMs with a deactivated user and a
//! bot, a self-DM, GMs, identical attachment bytes and awkward file names.

use super::model::{Channel, NewFile, Team, TokenKind, User};
use super::png;
use super::workspace::Workspace;

pub const SAMPLE_USER: &str = "alice";
pub const SAMPLE_PASSWORD: &str = "alice-password";
/// A personal access token for alice (survives logout).
pub const SAMPLE_TOKEN: &str = "alicepersonalaccesstoken0";
pub const SAMPLE_MFA_USER: &str = "mfa-mia";
pub const SAMPLE_MFA_PASSWORD: &str = "mia-password";
pub const SAMPLE_MFA_CODE: &str = "123456";

const BASE: i64 = 1_700_000_000_000;
const DEV_START: i64 = BASE + 1_000_000;
const OTHER_START: i64 = BASE + 30_000_000;
const MINUTE: i64 = 60_000;

/// Number of posts in eng/dev and the burst inside it (chronological indexes).
pub const DEV_POSTS: usize = 450;
const BURST: std::ops::Range<usize> = 235..265;

/// Deterministic pseudo-random bytes (SplitMix64 stream).
pub(crate) fn pseudo_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A deterministic PNG picture for tests that need "some other image".
pub fn sample_png(seed: &str) -> Vec<u8> {
    png::seeded_picture(seed, 48)
}

/// A 1x1 two-colour GIF (the smallest valid image in that format).
fn tiny_gif(colour: [u8; 3]) -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&[1, 0, 1, 0, 0x80, 0, 0]); // 1x1, global table of 2 colours
    gif.extend_from_slice(&colour);
    gif.extend_from_slice(&[0xFF, 0xFF, 0xFF]);
    gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]); // image descriptor
    gif.extend_from_slice(&[0x02, 0x02, 0x44, 0x01, 0x00, 0x3B]); // LZW data, trailer
    gif
}

fn file(name: &str, mime_type: &str, bytes: Vec<u8>) -> NewFile {
    NewFile {
        name: name.to_owned(),
        bytes,
        mime_type: mime_type.to_owned(),
    }
}

struct Person {
    username: &'static str,
    first: &'static str,
    last: &'static str,
    nickname: &'static str,
    position: &'static str,
}

const PEOPLE: &[Person] = &[
    Person {
        username: "alice",
        first: "Alice",
        last: "Archer",
        nickname: "ali",
        position: "Backend Engineer",
    },
    Person {
        username: "bob",
        first: "Bob",
        last: "Builder",
        nickname: "",
        position: "Lead <b>&\"quotes\"</b>",
    },
    Person {
        username: "carol",
        first: "Carol",
        last: "Chen",
        nickname: "",
        position: "Designer",
    },
    Person {
        username: "dave",
        first: "Dave",
        last: "Dawson",
        nickname: "",
        position: "Former SRE",
    },
    Person {
        username: "erin",
        first: "Erin",
        last: "Eriksen",
        nickname: "Zoë Ångström",
        position: "QA",
    },
    Person {
        username: "frank",
        first: "Frank",
        last: "Fischer",
        nickname: "",
        position: "Operations",
    },
    Person {
        username: "helperbot",
        first: "",
        last: "",
        nickname: "",
        position: "",
    },
    Person {
        username: "mfa-mia",
        first: "Mia",
        last: "Müller",
        nickname: "",
        position: "Security",
    },
    Person {
        username: "zed",
        first: "Zed",
        last: "Zimmer",
        nickname: "",
        position: "Contractor",
    },
];

/// Builds the sample with an explicit timeline cursor.
struct Builder {
    ws: Workspace,
    t: i64,
}

impl Builder {
    fn step(&mut self) -> i64 {
        self.t += MINUTE;
        self.t
    }

    fn uid(&self, username: &str) -> String {
        self.ws.user_id(username)
    }

    fn post(&mut self, channel: &str, user: &str, message: &str) -> String {
        self.post_full(channel, user, message, None, Vec::new())
    }

    fn reply(&mut self, channel: &str, user: &str, root: &str, message: &str) -> String {
        self.post_full(channel, user, message, Some(root), Vec::new())
    }

    fn post_full(
        &mut self,
        channel: &str,
        user: &str,
        message: &str,
        root: Option<&str>,
        files: Vec<NewFile>,
    ) -> String {
        let at = self.step();
        let user_id = self.uid(user);
        self.ws
            .insert_post_at(channel, &user_id, message, root, files, at)
    }

    fn users(&mut self) {
        for (n, person) in PEOPLE.iter().enumerate() {
            let created = BASE + n as i64 * 1000;
            let is_bot = person.username == "helperbot";
            let user = User {
                id: String::new(),
                create_at: created,
                update_at: created,
                delete_at: 0,
                username: person.username.to_owned(),
                email: format!("{}@example.com", person.username),
                nickname: person.nickname.to_owned(),
                first_name: person.first.to_owned(),
                last_name: person.last.to_owned(),
                position: person.position.to_owned(),
                roles: "system_user".to_owned(),
                props: serde_json::Map::new(),
                last_picture_update: 0,
                locale: "en".to_owned(),
                is_bot,
                bot_description: if is_bot {
                    "Posts build and deploy notifications".to_owned()
                } else {
                    String::new()
                },
                password: (!is_bot).then(|| {
                    let short = person
                        .username
                        .rsplit('-')
                        .next()
                        .unwrap_or(person.username);
                    format!("{short}-password")
                }),
                mfa_code: (person.username == SAMPLE_MFA_USER).then(|| SAMPLE_MFA_CODE.to_owned()),
                avatar: None,
                raw_fields: serde_json::Map::new(),
            };
            self.ws.insert_user(user);
        }
        for (n, name) in ["alice", "bob"].into_iter().enumerate() {
            let at = BASE + 20_000 + n as i64 * 1000;
            let id = self.uid(name);
            if let Some(user) = self.ws.users.get_mut(&id) {
                user.avatar = Some(sample_png(&format!("{name}-uploaded")));
                user.last_picture_update = at;
                user.update_at = at;
            }
        }
        let alice = self.uid(SAMPLE_USER);
        self.ws
            .add_token(SAMPLE_TOKEN, &alice, TokenKind::PersonalAccess);
    }

    fn team(&mut self, name: &str, display: &str, open: bool, members: &[&str]) -> String {
        let at = BASE + 30_000;
        let team = Team {
            id: String::new(),
            create_at: at,
            update_at: at,
            delete_at: 0,
            display_name: display.to_owned(),
            name: name.to_owned(),
            description: format!("The {display} team"),
            kind: if open { 'O' } else { 'I' },
            company_name: String::new(),
            allowed_domains: String::new(),
            allow_open_invite: open,
            last_team_icon_update: 0,
            icon: None,
        };
        let id = self.ws.insert_team(team);
        for member in members {
            let user_id = self.uid(member);
            self.ws.join_team(&id, &user_id, at);
        }
        id
    }

    fn channel(
        &mut self,
        team: &str,
        name: &str,
        display: &str,
        kind: char,
        members: &[&str],
    ) -> String {
        let at = BASE + 40_000;
        let creator = members.first().map(|m| self.uid(m)).unwrap_or_default();
        let channel = Channel {
            name: name.to_owned(),
            display_name: display.to_owned(),
            purpose: format!("{display} discussions"),
            ..Channel::blank(kind, team, &creator, at)
        };
        let id = self.ws.insert_channel(channel);
        for member in members {
            let user_id = self.uid(member);
            self.ws.join_channel(&id, &user_id, at);
        }
        id
    }

    fn dev_posts(&mut self, dev: &str) -> Vec<String> {
        const AUTHORS: [&str; 4] = ["alice", "bob", "carol", "helperbot"];
        const TOPICS: [&str; 5] = [
            "refactored the sync loop",
            "fixed flaky test",
            "reviewed the schema migration",
            "benchmarked blob store",
            "updated dependencies",
        ];
        let mut ids: Vec<String> = Vec::with_capacity(DEV_POSTS);
        for i in 0..DEV_POSTS {
            let burst = BURST.contains(&i);
            let slot = if i < BURST.start {
                i
            } else if burst {
                BURST.start
            } else {
                i - (BURST.len() - 1)
            };
            let at = DEV_START + slot as i64 * MINUTE;
            let (author, message) = if burst {
                let k = i - BURST.start + 1;
                (
                    "helperbot",
                    format!("Deploy burst {k}/30: service-{k} restarted"),
                )
            } else {
                (AUTHORS[i % 4], format!("Dev update {i}: {}", TOPICS[i % 5]))
            };
            let offset = i % 15;
            let root = (!burst && matches!(offset, 1 | 2) && !BURST.contains(&(i - offset)))
                .then(|| ids[i - offset].clone());
            let files = match i {
                100 => vec![file(
                    "copy-a.bin",
                    "application/octet-stream",
                    pseudo_bytes(7, 512),
                )],
                440 => vec![file(
                    "diagram.png",
                    "image/png",
                    png::seeded_picture("diagram", 64),
                )],
                _ => Vec::new(),
            };
            let user_id = self.uid(author);
            let id = self
                .ws
                .insert_post_at(dev, &user_id, &message, root.as_deref(), files, at);
            ids.push(id);
        }
        if let Some(post) = self.ws.posts.get_mut(&ids[10]) {
            post.is_pinned = true;
        }
        ids
    }
}

impl Workspace {
    /// The built-in sample workspace (see the module docs); deterministic.
    pub fn sample() -> Workspace {
        let mut b = Builder {
            ws: Workspace::empty(BASE),
            t: OTHER_START,
        };
        b.users();
        let all_eng = ["alice", "bob", "carol", "dave", "erin", "helperbot"];
        let eng = b.team("eng", "Engineering", true, &all_eng);
        let ops = b.team("ops", "Operations", false, &["alice", "bob", "frank"]);
        let secret = b.team("secret", "Secret Team", false, &["zed"]);
        let icon_at = BASE + 35_000;
        if let Some(team) = b.ws.teams.get_mut(&eng) {
            team.icon = Some(sample_png("eng-icon"));
            team.last_team_icon_update = icon_at;
            team.update_at = icon_at;
        }
        let emoji_at = BASE + 50_000;
        let (alice_id, bob_id, carol_id) = (b.uid("alice"), b.uid("bob"), b.uid("carol"));
        b.ws.insert_emoji_at(
            "thumbsup_custom",
            &alice_id,
            sample_png("thumbsup"),
            "png",
            emoji_at,
        );
        b.ws.insert_emoji_at(
            "dancing",
            &bob_id,
            tiny_gif([200, 30, 90]),
            "gif",
            emoji_at + 1000,
        );
        b.ws.insert_emoji_at(
            "old_emoji",
            &carol_id,
            sample_png("old"),
            "png",
            emoji_at + 2000,
        );

        let town = b.channel(&eng, "town-square", "Town Square", 'O', &all_eng);
        let dev = b.channel(
            &eng,
            "dev",
            "Development",
            'O',
            &["alice", "bob", "carol", "helperbot"],
        );
        let off = b.channel(
            &eng,
            "off-topic",
            "Off-Topic",
            'O',
            &["alice", "bob", "carol", "erin"],
        );
        let private = b.channel(&eng, "eng-private", "Eng Private", 'P', &["alice", "bob"]);
        let old = b.channel(
            &eng,
            "old-project",
            "Old Project",
            'O',
            &["alice", "bob", "carol"],
        );
        let no_access = b.channel(&eng, "no-access", "No Access", 'P', &["bob"]);
        let ops_town = b.channel(
            &ops,
            "town-square",
            "Town Square",
            'O',
            &["alice", "bob", "frank"],
        );
        let incidents = b.channel(
            &ops,
            "incidents",
            "Incidents",
            'P',
            &["alice", "bob", "frank"],
        );
        let secret_town = b.channel(&secret, "town-square", "Town Square", 'O', &["zed"]);
        let at = BASE + 45_000;
        let id = |b: &Builder, n: &str| b.uid(n);
        let (dave_id, erin_id, bot_id) = (id(&b, "dave"), id(&b, "erin"), id(&b, "helperbot"));
        let dm_ab = b.ws.open_dm(&alice_id, &bob_id, at);
        let dm_self = b.ws.open_dm(&alice_id, &alice_id, at);
        let dm_ad = b.ws.open_dm(&alice_id, &dave_id, at);
        let dm_abot = b.ws.open_dm(&alice_id, &bot_id, at);
        let dm_bc = b.ws.open_dm(&bob_id, &carol_id, at);
        let gm3 = b.ws.open_gm(&[&alice_id, &bob_id, &carol_id], at);
        let gm4 = b.ws.open_gm(&[&alice_id, &bob_id, &carol_id, &erin_id], at);

        let dev_ids = b.dev_posts(&dev);

        // eng/town-square: 6 live posts, a thread, a file, the pinned welcome.
        let welcome = b.post(&town, "alice", "Welcome to Engineering!");
        b.reply(&town, "bob", &welcome, "Thanks! Glad to be here.");
        b.reply(&town, "carol", &welcome, "Same here.");
        let report = file("report final (v2).pdf", "application/pdf", {
            let mut pdf = b"%PDF-1.4\n".to_vec();
            pdf.extend(pseudo_bytes(11, 2048));
            pdf
        });
        b.post_full(
            &town,
            "erin",
            "Standup moved to 10:00, report attached",
            None,
            vec![report],
        );
        b.post(&town, "dave", "Bye all, last day today");
        let build = b.post(&town, "helperbot", "Build #1024 passed");
        if let Some(post) = b.ws.posts.get_mut(&welcome) {
            post.is_pinned = true;
        }

        // eng/off-topic: a thread that gets edited, one that gets deleted (with a file).
        let lunch = b.post(&off, "bob", "Anyone up for lunch?");
        let lunch_reply = b.reply(&off, "alice", &lunch, "Sure, 12:30");
        let doomed = b.post_full(
            &off,
            "carol",
            "This message will be deleted",
            None,
            vec![file(
                "draft-plan.txt",
                "text/plain",
                b"Draft plan: do not keep.\n".repeat(20),
            )],
        );
        b.reply(&off, "erin", &doomed, "So will this reply");
        let notes = file(
            "notes.md",
            "text/markdown",
            "# Notes\n\n- item one\n- item two\n"
                .repeat(12)
                .into_bytes(),
        );
        let umlauts = file(
            "Über Ümläute & ÿ.txt",
            "text/plain",
            "Grüße aus Köln — ÿ ß ü\n".repeat(16).into_bytes(),
        );
        b.post_full(
            &off,
            "erin",
            "Check out these notes",
            None,
            vec![notes, umlauts],
        );

        let p = b.post(&private, "alice", "Private plan: ship v2 on Friday");
        b.reply(&private, "bob", &p, "Agreed 👍");
        b.post(&old, "carol", "Kickoff for the old project");
        b.post(&old, "alice", "Project wrapped up, archiving.");
        b.post(&no_access, "bob", "Only bob can read this");
        b.post(&ops_town, "frank", "Ops weekly sync notes");
        b.post(&ops_town, "alice", "Thanks frank");
        let inc = b.post(&incidents, "frank", "INC-1: database latency spike");
        b.reply(&incidents, "alice", &inc, "Mitigated by failover");
        b.post(&secret_town, "zed", "Nobody else is here");

        let hey = b.post(&dm_ab, "bob", "Hey Alice, got a minute?");
        b.reply(&dm_ab, "alice", &hey, "Sure, what's up?");
        let copy_b = file(
            "copy-b.bin",
            "application/octet-stream",
            pseudo_bytes(7, 512),
        );
        b.post_full(&dm_ab, "bob", "Here is the binary", None, vec![copy_b]);
        b.reply(&dm_ab, "alice", &hey, "Got it, thanks");
        b.post(&dm_self, "alice", "Note to self: renew passport");
        b.post(&dm_ad, "dave", "Handing over my tasks to you");
        b.post(&dm_ad, "alice", "Thanks Dave, good luck!");
        b.post(&dm_abot, "helperbot", "Your weekly digest: 12 new posts");
        b.post(&dm_bc, "bob", "Private between bob and carol");
        let launch = b.post(&gm3, "carol", "Group chat for the launch");
        b.reply(&gm3, "alice", &launch, "Count me in");
        b.reply(&gm3, "bob", &launch, "Me too");
        b.reply(&gm3, "carol", &launch, "Great, kickoff tomorrow");
        b.post(&gm4, "erin", "Hi all four of us");

        // Later changes: edits, reactions, a deletion, archiving, deactivation.
        let t = b.step();
        b.ws.edit_post_at(
            &dev_ids[50],
            "Dev update 50: refactored the sync loop (edited)",
            t,
        );
        let t = b.step();
        b.ws.edit_post_at(&lunch_reply, "Sure, 12:45 works better", t);
        let reactions = [
            (&build, &alice_id, "thumbsup_custom"),
            (&build, &bob_id, "+1"),
            (&dev_ids[445], &carol_id, "smile"),
            (&dev_ids[445], &alice_id, "thumbsup_custom"),
            (&launch, &bob_id, "dancing"),
        ];
        for (post, user, emoji) in reactions {
            let t = b.step();
            b.ws.add_reaction_at(post, user, emoji, t);
        }
        let t = b.step();
        b.ws.delete_post_at(&doomed, &carol_id, t);
        let t = b.step();
        if let Some(channel) = b.ws.channels.get_mut(&old) {
            channel.delete_at = t;
            channel.update_at = t;
        }
        let t = b.step();
        if let Some(user) = b.ws.users.get_mut(&dave_id) {
            user.delete_at = t;
            user.update_at = t;
        }
        let t = b.step();
        if let Some(emoji) = b.ws.emojis.values_mut().find(|e| e.name == "old_emoji") {
            emoji.delete_at = t;
            emoji.update_at = t;
        }

        let mut ws = b.ws;
        let latest = ws.latest_timestamp();
        ws.set_clock(latest + 1000);
        ws
    }

    /// The standard "update" mutation set, applied once (later calls do nothing).
    /// Each step advances the clock by 1000 ms, in this order:
    /// 1. eng/town-square: alice posts root "Release 2.0 is out!"; bob replies
    ///    "Congrats on the release!";
    /// 2. eng/dev: the post starting "Dev update 20:" is edited to
    ///    "Dev update 20: refactored the sync loop (edited after release)" (history row);
    /// 3. eng/off-topic: bob's "Anyone up for lunch?" is deleted, cascading to alice's
    ///    reply;
    /// 4. alice reacts "heart" to the release post; bob's "+1" on
    ///    "Build #1024 passed" (eng/town-square) is removed;
    /// 5. eng/dev: alice posts "Updated architecture diagram" with `diagram-v2.png`;
    /// 6. bob's avatar changes;
    /// 7. alice adds the custom emoji "party_parrot" (gif);
    /// 8. public channel eng/announcements ("Announcements", member alice) is created and
    ///    alice posts "Announcement 1: ...", "Announcement 2: ...", "Announcement 3: ...";
    /// 9. DM alice–bob: bob posts "Did you see the release?".
    pub fn apply_update_scenario(&mut self) {
        if self.update_scenario_applied {
            return;
        }
        self.update_scenario_applied = true;
        let town = self.channel_id("eng", "town-square");
        let dev = self.channel_id("eng", "dev");
        let off = self.channel_id("eng", "off-topic");

        let release = self.create_post(&town, "alice", "Release 2.0 is out!", None);
        self.create_post(&town, "bob", "Congrats on the release!", Some(&release));
        let old = self.find_post(&dev, "Dev update 20:");
        self.edit_post(
            &old,
            "Dev update 20: refactored the sync loop (edited after release)",
        );
        let lunch = self.find_post(&off, "Anyone up for lunch?");
        self.delete_post(&lunch);
        self.add_reaction(&release, "alice", "heart");
        let build = self.find_post(&town, "Build #1024 passed");
        self.remove_reaction(&build, "bob", "+1");
        let diagram = file(
            "diagram-v2.png",
            "image/png",
            png::seeded_picture("diagram-v2", 64),
        );
        self.create_post_with_files(
            &dev,
            "alice",
            "Updated architecture diagram",
            None,
            vec![diagram],
        );
        self.set_avatar("bob", sample_png("bob-new-avatar"));
        self.add_emoji("party_parrot", "alice", tiny_gif([30, 200, 90]), "gif");
        let announcements =
            self.create_channel("eng", "announcements", "Announcements", 'O', &["alice"]);
        for (n, text) in [
            "Office closed Monday",
            "New VPN rollout",
            "Hackathon next week",
        ]
        .into_iter()
        .enumerate()
        {
            let message = format!("Announcement {}: {text}", n + 1);
            self.create_post(&announcements, "alice", &message, None);
        }
        let dm = self.dm_channel_id("alice", "bob");
        self.create_post(&dm, "bob", "Did you see the release?", None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_deterministic() {
        let a = Workspace::sample();
        let b = Workspace::sample();
        assert_eq!(
            a.post_ids(&a.channel_id("eng", "dev")),
            b.post_ids(&b.channel_id("eng", "dev"))
        );
        assert_eq!(a.file_ids(), b.file_ids());
        assert_eq!(a.now(), b.now());
    }

    #[test]
    fn sample_shapes() {
        let ws = Workspace::sample();
        let dev = ws.channel_id("eng", "dev");
        assert_eq!(ws.post_ids(&dev).len(), DEV_POSTS);
        assert_eq!(ws.live_post_count(), 483);
        assert_eq!(ws.file_ids().len(), 7);
        assert!(ws.now() > ws.latest_timestamp());
        let burst_at: Vec<i64> = ws
            .posts
            .values()
            .filter(|p| p.message.starts_with("Deploy burst"))
            .map(|p| p.create_at)
            .collect();
        assert_eq!(burst_at.len(), 30);
        assert!(burst_at.iter().all(|t| *t == burst_at[0]));
        let gif = tiny_gif([1, 2, 3]);
        assert!(gif.starts_with(b"GIF89a") && gif.ends_with(b";"));
    }

    #[test]
    fn update_scenario_applies_once() {
        let mut ws = Workspace::sample();
        let before = ws.live_post_count();
        ws.apply_update_scenario();
        // +2 town, -2 off-topic, +1 dev, +3 announcements, +1 DM
        assert_eq!(ws.live_post_count(), before + 5);
        let now = ws.now();
        ws.apply_update_scenario();
        assert_eq!(ws.now(), now);
    }
}

//! No input panics (issue 24 §5): property tests of every reader of outside input, each a
//! bounded number of generated cases so `cargo test` stays quick. A reader may refuse an
//! input (a clear error, or a failed item naming the entry), never panic:
//!
//! - the zip index reader (`matterbak::zip`): arbitrary bytes, and real zips cut and damaged;
//! - the Python-layout reader (`pylayout::entry`) on arbitrary paths;
//! - a whole `import` (source listing, layout, the import's JSON, catalog writes) of generated
//!   backups, as a directory and as a zip: layout paths with hostile ids and names, and
//!   entries holding objects whose fields have every JSON type and extreme values, truncated
//!   JSON or random bytes;
//! - the credentials and channels files (`config`), from arbitrary JSON and arbitrary bytes;
//! - server JSON (`model::object`) for every object type.
//!
//! The command-level checks (bad files: exit 2, nothing written) are in `tests/it/cli.rs`,
//! `tests/it/import.rs` and at the end of this file.

use std::path::Path;
use std::process::Command;

use matterbak::archive::{Archive, Claim};
use matterbak::blobs::BlobLocation;
use matterbak::config::{SecretOverrides, parse_channels, parse_credentials};
use matterbak::model::object::{self, Raw};
use matterbak::pylayout;
use matterbak::zip::ZipIndex;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Map, Value, json};

/// Cases per property: enough to reach every branch of these small readers many times over,
/// few enough that the file runs in seconds.
/// The same cases on every run (a fixed seed: a failure is reproducible and never flaky);
/// `MATTERBAK_FUZZ_SCALE=N` runs N times as many and `MATTERBAK_FUZZ_SEED=S` other ones (a
/// longer hunt on a developer's machine).
fn config(cases: u32) -> Config {
    let env = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    let scale = env("MATTERBAK_FUZZ_SCALE").unwrap_or(1).clamp(1, 10_000) as u32;
    Config {
        cases: cases.saturating_mul(scale),
        rng_seed: RngSeed::Fixed(env("MATTERBAK_FUZZ_SEED").unwrap_or(2624)),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Strings a server or a file could hold: ordinary, empty, path-like, control characters,
/// non-ASCII (multi-byte boundaries), long.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("..".to_owned()),
        Just("a/b".to_owned()),
        Just("__".to_owned()),
        Just("é".repeat(40)),
        Just("x".repeat(300)),
        Just("tab\there\nnew\0nul".to_owned()),
        prop::collection::vec(prop::sample::select(ID_CHARS.to_vec()), 26)
            .prop_map(|c| c.into_iter().collect()),
        any::<String>(),
    ]
}

const ID_CHARS: &[char] = &['a', 'b', 'k', 'z', '0', '9'];

/// Any JSON value, a few levels deep, with the extremes readers trip on.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(-1i64),
            Just(0i64),
            any::<i64>()
        ]
        .prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(1e300)),
        Just(json!(-0.5)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

const U: &str = "u1aaaaaaaaaaaaaaaaaaaaaaaa";
const T: &str = "t1aaaaaaaaaaaaaaaaaaaaaaaa";
const C: &str = "c1aaaaaaaaaaaaaaaaaaaaaaaa";
const P: &str = "p1aaaaaaaaaaaaaaaaaaaaaaaa";
const F: &str = "f1aaaaaaaaaaaaaaaaaaaaaaaa";
const E: &str = "e1aaaaaaaaaaaaaaaaaaaaaaaa";
const AT: i64 = 1_700_000_000_000;

/// A valid object of each kind, as the server sends it, referring to the others.
fn base(kind: Kind) -> Value {
    match kind {
        Kind::User => json!({"id": U, "username": "alice", "first_name": "A", "update_at": AT,
            "delete_at": 0, "roles": "system_user"}),
        Kind::Team => json!({"id": T, "name": "eng", "display_name": "Eng", "type": "O",
            "update_at": AT, "delete_at": 0}),
        Kind::Channel => json!({"id": C, "team_id": T, "type": "O", "name": "town",
            "display_name": "Town", "create_at": AT, "update_at": AT, "delete_at": 0,
            "last_post_at": AT, "total_msg_count": 1}),
        Kind::Member => json!({"user_id": U, "team_id": T, "channel_id": C, "roles": "x",
            "delete_at": 0, "last_viewed_at": AT, "msg_count": 1}),
        Kind::Post => json!({"id": P, "channel_id": C, "user_id": U, "root_id": "",
            "create_at": AT, "update_at": AT, "edit_at": 0, "delete_at": 0, "message": "hi",
            "type": "", "props": {}, "file_ids": [F], "hashtags": "", "is_pinned": false,
            "metadata": {"files": [{"id": F, "name": "a.txt"}],
                "reactions": [{"user_id": U, "post_id": P, "emoji_name": "+1", "create_at": AT}]}}),
        Kind::File => json!({"id": F, "post_id": P, "user_id": U, "channel_id": C,
            "name": "a.txt", "extension": "txt", "size": 3, "mime_type": "text/plain",
            "create_at": AT, "update_at": AT, "delete_at": 0}),
        Kind::Emoji => json!({"id": E, "name": "party", "creator_id": U, "create_at": AT,
            "update_at": AT, "delete_at": 0}),
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    User,
    Team,
    Channel,
    Member,
    Post,
    File,
    Emoji,
}

/// A value readers trip on where a field is expected.
fn hostile_field() -> impl Strategy<Value = Value> {
    prop_oneof![
        json_value(),
        Just(json!(i64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(-1)),
        Just(json!(253402300800000i64)), // year 10000
        Just(json!("")),
        Just(json!("é")),
        Just(json!([P, P])),
        Just(json!(P)),
        Just(json!(C)),
    ]
}

/// The valid object of `kind` with up to four fields replaced by hostile values or removed.
fn object_of(kind: Kind) -> impl Strategy<Value = Value> {
    let keys: Vec<String> = base(kind).as_object().unwrap().keys().cloned().collect();
    let changes = prop_oneof![
        2 => Just(Vec::new()),
        3 => prop::collection::vec((prop::sample::select(keys), hostile_field(), 0..4u8), 1..4),
    ];
    changes.prop_map(move |changes| {
        let mut value = base(kind);
        let map = value.as_object_mut().unwrap();
        for (key, hostile, how) in changes {
            match how {
                0 => {
                    map.remove(&key);
                }
                _ => {
                    map.insert(key, hostile);
                }
            }
        }
        value
    })
}

/// Any JSON object with keys of a server object (for the parsers alone).
fn object_like(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (prop::sample::select(keys), hostile_field()),
        0..keys.len() + 2,
    )
    .prop_map(|fields| Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

/// One entry's bytes: an object of `kind` (mostly valid), a list of them, cut JSON, any JSON
/// or random bytes.
fn content(kind: Kind) -> impl Strategy<Value = Vec<u8>> {
    // Member files hold a list, every other entry one object.
    let (one, list) = if matches!(kind, Kind::Member) {
        (1, 8)
    } else {
        (8, 1)
    };
    prop_oneof![
        one => object_of(kind).prop_map(|v| v.to_string().into_bytes()),
        list => prop::collection::vec(object_of(kind), 0..3)
            .prop_map(|v| Value::Array(v).to_string().into_bytes()),
        1 => (object_of(kind), any::<prop::sample::Index>()).prop_map(|(v, at)| {
            let text = v.to_string().into_bytes();
            let cut = at.index(text.len() + 1);
            text[..cut].to_vec()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
    ]
}

/// An id: mostly Mattermost-shaped (so entries refer to each other), sometimes hostile.
fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![U, T, C, P, F, E]).prop_map(str::to_owned),
        1 => text().prop_map(|t| t.replace(['/', '\0'], "")),
    ]
}

/// A name part of a path (no `/`, which would make it another path).
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["eng", "town", "alice", "party", "a.txt", "20231114-221320000000"])
            .prop_map(str::to_owned),
        1 => text().prop_map(|t| t.replace(['/', '\0'], "_")),
    ]
}

/// A path in (or near) the layout, and content fitting its place.
fn entry() -> impl Strategy<Value = (String, Vec<u8>)> {
    let channel_dir = prop_oneof![
        (id(), name(), id(), name())
            .prop_map(|(t, tn, c, cn)| format!("teams/{t}__{tn}/{c}__{cn}")),
        (id(), name()).prop_map(|(c, cn)| format!("direct/{c}__{cn}")),
        (id(), name()).prop_map(|(c, cn)| format!("groups/{c}__{cn}")),
    ];
    prop_oneof![
        (id(), name(), content(Kind::User))
            .prop_map(|(i, n, c)| (format!("users/{i}__{n}.json"), c)),
        (id(), name(), any::<Vec<u8>>())
            .prop_map(|(i, n, c)| (format!("users/{i}__{n}__image.png"), c)),
        (id(), name(), content(Kind::Team))
            .prop_map(|(i, n, c)| (format!("teams/{i}__{n}.json"), c)),
        (id(), name(), content(Kind::Member))
            .prop_map(|(i, n, c)| (format!("teams/{i}__{n}__members.json"), c)),
        (id(), any::<Vec<u8>>()).prop_map(|(i, c)| (format!("teams/{i}__icon.png"), c)),
        (channel_dir.clone(), content(Kind::Channel)).prop_map(|(d, c)| (format!("{d}.json"), c)),
        (channel_dir.clone(), content(Kind::Member))
            .prop_map(|(d, c)| (format!("{d}__members.json"), c)),
        (channel_dir.clone(), json_value())
            .prop_map(|(d, v)| (format!("{d}__threads.json"), v.to_string().into_bytes())),
        (channel_dir.clone(), name(), id(), content(Kind::Post))
            .prop_map(|(d, stamp, p, c)| (format!("{d}/{stamp}__{p}.json"), c)),
        (channel_dir.clone(), id(), content(Kind::File))
            .prop_map(|(d, f, c)| (format!("{d}/files/{f}.json"), c)),
        (channel_dir, id(), name(), any::<Vec<u8>>())
            .prop_map(|(d, f, n, c)| (format!("{d}/files/{f}__{n}"), c)),
        (id(), name(), content(Kind::Emoji))
            .prop_map(|(i, n, c)| (format!("emojis/{i}__{n}.json"), c)),
        (id(), name(), any::<Vec<u8>>()).prop_map(|(i, n, c)| (format!("emojis/{i}__{n}.gif"), c)),
    ]
}

/// A backup entry: its path and bytes.
type Entry = (String, Vec<u8>);

/// A whole backup at the layout's own paths (each entry present or not, each content mostly
/// valid), so that imports get past "not in the backup" into the code that stores posts,
/// files and threads; then a few entries anywhere.
fn backup() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let dir = format!("teams/{T}__eng/{C}__town");
    let skeleton: Vec<(String, BoxedStrategy<Vec<u8>>)> = vec![
        (
            format!("users/{U}__alice.json"),
            content(Kind::User).boxed(),
        ),
        (
            format!("users/{U}__alice__image.png"),
            any::<Vec<u8>>().boxed(),
        ),
        (format!("teams/{T}__eng.json"), content(Kind::Team).boxed()),
        (
            format!("teams/{T}__eng__members.json"),
            content(Kind::Member).boxed(),
        ),
        (format!("{dir}.json"), content(Kind::Channel).boxed()),
        (
            format!("{dir}__members.json"),
            content(Kind::Member).boxed(),
        ),
        (
            format!("{dir}__threads.json"),
            prop_oneof![
                Just(json!({P: [P]})),
                Just(json!([[P, P]])),
                json_value(),
                Just(json!({P: [1, null, {}]})),
            ]
            .prop_map(|v| v.to_string().into_bytes())
            .boxed(),
        ),
        (
            format!("{dir}/20231114-221320000000__{P}.json"),
            content(Kind::Post).boxed(),
        ),
        (format!("{dir}/files/{F}.json"), content(Kind::File).boxed()),
        (format!("{dir}/files/{F}__a.txt"), any::<Vec<u8>>().boxed()),
        (
            format!("emojis/{E}__party.json"),
            content(Kind::Emoji).boxed(),
        ),
        (format!("emojis/{E}__party.gif"), any::<Vec<u8>>().boxed()),
    ];
    let parts: Vec<BoxedStrategy<Option<Entry>>> = skeleton
        .into_iter()
        .map(|(path, content)| {
            (0..5u8, content)
                .prop_map(move |(keep, bytes)| (keep > 0).then(|| (path.clone(), bytes)))
                .boxed()
        })
        .collect();
    (parts, prop::collection::vec(entry(), 0..4))
        .prop_map(|(parts, extra)| parts.into_iter().flatten().chain(extra).collect())
}

/// Writes `entries` as a data dir under `dir/data` (skipping paths the file system cannot
/// hold) and as a stored zip `dir/data.zip` (every path).
fn write_backup(
    dir: &Path,
    entries: &[(String, Vec<u8>)],
) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::io::Write;
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for (path, bytes) in entries {
        let target = data.join(path);
        let fits = path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && c.len() <= 255);
        if fits && std::fs::create_dir_all(target.parent().unwrap()).is_ok() {
            let _ = std::fs::write(&target, bytes);
        }
    }
    let zip_path = dir.join("data.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (path, bytes) in entries {
        if zip.start_file(path.as_str(), stored).is_ok() {
            zip.write_all(bytes).unwrap();
        }
    }
    zip.finish().unwrap();
    (data, zip_path)
}

/// Imports `backup` into a new archive in `dir` through the library, as `matterbak import`
/// does; an error is fine, a panic fails the property. Returns the archive when one was made.
fn import(dir: &Path, backup: &Path) -> Option<std::path::PathBuf> {
    // Refused before anything is written (the command's exit 2): fine.
    let mut opened = matterbak::import::Backup::open(backup).ok()?;
    let archive = dir.join(format!(
        "archive-{}",
        backup.file_name().unwrap().to_string_lossy()
    ));
    let mut write = Archive::at(&archive)
        .open_write(&BlobLocation::Local, Claim::AnyDirectory)
        .unwrap();
    let _ = matterbak::import::import_backups(&mut write, std::slice::from_mut(&mut opened));
    Some(archive)
}

/// Every export of an archive holding whatever an import took in: each succeeds (or reports
/// items it could not write), never panics.
fn export_all(dir: &Path, archive: &Path) {
    let out = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let archive = archive.to_string_lossy().into_owned();
    let runs: [Vec<String>; 6] = [
        vec!["--format".into(), "markdown".into(), "-o".into(), out("md")],
        vec![
            "--format".into(),
            "markdown".into(),
            "--flavor".into(),
            "py".into(),
            "--threads".into(),
            "-o".into(),
            out("mdpy"),
        ],
        vec!["--format".into(), "hgf".into(), "-o".into(), out("hgf")],
        vec!["-d".into(), out("layout"), "-o".into(), out("layout.zip")],
        vec!["--format".into(), "html".into(), "-o".into(), out("site")],
        vec![
            "--format".into(),
            "bulk-import".into(),
            "--existing-users".into(),
            "none".into(),
            "-o".into(),
            out("bulk.zip"),
        ],
    ];
    for args in runs {
        let result = Command::new(env!("CARGO_BIN_EXE_matterbak"))
            .env("TZ", "Europe/Berlin")
            .args(["export", "--archive", &archive])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        // 0, or 1 for items it could not write; never a usage error (2) or a panic.
        assert!(
            matches!(result.status.code(), Some(0 | 1)) && !stderr.contains("panicked"),
            "export {args:?}: {:?}\n{stderr}",
            result.status
        );
    }
}

proptest! {
    #![proptest_config(config(32))]

    #[test]
    fn an_import_of_any_backup_is_a_report_or_an_error(entries in backup()) {
        let dir = tempfile::tempdir().unwrap();
        let (data, zip) = write_backup(dir.path(), &entries);
        if let Some(archive) = import(dir.path(), &data) {
            export_all(dir.path(), &archive);
        }
        import(dir.path(), &zip);
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn the_zip_reader_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        zip_read_all(&bytes);
    }

    #[test]
    fn the_zip_reader_takes_damaged_zips(
        entries in prop::collection::vec((name(), prop::collection::vec(any::<u8>(), 0..40)), 0..4),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        zip64 in any::<bool>(),
    ) {
        use std::io::Write;
        let mut bytes = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut bytes);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(zip64);
        for (n, (name, content)) in entries.iter().enumerate() {
            zip.start_file(format!("{n}/{name}"), options).unwrap();
            zip.write_all(content).unwrap();
        }
        zip.finish().unwrap();
        let mut bytes = bytes.into_inner();
        for (at, value) in damage {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = bytes.len() - cut.index(bytes.len() + 1) % 8;
        zip_read_all(&bytes[..keep]);
    }

    #[test]
    fn the_layout_reader_takes_any_path(parts in prop::collection::vec(text(), 0..5)) {
        let path = parts.join("/");
        let _ = pylayout::role(&path);
        let _ = pylayout::id_prefix(&path);
        let _ = pylayout::channel_of(&path);
        let _ = pylayout::channel_export_name(&path);
        let _ = pylayout::image_content_type(&path);
        let _ = pylayout::post_file_name(0, &path, &chrono::Utc);
    }

    #[test]
    fn post_file_names_take_any_time(at in prop_oneof![Just(i64::MIN), Just(i64::MAX), any::<i64>()]) {
        let _ = pylayout::post_file_name(at, "p1aaaaaaaaaaaaaaaaaaaaaaaa", &chrono::Utc);
        let _ = pylayout::python_from_timestamp(at, &chrono::Utc);
    }

    #[test]
    fn the_credentials_and_channels_files_take_any_json(value in json_value(), shaped in object_like(&["user", "password", "token", "url", "teams", "direct", "groups"])) {
        let path = Path::new("cfg.json");
        let env = SecretOverrides::default();
        for value in [&value, &shaped] {
            let _ = parse_credentials(path, value, &env);
            let _ = parse_channels(path, value);
        }
        // Nested where the channels file has structure.
        for key in ["teams", "groups"] {
            let nested = json!({ key: {"eng": value.clone(), "exact": value.clone(), "subset": value.clone()} });
            let _ = parse_channels(path, &nested);
        }
    }

    #[test]
    fn the_config_files_take_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg.json");
        std::fs::write(&path, &bytes).unwrap();
        let _ = matterbak::config::load_credentials(&path, &SecretOverrides::default());
        let _ = matterbak::config::load_channels(&path);
    }

    #[test]
    fn server_json_of_every_object_type_parses_or_is_an_error(
        user in object_of(Kind::User), team in object_of(Kind::Team),
        channel in object_of(Kind::Channel), member in object_of(Kind::Member),
        post in object_of(Kind::Post), file in object_of(Kind::File),
        emoji in object_of(Kind::Emoji), other in json_value(),
    ) {
        fn check<T: serde::de::DeserializeOwned>(value: &Value) {
            let text = value.to_string();
            let _ = object::parse_lenient::<T>(&text);
            if let Ok(raw) = serde_json::value::RawValue::from_string(text.clone()) {
                let _ = Raw::<T>::parse(raw);
            }
            let list = format!("[{text}]");
            let _ = object::parse_list::<T>(list.as_bytes());
            // Cut anywhere (at a char boundary): an error, not a panic.
            for cut in (0..text.len()).step_by(7).filter(|&i| text.is_char_boundary(i)) {
                let _ = object::parse_lenient::<T>(&text[..cut]);
            }
        }
        for value in [&user, &other] { check::<object::User>(value); }
        for value in [&team, &other] { check::<object::Team>(value); }
        for value in [&channel, &other] { check::<object::Channel>(value); }
        for value in [&member, &other] {
            check::<object::TeamMember>(value);
            check::<object::ChannelMember>(value);
        }
        for value in [&post, &other] { check::<object::Post>(value); }
        for value in [&file, &other] { check::<object::FileInfo>(value); }
        for value in [&emoji, &other] { check::<object::Emoji>(value); }
        check::<object::Reaction>(&other);
    }
}

/// Opens `bytes` as a zip and reads every entry; errors are fine.
fn zip_read_all(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.zip");
    std::fs::write(&path, bytes).unwrap();
    if let Ok((index, listed)) = ZipIndex::open(std::fs::File::open(&path).unwrap()) {
        for n in 0..listed.len() {
            let _ = index.copy_to(n, &mut std::io::sink());
        }
    }
}

/// Found by the property above: a backup whose post has `"user_id": ""` (and a direct channel
/// whose member list has one) imported, then exported for bulk import: the writer named no
/// user for the post and its self-check refused the file ("post.user \"\" is not defined
/// earlier", exit 2). Now the empty id is an unknown user like any id without a user.
#[test]
fn a_post_without_author_exports_for_bulk_import() {
    let dir = tempfile::tempdir().unwrap();
    let channel = format!("teams/{T}__eng/{C}__town");
    let mut post = base(Kind::Post);
    post["user_id"] = json!("");
    let mut members = base(Kind::Member);
    members["user_id"] = json!("");
    let entries = vec![
        (
            format!("users/{U}__alice.json"),
            base(Kind::User).to_string().into_bytes(),
        ),
        (
            format!("teams/{T}__eng.json"),
            base(Kind::Team).to_string().into_bytes(),
        ),
        (
            format!("{channel}.json"),
            base(Kind::Channel).to_string().into_bytes(),
        ),
        (
            format!("{channel}__members.json"),
            json!([members]).to_string().into_bytes(),
        ),
        (
            format!("{channel}/20231114-221320000000__{P}.json"),
            post.to_string().into_bytes(),
        ),
    ];
    let (data, _) = write_backup(dir.path(), &entries);
    let archive = import(dir.path(), &data).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .args(["export", "--archive"])
        .arg(&archive)
        .args(["--format", "bulk-import", "--existing-users", "none", "-o"])
        .arg(dir.path().join("bulk.zip"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jsonl = matterbak_zip_entry(&dir.path().join("bulk.zip"), "import.jsonl");
    assert!(jsonl.contains(r#""user":"unknown""#), "{jsonl}");
}

fn matterbak_zip_entry(path: &Path, name: &str) -> String {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut text).unwrap();
    text
}

// ---- command level: a bad input file is exit 2, a clear message, and nothing written ----

fn matterbak(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .current_dir(dir)
        .env_remove("MATTERBAK_PASSWORD")
        .env_remove("MATTERBAK_TOKEN")
        .args(args)
        .output()
        .unwrap()
}

proptest! {
    #![proptest_config(config(12))]

    /// `matterbak import` of a file that is no backup (any bytes, or a zip whose top level
    /// is not the layout's): exit 2 naming it, and no archive is created.
    #[test]
    fn an_import_of_no_backup_exits_2_and_creates_nothing(
        bytes in prop::collection::vec(any::<u8>(), 0..120),
        top in name(),
        as_zip in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.zip");
        if as_zip {
            let top = if top.is_empty() || pylayout::TOP_DIRS.contains(&top.as_str()) {
                "notes".to_owned()
            } else {
                top
            };
            write_backup(dir.path(), &[(format!("{top}/x.json"), bytes)]);
            std::fs::rename(dir.path().join("data.zip"), &path).unwrap();
        } else {
            std::fs::write(&path, &bytes).unwrap();
        }
        let out = matterbak(&["import", "--archive", "arch", "in.zip"], dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        prop_assert_eq!(out.status.code(), Some(2), "{}", stderr);
        prop_assert!(!stderr.contains("panicked") && stderr.contains("in.zip"), "{}", stderr);
        prop_assert!(!dir.path().join("arch").exists());
    }
}

#[test]
fn bad_credentials_or_channels_files_exit_2_and_create_no_archive() {
    let dir = tempfile::tempdir().unwrap();
    let good_creds = r#"{"user": "alice", "password": "pw", "url": "http://127.0.0.1:9/api"}"#;
    let good_channels = r#"{"teams": {"eng": {}}}"#;
    let cases: [(&str, &[u8], &[u8], &str); 6] = [
        (
            "empty credentials",
            b"",
            good_channels.as_bytes(),
            "credentials.json",
        ),
        (
            "credentials not JSON",
            b"\xff\xfe{",
            good_channels.as_bytes(),
            "credentials.json",
        ),
        (
            "credentials a list",
            b"[1, 2]",
            good_channels.as_bytes(),
            "credentials.json",
        ),
        (
            "url of the wrong type",
            br#"{"user": "a", "password": "p", "url": 5}"#,
            good_channels.as_bytes(),
            "url",
        ),
        (
            "channels truncated",
            good_creds.as_bytes(),
            br#"{"teams": {"eng""#,
            "channels.json",
        ),
        (
            "teams of the wrong type",
            good_creds.as_bytes(),
            br#"{"teams": [["eng"]]}"#,
            "teams",
        ),
    ];
    for (what, creds, channels, named) in cases {
        let c = dir.path().join("credentials.json");
        let ch = dir.path().join("channels.json");
        std::fs::write(&c, creds).unwrap();
        std::fs::write(&ch, channels).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let out = matterbak(
            &[
                "sync",
                "--archive",
                "arch",
                "--credentials",
                "credentials.json",
                "--channels",
                "channels.json",
            ],
            dir.path(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        assert!(stderr.contains(named), "{what}: names {named:?}: {stderr}");
        assert!(
            !stderr.contains("\"pw\"") && !stderr.contains(": pw"),
            "{what}: no password shown: {stderr}"
        );
        assert!(
            !dir.path().join("arch").exists(),
            "{what}: an archive was created"
        );
    }
}

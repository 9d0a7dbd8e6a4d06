//! Bad input gets a clear message naming the file, field or value, exit code 2, and leaves
//! the archive untouched.

use std::path::Path;
use std::process::Command;

fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .current_dir(dir)
        .env_remove("MATTERBAK_TOKEN")
        .env_remove("MATTERBAK_PASSWORD")
        .env_remove("MATTERBAK_ARCHIVE")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD_CHANNELS: &str = r#"{"teams": {"eng": {}}}"#;
const GOOD_CREDS: &str =
    r#"{"user": "alice", "password": "pw-that-must-not-leak", "url": "http://127.0.0.1:9"}"#;

#[test]
fn bad_inputs_table() {
    // (credentials.json, channels.json, expected fragments of the error)
    let cases: &[(Option<&str>, Option<&str>, &[&str])] = &[
        (
            None,
            Some(GOOD_CHANNELS),
            &["credentials.json", "No such file"],
        ),
        (Some(GOOD_CREDS), None, &["channels.json", "No such file"]),
        (
            Some("{\"user\": \"a\",}"),
            Some(GOOD_CHANNELS),
            &[
                "credentials.json is not valid JSON",
                "line 1, column 14",
                "comma after the last element",
            ],
        ),
        (
            Some(r#"{"user": "a", "password": "p"}"#),
            Some(GOOD_CHANNELS),
            &["credentials.json: field `url` is missing"],
        ),
        (
            Some(r#"{"user": "a", "password": "p", "url": "chat.example.com"}"#),
            Some(GOOD_CHANNELS),
            &["field `url` must start with https://"],
        ),
        (
            Some(GOOD_CREDS),
            Some(r#"{"teams": {"eng": {"include": "dev"}}}"#),
            &["channels.json: field `teams.eng.include` must be a list of names"],
        ),
        (
            Some(GOOD_CREDS),
            Some("{\"direct\": [\"bob\",\n]}"),
            &[
                "channels.json is not valid JSON",
                "line 2",
                "comma after the last element",
            ],
        ),
        (
            Some(GOOD_CREDS),
            Some(GOOD_CHANNELS),
            &["cannot reach the server", "127.0.0.1:9"],
        ),
    ];
    for (creds, channels, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = creds {
            std::fs::write(dir.path().join("credentials.json"), text).unwrap();
        }
        if let Some(text) = channels {
            std::fs::write(dir.path().join("channels.json"), text).unwrap();
        }
        let (code, err) = run(dir.path(), &["sync", "--rate-limit", "0"]);
        assert_eq!(code, 2, "{expected:?}: {err}");
        for fragment in *expected {
            assert!(err.contains(fragment), "expected {fragment:?} in: {err}");
        }
        assert!(
            !err.contains("pw-that-must-not-leak"),
            "secret leaked: {err}"
        );
    }
}

#[test]
fn unknown_keys_warn_and_readable_credentials_warn() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("credentials.json"), GOOD_CREDS).unwrap();
    std::fs::write(
        dir.path().join("channels.json"),
        r#"{"teams": {}, "group": {}}"#,
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("credentials.json"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let (_, err) = run(dir.path(), &["sync", "--rate-limit", "0"]);
    assert!(err.contains("unknown key `group` ignored"), "{err}");
    #[cfg(unix)]
    assert!(err.contains("can be read by other users"), "{err}");
}

#[test]
fn bad_flag_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run(dir.path(), &["sync", "--rate-limit=-3"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--rate-limit"), "{err}");
}

#[test]
fn tls_flags_are_checked_and_insecure_warns() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("credentials.json"), GOOD_CREDS).unwrap();
    std::fs::write(dir.path().join("channels.json"), GOOD_CHANNELS).unwrap();
    std::fs::write(dir.path().join("ca.pem"), "this is not a certificate").unwrap();
    let (code, err) = run(dir.path(), &["sync", "--ca-cert", "ca.pem"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("CA certificate"), "{err}");
    let (code, err) = run(dir.path(), &["sync", "--ca-cert", "missing.pem"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read --ca-cert missing.pem"), "{err}");
    let (_, err) = run(dir.path(), &["sync", "--insecure", "--rate-limit", "0"]);
    assert!(
        err.contains("--insecure: TLS certificates are NOT checked"),
        "{err}"
    );
}

mod server_table {
    //! Bad input that needs a server (or something that is not one): each case's error line,
    //! exit code 2, and an archive left exactly as it was.

    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use matterbak::mock::{
        MockServer, SAMPLE_CHANNELS_JSON, SAMPLE_MFA_PASSWORD, SAMPLE_MFA_USER, SAMPLE_PASSWORD,
        Workspace,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback server that answers every request with the same raw HTTP response.
    async fn canned_server(response: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16384];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        format!("http://{addr}")
    }

    const HTML: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 46\r\nConnection: close\r\n\r\n<!DOCTYPE html><html><body>Hello</body></html>";
    const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 18\r\nConnection: close\r\n\r\n404 page not found";

    fn sync_binary(dir: &Path, archive: &Path, extra: &[&str]) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_matterbak"))
            .current_dir(dir)
            .env_remove("MATTERBAK_TOKEN")
            .env_remove("MATTERBAK_PASSWORD")
            .env_remove("MATTERBAK_ARCHIVE")
            .args(["sync", "--rate-limit", "0", "--archive"])
            .arg(archive)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn verify_binary(archive: &Path) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_matterbak"))
            .args(["verify", "--read-data", "--archive"])
            .arg(archive)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Every file of the archive (but the lock, which only names its last holder) and its bytes.
    fn fingerprint(archive: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![archive.to_owned()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.file_name().unwrap() != "lock" {
                    out.insert(path.clone(), std::fs::read(&path).unwrap());
                }
            }
        }
        out
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Archive {
        /// A copy of an archive a good sync wrote; must come out byte for byte the same.
        Existing,
        /// Like `Existing`, with a schema version from the future.
        Newer,
        /// The archive path is a regular file.
        IsAFile,
        /// Starts empty; a simulated full disk strikes mid-run: must verify clean afterwards
        /// and complete with the next sync.
        DiskFull,
        /// Starts empty; the run goes on (warnings only).
        Fresh,
    }

    struct Case {
        name: &'static str,
        creds: serde_json::Value,
        channels: &'static str,
        extra: Vec<&'static str>,
        archive: Archive,
        code: i32,
        /// The start of the `error:` line (what follows is the OS's cause, which varies).
        error: String,
        also: Vec<String>,
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_server_auth_archive_and_disk_table() {
        let server = MockServer::start(Workspace::sample()).await.unwrap();
        let mock = server.url();
        let html = canned_server(HTML).await;
        let not_found = canned_server(NOT_FOUND).await;
        let html_hostport = html.trim_start_matches("http://").to_owned();
        let creds = |url: &str| serde_json::json!({"user": "alice", "password": SAMPLE_PASSWORD, "url": url});
        let login = |url: &str| {
            format!("error: sync into <archive> failed: POST {url}/api/v4/users/login: ")
        };

        let root = tempfile::tempdir().unwrap();
        let template = root.path().join("template");
        {
            std::fs::write(
                root.path().join("credentials.json"),
                creds(&mock).to_string(),
            )
            .unwrap();
            std::fs::write(root.path().join("channels.json"), SAMPLE_CHANNELS_JSON).unwrap();
            let (code, err) =
                tokio::task::block_in_place(|| sync_binary(root.path(), &template, &[]));
            assert_eq!(code, 0, "{err}");
        }

        let cases = vec![
            Case {
                name: "HTML page instead of the API",
                creds: creds(&html),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}the response is not what a Mattermost server sends: got an HTML page instead of the Mattermost API: is the url the server's address?", login(&html)),
                also: vec![],
            },
            Case {
                name: "wrong path on a Mattermost server",
                creds: creds(&format!("{mock}/wrong/path")),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}the response is not what a Mattermost server sends: HTTP 404: no Mattermost API there; is the url the server's address (https://host, without a path)?", login(&format!("{mock}/wrong/path"))),
                also: vec![],
            },
            Case {
                name: "a web server that is not Mattermost (plain 404)",
                creds: creds(&not_found),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}the response is not what a Mattermost server sends: HTTP 404 without a Mattermost error body: is the URL the server's address?", login(&not_found)),
                also: vec![],
            },
            Case {
                name: "connection refused",
                creds: creds("http://127.0.0.1:9"),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}cannot reach the server: connection refused by 127.0.0.1:9 (is the server running, and is the port right?)", login("http://127.0.0.1:9")),
                also: vec![],
            },
            Case {
                name: "host name does not resolve",
                creds: creds("https://matterbak-test.invalid"),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}cannot reach the server: cannot resolve host name matterbak-test.invalid (check the url in the credentials file)", login("https://matterbak-test.invalid")),
                also: vec![],
            },
            Case {
                name: "TLS to a plain-HTTP server",
                creds: creds(&format!("https://{html_hostport}")),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}cannot reach the server: TLS handshake with {html_hostport} failed (a server without https, or a certificate that is not trusted; for a plain-HTTP server use http://)", login(&format!("https://{html_hostport}"))),
                also: vec![],
            },
            Case {
                name: "wrong password",
                creds: serde_json::json!({"user": "alice", "password": "pw-that-must-not-leak", "url": mock}),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}the server refused the credentials (HTTP 401, api.user.login.invalid_credentials_email_username); check the password or token in the credentials file", login(&mock)),
                also: vec![],
            },
            Case {
                name: "expired token",
                creds: serde_json::json!({"user": "alice", "token": "pw-that-must-not-leak", "url": mock}),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("error: sync into <archive> failed: GET {mock}/api/v4/users/me: the server refused the credentials (HTTP 401, api.context.session_expired.app_error); check the password or token in the credentials file"),
                also: vec![],
            },
            Case {
                name: "MFA required",
                creds: serde_json::json!({"user": SAMPLE_MFA_USER, "password": SAMPLE_MFA_PASSWORD, "url": mock}),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}this account needs a multi-factor code: pass --mfa-token CODE", login(&mock)),
                also: vec![],
            },
            Case {
                name: "archive created by a newer matterbak",
                creds: creds(&mock),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Newer,
                code: 2,
                error: format!(
                    "error: sync into <archive> failed: catalog <archive>/catalog.sqlite has schema version 99, newer than this matterbak understands ({}); use a newer matterbak",
                    matterbak::catalog::SCHEMA_VERSION
                ),
                also: vec![],
            },
            Case {
                name: "archive path is not a directory",
                creds: creds(&mock),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::IsAFile,
                code: 2,
                error: "error: sync into <archive> failed: cannot use archive directory <archive>: it exists and is not a directory".into(),
                also: vec![],
            },
            Case {
                name: "team and user not found: warn and continue",
                creds: creds(&mock),
                channels: r#"{"teams": {"nosuchteam": {}, "eng": {}}, "direct": ["nosuchuser"]}"#,
                extra: vec![],
                archive: Archive::Fresh,
                code: 0,
                error: String::new(),
                also: vec![
                    "user 'alice' does not have access to team \"nosuchteam\"; skipping team".into(),
                    "configured but missing direct channels: [\"nosuchuser\"]".into(),
                ],
            },
            Case {
                name: "disk full while writing a blob",
                creds: creds(&mock),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec!["--simulate-disk-full", "blobs:1000"],
                archive: Archive::DiskFull,
                code: 2,
                error: "error: sync into <archive> failed: blob store: cannot write <archive>/tmp/".into(),
                also: vec!["the disk holding the archive is full: free space, then run `matterbak sync` again".into()],
            },
            Case {
                name: "disk full while writing the catalog",
                creds: creds(&mock),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec!["--simulate-disk-full", "catalog:8"],
                archive: Archive::DiskFull,
                code: 2,
                error: "error: sync into <archive> failed: catalog <archive>/catalog.sqlite: ".into(),
                also: vec!["database or disk is full; the disk holding the archive is full: free space, then run `matterbak sync` again".into()],
            },
        ];

        for (i, case) in cases.iter().enumerate() {
            let dir = root.path().join(format!("case{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("credentials.json"), case.creds.to_string()).unwrap();
            std::fs::write(dir.join("channels.json"), case.channels).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(
                    dir.join("credentials.json"),
                    std::fs::Permissions::from_mode(0o600),
                )
                .unwrap();
            }
            let archive = dir.join("archive");
            match case.archive {
                Archive::Existing | Archive::Newer => copy_dir(&template, &archive),
                Archive::IsAFile => std::fs::write(&archive, b"not a directory").unwrap(),
                Archive::DiskFull | Archive::Fresh => {}
            }
            if case.archive == Archive::Newer {
                let conn = rusqlite::Connection::open(archive.join("catalog.sqlite")).unwrap();
                conn.execute_batch("PRAGMA user_version = 99").unwrap();
            }
            let before = fingerprint(&archive);
            let extra = case.extra.clone();
            let (code, err) = tokio::task::block_in_place(|| sync_binary(&dir, &archive, &extra));
            let err_shown = err.replace(&archive.display().to_string(), "<archive>");
            assert_eq!(code, case.code, "{}: {err_shown}", case.name);
            if !case.error.is_empty() {
                let line = err_shown
                    .lines()
                    .find(|l| l.starts_with("error:"))
                    .unwrap_or_else(|| panic!("{}: no error line in {err_shown}", case.name));
                assert!(
                    line.starts_with(&case.error),
                    "{}:\n  want: {}\n  got:  {line}",
                    case.name,
                    case.error
                );
            }
            for fragment in &case.also {
                assert!(
                    err_shown.contains(fragment.as_str()),
                    "{}: want {fragment:?} in {err_shown}",
                    case.name
                );
            }
            assert!(
                !err.contains("pw-that-must-not-leak"),
                "{}: secret leaked",
                case.name
            );
            assert!(
                !err.contains(SAMPLE_PASSWORD),
                "{}: secret leaked",
                case.name
            );
            match case.archive {
                Archive::Existing | Archive::Newer | Archive::IsAFile => {
                    assert!(
                        before == fingerprint(&archive),
                        "{}: the archive changed",
                        case.name
                    );
                }
                Archive::DiskFull => {
                    let (code, out) = tokio::task::block_in_place(|| verify_binary(&archive));
                    assert_eq!(
                        code, 0,
                        "{}: not consistent after a full disk: {out}",
                        case.name
                    );
                    let (code, err) =
                        tokio::task::block_in_place(|| sync_binary(&dir, &archive, &[]));
                    assert_eq!(code, 0, "{}: next sync: {err}", case.name);
                    let (code, out) = tokio::task::block_in_place(|| verify_binary(&archive));
                    assert_eq!(code, 0, "{}: {out}", case.name);
                }
                Archive::Fresh => {}
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn an_archive_directory_without_write_permission_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive");
        std::fs::create_dir(&archive).unwrap();
        std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o555)).unwrap();
        if std::fs::write(archive.join("probe"), b"").is_ok() {
            // Running as root: permissions do not apply; the IsAFile case covers the path.
            return;
        }
        std::fs::write(
            dir.path().join("credentials.json"),
            r#"{"user": "a", "password": "p", "url": "http://127.0.0.1:9"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("channels.json"), "{}").unwrap();
        let (code, err) = sync_binary(dir.path(), &archive, &[]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains(&format!(
                "cannot use archive directory {}",
                archive.display()
            )),
            "{err}"
        );
        assert!(err.contains("Permission denied"), "{err}");
    }
}

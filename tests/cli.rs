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

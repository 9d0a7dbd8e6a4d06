//! The standard AWS shared files (`~/.aws/credentials`, `~/.aws/config`) and `AWS_PROFILE`, so
//! an existing setup of the AWS CLI or SDKs works for `--blobs s3://…`. `object_store` reads
//! only the environment, and the AWS SDK's config loader is far heavier than this small INI
//! dialect, hence a parser of our own.
//!
//! Precedence, as in the AWS SDKs: environment variables first (`AWS_ACCESS_KEY_ID` with its
//! secret and token, `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`), then the profile
//! (`AWS_PROFILE`, else `default`): its `[name]` section in the credentials file over its
//! `[profile name]` (`[default]`) section in the config file. `AWS_SHARED_CREDENTIALS_FILE`
//! and `AWS_CONFIG_FILE` move the files. A profile named by `AWS_PROFILE` that neither file
//! has is an error; missing files are not.
//!
//! Secrets: errors name files, line numbers and profiles, never a line's text; the values
//! read are returned for the caller to redact from server messages.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum AwsConfigError {
    #[error("cannot read the AWS file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The line's text is not shown: it may hold a secret.
    #[error("AWS file {}, line {line}: {reason}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        reason: &'static str,
    },
    #[error(
        "AWS_PROFILE names the profile {profile:?}, which neither {} nor {} has",
        credentials.display(),
        config.display()
    )]
    NoProfile {
        profile: String,
        credentials: PathBuf,
        config: PathBuf,
    },
}

/// What to connect with; None leaves the setting to `object_store`'s defaults (the
/// environment it reads itself, or its own fallbacks).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AwsSettings {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// `s3 = … addressing_style = path|virtual` of the profile.
    pub virtual_hosted: Option<bool>,
}

impl AwsSettings {
    /// The secret values, to scrub from any text shown.
    pub fn secrets(&self) -> Vec<String> {
        [
            &self.access_key_id,
            &self.secret_access_key,
            &self.session_token,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }
}

/// The sections of one file: name → key → value; nested keys as `outer.inner`.
type Sections = BTreeMap<String, BTreeMap<String, String>>;

/// Parses the INI dialect of the AWS files: `[section]`, `key = value`, full-line comments
/// (`#`, `;`), and a key with an empty value followed by indented `key = value` lines (the
/// nested form of `s3 =`).
fn parse(path: &Path, text: &str) -> Result<Sections, AwsConfigError> {
    let mut sections = Sections::new();
    let mut current: Option<String> = None;
    let mut nested: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let syntax = |reason| AwsConfigError::Syntax {
            path: path.to_owned(),
            line: index + 1,
            reason,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let indented = raw.starts_with([' ', '\t']);
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| syntax("a section header needs a closing ]"))?;
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            sections.entry(name.clone()).or_default();
            current = Some(name);
            nested = None;
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| syntax("expected `key = value`"))?;
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        let section = current
            .as_ref()
            .ok_or_else(|| syntax("a setting before any [section]"))?;
        let values = sections.entry(section.clone()).or_default();
        match &nested {
            Some(outer) if indented => {
                values.insert(format!("{outer}.{key}"), value.to_owned());
            }
            _ if value.is_empty() => nested = Some(key),
            _ => {
                nested = None;
                values.insert(key, value.to_owned());
            }
        }
    }
    Ok(sections)
}

/// Reads and parses `path`; a missing file has no sections.
fn read(path: &Path) -> Result<Sections, AwsConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Sections::new()),
        Err(source) => Err(AwsConfigError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Resolves the settings from `env` (a lookup of environment variables) and the files it
/// points at.
pub fn resolve(env: &dyn Fn(&str) -> Option<String>) -> Result<AwsSettings, AwsConfigError> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    let home = set("HOME").map(PathBuf::from).unwrap_or_default();
    let credentials_path = set("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/credentials"));
    let config_path = set("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/config"));
    let named = set("AWS_PROFILE");
    let profile = named.clone().unwrap_or_else(|| "default".to_owned());

    let credentials = read(&credentials_path)?;
    let config = read(&config_path)?;
    let config_section = if profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    };
    let from_config = config.get(&config_section);
    let from_credentials = credentials.get(&profile);
    if named.is_some() && from_config.is_none() && from_credentials.is_none() {
        return Err(AwsConfigError::NoProfile {
            profile,
            credentials: credentials_path,
            config: config_path,
        });
    }
    let mut merged = from_config.cloned().unwrap_or_default();
    merged.extend(from_credentials.cloned().unwrap_or_default());
    let file = |key: &str| merged.get(key).filter(|v| !v.is_empty()).cloned();

    let mut out = AwsSettings::default();
    // Keys travel as a set: never an environment key with a file's secret.
    if set("AWS_ACCESS_KEY_ID").is_none() {
        out.access_key_id = file("aws_access_key_id");
        out.secret_access_key = file("aws_secret_access_key");
        out.session_token = file("aws_session_token");
    }
    if set("AWS_REGION").is_none() && set("AWS_DEFAULT_REGION").is_none() {
        out.region = file("region");
    }
    if set("AWS_ENDPOINT_URL").is_none() && set("AWS_ENDPOINT").is_none() {
        out.endpoint_url = file("s3.endpoint_url").or_else(|| file("endpoint_url"));
    }
    out.virtual_hosted = match file("s3.addressing_style").as_deref() {
        Some("virtual") => Some(true),
        Some("path") => Some(false),
        _ => None,
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const CREDENTIALS: &str = "\
# a comment
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = default-secret

[backup]
aws_access_key_id=AKIABACKUP
aws_secret_access_key = backup/secret+x
aws_session_token = token-1
";

    const CONFIG: &str = "\
[default]
region = eu-west-1

[profile backup]
; another comment
region = eu-central-1
aws_access_key_id = AKIAFROMCONFIG
endpoint_url = http://127.0.0.1:9000
s3 =
    addressing_style = path
    signature_version = s3v4
output = json
";

    fn files() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("credentials"), CREDENTIALS).unwrap();
        std::fs::write(dir.path().join("config"), CONFIG).unwrap();
        dir
    }

    fn resolve_with(dir: &Path, vars: &[(&str, &str)]) -> Result<AwsSettings, AwsConfigError> {
        let mut env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.entry("AWS_SHARED_CREDENTIALS_FILE".into())
            .or_insert_with(|| dir.join("credentials").display().to_string());
        env.entry("AWS_CONFIG_FILE".into())
            .or_insert_with(|| dir.join("config").display().to_string());
        resolve(&|name| env.get(name).cloned())
    }

    #[test]
    fn the_parser_reads_sections_keys_and_nested_settings() {
        let parsed = parse(Path::new("config"), CONFIG).unwrap();
        let backup = &parsed["profile backup"];
        assert_eq!(backup["region"], "eu-central-1");
        assert_eq!(backup["s3.addressing_style"], "path");
        assert_eq!(backup["s3.signature_version"], "s3v4");
        assert_eq!(backup["output"], "json", "a flat key ends the nesting");
        assert!(!backup.contains_key("s3"));
        assert_eq!(parsed["default"]["region"], "eu-west-1");
    }

    #[test]
    fn syntax_errors_name_the_line_but_never_its_text() {
        for (text, line, reason) in [
            ("[default\nx = 1\n", 1, "closing ]"),
            (
                "[default]\naws_secret_access_key AKIASECRETVALUE\n",
                2,
                "key = value",
            ),
            ("region = x\n", 1, "before any [section]"),
        ] {
            let err = parse(Path::new("/home/u/.aws/credentials"), text)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("/home/u/.aws/credentials, line {line}: "))
                    && err.contains(reason),
                "{err}"
            );
            assert!(!err.contains("AKIASECRETVALUE"), "{err}");
        }
    }

    #[test]
    fn the_profile_merges_both_files_with_credentials_first() {
        let dir = files();
        let got = resolve_with(dir.path(), &[("AWS_PROFILE", "backup")]).unwrap();
        assert_eq!(
            got,
            AwsSettings {
                access_key_id: Some("AKIABACKUP".into()),
                secret_access_key: Some("backup/secret+x".into()),
                session_token: Some("token-1".into()),
                region: Some("eu-central-1".into()),
                endpoint_url: Some("http://127.0.0.1:9000".into()),
                virtual_hosted: Some(false),
            }
        );
        assert_eq!(
            got.secrets(),
            vec!["AKIABACKUP", "backup/secret+x", "token-1"]
        );
        let default = resolve_with(dir.path(), &[]).unwrap();
        assert_eq!(default.access_key_id.as_deref(), Some("AKIADEFAULT"));
        assert_eq!(default.region.as_deref(), Some("eu-west-1"));
        assert_eq!(default.endpoint_url, None);
        assert_eq!(default.virtual_hosted, None);
    }

    #[test]
    fn environment_variables_take_precedence_over_the_files() {
        let dir = files();
        let got = resolve_with(
            dir.path(),
            &[
                ("AWS_PROFILE", "backup"),
                ("AWS_ACCESS_KEY_ID", "AKIAENV"),
                ("AWS_DEFAULT_REGION", "us-west-2"),
                ("AWS_ENDPOINT_URL", "http://env:1"),
            ],
        )
        .unwrap();
        // Left to object_store, which reads the environment itself.
        assert_eq!(got.access_key_id, None);
        assert_eq!(
            got.secret_access_key, None,
            "no file secret with an env key"
        );
        assert_eq!(got.session_token, None);
        assert_eq!(got.region, None);
        assert_eq!(got.endpoint_url, None);
        assert_eq!(got.virtual_hosted, Some(false));
    }

    #[test]
    fn a_missing_profile_is_named_and_missing_files_are_fine() {
        let dir = files();
        let err = resolve_with(dir.path(), &[("AWS_PROFILE", "nope")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"nope\"") && err.contains("credentials"),
            "{err}"
        );
        assert!(!err.contains("secret"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve_with(empty.path(), &[]).unwrap(),
            AwsSettings::default()
        );
        assert!(matches!(
            resolve_with(empty.path(), &[("AWS_PROFILE", "x")]),
            Err(AwsConfigError::NoProfile { .. })
        ));
    }
}

//! The user's input files: `credentials.json` and `channels.json`, in the Python matterbak's
//! formats. Parsing is strict about types (a clear error naming file, field and value) and
//! lenient about unknown keys (a warning, so a typo is not silently ignored).
//!
//! May import: `model` (docs/design.md "Allowed directions").

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Why an input file could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid JSON: {message} at line {line}, column {column}{hint}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        hint: &'static str,
    },
    #[error("{}: field `{field}` {problem}", path.display())]
    Field {
        path: PathBuf,
        field: String,
        problem: String,
    },
}

/// A secret that never shows itself in `Debug` or `Display`, so it cannot leak into logs or
/// error chains by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The only way to see the value; grep for it to audit where secrets go.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How to authenticate: a password login, or a ready token (personal access token or session
/// cookie value) sent as `Authorization: Bearer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    Password(Secret),
    Token(Secret),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub auth: Auth,
    /// Server root without `/api/v4`, without trailing slash, e.g. `https://chat.example.com`.
    pub server: String,
}

/// Secrets that may come from the environment instead of the file.
#[derive(Clone, Debug, Default)]
pub struct SecretOverrides {
    pub token: Option<Secret>,
    pub password: Option<Secret>,
}

impl SecretOverrides {
    pub fn from_env() -> SecretOverrides {
        let var = |name| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .map(Secret::new)
        };
        SecretOverrides {
            token: var("MATTERBAK_TOKEN"),
            password: var("MATTERBAK_PASSWORD"),
        }
    }
}

/// What the user asked for, plus warnings (unknown keys) the caller should show.
#[derive(Debug)]
pub struct Parsed<T> {
    pub value: T,
    pub warnings: Vec<String>,
}

fn read_json(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_json(path, &text)
}

fn parse_json(path: &Path, text: &str) -> Result<Value, ConfigError> {
    serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        // serde_json appends " at line L column C"; we print those fields ourselves.
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        // serde_json names this case itself; the Python tool gave the same hint.
        let hint = if message.starts_with("trailing comma") {
            " (a comma after the last element of a list or object is not allowed in JSON)"
        } else {
            ""
        };
        ConfigError::Syntax {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            message,
            hint,
        }
    })
}

fn field_error(path: &Path, field: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        path: path.to_owned(),
        field: field.to_owned(),
        problem: problem.into(),
    }
}

fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    let mut shown = value.to_string();
    if shown.len() > 40 {
        let cut = (0..=40)
            .rev()
            .find(|&i| shown.is_char_boundary(i))
            .unwrap_or(0);
        shown.truncate(cut);
        shown.push('…');
    }
    format!("{kind} ({shown})")
}

fn as_object<'a>(
    path: &Path,
    field: &str,
    value: &'a Value,
) -> Result<&'a Map<String, Value>, ConfigError> {
    value.as_object().ok_or_else(|| {
        field_error(
            path,
            field,
            format!("must be an object, found {}", describe(value)),
        )
    })
}

fn string_list(path: &Path, field: &str, value: &Value) -> Result<Vec<String>, ConfigError> {
    let items = value.as_array().ok_or_else(|| {
        field_error(
            path,
            field,
            format!("must be a list of names, found {}", describe(value)),
        )
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_str().map(str::to_owned).ok_or_else(|| {
                field_error(
                    path,
                    &format!("{field}[{i}]"),
                    format!("must be a string, found {}", describe(item)),
                )
            })
        })
        .collect()
}

fn warn_unknown(
    path: &Path,
    prefix: &str,
    map: &Map<String, Value>,
    known: &[&str],
    warnings: &mut Vec<String>,
) {
    for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
        warnings.push(format!(
            "{}: unknown key `{prefix}{key}` ignored (known: {})",
            path.display(),
            known.join(", ")
        ));
    }
}

/// Accepts `https://host`, `https://host/api` and `https://host/api/v4` (trailing slashes
/// allowed) and returns the server root, because the Python tool wants `/api` and people copy
/// whichever URL they have.
pub fn normalize_server_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| format!("must start with https:// or http://, found {url:?}"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("has no host name: {url:?}"));
    }
    let root = trimmed
        .strip_suffix("/api/v4")
        .or_else(|| trimmed.strip_suffix("/api"))
        .unwrap_or(trimmed);
    Ok(root.to_owned())
}

/// Reads `credentials.json`. Environment secrets win over the file's, so the file may hold
/// only `user` and `url`.
pub fn load_credentials(
    path: &Path,
    overrides: &SecretOverrides,
) -> Result<Parsed<Credentials>, ConfigError> {
    let value = read_json(path)?;
    parse_credentials(path, &value, overrides)
}

pub fn parse_credentials(
    path: &Path,
    value: &Value,
    overrides: &SecretOverrides,
) -> Result<Parsed<Credentials>, ConfigError> {
    let map = as_object(path, "(top level)", value)?;
    let mut warnings = Vec::new();
    warn_unknown(
        path,
        "",
        map,
        &["user", "password", "token", "url"],
        &mut warnings,
    );

    let text_field = |name: &str| -> Result<Option<String>, ConfigError> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(field_error(
                path,
                name,
                format!(
                    "must be a string, found {}",
                    describe_secretless(name, other)
                ),
            )),
        }
    };
    let user = text_field("user")?
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            field_error(
                path,
                "user",
                "is missing: give your Mattermost username (without @)",
            )
        })?;
    let url = text_field("url")?.ok_or_else(|| {
        field_error(
            path,
            "url",
            "is missing: give the server address, e.g. https://chat.example.com",
        )
    })?;
    let server = normalize_server_url(&url).map_err(|problem| field_error(path, "url", problem))?;

    let auth = if let Some(token) = &overrides.token {
        Auth::Token(token.clone())
    } else if let Some(password) = &overrides.password {
        Auth::Password(password.clone())
    } else if let Some(token) = text_field("token")?.filter(|t| !t.is_empty()) {
        Auth::Token(Secret::new(token))
    } else if let Some(password) = text_field("password")?.filter(|p| !p.is_empty()) {
        Auth::Password(Secret::new(password))
    } else {
        return Err(field_error(
            path,
            "password",
            "is missing: give `password` or `token` (or set MATTERBAK_PASSWORD / MATTERBAK_TOKEN)",
        ));
    };
    Ok(Parsed {
        value: Credentials { user, auth, server },
        warnings,
    })
}

/// Like `describe` but never shows the value of a secret field.
fn describe_secretless(field: &str, value: &Value) -> String {
    if field == "password" || field == "token" {
        match value {
            Value::Number(_) => "a number".into(),
            Value::Bool(_) => "a boolean".into(),
            Value::Array(_) => "a list".into(),
            Value::Object(_) => "an object".into(),
            _ => "another type".into(),
        }
    } else {
        describe(value)
    }
}

/// Which channels of one team to archive (`channels.json` → `teams` → name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TeamRule {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// `channels.json`, with the Python tool's semantics (see `selection`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelsConfig {
    /// Team name or display name → rule, in file order.
    pub teams: Vec<(String, TeamRule)>,
    /// Usernames whose direct channel with you is archived (your own = the self-DM).
    pub direct: Vec<String>,
    /// Group channels whose other members are exactly one of these sets.
    pub groups_exact: Vec<Vec<String>>,
    /// Group channels whose other members include one of these sets.
    pub groups_subset: Vec<Vec<String>>,
}

pub fn load_channels(path: &Path) -> Result<Parsed<ChannelsConfig>, ConfigError> {
    let value = read_json(path)?;
    parse_channels(path, &value)
}

pub fn parse_channels(path: &Path, value: &Value) -> Result<Parsed<ChannelsConfig>, ConfigError> {
    let map = as_object(path, "(top level)", value)?;
    let mut warnings = Vec::new();
    warn_unknown(path, "", map, &["teams", "direct", "groups"], &mut warnings);
    let mut config = ChannelsConfig::default();

    if let Some(teams) = map.get("teams") {
        for (team, rule) in as_object(path, "teams", teams)? {
            let field = format!("teams.{team}");
            let rule_map = as_object(path, &field, rule)?;
            warn_unknown(
                path,
                &format!("{field}."),
                rule_map,
                &["include", "exclude"],
                &mut warnings,
            );
            let list = |key: &str| match rule_map.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(v) => string_list(path, &format!("{field}.{key}"), v),
            };
            config.teams.push((
                team.clone(),
                TeamRule {
                    include: list("include")?,
                    exclude: list("exclude")?,
                },
            ));
        }
    }
    if let Some(direct) = map.get("direct") {
        config.direct = string_list(path, "direct", direct)?;
    }
    if let Some(groups) = map.get("groups") {
        let groups = as_object(path, "groups", groups)?;
        warn_unknown(path, "groups.", groups, &["exact", "subset"], &mut warnings);
        let lists = |key: &str| -> Result<Vec<Vec<String>>, ConfigError> {
            let field = format!("groups.{key}");
            match groups.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| string_list(path, &format!("{field}[{i}]"), item))
                    .collect(),
                Some(other) => Err(field_error(
                    path,
                    &field,
                    format!(
                        "must be a list of lists of usernames, found {}",
                        describe(other)
                    ),
                )),
            }
        };
        config.groups_exact = lists("exact")?;
        config.groups_subset = lists("subset")?;
    }
    Ok(Parsed {
        value: config,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("cfg.json")
    }

    #[test]
    fn url_forms_mean_the_same_server() {
        for url in [
            "https://chat.example.com",
            "https://chat.example.com/",
            "https://chat.example.com/api",
            "https://chat.example.com/api/",
            "https://chat.example.com/api/v4",
            "https://chat.example.com/api/v4/",
        ] {
            assert_eq!(
                normalize_server_url(url).unwrap(),
                "https://chat.example.com",
                "{url}"
            );
        }
        assert!(normalize_server_url("chat.example.com").is_err());
        assert!(normalize_server_url("https://").is_err());
    }

    #[test]
    fn credentials_errors_name_the_field() {
        let none = SecretOverrides::default();
        let cases: &[(&str, &str)] = &[
            (
                r#"{"user":"a","password":"x"}"#,
                "cfg.json: field `url` is missing",
            ),
            (
                r#"{"password":"x","url":"https://h"}"#,
                "cfg.json: field `user` is missing",
            ),
            (
                r#"{"user":"a","url":"https://h"}"#,
                "cfg.json: field `password` is missing",
            ),
            (
                r#"{"user":7,"password":"x","url":"https://h"}"#,
                "cfg.json: field `user` must be a string, found a number (7)",
            ),
            (
                r#"{"user":"a","password":12345,"url":"https://h"}"#,
                "cfg.json: field `password` must be a string, found a number",
            ),
            (r#"[1]"#, "cfg.json: field `(top level)` must be an object"),
        ];
        for (text, expected) in cases {
            let value: Value = serde_json::from_str(text).unwrap();
            let err = parse_credentials(p(), &value, &none)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(expected), "{text}: {err}");
            assert!(!err.contains("12345"), "secret leaked: {err}");
        }
    }

    #[test]
    fn env_secrets_override_the_file() {
        let value: Value =
            serde_json::from_str(r#"{"user":"a","password":"file","url":"https://h/api"}"#)
                .unwrap();
        let env = SecretOverrides {
            token: Some(Secret::new("envtoken")),
            password: None,
        };
        let c = parse_credentials(p(), &value, &env).unwrap().value;
        assert_eq!(c.auth, Auth::Token(Secret::new("envtoken")));
        assert_eq!(c.server, "https://h");
        let plain = parse_credentials(p(), &value, &SecretOverrides::default())
            .unwrap()
            .value;
        assert_eq!(plain.auth, Auth::Password(Secret::new("file")));
        assert!(
            !format!("{plain:?}").contains("file\""),
            "Debug must hide secrets"
        );
    }

    #[test]
    fn syntax_errors_give_position_and_trailing_comma_hint() {
        let err = parse_json(p(), "{\n  \"direct\": [\"a\",]\n}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("comma after the last element"), "{err}");
        let err = parse_json(p(), "{\"direct\": [\"a\" \"b\"]}")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("comma after the last element"), "{err}");
    }

    #[test]
    fn channels_config_parses_all_sections_and_warns_on_unknown_keys() {
        let value: Value = serde_json::from_str(
            r#"{"teams": {"eng": {"include": ["dev"], "exclude": ["x"]}, "ops": {}},
                "direct": ["bob"], "groups": {"exact": [["a","b"]], "subset": [["c"]]},
                "group": {}}"#,
        )
        .unwrap();
        let parsed = parse_channels(p(), &value).unwrap();
        let c = parsed.value;
        assert_eq!(c.teams.len(), 2);
        assert_eq!(c.teams[0].0, "eng");
        assert_eq!(c.teams[0].1.include, vec!["dev"]);
        assert_eq!(c.teams[1].1, TeamRule::default());
        assert_eq!(c.direct, vec!["bob"]);
        assert_eq!(c.groups_exact, vec![vec!["a".to_string(), "b".to_string()]]);
        assert_eq!(c.groups_subset, vec![vec!["c".to_string()]]);
        assert_eq!(parsed.warnings.len(), 1);
        assert!(parsed.warnings[0].contains("unknown key `group`"));
    }

    #[test]
    fn channels_config_type_errors_name_the_path() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"teams": {"eng": {"include": "dev"}}}"#,
                "field `teams.eng.include` must be a list of names, found a string (\"dev\")",
            ),
            (
                r#"{"teams": {"eng": {"include": ["dev", 3]}}}"#,
                "field `teams.eng.include[1]` must be a string",
            ),
            (r#"{"teams": ["eng"]}"#, "field `teams` must be an object"),
            (
                r#"{"direct": "bob"}"#,
                "field `direct` must be a list of names",
            ),
            (
                r#"{"groups": {"exact": ["a"]}}"#,
                "field `groups.exact[0]` must be a list of names",
            ),
        ];
        for (text, expected) in cases {
            let value: Value = serde_json::from_str(text).unwrap();
            let err = parse_channels(p(), &value).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}

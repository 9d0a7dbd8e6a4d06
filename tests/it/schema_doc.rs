//! `docs/schema.md` is generated from the comments in `schema/*.sql` and the structure of a
//! freshly migrated catalog, so it cannot drift: this test fails when the file differs from
//! what it would generate, or when any table, column, view, index or trigger has no comment.
//! Regenerate with `MATTERBAK_BLESS=1 cargo test --test it schema_doc::`.

use std::collections::BTreeMap;
use std::fmt::Write;

use matterbak::catalog::{Access, Catalog, MIGRATIONS, SCHEMA_VERSION};

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schema.md");

/// Descriptions found in the schema files.
#[derive(Default)]
struct Comments {
    /// Object name → the comment block right above its CREATE statement.
    objects: BTreeMap<String, String>,
    /// (object, column) → the comment on the column's line, or a `-- column t.c:` note.
    columns: BTreeMap<(String, String), String>,
    /// Each file's opening comment block.
    headers: Vec<(String, String)>,
}

/// The name created by a `CREATE …` line, and whether its body lists columns.
fn created(line: &str) -> Option<(String, bool)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.first() != Some(&"CREATE") {
        return None;
    }
    let (name, has_columns) = match words.get(1..3)? {
        ["TABLE", name] | ["VIEW", name] => (*name, true),
        ["VIRTUAL", "TABLE"] => (*words.get(3)?, true),
        ["INDEX", name] | ["TRIGGER", name] => (*name, false),
        ["UNIQUE", "INDEX"] => (*words.get(3)?, false),
        _ => return None,
    };
    let name = name.trim_end_matches('(').to_owned();
    Some((name, has_columns))
}

/// The column a commented line of a CREATE TABLE or VIEW body defines.
fn column_of(code: &str, in_view: bool) -> Option<String> {
    let code = code.trim().trim_end_matches(',').trim();
    let ident = |s: &str| -> Option<String> {
        let s = s.trim();
        (!s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .then(|| s.to_owned())
    };
    if in_view {
        let (_, alias) = code.rsplit_once(" AS ")?;
        ident(alias)
    } else {
        let first = code.split_whitespace().next()?;
        if [
            "PRIMARY",
            "UNIQUE",
            "CONSTRAINT",
            "FOREIGN",
            "CHECK",
            "tokenize",
        ]
        .contains(&first)
        {
            return None;
        }
        ident(first)
    }
}

fn parse_comments() -> Comments {
    let mut found = Comments::default();
    for (file, sql) in MIGRATIONS {
        let mut block: Vec<String> = Vec::new();
        let mut header_done = false;
        let mut current: Option<(String, bool)> = None;
        for line in sql.lines() {
            let trimmed = line.trim();
            if let Some(text) = trimmed.strip_prefix("--") {
                let text = text.trim();
                if let Some((key, note)) = text
                    .strip_prefix("column ")
                    .and_then(|rest| rest.split_once(": "))
                    && let Some((table, column)) = key.split_once('.')
                {
                    found
                        .columns
                        .insert((table.to_owned(), column.to_owned()), note.to_owned());
                    continue;
                }
                if let Some((name, note)) = text
                    .strip_prefix("index ")
                    .and_then(|rest| rest.split_once(": "))
                {
                    found.objects.insert(name.to_owned(), note.to_owned());
                    continue;
                }
                block.push(text.to_owned());
                continue;
            }
            if trimmed.is_empty() {
                if !header_done && !block.is_empty() {
                    found.headers.push((file.to_string(), block.join("\n")));
                    header_done = true;
                }
                block.clear();
                continue;
            }
            header_done = true;
            if let Some((name, has_columns)) = created(trimmed) {
                if !block.is_empty() {
                    found.objects.insert(name.clone(), block.join(" "));
                }
                current = has_columns.then(|| (name, trimmed.starts_with("CREATE VIEW")));
            } else if let Some((object, in_view)) = &current
                && let Some((code, comment)) = line.split_once("--")
                && let Some(column) = column_of(code, *in_view)
            {
                found
                    .columns
                    .insert((object.clone(), column), comment.trim().to_owned());
            }
            block.clear();
            if trimmed.ends_with(';') {
                current = None;
            }
        }
    }
    found
}

struct Object {
    kind: String,
    name: String,
    table: String,
    sql: String,
}

/// Generates the document; returns it with every object or column lacking a description.
fn generate() -> (String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    drop(Catalog::open(&dir.path().join("catalog.sqlite"), Access::ReadWrite).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join("catalog.sqlite")).unwrap();
    let shadow: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_list WHERE type = 'shadow'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let objects: Vec<Object> = conn
        .prepare(
            "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master
             WHERE name NOT LIKE 'sqlite_%' ORDER BY rowid",
        )
        .unwrap()
        .query_map([], |r| {
            Ok(Object {
                kind: r.get(0)?,
                name: r.get(1)?,
                table: r.get(2)?,
                sql: r.get(3)?,
            })
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .into_iter()
        .filter(|o| !shadow.contains(&o.name))
        .collect();
    let comments = parse_comments();
    let mut missing = Vec::new();
    let mut describe = |key: &str, text: Option<&String>| -> String {
        match text {
            Some(t) if !t.is_empty() => t.replace('|', "\\|"),
            _ => {
                missing.push(key.to_owned());
                String::new()
            }
        }
    };

    let mut doc = String::new();
    writeln!(doc, "# Catalog schema (version {SCHEMA_VERSION})\n").unwrap();
    writeln!(
        doc,
        "Generated by `tests/it/schema_doc.rs` from the comments in [`schema/`](../schema/) and a freshly\n\
         migrated catalog; do not edit by hand. Regenerate with\n\
         `MATTERBAK_BLESS=1 cargo test --test it schema_doc::`. The test fails when this file is out\n\
         of date or anything in the schema lacks a comment.\n"
    )
    .unwrap();
    for (file, header) in &comments.headers {
        writeln!(doc, "From `{file}`:\n").unwrap();
        for line in header.lines() {
            writeln!(doc, "> {line}").unwrap();
        }
        writeln!(doc).unwrap();
    }

    let columns_of = |name: &str| -> Vec<(String, String, bool, bool)> {
        conn.prepare(
            "SELECT name, type, \"notnull\", pk FROM pragma_table_xinfo(?1) WHERE hidden = 0",
        )
        .unwrap()
        .query_map([name], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? > 0))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    let sections = [
        ("table", "Tables"),
        ("view", "Views"),
        ("index", "Indexes"),
        ("trigger", "Triggers"),
    ];
    for (kind, title) in sections {
        writeln!(doc, "## {title}\n").unwrap();
        for object in objects.iter().filter(|o| o.kind == kind) {
            let about = describe(&object.name, comments.objects.get(&object.name));
            match kind {
                "table" | "view" => {
                    let label = if object.sql.starts_with("CREATE VIRTUAL TABLE") {
                        " (FTS5 full-text index)"
                    } else {
                        ""
                    };
                    writeln!(doc, "### `{}`{label}\n\n{about}\n", object.name).unwrap();
                    if kind == "table" {
                        writeln!(doc, "| column | type | description |\n|---|---|---|").unwrap();
                    } else {
                        writeln!(doc, "| column | description |\n|---|---|").unwrap();
                    }
                    for (column, ty, not_null, pk) in columns_of(&object.name) {
                        let key = (object.name.clone(), column.clone());
                        let text = describe(
                            &format!("{}.{column}", object.name),
                            comments.columns.get(&key),
                        );
                        if kind == "table" {
                            let mut ty = if ty.is_empty() { "any".to_owned() } else { ty };
                            if pk {
                                ty.push_str(", primary key");
                            } else if not_null {
                                ty.push_str(", not null");
                            }
                            writeln!(doc, "| `{column}` | {ty} | {text} |").unwrap();
                        } else {
                            writeln!(doc, "| `{column}` | {text} |").unwrap();
                        }
                    }
                    writeln!(doc).unwrap();
                }
                _ => {
                    let first_line = object.sql.lines().next().unwrap_or_default().trim();
                    let shown = if kind == "index" {
                        object.sql.as_str()
                    } else {
                        first_line
                    };
                    writeln!(
                        doc,
                        "- `{}` on `{}`: {about}  \n  `{}`",
                        object.name,
                        object.table,
                        shown.split_whitespace().collect::<Vec<_>>().join(" ")
                    )
                    .unwrap();
                }
            }
        }
        if kind == "index" || kind == "trigger" {
            writeln!(doc).unwrap();
        }
    }
    (doc.trim_end().to_owned() + "\n", missing)
}

#[test]
fn schema_doc_is_generated_from_the_sql_and_up_to_date() {
    let (doc, missing) = generate();
    assert!(
        missing.is_empty(),
        "give these a comment in schema/*.sql (for schema-1 items: a `-- column t.c:` or `-- index name:` note in a newer file): {missing:?}"
    );
    if std::env::var_os("MATTERBAK_BLESS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(DOC).parent().unwrap()).unwrap();
        std::fs::write(DOC, &doc).unwrap();
        return;
    }
    let current = std::fs::read_to_string(DOC).unwrap_or_default();
    assert!(
        current == doc,
        "docs/schema.md is out of date; regenerate with `MATTERBAK_BLESS=1 cargo test --test it schema_doc::`"
    );
}

#[test]
fn comment_parser_reads_columns_of_tables_and_views() {
    assert_eq!(
        column_of("    size        INTEGER NOT NULL,      ", false).as_deref(),
        Some("size")
    );
    assert_eq!(column_of("    PRIMARY KEY (a, b)", false), None);
    assert_eq!(
        column_of("    p.create_at AS create_at,", true).as_deref(),
        Some("create_at")
    );
    assert_eq!(
        column_of("    END AS blob_path,", true).as_deref(),
        Some("blob_path")
    );
    assert_eq!(
        created("CREATE VIRTUAL TABLE post_search USING fts5("),
        Some(("post_search".into(), true))
    );
    assert_eq!(
        created("CREATE INDEX posts_root ON posts(root_id)"),
        Some(("posts_root".into(), false))
    );
}

//! The module layering of `docs/design.md` ("Allowed directions"), checked on the source:
//! every `use crate::…` and every inline `crate::x::…` path (and a `super::` path that climbs
//! to the crate root) in `src/` is an edge from the top-level module of the file to the
//! module it names. An edge the table does not allow fails, naming file and line, unless it
//! is on [`KNOWN_VIOLATIONS`]; an entry of that list that no longer occurs fails too, so the
//! list can only shrink. Comments and string literals are skipped; test code counts (a
//! module's tests may not reach upwards either).
//!
//! The table is kept twice on purpose: here as data, and in `docs/design.md` for people;
//! [`the_design_doc_states_the_same_table`] keeps them equal.
//!
//! The tests' own layout is checked here too: the integration tests are one binary,
//! `tests/it` ([`integration_tests_are_one_binary`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `main` and `cli` may use every module (they are the product's driver); `lib` only
/// declares the modules.
const DRIVERS: &[&str] = &["main", "cli", "lib"];

/// Which modules each top-level module may use (besides itself). A module of `src/` missing
/// from this table fails the test: a new module gets its row when it is added.
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "sync",
        &[
            "selection",
            "mm",
            "archive",
            "catalog",
            "blobs",
            "model",
            "config",
            "progress",
        ],
    ),
    (
        "import",
        &["pylayout", "zip", "archive", "catalog", "blobs", "model"],
    ),
    (
        "export",
        &[
            "pylayout",
            "zip",
            "selection",
            "archive",
            "catalog",
            "blobs",
            "outdir",
            "model",
        ],
    ),
    ("verify", &["archive", "catalog", "blobs", "model"]),
    ("snapshot", &["archive", "blobs", "model"]),
    ("results", &["catalog", "model"]),
    ("archive", &["catalog", "blobs", "model"]),
    ("outdir", &["pylayout"]),
    ("mm", &["model", "config"]),
    ("catalog", &["model"]),
    ("blobs", &["model"]),
    ("selection", &["config", "model"]),
    ("pylayout", &["model"]),
    ("zip", &["model"]),
    ("config", &["model"]),
    ("progress", &["model"]),
    ("model", &[]),
    ("mock", &[]),
];

/// Edges that run against [`ALLOWED`] today, each with where it is and whose work removes
/// it (issue 21 §2). Remove an entry when its last import is gone; the test says when.
const KNOWN_VIOLATIONS: &[(&str, &str)] = &[];

/// One `crate::…` reference: the module named, and where.
#[derive(Clone)]
struct Edge {
    from: String,
    to: String,
    at: String,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file below `src/`: `src/export/html/mod.rs` is `[export, html]`,
/// `src/lib.rs` is `[lib]`, `src/main.rs` is `[main]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The source with comments, string and char literals blanked out (newlines kept, so
/// line numbers stay right). Lifetimes (`'a`) are kept as they are.
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, chars: &[char]| {
        for &c in chars {
            out.push(if c == '\n' { '\n' } else { ' ' });
        }
    };
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        let starts = |s: &str| rest.iter().take(s.len()).copied().eq(s.chars());
        let ident_before = i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_');
        if starts("//") {
            let end = rest.iter().position(|&c| c == '\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if starts("/*") {
            // Nested block comments, as Rust has them.
            let (mut depth, mut j) = (0, 0);
            while j < rest.len() {
                if rest[j..].starts_with(&['/', '*']) {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(&['*', '/']) {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &rest[..j]);
            i += j;
        } else if !ident_before && (starts("r#") || starts("r\"") || starts("br")) {
            // Raw strings: r"…", r#"…"#, br"…".
            let prefix = if rest[0] == 'b' { 2 } else { 1 };
            let hashes = rest[prefix..].iter().take_while(|&&c| c == '#').count();
            if rest.get(prefix + hashes) != Some(&'"') {
                out.push(rest[0]);
                i += 1;
                continue;
            }
            let mut j = prefix + hashes + 1;
            while j < rest.len() {
                if rest[j] == '"' && rest[j + 1..].iter().take(hashes).all(|&c| c == '#') {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            blank(&mut out, &rest[..j.min(rest.len())]);
            i += j.min(rest.len());
        } else if rest[0] == '"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != '"' {
                j += if rest[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == '\'' {
            // A char literal ('x', '\n', '\u{1F600}', '\'') or a lifetime ('a).
            let end = if rest.get(1) == Some(&'\\') {
                rest.iter().skip(2).position(|&c| c == '\'').map(|p| p + 3)
            } else if rest.get(2) == Some(&'\'') {
                Some(3)
            } else {
                None
            };
            match end {
                Some(end) => {
                    blank(&mut out, &rest[..end]);
                    i += end;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    out
}

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Punct(char),
}

/// Identifiers (with `$crate` as `crate`), `::` and single punctuation, with line numbers.
fn tokens(code: &str) -> Vec<(Token, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let (mut out, mut line, mut i) = (Vec::new(), 1, 0);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let ident: String = chars[start..i].iter().collect();
            out.push((Token::Ident(ident), line));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push((Token::PathSep, line));
            i += 2;
        } else {
            // `$crate` is `crate`: drop the `$`.
            if c != '$' {
                out.push((Token::Punct(c), line));
            }
            i += 1;
        }
    }
    out
}

/// The first segments of the path (tree) starting at `tokens[at]`, which follows a
/// `crate::` or a `super::` that reached the crate root: `blobs` in `blobs::X`, and `a`, `b`
/// in `{a::X, b::{Y, Z}}`.
fn first_segments(tokens: &[(Token, usize)], at: usize) -> Vec<String> {
    match tokens.get(at) {
        Some((Token::Ident(name), _)) => vec![name.clone()],
        Some((Token::Punct('{'), _)) => {
            let (mut out, mut depth, mut item_start) = (Vec::new(), 0, true);
            for (token, _) in &tokens[at + 1..] {
                match token {
                    Token::Punct('{') => depth += 1,
                    Token::Punct('}') if depth == 0 => break,
                    Token::Punct('}') => depth -= 1,
                    Token::Punct(',') if depth == 0 => {
                        item_start = true;
                        continue;
                    }
                    Token::Ident(name) if item_start && depth == 0 => out.push(name.clone()),
                    _ => {}
                }
                item_start = false;
            }
            out
        }
        _ => Vec::new(),
    }
}

/// Every edge from one file: `crate::x`, and `super::…::x` where the `super`s climb from the
/// module the path is written in (file module plus inline `mod name { … }`) to the root.
fn edges_of(rel: &Path, src: &str) -> Vec<Edge> {
    let file_module = module_path(rel);
    let from = file_module[0].clone();
    let tokens = tokens(&code_only(src));
    let mut edges = Vec::new();
    // Inline modules open at a brace depth; the path of the code at a token is the file's
    // module plus those still open.
    let (mut depth, mut inline): (usize, Vec<usize>) = (0, Vec::new());
    let mut push = |names: Vec<String>, line: usize| {
        for to in names {
            if to != from && to != "self" && to != "super" {
                edges.push(Edge {
                    from: from.clone(),
                    to,
                    at: format!("src/{}:{line}", rel.display()),
                });
            }
        }
    };
    for i in 0..tokens.len() {
        let after_sep = i > 0 && tokens[i - 1].0 == Token::PathSep;
        match &tokens[i] {
            (Token::Punct('{'), _) => depth += 1,
            (Token::Punct('}'), _) => {
                depth = depth.saturating_sub(1);
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
            }
            (Token::Ident(kw), _)
                if kw == "mod"
                    && matches!(tokens.get(i + 1), Some((Token::Ident(_), _)))
                    && matches!(tokens.get(i + 2), Some((Token::Punct('{'), _))) =>
            {
                inline.push(depth);
            }
            (Token::Ident(kw), line)
                if kw == "crate"
                    && !after_sep
                    && tokens.get(i + 1).map(|t| &t.0) == Some(&Token::PathSep) =>
            {
                push(first_segments(&tokens, i + 2), *line);
            }
            (Token::Ident(kw), line) if kw == "super" && !after_sep => {
                let mut j = i;
                let mut climbs = 0;
                while matches!(&tokens.get(j), Some((Token::Ident(s), _)) if s == "super")
                    && tokens.get(j + 1).map(|t| &t.0) == Some(&Token::PathSep)
                {
                    climbs += 1;
                    j += 2;
                }
                let here = if file_module == ["lib"] || file_module == ["main"] {
                    inline.len()
                } else {
                    file_module.len() + inline.len()
                };
                if climbs == here {
                    push(first_segments(&tokens, j), *line);
                }
            }
            _ => {}
        }
    }
    edges
}

/// Every edge of `src/`, read once per test binary.
fn all_edges() -> Vec<Edge> {
    static EDGES: std::sync::OnceLock<Vec<Edge>> = std::sync::OnceLock::new();
    EDGES
        .get_or_init(|| {
            let src = src_dir();
            let mut files = Vec::new();
            rust_files(&src, &mut files);
            files.sort();
            assert!(files.len() > 20, "src/ not found at {}", src.display());
            let mut edges = Vec::new();
            for file in files {
                let rel = file.strip_prefix(&src).unwrap();
                edges.extend(edges_of(rel, &std::fs::read_to_string(&file).unwrap()));
            }
            edges
        })
        .clone()
}

fn top_modules() -> BTreeSet<String> {
    std::fs::read_dir(src_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_stem()?.to_string_lossy().into_owned();
            (p.is_dir() || p.extension().is_some_and(|e| e == "rs")).then_some(name)
        })
        .collect()
}

fn allowed() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    ALLOWED
        .iter()
        .map(|(module, uses)| (*module, uses.iter().copied().collect()))
        .collect()
}

fn is_allowed(table: &BTreeMap<&str, BTreeSet<&str>>, from: &str, to: &str) -> bool {
    DRIVERS.contains(&from) || table.get(from).is_some_and(|uses| uses.contains(to))
}

/// The check itself, on a list of edges and the known violations (so the test below can
/// show it fails on one more edge, and on a known violation that no longer occurs).
fn violations(edges: &[Edge], known_violations: &[(&str, &str)]) -> Vec<String> {
    let table = allowed();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for edge in edges {
        if is_allowed(&table, &edge.from, &edge.to) {
            continue;
        }
        let pair = (edge.from.as_str(), edge.to.as_str());
        if known_violations.contains(&pair) {
            seen.insert(pair);
        } else {
            problems.push(format!(
                "{}: `{}` uses `{}`, which docs/design.md \"Allowed directions\" does not allow",
                edge.at, edge.from, edge.to
            ));
        }
    }
    for known in known_violations {
        if !seen.contains(known) {
            problems.push(format!(
                "`{}` no longer uses `{}`: remove it from KNOWN_VIOLATIONS in tests/it/layering.rs",
                known.0, known.1
            ));
        }
    }
    problems
}

#[test]
fn every_import_runs_in_an_allowed_direction() {
    let problems = violations(&all_edges(), KNOWN_VIOLATIONS);
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn every_module_has_a_row_and_the_table_has_no_cycle() {
    let table = allowed();
    for module in top_modules() {
        assert!(
            DRIVERS.contains(&module.as_str()) || table.contains_key(module.as_str()),
            "src/{module} has no row in ALLOWED (tests/it/layering.rs) and docs/design.md"
        );
    }
    for (module, uses) in &table {
        for used in uses {
            assert!(
                table.contains_key(used),
                "{module} may use {used}, which has no row"
            );
        }
    }
    // Depth-first: a module may not reach itself through the allowed directions.
    fn reaches(
        table: &BTreeMap<&str, BTreeSet<&str>>,
        from: &str,
        to: &str,
        path: &mut Vec<String>,
    ) -> bool {
        for next in &table[from] {
            path.push(next.to_string());
            if *next == to || reaches(table, next, to, path) {
                return true;
            }
            path.pop();
        }
        false
    }
    for module in table.keys() {
        let mut path = vec![module.to_string()];
        assert!(
            !reaches(&table, module, module, &mut path),
            "the allowed directions have a cycle: {}",
            path.join(" -> ")
        );
    }
    for (from, to) in KNOWN_VIOLATIONS {
        assert!(
            !is_allowed(&table, from, to),
            "{from} -> {to} is allowed; it does not belong on KNOWN_VIOLATIONS"
        );
    }
}

/// The check fails on an upward import, names it, and reads all the path forms.
#[test]
fn an_upward_import_fails_the_check() {
    let cases = [
        ("catalog/read.rs", "use crate::sync::Run;\n", "sync"),
        (
            "catalog/read.rs",
            "use crate::{model::X, export::{a, b}};\n",
            "export",
        ),
        ("blobs.rs", "fn f() { crate::mm::Client::new(); }\n", "mm"),
        (
            "mm/wire.rs",
            "use super::super::catalog::Catalog;\n",
            "catalog",
        ),
        (
            "model/mod.rs",
            "mod inner { use super::super::verify; }\n",
            "verify",
        ),
        (
            "zip/read.rs",
            "macro_rules! m { () => { $crate::import::x() } }\n",
            "import",
        ),
        (
            "mock/api/teams.rs",
            "use crate::model::object::Team;\n",
            "model",
        ),
    ];
    for (file, src, to) in cases {
        let mut edges = all_edges();
        let added = edges_of(Path::new(file), src);
        assert!(
            added.iter().any(|e| e.to == to),
            "{file}: {src:?} read as {:?}",
            added.iter().map(|e| &e.to).collect::<Vec<_>>()
        );
        edges.extend(added);
        let problems = violations(&edges, KNOWN_VIOLATIONS);
        assert_eq!(problems.len(), 1, "{file}: {src:?}: {problems:#?}");
        assert!(
            problems[0].starts_with(&format!("src/{file}:1: "))
                && problems[0].contains(&format!("uses `{to}`")),
            "{}",
            problems[0]
        );
    }
    // Not edges: comments, strings, a module's own paths, `super` inside a module.
    let quiet = "// use crate::sync;\n/* crate::mm:: */ let s = \"crate::sync::x\";\n\
                 let c = '\"'; use crate::catalog::Catalog; mod tests { use super::*; }\n\
                 fn f<'a>(x: &'a str) {} let r = r#\"crate::sync\"#;\n";
    let edges = edges_of(Path::new("catalog/mod.rs"), quiet);
    assert!(
        edges.is_empty(),
        "{:?}",
        edges.iter().map(|e| (&e.to, &e.at)).collect::<Vec<_>>()
    );
    // A known violation that no longer occurs fails too (the list is empty today: one that
    // never occurred stands in for it).
    let problems = violations(&all_edges(), &[("catalog", "sync")]);
    assert!(
        problems.len() == 1 && problems[0].contains("remove it from KNOWN_VIOLATIONS"),
        "{problems:#?}"
    );
}

/// `docs/design.md` states the same table: each row of its "Allowed directions" table names
/// modules in backticks, and `everything`, or modules in backticks, or nothing.
#[test]
fn the_design_doc_states_the_same_table() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/design.md"))
        .unwrap();
    let section = doc
        .split("## Allowed directions")
        .nth(1)
        .expect("docs/design.md has a section \"## Allowed directions\"");
    let section = section.split("\n## ").next().unwrap();
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let mut doc_table: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut drivers = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (modules, uses) = (ticked(cells[1]), cells[2]);
        for module in modules {
            if uses.starts_with("everything") {
                drivers.insert(module);
            } else {
                doc_table.insert(module, ticked(uses).into_iter().collect());
            }
        }
    }
    let code_table: BTreeMap<String, BTreeSet<String>> = ALLOWED
        .iter()
        .map(|(m, uses)| (m.to_string(), uses.iter().map(|u| u.to_string()).collect()))
        .collect();
    assert_eq!(
        doc_table, code_table,
        "docs/design.md and ALLOWED in tests/it/layering.rs differ"
    );
    let code_drivers: BTreeSet<String> = DRIVERS
        .iter()
        .filter(|d| **d != "lib")
        .map(|d| d.to_string())
        .collect();
    assert_eq!(drivers, code_drivers);
}

/// What is wrong with the layout of the tests below `tests`: every integration test is a
/// module of the one test binary `tests/it` (each file there declared in its `main.rs`, or
/// it would silently not run), never a test binary of its own (`tests/*.rs` or
/// `tests/*/main.rs`, which would link the crate once more).
fn test_layout_problems(tests: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let main = std::fs::read_to_string(tests.join("it/main.rs")).unwrap_or_default();
    let declared: BTreeSet<&str> = main
        .lines()
        .filter_map(|l| l.trim().strip_prefix("mod ")?.strip_suffix(';'))
        .collect();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(tests)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.extension().is_some_and(|e| e == "rs")
            || (name != "it" && path.join("main.rs").exists())
        {
            let stem = name.trim_end_matches(".rs");
            problems.push(format!(
                "tests/{name} is a test binary of its own: move it to tests/it/{stem}.rs and add `mod {stem};` to tests/it/main.rs"
            ));
        }
    }
    let mut modules: Vec<PathBuf> = std::fs::read_dir(tests.join("it"))
        .map(|dir| dir.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    modules.sort();
    for path in modules {
        let module = if path.is_dir() && path.join("mod.rs").exists() {
            path.file_name().unwrap().to_string_lossy().into_owned()
        } else if path.extension().is_some_and(|e| e == "rs") {
            path.file_stem().unwrap().to_string_lossy().into_owned()
        } else {
            continue;
        };
        if module != "main" && !declared.contains(module.as_str()) {
            problems.push(format!(
                "tests/it/{} is not declared: add `mod {module};` to tests/it/main.rs (or it never runs)",
                path.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    problems
}

#[test]
fn integration_tests_are_one_binary() {
    let problems = test_layout_problems(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_new_test_binary_or_an_undeclared_module_fails_the_layout_check() {
    let dir = tempfile::tempdir().unwrap();
    let tests = dir.path();
    std::fs::create_dir_all(tests.join("it/common")).unwrap();
    std::fs::create_dir_all(tests.join("data")).unwrap();
    std::fs::write(tests.join("it/main.rs"), "mod common;\nmod sync;\n").unwrap();
    std::fs::write(tests.join("it/common/mod.rs"), "").unwrap();
    std::fs::write(tests.join("it/sync.rs"), "").unwrap();
    assert_eq!(test_layout_problems(tests), Vec::<String>::new());

    std::fs::write(tests.join("search.rs"), "").unwrap();
    std::fs::create_dir_all(tests.join("other")).unwrap();
    std::fs::write(tests.join("other/main.rs"), "").unwrap();
    std::fs::write(tests.join("it/follow.rs"), "").unwrap();
    assert_eq!(
        test_layout_problems(tests),
        [
            "tests/other is a test binary of its own: move it to tests/it/other.rs and add `mod other;` to tests/it/main.rs",
            "tests/search.rs is a test binary of its own: move it to tests/it/search.rs and add `mod search;` to tests/it/main.rs",
            "tests/it/follow.rs is not declared: add `mod follow;` to tests/it/main.rs (or it never runs)",
        ]
    );
}

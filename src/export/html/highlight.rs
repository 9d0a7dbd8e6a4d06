//! Code blocks of messages as highlighted HTML, built with the site.
//!
//! The site's CSS colours six kinds of token (`hl-comment`, `hl-string`, `hl-keyword` and
//! `hl-storage`, `hl-constant`, `hl-entity`, `hl-variable` and `hl-support`), so the
//! languages people paste most (Rust, Python, SQL, shell, JSON, YAML, Go, JavaScript and
//! TypeScript, Java, C, C++, C#, HTML/XML) are cut into exactly those by a small lexer
//! per language family ([`Grammar`] tables, [`markup`] for HTML/XML): one pass over the
//! bytes, no backtracking, so its time is linear in the code's length whatever the input.
//! It replaced syntect for them because syntect's grammars (Oniguruma regexes run per line)
//! were 38 % of the CPU time of a site build while its finer scopes were never coloured
//! (25-98 µs per line against under 1 µs: docs/performance.md). Other languages still go
//! through syntect, as before.
//!
//! May import only `super::escape`, std and syntect. Invariants: every byte of the code
//! reaches the output, escaped (`& < > " '`); the only tags produced are
//! `<span class="hl-…">` and their `</span>`; every step of a lexer consumes at least one
//! byte and cuts the text only at ASCII bytes, so any input (invalid nesting, unbalanced
//! quotes, NULs, 20,000-character lines) ends, and never splits a character.

use std::sync::OnceLock;

use super::escape;

/// Code longer than this is shown unhighlighted: a huge paste gains little from colour.
const HIGHLIGHT_LIMIT: usize = 20_000;

/// A code block as `<div class="code">` with the language's label and `<pre><code>`, its
/// tokens in `hl-` class spans (colours come from the site's CSS, so light and dark themes
/// both work). `latex`/`tex` stay code, labelled.
pub(super) fn highlight(info: &str, code: &str) -> String {
    let token = info.split_whitespace().next().unwrap_or("");
    let lang = language(token);
    let label = if lang.is_empty() {
        String::new()
    } else {
        format!("<span class=\"code-lang\">{}</span>", escape(token))
    };
    let body = if lang.is_empty() || code.len() > HIGHLIGHT_LIMIT {
        escape(code)
    } else {
        match family(&lang.to_ascii_lowercase()) {
            Some(family) => {
                let mut out = String::with_capacity(code.len() * 2);
                match family {
                    Family::Code(grammar) => lex(grammar, code, &mut out),
                    Family::Markup => markup(code, &mut out),
                }
                out
            }
            None => syntect_html(lang, code).unwrap_or_else(|| escape(code)),
        }
    };
    format!("<div class=\"code\">{label}<pre><code>{body}</code></pre></div>")
}

/// Mattermost's code-block language aliases, as the names syntect's default set knows.
fn language(token: &str) -> &str {
    match token {
        "sh" | "shell" | "zsh" | "bash" => "bash",
        "js" | "jsx" | "javascript" => "js",
        "ts" | "tsx" | "typescript" => "js",
        "py" | "python" => "py",
        "rs" | "rust" => "rs",
        "yml" | "yaml" => "yaml",
        "golang" | "go" => "go",
        "c++" | "cpp" => "cpp",
        "cs" | "csharp" => "cs",
        other => other,
    }
}

/// How a language (after [`language`], lower-case) is cut into tokens here; `None`: by
/// syntect.
fn family(lang: &str) -> Option<Family> {
    Some(Family::Code(match lang {
        "rs" | "rust" => &RUST,
        "py" | "python" | "python3" => &PYTHON,
        "sql" | "mysql" | "postgresql" | "postgres" | "pgsql" | "sqlite" | "plsql" => &SQL,
        "bash" | "sh" | "shell" | "zsh" | "console" | "shellsession" => &SHELL,
        "json" | "jsonc" => &JSON,
        "yaml" | "yml" => &YAML,
        "go" | "golang" => &GO,
        "js" | "jsx" | "javascript" | "ts" | "tsx" | "typescript" | "mjs" | "cjs" => &JAVASCRIPT,
        "java" => &JAVA,
        "c" | "h" => &C,
        "cpp" | "c++" | "cc" | "cxx" | "hpp" => &CPP,
        "cs" | "csharp" | "c#" => &CSHARP,
        "html" | "htm" | "xhtml" | "xml" | "svg" => return Some(Family::Markup),
        _ => return None,
    }))
}

enum Family {
    Code(&'static Grammar),
    Markup,
}

fn syntaxes() -> &'static syntect::parsing::SyntaxSet {
    static SET: OnceLock<syntect::parsing::SyntaxSet> = OnceLock::new();
    SET.get_or_init(syntect::parsing::SyntaxSet::load_defaults_newlines)
}

/// The code with syntect's class spans, for languages without a [`Grammar`]; `None` when
/// syntect does not know the language or fails.
fn syntect_html(lang: &str, code: &str) -> Option<String> {
    let set = syntaxes();
    let syntax = set.find_syntax_by_token(lang)?;
    let mut generator = syntect::html::ClassedHTMLGenerator::new_with_class_style(
        syntax,
        set,
        syntect::html::ClassStyle::SpacedPrefixed { prefix: "hl-" },
    );
    for line in syntect::util::LinesWithEndings::from(code) {
        generator
            .parse_html_for_line_which_includes_newline(line)
            .ok()?;
    }
    Some(generator.finalize())
}

/// The kinds of token the site's CSS colours (templates/site/app.css).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Class {
    Comment,
    String,
    Keyword,
    /// Built-in types.
    Storage,
    /// Numbers and literals like `true`, `null`.
    Constant,
    /// Names being defined or called, keys, tags' attributes.
    Entity,
    /// `$VAR`, `self`/`this`.
    Variable,
    /// Well-known library functions and types.
    Support,
}

impl Class {
    fn css(self) -> &'static str {
        match self {
            Class::Comment => "hl-comment",
            Class::String => "hl-string",
            Class::Keyword => "hl-keyword",
            Class::Storage => "hl-storage",
            Class::Constant => "hl-constant",
            Class::Entity => "hl-entity",
            Class::Variable => "hl-variable",
            Class::Support => "hl-support",
        }
    }
}

/// What a C-like, script or data language's lexer needs to know.
struct Grammar {
    keywords: &'static [&'static str],
    /// Built-in types ([`Class::Storage`]).
    types: &'static [&'static str],
    constants: &'static [&'static str],
    /// Words that stand for an object (`self`, `this`).
    variables: &'static [&'static str],
    /// Well-known functions and types ([`Class::Support`]).
    builtins: &'static [&'static str],
    /// Keywords after which the next word is a name being defined (`fn`, `def`, `class`).
    definers: &'static [&'static str],
    /// Keywords and the word lists above match whatever their case (SQL, YAML).
    any_case: bool,
    line_comments: &'static [&'static str],
    block_comment: Option<(&'static str, &'static str)>,
    /// `#` starts a comment only at a line's start or after a space (shell, YAML).
    hash_after_space: bool,
    quotes: &'static [u8],
    /// Quotes whose strings may span lines (the others end at the line's end).
    multiline_quotes: &'static [u8],
    /// Quotes in whose strings a backslash escapes nothing.
    raw_quotes: &'static [u8],
    /// `"""` and `'''` strings.
    triple_quotes: bool,
    /// A quote written twice inside a string stands for itself (SQL's `'it''s'`).
    doubled_quotes: bool,
    /// Words that, right before a quote, belong to the string (`b"…"`, `f'…'`).
    string_prefixes: &'static [&'static str],
    /// Bytes that may continue a word besides ASCII letters, digits, `_` and non-ASCII.
    word_extra: &'static [u8],
    /// Bytes that may also start a word.
    word_start_extra: &'static [u8],
    /// A word followed by `(` is a function's name.
    calls: bool,
    /// A word or string followed by `:` (and a space, unless JSON) is a key.
    keys: Keys,
    /// `@name` is a decorator or annotation.
    decorators: bool,
    /// `#word` at a line's start is a preprocessor keyword (C, C++, C#).
    preprocessor: bool,
    /// `$NAME`, `${…}`, `$1`, backslash escapes outside strings.
    shell: bool,
    /// Lifetimes, char literals, raw strings `r#"…"#` and macros `name!`.
    rust: bool,
}

#[derive(PartialEq)]
enum Keys {
    None,
    Json,
    Yaml,
}

#[rustfmt::skip]
const BASE: Grammar = Grammar {
    keywords: &[],
    types: &[],
    constants: &["true", "false"],
    variables: &[],
    builtins: &[],
    definers: &[],
    any_case: false,
    line_comments: &["//"],
    block_comment: Some(("/*", "*/")),
    hash_after_space: false,
    quotes: b"\"'",
    multiline_quotes: b"",
    raw_quotes: b"",
    triple_quotes: false,
    doubled_quotes: false,
    string_prefixes: &[],
    word_extra: b"",
    word_start_extra: b"",
    calls: true,
    keys: Keys::None,
    decorators: false,
    preprocessor: false,
    shell: false,
    rust: false,
};

#[rustfmt::skip]
const RUST: Grammar = Grammar {
    keywords: &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
        "pub", "ref", "return", "Self", "static", "struct", "super", "trait", "type", "unsafe",
        "use", "where", "while", "yield",
    ],
    types: &[
        "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32",
        "i64", "i128", "isize", "f32", "f64",
    ],
    variables: &["self"],
    builtins: &[
        "Some", "None", "Ok", "Err", "String", "Vec", "Option", "Result", "Box",
    ],
    definers: &["fn", "struct", "enum", "trait", "type", "mod", "union"],
    multiline_quotes: b"\"",
    string_prefixes: &["b"],
    rust: true,
    ..BASE
};

#[rustfmt::skip]
const PYTHON: Grammar = Grammar {
    keywords: &[
        "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
        "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
        "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
    ],
    constants: &["True", "False", "None"],
    variables: &["self", "cls"],
    builtins: &[
        "print", "len", "range", "str", "int", "float", "bool", "list", "dict", "set", "tuple",
        "type", "isinstance", "super", "open", "enumerate", "zip", "map", "filter", "sorted", "any",
        "all", "min", "max", "sum", "abs", "repr", "object", "Exception",
    ],
    definers: &["def", "class"],
    line_comments: &["#"],
    block_comment: None,
    triple_quotes: true,
    string_prefixes: &["r", "b", "f", "u", "rb", "br", "fr", "rf"],
    decorators: true,
    ..BASE
};

#[rustfmt::skip]
const SQL: Grammar = Grammar {
    keywords: &[
        "select", "from", "where", "and", "or", "not", "in", "is", "as", "on", "join", "inner",
        "left", "right", "outer", "full", "cross", "group", "by", "order", "having", "limit",
        "offset", "distinct", "union", "all", "insert", "into", "values", "update", "set", "delete",
        "create", "table", "view", "index", "drop", "alter", "add", "column", "primary", "key",
        "foreign", "references", "unique", "default", "check", "constraint", "if", "exists", "case",
        "when", "then", "else", "end", "asc", "desc", "like", "ilike", "between", "with",
        "returning", "begin", "commit", "rollback", "transaction", "grant", "revoke", "truncate",
        "cascade", "explain", "analyze", "using", "over", "partition",
    ],
    types: &[
        "int", "integer", "bigint", "smallint", "serial", "bigserial", "text", "varchar", "char",
        "boolean", "bool", "date", "time", "timestamp", "timestamptz", "numeric", "decimal", "real",
        "float", "double", "blob", "json", "jsonb", "uuid",
    ],
    constants: &["null", "true", "false"],
    any_case: true,
    line_comments: &["--"],
    quotes: b"'\"`",
    multiline_quotes: b"'\"`",
    raw_quotes: b"'\"`",
    doubled_quotes: true,
    ..BASE
};

#[rustfmt::skip]
const SHELL: Grammar = Grammar {
    keywords: &[
        "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
        "in", "function", "select", "return", "break", "continue", "local", "export", "readonly",
        "declare", "unset", "shift", "exit",
    ],
    constants: &[],
    builtins: &[
        "echo", "cd", "printf", "read", "source", "eval", "exec", "set", "test", "trap", "wait",
        "kill", "pwd", "alias", "sudo",
    ],
    definers: &["function"],
    line_comments: &["#"],
    block_comment: None,
    hash_after_space: true,
    multiline_quotes: b"\"'",
    raw_quotes: b"'",
    word_extra: b"-",
    shell: true,
    ..BASE
};

#[rustfmt::skip]
const JSON: Grammar = Grammar {
    constants: &["true", "false", "null"],
    quotes: b"\"",
    calls: false,
    keys: Keys::Json,
    ..BASE
};

#[rustfmt::skip]
const YAML: Grammar = Grammar {
    constants: &["true", "false", "null", "yes", "no", "on", "off"],
    any_case: true,
    line_comments: &["#"],
    block_comment: None,
    hash_after_space: true,
    multiline_quotes: b"\"'",
    raw_quotes: b"'",
    doubled_quotes: true,
    word_extra: b"-./",
    calls: false,
    keys: Keys::Yaml,
    ..BASE
};

#[rustfmt::skip]
const GO: Grammar = Grammar {
    keywords: &[
        "break", "case", "chan", "const", "continue", "default", "defer", "else", "fallthrough",
        "for", "func", "go", "goto", "if", "import", "interface", "map", "package", "range",
        "return", "select", "struct", "switch", "type", "var",
    ],
    types: &[
        "bool", "byte", "complex64", "complex128", "error", "float32", "float64", "int", "int8",
        "int16", "int32", "int64", "rune", "string", "uint", "uint8", "uint16", "uint32", "uint64",
        "uintptr", "any",
    ],
    constants: &["true", "false", "nil", "iota"],
    builtins: &[
        "append", "cap", "close", "copy", "delete", "len", "make", "new", "panic", "print",
        "println", "recover",
    ],
    definers: &["func", "type"],
    quotes: b"\"'`",
    multiline_quotes: b"`",
    raw_quotes: b"`",
    ..BASE
};

#[rustfmt::skip]
const JAVASCRIPT: Grammar = Grammar {
    keywords: &[
        "break", "case", "catch", "class", "const", "continue", "debugger", "default", "delete",
        "do", "else", "export", "extends", "finally", "for", "function", "if", "import", "in",
        "instanceof", "let", "new", "return", "super", "switch", "throw", "try", "typeof", "var",
        "void", "while", "with", "yield", "async", "await", "of", "static", "from", "as",
        "interface", "type", "enum", "implements", "namespace", "declare", "readonly", "private",
        "public", "protected", "abstract", "keyof",
    ],
    types: &[
        "string", "number", "boolean", "any", "unknown", "never", "object", "bigint", "symbol",
    ],
    constants: &["true", "false", "null", "undefined", "NaN", "Infinity"],
    variables: &["this"],
    builtins: &[
        "console", "window", "document", "Math", "JSON", "Object", "Array", "Promise", "require",
        "String", "Number", "Boolean", "Date", "Error", "Map", "Set",
    ],
    definers: &["function", "class", "interface", "type", "enum"],
    quotes: b"\"'`",
    multiline_quotes: b"`",
    word_start_extra: b"$",
    word_extra: b"$",
    decorators: true,
    ..BASE
};

#[rustfmt::skip]
const JAVA: Grammar = Grammar {
    keywords: &[
        "abstract", "assert", "break", "case", "catch", "class", "continue", "default", "do",
        "else", "enum", "extends", "final", "finally", "for", "if", "implements", "import",
        "instanceof", "interface", "native", "new", "package", "private", "protected", "public",
        "return", "static", "strictfp", "super", "switch", "synchronized", "throw", "throws",
        "transient", "try", "var", "volatile", "while", "record", "yield", "sealed", "permits",
    ],
    types: &[
        "boolean", "byte", "char", "double", "float", "int", "long", "short", "void",
    ],
    constants: &["true", "false", "null"],
    variables: &["this"],
    builtins: &[
        "String", "Object", "Integer", "Long", "Boolean", "List", "Map", "Set", "System",
        "Exception",
    ],
    definers: &["class", "interface", "enum", "record"],
    triple_quotes: true,
    decorators: true,
    ..BASE
};

#[rustfmt::skip]
const C_KEYWORDS: &[&str] = &[
    "auto", "break", "case", "const", "continue", "default", "do", "else", "enum", "extern", "for",
    "goto", "if", "inline", "register", "restrict", "return", "sizeof", "static", "struct",
    "switch", "typedef", "union", "volatile", "while",
];

#[rustfmt::skip]
const C_TYPES: &[&str] = &[
    "char", "double", "float", "int", "long", "short", "signed", "unsigned", "void", "bool",
    "size_t", "ssize_t", "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t",
    "uint32_t", "uint64_t", "FILE",
];

#[rustfmt::skip]
const C: Grammar = Grammar {
    keywords: C_KEYWORDS,
    types: C_TYPES,
    constants: &["NULL", "true", "false"],
    builtins: &[
        "printf", "fprintf", "sprintf", "snprintf", "malloc", "calloc", "realloc", "free", "memcpy",
        "memset", "strlen", "strcmp",
    ],
    definers: &["struct", "enum", "union"],
    preprocessor: true,
    ..BASE
};

#[rustfmt::skip]
const CPP: Grammar = Grammar {
    keywords: &[
        "auto", "break", "case", "const", "continue", "default", "do", "else", "enum", "extern",
        "for", "goto", "if", "inline", "register", "return", "sizeof", "static", "struct", "switch",
        "typedef", "union", "volatile", "while", "class", "namespace", "template", "typename",
        "public", "private", "protected", "virtual", "override", "final", "new", "delete",
        "operator", "using", "try", "catch", "throw", "constexpr", "noexcept", "decltype",
        "explicit", "friend", "mutable", "static_cast", "dynamic_cast", "reinterpret_cast",
        "const_cast", "co_await", "co_return", "co_yield", "concept", "requires", "export",
    ],
    types: C_TYPES,
    constants: &["NULL", "nullptr", "true", "false"],
    variables: &["this"],
    builtins: &[
        "std", "string", "vector", "map", "cout", "cerr", "endl", "printf",
    ],
    definers: &["struct", "enum", "union", "class", "namespace"],
    preprocessor: true,
    ..BASE
};

#[rustfmt::skip]
const CSHARP: Grammar = Grammar {
    keywords: &[
        "abstract", "as", "base", "break", "case", "catch", "checked", "class", "const", "continue",
        "default", "delegate", "do", "else", "enum", "event", "explicit", "extern", "finally",
        "fixed", "for", "foreach", "goto", "if", "implicit", "in", "interface", "internal", "is",
        "lock", "namespace", "new", "operator", "out", "override", "params", "private", "protected",
        "public", "readonly", "ref", "return", "sealed", "sizeof", "stackalloc", "static", "struct",
        "switch", "throw", "try", "typeof", "unchecked", "unsafe", "using", "virtual", "volatile",
        "while", "async", "await", "var", "get", "set", "record", "where", "yield", "partial",
    ],
    types: &[
        "bool", "byte", "char", "decimal", "double", "float", "int", "long", "object", "sbyte",
        "short", "string", "uint", "ulong", "ushort", "void", "dynamic",
    ],
    constants: &["true", "false", "null"],
    variables: &["this"],
    builtins: &[
        "Console", "String", "List", "Dictionary", "Task", "Math", "Exception",
    ],
    definers: &["class", "struct", "interface", "enum", "record"],
    preprocessor: true,
    ..BASE
};

/// Appends `text` to `out` with `& < > " '` escaped (as [`escape`] does, without its
/// allocation).
fn push_escaped(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
        out.push_str(&rest[..at]);
        out.push_str(match rest.as_bytes()[at] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

fn push_token(out: &mut String, class: Class, text: &str) {
    out.push_str("<span class=\"");
    out.push_str(class.css());
    out.push_str("\">");
    push_escaped(out, text);
    out.push_str("</span>");
}

fn word_byte(g: &Grammar, b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 || g.word_extra.contains(&b)
}

fn in_list(g: &Grammar, list: &[&str], word: &str) -> bool {
    if g.any_case {
        list.iter().any(|w| w.eq_ignore_ascii_case(word))
    } else {
        list.contains(&word)
    }
}

/// The first byte at or after `i` that is not a space or tab.
fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// The end of a string whose opening quote ends at `from`: after its closing `quote`, or
/// the line's end (or the code's) when it has none.
fn string_end(b: &[u8], from: usize, quote: u8, escapes: bool, multiline: bool) -> usize {
    string_end_doubled(b, from, quote, escapes, multiline, false)
}

/// [`string_end`], where a `quote` written twice may stand for itself.
fn string_end_doubled(
    b: &[u8],
    from: usize,
    quote: u8,
    escapes: bool,
    multiline: bool,
    doubled: bool,
) -> usize {
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'\\' if escapes => i += 2,
            c if c == quote && doubled && b.get(i + 1) == Some(&quote) => i += 2,
            c if c == quote => return i + 1,
            b'\n' if !multiline => return i,
            _ => i += 1,
        }
    }
    b.len()
}

/// `code` cut by `g` into spans, appended to `out`.
fn lex(g: &Grammar, code: &str, out: &mut String) {
    let b = code.as_bytes();
    let mut plain = 0;
    let mut i = 0;
    // The last keyword was a definer: the next word is a name being defined.
    let mut defining = false;
    while i < b.len() {
        let (class, end) = match token(g, code, i, &mut defining) {
            Some(found) => found,
            None => {
                if !b[i].is_ascii_whitespace() {
                    defining = false;
                }
                // Plain: on to the next character.
                i += code[i..].chars().next().map_or(1, char::len_utf8);
                continue;
            }
        };
        if let Some(class) = class {
            push_escaped(out, &code[plain..i]);
            push_token(out, class, &code[i..end]);
            plain = end;
        }
        i = end;
    }
    push_escaped(out, &code[plain..]);
}

/// The token at `i` (which is at a character's start): its class (`None`: plain) and
/// end, always after `i` and at an ASCII byte or the code's end; `None` when the byte at
/// `i` is plain punctuation or space.
fn token(g: &Grammar, code: &str, i: usize, defining: &mut bool) -> Option<(Option<Class>, usize)> {
    let b = code.as_bytes();
    let c = b[i];
    if !c.is_ascii() {
        return None;
    }
    let rest = &code[i..];
    let line_end = |from: usize| memchr_newline(b, from);
    for comment in g.line_comments {
        if rest.starts_with(comment) {
            if comment == &"#" && g.hash_after_space && i > 0 && !b" \t\r\n;(".contains(&b[i - 1]) {
                continue;
            }
            return Some((Some(Class::Comment), line_end(i)));
        }
    }
    if let Some((open, close)) = g.block_comment
        && rest.starts_with(open)
    {
        let end = rest[open.len()..]
            .find(close)
            .map_or(b.len(), |at| i + open.len() + at + close.len());
        return Some((Some(Class::Comment), end));
    }
    if g.rust && c == b'\'' {
        return Some(rust_quote(code, i));
    }
    if g.quotes.contains(&c) {
        let end = quoted(g, b, i);
        let class = if g.keys != Keys::None && is_key(g, b, skip_blanks(b, end)) {
            Class::Entity
        } else {
            Class::String
        };
        return Some((Some(class), end));
    }
    if c.is_ascii_digit() {
        let mut end = i + 1;
        while end < b.len()
            && (b[end].is_ascii_alphanumeric()
                || b[end] == b'_'
                || b[end] == b'.' && b.get(end + 1).is_some_and(u8::is_ascii_digit))
        {
            end += 1;
        }
        *defining = false;
        return Some((Some(Class::Constant), end));
    }
    if c.is_ascii_alphabetic() || c == b'_' || g.word_start_extra.contains(&c) {
        let mut end = i + 1;
        while end < b.len() && word_byte(g, b[end]) {
            end += 1;
        }
        return Some(word(g, code, i, end, defining));
    }
    if g.shell {
        if c == b'\\' {
            // An escaped character is plain (`\"` opens no string).
            let next = code[i + 1..].chars().next().map_or(0, char::len_utf8);
            return Some((None, i + 1 + next));
        }
        if c == b'$' {
            let end = match b.get(i + 1) {
                Some(b'{') => b[i..]
                    .iter()
                    .position(|&x| x == b'}' || x == b'\n')
                    .map_or(b.len(), |at| i + at + usize::from(b[i + at] == b'}')),
                Some(&x) if x.is_ascii_alphabetic() || x == b'_' => {
                    let mut end = i + 2;
                    while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                        end += 1;
                    }
                    end
                }
                Some(&x) if x.is_ascii_digit() || b"?@#$!*-".contains(&x) => i + 2,
                _ => return None,
            };
            return Some((Some(Class::Variable), end));
        }
    }
    if g.decorators && c == b'@' && b.get(i + 1).is_some_and(|x| x.is_ascii_alphabetic()) {
        let mut end = i + 1;
        while end < b.len() && (word_byte(g, b[end]) || b[end] == b'.') && b[end] < 0x80 {
            end += 1;
        }
        return Some((Some(Class::Entity), end));
    }
    if g.preprocessor
        && c == b'#'
        && b[..i]
            .iter()
            .rev()
            .take_while(|&&x| x != b'\n')
            .all(|&x| x == b' ' || x == b'\t')
    {
        let mut end = i + 1;
        while end < b.len() && b[end].is_ascii_alphabetic() {
            end += 1;
        }
        return Some((Some(Class::Keyword), end));
    }
    None
}

/// The end of the line that holds `from` (its `\n` excluded).
fn memchr_newline(b: &[u8], from: usize) -> usize {
    b[from..]
        .iter()
        .position(|&x| x == b'\n')
        .map_or(b.len(), |at| from + at)
}

/// The end of the string whose (first) quote is at `quote_at`.
fn quoted(g: &Grammar, b: &[u8], quote_at: usize) -> usize {
    let q = b[quote_at];
    if g.triple_quotes && b[quote_at..].starts_with(&[q, q, q]) {
        let close = [q, q, q];
        return b[quote_at + 3..]
            .windows(3)
            .position(|w| w == close)
            .map_or(b.len(), |at| quote_at + 3 + at + 3);
    }
    string_end_doubled(
        b,
        quote_at + 1,
        q,
        !g.raw_quotes.contains(&q),
        g.multiline_quotes.contains(&q),
        g.doubled_quotes,
    )
}

/// A word from `i` to `end`: keyword, type, constant, a name defined or called, a key, a
/// string's prefix, or plain.
fn word(
    g: &Grammar,
    code: &str,
    i: usize,
    end: usize,
    defining: &mut bool,
) -> (Option<Class>, usize) {
    let b = code.as_bytes();
    let text = &code[i..end];
    let was_defining = std::mem::replace(defining, false);
    if let Some(&q) = b.get(end)
        && g.quotes.contains(&q)
        && in_list(g, g.string_prefixes, text)
    {
        return (Some(Class::String), quoted(g, b, end));
    }
    if g.rust
        && text == "r"
        && let Some(hashes) = b[end..].iter().position(|&x| x != b'#')
        && b[end + hashes] == b'"'
    {
        // A raw string: `r"…"`, `r#"…"#`.
        let mut close = vec![b'"'];
        close.extend(std::iter::repeat_n(b'#', hashes));
        let from = end + hashes + 1;
        let stop = b[from..]
            .windows(close.len())
            .position(|w| w == close.as_slice())
            .map_or(b.len(), |at| from + at + close.len());
        return (Some(Class::String), stop);
    }
    let next = skip_blanks(b, end);
    if g.keys != Keys::None && is_key(g, b, next) {
        return (Some(Class::Entity), end);
    }
    // A member (`p.catch(…)`, `m.delete(k)`) is no keyword, except Rust's `.await`.
    let member = i > 0 && b[i - 1] == b'.' && !(g.rust && text == "await");
    if member {
        let call = g.calls && b.get(next) == Some(&b'(');
        return (call.then_some(Class::Entity), end);
    }
    if in_list(g, g.keywords, text) {
        *defining = in_list(g, g.definers, text);
        return (Some(Class::Keyword), end);
    }
    if in_list(g, g.types, text) {
        return (Some(Class::Storage), end);
    }
    if in_list(g, g.constants, text) {
        return (Some(Class::Constant), end);
    }
    if in_list(g, g.variables, text) {
        return (Some(Class::Variable), end);
    }
    if was_defining {
        return (Some(Class::Entity), end);
    }
    if in_list(g, g.builtins, text) {
        return (Some(Class::Support), end);
    }
    if g.calls && b.get(next) == Some(&b'(') {
        return (Some(Class::Entity), end);
    }
    if g.rust && b.get(end) == Some(&b'!') && b.get(end + 1) != Some(&b'=') {
        // A macro: the `!` is part of its name.
        return (Some(Class::Entity), end + 1);
    }
    (None, end)
}

/// Whether the byte at `at` is the `:` that makes what precedes it a key.
fn is_key(g: &Grammar, b: &[u8], at: usize) -> bool {
    b.get(at) == Some(&b':')
        && (g.keys == Keys::Json || b.get(at + 1).is_none_or(u8::is_ascii_whitespace))
}

/// A Rust `'` at `i`: a char literal (`'a'`, `'\n'`), else a lifetime or label (`'a`).
fn rust_quote(code: &str, i: usize) -> (Option<Class>, usize) {
    let b = code.as_bytes();
    if b.get(i + 1) == Some(&b'\\') {
        return (
            Some(Class::String),
            string_end(b, i + 1, b'\'', true, false),
        );
    }
    if let Some(ch) = code[i + 1..].chars().next() {
        let after = i + 1 + ch.len_utf8();
        if b.get(after) == Some(&b'\'') {
            return (Some(Class::String), after + 1);
        }
        if ch.is_alphabetic() || ch == '_' {
            let mut end = after;
            while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                end += 1;
            }
            return (Some(Class::Storage), end);
        }
    }
    (None, i + 1)
}

/// HTML or XML cut into spans: tag names are keywords, attribute names entities, their
/// values strings, comments, and character references constants.
fn markup(code: &str, out: &mut String) {
    let b = code.as_bytes();
    let mut plain = 0;
    let mut i = 0;
    let mut in_tag = false;
    let emit = |out: &mut String, plain: &mut usize, from: usize, to: usize, class: Class| {
        push_escaped(out, &code[*plain..from]);
        push_token(out, class, &code[from..to]);
        *plain = to;
    };
    while i < b.len() {
        let c = b[i];
        if in_tag {
            match c {
                b'>' => {
                    in_tag = false;
                    i += 1;
                }
                b'"' | b'\'' => {
                    let end = string_end(b, i + 1, c, false, true);
                    emit(out, &mut plain, i, end, Class::String);
                    i = end;
                }
                _ if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                    let mut end = i + 1;
                    while end < b.len()
                        && (b[end].is_ascii_alphanumeric() || b"-_:.".contains(&b[end]))
                    {
                        end += 1;
                    }
                    emit(out, &mut plain, i, end, Class::Entity);
                    i = end;
                }
                _ => i += 1,
            }
            continue;
        }
        if b[i..].starts_with(b"<!--") {
            let end = code[i + 4..]
                .find("-->")
                .map_or(b.len(), |at| i + 4 + at + 3);
            emit(out, &mut plain, i, end, Class::Comment);
            i = end;
        } else if c == b'<' {
            let name = i + 1 + usize::from(matches!(b.get(i + 1), Some(b'/' | b'!' | b'?')));
            if b.get(name).is_some_and(u8::is_ascii_alphabetic) {
                let mut end = name + 1;
                while end < b.len() && (b[end].is_ascii_alphanumeric() || b"-_:.".contains(&b[end]))
                {
                    end += 1;
                }
                emit(out, &mut plain, name, end, Class::Keyword);
                in_tag = true;
                i = end;
            } else {
                i += 1;
            }
        } else if c == b'&' {
            let end = b[i + 1..]
                .iter()
                .position(|&x| !(x.is_ascii_alphanumeric() || x == b'#'))
                .map_or(b.len(), |at| i + 1 + at);
            if end > i + 1 && b.get(end) == Some(&b';') {
                emit(out, &mut plain, i, end + 1, Class::Constant);
                i = end + 1;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    push_escaped(out, &code[plain..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The highlighted code of a block, without the `<div>`, label and `<pre><code>` around.
    fn body(info: &str, code: &str) -> String {
        let html = highlight(info, code);
        let start = html.find("<pre><code>").expect("a code element") + "<pre><code>".len();
        let end = html.rfind("</code></pre></div>").expect("closed");
        html[start..end].to_owned()
    }

    #[test]
    fn rust_keywords_names_strings_comments_and_literals() {
        assert_eq!(
            body("rust", "fn main() {\n    let s = \"hi\"; // c\n}\n"),
            "<span class=\"hl-keyword\">fn</span> <span class=\"hl-entity\">main</span>() {\n    <span class=\"hl-keyword\">let</span> s = <span class=\"hl-string\">&quot;hi&quot;</span>; <span class=\"hl-comment\">// c</span>\n}\n"
        );
        assert_eq!(
            body("rust", "let n: u32 = 42;"),
            "<span class=\"hl-keyword\">let</span> n: <span class=\"hl-storage\">u32</span> = <span class=\"hl-constant\">42</span>;"
        );
        // A char literal is a string, a lifetime is not; a macro's name includes its `!`.
        assert_eq!(
            body("rust", "let c: &'a str = '\\n'; println!(r#\"a\"b\"#)"),
            "<span class=\"hl-keyword\">let</span> c: &amp;<span class=\"hl-storage\">&#39;a</span> <span class=\"hl-storage\">str</span> = <span class=\"hl-string\">&#39;\\n&#39;</span>; <span class=\"hl-entity\">println!</span>(<span class=\"hl-string\">r#&quot;a&quot;b&quot;#</span>)"
        );
        assert_eq!(
            body("rust", "/* a\nb */ Some(self)"),
            "<span class=\"hl-comment\">/* a\nb */</span> <span class=\"hl-support\">Some</span>(<span class=\"hl-variable\">self</span>)"
        );
        assert_eq!(
            body("rust", "f.await.match"),
            "f.<span class=\"hl-keyword\">await</span>.match"
        );
    }

    #[test]
    fn python_definitions_builtins_and_string_kinds() {
        assert_eq!(
            body(
                "python",
                "@cache\ndef f(self):\n    return len(x) + 1  # c\n"
            ),
            "<span class=\"hl-entity\">@cache</span>\n<span class=\"hl-keyword\">def</span> <span class=\"hl-entity\">f</span>(<span class=\"hl-variable\">self</span>):\n    <span class=\"hl-keyword\">return</span> <span class=\"hl-support\">len</span>(x) + <span class=\"hl-constant\">1</span>  <span class=\"hl-comment\"># c</span>\n"
        );
        assert_eq!(
            body("py", "x = f'it\\'s' if None else \"\"\"a\n# b\"\"\""),
            "x = <span class=\"hl-string\">f&#39;it\\&#39;s&#39;</span> <span class=\"hl-keyword\">if</span> <span class=\"hl-constant\">None</span> <span class=\"hl-keyword\">else</span> <span class=\"hl-string\">&quot;&quot;&quot;a\n# b&quot;&quot;&quot;</span>"
        );
    }

    #[test]
    fn sql_keywords_in_any_case_functions_and_doubled_quotes() {
        assert_eq!(
            body("sql", "SELECT a, count(*) FROM b where id > 5 -- c\n"),
            "<span class=\"hl-keyword\">SELECT</span> a, <span class=\"hl-entity\">count</span>(*) <span class=\"hl-keyword\">FROM</span> b <span class=\"hl-keyword\">where</span> id &gt; <span class=\"hl-constant\">5</span> <span class=\"hl-comment\">-- c</span>\n"
        );
        assert_eq!(
            body("sql", "insert into t values ('it''s', NULL);"),
            "<span class=\"hl-keyword\">insert</span> <span class=\"hl-keyword\">into</span> t <span class=\"hl-keyword\">values</span> (<span class=\"hl-string\">&#39;it&#39;&#39;s&#39;</span>, <span class=\"hl-constant\">NULL</span>);"
        );
    }

    #[test]
    fn shell_variables_strings_and_comments_only_after_a_space() {
        assert_eq!(
            body("bash", "echo \"$HOME\" $1 ${x:-y} | grep -v a#b # c\n"),
            "<span class=\"hl-support\">echo</span> <span class=\"hl-string\">&quot;$HOME&quot;</span> <span class=\"hl-variable\">$1</span> <span class=\"hl-variable\">${x:-y}</span> | grep -v a#b <span class=\"hl-comment\"># c</span>\n"
        );
        // An escaped quote opens no string; single quotes escape nothing.
        assert_eq!(
            body("sh", "if x; then echo \\\"a 'b\\'; fi"),
            "<span class=\"hl-keyword\">if</span> x; <span class=\"hl-keyword\">then</span> <span class=\"hl-support\">echo</span> \\&quot;a <span class=\"hl-string\">&#39;b\\&#39;</span>; <span class=\"hl-keyword\">fi</span>"
        );
    }

    #[test]
    fn json_and_yaml_keys_values_and_comments() {
        assert_eq!(
            body("json", "{\"a\": 1, \"b\":[true, null, \"s\"]}"),
            "{<span class=\"hl-entity\">&quot;a&quot;</span>: <span class=\"hl-constant\">1</span>, <span class=\"hl-entity\">&quot;b&quot;</span>:[<span class=\"hl-constant\">true</span>, <span class=\"hl-constant\">null</span>, <span class=\"hl-string\">&quot;s&quot;</span>]}"
        );
        assert_eq!(
            body(
                "yaml",
                "a:\n  b-c: 5 # c\n  d: \"x\"\n  e: True\n  url: http://x#y\n"
            ),
            "<span class=\"hl-entity\">a</span>:\n  <span class=\"hl-entity\">b-c</span>: <span class=\"hl-constant\">5</span> <span class=\"hl-comment\"># c</span>\n  <span class=\"hl-entity\">d</span>: <span class=\"hl-string\">&quot;x&quot;</span>\n  <span class=\"hl-entity\">e</span>: <span class=\"hl-constant\">True</span>\n  <span class=\"hl-entity\">url</span>: http://x#y\n"
        );
    }

    #[test]
    fn go_types_nil_and_raw_strings() {
        assert_eq!(
            body("go", "if err := a.b(ctx, 5); err != nil { return err }"),
            "<span class=\"hl-keyword\">if</span> err := a.<span class=\"hl-entity\">b</span>(ctx, <span class=\"hl-constant\">5</span>); err != <span class=\"hl-constant\">nil</span> { <span class=\"hl-keyword\">return</span> err }"
        );
        assert_eq!(
            body("go", "func Name() error { return `a\n\"b` }"),
            "<span class=\"hl-keyword\">func</span> <span class=\"hl-entity\">Name</span>() <span class=\"hl-storage\">error</span> { <span class=\"hl-keyword\">return</span> <span class=\"hl-string\">`a\n&quot;b`</span> }"
        );
    }

    #[test]
    fn javascript_and_typescript() {
        assert_eq!(
            body("js", "const x = await fetch(`a ${b}`); // c"),
            "<span class=\"hl-keyword\">const</span> x = <span class=\"hl-keyword\">await</span> <span class=\"hl-entity\">fetch</span>(<span class=\"hl-string\">`a ${b}`</span>); <span class=\"hl-comment\">// c</span>"
        );
        assert_eq!(
            body("js", "p.then(f).catch(g); m.delete(k)"),
            "p.<span class=\"hl-entity\">then</span>(f).<span class=\"hl-entity\">catch</span>(g); m.<span class=\"hl-entity\">delete</span>(k)"
        );
        assert_eq!(
            body("ts", "interface A { n: number }\nthis.$el = undefined;"),
            "<span class=\"hl-keyword\">interface</span> <span class=\"hl-entity\">A</span> { n: <span class=\"hl-storage\">number</span> }\n<span class=\"hl-variable\">this</span>.$el = <span class=\"hl-constant\">undefined</span>;"
        );
    }

    #[test]
    fn java_c_cpp_and_csharp() {
        assert_eq!(
            body(
                "java",
                "@Override public void run() { System.out.println(\"x\"); }"
            ),
            "<span class=\"hl-entity\">@Override</span> <span class=\"hl-keyword\">public</span> <span class=\"hl-storage\">void</span> <span class=\"hl-entity\">run</span>() { <span class=\"hl-support\">System</span>.out.<span class=\"hl-entity\">println</span>(<span class=\"hl-string\">&quot;x&quot;</span>); }"
        );
        assert_eq!(
            body(
                "c",
                "#include <stdio.h>\nint main(void) { return 0; /* c */ }"
            ),
            "<span class=\"hl-keyword\">#include</span> &lt;stdio.h&gt;\n<span class=\"hl-storage\">int</span> <span class=\"hl-entity\">main</span>(<span class=\"hl-storage\">void</span>) { <span class=\"hl-keyword\">return</span> <span class=\"hl-constant\">0</span>; <span class=\"hl-comment\">/* c */</span> }"
        );
        assert_eq!(
            body("c++", "class A {}; std::vector<int> v = nullptr; // c"),
            "<span class=\"hl-keyword\">class</span> <span class=\"hl-entity\">A</span> {}; <span class=\"hl-support\">std</span>::<span class=\"hl-support\">vector</span>&lt;<span class=\"hl-storage\">int</span>&gt; v = <span class=\"hl-constant\">nullptr</span>; <span class=\"hl-comment\">// c</span>"
        );
        assert_eq!(
            body("csharp", "#region x\npublic class A { string s = null; }"),
            "<span class=\"hl-keyword\">#region</span> x\n<span class=\"hl-keyword\">public</span> <span class=\"hl-keyword\">class</span> <span class=\"hl-entity\">A</span> { <span class=\"hl-storage\">string</span> s = <span class=\"hl-constant\">null</span>; }"
        );
    }

    #[test]
    fn html_tags_attributes_references_and_comments() {
        assert_eq!(
            body("html", "<a href=\"x\">t &amp; u</a><!-- c --> <b"),
            "&lt;<span class=\"hl-keyword\">a</span> <span class=\"hl-entity\">href</span>=<span class=\"hl-string\">&quot;x&quot;</span>&gt;t <span class=\"hl-constant\">&amp;amp;</span> u&lt;/<span class=\"hl-keyword\">a</span>&gt;<span class=\"hl-comment\">&lt;!-- c --&gt;</span> &lt;<span class=\"hl-keyword\">b</span>"
        );
    }

    #[test]
    fn mattermost_aliases_and_any_case_reach_the_same_lexer() {
        let cases: &[(&str, &str, &str)] = &[
            ("sh", "bash", "if x; then y; fi"),
            ("shell", "bash", "if x; then y; fi"),
            ("zsh", "bash", "if x; then y; fi"),
            ("py", "python", "def f(): pass"),
            ("Python", "python", "def f(): pass"),
            ("rs", "rust", "fn f() {}"),
            ("yml", "yaml", "a: 1"),
            ("golang", "go", "func f() {}"),
            ("javascript", "js", "const a = 1"),
            ("tsx", "typescript", "const a = 1"),
            ("cpp", "c++", "class A {};"),
            ("cs", "csharp", "class A {}"),
            ("JSON", "json", "{\"a\": 1}"),
        ];
        for (alias, name, code) in cases {
            let html = highlight(alias, code);
            assert!(
                html.starts_with(&format!(
                    "<div class=\"code\"><span class=\"code-lang\">{alias}</span><pre><code>"
                )),
                "{html}"
            );
            assert_eq!(body(alias, code), body(name, code), "{alias}");
            assert!(body(alias, code).contains("<span class=\"hl-"), "{alias}");
        }
    }

    #[test]
    fn other_languages_go_to_syntect_or_stay_plain() {
        // Ruby has no lexer here: syntect's scopes, as classes.
        let ruby = body("ruby", "def a\nend\n");
        assert!(
            ruby.starts_with("<span class=\"hl-source hl-ruby\">"),
            "{ruby}"
        );
        assert!(ruby.contains(">def</span>"), "{ruby}");
        // A language nobody knows, and no language: escaped text, no spans.
        assert_eq!(
            highlight("klingon x", "<b>&\n"),
            "<div class=\"code\"><span class=\"code-lang\">klingon</span><pre><code>&lt;b&gt;&amp;\n</code></pre></div>"
        );
        assert_eq!(
            highlight("", "fn x\n"),
            "<div class=\"code\"><pre><code>fn x\n</code></pre></div>"
        );
        // Past the limit, even a known language stays plain.
        let long = "fn x() {}\n".repeat(2_001);
        assert_eq!(body("rust", &long), long);
    }

    /// Removes the `hl-` spans of `html` and decodes the escapes: what a reader sees.
    fn text_of(html: &str) -> String {
        let mut out = String::new();
        let mut rest = html;
        while let Some(at) = rest.find('<') {
            out.push_str(&rest[..at]);
            let end = rest[at..].find('>').expect("a tag closes") + at;
            let tag = &rest[at..=end];
            assert!(
                tag == "</span>"
                    || tag.starts_with("<span class=\"hl-")
                        && tag[16..tag.len() - 2]
                            .bytes()
                            .all(|b| b.is_ascii_lowercase()),
                "unexpected tag {tag}"
            );
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        assert!(!out.contains(['>', '"', '\'']), "raw markup in {out:?}");
        out.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    const LANGUAGES: &[&str] = &[
        "rust", "python", "sql", "bash", "json", "yaml", "go", "js", "java", "c", "cpp", "cs",
        "html",
    ];

    /// Every byte of hostile code comes out escaped, inside nothing but `hl-` spans, and
    /// nothing panics: unbalanced quotes and comments, unterminated raw strings and
    /// variables, NULs, invalid nesting, non-ASCII next to every delimiter, long lines.
    #[test]
    fn hostile_code_comes_out_whole_escaped_and_inert() {
        let mut inputs: Vec<String> = [
            "\"abc",
            "'",
            "'é",
            "'\\",
            "\"\\",
            "\"\\é\"",
            "/* never closed",
            "\"\"\"never closed",
            "r#\"never closed",
            "r###",
            "${never closed",
            "$",
            "<a href=\"x",
            "<!-- never closed",
            "&",
            "&#;",
            "<",
            "</",
            "#",
            "@",
            "\\",
            "nul\0in\"str\0ing\"\0",
            "</code></pre><script>alert(1)</script>",
            "<span class=\"x\">\"'&</span>",
            "fn ( ) ] } { [ \"' ` /* */ */ /* ",
            "é'é\"é`é#é$é@é/*é",
            "💥'💥'\"💥\\💥",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        inputs.push("\"".repeat(19_999));
        inputs.push("(".repeat(19_999));
        inputs.push("a".repeat(19_999));
        inputs.push("/*".repeat(9_999));
        inputs.push("'a".repeat(9_999));
        inputs.push("é".repeat(9_999));
        // Mixtures of the above's pieces, from a fixed pseudo-random sequence.
        const PIECES: &[&str] = &[
            "\"", "'", "`", "\\", "/*", "*/", "//", "#", "--", "$", "${", "{", "}", "<", ">", "&",
            ";", ":", "\n", " ", "\0", "é", "💥", "fn", "r#", "\"\"\"", "a", "1", "@x", "<!--",
            "-->", "=",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..400 {
            let mut s = String::new();
            for _ in 0..24 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push_str(PIECES[(seed % PIECES.len() as u64) as usize]);
            }
            inputs.push(s);
        }
        for lang in LANGUAGES {
            for input in &inputs {
                assert_eq!(&text_of(&body(lang, input)), input, "{lang}: {input:?}");
            }
        }
    }
}

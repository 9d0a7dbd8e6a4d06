//! Mattermost Markdown → an HTML fragment, as Mattermost's web app renders a message: GFM
//! (tables, strikethrough, task lists, autolinks) with every newline a hard break, raw HTML
//! shown as text, `@mentions`, `~channels`, `:emoji:` (the archive's custom ones first),
//! permalinks to the same server rewritten to local pages, the `=WxH` image size suffix,
//! and code blocks highlighted at build time.
//!
//! Depends on comrak (parsing), syntect (highlighting) and ammonia; never on the catalog: the
//! names it resolves come in [`Names`]. Invariant: the fragment is inert whatever the input.
//! Server HTML becomes text before rendering, link targets are checked against an allow-list
//! of schemes, and ammonia cleans the result again as a second line of defence.
//! Every link the fragment holds is relative to a page two levels below the site root
//! (`c/<channel>/<page>.html`), the only place messages are shown.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use comrak::nodes::{AstNode, NodeLink, NodeValue};
use comrak::{Arena, Options};

use super::escape;
use crate::model::emoji::system_emoji_text;

/// What a message's names resolve to; paths are relative to the site root.
#[derive(Debug, Default)]
pub struct Names {
    /// Lower-case username → (user page path, display name).
    pub users: HashMap<String, (String, String)>,
    /// Channel name → (team id, channel page path) for every archived channel of that name.
    pub channels: HashMap<String, Vec<(String, String)>>,
    /// Team name → team id, to read `/<team>/channels/<name>` links.
    pub teams: HashMap<String, String>,
    /// Post id → its page and anchor (`c/<channel>/<page>.html#p-<id>`).
    pub posts: HashMap<String, String>,
    /// Custom emoji name → path of its image.
    pub emojis: HashMap<String, String>,
    /// Show remote images inline (else they become links).
    pub remote_images: bool,
}

/// From the channel pages back to the site root.
pub const UP: &str = "../../";

/// Renders one message. `team_id` is the message's team, preferred for `~channel` names.
pub fn render(text: &str, names: &Names, team_id: &str) -> String {
    let arena = Arena::new();
    let options = options();
    let prepared = image_sizes(text);
    let root = comrak::parse_document(&arena, &prepared, &options);
    rewrite(&arena, root, names, team_id, 0);
    let mut html = String::new();
    comrak::format_html(root, &options, &mut html).expect("writing to a String");
    sanitizer().clean(&html).to_string()
}

/// Whether a message is made of emojis only (Mattermost shows it bigger).
pub fn all_emoji(text: &str, names: &Names) -> bool {
    let mut rest = text.trim();
    let mut any = false;
    while !rest.is_empty() {
        let Some(after) = rest.strip_prefix(':') else {
            return false;
        };
        let Some(end) = after.find(':') else {
            return false;
        };
        let name = &after[..end];
        if !names.emojis.contains_key(name) && system_emoji_text(name).is_none() {
            return false;
        }
        any = true;
        rest = after[end + 1..].trim_start();
    }
    any
}

fn options() -> Options<'static> {
    let mut options = Options::default();
    options.extension.table = true;
    options.extension.strikethrough = true;
    options.extension.autolink = true;
    options.extension.tasklist = true;
    options.render.hardbreaks = true;
    // Server HTML never reaches the output as HTML: `rewrite` turns it into text first, so
    // only nodes we create ourselves are raw.
    options.render.r#unsafe = true;
    options
}

/// Marks the Mattermost-only `![alt](url =WxH)` suffix as a title comrak keeps, read back
/// in `rewrite`.
fn image_sizes(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("![") {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("![") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let rewritten = (|| {
            let close = tail.find("](")?;
            let inner_end = tail[close..].find(')')? + close;
            let inner = &tail[close + 2..inner_end];
            let (url, size) = inner.rsplit_once(" =")?;
            let (w, h) = size.split_once('x').unwrap_or((size, ""));
            let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
            if url.trim().is_empty() || url.contains(' ') || w.is_empty() && h.is_empty() {
                return None;
            }
            if !digits(w) || !digits(h) || w.len() > 5 || h.len() > 5 {
                return None;
            }
            Some((
                format!("{}{} \"mbsize:{w}x{h}\")", &tail[..close + 2], url.trim()),
                inner_end + 1,
            ))
        })();
        match rewritten {
            Some((replacement, used)) => {
                out.push_str(&replacement);
                rest = &tail[used..];
            }
            None => {
                out.push_str("![");
                rest = &tail[2..];
            }
        }
    }
    out.push_str(rest);
    out.into()
}

fn node<'a>(arena: &'a Arena<'a>, value: NodeValue) -> &'a AstNode<'a> {
    arena.alloc(AstNode::from(value))
}

fn rewrite<'a>(
    arena: &'a Arena<'a>,
    root: &'a AstNode<'a>,
    names: &Names,
    team_id: &str,
    depth: u8,
) {
    let nodes: Vec<_> = root.descendants().collect();
    for n in nodes {
        let value = n.data.borrow().value.clone();
        match value {
            // Mattermost escapes an HTML block and still renders the Markdown in it: parse it
            // again with each line's leading `<` escaped, so no line opens an HTML block.
            NodeValue::HtmlBlock(block) if depth == 0 => {
                let text: String = block
                    .literal
                    .lines()
                    .map(|line| {
                        let indent = line.len() - line.trim_start_matches(' ').len();
                        if line[indent..].starts_with('<') {
                            format!("{}\\{}\n", &line[..indent], &line[indent..])
                        } else {
                            format!("{line}\n")
                        }
                    })
                    .collect();
                let sub = comrak::parse_document(arena, &text, &options());
                rewrite(arena, sub, names, team_id, depth + 1);
                for child in sub.children().collect::<Vec<_>>() {
                    n.insert_before(child);
                }
                n.detach();
            }
            NodeValue::HtmlBlock(block) => {
                let paragraph = node(arena, NodeValue::Paragraph);
                paragraph.append(node(
                    arena,
                    NodeValue::Text(block.literal.trim_end().to_owned().into()),
                ));
                n.insert_before(paragraph);
                n.detach();
            }
            NodeValue::HtmlInline(raw) => {
                n.data.borrow_mut().value = NodeValue::Text(raw.into());
            }
            NodeValue::Link(link) => match local_or_safe_url(&link.url, names) {
                Some(url) => {
                    n.data.borrow_mut().value = NodeValue::Link(Box::new(NodeLink {
                        url,
                        title: link.title.clone(),
                    }));
                }
                None => unwrap_node(n),
            },
            NodeValue::Image(link) => image(arena, n, &link, names),
            NodeValue::CodeBlock(code) => {
                let html = highlight(&code.info, &code.literal);
                let block = NodeValue::HtmlBlock(comrak::nodes::NodeHtmlBlock {
                    block_type: 0,
                    literal: html,
                });
                n.data.borrow_mut().value = block;
            }
            NodeValue::Text(text) if !inside_link(n) => {
                let pieces = inline_names(&text, names, team_id);
                if pieces.len() > 1 || matches!(pieces.first(), Some(Piece::Html(_))) {
                    for piece in pieces {
                        let value = match piece {
                            Piece::Text(t) => NodeValue::Text(t.into()),
                            Piece::Html(h) => NodeValue::HtmlInline(h),
                        };
                        n.insert_before(node(arena, value));
                    }
                    n.detach();
                }
            }
            _ => {}
        }
    }
}

fn inside_link(n: &AstNode<'_>) -> bool {
    let mut at = n.parent();
    while let Some(p) = at {
        if matches!(
            p.data.borrow().value,
            NodeValue::Link(_) | NodeValue::Image(_)
        ) {
            return true;
        }
        at = p.parent();
    }
    false
}

/// Replaces a node by its children (a link whose target we refuse keeps its text).
fn unwrap_node<'a>(n: &'a AstNode<'a>) {
    let children: Vec<_> = n.children().collect();
    for child in children {
        n.insert_before(child);
    }
    n.detach();
}

fn image<'a>(arena: &'a Arena<'a>, n: &'a AstNode<'a>, link: &NodeLink, names: &Names) {
    let alt: String = n
        .descendants()
        .filter_map(|d| match &d.data.borrow().value {
            NodeValue::Text(t) => Some(t.to_string()),
            _ => None,
        })
        .collect();
    let (width, height) = link
        .title
        .strip_prefix("mbsize:")
        .and_then(|s| s.split_once('x'))
        .unwrap_or(("", ""));
    let title = if link.title.starts_with("mbsize:") {
        ""
    } else {
        link.title.as_str()
    };
    let Some(url) = local_or_safe_url(&link.url, names) else {
        n.data.borrow_mut().value = NodeValue::Text(alt.into());
        for child in n.children().collect::<Vec<_>>() {
            child.detach();
        }
        return;
    };
    let html = if names.remote_images || !is_remote(&url) {
        let mut img = format!(
            "<img src=\"{}\" alt=\"{}\" loading=\"lazy\"",
            escape(&url),
            escape(&alt)
        );
        if !title.is_empty() {
            img.push_str(&format!(" title=\"{}\"", escape(title)));
        }
        if !width.is_empty() {
            img.push_str(&format!(" width=\"{width}\""));
        }
        // Mattermost caps inline image height at 500 px.
        if let Ok(h) = height.parse::<u32>() {
            img.push_str(&format!(" height=\"{}\"", h.min(500)));
        }
        img.push('>');
        img
    } else {
        let label = if alt.is_empty() { url.as_str() } else { &alt };
        format!(
            "<a class=\"remote-image\" href=\"{}\">🖼 {}</a>",
            escape(&url),
            escape(label)
        )
    };
    for child in n.children().collect::<Vec<_>>() {
        child.detach();
    }
    n.data.borrow_mut().value = NodeValue::HtmlInline(html);
    let _ = arena;
}

fn is_remote(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("//")
}

/// A link target we keep: a permalink or channel link rewritten to the local page, or a URL
/// with a harmless scheme. Scheme-less `www.` links get `http://` as Mattermost does.
fn local_or_safe_url(url: &str, names: &Names) -> Option<String> {
    let trimmed = url.trim();
    if let Some(local) = local_page(trimmed, names) {
        return Some(local);
    }
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:")
    {
        return Some(trimmed.to_owned());
    }
    if lower.starts_with("www.") {
        return Some(format!("http://{trimmed}"));
    }
    // Anything else with a scheme (javascript:, data:, vbscript:, file:…) is refused; so are
    // relative links, which would point into the site instead of the server they came from.
    None
}

/// `…/<team>/pl/<post id>` and `…/<team>/channels/<name>` on any host → the local page.
fn local_page(url: &str, names: &Names) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let mut parts = path.rsplit('/');
    let last = parts.next()?;
    let kind = parts.next()?;
    let team = parts.next()?;
    match kind {
        "pl" => names.posts.get(last).map(|p| format!("{UP}{p}")),
        "channels" => {
            let team_id = names.teams.get(team)?;
            names
                .channels
                .get(last)?
                .iter()
                .find(|(t, _)| t == team_id)
                .map(|(_, p)| format!("{UP}{p}"))
        }
        _ => None,
    }
}

enum Piece {
    Text(String),
    Html(String),
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}

/// Splits a text node at `@mentions`, `~channels` and `:emoji:` that resolve; anything that
/// does not resolve stays text.
fn inline_names(text: &str, names: &Names, team_id: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut plain = String::new();
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < text.len() {
        let c = bytes[i];
        let prev_word = text[..i]
            .chars()
            .next_back()
            .is_some_and(|p| p.is_alphanumeric());
        let found = match c {
            b'@' | b'~' if !prev_word => {
                let rest = &text[i + 1..];
                let mut len = rest.find(|c: char| !name_char(c)).unwrap_or(rest.len());
                while len > 0 && rest[..len].ends_with('.') {
                    len -= 1;
                }
                let name = &rest[..len];
                let html = if name.is_empty() {
                    None
                } else if c == b'@' {
                    mention(name, names)
                } else {
                    channel_link(name, names, team_id)
                };
                html.map(|h| (h, 1 + len))
            }
            b':' => {
                let rest = &text[i + 1..];
                rest.find(':')
                    .filter(|&end| {
                        end > 0
                            && rest[..end]
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"_+-".contains(&b))
                    })
                    .and_then(|end| emoji(&rest[..end], names).map(|h| (h, end + 2)))
            }
            _ => None,
        };
        match found {
            Some((html, used)) => {
                if !plain.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut plain)));
                }
                out.push(Piece::Html(html));
                i += used;
            }
            None => {
                let ch = text[i..].chars().next().expect("in bounds");
                plain.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    if !plain.is_empty() {
        out.push(Piece::Text(plain));
    }
    out
}

fn mention(name: &str, names: &Names) -> Option<String> {
    let lower = name.to_lowercase();
    if matches!(lower.as_str(), "channel" | "all" | "here") {
        return Some(format!(
            "<span class=\"mention mention-all\">@{}</span>",
            escape(name)
        ));
    }
    let (path, display) = names.users.get(&lower)?;
    Some(format!(
        "<a class=\"mention\" href=\"{UP}{}\" title=\"{}\">@{}</a>",
        escape(path),
        escape(display),
        escape(name)
    ))
}

fn channel_link(name: &str, names: &Names, team_id: &str) -> Option<String> {
    let candidates = names.channels.get(name)?;
    let (_, path) = candidates
        .iter()
        .find(|(t, _)| t == team_id)
        .or_else(|| candidates.first())?;
    Some(format!(
        "<a class=\"channel-link\" href=\"{UP}{}\">~{}</a>",
        escape(path),
        escape(name)
    ))
}

/// A custom emoji of the archive (its image), else a standard shortcode (the character).
pub fn emoji(name: &str, names: &Names) -> Option<String> {
    if let Some(path) = names.emojis.get(name) {
        return Some(format!(
            "<img class=\"emoji\" src=\"{UP}{}\" alt=\":{}:\" title=\":{}:\">",
            escape(path),
            escape(name),
            escape(name)
        ));
    }
    let text = system_emoji_text(name)?;
    Some(format!(
        "<span class=\"emoji\" title=\":{}:\">{}</span>",
        escape(name),
        text
    ))
}

/// Code longer than this is shown unhighlighted: highlighting cost grows with it and a huge
/// paste gains little from colour.
const HIGHLIGHT_LIMIT: usize = 20_000;

/// Mattermost's code-block language aliases that the default syntax set does not know.
fn language(info: &str) -> &str {
    let token = info.split_whitespace().next().unwrap_or("");
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

fn syntaxes() -> &'static syntect::parsing::SyntaxSet {
    static SET: OnceLock<syntect::parsing::SyntaxSet> = OnceLock::new();
    SET.get_or_init(syntect::parsing::SyntaxSet::load_defaults_newlines)
}

/// A code block as `<pre><code>` with syntect's class spans (colours come from the site's
/// CSS, so light and dark themes both work). `latex`/`tex` stay code, labelled.
fn highlight(info: &str, code: &str) -> String {
    let lang = language(info);
    let label = if lang.is_empty() {
        String::new()
    } else {
        format!(
            "<span class=\"code-lang\">{}</span>",
            escape(info.split_whitespace().next().unwrap_or(""))
        )
    };
    let plain = || {
        format!(
            "<div class=\"code\">{label}<pre><code>{}</code></pre></div>",
            escape(code)
        )
    };
    if lang.is_empty() || code.len() > HIGHLIGHT_LIMIT {
        return plain();
    }
    let set = syntaxes();
    let Some(syntax) = set.find_syntax_by_token(lang) else {
        return plain();
    };
    let mut generator = syntect::html::ClassedHTMLGenerator::new_with_class_style(
        syntax,
        set,
        syntect::html::ClassStyle::SpacedPrefixed { prefix: "hl-" },
    );
    for line in syntect::util::LinesWithEndings::from(code) {
        if generator
            .parse_html_for_line_which_includes_newline(line)
            .is_err()
        {
            return plain();
        }
    }
    format!(
        "<div class=\"code\">{label}<pre><code>{}</code></pre></div>",
        generator.finalize()
    )
}

/// The second line of defence: only the tags, attributes and schemes this renderer emits.
fn sanitizer() -> &'static ammonia::Builder<'static> {
    static BUILDER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    BUILDER.get_or_init(|| {
        let mut b = ammonia::Builder::default();
        b.add_tags(["input", "span", "div", "img"]);
        b.add_generic_attributes(["class", "title"]);
        b.add_tag_attributes("input", ["type", "checked", "disabled"]);
        b.add_tag_attributes("img", ["src", "alt", "width", "height", "loading"]);
        b.add_tag_attributes("th", ["align"]);
        b.add_tag_attributes("td", ["align"]);
        b.url_schemes(HashSet::from(["http", "https", "mailto"]));
        b.link_rel(Some("noopener noreferrer"));
        b
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        let mut n = Names::default();
        n.users.insert(
            "alice".into(),
            ("u/ualice.html".into(), "Alice Archer".into()),
        );
        n.users
            .insert("bob.b".into(), ("u/ubob.html".into(), "Bob".into()));
        n.channels.insert(
            "town-square".into(),
            vec![
                ("tother".into(), "c/cother/index.html".into()),
                ("teng".into(), "c/ctown/index.html".into()),
            ],
        );
        n.teams.insert("eng".into(), "teng".into());
        n.posts.insert(
            "p1234567890123456789012345".into(),
            "c/ctown/2024-03.html#p-p1234567890123456789012345".into(),
        );
        n.emojis.insert("partyparrot".into(), "e/emo1.gif".into());
        n
    }

    fn md(text: &str) -> String {
        render(text, &names(), "teng")
    }

    #[test]
    fn gfm_tables_strikethrough_tasks_and_hard_breaks() {
        assert_eq!(
            md("| a | b |\n|:--|--:|\n| 1 | 2 |"),
            "<table>\n<thead>\n<tr>\n<th align=\"left\">a</th>\n<th align=\"right\">b</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n<td align=\"left\">1</td>\n<td align=\"right\">2</td>\n</tr>\n</tbody>\n</table>\n"
        );
        assert_eq!(md("~~gone~~"), "<p><del>gone</del></p>\n");
        assert_eq!(md("one\ntwo"), "<p>one<br>\ntwo</p>\n");
        assert_eq!(
            md("- [x] done\n- [ ] open"),
            "<ul>\n<li><input type=\"checkbox\" checked=\"\" disabled=\"\"> done</li>\n<li><input type=\"checkbox\" disabled=\"\"> open</li>\n</ul>\n"
        );
    }

    #[test]
    fn autolinks_get_rel_and_www_gets_a_scheme() {
        assert_eq!(
            md("see https://example.com/x"),
            "<p>see <a href=\"https://example.com/x\" rel=\"noopener noreferrer\">https://example.com/x</a></p>\n"
        );
        assert_eq!(
            md("[w](www.example.com)"),
            "<p><a href=\"http://www.example.com\" rel=\"noopener noreferrer\">w</a></p>\n"
        );
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        assert_eq!(
            md("<script>alert(1)</script>"),
            "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
        );
        assert_eq!(
            md("hi <b onclick=\"x()\">bold</b>"),
            "<p>hi &lt;b onclick=\"x()\"&gt;bold&lt;/b&gt;</p>\n"
        );
    }

    #[test]
    fn dangerous_link_targets_keep_only_their_text() {
        assert_eq!(md("[click](javascript:alert(1))"), "<p>click</p>\n");
        assert_eq!(md("[x](data:text/html;base64,PHNjcmlwdD4=)"), "<p>x</p>\n");
        assert_eq!(md("[x](vbscript:msgbox)"), "<p>x</p>\n");
        assert_eq!(md("![i](javascript:alert(1))"), "<p>i</p>\n");
    }

    #[test]
    fn mentions_link_to_user_pages_and_channel_wide_ones_are_marked() {
        assert_eq!(
            md("hi @alice and @Bob.B. @nobody"),
            "<p>hi <a class=\"mention\" href=\"../../u/ualice.html\" title=\"Alice Archer\" rel=\"noopener noreferrer\">@alice</a> and <a class=\"mention\" href=\"../../u/ubob.html\" title=\"Bob\" rel=\"noopener noreferrer\">@Bob.B</a>. @nobody</p>\n"
        );
        assert_eq!(
            md("@here now"),
            "<p><span class=\"mention mention-all\">@here</span> now</p>\n"
        );
        // Not a mention: an e-mail address, and text inside code.
        assert!(!md("mail bob@alice.org").contains("class=\"mention\""));
        assert_eq!(md("`@alice`"), "<p><code>@alice</code></p>\n");
    }

    #[test]
    fn channel_names_prefer_the_posts_team() {
        assert_eq!(
            md("go to ~town-square."),
            "<p>go to <a class=\"channel-link\" href=\"../../c/ctown/index.html\" rel=\"noopener noreferrer\">~town-square</a>.</p>\n"
        );
    }

    #[test]
    fn permalinks_and_channel_urls_of_any_host_become_local_pages() {
        assert_eq!(
            md("https://chat.example.com/eng/pl/p1234567890123456789012345"),
            "<p><a href=\"../../c/ctown/2024-03.html#p-p1234567890123456789012345\" rel=\"noopener noreferrer\">https://chat.example.com/eng/pl/p1234567890123456789012345</a></p>\n"
        );
        assert_eq!(
            md("[sq](https://chat.example.com/eng/channels/town-square)"),
            "<p><a href=\"../../c/ctown/index.html\" rel=\"noopener noreferrer\">sq</a></p>\n"
        );
        // An unknown post stays a link to the server.
        assert!(
            md("https://x.example/eng/pl/unknown")
                .contains("href=\"https://x.example/eng/pl/unknown\"")
        );
    }

    #[test]
    fn emoji_shortcodes_custom_first() {
        assert_eq!(
            md("yay :partyparrot: :tada: :nope:"),
            "<p>yay <img class=\"emoji\" src=\"../../e/emo1.gif\" alt=\":partyparrot:\" title=\":partyparrot:\"> <span class=\"emoji\" title=\":tada:\">🎉</span> :nope:</p>\n"
        );
        assert!(all_emoji(":tada: :partyparrot:", &names()));
        assert!(!all_emoji(":tada: hi", &names()));
        assert!(!all_emoji("", &names()));
    }

    #[test]
    fn remote_images_become_links_unless_asked_and_keep_their_size() {
        assert_eq!(
            md("![cat](https://img.example/cat.png =200x900)"),
            "<p><a class=\"remote-image\" href=\"https://img.example/cat.png\" rel=\"noopener noreferrer\">🖼 cat</a></p>\n"
        );
        let mut n = names();
        n.remote_images = true;
        assert_eq!(
            render("![cat](https://img.example/cat.png =200x900)", &n, "teng"),
            "<p><img src=\"https://img.example/cat.png\" alt=\"cat\" loading=\"lazy\" width=\"200\" height=\"500\"></p>\n"
        );
        assert_eq!(
            render("![w](https://img.example/w.png =120)", &n, "teng"),
            "<p><img src=\"https://img.example/w.png\" alt=\"w\" loading=\"lazy\" width=\"120\"></p>\n"
        );
    }

    #[test]
    fn code_blocks_are_highlighted_with_classes_and_latex_stays_code() {
        let html = md("```rust\nfn main() {}\n```");
        assert!(
            html.starts_with(
                "<div class=\"code\"><span class=\"code-lang\">rust</span><pre><code>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"hl-storage hl-type hl-function hl-rust\">fn</span>"),
            "{html}"
        );
        // LaTeX is not typeset: it stays code, labelled, its text escaped.
        let latex = md("```latex\n\\frac{<a>}{2}\n```");
        assert!(
            latex.starts_with(
                "<div class=\"code\"><span class=\"code-lang\">latex</span><pre><code>"
            ),
            "{latex}"
        );
        assert!(
            latex.contains("&lt;a&gt;") && !latex.contains("<a>"),
            "{latex}"
        );
        assert_eq!(
            md("    <b>indented</b>"),
            "<div class=\"code\"><pre><code>&lt;b&gt;indented&lt;/b&gt;\n</code></pre></div>\n"
        );
    }

    #[test]
    fn a_line_starting_with_html_still_renders_its_markdown() {
        assert_eq!(
            md("<script>x</script> and **bold** [l](https://a.example)\n<div>\n\n*it*"),
            "<p>&lt;script&gt;x&lt;/script&gt; and <strong>bold</strong> <a href=\"https://a.example\" rel=\"noopener noreferrer\">l</a></p>\n<p>&lt;div&gt;</p>\n<p><em>it</em></p>\n"
        );
    }

    #[test]
    fn hostile_markup_never_yields_active_content() {
        for text in [
            "<img src=x onerror=alert(1)>",
            "[a](javascript&#58;alert(1))",
            "[a](JaVaScRiPt:alert(1))",
            "<a href=\"javascript:alert(1)\">x</a>",
            "```html\n</code></pre><script>alert(1)</script>\n```",
            "![x](https://a\" onerror=\"alert(1) =1x1)",
            "<svg onload=alert(1)>",
            "<iframe src=https://evil.example>",
            ":tada\" onmouseover=\"alert(1):",
        ] {
            let html = md(text).to_lowercase();
            // Text `<` is escaped, so every `<` left opens a tag this renderer made.
            for tag in html
                .split('<')
                .skip(1)
                .map(|t| t.split('>').next().unwrap_or(""))
            {
                let name = tag.split([' ', '/']).next().unwrap_or("");
                assert!(
                    !["script", "iframe", "svg", "object", "embed", "style"].contains(&name),
                    "{text:?} gave {html}"
                );
                assert!(
                    !tag.contains("javascript:") && !tag.contains(" on"),
                    "{text:?} gave tag <{tag}> in {html}"
                );
            }
        }
    }
}

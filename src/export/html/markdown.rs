//! Mattermost Markdown → an HTML fragment, as Mattermost's web app renders a message: GFM
//! (tables, strikethrough, task lists, autolinks) with every newline a hard break, raw HTML
//! shown as text, `@mentions`, `~channels`, `:emoji:` (the archive's custom ones first),
//! permalinks to the same server rewritten to local pages, the `=WxH` image size suffix,
//! and code blocks highlighted at build time.
//!
//! Depends on comrak (parsing) and `super::highlight` (code blocks); never on the catalog:
//! the names it resolves come in [`Names`]. Invariant: the fragment is inert whatever the input, by
//! construction, at the level of comrak's tree: every raw HTML node of the message (block or
//! inline) becomes text before rendering (Mattermost shows raw HTML as text), every link and
//! image target passes an allow-list of schemes (`http`, `https`, `mailto`) or is a local page
//! we build, and every other node is one comrak writes with its text and attributes escaped
//! or one [`rewrite`] builds from escaped strings. No HTML sanitizer re-parses the result: the
//! old second pass (ammonia) could only reformat it, which [`settle`] does in one scan (the
//! serialization a browser's parser gives, plus `rel="noopener noreferrer"` on links); a
//! unit test renders the generator's messages and hostile ones both ways and finds the
//! same bytes.
//! Every link the fragment holds is relative to a page two levels below the site root
//! (`c/<channel>/<page>.html`), the only place messages are shown.

use std::collections::HashMap;

use comrak::nodes::{AstNode, NodeLink, NodeValue};
use comrak::{Arena, Options};

use super::escape;
use crate::model::emoji::system_emoji_text;

/// What a message's names resolve to; paths are relative to the site root.
#[derive(Clone, Debug, Default)]
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
    let html = comrak_html(text, names, team_id);
    let mut out = String::with_capacity(html.len() + 64);
    settle(&html, &mut out);
    out
}

/// The message as comrak writes the rewritten tree, before [`settle`].
fn comrak_html(text: &str, names: &Names, team_id: &str) -> String {
    let arena = Arena::new();
    let options = options();
    let prepared = image_sizes(text);
    let root = comrak::parse_document(&arena, &prepared, &options);
    rewrite(&arena, root, names, team_id, 0);
    let mut html = String::with_capacity(prepared.len() * 2);
    comrak::format_html(root, &options, &mut html).expect("writing to a String");
    html
}

/// Void elements: html5ever writes them without the `/` of `<br />`.
const VOID: [&str; 5] = ["br", "hr", "img", "input", "wbr"];

/// Writes comrak's (and our own) well-formed HTML to `out` as html5ever serializes it after
/// parsing, which is what the sanitizer pass used to leave: in text `&quot;` and `&#39;`
/// written as the characters (html5ever escapes only `& < >` and U+00A0 there), in
/// attribute values `&#39;`/`&#x27;` as `'` (it escapes `& " < >` and U+00A0), void
/// elements without `/`, every `<a>` with `rel="noopener noreferrer"` last, line ends as
/// `\n` and NUL left out of text (U+FFFD in attributes), as a parser reads them. `html` holds no
/// `<` or `>` outside tags (comrak, `super::highlight` and [`escape`] escape them), so a tag
/// runs from `<` to the next `>`. It adds nothing active: it only rewrites escapes and the void
/// marker, and adds one fixed attribute.
fn settle(html: &str, out: &mut String) {
    let bytes = html.as_bytes();
    let mut i = 0;
    let mut plain = 0;
    let flush = |out: &mut String, from: usize, to: usize| out.push_str(&html[from..to]);
    while i < bytes.len() {
        match bytes[i] {
            b'<' => {
                flush(out, plain, i);
                let end = html[i..].find('>').map_or(html.len(), |e| i + e);
                let tag = &html[i + 1..end];
                if tag.starts_with('/') {
                    out.push('<');
                    out.push_str(tag);
                } else {
                    let name_end = tag
                        .find(|c: char| c.is_ascii_whitespace() || c == '/')
                        .unwrap_or(tag.len());
                    let name = &tag[..name_end];
                    let mut body = &tag[name_end..];
                    if VOID.contains(&name)
                        && let Some(b) = body.strip_suffix('/')
                    {
                        body = b.trim_end();
                    }
                    out.push('<');
                    out.push_str(name);
                    attributes(body, out);
                    if name == "a" {
                        out.push_str(" rel=\"noopener noreferrer\"");
                    }
                }
                out.push('>');
                i = end + 1;
                plain = i;
            }
            b'&' => {
                let rest = &html[i..];
                let (with, len) = if rest.starts_with("&quot;") {
                    ("\"", 6)
                } else if rest.starts_with("&#39;") {
                    ("'", 5)
                } else if rest.starts_with("&#x27;") {
                    ("'", 6)
                } else {
                    i += 1;
                    continue;
                };
                flush(out, plain, i);
                out.push_str(with);
                i += len;
                plain = i;
            }
            b'\r' => {
                flush(out, plain, i);
                out.push('\n');
                i += if bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                plain = i;
            }
            0 => {
                flush(out, plain, i);
                i += 1;
                plain = i;
            }
            0xC2 if bytes.get(i + 1) == Some(&0xA0) => {
                flush(out, plain, i);
                out.push_str("&nbsp;");
                i += 2;
                plain = i;
            }
            _ => i += 1,
        }
    }
    flush(out, plain, bytes.len());
}

/// A tag's attributes (from after its name, each ` name="value"` as comrak,
/// `super::highlight` and [`escape`] write them) as html5ever writes them (see [`settle`]).
/// An `href` or `src` that is not a relative URL and that the `url` crate cannot parse is
/// left out, as browsers cannot follow it (the old sanitizer's rule, kept so pages stay the same).
fn attributes(body: &str, out: &mut String) {
    let mut rest = body;
    while let Some((name, after)) = rest.split_once("=\"") {
        let Some((value, next)) = after.split_once('"') else {
            break;
        };
        let name = name.trim_start();
        rest = next;
        if (name == "href" || name == "src") && !followable(value) {
            continue;
        }
        out.push(' ');
        out.push_str(name);
        out.push_str("=\"");
        attribute_value(value, out);
        out.push('"');
    }
}

/// Whether an escaped `href`/`src` value is a relative URL or one the `url` crate parses.
fn followable(value: &str) -> bool {
    let url = value
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    match url::Url::parse(&url) {
        Ok(_) | Err(url::ParseError::RelativeUrlWithoutBase) => true,
        Err(_) => false,
    }
}

/// An attribute's escaped value as html5ever writes it: see [`settle`].
fn attribute_value(value: &str, out: &mut String) {
    let mut rest = value;
    while let Some(at) = rest.find(['&', '\r', '\0', '\u{a0}']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (with, len) = if tail.starts_with("&#39;") {
            ("'", 5)
        } else if tail.starts_with("&#x27;") {
            ("'", 6)
        } else if tail.starts_with("\r\n") {
            ("\n", 2)
        } else if tail.starts_with('\r') {
            ("\n", 1)
        } else if tail.starts_with('\0') {
            ("\u{fffd}", 1)
        } else if tail.starts_with('\u{a0}') {
            ("&nbsp;", 2)
        } else {
            ("&", 1)
        };
        out.push_str(with);
        rest = &tail[len..];
    }
    out.push_str(rest);
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
                let html = super::highlight::highlight(&code.info, &code.literal);
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
    } else if inside_link(n) {
        // A link may not hold a link: the image is named inside the one it is in (as a
        // link in a link, browsers closed the outer one, leaving it empty).
        let label = if alt.is_empty() { url.as_str() } else { &alt };
        format!("<span class=\"remote-image\">🖼 {}</span>", escape(label))
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
            html.contains(
                "<span class=\"hl-keyword\">fn</span> <span class=\"hl-entity\">main</span>()"
            ),
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
    fn a_remote_image_inside_a_link_is_named_in_it() {
        assert_eq!(
            md("[![img](https://a.example/i.png)](https://b.example)"),
            "<p><a href=\"https://b.example\" rel=\"noopener noreferrer\"><span class=\"remote-image\">🖼 img</span></a></p>\n"
        );
    }

    /// Messages that try to get active content through: raw tags, `javascript:`/`data:`
    /// targets in every spelling, attribute injection through titles, sizes and names,
    /// entities that decode to markup.
    const HOSTILE: &[&str] = &[
        "<img src=x onerror=alert(1)>",
        "[a](javascript&#58;alert(1))",
        "[a](JaVaScRiPt:alert(1))",
        "<a href=\"javascript:alert(1)\">x</a>",
        "```html\n</code></pre><script>alert(1)</script>\n```",
        "![x](https://a\" onerror=\"alert(1) =1x1)",
        "<svg onload=alert(1)>",
        "<iframe src=https://evil.example>",
        ":tada\" onmouseover=\"alert(1):",
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
        "x <script>alert(1)</script> y",
        "<javascript:alert(1)>",
        "<data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==>",
        "[x](<javascript:alert(1)>)",
        "[x]( javascript:alert(1) )",
        "[x](&#106;avascript:alert(1))",
        "[x](&#x6A;avascript&colon;alert(1))",
        "[x](java\nscript:alert(1))",
        "[x](data:text/html,<script>alert(1)</script>)",
        "![x](data:image/svg+xml,<svg onload=alert(1)>)",
        "![x](javascript:alert(1) =10x10)",
        "[x](vbscript:msgbox(1))",
        "[x](file:///etc/passwd)",
        "[ref]\n\n[ref]: javascript:alert(1)",
        "[x](https://a.example \"t\\\" onclick=\\\"alert(1)\")",
        "[x](https://a.example 't\\' onmouseover=alert(1)')",
        "[x](https://a.example/\"onmouseover=\"alert(1))",
        "![x\" onerror=\"alert(1)](https://a.example/i.png)",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&#60;img src=x onerror=alert(1)&#62;",
        "`<script>alert(1)</script>`",
        "<!-- <script>alert(1)</script> -->",
        "<style>body{display:none}</style>",
        "<object data=x></object><embed src=x>",
        "<a href=\"https://a.example\" onclick=\"alert(1)\">x</a>",
        "<div style=\"background:url(javascript:alert(1))\">x</div>",
        "@alice\" onclick=\"alert(1)",
        "~town-square\"><script>alert(1)</script>",
        "```js\" onclick=\"alert(1)\nx\n```",
        "https://a.example/<script>alert(1)</script>",
        "www.a.example/\"onmouseover=\"alert(1)",
        "mailto:a@b.example?subject=\"><script>",
        "[x](https://chat.example.com/eng/pl/\"><script>alert(1)</script>)",
    ];

    /// Markup whose serialization the old pass changed: quotes and apostrophes in text
    /// and attributes, no-break spaces, line ends, NUL, void elements, nested links.
    const ODD: &[&str] = &[
        "it's \"quoted\" & <b>",
        "a\u{a0}b `c\u{a0}d` [e\u{a0}f](https://a.example/\u{a0} \"t\u{a0}'\")",
        "one\r\ntwo\rthree\n\n```\r\nx\r\n```",
        "nul\u{0}here [x\u{0}](https://a.example \"t\u{0}\")",
        "---\n\n- [x] done\n- [ ] open\n\n1. one\n2. two\n\n3. three",
        "[a 'q'](https://a.example/it's \"it's\")",
        "![it's](https://a.example/i'm.png \"it's\")",
        "[see https://a.example](https://b.example)",
        "| a'b | \"c\" |\n|---|---|\n| 1 | 2 |",
        "```python\nprint('it\\'s', \"q\")\n```",
        "@quote said :tada: ~town-square",
        "# H1\n## H2\n> quote\n\n***bold it*** ~~del~~ `code`",
        "a  \nb\\\nc",
        "<br/> <br /> <hr>",
        "foo@bar.example and www.example.com/a?b=1&c=2",
    ];

    #[test]
    fn hostile_markup_never_yields_active_content() {
        // Tags and attributes a message may hold; every attribute quoted with `"`.
        const TAGS: &[&str] = &[
            "p",
            "a",
            "img",
            "span",
            "div",
            "pre",
            "code",
            "br",
            "hr",
            "em",
            "strong",
            "del",
            "ul",
            "ol",
            "li",
            "input",
            "blockquote",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "table",
            "thead",
            "tbody",
            "tr",
            "th",
            "td",
        ];
        const ATTRIBUTES: &[&str] = &[
            "href", "src", "alt", "title", "class", "width", "height", "loading", "rel", "type",
            "checked", "disabled", "align", "start",
        ];
        for text in HOSTILE {
            let html = md(text);
            // Text `<` is escaped, so every `<` left opens a tag this renderer made.
            for tag in html
                .split('<')
                .skip(1)
                .map(|t| t.split('>').next().expect("split yields one"))
                .filter(|t| !t.starts_with('/'))
            {
                let (name, mut rest) = tag.split_at(tag.find(' ').unwrap_or(tag.len()));
                assert!(TAGS.contains(&name), "{text:?} gave <{tag}> in {html}");
                while !rest.is_empty() {
                    let (attr, after) = rest[1..]
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("{text:?}: <{tag}> in {html}"));
                    let (value, after) = after
                        .split_once('"')
                        .unwrap_or_else(|| panic!("{text:?}: <{tag}> in {html}"));
                    assert!(ATTRIBUTES.contains(&attr), "{text:?} gave <{tag}>");
                    if attr == "href" || attr == "src" {
                        let v = value.to_ascii_lowercase();
                        assert!(
                            ["https://", "http://", "mailto:", "../../"]
                                .iter()
                                .any(|ok| v.starts_with(ok)),
                            "{text:?} gave <{tag}>"
                        );
                    }
                    rest = after;
                }
            }
        }
    }

    /// The sanitizer pass the renderer had before [`settle`] (ammonia, allowing the tags,
    /// attributes and schemes this renderer emits): the reference [`settle`] must match.
    fn old_sanitizer() -> &'static ammonia::Builder<'static> {
        static BUILDER: std::sync::OnceLock<ammonia::Builder<'static>> = std::sync::OnceLock::new();
        BUILDER.get_or_init(|| {
            let mut b = ammonia::Builder::default();
            b.add_tags(["input", "span", "div", "img"]);
            b.add_generic_attributes(["class", "title"]);
            b.add_tag_attributes("input", ["type", "checked", "disabled"]);
            b.add_tag_attributes("img", ["src", "alt", "width", "height", "loading"]);
            b.add_tag_attributes("th", ["align"]);
            b.add_tag_attributes("td", ["align"]);
            b.url_schemes(std::collections::HashSet::from(["http", "https", "mailto"]));
            b.link_rel(Some("noopener noreferrer"));
            b
        })
    }

    /// Messages shaped like the bench generator's (src/mock/generate/shape.rs; `export` may
    /// not import `mock`): code in its eight languages, lists, task lists, tables, quotes,
    /// headings, mentions.
    const SHAPED: &[&str] = &[
        "@alice see this\n```rust\nfn a_b(x: u32) -> Result<u32, Error> {\n    let a = x.checked_mul(3).ok_or(Error::b)?;\n    Ok(a) }\n```",
        "try\n```python\ndef a_b(items):\n    a = [i for i in items if i.b > 5]\n    return len(a)\n```",
        "q\n```sql\nSELECT a, count(*) FROM b WHERE id > 5 GROUP BY a ORDER BY 2 DESC;\n```",
        "run\n```bash\na --b 5 | grep -v a > /tmp/b.log\n```",
        "cfg\n```json\n{\"a\": 5, \"b\": \"a-b\"}\n```\n```yaml\na:\n  b: 5\n```",
        "go\n```go\nif err := a.b(ctx, 5); err != nil { return err }\n```\n```text\na b 5 ERROR a: b failed after 5 ms\n```",
        "steps:\n- one thing\n- another\n1. first\n2. second\n- [x] done\n- [ ] open",
        "numbers\n| word | n | m |\n|---|---|---|\n| a | 1 | 2 |\n| b | 3 | 4 |",
        "> quoted, isn't it?\n\nthe answer's \"yes\"\n\n### heading\n\nmore & more <stuff>",
        "@here @channel ~town-square :tada: :partyparrot: hi @bob.b.",
    ];

    /// The output is what the old sanitizer pass made of the same HTML, byte for byte, for
    /// messages shaped like the generator's and for hostile and odd ones: so dropping the
    /// second parse changes no page (the 200,000-post bench site compared whole: see
    /// docs/performance.md). ammonia is only a dev-dependency, kept for this comparison.
    #[test]
    fn settle_gives_what_the_old_sanitizer_gave() {
        let texts: Vec<&str> = SHAPED.iter().chain(HOSTILE).chain(ODD).copied().collect();
        let mut names = names();
        names.users.insert(
            "quote".into(),
            ("u/q.html".into(), "O'Brien \"Q\" <b>&\u{a0}".into()),
        );
        for remote in [false, true] {
            names.remote_images = remote;
            for text in &texts {
                let html = comrak_html(text, &names, "teng");
                assert_eq!(
                    render(text, &names, "teng"),
                    old_sanitizer().clean(&html).to_string(),
                    "{text:?}"
                );
            }
        }
    }
}

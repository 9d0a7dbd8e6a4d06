//! Re-serialise JSON text exactly as Python 3 writes `json.dump(json.load(f), out)`.
//!
//! The Python tool stores every object it got from Mattermost with `json.dump` and its
//! defaults, so a byte-identical export has to reproduce that encoder, not ours:
//! separators `", "` / `": "`, no whitespace otherwise, `ensure_ascii=True` (every UTF-16
//! code unit outside `0x20..=0x7e` as `\uxxxx`, lowercase hex), ints verbatim, floats as
//! Python's `repr(float)`, and `NaN` / `Infinity` / `-Infinity` for non-finite floats.
//!
//! Invariants of the transcoder:
//! - single pass over the input text, no DOM and no per-value allocation: output goes
//!   through a fixed stack buffer; only the nesting stack grows (one byte per open
//!   container), so deeply nested input cannot overflow the call stack;
//! - object members keep their input order, duplicate keys included: Mattermost (Go's
//!   encoder) never sends duplicates, and streaming cannot merge them as Python's dict would
//!   (first key's position, last value), so they are kept as they come;
//! - the output is always ASCII;
//! - input Python's `json.load` rejects is rejected with the byte offset and what was
//!   expected there. The only liberties: Python also accepts `NaN`, `Infinity` and
//!   `-Infinity` (so do we), and Python refuses ints over 4300 digits and nesting deeper
//!   than its recursion limit (we do not; Mattermost sends neither);
//! - on error a prefix of the output may already have been written: callers write through
//!   a [`super::sink::Sink`], which discards failed entries.
//!
//! May import: nothing of the crate (std only); pure, tested on literals and against
//! Python's own output.

use std::fmt::Write as _;
use std::io::{self, Write};

/// Why the input could not be transcoded.
#[derive(Debug, thiserror::Error)]
pub enum PyJsonError {
    /// The input is not JSON as Python's `json.load` reads it.
    #[error("invalid JSON{}: expected {expected} at byte {offset}", item_label(*.item))]
    Syntax {
        /// Index of the item for [`write_python_json_array`], `None` for a single document.
        item: Option<usize>,
        /// Byte offset into the (item's) input text.
        offset: usize,
        /// What the parser needed at `offset`.
        expected: &'static str,
    },
    /// Writing the output failed.
    #[error("writing JSON output failed")]
    Io(#[from] io::Error),
}

fn item_label(item: Option<usize>) -> String {
    item.map(|i| format!(" in array item {i}"))
        .unwrap_or_default()
}

/// Transcode one JSON document to Python's `json.dump` form.
pub fn write_python_json(raw: &str, out: &mut (impl Write + ?Sized)) -> Result<(), PyJsonError> {
    let mut buf = Out::new(out);
    transcode(raw, &mut buf).map_err(|e| e.into_error(None))?;
    buf.flush()?;
    Ok(())
}

/// Transcode into a `String`, for small values and tests.
pub fn to_python_json(raw: &str) -> Result<String, PyJsonError> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 8);
    write_python_json(raw, &mut out)?;
    // The encoder only emits ASCII.
    Ok(String::from_utf8(out).expect("python JSON output is ASCII"))
}

/// Python writes a list of dicts as `[a, b]`; the caller holds the N raw JSON objects
/// separately (one catalog row each), so join them without building the list.
pub fn write_python_json_array<'a>(
    items: impl IntoIterator<Item = &'a str>,
    out: &mut (impl Write + ?Sized),
) -> Result<(), PyJsonError> {
    let mut buf = Out::new(out);
    buf.byte(b'[')?;
    for (i, raw) in items.into_iter().enumerate() {
        if i > 0 {
            buf.bytes(b", ")?;
        }
        transcode(raw, &mut buf).map_err(|e| e.into_error(Some(i)))?;
    }
    buf.byte(b']')?;
    buf.flush()?;
    Ok(())
}

/// Internal error before the array item index is known.
enum Fail {
    Syntax(usize, &'static str),
    Io(io::Error),
}

impl Fail {
    fn into_error(self, item: Option<usize>) -> PyJsonError {
        match self {
            Fail::Syntax(offset, expected) => PyJsonError::Syntax {
                item,
                offset,
                expected,
            },
            Fail::Io(e) => PyJsonError::Io(e),
        }
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::Io(e)
    }
}

const BUF_LEN: usize = 4096;

/// Batches the many tiny pieces of output into few `write_all` calls without allocating.
struct Out<'w, W: Write + ?Sized> {
    w: &'w mut W,
    buf: [u8; BUF_LEN],
    len: usize,
}

impl<'w, W: Write + ?Sized> Out<'w, W> {
    fn new(w: &'w mut W) -> Self {
        Out {
            w,
            buf: [0; BUF_LEN],
            len: 0,
        }
    }

    fn byte(&mut self, b: u8) -> io::Result<()> {
        if self.len == BUF_LEN {
            self.flush()?;
        }
        self.buf[self.len] = b;
        self.len += 1;
        Ok(())
    }

    fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.len + bytes.len() > BUF_LEN {
            self.flush()?;
            if bytes.len() > BUF_LEN {
                return self.w.write_all(bytes);
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.len > 0 {
            self.w.write_all(&self.buf[..self.len])?;
            self.len = 0;
        }
        Ok(())
    }

    /// One UTF-16 code unit as Python's `ensure_ascii` encoder writes it.
    fn code_unit(&mut self, u: u16) -> io::Result<()> {
        match u {
            0x22 => self.bytes(b"\\\""),
            0x5c => self.bytes(b"\\\\"),
            0x0a => self.bytes(b"\\n"),
            0x0d => self.bytes(b"\\r"),
            0x09 => self.bytes(b"\\t"),
            0x08 => self.bytes(b"\\b"),
            0x0c => self.bytes(b"\\f"),
            0x20..=0x7e => self.byte(u as u8),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.bytes(&[
                    b'\\',
                    b'u',
                    HEX[usize::from(u >> 12)],
                    HEX[usize::from((u >> 8) & 0xf)],
                    HEX[usize::from((u >> 4) & 0xf)],
                    HEX[usize::from(u & 0xf)],
                ])
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Container {
    Array,
    Object,
}

struct Parser<'a> {
    text: &'a str,
    src: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn fail<T>(&self, expected: &'static str) -> Result<T, Fail> {
        Err(Fail::Syntax(self.pos, expected))
    }

    fn eat_digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Consume `word` if the input continues with it.
    fn eat(&mut self, word: &[u8]) -> bool {
        if self.src[self.pos..].starts_with(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// Object key plus the colon after it; output `"key": `.
    fn key_and_colon<W: Write + ?Sized>(&mut self, out: &mut Out<'_, W>) -> Result<(), Fail> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return self.fail("property name enclosed in double quotes");
        }
        self.string(out)?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return self.fail("':' delimiter");
        }
        self.pos += 1;
        out.bytes(b": ")?;
        Ok(())
    }

    /// A string starting at the opening quote.
    fn string<W: Write + ?Sized>(&mut self, out: &mut Out<'_, W>) -> Result<(), Fail> {
        let start = self.pos;
        self.pos += 1;
        out.byte(b'"')?;
        loop {
            // Copy the run of bytes that need no change in one go.
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\' {
                    self.pos += 1;
                } else {
                    break;
                }
            }
            out.bytes(&self.src[run_start..self.pos])?;
            match self.peek() {
                None => return Err(Fail::Syntax(start, "string to be terminated")),
                Some(b'"') => {
                    self.pos += 1;
                    out.byte(b'"')?;
                    return Ok(());
                }
                Some(b'\\') => self.escape(out)?,
                Some(0..=0x1f) => return self.fail("escaped control character, not a raw one"),
                Some(_) => {
                    // DEL or the start of a multi-byte char; `pos` is on a char boundary
                    // because everything before it was ASCII or a whole char.
                    let c = self.text[self.pos..].chars().next().expect("not at end");
                    self.pos += c.len_utf8();
                    let mut units = [0u16; 2];
                    for &u in c.encode_utf16(&mut units).iter() {
                        out.code_unit(u)?;
                    }
                }
            }
        }
    }

    /// A backslash escape inside a string. `\uXXXX` is emitted code unit by code unit:
    /// Python would join an escaped surrogate pair into one char and split it again on
    /// output, and keeps lone surrogates, so the units come out unchanged either way.
    fn escape<W: Write + ?Sized>(&mut self, out: &mut Out<'_, W>) -> Result<(), Fail> {
        self.pos += 1;
        let unit = match self.peek() {
            Some(b'"') => 0x22,
            Some(b'\\') => 0x5c,
            Some(b'/') => 0x2f,
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'n') => 0x0a,
            Some(b'r') => 0x0d,
            Some(b't') => 0x09,
            Some(b'u') => {
                let hex = self.src.get(self.pos + 1..self.pos + 5);
                let value = hex.and_then(|h| {
                    h.iter().try_fold(0u16, |acc, &b| {
                        let d = (b as char).to_digit(16)?;
                        Some(acc << 4 | d as u16)
                    })
                });
                match value {
                    Some(v) => {
                        self.pos += 4;
                        v
                    }
                    // Python points at the `u` here (and at the backslash below).
                    None => return Err(Fail::Syntax(self.pos, "4 hex digits after \\u")),
                }
            }
            _ => return Err(Fail::Syntax(self.pos - 1, "valid \\escape")),
        };
        self.pos += 1;
        out.code_unit(unit)?;
        Ok(())
    }

    /// A number at `-` or a digit (Python's `-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?`),
    /// or `-Infinity`.
    fn number<W: Write + ?Sized>(&mut self, out: &mut Out<'_, W>) -> Result<(), Fail> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
            if self.eat(b"Infinity") {
                out.bytes(b"-Infinity")?;
                return Ok(());
            }
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.eat_digits();
            }
            _ => return Err(Fail::Syntax(start, "value")),
        }
        let mut is_float = false;
        // Like Python, a `.` or `e` not followed by digits ends the number (and the
        // leftover then fails as the next token).
        if self.peek() == Some(b'.') && matches!(self.src.get(self.pos + 1), Some(b'0'..=b'9')) {
            self.pos += 1;
            self.eat_digits();
            is_float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            let before = self.pos;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.eat_digits() == 0 {
                self.pos = before;
            } else {
                is_float = true;
            }
        }
        let text = &self.text[start..self.pos];
        if !is_float {
            // Python ints are arbitrary precision: the text survives, but `-0` is `0`.
            out.bytes(if text == "-0" { b"0" } else { text.as_bytes() })?;
            return Ok(());
        }
        let value: f64 = text.parse().expect("float grammar checked above");
        write_float_repr(value, out)?;
        Ok(())
    }
}

fn transcode<W: Write + ?Sized>(raw: &str, out: &mut Out<'_, W>) -> Result<(), Fail> {
    let mut p = Parser {
        text: raw,
        src: raw.as_bytes(),
        pos: 0,
    };
    let mut stack: Vec<Container> = Vec::new();
    'value: loop {
        p.skip_ws();
        match p.peek() {
            Some(b'{') => {
                p.pos += 1;
                out.byte(b'{')?;
                p.skip_ws();
                if p.peek() == Some(b'}') {
                    p.pos += 1;
                    out.byte(b'}')?;
                } else {
                    stack.push(Container::Object);
                    p.key_and_colon(out)?;
                    continue 'value;
                }
            }
            Some(b'[') => {
                p.pos += 1;
                out.byte(b'[')?;
                p.skip_ws();
                if p.peek() == Some(b']') {
                    p.pos += 1;
                    out.byte(b']')?;
                } else {
                    stack.push(Container::Array);
                    continue 'value;
                }
            }
            Some(b'"') => p.string(out)?,
            Some(b'-' | b'0'..=b'9') => p.number(out)?,
            _ => {
                let literal: &[u8] = [b"true".as_slice(), b"false", b"null", b"NaN", b"Infinity"]
                    .into_iter()
                    .find(|w| p.src[p.pos..].starts_with(w))
                    .map_or(b"", |w| w);
                if literal.is_empty() {
                    return p.fail("value");
                }
                p.pos += literal.len();
                out.bytes(literal)?;
            }
        }
        // A value is complete: close containers until one wants another value.
        loop {
            p.skip_ws();
            let Some(&top) = stack.last() else {
                if p.pos != p.src.len() {
                    return p.fail("end of input");
                }
                return Ok(());
            };
            match (top, p.peek()) {
                (_, Some(b',')) => {
                    p.pos += 1;
                    out.bytes(b", ")?;
                    if top == Container::Object {
                        p.key_and_colon(out)?;
                    }
                    continue 'value;
                }
                (Container::Array, Some(b']')) | (Container::Object, Some(b'}')) => {
                    p.pos += 1;
                    out.byte(if top == Container::Array { b']' } else { b'}' })?;
                    stack.pop();
                }
                (Container::Array, _) => return p.fail("',' or ']'"),
                (Container::Object, _) => return p.fail("',' or '}'"),
            }
        }
    }
}

/// Fixed-size text buffer so float formatting needs no allocation.
struct StackStr {
    buf: [u8; 48],
    len: usize,
}

impl std::fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Python's `repr(float)`: shortest round-trip digits (Rust's `{:e}` gives the same digits),
/// fixed notation for decimal exponents in `-4..16`, else `d.ddde+XX`.
fn write_float_repr<W: Write + ?Sized>(value: f64, out: &mut Out<'_, W>) -> io::Result<()> {
    if value.is_nan() {
        return out.bytes(b"NaN");
    }
    if value.is_infinite() {
        return out.bytes(if value > 0.0 {
            b"Infinity"
        } else {
            b"-Infinity"
        });
    }
    let mut s = StackStr {
        buf: [0; 48],
        len: 0,
    };
    write!(s, "{value:e}").expect("an f64 in {:e} fits in 48 bytes");
    // Rust's shortest digits break an exact tie between two shortest candidates upwards;
    // Python (David Gay's dtoa) takes the candidate nearest the exact value, ties to even.
    // The exactly rounded value at the same length is that candidate whenever it
    // round-trips, so prefer it.
    let shortest_digits = s.buf[..s.len]
        .iter()
        .take_while(|&&b| b != b'e')
        .filter(|b| b.is_ascii_digit())
        .count();
    let mut exact = StackStr {
        buf: [0; 48],
        len: 0,
    };
    write!(exact, "{value:.prec$e}", prec = shortest_digits - 1).expect("fits in 48 bytes");
    let exact_text = std::str::from_utf8(&exact.buf[..exact.len]).expect("ASCII");
    if exact_text.parse::<f64>() == Ok(value) {
        s = exact;
    }
    let text = &s.buf[..s.len];
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let e_at = text.iter().position(|&b| b == b'e').expect("{:e} has an e");
    let exp: i32 = std::str::from_utf8(&text[e_at + 1..])
        .ok()
        .and_then(|e| e.parse().ok())
        .expect("{:e} exponent is an int");
    // Significant digits without the point: "1.25e3" -> "125".
    let mut digits = [0u8; 24];
    let mut n = 0;
    for &b in text[..e_at].iter().filter(|&&b| b != b'.') {
        digits[n] = b;
        n += 1;
    }
    let digits = &digits[..n];
    if negative {
        out.byte(b'-')?;
    }
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.bytes(b"0.")?;
            for _ in 0..(-exp - 1) {
                out.byte(b'0')?;
            }
            out.bytes(digits)?;
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.bytes(digits)?;
                for _ in digits.len()..int_len {
                    out.byte(b'0')?;
                }
                out.bytes(b".0")?;
            } else {
                out.bytes(&digits[..int_len])?;
                out.byte(b'.')?;
                out.bytes(&digits[int_len..])?;
            }
        }
    } else {
        out.byte(digits[0])?;
        if digits.len() > 1 {
            out.byte(b'.')?;
            out.bytes(&digits[1..])?;
        }
        out.byte(b'e')?;
        out.byte(if exp < 0 { b'-' } else { b'+' })?;
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.byte(b'0')?;
        }
        let mut e = StackStr {
            buf: [0; 48],
            len: 0,
        };
        write!(e, "{abs}").expect("fits");
        out.bytes(&e.buf[..e.len])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(input, python3 -c 'json.dumps(json.loads(input))')`, generated once by
    /// `tools/gen_pyjson_cases.py`.
    const CASES: &[(&str, &str)] = &[
        ("{}", r#"{}"#),
        ("[]", r#"[]"#),
        (
            "{\"a\": {}, \"b\": [], \"c\": [[], {}]}",
            r#"{"a": {}, "b": [], "c": [[], {}]}"#,
        ),
        (" \t\n\r[ 1 , 2 ]\n", r#"[1, 2]"#),
        ("{\"b\":1,\"a\":2}", r#"{"b": 1, "a": 2}"#),
        ("\"plain\"", r#""plain""#),
        ("\"/slash\\/escaped\"", r#""/slash/escaped""#),
        (
            "\"h\u{e9}llo w\u{f6}rld \u{4e2d}\u{6587}\"",
            r#""h\u00e9llo w\u00f6rld \u4e2d\u6587""#,
        ),
        (
            "\"emoji \u{1f600} \u{1f468}\u{200d}\u{1f469}\"",
            r#""emoji \ud83d\ude00 \ud83d\udc68\u200d\ud83d\udc69""#,
        ),
        (
            "\"ctl \\u0001 \\u001f \\b\\f\\n\\r\\t\"",
            r#""ctl \u0001 \u001f \b\f\n\r\t""#,
        ),
        (
            "\"del \u{7f} \u{80} \u{9f}\"",
            r#""del \u007f \u0080 \u009f""#,
        ),
        ("\"\\u003c\\u0026\\u003e\"", r#""<&>""#),
        ("\"\\u00E9\\u00e9\"", r#""\u00e9\u00e9""#),
        ("\"\\ud83d\\ude00\"", r#""\ud83d\ude00""#),
        ("\"lone \\ud800 x \\udc00\"", r#""lone \ud800 x \udc00""#),
        (
            "\"\\\"quote\\\" back\\\\slash\"",
            r#""\"quote\" back\\slash""#,
        ),
        ("\"\\u0022\\u005c\\u002f\\u000a\"", r#""\"\\/\n""#),
        ("\"\u{2028}\u{2029}\u{feff}\"", r#""\u2028\u2029\ufeff""#),
        ("1", r#"1"#),
        ("-1", r#"-1"#),
        ("0", r#"0"#),
        ("-0", r#"0"#),
        ("1.0", r#"1.0"#),
        ("1.5", r#"1.5"#),
        ("0.1", r#"0.1"#),
        ("1e21", r#"1e+21"#),
        ("1e-7", r#"1e-07"#),
        ("123456789012345678", r#"123456789012345678"#),
        ("1E2", r#"100.0"#),
        ("-0.0", r#"-0.0"#),
        ("12345678901234567.0", r#"1.2345678901234568e+16"#),
        ("1e16", r#"1e+16"#),
        ("1e15", r#"1000000000000000.0"#),
        ("9999999999999998.0", r#"9999999999999998.0"#),
        ("0.0001", r#"0.0001"#),
        ("0.00001", r#"1e-05"#),
        ("1e400", r#"Infinity"#),
        ("-1e400", r#"-Infinity"#),
        ("1e-400", r#"0.0"#),
        ("-1e-400", r#"-0.0"#),
        ("2.5e-5", r#"2.5e-05"#),
        ("1.7976931348623157e308", r#"1.7976931348623157e+308"#),
        ("5e-324", r#"5e-324"#),
        ("3.141592653589793", r#"3.141592653589793"#),
        ("100.0", r#"100.0"#),
        ("1e+2", r#"100.0"#),
        ("1.23e-4", r#"0.000123"#),
        ("-12.5E+3", r#"-12500.0"#),
        ("0e0", r#"0.0"#),
        ("-0e-0", r#"-0.0"#),
        (
            "12345678901234567890123456789012345678901234567890",
            r#"12345678901234567890123456789012345678901234567890"#,
        ),
        ("-98765432109876543210", r#"-98765432109876543210"#),
        ("0.30000000000000004", r#"0.30000000000000004"#),
        ("1e22", r#"1e+22"#),
        ("1e23", r#"1e+23"#),
        ("123456.789e3", r#"123456789.0"#),
        ("true", r#"true"#),
        ("false", r#"false"#),
        ("null", r#"null"#),
        ("[true,false,null]", r#"[true, false, null]"#),
        ("NaN", r#"NaN"#),
        ("Infinity", r#"Infinity"#),
        ("-Infinity", r#"-Infinity"#),
        ("[NaN, -Infinity]", r#"[NaN, -Infinity]"#),
        (
            "{\"id\":\"abc\",\"props\":{\"k\":[1,2.0,\"x\"]},\"n\":null}",
            r#"{"id": "abc", "props": {"k": [1, 2.0, "x"]}, "n": null}"#,
        ),
        ("[[[[[]]]]]", r#"[[[[[]]]]]"#),
        ("{\"a\":{\"b\":{\"c\":{}}}}", r#"{"a": {"b": {"c": {}}}}"#),
    ];

    /// `(input, byte offset)` of inputs Python's `json.loads` rejects (same generator;
    /// Python reports char offsets, which differ only for the non-ASCII line).
    const ERRORS: &[(&str, usize)] = &[
        ("", 0),                  // Expecting value
        (" ", 1),                 // Expecting value
        ("[1,]", 3),              // Expecting value
        ("{\"a\":1,}", 7),        // Expecting property name enclosed in double quotes
        ("{a:1}", 1),             // Expecting property name enclosed in double quotes
        ("{\"a\" 1}", 5),         // Expecting ':' delimiter
        ("[1 2]", 3),             // Expecting ',' delimiter
        ("{\"a\":1 \"b\":2}", 7), // Expecting ',' delimiter
        ("\"abc", 0),             // Unterminated string starting at
        ("\"a\nb\"", 2),          // Invalid control character at
        ("\"\\x\"", 1),           // Invalid \escape
        ("\"\\u12\"", 2),         // Invalid \uXXXX escape
        ("\"\\u12g4\"", 2),       // Invalid \uXXXX escape
        ("01", 1),                // Extra data
        ("1.", 1),                // Extra data
        (".5", 0),                // Expecting value
        ("-", 0),                 // Expecting value
        ("+1", 0),                // Expecting value
        ("1e", 1),                // Extra data
        ("[1]x", 3),              // Extra data
        ("{} {}", 3),             // Extra data
        ("tru", 0),               // Expecting value
        ("nul", 0),               // Expecting value
        ("[", 1),                 // Expecting value
        ("{\"a\":", 5),           // Expecting value
        ("\"\u{feff}\"x", 5),     // Extra data (Python counts chars: 3)
        ("\u{feff}{}", 0),        // Unexpected UTF-8 BOM (decode using utf-8-sig)
        ("-Inf", 0),              // Expecting value
        ("1.e5", 1),              // Extra data
    ];

    #[test]
    fn matches_python_json_dumps() {
        for (input, expected) in CASES {
            assert_eq!(to_python_json(input).unwrap(), *expected, "input {input:?}");
        }
    }

    #[test]
    fn rejects_what_python_rejects_at_the_same_offset() {
        for (input, offset) in ERRORS {
            match to_python_json(input) {
                Err(PyJsonError::Syntax {
                    item: None,
                    offset: got,
                    ..
                }) => assert_eq!(got, *offset, "input {input:?}"),
                other => panic!("input {input:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn error_names_offset_and_expectation() {
        let err = to_python_json(r#"{"a" 1}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid JSON: expected ':' delimiter at byte 5"
        );
        let mut out = Vec::new();
        let err = write_python_json_array([r#"{"a":1}"#, "[1,]"], &mut out).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid JSON in array item 1: expected value at byte 3"
        );
    }

    #[test]
    fn duplicate_keys_are_kept_in_order() {
        assert_eq!(
            to_python_json(r#"{"a":1,"b":2,"a":3}"#).unwrap(),
            r#"{"a": 1, "b": 2, "a": 3}"#
        );
    }

    #[test]
    fn array_of_raw_objects() {
        let mut out = Vec::new();
        write_python_json_array([], &mut out).unwrap();
        assert_eq!(out, b"[]");
        out.clear();
        write_python_json_array([r#"{"user_id":"u1","roles":"a b"}"#, " {} "], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"[{"user_id": "u1", "roles": "a b"}, {}]"#
        );
    }

    #[test]
    fn output_longer_than_the_buffer() {
        // Runs longer than the internal buffer, and escapes across its boundary.
        let long = "x".repeat(3 * BUF_LEN + 17);
        let escaped = r"\u00e9".repeat(BUF_LEN);
        let input = format!(r#"["{long}", "{}", "{long}"]"#, "é".repeat(BUF_LEN));
        let expected = format!(r#"["{long}", "{escaped}", "{long}"]"#);
        assert_eq!(to_python_json(&input).unwrap(), expected);
    }

    #[test]
    fn deep_nesting_needs_no_call_stack() {
        let depth = 200_000;
        let input = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(to_python_json(&input).unwrap(), input);
        let unclosed = "[{\"a\":".repeat(1000);
        assert!(matches!(
            to_python_json(&unclosed),
            Err(PyJsonError::Syntax { offset, .. }) if offset == unclosed.len()
        ));
    }

    #[test]
    fn output_is_the_same_json_value() {
        // Float-free documents decode to the same value before and after (serde_json keeps
        // key order with `preserve_order`), so the transcoder only changes the spelling.
        let input = r#" {"id":"p1","message":"h\u00e9 \ud83d\ude00 <\u0026> \"q\" \\",
            "props":{"attachments":[{"fields":[]}],"n":-5,"big":18446744073709551615},
            "is_pinned":false,"root_id":"","x":null} "#;
        let output = to_python_json(input).unwrap();
        assert!(output.is_ascii());
        let before: serde_json::Value = serde_json::from_str(input).unwrap();
        let after: serde_json::Value = serde_json::from_str(&output).unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn write_errors_are_reported() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        assert!(matches!(
            write_python_json("[1]", &mut Broken),
            Err(PyJsonError::Io(_))
        ));
    }
}

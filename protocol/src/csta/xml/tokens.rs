//! A zero-copy XML tokenizer for CSTA documents: start and end tags with their attributes,
//! text, CDATA; declarations, processing instructions and comments are skipped; a DTD is refused.
//!
//! Why not a crate: measured on a 700-byte DeliveredEvent (BENCHMARKS.md), quick-xml 0.42
//! validates UTF-8 again on every event and `xmlparser` checks names character by character;
//! either costs more than the whole decode may. The text handed in is already valid UTF-8, so this
//! scanner only looks for the ASCII bytes that delimit markup (`memchr`), and every slice it
//! returns starts and ends at an ASCII delimiter, hence on a character boundary.

use super::DecodeError;

/// One piece of markup or text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    /// `<prefix:local attrs>` or `<prefix:local attrs/>`.
    Start {
        /// The prefix (empty when none).
        prefix: &'a str,
        /// The local name.
        local: &'a str,
        /// The raw attribute text (read with [`attributes`]).
        attrs: &'a str,
        /// `/>`: the element has no content.
        empty: bool,
        /// Byte offset of the `<`.
        at: usize,
    },
    /// `</qname>`.
    End {
        /// The qualified name as written (not checked: compare it with the open element's).
        qname: &'a str,
        /// Byte offset of the `<`.
        at: usize,
    },
    /// Character data between markup, entities not yet resolved.
    Text {
        /// The raw text.
        raw: &'a str,
        /// Byte offset.
        at: usize,
    },
    /// The content of a CDATA section.
    Cdata(&'a str),
}

/// Splits `doc` into tokens.
#[derive(Debug, Clone)]
pub struct Tokenizer<'a> {
    doc: &'a str,
    pos: usize,
}

impl<'a> Tokenizer<'a> {
    /// A tokenizer at the start of `doc`.
    pub fn new(doc: &'a str) -> Self {
        Tokenizer { doc, pos: 0 }
    }

    fn err(&self, at: usize, what: &str) -> DecodeError {
        DecodeError::Xml(format!("{what} at byte {at}"))
    }

    /// Byte offset of `needle` at or after `from`.
    fn find(&self, from: usize, needle: &[u8]) -> Option<usize> {
        memchr::memmem::find(self.doc.as_bytes().get(from..)?, needle).map(|i| from + i)
    }

    /// The next token, `None` at the end of the document.
    pub fn next_token(&mut self) -> Result<Option<Token<'a>>, DecodeError> {
        loop {
            let bytes = self.doc.as_bytes();
            let at = self.pos;
            if at >= bytes.len() {
                return Ok(None);
            }
            if bytes[at] != b'<' {
                let end = memchr::memchr(b'<', &bytes[at..]).map_or(bytes.len(), |i| at + i);
                self.pos = end;
                return Ok(Some(Token::Text {
                    raw: &self.doc[at..end],
                    at,
                }));
            }
            match bytes.get(at + 1) {
                Some(b'?') => {
                    let end = self
                        .find(at + 2, b"?>")
                        .ok_or_else(|| self.err(at, "unterminated processing instruction"))?;
                    self.pos = end + 2;
                }
                Some(b'!') => {
                    let rest = &bytes[at + 2..];
                    if rest.starts_with(b"--") {
                        let end = self
                            .find(at + 4, b"-->")
                            .ok_or_else(|| self.err(at, "unterminated comment"))?;
                        self.pos = end + 3;
                    } else if rest.starts_with(b"[CDATA[") {
                        let start = at + 9;
                        let end = self
                            .find(start, b"]]>")
                            .ok_or_else(|| self.err(at, "unterminated CDATA section"))?;
                        self.pos = end + 3;
                        return Ok(Some(Token::Cdata(&self.doc[start..end])));
                    } else if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"DOCTYPE") {
                        return Err(DecodeError::Xml("DOCTYPE is not allowed".into()));
                    } else {
                        return Err(self.err(at, "unknown markup declaration"));
                    }
                }
                Some(b'/') => {
                    // The name is not checked here: the reader compares it with the open
                    // element's, which was.
                    let gt = memchr::memchr(b'>', &bytes[at..])
                        .map(|i| at + i)
                        .ok_or_else(|| self.err(at, "unterminated end tag"))?;
                    self.pos = gt + 1;
                    return Ok(Some(Token::End {
                        qname: trim_space_end(&self.doc[at + 2..gt]),
                        at,
                    }));
                }
                Some(_) => return self.start_tag(at).map(Some),
                None => return Err(self.err(at, "document ends after '<'")),
            }
        }
    }

    fn start_tag(&mut self, at: usize) -> Result<Token<'a>, DecodeError> {
        let bytes = self.doc.as_bytes();
        let (name_end, colon) =
            scan_name(bytes, at + 1).ok_or_else(|| self.err(at, "malformed element name"))?;
        let (prefix, local) = match colon {
            Some(c) => (&self.doc[at + 1..c], &self.doc[c + 1..name_end]),
            None => ("", &self.doc[at + 1..name_end]),
        };
        // Most CSTA tags have no attributes: `<name>` and `<name/>` end right after the name.
        match (bytes.get(name_end), bytes.get(name_end + 1)) {
            (Some(b'>'), _) | (Some(b'/'), Some(b'>')) => {
                let empty = bytes[name_end] == b'/';
                self.pos = name_end + if empty { 2 } else { 1 };
                return Ok(Token::Start {
                    prefix,
                    local,
                    attrs: "",
                    empty,
                    at,
                });
            }
            _ => {}
        }
        // The tag ends at the first '>' outside a quoted attribute value.
        let gt = memchr::memchr(b'>', &bytes[name_end..])
            .map(|i| name_end + i)
            .ok_or_else(|| self.err(at, "unterminated start tag"))?;
        let close = if memchr::memchr2(b'"', b'\'', &bytes[name_end..gt]).is_none() {
            if let Some(i) = memchr::memchr(b'<', &bytes[name_end..gt]) {
                return Err(self.err(name_end + i, "'<' inside a tag"));
            }
            gt
        } else {
            self.quoted_tag_end(name_end)?
        };
        let empty = close > name_end && bytes[close - 1] == b'/';
        let attrs = &self.doc[name_end..if empty { close - 1 } else { close }];
        // Every attribute must be well formed even when nobody reads it.
        if !attrs.is_empty() {
            for a in attributes(attrs) {
                a.map_err(|what| self.err(at, what))?;
            }
        }
        self.pos = close + 1;
        Ok(Token::Start {
            prefix,
            local,
            attrs,
            empty,
            at,
        })
    }

    /// The '>' ending a tag whose attribute values may hold '>'.
    fn quoted_tag_end(&self, from: usize) -> Result<usize, DecodeError> {
        let bytes = self.doc.as_bytes();
        let mut i = from;
        loop {
            let j = memchr::memchr3(b'"', b'\'', b'>', &bytes[i..])
                .map(|n| i + n)
                .ok_or_else(|| self.err(from, "unterminated start tag"))?;
            if let Some(n) = memchr::memchr(b'<', &bytes[i..j]) {
                return Err(self.err(i + n, "'<' inside a tag"));
            }
            if bytes[j] == b'>' {
                return Ok(j);
            }
            let close = memchr::memchr(bytes[j], &bytes[j + 1..])
                .map(|n| j + 1 + n)
                .ok_or_else(|| self.err(j, "unterminated attribute value"))?;
            if let Some(n) = memchr::memchr(b'<', &bytes[j + 1..close]) {
                return Err(self.err(j + 1 + n, "'<' in an attribute value"));
            }
            i = close + 1;
        }
    }
}

/// Byte classes for names: 0 not a name character, 1 name character, 2 name start as well,
/// 3 the colon.
const NAME: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 {
            2
        } else if b.is_ascii_digit() || b == b'-' || b == b'.' {
            1
        } else if b == b':' {
            3
        } else {
            0
        };
        i += 1;
    }
    t
};

/// Scans the XML name starting at `from`: its end and the position of its one colon. ASCII is
/// checked; non-ASCII characters are accepted as name characters. The colon may be neither
/// first nor last.
fn scan_name(bytes: &[u8], from: usize) -> Option<(usize, Option<usize>)> {
    if NAME[usize::from(*bytes.get(from)?)] != 2 {
        return None;
    }
    let mut colon = None;
    let mut i = from + 1;
    while let Some(&b) = bytes.get(i) {
        match NAME[usize::from(b)] {
            0 => break,
            3 if colon.is_some() => return None,
            3 => colon = Some(i),
            _ => {}
        }
        i += 1;
    }
    if colon == Some(i - 1) {
        return None;
    }
    Some((i, colon))
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_space_byte(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `s` without leading and trailing XML whitespace (space, tab, CR, LF: not the other Unicode
/// spaces `str::trim` removes). The cuts fall on ASCII bytes, hence on character boundaries.
pub fn trim_space(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|c| !is_space_byte(c)).unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !is_space_byte(c))
        .map_or(start, |i| i + 1);
    &s[start..end]
}

/// `s` without trailing XML whitespace.
fn trim_space_end(s: &str) -> &str {
    let b = s.as_bytes();
    &s[..b
        .iter()
        .rposition(|c| !is_space_byte(c))
        .map_or(0, |i| i + 1)]
}

/// Whether `name` is one XML name (see [`scan_name`]).
fn is_name(name: &str) -> bool {
    scan_name(name.as_bytes(), 0).is_some_and(|(end, _)| end == name.len())
}

/// One attribute: (prefix, local name, raw value).
pub type Attribute<'a> = (&'a str, &'a str, &'a str);

/// The attributes of a start tag, from its raw attribute text.
pub fn attributes(raw: &str) -> impl Iterator<Item = Result<Attribute<'_>, &'static str>> {
    let mut rest = raw;
    std::iter::from_fn(move || {
        let trimmed = rest.trim_start_matches(is_space);
        if trimmed.is_empty() {
            return None;
        }
        if trimmed.len() == rest.len() {
            rest = "";
            return Some(Err("attributes must be separated by whitespace"));
        }
        let Some(eq) = memchr::memchr(b'=', trimmed.as_bytes()) else {
            rest = "";
            return Some(Err("attribute without a value"));
        };
        let name = trimmed[..eq].trim_end_matches(is_space);
        if !is_name(name) {
            rest = "";
            return Some(Err("malformed attribute name"));
        }
        let after = trimmed[eq + 1..].trim_start_matches(is_space);
        let quote = match after.as_bytes().first() {
            Some(q @ (b'"' | b'\'')) => *q,
            _ => {
                rest = "";
                return Some(Err("attribute value not quoted"));
            }
        };
        let Some(len) = memchr::memchr(quote, &after.as_bytes()[1..]) else {
            rest = "";
            return Some(Err("unterminated attribute value"));
        };
        let value = &after[1..1 + len];
        rest = &after[len + 2..];
        let (prefix, local) = match name.split_once(':') {
            Some((p, l)) => (p, l),
            None => ("", name),
        };
        Some(Ok((prefix, local, value)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(doc: &str) -> Result<Vec<Token<'_>>, DecodeError> {
        let mut t = Tokenizer::new(doc);
        let mut v = Vec::new();
        while let Some(x) = t.next_token()? {
            v.push(x);
        }
        Ok(v)
    }

    #[test]
    fn tags_text_cdata_and_skipped_markup() {
        let doc = r#"<?xml version="1.0"?><!-- c --><a:X xmlns:a="u>v" b='1'><y/>t&amp;<![CDATA[<z>]]></a:X >"#;
        let toks = all(doc).expect("tokens");
        assert_eq!(
            toks,
            vec![
                Token::Start {
                    prefix: "a",
                    local: "X",
                    attrs: r#" xmlns:a="u>v" b='1'"#,
                    empty: false,
                    at: 31
                },
                Token::Start {
                    prefix: "",
                    local: "y",
                    attrs: "",
                    empty: true,
                    at: 56
                },
                Token::Text {
                    raw: "t&amp;",
                    at: 60
                },
                Token::Cdata("<z>"),
                Token::End {
                    qname: "a:X",
                    at: 81
                },
            ]
        );
        let attrs: Vec<_> = attributes(r#" xmlns:a="u>v" b='1'"#)
            .collect::<Result<_, _>>()
            .expect("attributes");
        assert_eq!(attrs, vec![("xmlns", "a", "u>v"), ("", "b", "1")]);
    }

    #[test]
    fn only_xml_whitespace_is_trimmed() {
        assert_eq!(trim_space(" \t\r\n a b \n"), "a b");
        assert_eq!(trim_space(" \n "), "");
        assert_eq!(trim_space(""), "");
        // A no-break space and an ideographic space are content in XML.
        assert_eq!(trim_space("\u{a0}x\u{3000} "), "\u{a0}x\u{3000}");
        assert_eq!(trim_space_end("a:b \t"), "a:b");
        assert_eq!(trim_space_end(" "), "");
    }

    #[test]
    fn malformed_markup_is_an_error_with_a_position() {
        for (doc, what) in [
            ("<a", "unterminated start tag"),
            ("<a b=1>", "not quoted"),
            ("<a b>", "without a value"),
            ("<a b='1'c='2'>", "separated by whitespace"),
            ("<a b='<'>", "'<' in an attribute value"),
            ("<1a>", "malformed element name"),
            ("<a><!-- x", "unterminated comment"),
            ("<a><![CDATA[x", "unterminated CDATA"),
            ("<!DOCTYPE a><a/>", "DOCTYPE"),
            ("<a><!ELEMENT a ANY>", "unknown markup"),
            ("<a>x<", "ends after"),
            ("<?xml", "unterminated processing"),
            ("<a:>", "malformed element name"),
        ] {
            let e = all(doc).expect_err(doc).to_string();
            assert!(e.contains(what), "{doc}: {e}");
        }
    }

    #[test]
    fn non_ascii_text_and_names_stay_whole() {
        let toks = all("<héllo>ünï</héllo>").expect("tokens");
        assert_eq!(toks.len(), 3);
        assert_eq!(
            toks[1],
            Token::Text {
                raw: "ünï", at: 8
            }
        );
    }
}

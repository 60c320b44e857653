//! A bounded XML reader into an element tree held in one vector (local names only), and a
//! canonical writer.

use std::borrow::Cow;

use super::DecodeError;

mod tokens;

use tokens::{Token, Tokenizer, attributes, trim_space};

/// Bounds on one XML document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlLimits {
    /// Largest document in bytes (an Annex J frame holds at most 65 527).
    pub max_bytes: usize,
    /// Deepest element nesting.
    pub max_depth: usize,
    /// Most elements in one document.
    pub max_elements: usize,
    /// Longest text content of one element, in bytes.
    pub max_text: usize,
}

impl Default for XmlLimits {
    fn default() -> Self {
        XmlLimits {
            max_bytes: 65_535,
            max_depth: 24,
            max_elements: 4_096,
            max_text: 8_192,
        }
    }
}

/// A parsed document: its elements in document order, in one vector (one allocation for the
/// whole tree, freed at once), linked to their first child and next sibling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document<'a> {
    nodes: Vec<Node<'a>>,
}

/// Index 0 is the root, never anyone's child or sibling: 0 means "none" in the links.
const NONE: u32 = 0;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node<'a> {
    name: &'a str,
    namespace: Option<Cow<'a, str>>,
    text: Cow<'a, str>,
    first_child: u32,
    last_child: u32,
    next_sibling: u32,
}

impl<'a> Document<'a> {
    /// The root element.
    pub fn root(&self) -> Element<'_> {
        Element { doc: self, idx: 0 }
    }
}

/// An element of a [`Document`]: local name, the namespace bound to its prefix (or the
/// default), text, children. A copyable view.
#[derive(Clone, Copy)]
pub struct Element<'d> {
    doc: &'d Document<'d>,
    idx: u32,
}

impl std::fmt::Debug for Element<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Element")
            .field("name", &self.name())
            .field("text", &self.text())
            .field("children", &self.children().collect::<Vec<_>>())
            .finish()
    }
}

/// The children of an element, in document order.
#[derive(Clone)]
pub struct Children<'d> {
    doc: &'d Document<'d>,
    next: u32,
}

impl<'d> Iterator for Children<'d> {
    type Item = Element<'d>;

    fn next(&mut self) -> Option<Element<'d>> {
        if self.next == NONE {
            return None;
        }
        let idx = self.next;
        self.next = self
            .doc
            .nodes
            .get(idx as usize)
            .map_or(NONE, |n| n.next_sibling);
        Some(Element { doc: self.doc, idx })
    }
}

impl<'d> Element<'d> {
    fn node(&self) -> &'d Node<'d> {
        // Views are only made from indices the parser linked.
        &self.doc.nodes[self.idx as usize]
    }

    /// Local name (prefix removed).
    pub fn name(&self) -> &'d str {
        self.node().name
    }

    /// Namespace URI declared on this element for its own prefix, if any.
    pub fn namespace(&self) -> Option<&'d str> {
        self.node().namespace.as_deref()
    }

    /// Text content, entities resolved, surrounding whitespace trimmed.
    pub fn text(&self) -> &'d str {
        &self.node().text
    }

    /// Child elements in document order.
    pub fn children(&self) -> Children<'d> {
        Children {
            doc: self.doc,
            next: self.node().first_child,
        }
    }

    /// The first child with this local name (exact match first, then ignoring ASCII case).
    pub fn child(&self, name: &str) -> Option<Element<'d>> {
        self.children().find(|c| c.name() == name).or_else(|| {
            self.children()
                .find(|c| c.name().eq_ignore_ascii_case(name))
        })
    }

    /// Every child with this local name.
    pub fn children_named<'s>(&self, name: &'s str) -> impl Iterator<Item = Element<'d>> + 's
    where
        'd: 's,
    {
        self.children()
            .filter(move |c| c.name().eq_ignore_ascii_case(name))
    }

    /// Text of the named child.
    pub fn child_text(&self, name: &str) -> Option<&'d str> {
        self.child(name).map(|c| c.text())
    }

    /// Text of a required child, or an error naming it and its parent.
    pub fn required_text(&self, name: &'static str) -> Result<&'d str, DecodeError> {
        self.child_text(name).ok_or_else(|| self.missing(name))
    }

    /// A required child, or an error naming it and its parent.
    pub fn required(&self, name: &'static str) -> Result<Element<'d>, DecodeError> {
        self.child(name).ok_or_else(|| self.missing(name))
    }

    /// The error for a missing child.
    pub fn missing(&self, name: &'static str) -> DecodeError {
        DecodeError::Missing {
            parent: self.name().to_string(),
            element: name,
        }
    }

    /// Finds a descendant by local name, depth first.
    pub fn find(&self, name: &str) -> Option<Element<'d>> {
        self.children().find_map(|c| {
            if c.name().eq_ignore_ascii_case(name) {
                Some(c)
            } else {
                c.find(name)
            }
        })
    }
}

fn append_text<'a>(
    node: &mut Node<'a>,
    text: Cow<'a, str>,
    limits: &XmlLimits,
) -> Result<(), DecodeError> {
    if node.text.is_empty() {
        node.text = text;
    } else {
        node.text.to_mut().push_str(&text);
    }
    if node.text.len() > limits.max_text {
        return Err(DecodeError::Limit {
            what: "text of one element",
            limit: limits.max_text,
        });
    }
    Ok(())
}

fn trim_text(text: &mut Cow<'_, str>) {
    let trimmed = trim_space(text);
    if trimmed.len() == text.len() {
        return;
    }
    *text = match text {
        Cow::Borrowed(b) => Cow::Borrowed(trim_space(b)),
        Cow::Owned(o) => Cow::Owned(trim_space(o).to_owned()),
    };
}

/// Whether XML 1.0 allows `c` in a document (its `Char` production).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// The byte offset of the first character XML 1.0 forbids (C0 controls other than tab, line
/// feed and carriage return; U+FFFE and U+FFFF), if any. `text` is valid UTF-8, so surrogates
/// cannot occur.
pub(crate) fn forbidden_char(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    // At `at`: a C0 control other than tab, line feed and carriage return, or the UTF-8 of
    // U+FFFE or U+FFFF (EF BF BE, EF BF BF).
    let bad = |at: usize| match b[at] {
        c @ 0..0x20 => !matches!(c, b'\t' | b'\n' | b'\r'),
        0xEF => b.get(at + 1) == Some(&0xBF) && matches!(b.get(at + 2), Some(0xBE | 0xBF)),
        _ => false,
    };
    // 32 bytes at a time: a block of printable ASCII (most of a CSTA document) is skipped
    // whole; only a block with a byte below 0x20 (line ends, mostly) or above 0x7F is looked
    // at byte by byte.
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut blocks = b.chunks_exact(32);
    let mut at = 0;
    for block in &mut blocks {
        let mut flags = 0u64;
        for word in block.chunks_exact(8) {
            let x = word.try_into().map_or(HIGH, u64::from_le_bytes);
            flags |= x.wrapping_sub(ONES * 0x20) & !x | x;
        }
        if flags & HIGH != 0
            && let Some(i) = (at..at + 32).find(|&i| bad(i))
        {
            return Some(i);
        }
        at += 32;
    }
    (at..b.len()).find(|&i| bad(i))
}

/// Whether `name` may be written as an element name (an XML NCName, ASCII subset: the names
/// CSTA uses). A name from a peer that is not one is never written back.
pub(crate) fn is_ncname(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn resolve_entity(name: &str) -> Result<Cow<'static, str>, DecodeError> {
    Ok(Cow::Borrowed(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => {
            let code = match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => name.strip_prefix('#').and_then(|d| d.parse().ok()),
            };
            let c = code
                .and_then(char::from_u32)
                .filter(|c| is_xml_char(*c))
                .ok_or_else(|| DecodeError::Xml(format!("unknown entity &{name};")))?;
            return Ok(Cow::Owned(c.to_string()));
        }
    }))
}

/// Text or an attribute value with its entity and character references resolved (borrowed
/// when there is none).
fn unescape(raw: &str) -> Result<Cow<'_, str>, DecodeError> {
    let Some(first) = memchr::memchr(b'&', raw.as_bytes()) else {
        return Ok(Cow::Borrowed(raw));
    };
    let mut out = String::with_capacity(raw.len());
    out.push_str(&raw[..first]);
    let mut rest = &raw[first..];
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after
            .find(';')
            .filter(|n| *n <= 32)
            .ok_or_else(|| DecodeError::Xml("unterminated entity reference".into()))?;
        out.push_str(&resolve_entity(&after[..semi])?);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Parses one document, within `limits`. Beyond the tokens, it checks that end tags match,
/// that there is one root and no text outside it.
pub fn parse<'a>(text: &'a str, limits: &XmlLimits) -> Result<Document<'a>, DecodeError> {
    if text.len() > limits.max_bytes {
        return Err(DecodeError::Limit {
            what: "document size",
            limit: limits.max_bytes,
        });
    }
    let mut nodes: Vec<Node<'a>> = Vec::with_capacity(32);
    // Open elements: node index and prefix (for `xmlns:prefix` and the end tag check).
    let mut stack: Vec<(u32, &'a str)> = Vec::with_capacity(8);
    let mut tokens = Tokenizer::new(text);
    while let Some(token) = tokens.next_token()? {
        match token {
            Token::Start {
                prefix,
                local,
                attrs,
                empty,
                at,
            } => {
                if stack.is_empty() && !nodes.is_empty() {
                    return Err(DecodeError::Xml(format!(
                        "content after the root element at byte {at}"
                    )));
                }
                if nodes.len() >= limits.max_elements {
                    return Err(DecodeError::Limit {
                        what: "element count",
                        limit: limits.max_elements,
                    });
                }
                if !empty && stack.len() >= limits.max_depth {
                    return Err(DecodeError::Limit {
                        what: "nesting depth",
                        limit: limits.max_depth,
                    });
                }
                let mut namespace = None;
                for attr in attributes(attrs).flatten() {
                    let binds_own = match attr {
                        ("", "xmlns", _) => prefix.is_empty(),
                        ("xmlns", p, _) => p == prefix,
                        _ => false,
                    };
                    if binds_own {
                        namespace = Some(unescape(attr.2)?);
                    }
                }
                // Within max_elements (a usize bound far below u32::MAX in practice).
                let idx = u32::try_from(nodes.len()).map_err(|_| DecodeError::Limit {
                    what: "element count",
                    limit: limits.max_elements,
                })?;
                nodes.push(Node {
                    name: local,
                    namespace,
                    text: Cow::Borrowed(""),
                    first_child: NONE,
                    last_child: NONE,
                    next_sibling: NONE,
                });
                if let Some(&(parent, _)) = stack.last() {
                    let last = nodes[parent as usize].last_child;
                    if last == NONE {
                        nodes[parent as usize].first_child = idx;
                    } else {
                        nodes[last as usize].next_sibling = idx;
                    }
                    nodes[parent as usize].last_child = idx;
                }
                if !empty {
                    stack.push((idx, prefix));
                }
            }
            Token::End { qname, at } => {
                let Some((idx, prefix)) = stack.pop() else {
                    return Err(DecodeError::Xml(format!("unmatched end tag at byte {at}")));
                };
                let node = &mut nodes[idx as usize];
                let matches = if prefix.is_empty() {
                    qname == node.name
                } else {
                    qname.len() == prefix.len() + 1 + node.name.len()
                        && qname.starts_with(prefix)
                        && qname.as_bytes()[prefix.len()] == b':'
                        && qname.ends_with(node.name)
                };
                if !matches {
                    return Err(DecodeError::Xml(format!(
                        "end tag </{qname}> at byte {at} does not close <{}>",
                        node.name
                    )));
                }
                trim_text(&mut node.text);
            }
            Token::Text { raw, at } => match stack.last() {
                Some(&(idx, _)) => append_text(&mut nodes[idx as usize], unescape(raw)?, limits)?,
                None if trim_space(raw).is_empty() => {}
                None => {
                    return Err(DecodeError::Xml(format!(
                        "text outside the root element at byte {at}"
                    )));
                }
            },
            Token::Cdata(t) => {
                if let Some(&(idx, _)) = stack.last() {
                    append_text(&mut nodes[idx as usize], Cow::Borrowed(t), limits)?;
                }
            }
        }
    }
    if let Some(&(idx, _)) = stack.last() {
        return Err(DecodeError::Xml(format!(
            "document ends inside <{}>",
            nodes[idx as usize].name
        )));
    }
    if nodes.is_empty() {
        return Err(DecodeError::Xml("no root element".into()));
    }
    Ok(Document { nodes })
}

/// Writes canonical XML: declaration, default namespace on the root, no pretty printing.
pub struct XmlWriter {
    out: String,
    /// Write `deviceID` before `callID` in ConnectionIDs (an Avaya AES habit).
    pub(crate) device_id_first: bool,
}

impl XmlWriter {
    /// Starts a document with `root` in namespace `ns` (no `xmlns` when `ns` is empty).
    pub fn new(root: &str, ns: &str) -> Self {
        let mut out = String::with_capacity(256);
        out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><"#);
        out.push_str(root);
        if !ns.is_empty() {
            out.push_str(r#" xmlns=""#);
            escape_into(&mut out, ns, true);
            out.push('"');
        }
        out.push('>');
        XmlWriter {
            out,
            device_id_first: false,
        }
    }

    /// `<name>`
    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `</name>`
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `<name/>`
    pub fn empty(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str("/>");
        self
    }

    /// `<name>text</name>` with the text escaped.
    pub fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name);
        escape_into(&mut self.out, text, false);
        self.close(name)
    }

    /// Escaped text at the current position.
    pub fn text(&mut self, text: &str) -> &mut Self {
        escape_into(&mut self.out, text, false);
        self
    }

    /// Markup written as is (the caller guarantees it is well formed).
    pub(crate) fn raw(&mut self, markup: &str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    /// A leaf written only when `text` is present.
    pub fn opt_leaf(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.leaf(name, t);
        }
        self
    }

    /// Closes the root and returns the document.
    pub fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.out
    }
}

/// `text` with `<`, `>`, `&` (and `"` in an attribute value) replaced by their entities.
pub fn escape(text: &str, attr: bool) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    escape_into(&mut out, text, attr);
    out
}

fn escape_into(out: &mut String, text: &str, attr: bool) {
    // Runs without markup characters are copied whole; the characters replaced are ASCII, so
    // every cut falls on a character boundary.
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        let entity = match b {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'&' => "&amp;",
            b'"' if attr => "&quot;",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        out.push_str(entity);
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_replaces_markup_and_keeps_the_rest() {
        let mut out = String::new();
        escape_into(&mut out, r#"a<b>&"ü"c"#, false);
        assert_eq!(out, r#"a&lt;b&gt;&amp;"ü"c"#);
        out.clear();
        escape_into(&mut out, r#""x"&"#, true);
        assert_eq!(out, "&quot;x&quot;&amp;");
        out.clear();
        escape_into(&mut out, "plain", true);
        assert_eq!(out, "plain");
    }

    #[test]
    fn local_names_prefixes_and_entities() {
        let doc = r#"<?xml version="1.0"?><ns3:SystemStatus xmlns:ns3="urn:x"><ns3:a>N&lt;1&gt;;x &amp; y</ns3:a><b/></ns3:SystemStatus>"#;
        let doc = parse(doc, &XmlLimits::default()).expect("parses");
        let root = doc.root();
        assert_eq!(root.name(), "SystemStatus");
        assert_eq!(root.namespace(), Some("urn:x"));
        assert_eq!(root.child_text("a"), Some("N<1>;x & y"));
        assert!(root.child("B").is_some(), "case-insensitive fallback");
    }

    #[test]
    fn structure_errors_say_what_and_where() {
        for (doc, what) in [
            ("<a></b>", "end tag </b> at byte 3 does not close <a>"),
            ("<p:a xmlns:p='u'></q:a>", "does not close <a>"),
            ("<p:a xmlns:p='u'></a>", "does not close <a>"),
            ("<a></a1>", "does not close <a>"),
            ("<a/><b/>", "content after the root element at byte 4"),
            ("x<a/>", "text outside the root element at byte 0"),
            ("</a>", "unmatched end tag at byte 0"),
            ("<a><b></b>", "document ends inside <a>"),
            ("<?xml version='1.0'?>", "no root element"),
            ("<a>&bogus;</a>", "unknown entity &bogus;"),
            ("<a>&amp</a>", "unterminated entity reference"),
        ] {
            let e = parse(doc, &XmlLimits::default())
                .expect_err(doc)
                .to_string();
            assert!(e.contains(what), "{doc}: {e}");
        }
        let ok = parse("<p:a xmlns:p='u' >x</p:a >", &XmlLimits::default()).expect("parses");
        let ok = ok.root();
        assert_eq!((ok.name(), ok.text()), ("a", "x"));
        assert_eq!(ok.namespace(), Some("u"));
    }

    #[test]
    fn children_keep_their_parents_and_order() {
        let doc = "<r><a><x>1</x><y/><z>3</z></a><b/><c>4<d>5</d></c></r>";
        let doc = parse(doc, &XmlLimits::default()).expect("parses");
        let root = doc.root();
        let names = |e: Element<'_>| {
            e.children()
                .map(|c| c.name().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(root), ["a", "b", "c"]);
        let a = root.child("a").expect("a");
        assert_eq!(names(a), ["x", "y", "z"]);
        assert_eq!(a.child_text("z"), Some("3"));
        assert_eq!(a.find("y").map(|y| y.name()), Some("y"));
        assert_eq!(root.find("d").map(|d| d.text()), Some("5"), "depth first");
        let c = root.child("c").expect("c");
        assert_eq!((c.text(), names(c)), ("4", vec!["d".to_owned()]));
        assert!(
            root.child("b")
                .is_some_and(|b| b.children().next().is_none())
        );
    }

    #[test]
    fn limits_are_enforced() {
        let deep = "<a>".repeat(30) + &"</a>".repeat(30);
        assert!(matches!(
            parse(&deep, &XmlLimits::default()),
            Err(DecodeError::Limit { .. })
        ));
        let big = format!("<a>{}</a>", "x".repeat(10_000));
        assert!(matches!(
            parse(&big, &XmlLimits::default()),
            Err(DecodeError::Limit { .. })
        ));
    }

    #[test]
    fn malformed_documents_are_errors() {
        for doc in [
            "",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "text",
            "<a>&bogus;</a>",
            "<!DOCTYPE a><a/>",
        ] {
            assert!(parse(doc, &XmlLimits::default()).is_err(), "{doc:?}");
        }
    }

    #[test]
    fn writer_escapes() {
        let mut w = XmlWriter::new("R", "urn:x");
        w.leaf("t", "a<b&c>");
        assert_eq!(
            w.finish("R"),
            r#"<?xml version="1.0" encoding="UTF-8"?><R xmlns="urn:x"><t>a&lt;b&amp;c&gt;</t></R>"#
        );
    }
}

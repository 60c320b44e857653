//! A bounded XML reader into a small element tree (local names only), and a canonical writer.

use std::borrow::Cow;

use super::DecodeError;

mod tokens;

use tokens::{Token, Tokenizer, attributes};

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

/// An element: local name, the namespace bound to its prefix (or the default), text, children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element<'a> {
    /// Local name (prefix removed).
    pub name: Cow<'a, str>,
    /// Namespace URI declared on this element for its own prefix, if any.
    pub namespace: Option<String>,
    /// Text content, entities resolved, surrounding whitespace trimmed.
    pub text: Cow<'a, str>,
    /// Child elements in document order.
    pub children: Vec<Element<'a>>,
}

impl<'a> Element<'a> {
    /// The first child with this local name (exact match first, then ignoring ASCII case).
    pub fn child(&self, name: &str) -> Option<&Element<'a>> {
        self.children.iter().find(|c| c.name == name).or_else(|| {
            self.children
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(name))
        })
    }

    /// Every child with this local name.
    pub fn children_named<'s>(
        &'s self,
        name: &'s str,
    ) -> impl Iterator<Item = &'s Element<'a>> + 's {
        self.children
            .iter()
            .filter(move |c| c.name.eq_ignore_ascii_case(name))
    }

    /// Text of the named child.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_ref())
    }

    /// Text of a required child, or an error naming it and its parent.
    pub fn required_text(&self, name: &'static str) -> Result<&str, DecodeError> {
        self.child_text(name).ok_or_else(|| self.missing(name))
    }

    /// A required child, or an error naming it and its parent.
    pub fn required(&self, name: &'static str) -> Result<&Element<'a>, DecodeError> {
        self.child(name).ok_or_else(|| self.missing(name))
    }

    /// The error for a missing child.
    pub fn missing(&self, name: &'static str) -> DecodeError {
        DecodeError::Missing {
            parent: self.name.to_string(),
            element: name,
        }
    }

    /// Finds a descendant by local name, depth first.
    pub fn find(&self, name: &str) -> Option<&Element<'a>> {
        self.children.iter().find_map(|c| {
            if c.name.eq_ignore_ascii_case(name) {
                Some(c)
            } else {
                c.find(name)
            }
        })
    }
}

fn append_text<'a>(
    el: &mut Element<'a>,
    text: Cow<'a, str>,
    limits: &XmlLimits,
) -> Result<(), DecodeError> {
    if el.text.is_empty() {
        el.text = text;
    } else {
        el.text.to_mut().push_str(&text);
    }
    if el.text.len() > limits.max_text {
        return Err(DecodeError::Limit {
            what: "text of one element",
            limit: limits.max_text,
        });
    }
    Ok(())
}

fn trim_text(text: &mut Cow<'_, str>) {
    let trimmed = text.trim();
    if trimmed.len() == text.len() {
        return;
    }
    *text = match text {
        Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
        Cow::Owned(o) => Cow::Owned(o.trim().to_owned()),
    };
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

fn too_many(count: usize, limits: &XmlLimits) -> Result<(), DecodeError> {
    if count > limits.max_elements {
        return Err(DecodeError::Limit {
            what: "element count",
            limit: limits.max_elements,
        });
    }
    Ok(())
}

/// An element being read, with its prefix (for `xmlns:prefix` and the end tag check).
struct Open<'a> {
    element: Element<'a>,
    prefix: &'a str,
}

/// Parses one document into its root element, within `limits`. Beyond the tokens, it checks
/// that end tags match, that there is one root and no text outside it.
pub fn parse<'a>(text: &'a str, limits: &XmlLimits) -> Result<Element<'a>, DecodeError> {
    if text.len() > limits.max_bytes {
        return Err(DecodeError::Limit {
            what: "document size",
            limit: limits.max_bytes,
        });
    }
    let mut stack: Vec<Open<'a>> = Vec::with_capacity(8);
    let mut root: Option<Element<'a>> = None;
    let mut count = 0usize;
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
                if root.is_some() {
                    return Err(DecodeError::Xml(format!(
                        "content after the root element at byte {at}"
                    )));
                }
                count += 1;
                too_many(count, limits)?;
                if !empty && stack.len() >= limits.max_depth {
                    return Err(DecodeError::Limit {
                        what: "nesting depth",
                        limit: limits.max_depth,
                    });
                }
                let mut element = Element {
                    name: Cow::Borrowed(local),
                    namespace: None,
                    text: Cow::Borrowed(""),
                    children: Vec::new(),
                };
                for attr in attributes(attrs).flatten() {
                    let binds_own = match attr {
                        ("", "xmlns", _) => prefix.is_empty(),
                        ("xmlns", p, _) => p == prefix,
                        _ => false,
                    };
                    if binds_own {
                        element.namespace = Some(unescape(attr.2)?.into_owned());
                    }
                }
                if empty {
                    match stack.last_mut() {
                        Some(parent) => parent.element.children.push(element),
                        None => root = Some(element),
                    }
                } else {
                    stack.push(Open { element, prefix });
                }
            }
            Token::End { qname, at } => {
                let Some(Open {
                    element: mut el,
                    prefix,
                }) = stack.pop()
                else {
                    return Err(DecodeError::Xml(format!("unmatched end tag at byte {at}")));
                };
                let matches = if prefix.is_empty() {
                    qname == el.name
                } else {
                    qname.len() == prefix.len() + 1 + el.name.len()
                        && qname.starts_with(prefix)
                        && qname.as_bytes()[prefix.len()] == b':'
                        && qname.ends_with(el.name.as_ref())
                };
                if !matches {
                    return Err(DecodeError::Xml(format!(
                        "end tag </{qname}> at byte {at} does not close <{}>",
                        el.name
                    )));
                }
                trim_text(&mut el.text);
                match stack.last_mut() {
                    Some(parent) => parent.element.children.push(el),
                    None => root = Some(el),
                }
            }
            Token::Text { raw, at } => match stack.last_mut() {
                Some(open) => append_text(&mut open.element, unescape(raw)?, limits)?,
                None if raw.trim().is_empty() => {}
                None => {
                    return Err(DecodeError::Xml(format!(
                        "text outside the root element at byte {at}"
                    )));
                }
            },
            Token::Cdata(t) => {
                if let Some(open) = stack.last_mut() {
                    append_text(&mut open.element, Cow::Borrowed(t), limits)?;
                }
            }
        }
    }
    if let Some(open) = stack.last() {
        return Err(DecodeError::Xml(format!(
            "document ends inside <{}>",
            open.element.name
        )));
    }
    root.ok_or_else(|| DecodeError::Xml("no root element".into()))
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
        let root = parse(doc, &XmlLimits::default()).expect("parses");
        assert_eq!(root.name, "SystemStatus");
        assert_eq!(root.namespace.as_deref(), Some("urn:x"));
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
        assert_eq!((ok.name.as_ref(), ok.text.as_ref()), ("a", "x"));
        assert_eq!(ok.namespace.as_deref(), Some("u"));
    }

    #[test]
    fn children_keep_their_parents_and_order() {
        let doc = "<r><a><x>1</x><y/><z>3</z></a><b/><c>4<d>5</d></c></r>";
        let root = parse(doc, &XmlLimits::default()).expect("parses");
        let names = |e: &Element<'_>| {
            e.children
                .iter()
                .map(|c| c.name.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&root), ["a", "b", "c"]);
        let a = root.child("a").expect("a");
        assert_eq!(names(a), ["x", "y", "z"]);
        assert_eq!(a.child_text("z"), Some("3"));
        let c = root.child("c").expect("c");
        assert_eq!((c.text.as_ref(), names(c)), ("4", vec!["d".to_owned()]));
        assert!(root.child("b").is_some_and(|b| b.children.is_empty()));
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

//! A small, bounded element tree built from quick-xml events.
//!
//! The KMS documents are tiny, so a tree is simpler to read than a streaming state machine and
//! lets each document module look children up by name in any order. Everything a hostile peer
//! could use to make us work hard is refused or capped here, once, for every document:
//! DOCTYPE (and with it every DTD-declared entity: no XXE, no billion laughs), entity references
//! other than the five predefined ones, nesting deeper than [`MAX_DEPTH`], more than
//! [`MAX_ELEMENTS`] elements, and input larger than the caller's byte limit. A namespace prefix
//! must be declared (`xmlns:p`) on the element or an ancestor before it is used: a document with
//! an undeclared prefix is not namespace-well-formed, and we would otherwise match its elements
//! by local name as if they were ours.

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use zeroize::Zeroize;

use time::OffsetDateTime;

use super::time::parse_date_time;
use super::writer::is_xml_char;
use super::{XmlError, MAX_DEPTH, MAX_ELEMENTS};

/// One element: local name (prefix dropped), attributes by local name, trimmed text content
/// and child elements. Text may be a private key in hex, so it is zeroized on drop.
#[derive(Default)]
pub(crate) struct Element {
    pub name: String,
    /// The namespace of this element when it is declared on the element itself (the default
    /// `xmlns` or the `xmlns:prefix` of its own prefix); `None` otherwise.
    pub namespace: Option<String>,
    attrs: Vec<(String, String)>,
    text: String,
    pub children: Vec<Element>,
}

impl Drop for Element {
    fn drop(&mut self) {
        self.text.zeroize();
    }
}

impl Element {
    /// Text content without surrounding XML whitespace.
    pub fn text(&self) -> &str {
        self.text
            .trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
    }

    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children with this local name, in document order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Attribute value by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Trimmed text of a required child; an empty value counts as missing because the
    /// schema gives none of these elements an empty meaning.
    pub fn required_text(&self, name: &'static str) -> Result<&str, XmlError> {
        match self.child(name).map(Element::text) {
            Some(t) if !t.is_empty() => Ok(t),
            _ => Err(XmlError::MissingElement(name)),
        }
    }

    /// Trimmed text of an optional child; absent or empty gives `None`.
    pub fn optional_text(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(Element::text)
            .filter(|t| !t.is_empty())
    }

    /// Refuses a document in which any of `names` appears more than once among this element's
    /// children: a single-valued element given twice is ambiguous (which `UserUri` is meant?),
    /// so it is an error rather than "the first one wins".
    pub fn refuse_duplicates(&self, names: &[&'static str]) -> Result<(), XmlError> {
        for name in names {
            if self.children_named(name).nth(1).is_some() {
                return Err(XmlError::DuplicateElement(name));
            }
        }
        Ok(())
    }

    /// Owned copy of an optional child's text.
    pub fn optional_string(&self, name: &str) -> Option<String> {
        self.optional_text(name).map(str::to_owned)
    }

    /// A required non-negative `xsd:integer` child.
    pub fn required_u64(&self, name: &'static str) -> Result<u64, XmlError> {
        parse_u64(name, self.required_text(name)?)
    }

    /// An optional non-negative `xsd:integer` child.
    pub fn optional_u64(&self, name: &'static str) -> Result<Option<u64>, XmlError> {
        self.optional_text(name)
            .map(|t| parse_u64(name, t))
            .transpose()
    }

    /// An optional `xsd:boolean` child (`true`, `false`, `1`, `0`).
    pub fn optional_bool(&self, name: &'static str) -> Result<Option<bool>, XmlError> {
        self.optional_text(name)
            .map(|t| parse_bool(name, t))
            .transpose()
    }

    /// An optional `xsd:dateTime` child, as UTC.
    pub fn optional_date_time(
        &self,
        name: &'static str,
    ) -> Result<Option<OffsetDateTime>, XmlError> {
        self.optional_text(name)
            .map(|t| parse_date_time(name, t))
            .transpose()
    }
}

/// `xsd:integer` restricted to what fits our fields (non-negative, 64 bits).
pub(crate) fn parse_u64(field: &'static str, text: &str) -> Result<u64, XmlError> {
    text.parse::<u64>()
        .map_err(|_| XmlError::invalid(field, "not a non-negative integer"))
}

pub(crate) fn parse_bool(field: &'static str, text: &str) -> Result<bool, XmlError> {
    match text {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(XmlError::invalid(field, "not an xsd:boolean")),
    }
}

/// Parses `input` into its root element, or `Ok(None)` when the body holds no element at all
/// (only whitespace, a byte-order mark, an XML declaration or comments).
pub(crate) fn parse_document(input: &[u8], max_bytes: usize) -> Result<Option<Element>, XmlError> {
    if input.len() > max_bytes {
        return Err(XmlError::TooLarge {
            len: input.len(),
            max: max_bytes,
        });
    }
    let text = std::str::from_utf8(input).map_err(|_| XmlError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);

    let mut reader = Reader::from_str(text);
    // Well-formedness checks are on by default except for comments; turn them all on so a
    // truncated or garbled document fails here and not as a confusing missing element later.
    reader.config_mut().enable_all_checks(true);

    // Open elements, innermost last. The stack length is the current depth.
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    // Namespace prefixes in scope: each with the depth of the element that declared it.
    let mut prefixes: Vec<(String, usize)> = Vec::new();

    loop {
        let event = reader
            .read_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        match event {
            Event::Start(start) => {
                let element = open_element(&start, &mut count, &mut prefixes, &stack, &root)?;
                stack.push(element);
            }
            Event::Empty(start) => {
                let element = open_element(&start, &mut count, &mut prefixes, &stack, &root)?;
                prefixes.retain(|(_, depth)| *depth < stack.len());
                close_element(element, &mut stack, &mut root);
            }
            Event::End(_) => {
                // quick-xml has already checked that the end name matches the open one.
                let element = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("unmatched end tag".into()))?;
                prefixes.retain(|(_, depth)| *depth < stack.len());
                close_element(element, &mut stack, &mut root);
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content())?,
            Event::CData(c) => push_text(&mut stack, &c.xml10_content())?,
            Event::GeneralRef(r) => {
                let mut buf = [0u8; 4];
                let resolved = resolve_reference(&r)?;
                push_text(&mut stack, resolved.encode_utf8(&mut buf))?;
            }
            Event::DocType(_) => return Err(XmlError::DocTypeForbidden),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed(
            "document ends inside an element".into(),
        ));
    }
    Ok(root)
}

fn open_element(
    start: &BytesStart<'_>,
    count: &mut usize,
    prefixes: &mut Vec<(String, usize)>,
    stack: &[Element],
    root: &Option<Element>,
) -> Result<Element, XmlError> {
    let depth = stack.len();
    if depth == 0 && root.is_some() {
        return Err(XmlError::Malformed("more than one root element".into()));
    }
    if depth >= MAX_DEPTH {
        return Err(XmlError::TooDeep { max: MAX_DEPTH });
    }
    *count += 1;
    if *count > MAX_ELEMENTS {
        return Err(XmlError::TooManyElements { max: MAX_ELEMENTS });
    }
    let mut attrs = Vec::new();
    let mut namespace = None;
    let prefix = start.name().prefix().map(|p| p.as_ref().to_owned());
    // Declarations first (they may come after the attributes that use them).
    for attr in start.attributes() {
        let attr = attr.map_err(|e| XmlError::Malformed(e.to_string()))?;
        if let Some(declared) = attr.key.as_ref().strip_prefix("xmlns:") {
            prefixes.push((declared.to_owned(), depth));
        }
    }
    let in_scope = |p: &str| p == "xml" || prefixes.iter().any(|(d, _)| d == p);
    if let Some(p) = prefix.as_deref().filter(|p| !in_scope(p)) {
        return Err(XmlError::UndeclaredPrefix(p.chars().take(32).collect()));
    }
    for attr in start.attributes() {
        let attr = attr.map_err(|e| XmlError::Malformed(e.to_string()))?;
        let key = attr.key.local_name();
        // Namespace declarations only bind prefixes; we keep the one naming this element.
        let raw_key = attr.key.as_ref();
        if raw_key == "xmlns" || raw_key.starts_with("xmlns:") {
            let declared = raw_key.strip_prefix("xmlns:");
            if declared == prefix.as_deref() || (declared.is_none() && prefix.is_none()) {
                namespace = Some(attr.value.to_string());
            }
            continue;
        }
        if let Some(p) = attr.key.prefix() {
            let p = p.as_ref();
            if !in_scope(p) {
                return Err(XmlError::UndeclaredPrefix(p.chars().take(32).collect()));
            }
        }
        // Predefined entities and character references only: `normalized_value` resolves
        // nothing else and fails on any other reference.
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        check_chars(&value)?;
        attrs.push((key.as_ref().to_owned(), value.into_owned()));
    }
    Ok(Element {
        name: start.local_name().as_ref().to_owned(),
        namespace,
        attrs,
        text: String::new(),
        children: Vec::new(),
    })
}

fn close_element(element: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

/// Refuses characters XML 1.0 does not allow (§2.2 `Char`: C0 controls other than tab, LF and
/// CR, surrogates, U+FFFE, U+FFFF), whether written raw or as a character reference.
fn check_chars(text: &str) -> Result<(), XmlError> {
    match text.chars().find(|c| !is_xml_char(*c)) {
        Some(c) => Err(XmlError::Malformed(format!(
            "character U+{:04X} is not allowed in XML",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), XmlError> {
    check_chars(text)?;
    match stack.last_mut() {
        Some(open) => {
            open.text.push_str(text);
            Ok(())
        }
        // Outside the root only whitespace may appear.
        None if text.trim().is_empty() => Ok(()),
        None => Err(XmlError::Malformed("text outside the root element".into())),
    }
}

/// Resolves a character reference or one of the five predefined entities. Any other name
/// would need a DTD to mean something, and we accept no DTD.
fn resolve_reference(r: &BytesRef<'_>) -> Result<char, XmlError> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) => Ok(c),
            _ => Err(XmlError::Malformed("invalid character reference".into())),
        };
    }
    match r.as_ref() {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(XmlError::EntityForbidden(other.chars().take(32).collect())),
    }
}

//! The strict XML writer behind every renderer: escapes text, refuses what XML cannot carry,
//! never writes an empty element, and keeps its output in a zeroizing buffer that it grows by
//! hand, because `String`'s own reallocation would free the old buffer (with any key already
//! written into it) without zeroizing it.

use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::time::format_date_time;
use super::XmlError;

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

pub(crate) struct XmlWriter {
    out: Zeroizing<String>,
    depth: usize,
}

/// Characters XML 1.0 cannot represent at all, escaped or not (§2.2 `Char`).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

impl XmlWriter {
    /// Starts a document with the XML declaration. `capacity` is a size estimate; a good one
    /// avoids copies, a bad one only costs an extra (zeroized) copy.
    pub fn new(capacity: usize) -> Self {
        let mut w = XmlWriter {
            out: Zeroizing::new(String::with_capacity(capacity.max(256))),
            depth: 0,
        };
        w.push("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        w
    }

    pub fn finish(mut self) -> Zeroizing<String> {
        self.push("\n");
        self.out
    }

    fn reserve(&mut self, additional: usize) {
        let needed = self.out.len() + additional;
        if needed > self.out.capacity() {
            let mut bigger =
                Zeroizing::new(String::with_capacity(needed.max(self.out.capacity() * 2)));
            bigger.push_str(&self.out);
            // The old buffer is dropped here, and `Zeroizing` wipes it first.
            self.out = bigger;
        }
    }

    fn push(&mut self, s: &str) {
        self.reserve(s.len());
        self.out.push_str(s);
    }

    fn push_char(&mut self, c: char) {
        self.reserve(c.len_utf8());
        self.out.push(c);
    }

    fn indent(&mut self) {
        self.reserve(1 + 2 * self.depth);
        self.out.push('\n');
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn escaped(
        &mut self,
        field: &'static str,
        value: &str,
        in_attribute: bool,
    ) -> Result<(), XmlError> {
        // Most values need no escape at all: one copy.
        if value
            .bytes()
            .all(|b| matches!(b, b' ' | b'!' | b'#'..=b'%' | b'\''..=b';' | b'=' | b'?'..=b'~'))
        {
            self.push(value);
            return Ok(());
        }
        self.reserve(value.len());
        for c in value.chars() {
            match c {
                '&' => self.push("&amp;"),
                '<' => self.push("&lt;"),
                '>' => self.push("&gt;"),
                '"' if in_attribute => self.push("&quot;"),
                // Attribute-value normalization would turn these into spaces on the way back.
                '\t' if in_attribute => self.push("&#9;"),
                '\n' if in_attribute => self.push("&#10;"),
                '\r' => self.push("&#13;"),
                c if is_xml_char(c) => self.push_char(c),
                _ => return Err(XmlError::invalid(field, "character not allowed in XML")),
            }
        }
        Ok(())
    }

    /// Opens `<name attr="v" ...>` on a new line. Attributes are written in the given order.
    pub fn open(
        &mut self,
        name: &'static str,
        attrs: &[(&'static str, &str)],
    ) -> Result<(), XmlError> {
        if self.depth > 0 {
            self.indent();
        }
        self.push("<");
        self.push(name);
        for (key, value) in attrs {
            self.push(" ");
            self.push(key);
            self.push("=\"");
            self.escaped(key, value, true)?;
            self.push("\"");
        }
        self.push(">");
        self.depth += 1;
        Ok(())
    }

    /// `<name attr="v"/>`: only for elements whose attributes are the whole content (an empty
    /// certificate cache still says which cache number it is).
    pub fn empty(
        &mut self,
        name: &'static str,
        attrs: &[(&'static str, &str)],
    ) -> Result<(), XmlError> {
        self.open(name, attrs)?;
        self.depth -= 1;
        // Turn the just-written `>` into `/>`; `open` always ends with `>`.
        self.out.pop();
        self.push("/>");
        Ok(())
    }

    /// Closes the innermost element on a new line.
    pub fn close(&mut self, name: &'static str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.push("</");
        self.push(name);
        self.push(">");
    }

    /// `<name>escaped text</name>`; refuses an empty value (we never emit empty elements, a
    /// missing value must be an absent optional element instead).
    pub fn text(&mut self, name: &'static str, value: &str) -> Result<(), XmlError> {
        if value.trim().is_empty() {
            return Err(XmlError::invalid(name, "empty value"));
        }
        self.indent();
        self.push("<");
        self.push(name);
        self.push(">");
        self.escaped(name, value, false)?;
        self.push("</");
        self.push(name);
        self.push(">");
        Ok(())
    }

    pub fn opt_text(&mut self, name: &'static str, value: Option<&str>) -> Result<(), XmlError> {
        match value {
            Some(v) => self.text(name, v),
            None => Ok(()),
        }
    }

    pub fn number(&mut self, name: &'static str, value: u64) -> Result<(), XmlError> {
        self.text(name, &value.to_string())
    }

    pub fn boolean(&mut self, name: &'static str, value: Option<bool>) -> Result<(), XmlError> {
        match value {
            Some(v) => self.text(name, if v { "true" } else { "false" }),
            None => Ok(()),
        }
    }

    pub fn date_time(&mut self, name: &'static str, value: OffsetDateTime) -> Result<(), XmlError> {
        let text = format_date_time(name, value)?;
        self.text(name, &text)
    }

    pub fn opt_date_time(
        &mut self,
        name: &'static str,
        value: Option<OffsetDateTime>,
    ) -> Result<(), XmlError> {
        match value {
            Some(v) => self.date_time(name, v),
            None => Ok(()),
        }
    }

    /// `<name>HEX</name>`: one line of upper-case hexBinary, written digit by digit straight
    /// into the zeroizing output (no intermediate string holding the key).
    pub fn hex(&mut self, name: &'static str, bytes: &[u8]) -> Result<(), XmlError> {
        self.hex_with(name, bytes, HEX_UPPER)
    }

    /// Like [`Self::hex`] with lower-case digits (for `UserID`, see the key set module).
    pub fn hex_lower(&mut self, name: &'static str, bytes: &[u8]) -> Result<(), XmlError> {
        self.hex_with(name, bytes, b"0123456789abcdef")
    }

    fn hex_with(
        &mut self,
        name: &'static str,
        bytes: &[u8],
        digits: &[u8; 16],
    ) -> Result<(), XmlError> {
        if bytes.is_empty() {
            return Err(XmlError::invalid(name, "empty value"));
        }
        self.indent();
        self.reserve(2 * name.len() + 5 + 2 * bytes.len());
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        // Digits go through a small stack buffer (wiped after) a chunk at a time.
        let mut chunk = Zeroizing::new([0u8; 128]);
        for part in bytes.chunks(chunk.len() / 2) {
            for (i, b) in part.iter().enumerate() {
                chunk[2 * i] = digits[usize::from(b >> 4)];
                chunk[2 * i + 1] = digits[usize::from(b & 0x0f)];
            }
            let hex = std::str::from_utf8(&chunk[..2 * part.len()])
                .map_err(|_| XmlError::invalid(name, "hex digits"))?;
            self.out.push_str(hex);
        }
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        Ok(())
    }
}

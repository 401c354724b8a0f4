//! XML exports: streamed with quick-xml's pull parser. A record is the element at
//! the mapping's path (by local names: namespace prefixes are ignored); only the
//! requested child paths and attributes are captured. A DOCTYPE is refused, so
//! no entity is ever defined, read or expanded.

use std::collections::HashMap;
use std::io::{BufReader, Read};

use quick_xml::events::{BytesRef, BytesStart, Event};

use super::guard::Guard;
use super::{Key, Location, RawRecord, ReadError, MAX_VALUE_BYTES};

/// Any run longer than this without `<` or `>` is one oversized token.
const MAX_TOKEN: usize = 1024 * 1024;
const MAX_DEPTH: usize = 256;

pub struct XmlRecords {
    reader: quick_xml::Reader<BufReader<Box<dyn Read + Send>>>,
    buf: Vec<u8>,
    record_path: Vec<String>,
    /// Child element paths relative to the record (`Client/BSN`) → slot.
    elements: HashMap<String, usize>,
    /// Attribute paths (`@id`, `Client/Naam/@achternaam`) → slot.
    attributes: HashMap<String, usize>,
    keys: Vec<String>,
    /// Local names of the open elements, from the root.
    stack: Vec<String>,
    /// The path of the innermost open element relative to the record.
    rel: String,
    /// `rel`'s length before each element inside the record was pushed.
    rel_marks: Vec<usize>,
    in_record: bool,
    /// The slot whose element is open now and takes text.
    capture: Option<usize>,
    /// A slot's value is final once its element closed with text: the first
    /// occurrence wins.
    filled: Vec<bool>,
    records: u64,
    root_seen: bool,
}

/// What is wrong with a file quick-xml refused, in visync's words: its own
/// texts embed element names and snippets of the file (redact.rs).
fn xml_problem(e: &quick_xml::Error) -> &'static str {
    use quick_xml::errors::{IllFormedError, SyntaxError};
    match e {
        quick_xml::Error::Syntax(s) => match s {
            SyntaxError::UnclosedTag => "a tag is not closed",
            SyntaxError::UnclosedComment => "a comment is not closed",
            SyntaxError::UnclosedCData => "a CDATA section is not closed",
            SyntaxError::UnclosedPI | SyntaxError::UnclosedXmlDecl => {
                "a processing instruction is not closed"
            }
            _ => "the markup is not XML",
        },
        quick_xml::Error::IllFormed(i) => match i {
            IllFormedError::MismatchedEndTag { .. } => "an end tag does not match its start tag",
            IllFormedError::UnmatchedEndTag(_) => "an end tag has no start tag",
            IllFormedError::MissingEndTag(_) => "an element is not closed",
            _ => "the document is not well-formed",
        },
        quick_xml::Error::InvalidAttr(_) => "an attribute is malformed",
        quick_xml::Error::Encoding(_) => {
            "the text is not in the mapping's encoding: check `encoding` in the mapping"
        }
        quick_xml::Error::Escape(_) => "a character reference is malformed",
        quick_xml::Error::Namespace(_) => "a namespace prefix is not declared",
        quick_xml::Error::Io(_) => "the file cannot be read",
    }
}

fn local(name: &str) -> String {
    name.to_string()
}

/// Strips namespace prefixes from each step of a mapping path.
fn strip_prefixes(path: &str) -> String {
    path.split('/')
        .map(|step| {
            let (at, name) = step.strip_prefix('@').map_or(("", step), |n| ("@", n));
            let name = name.rsplit(':').next().unwrap_or(name);
            format!("{at}{name}")
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl XmlRecords {
    pub fn new(
        input: Box<dyn Read + Send>,
        record_path: Vec<String>,
        encoding: &'static encoding_rs::Encoding,
        keys: &[Key],
    ) -> XmlRecords {
        let guard = Guard::new(input, (b'<', b'>'), "'<' or '>'", MAX_TOKEN);
        // quick-xml reads UTF-8; other encodings are transcoded as they stream.
        let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
            .encoding(Some(encoding))
            .bom_override(true)
            .strip_bom(true)
            .utf8_passthru(true)
            .build(guard);
        let boxed: Box<dyn Read + Send> = Box::new(decoded);
        let mut reader = quick_xml::Reader::from_reader(BufReader::with_capacity(64 * 1024, boxed));
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        let mut elements = HashMap::new();
        let mut attributes = HashMap::new();
        for (slot, key) in keys.iter().enumerate() {
            let path = strip_prefixes(&key.expr);
            let is_attr = path.rsplit('/').next().is_some_and(|s| s.starts_with('@'));
            if is_attr {
                attributes.insert(path, slot);
            } else {
                elements.insert(path, slot);
            }
        }
        XmlRecords {
            reader,
            buf: Vec::with_capacity(8 * 1024),
            record_path: record_path.iter().map(|s| strip_prefixes(s)).collect(),
            elements,
            attributes,
            keys: keys.iter().map(|k| k.expr.clone()).collect(),
            stack: Vec::new(),
            rel: String::new(),
            rel_marks: Vec::new(),
            in_record: false,
            capture: None,
            filled: vec![false; keys.len()],
            records: 0,
            root_seen: false,
        }
    }

    fn xml_error(&self, e: quick_xml::Error) -> ReadError {
        if let quick_xml::Error::Io(io) = &e {
            // The guard's refusals arrive as IO errors.
            if let Some(inner) = io.get_ref() {
                if let Some(super::guard::Refused(kind)) = inner.downcast_ref() {
                    return ReadError::from(*kind);
                }
            }
        }
        ReadError::Xml {
            offset: self.reader.error_position(),
            after: self.complete(),
            message: xml_problem(&e),
        }
    }

    /// An open element as a message may name it: only a name the mapping
    /// declares (redact.rs).
    fn element_name(&self, name: &str) -> String {
        let declared = self
            .record_path
            .iter()
            .map(String::as_str)
            .chain(self.keys.iter().flat_map(|k| k.split('/')));
        match crate::redact::known_name(name, declared) {
            Some(_) => format!("<{name}>"),
            None => "an element the mapping does not name".to_string(),
        }
    }

    /// Records read to their end.
    fn complete(&self) -> u64 {
        self.records - u64::from(self.in_record)
    }

    fn push(&mut self, rec: &mut RawRecord, name: String) -> Result<(), ReadError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(ReadError::TooDeep(MAX_DEPTH));
        }
        if !self.root_seen {
            self.root_seen = true;
            if self.record_path.first() != Some(&name) {
                return Err(ReadError::WrongRoot {
                    expected: self.record_path.first().cloned().unwrap_or_default(),
                });
            }
        }
        self.stack.push(name);
        if self.in_record {
            self.rel_marks.push(self.rel.len());
            if !self.rel.is_empty() {
                self.rel.push('/');
            }
            self.rel
                .push_str(self.stack.last().map_or("", |s| s.as_str()));
            self.capture = self
                .elements
                .get(&self.rel)
                .copied()
                .filter(|&s| !self.filled[s]);
        } else if self.stack == self.record_path {
            self.in_record = true;
            self.records += 1;
            rec.location = Some(Location::Record(self.records));
            rec.values.resize(self.filled.len(), String::new());
            rec.values.iter_mut().for_each(String::clear);
            self.filled.iter_mut().for_each(|f| *f = false);
            self.rel.clear();
            self.capture = None;
        }
        Ok(())
    }

    fn attributes(&mut self, e: &BytesStart<'_>, rec: &mut RawRecord) -> Result<(), ReadError> {
        if !self.in_record || self.attributes.is_empty() {
            return Ok(());
        }
        for attr in e.attributes() {
            let attr = attr.map_err(|err| self.xml_error(err.into()))?;
            let key = attr.key.local_name();
            let name = local(key.as_ref());
            let path = if self.rel.is_empty() {
                format!("@{name}")
            } else {
                format!("{}/@{name}", self.rel)
            };
            if let Some(&slot) = self.attributes.get(&path) {
                if self.filled[slot] {
                    continue;
                }
                let value = attr
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|err| match err {
                        quick_xml::Error::Escape(
                            quick_xml::escape::EscapeError::UnrecognizedEntity(_, name),
                        ) => ReadError::Entity {
                            length: name.chars().count(),
                            record: self.records,
                        },
                        other => self.xml_error(other),
                    })?;
                self.check_len(value.len(), slot)?;
                rec.values[slot].clear();
                rec.values[slot].push_str(&value);
                self.filled[slot] = !rec.values[slot].trim().is_empty();
            }
        }
        Ok(())
    }

    fn check_len(&self, len: usize, slot: usize) -> Result<(), ReadError> {
        if len > MAX_VALUE_BYTES {
            return Err(ReadError::ValueTooLong {
                location: Location::Record(self.records),
                key: self.keys[slot].clone(),
                limit: MAX_VALUE_BYTES,
            });
        }
        Ok(())
    }

    fn take_text(&mut self, rec: &mut RawRecord, text: &str) -> Result<(), ReadError> {
        if let Some(slot) = self.capture {
            self.check_len(rec.values[slot].len() + text.len(), slot)?;
            rec.values[slot].push_str(text);
        }
        Ok(())
    }

    /// An element ends: whether it was the record's own (the record is
    /// complete); else its value is filled and the parent captures again.
    fn end(&mut self, rec: &mut RawRecord) -> bool {
        if self.in_record {
            if self.stack.len() == self.record_path.len() {
                self.stack.pop();
                self.in_record = false;
                self.capture = None;
                return true;
            }
            if let Some(slot) = self.capture.take() {
                self.filled[slot] = !rec.values[slot].trim().is_empty();
            }
            if let Some(mark) = self.rel_marks.pop() {
                self.rel.truncate(mark);
            }
        }
        self.stack.pop();
        // Text after a nested element belongs to its parent again.
        if self.in_record {
            self.capture = self
                .elements
                .get(&self.rel)
                .copied()
                .filter(|&s| !self.filled[s]);
        }
        false
    }

    /// A character reference or one of the five predefined entities, as
    /// text; any other entity refuses the file (DTDs are never processed).
    fn reference(&mut self, rec: &mut RawRecord, r: &BytesRef<'_>) -> Result<(), ReadError> {
        let resolved = if r.is_char_ref() {
            r.resolve_char_ref().map_err(|e| self.xml_error(e))?
        } else {
            match &**r {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "apos" => Some('\''),
                "quot" => Some('"'),
                _ => None,
            }
        };
        match resolved {
            Some(c) => self.take_text(rec, c.encode_utf8(&mut [0u8; 4])),
            None => Err(ReadError::Entity {
                length: r.chars().count(),
                record: self.records,
            }),
        }
    }

    /// The end of the file: fine only after the root element closed.
    fn eof(&self) -> Result<(), ReadError> {
        if let Some(open) = self.stack.last() {
            return Err(ReadError::Truncated {
                element: self.element_name(open),
                after: self.complete(),
            });
        }
        if !self.root_seen {
            return Err(ReadError::Empty);
        }
        Ok(())
    }

    /// Fills `rec` with the next record; `Ok(false)` at the end of the file.
    pub fn next_record(&mut self, rec: &mut RawRecord) -> Result<bool, ReadError> {
        loop {
            self.buf.clear();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(ev) => ev.into_owned(),
                Err(e) => return Err(self.xml_error(e)),
            };
            match event {
                Event::Start(e) => {
                    let name = local(e.local_name().as_ref());
                    self.push(rec, name)?;
                    self.attributes(&e, rec)?;
                }
                Event::End(_) => {
                    if self.end(rec) {
                        return Ok(true);
                    }
                }
                Event::Text(t) => {
                    let text = t.xml10_content();
                    self.take_text(rec, &text)?;
                }
                Event::CData(t) => {
                    let text = t.xml10_content();
                    self.take_text(rec, &text)?;
                }
                Event::GeneralRef(r) => self.reference(rec, &r)?,
                Event::DocType(_) => return Err(ReadError::Doctype),
                Event::Eof => return self.eof().map(|()| false),
                Event::Empty(_) | Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(xml: &str, path: &str, k: &[&str]) -> Result<Vec<Vec<String>>, ReadError> {
        let keys: Vec<Key> = k
            .iter()
            .map(|e| Key {
                expr: e.to_string(),
                required: false,
            })
            .collect();
        let mut r = XmlRecords::new(
            Box::new(std::io::Cursor::new(xml.as_bytes().to_vec())),
            path.split('/').map(String::from).collect(),
            encoding_rs::UTF_8,
            &keys,
        );
        let mut rec = RawRecord::default();
        let mut out = Vec::new();
        while r.next_record(&mut rec)? {
            out.push(rec.values.clone());
        }
        Ok(out)
    }

    #[test]
    fn namespaces_attributes_cdata_and_entities() {
        let xml = r#"<?xml version="1.0"?>
<x:Export xmlns:x="urn:cms"><x:Dossiers>
  <x:Dossier x:id="D-1"><x:Client><x:BSN>123456782</x:BSN>
    <x:Naam achternaam="Vries &amp; Zn" /><x:Notitie>geheim</x:Notitie></x:Client>
    <x:Mw><![CDATA[A & B]]></x:Mw></x:Dossier>
  <x:Dossier id="D-2"><x:Client><x:BSN>&#49;23</x:BSN></x:Client></x:Dossier>
</x:Dossiers></x:Export>"#;
        let rows = read_all(
            xml,
            "Export/Dossiers/Dossier",
            &["@id", "Client/BSN", "Client/Naam/@achternaam", "Mw"],
        )
        .unwrap();
        assert_eq!(rows[0], vec!["D-1", "123456782", "Vries & Zn", "A & B"]);
        assert_eq!(rows[1], vec!["D-2", "123", "", ""]);
    }

    #[test]
    fn the_first_occurrence_wins() {
        let xml = "<E><R><T>1</T><T>2</T></R></E>";
        assert_eq!(
            read_all(xml, "E/R", &["T"]).unwrap(),
            vec![vec!["1".to_string()]]
        );
    }

    #[test]
    fn hostile_and_broken_files_are_refused_as_a_whole() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><E><R><T>&lol2;</T></R></E>"#;
        assert!(matches!(
            read_all(bomb, "E/R", &["T"]),
            Err(ReadError::Doctype)
        ));
        let xxe = r#"<!DOCTYPE E [<!ENTITY x SYSTEM "file:///etc/passwd">]><E/>"#;
        assert!(matches!(
            read_all(xxe, "E/R", &["T"]),
            Err(ReadError::Doctype)
        ));
        assert!(matches!(
            read_all("<E><R><T>&x;</T></R></E>", "E/R", &["T"]),
            Err(ReadError::Entity { .. })
        ));
        assert!(matches!(
            read_all("<E><R><T>1</T></R><R><T>", "E/R", &["T"]),
            Err(ReadError::Truncated { after: 1, .. })
        ));
        assert!(matches!(
            read_all("<E><R></X></E>", "E/R", &["T"]),
            Err(ReadError::Xml { .. })
        ));
        assert!(matches!(
            read_all("<Other/>", "E/R", &["T"]),
            Err(ReadError::WrongRoot { .. })
        ));
        assert!(matches!(read_all("", "E/R", &["T"]), Err(ReadError::Empty)));
    }
}

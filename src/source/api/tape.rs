//! A JSON document as one flat list of slots (a "tape") that borrows its
//! strings from the bytes it was parsed from.
//!
//! A FHIR page is several times the bytes of the same rows as CSV, and a
//! `serde_json::Value` tree spends most of a poll's time in the allocator:
//! a `String` per name and value, a map per object, and as many frees.
//! A page is read once and dropped, so its strings can stay in the page's
//! bytes (owned only where JSON escapes them), and its arrays and objects
//! can be runs of one vector, each opened by a slot that says where it
//! ends. Objects are searched in order: FHIR's are small.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

#[derive(Debug, Clone, PartialEq)]
enum Slot<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(Cow<'a, str>),
    /// A member's name; its value follows.
    Name(Cow<'a, str>),
    /// An array or object, and the index just past its last slot.
    Array(u32),
    Object(u32),
}

/// A parsed document.
#[derive(Debug, Clone, PartialEq)]
pub struct Tape<'a> {
    slots: Vec<Slot<'a>>,
}

impl<'a> Tape<'a> {
    /// Parses one JSON document, all of `body`.
    pub fn parse(body: &'a [u8]) -> serde_json::Result<Tape<'a>> {
        // About one slot per dozen bytes of FHIR JSON: one allocation.
        let mut slots = Vec::with_capacity(body.len() / 12 + 1);
        let mut de = serde_json::Deserializer::from_slice(body);
        Fill(&mut slots).deserialize(&mut de)?;
        de.end()?;
        Ok(Tape { slots })
    }

    pub fn root(&self) -> Node<'_, 'a> {
        Node {
            tape: &self.slots,
            at: 0,
        }
    }
}

/// A value in a tape.
#[derive(Clone, Copy)]
pub struct Node<'t, 'a> {
    tape: &'t [Slot<'a>],
    at: usize,
}

/// What a node is, to match on.
pub enum Kind<'t> {
    Null,
    Bool(bool),
    Number(&'t serde_json::Number),
    Str(&'t str),
    Array,
    Object,
}

impl<'t, 'a> Node<'t, 'a> {
    pub fn kind(&self) -> Kind<'t> {
        match &self.tape[self.at] {
            Slot::Null => Kind::Null,
            Slot::Bool(b) => Kind::Bool(*b),
            Slot::Number(n) => Kind::Number(n),
            Slot::Str(s) | Slot::Name(s) => Kind::Str(s),
            Slot::Array(_) => Kind::Array,
            Slot::Object(_) => Kind::Object,
        }
    }

    /// The index just past this value.
    fn end(&self) -> usize {
        match &self.tape[self.at] {
            Slot::Array(end) | Slot::Object(end) => *end as usize,
            _ => self.at + 1,
        }
    }

    /// An object's member (the first of that name).
    pub fn get(&self, name: &str) -> Option<Node<'t, 'a>> {
        let Slot::Object(end) = &self.tape[self.at] else {
            return None;
        };
        let mut i = self.at + 1;
        while i < *end as usize {
            let value = Node {
                tape: self.tape,
                at: i + 1,
            };
            if matches!(&self.tape[i], Slot::Name(n) if n == name) {
                return Some(value);
            }
            i = value.end();
        }
        None
    }

    /// A string member's text: `node.str_at("id")`.
    pub fn str_at(&self, name: &str) -> Option<&'t str> {
        self.get(name)?.as_str()
    }

    /// A path of member names, `/`-separated as a JSON pointer without
    /// escapes or indexes (the few fixed paths FHIR reading needs).
    pub fn pointer(&self, path: &str) -> Option<Node<'t, 'a>> {
        path.trim_start_matches('/')
            .split('/')
            .try_fold(*self, |n, name| n.get(name))
    }

    pub fn as_str(&self) -> Option<&'t str> {
        match self.kind() {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self.kind() {
            Kind::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    /// An array's items; `None` when this is not an array.
    pub fn items(&self) -> Option<Items<'t, 'a>> {
        match &self.tape[self.at] {
            Slot::Array(end) => Some(Items {
                tape: self.tape,
                at: self.at + 1,
                end: *end as usize,
            }),
            _ => None,
        }
    }

    /// This value as a tape of its own, every string owned: for the few
    /// resources kept past their page (care managers).
    pub fn to_tape(self) -> Tape<'static> {
        let base = self.at as u32;
        let slots = self.tape[self.at..self.end()]
            .iter()
            .map(|s| match s {
                Slot::Null => Slot::Null,
                Slot::Bool(b) => Slot::Bool(*b),
                Slot::Number(n) => Slot::Number(n.clone()),
                Slot::Str(s) => Slot::Str(Cow::Owned(s.to_string())),
                Slot::Name(s) => Slot::Name(Cow::Owned(s.to_string())),
                Slot::Array(end) => Slot::Array(end - base),
                Slot::Object(end) => Slot::Object(end - base),
            })
            .collect();
        Tape { slots }
    }
}

/// The items of an array, in order.
#[derive(Clone)]
pub struct Items<'t, 'a> {
    tape: &'t [Slot<'a>],
    at: usize,
    end: usize,
}

impl<'t, 'a> Iterator for Items<'t, 'a> {
    type Item = Node<'t, 'a>;

    fn next(&mut self) -> Option<Node<'t, 'a>> {
        (self.at < self.end).then(|| {
            let n = Node {
                tape: self.tape,
                at: self.at,
            };
            self.at = n.end();
            n
        })
    }
}

/// The parser's visitor: pushes what it visits onto the tape.
struct Fill<'t, 'de>(&'t mut Vec<Slot<'de>>);

impl<'de> DeserializeSeed<'de> for Fill<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Fill<'_, 'de> {
    fn push<E>(self, slot: Slot<'de>) -> Result<(), E> {
        self.0.push(slot);
        Ok(())
    }

    /// Opens a container, fills it, and writes where it ends.
    fn container<E>(
        self,
        open: fn(u32) -> Slot<'de>,
        fill: impl FnOnce(&mut Vec<Slot<'de>>) -> Result<(), E>,
    ) -> Result<(), E> {
        let at = self.0.len();
        self.0.push(open(0));
        fill(self.0)?;
        self.0[at] = open(self.0.len() as u32);
        Ok(())
    }
}

impl<'de> Visitor<'de> for Fill<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.push(Slot::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.push(Slot::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        self.push(Slot::Number(n.into()))
    }

    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        self.push(Slot::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<(), E> {
        // JSON has no NaN or infinity: a parsed float always converts.
        self.push(serde_json::Number::from_f64(n).map_or(Slot::Null, Slot::Number))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<(), E> {
        self.push(Slot::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.push(Slot::Str(Cow::Owned(s.to_string())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.container(Slot::Array, |tape| {
            while seq.next_element_seed(Fill(tape))?.is_some() {}
            Ok(())
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.container(Slot::Object, |tape| {
            while map.next_key_seed(Name(tape))?.is_some() {
                map.next_value_seed(Fill(tape))?;
            }
            Ok(())
        })
    }
}

/// A member's name onto the tape.
struct Name<'t, 'de>(&'t mut Vec<Slot<'de>>);

impl<'de> DeserializeSeed<'de> for Name<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<(), E> {
        self.0.push(Slot::Name(Cow::Borrowed(s)));
        Ok(())
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.0.push(Slot::Name(Cow::Owned(s.to_string())));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, Node, Tape};

    fn shown(n: Node<'_, '_>) -> String {
        match n.kind() {
            Kind::Null => "null".into(),
            Kind::Bool(b) => b.to_string(),
            Kind::Number(n) => n.to_string(),
            Kind::Str(s) => format!("{s:?}"),
            Kind::Array => format!(
                "[{}]",
                n.items().unwrap().map(shown).collect::<Vec<_>>().join(",")
            ),
            Kind::Object => "{..}".into(),
        }
    }

    #[test]
    fn members_items_and_escapes_read_back() {
        let text = r#"{"a": "plain", "b\u0041": "esc\"aped", "n": [1, -2, 2.5, true, null, [], {"x": [3]}], "z": {}}"#;
        let tape = Tape::parse(text.as_bytes()).unwrap();
        let root = tape.root();
        assert_eq!(root.str_at("a"), Some("plain"));
        assert_eq!(root.str_at("bA"), Some("esc\"aped"));
        assert_eq!(
            shown(root.get("n").unwrap()),
            "[1,-2,2.5,true,null,[],{..}]"
        );
        // A member after nested containers is found: ends are right.
        assert!(matches!(
            root.get("z").map(|z| z.kind()),
            Some(Kind::Object)
        ));
        assert_eq!(root.get("missing").map(shown), None);
        let x = root.get("n").unwrap().items().unwrap().nth(6).unwrap();
        assert_eq!(shown(x.get("x").unwrap()), "[3]");
        // A subtree copied out reads the same.
        let owned = x.to_tape();
        assert_eq!(shown(owned.root().get("x").unwrap()), "[3]");
    }

    #[test]
    fn a_pointer_follows_member_names() {
        let tape = Tape::parse(br#"{"search": {"mode": "include"}, "x": 1}"#).unwrap();
        let root = tape.root();
        assert_eq!(
            root.pointer("/search/mode").and_then(|n| n.as_str()),
            Some("include")
        );
        assert!(root.pointer("/search/none").is_none());
        assert_eq!(root.pointer("/x").and_then(|n| n.as_u64()), Some(1));
    }

    #[test]
    fn trailing_bytes_and_truncation_are_errors() {
        assert!(Tape::parse(br#"{"a": 1} x"#).is_err());
        assert!(Tape::parse(br#"{"a": [1, 2"#).is_err());
    }
}

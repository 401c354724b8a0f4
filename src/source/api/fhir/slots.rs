//! Values kept as runs of one string: a page's episodes, a patient's
//! values, a care manager's. One allocation for many values, where a
//! `String` each would cost an allocation and a free per value.

/// Values appended one after another; the n-th is `get(n)`.
#[derive(Default)]
pub struct Slots {
    text: String,
    ends: Vec<u32>,
}

impl Slots {
    /// Appends a value that `write` puts onto the buffer.
    pub fn push_with(&mut self, write: impl FnOnce(&mut String)) {
        write(&mut self.text);
        self.ends.push(self.text.len() as u32);
    }

    pub fn push(&mut self, value: &str) {
        self.push_with(|t| t.push_str(value));
    }

    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// The values as they are now, in exactly as much memory: what stays of
    /// an included resource for the rest of the poll.
    pub fn packed(&self) -> Packed {
        Packed {
            text: self.text.as_str().into(),
            ends: self.ends.as_slice().into(),
        }
    }
}

/// Slots that no longer grow.
pub struct Packed {
    text: Box<str>,
    ends: Box<[u32]>,
}

impl Packed {
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;

    #[test]
    fn values_read_back_empty_ones_too() {
        let mut s = Slots::default();
        s.push("a");
        s.push("");
        s.push_with(|t| t.push_str("bc"));
        assert_eq!((s.get(0), s.get(1), s.get(2), s.len()), ("a", "", "bc", 3));
        let p = s.packed();
        assert_eq!((p.get(0), p.get(1), p.get(2)), ("a", "", "bc"));
        s.clear();
        assert_eq!(s.len(), 0);
    }
}

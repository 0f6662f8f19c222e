//! One pass over the registry's text that checks what reading it needs
//! checked and finds each entry: the text is one JSON object, every object
//! in it has distinct keys, and each top-level name's value is located
//! without being parsed.
//!
//! The scan is the fast way only. It says yes to less than JSON allows:
//! a key written with an escape, a `\u` escape of a surrogate, or nesting
//! deeper than `MAX_DEPTH` send the caller the slow way (serde, and the
//! separate search for repeated keys), which also words every error. What
//! it says yes to, serde reads the same (checked against serde by a test on
//! generated and mutated texts).

use std::collections::HashSet;
use std::ops::Range;

use crate::fnv::Build as Fnv;

/// Deepest nesting the scan follows (serde_json stops at 128).
const MAX_DEPTH: usize = 100;

/// An object's keys seen so far: a list while short, a set past that (a
/// registry of a thousand names would make a list quadratic).
const LIST_MAX: usize = 16;

/// Each top-level name, in file order, with the byte range of its value;
/// `None` when the text is not a JSON object with distinct names, or holds
/// something the scan leaves to serde. With `nested`, every object inside
/// must have distinct keys as well; without, the caller checks the entries
/// it reads.
pub(super) fn scan(text: &str, nested: bool) -> Option<Vec<(Range<usize>, Range<usize>)>> {
    let mut entries = Vec::with_capacity((text.len() / 64).min(1 << 16));
    scan_with(text, nested, |name, value| entries.push((name, value)))?;
    Some(entries)
}

/// `scan` for one name: the byte range of its value (`Some(None)`: not
/// there), without keeping every entry's (a registry of a thousand names
/// would fill 32 KiB of fresh pages with them).
pub(super) fn scan_for(text: &str, want: &str) -> Option<Option<Range<usize>>> {
    let mut found = None;
    scan_with(text, false, |name, value| {
        if &text[name] == want {
            found = Some(value);
        }
    })?;
    Some(found)
}

/// The scan itself: each top-level name's range and its value's range to
/// `entry`, in file order, as they are found; `None` as `scan` says it.
/// Every range starts and ends at an ASCII byte the scan matched, so on a
/// character boundary (checked all the same, since the caller slices).
fn scan_with(
    text: &str,
    nested: bool,
    mut entry: impl FnMut(Range<usize>, Range<usize>),
) -> Option<()> {
    let mut s = Scanner {
        b: text.as_bytes(),
        i: 0,
        nested,
        keys: Vec::new(),
    };
    s.ws();
    if s.peek()? != b'{' {
        return None;
    }
    s.i += 1;
    // Names told apart by their hashes, sorted once at the end: a set of
    // the names themselves cost more in inserts and in the fresh pages of
    // its table than the rest of the scan of a thousand. Two names with
    // one hash (distinct or not) leave the text to serde, which compares
    // the names themselves. Sized for entries of 64 bytes or more
    // (`register` writes about 80 for a short command); never more than
    // 65 536 up front.
    let mut hashes: Vec<u64> = Vec::with_capacity((text.len() / 64).min(1 << 16));
    s.ws();
    if s.peek()? == b'}' {
        s.i += 1;
    } else {
        loop {
            let name = s.key()?;
            hashes.push(crate::fnv::hash(&s.b[name.clone()]));
            s.colon()?;
            let start = s.i;
            s.value(1)?;
            let ends = [name.start, name.end, start, s.i];
            if !ends.iter().all(|&at| text.is_char_boundary(at)) {
                return None;
            }
            entry(name, start..s.i);
            if !s.next_member(b'}')? {
                break;
            }
        }
    }
    s.ws();
    hashes.sort_unstable();
    let distinct = hashes.windows(2).all(|w| w[0] != w[1]);
    (s.i == s.b.len() && distinct).then_some(())
}

struct Scanner<'t> {
    b: &'t [u8],
    i: usize,
    /// Whether objects below the top level are checked for repeated keys.
    nested: bool,
    /// The keys of the objects open below the top level, innermost last.
    keys: Vec<&'t [u8]>,
}

impl<'t> Scanner<'t> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// `:` between a key and its value, with the spaces around it.
    fn colon(&mut self) -> Option<()> {
        self.ws();
        (self.peek()? == b':').then_some(())?;
        self.i += 1;
        self.ws();
        Some(())
    }

    /// After a member: `true` at `,` (another follows), `false` at `close`.
    fn next_member(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let c = self.peek()?;
        self.i += 1;
        if c == b',' {
            self.ws();
            Some(true)
        } else {
            (c == close).then_some(false)
        }
    }

    /// A key: its text between the quotes, which must hold no escape.
    fn key(&mut self) -> Option<Range<usize>> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        match self.string()? {
            false => Some(start..self.i - 1),
            true => None,
        }
    }

    /// A string from its opening quote; whether it held an escape.
    fn string(&mut self) -> Option<bool> {
        self.i += 1;
        let mut escaped = false;
        loop {
            self.plain_run();
            match *self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(escaped);
                }
                b'\\' => {
                    escaped = true;
                    match *self.b.get(self.i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                        b'u' => {
                            let hex = self.b.get(self.i + 2..self.i + 6)?;
                            let mut v: u32 = 0;
                            for &h in hex {
                                v = v * 16 + char::from(h).to_digit(16)?;
                            }
                            // A surrogate must pair up: serde's to judge.
                            if (0xD800..0xE000).contains(&v) {
                                return None;
                            }
                            self.i += 6;
                        }
                        _ => return None,
                    }
                }
                0x00..=0x1f => return None,
                _ => self.i += 1,
            }
        }
    }

    /// Steps over string bytes that need no look (no quote, backslash or
    /// control character), eight at a time: the strings are most of a
    /// registry's bytes.
    fn plain_run(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        // A byte of `v` below `n` (n ≤ 0x80) sets the high bit of the lowest
        // such byte in the result (higher bytes may be set spuriously).
        let below = |v: u64, n: u64| v.wrapping_sub(ONES * n) & !v & HIGH;
        while let Some(bytes) = self.b.get(self.i..).and_then(<[u8]>::first_chunk::<8>) {
            let w = u64::from_le_bytes(*bytes);
            let special = below(w ^ (ONES * u64::from(b'"')), 1)
                | below(w ^ (ONES * u64::from(b'\\')), 1)
                | below(w, 0x20);
            if special != 0 {
                self.i += (special.trailing_zeros() / 8) as usize;
                return;
            }
            self.i += 8;
        }
    }

    fn digits(&mut self) -> usize {
        let from = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - from
    }

    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            (self.digits() > 0).then_some(())?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            (self.digits() > 0).then_some(())?;
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        (self.b.get(self.i..self.i + word.len())? == word).then_some(())?;
        self.i += word.len();
        Some(())
    }

    /// One value, at nesting `depth` (the top-level object is 1).
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    /// Steps into an object or array at nesting `depth`; `false` when it
    /// closes at once with `close` (and is then stepped over).
    fn open(&mut self, depth: usize, close: u8) -> Option<bool> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.i += 1;
        self.ws();
        if self.peek()? == close {
            self.i += 1;
            return Some(false);
        }
        Some(true)
    }

    fn object(&mut self, depth: usize) -> Option<()> {
        if !self.open(depth, b'}')? {
            return Some(());
        }
        let first = self.keys.len();
        let mut set: Option<HashSet<&[u8], Fnv>> = None;
        let closed = loop {
            let Some(at) = self.key() else {
                break None;
            };
            let repeated = self.nested
                && match &mut set {
                    Some(set) => !set.insert(&self.b[at]),
                    None if self.keys.len() - first < LIST_MAX => {
                        let key = &self.b[at];
                        let seen = self.keys[first..].contains(&key);
                        self.keys.push(key);
                        seen
                    }
                    None => {
                        let mut all: HashSet<&[u8], Fnv> = self.keys.drain(first..).collect();
                        let seen = !all.insert(&self.b[at]);
                        set = Some(all);
                        seen
                    }
                };
            if repeated || self.colon().is_none() || self.value(depth).is_none() {
                break None;
            }
            match self.next_member(b'}') {
                Some(true) => continue,
                Some(false) => break Some(()),
                None => break None,
            }
        };
        self.keys.truncate(first);
        closed
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if !self.open(depth, b']')? {
            return Some(());
        }
        loop {
            self.value(depth)?;
            if !self.next_member(b']')? {
                return Some(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::scan;
    use proptest::prelude::*;

    fn names(text: &str) -> Option<Vec<(String, String)>> {
        scan(text, true).map(|v| {
            v.into_iter()
                .map(|(n, r)| (text[n].to_string(), text[r].to_string()))
                .collect()
        })
    }

    #[test]
    fn finds_each_entry_and_its_text() {
        let t = " {\"a\": {\"command\": \"x\", \"env\": {\"K\": \"v\\n\"}},\n\"b\":[1,-2.5e+3,true,null],\"c\":\"\\u00e9\"} \n";
        assert_eq!(
            names(t).unwrap(),
            vec![
                (
                    "a".into(),
                    "{\"command\": \"x\", \"env\": {\"K\": \"v\\n\"}}".into()
                ),
                ("b".into(), "[1,-2.5e+3,true,null]".into()),
                ("c".into(), "\"\\u00e9\"".into()),
            ]
        );
        assert_eq!(names("{}").unwrap(), vec![]);
    }

    #[test]
    fn leaves_to_serde_what_is_not_plainly_valid() {
        for t in [
            "",
            "[]",
            "{",
            "{\"a\":1,}",
            "{\"a\":1}x",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":-}",
            "{\"a\":1e}",
            "{\"a\":tru}",
            "{\"a\":\"\t\"}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12\"}",
            "{\"a\":\"\\ud83d\\ude00\"}",
            "{\"a\\u0062\":1}",
            "{\"a\":1,\"a\":2}",
            "{\"a\":{\"k\":1,\"k\":2}}",
            "{\"a\" 1}",
            "\u{feff}{}",
        ] {
            assert!(scan(t, true).is_none(), "{t:?}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(99), "]".repeat(99));
        assert!(scan(&deep, true).is_some());
        let deeper = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(scan(&deeper, true).is_none());
        // A key repeated among many is still found (the set, past the list).
        let many: Vec<String> = (0..40).map(|i| format!("\"k{i}\": {i}")).collect();
        let inner = format!("{{\"a\": {{{}, \"k39\": 0}}}}", many.join(", "));
        assert!(scan(&inner, true).is_none());
        // Without `nested`, only the names must differ.
        assert!(scan(&inner, false).is_some());
        let top = format!("{{{}, \"k0\": 0}}", many.join(", "));
        assert!(scan(&top, false).is_none());
    }

    /// Random JSON-ish text: what the scan accepts, serde parses as an
    /// object with the same names and values, and no object repeats a key.
    fn agrees_with_serde(text: &str) {
        // Without `nested`: JSON, and the names distinct.
        let flat = scan(text, false);
        if let Some(found) = &flat {
            let v: serde_json::Value = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("scan accepted what serde refuses: {text:?}: {e}"));
            assert_eq!(
                v.as_object().expect("an object").len(),
                found.len(),
                "{text:?}"
            );
        }
        // The scan for one name answers as the whole scan: each name's
        // value where it is, none for a name not there, `None` alike.
        for want in ["a", "b", "ab", "zz"] {
            let whole = flat.as_ref().map(|found| {
                found
                    .iter()
                    .find(|(n, _)| &text[n.clone()] == want)
                    .map(|(_, v)| v.clone())
            });
            assert_eq!(super::scan_for(text, want), whole, "{want} in {text:?}");
        }
        let Some(found) = names(text) else {
            return;
        };
        let v: serde_json::Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("scan accepted what serde refuses: {text:?}: {e}"));
        assert!(
            super::super::json::first_duplicate_key(text).is_none(),
            "{text:?}"
        );
        let obj = v.as_object().expect("an object");
        assert_eq!(obj.len(), found.len(), "{text:?}");
        for ((name, raw), (k, val)) in found.iter().zip(obj) {
            assert_eq!(name, k);
            let raw: serde_json::Value = serde_json::from_str(raw).unwrap();
            assert_eq!(&raw, val);
        }
    }

    fn json_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("JSON has no infinity", |f| f.is_finite())
                .prop_map(|f| f.to_string()),
            "[ -~é\u{1F600}]{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just("-0.5E-7".to_string()),
            Just("1e999999".to_string()),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[a-c]{1,2}", inner), 0..5).prop_map(|v| {
                    let m: Vec<String> = v.iter().map(|(k, x)| format!("\"{k}\" : {x}")).collect();
                    format!("{{ {} }}", m.join(",\n"))
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn accepts_only_what_serde_reads_the_same(
            members in prop::collection::vec(("[a-d]{1,3}", json_value()), 0..6),
            cut in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            how in 0u8..4,
        ) {
            let m: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            let text = format!("{{{}}}", m.join(", "));
            agrees_with_serde(&text);
            // Undamaged, it is read the fast way unless a key repeats.
            prop_assert_eq!(
                scan(&text, true).is_some(),
                super::super::json::first_duplicate_key(&text).is_none()
            );
            // The same text damaged: a byte changed, dropped, or added, or cut short.
            let mut bytes = text.clone().into_bytes();
            let at = cut.index(bytes.len());
            match how {
                0 => bytes[at] = byte,
                1 => { bytes.remove(at); }
                2 => bytes.insert(at, byte),
                _ => bytes.truncate(at),
            }
            if let Ok(t) = String::from_utf8(bytes) {
                agrees_with_serde(&t);
            }
        }

        #[test]
        fn any_text_is_judged_as_serde_would(text in "[{}\\[\\]\":,a0-9.eE+\\- tnulrfs\\\\]{0,40}") {
            agrees_with_serde(&text);
        }
    }
}

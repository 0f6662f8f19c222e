//! Reading the registry's JSON strictly: text that is not UTF-8 and keys
//! given twice are located errors, parse errors say where, and a supervisor
//! can read its own entry while skipping the others unparsed.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The registry as text; bytes that are not UTF-8 are located like a parse error.
pub(super) fn checked_text<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = good.len() - good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
        Error::RegistryCorrupt {
            path: path.to_path_buf(),
            line,
            column,
            reason: "invalid UTF-8".into(),
        }
    })
}

/// Refuses a key that appears twice in one object: a JSON parser would keep
/// one of the two silently, and which one the user meant is anybody's guess.
///
/// `text` must already have parsed as JSON (the caller's parse reports a
/// syntax error where it is): this is then one pass over the bytes, keys
/// borrowed from the text, and nothing allocated per value. (A walk through
/// serde cost two thirds of reading a registry of a thousand entries: every
/// number became a map under `arbitrary_precision`.)
pub(super) fn check_no_duplicate_keys(path: &Path, text: &str) -> Result<()> {
    check_no_duplicate_keys_at(path, text, 0, text)
}

/// `check_no_duplicate_keys` of `part`, which starts at byte `at` of `text`.
pub(super) fn check_no_duplicate_keys_at(
    path: &Path,
    text: &str,
    at: usize,
    part: &str,
) -> Result<()> {
    match first_duplicate_key(part) {
        None => Ok(()),
        Some((offset, key)) => {
            let (line, column) = line_column(text, at + offset);
            Err(Error::RegistryCorrupt {
                path: path.to_path_buf(),
                line,
                column,
                reason: format!("the key {key:?} appears twice in one object"),
            })
        }
    }
}

/// The line and column (from 1, in bytes) of byte `at` of `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..at.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.len()
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    (line, column)
}

/// A parse error in the part of `text` that starts at byte `at`, located in the file.
pub(super) fn corrupt_at(path: &Path, text: &str, at: usize, e: &serde_json::Error) -> Error {
    let mut err = corrupt(path, e);
    if let Error::RegistryCorrupt { line, column, .. } = &mut err {
        let (start_line, start_column) = line_column(text, at);
        if *line <= 1 {
            *column += start_column.saturating_sub(1);
        }
        *line += start_line.saturating_sub(1);
    }
    err
}

/// The byte offset of the closing quote of the first key repeated in its
/// object, and the key; `None` when every object's keys are distinct.
pub(super) fn first_duplicate_key(text: &str) -> Option<(usize, String)> {
    use std::borrow::Cow;
    use std::collections::HashSet;
    /// An open object: where its keys start in `keys`, whether a key comes
    /// next, and its keys hashed once there are many (a registry of a
    /// thousand names would make a list quadratic).
    struct Object<'t> {
        first: usize,
        key_next: bool,
        hashed: Option<HashSet<Cow<'t, str>>>,
    }
    let bytes = text.as_bytes();
    let mut keys: Vec<Cow<'_, str>> = Vec::new();
    // `None` for an array.
    let mut open: Vec<Option<Object<'_>>> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => open.push(Some(Object {
                first: keys.len(),
                key_next: true,
                hashed: None,
            })),
            b'[' => open.push(None),
            b'}' | b']' => {
                if let Some(Some(o)) = open.pop() {
                    keys.truncate(o.first);
                }
            }
            b',' => {
                if let Some(Some(o)) = open.last_mut() {
                    o.key_next = true;
                }
            }
            b'"' => {
                let start = i + 1;
                let mut escaped = false;
                i = start;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        escaped = true;
                        i += 1;
                    }
                    i += 1;
                }
                let Some(Some(o)) = open.last_mut() else {
                    i += 1;
                    continue;
                };
                if !o.key_next {
                    i += 1;
                    continue;
                }
                o.key_next = false;
                let raw = text.get(start..i.min(text.len()))?;
                let key: Cow<'_, str> = if escaped {
                    Cow::Owned(serde_json::from_str(text.get(start - 1..=i)?).ok()?)
                } else {
                    Cow::Borrowed(raw)
                };
                let mine = &keys[o.first..];
                let repeated = match &mut o.hashed {
                    Some(set) => !set.insert(key.clone()),
                    None => {
                        let repeated = mine.contains(&key);
                        if mine.len() >= 16 {
                            let mut set: HashSet<Cow<'_, str>> = mine.iter().cloned().collect();
                            set.insert(key.clone());
                            o.hashed = Some(set);
                        }
                        repeated
                    }
                };
                if repeated {
                    return Some((i, key.into_owned()));
                }
                keys.push(key);
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// An object key, borrowed from the text unless it holds escapes.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A parse error, located in the file.
pub(super) fn corrupt(path: &Path, e: &serde_json::Error) -> Error {
    Error::RegistryCorrupt {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        // serde_json appends the location itself; we give it in our own words.
        reason: e
            .to_string()
            .split(" at line")
            .next()
            .unwrap_or("")
            .to_string(),
    }
}

/// Reads the registry map keeping only one entry, as its text; the names
/// are checked for repeats on the way.
pub(super) struct OneEntry<'a>(pub(super) &'a str);

type Raw<'de> = &'de serde_json::value::RawValue;

impl<'de> serde::de::DeserializeSeed<'de> for OneEntry<'_> {
    type Value = Option<Raw<'de>>;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for OneEntry<'_> {
    type Value = Option<Raw<'de>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object mapping names to entries")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut found = None;
        let mut names: std::collections::HashSet<std::borrow::Cow<'de, str>, crate::fnv::Build> =
            std::collections::HashSet::with_capacity_and_hasher(
                map.size_hint().unwrap_or(64),
                crate::fnv::Build,
            );
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if !names.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "the key {key:?} appears twice in one object"
                )));
            }
            if key == self.0 {
                found = Some(map.next_value::<Raw<'de>>()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// The keys of the registry's top-level object, the entries skipped unparsed.
pub(super) struct Names(pub(super) Vec<String>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Names;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object mapping names to entries")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Names, A::Error> {
                let mut names = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    names.push(key);
                }
                Ok(Names(names))
            }
        }
        d.deserialize_map(V)
    }
}

/// Whether the registry's top-level object has a key, the entries skipped
/// unparsed and no key copied: what a supervisor asks once a second.
pub(super) struct HasKey<'a>(pub(super) &'a str);

impl<'de> serde::de::DeserializeSeed<'de> for HasKey<'_> {
    type Value = bool;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for HasKey<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object mapping names to entries")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            found |= key.0 == self.0;
            map.next_value::<serde::de::IgnoredAny>()?;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::first_duplicate_key;

    #[test]
    fn repeated_keys_are_found_in_their_own_object_only() {
        let dup = |t: &str| first_duplicate_key(t).map(|(_, k)| k);
        assert_eq!(
            dup(r#"{"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]}"#),
            None
        );
        assert_eq!(
            dup(r#"{"a": {"x": "{\"y\": [1]}", "x": 2}}"#).as_deref(),
            Some("x")
        );
        // The same key spelled with an escape is the same key.
        assert_eq!(dup(r#"{"a": 1, "\u0061": 2}"#).as_deref(), Some("a"));
        assert_eq!(dup(r#"{"k\"": 1, "k\\": 2}"#), None);
        assert_eq!(dup(r#"["a", "a", {"b": "a", "c": "a"}]"#), None);
        // A key after a closed inner object is still in the outer one.
        assert_eq!(
            dup(r#"{"a": {"b": 1}, "c": [], "a": 0}"#).as_deref(),
            Some("a")
        );
        let many: Vec<String> = (0..40).map(|i| format!("\"k{i}\": {i}")).collect();
        let text = format!("{{{}, \"k39\": 0}}", many.join(", "));
        let (at, key) = first_duplicate_key(&text).unwrap();
        assert_eq!(key, "k39");
        assert_eq!(&text[at - 3..=at], "k39\"");
    }
}

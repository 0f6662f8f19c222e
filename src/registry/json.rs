//! Reading the registry's JSON strictly: text that is not UTF-8 and keys
//! given twice are located errors, parse errors say where, and a supervisor
//! can read its own entry while skipping the others unparsed.

use std::path::Path;

use serde::Deserialize;

use super::Entry;
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
pub(super) fn check_no_duplicate_keys(path: &Path, text: &str) -> Result<()> {
    serde_json::from_str::<NoDuplicateKeys>(text)
        .map(|_| ())
        .map_err(|e| corrupt(path, &e))
}

/// Walks any JSON value, failing on a repeated key in an object.
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_none<E>(self) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self, A::Error> {
        // Keys borrowed from the text where they can be: compared in a list
        // while an object is small (an entry), hashed once it is not (the
        // registry itself, a thousand names: a list made that quadratic).
        let mut seen: Vec<std::borrow::Cow<'de, str>> = Vec::new();
        let mut hashed: Option<std::collections::HashSet<std::borrow::Cow<'de, str>>> = None;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let repeated = match &mut hashed {
                Some(set) => !set.insert(key.clone()),
                None => {
                    let repeated = seen.contains(&key);
                    seen.push(key.clone());
                    if seen.len() > 16 {
                        hashed = Some(std::mem::take(&mut seen).into_iter().collect());
                    }
                    repeated
                }
            };
            if repeated {
                return Err(serde::de::Error::custom(format!(
                    "the key {key:?} appears twice in one object"
                )));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(self)
    }
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

/// Deserializes the registry map keeping only one entry.
pub(super) struct OneEntry<'a>(pub(super) &'a str);

impl<'de> serde::de::DeserializeSeed<'de> for OneEntry<'_> {
    type Value = Option<Entry>;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for OneEntry<'_> {
    type Value = Option<Entry>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object mapping names to entries")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == self.0 {
                found = Some(map.next_value::<Entry>()?);
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

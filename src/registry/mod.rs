//! The registry: what should exist, as a map from name to entry in
//! `.process-registry.json`. It keeps the seed's format, so a registry written
//! by the original shell tool loads unchanged, and it preserves fields it does
//! not know on every rewrite.
//!
//! Every change holds an exclusive lock on `.process-guardian/registry.lock`
//! for the whole read-modify-write and replaces the file atomically; a file
//! that does not parse is never written.

mod entry;
mod json;
mod scan;

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use entry::known_fields;
pub use entry::*;
use json::{OneEntry, check_no_duplicate_keys, checked_text, corrupt};

use crate::error::{Error, Result};
use crate::fsutil::{self, Durability};
use crate::workspace::Workspace;
/// The registry as loaded, and its path.
#[derive(Debug, Clone)]
pub struct Registry {
    path: PathBuf,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    /// As read: the text, each entry's name and value located in it (file
    /// order), and those indices sorted by name, sorted the first time a
    /// name is looked up (a listing goes in file order and never needs
    /// them). An entry is parsed when asked for: a listing of a hundred
    /// parsed each value into a tree first, a third of `status`'s
    /// instructions.
    Text {
        text: String,
        entries: Vec<(Range<usize>, Range<usize>)>,
        by_name: std::sync::OnceLock<Vec<usize>>,
    },
    /// As a map, for a change: unknown content survives the rewrite.
    Map(Map<String, Value>),
}

impl Registry {
    /// Reads the registry; a missing file is an empty registry.
    pub fn load(ws: &Workspace) -> Result<Registry> {
        let path = ws.registry_path();
        let bytes = match read_registry(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        Registry::parse_bytes(path, &bytes)
    }

    /// Whether `name` is registered, the file read with the least memory;
    /// `None` when the registry cannot be read or parsed.
    pub fn has(ws: &Workspace, name: &str) -> Option<bool> {
        let bytes = read_registry(&ws.registry_path()).ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        if text.trim().is_empty() {
            return Some(false);
        }
        let mut de = serde_json::Deserializer::from_str(text);
        serde::de::DeserializeSeed::deserialize(json::HasKey(name), &mut de).ok()
    }

    /// Fails as `require` would when `name` is not registered, invalid, or
    /// the registry unreadable, before anything is created for it; the
    /// common case, a valid entry, costs one scan that parses that entry alone.
    pub fn precheck(ws: &Workspace, name: &str) -> Result<()> {
        Registry::checked_entry(ws, name).map(|_| ())
    }

    /// `precheck`, keeping the entry it parsed.
    pub fn checked_entry(ws: &Workspace, name: &str) -> Result<Entry> {
        match Registry::load_one(ws, name) {
            Ok(e) => Ok(e),
            // The whole registry names the fault best (its parse error, or the entry's).
            Err(_) => Registry::load(ws)?.require(name),
        }
    }

    /// Only the registered names, every entry skipped unparsed: what the
    /// warden needs, with the least memory.
    pub fn names_only(ws: &Workspace) -> Result<Vec<String>> {
        let path = ws.registry_path();
        let bytes = read_registry(&path).map_err(|e| Error::io("read", &path, e))?;
        let text = checked_text(&path, &bytes)?;
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let names: json::Names = serde_json::from_str(text).map_err(|e| corrupt(&path, &e))?;
        Ok(names.0)
    }

    /// Only the entry of `name`, the others skipped unparsed: what a
    /// supervisor needs, without holding a whole registry in memory.
    pub fn load_one(ws: &Workspace, name: &str) -> Result<Entry> {
        let path = ws.registry_path();
        let bytes = read_registry(&path).map_err(|e| Error::io("read", &path, e))?;
        let text = checked_text(&path, &bytes)?;
        let missing = || Error::NoSuchProcess {
            name: name.to_string(),
            registry: path.clone(),
        };
        // The fast way: one scan, then that entry parsed; anything the scan
        // leaves, or an entry that does not read, goes the way that words
        // the error.
        if let Some(found) = scan::scan_for(text, name) {
            let raw = &text[found.ok_or_else(missing)?];
            let entry = json::first_duplicate_key(raw)
                .is_none()
                .then(|| serde_json::from_str::<Entry>(raw).ok())
                .flatten()
                .filter(|e| e.validate().is_ok());
            if let Some(entry) = entry {
                return Ok(entry);
            }
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let found = serde::de::DeserializeSeed::deserialize(OneEntry(name), &mut de)
            .and_then(|found| de.end().map(|()| found))
            .map_err(|e| corrupt(&path, &e))?;
        let raw = found.ok_or_else(missing)?;
        // The entry alone is checked for repeated keys (the names were, as
        // they were read): a fault in another entry is that entry's, as a
        // bad number there is.
        let at = raw.get().as_ptr() as usize - text.as_ptr() as usize;
        json::check_no_duplicate_keys_at(&path, text, at, raw.get())?;
        let entry: Entry =
            serde_json::from_str(raw.get()).map_err(|e| json::corrupt_at(&path, text, at, &e))?;
        entry
            .validate()
            .map_err(|e| invalid_entry(&path, name, &e))?;
        Ok(entry)
    }

    fn parse_bytes(path: PathBuf, bytes: &[u8]) -> Result<Registry> {
        let text = checked_text(&path, bytes)?;
        Registry::parse(path, text)
    }

    fn parse(path: PathBuf, text: &str) -> Result<Registry> {
        if let Some(entries) = scan::scan(text, true) {
            return Ok(Registry {
                path,
                body: Body::Text {
                    text: text.to_string(),
                    entries,
                    by_name: std::sync::OnceLock::new(),
                },
            });
        }
        Registry::parse_map(path, text)
    }

    /// The registry parsed whole, or the error that says where it is not JSON.
    fn parse_map(path: PathBuf, text: &str) -> Result<Registry> {
        if text.trim().is_empty() {
            return Ok(Registry {
                path,
                body: Body::Map(Map::new()),
            });
        }
        let value: Value = serde_json::from_str(text).map_err(|e| corrupt(&path, &e))?;
        // Valid JSON now: a key given twice is what is left to refuse.
        check_no_duplicate_keys(&path, text)?;
        match value {
            Value::Object(map) => Ok(Registry {
                path,
                body: Body::Map(map),
            }),
            _ => Err(Error::RegistryCorrupt {
                path,
                line: 1,
                column: 1,
                reason: "the top level must be an object mapping names to entries".into(),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        let (text, map) = match &self.body {
            Body::Text { text, entries, .. } => (Some((text, entries)), None),
            Body::Map(map) => (None, Some(map)),
        };
        let from_text = text
            .into_iter()
            .flat_map(|(t, entries)| entries.iter().map(move |(n, _)| &t[n.clone()]));
        let from_map = map.into_iter().flat_map(|m| m.keys().map(String::as_str));
        from_text.chain(from_map)
    }

    /// The text of `name`'s value, when the registry is held as text.
    fn raw(&self, name: &str) -> Option<&str> {
        let Body::Text {
            text,
            entries,
            by_name,
        } = &self.body
        else {
            return None;
        };
        let by_name = by_name.get_or_init(|| {
            let mut sorted: Vec<usize> = (0..entries.len()).collect();
            sorted.sort_unstable_by_key(|&i| &text[entries[i].0.clone()]);
            sorted
        });
        let at = by_name
            .binary_search_by(|&i| text[entries[i].0.clone()].cmp(name))
            .ok()?;
        Some(&text[entries[by_name[at]].1.clone()])
    }

    /// The text of `name`'s value, looked for first at `at`, its place in
    /// file order as `names` gives it.
    fn raw_at(&self, at: usize, name: &str) -> Option<&str> {
        if let Body::Text { text, entries, .. } = &self.body
            && let Some((n, v)) = entries.get(at)
            && text.get(n.clone()) == Some(name)
        {
            return text.get(v.clone());
        }
        self.raw(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        match &self.body {
            Body::Text { .. } => self.raw(name).is_some(),
            Body::Map(map) => map.contains_key(name),
        }
    }

    pub fn len(&self) -> usize {
        match &self.body {
            Body::Text { entries, .. } => entries.len(),
            Body::Map(map) => map.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The registry as a map, parsed now if it was held as text.
    fn map_mut(&mut self) -> Result<&mut Map<String, Value>> {
        if let Body::Text { text, .. } = &self.body {
            let Registry { body, .. } = Registry::parse_map(self.path.clone(), text)?;
            self.body = body;
        }
        match &mut self.body {
            Body::Map(map) => Ok(map),
            Body::Text { .. } => Err(Error::Failed(format!(
                "{}: the registry could not be read as a map",
                self.path.display()
            ))),
        }
    }

    /// The typed and validated entry of `name`, or `None` when it is not
    /// registered; an invalid entry is an error for that name alone.
    pub fn get(&self, name: &str) -> Result<Option<Entry>> {
        self.entry(name, || self.raw(name))
    }

    /// `get` of the name at `at` in file order (as `names` lists them), for
    /// a listing that goes through them in that order: no lookup by name.
    pub fn get_listed(&self, at: usize, name: &str) -> Result<Option<Entry>> {
        self.entry(name, || self.raw_at(at, name))
    }

    /// `name`'s entry, its text found by `raw` when held as text.
    fn entry<'a>(
        &'a self,
        name: &str,
        raw: impl FnOnce() -> Option<&'a str>,
    ) -> Result<Option<Entry>> {
        let parsed;
        let v = match &self.body {
            Body::Text { .. } => {
                let Some(raw) = raw() else {
                    return Ok(None);
                };
                if let Ok(entry) = serde_json::from_str::<Entry>(raw) {
                    entry
                        .validate()
                        .map_err(|e| invalid_entry(&self.path, name, &e))?;
                    return Ok(Some(entry));
                }
                // The error is worded from the value as a tree.
                parsed = serde_json::from_str::<Value>(raw)
                    .map_err(|e| invalid_entry(&self.path, name, &e))?;
                &parsed
            }
            Body::Map(map) => match map.get(name) {
                Some(v) => v,
                None => return Ok(None),
            },
        };
        let entry = Entry::deserialize(v).map_err(|e| {
            invalid_entry(&self.path, name, &field_error(v).unwrap_or(e.to_string()))
        })?;
        entry
            .validate()
            .map_err(|e| invalid_entry(&self.path, name, &e))?;
        Ok(Some(entry))
    }

    /// Like `get`, but a missing name is `NoSuchProcess` (exit 3).
    /// `insert`, refused (before anything is written) when the entry's
    /// `after` names something unregistered or closes a cycle.
    pub fn insert_in_order(&mut self, name: &str, entry: &Entry) -> Result<bool> {
        let updated = self.insert(name, entry)?;
        self.in_start_order(&[name])?;
        Ok(updated)
    }

    /// `names` and every name they come after (`after`, transitively), each
    /// listed after all it comes after, once. An `after` naming nothing
    /// registered, or a cycle, is an error that names it.
    pub fn in_start_order(&self, names: &[&str]) -> Result<Vec<String>> {
        let mut done: Vec<String> = Vec::new();
        let mut path: Vec<String> = Vec::new();
        for name in names {
            self.visit(name, &mut path, &mut done)?;
        }
        Ok(done)
    }

    fn visit(&self, name: &str, path: &mut Vec<String>, done: &mut Vec<String>) -> Result<()> {
        if done.iter().any(|d| d == name) {
            return Ok(());
        }
        if let Some(at) = path.iter().position(|p| p == name) {
            let mut cycle = path[at..].to_vec();
            cycle.push(name.to_string());
            return Err(Error::Invalid(format!(
                "the `after` order has a cycle: {} (each comes after the next)",
                cycle.join(" → ")
            )));
        }
        // An invalid entry is reported where it is used; here it has no `after`.
        let after = match self.get(name) {
            Ok(Some(e)) => e.after,
            Ok(None) => {
                return Err(self
                    .require(name)
                    .err()
                    .unwrap_or_else(|| Error::Failed(name.into())));
            }
            Err(_) => Vec::new(),
        };
        path.push(name.to_string());
        for dep in &after {
            if !self.contains(dep) {
                return Err(Error::Invalid(format!(
                    "{name} comes after {dep:?}, which is not registered in {}",
                    self.path.display()
                )));
            }
            self.visit(dep, path, done)?;
        }
        path.pop();
        done.push(name.to_string());
        Ok(())
    }

    pub fn require(&self, name: &str) -> Result<Entry> {
        self.get(name)?.ok_or_else(|| Error::NoSuchProcess {
            name: name.to_string(),
            registry: self.path.clone(),
        })
    }

    /// Inserts or replaces an entry; returns whether the name was already registered.
    /// Fields this version does not know, in an entry being replaced, stay
    /// as they were, where they were.
    pub fn insert(&mut self, name: &str, entry: &Entry) -> Result<bool> {
        let Ok(Value::Object(new)) = serde_json::to_value(entry) else {
            return Err(Error::Failed(format!("cannot encode entry {name:?}")));
        };
        match self.map_mut()?.get_mut(name) {
            Some(Value::Object(old)) => {
                for key in known_fields() {
                    if !new.contains_key(*key) {
                        old.shift_remove(*key);
                    }
                }
                // Known keys already present keep their place.
                old.extend(new);
                Ok(true)
            }
            Some(other) => {
                *other = Value::Object(new);
                Ok(true)
            }
            None => {
                self.map_mut()?.insert(name.to_string(), Value::Object(new));
                Ok(false)
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Result<bool> {
        Ok(self.map_mut()?.shift_remove(name).is_some())
    }

    fn encode(&mut self) -> Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(self.map_mut()?)
            .map_err(|e| Error::Failed(format!("cannot encode the registry: {e}")))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Runs `change` on the current registry while holding the registry lock,
    /// and writes the result atomically if `change` succeeds.
    pub fn update<T>(ws: &Workspace, change: impl FnOnce(&mut Registry) -> Result<T>) -> Result<T> {
        Registry::update_with(ws, change, |_| Ok(()))
    }

    fn update_with<T>(
        ws: &Workspace,
        change: impl FnOnce(&mut Registry) -> Result<T>,
        before_rename: impl FnOnce(&Path) -> io::Result<()>,
    ) -> Result<T> {
        // A registry that does not parse is reported before anything is
        // created beside it (the state directory, the lock).
        if ws.registry_path().exists() {
            Registry::names_only(ws)?;
        }
        ws.ensure_dirs()?;
        let _lock = fsutil::lock_exclusive(&ws.registry_lock_path())?;
        let mut registry = Registry::load(ws)?;
        let out = change(&mut registry)?;
        let bytes = registry.encode()?;
        fsutil::write_atomic_with(
            &registry.path,
            &bytes,
            0o600,
            Durability::Synced,
            before_rename,
        )
        .map_err(|e| Error::io("write", &registry.path, e))?;
        Ok(out)
    }
}

/// What differs from `old` to `new`, one line a field in the registry's
/// order: `command: 'sleep 301' → 'sleep 402'`.
pub fn changes(old: &Entry, new: &Entry) -> Vec<String> {
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let show = |v: Option<&Value>| match v {
        None => "(none)".to_string(),
        Some(Value::String(s)) => format!("'{s}'"),
        Some(v) => v.to_string(),
    };
    known_fields()
        .iter()
        .filter(|k| a.get(**k) != b.get(**k))
        .map(|k| format!("{k}: {} → {}", show(a.get(*k)), show(b.get(*k))))
        .collect()
}

/// Which known field of an entry does not deserialize, and its value: serde
/// names the problem ("invalid number") but not the field.
fn field_error(v: &Value) -> Option<String> {
    let obj = v.as_object()?;
    for key in known_fields().iter().filter(|k| **k != "command") {
        let Some(value) = obj.get(*key) else {
            continue;
        };
        let mut probe = Map::new();
        probe.insert("command".into(), Value::String("x".into()));
        probe.insert((*key).to_string(), value.clone());
        if let Err(e) = Entry::deserialize(&Value::Object(probe)) {
            return Some(format!("{key} = {value}: {e}"));
        }
    }
    None
}

/// Reads the registry file: never through a symlink, never one another user owns.
fn read_registry(path: &Path) -> io::Result<Vec<u8>> {
    fsutil::read_own(path)
}

fn invalid_entry(path: &Path, name: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Invalid(format!(
        "{}: entry {name:?} is invalid: {e}; fix it there or register {name} again",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::StopSignal;
    use std::fs;
    use std::time::Duration;

    const SEED: &str = r#"{
  "my-bot": {
    "command": "python3 bot.py",
    "duration_min": 480,
    "auto_restart": true,
    "max_restarts": 5,
    "restart_cooldown": 30
  }
}"#;

    fn workspace() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::at(dir.path()).unwrap();
        (dir, ws)
    }

    #[test]
    fn names_are_validated() {
        for good in ["a", "my-bot", "A.b_c-9", "0", &"x".repeat(64)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../evil",
            "a b",
            "a/b",
            ".hidden",
            "-x",
            "_x",
            &"x".repeat(65),
            "é",
            "a\nb",
        ] {
            assert!(
                matches!(validate_name(bad), Err(Error::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn seed_registry_loads_with_defaults() {
        let reg = Registry::parse("r.json".into(), SEED).unwrap();
        let e = reg.require("my-bot").unwrap();
        assert_eq!(e.command, "python3 bot.py");
        assert_eq!(e.duration_min, 480.0);
        assert_eq!(e.max_restarts, 5);
        assert_eq!(e.restart_cooldown, 30.0);
        assert_eq!(e.stop_signal().to_string(), "TERM");
        assert_eq!(e.stop_timeout(), Duration::from_secs(10));
        assert_eq!(e.log_keep(), 3);
        let minimal = Registry::parse("r.json".into(), r#"{"x":{"command":"sleep 1"}}"#).unwrap();
        let e = minimal.require("x").unwrap();
        assert!(e.auto_restart);
        assert_eq!(e.duration_min, 0.0);
    }

    #[test]
    fn round_trip_keeps_seed_bytes_and_unknown_fields() {
        let reg = Registry::parse("r.json".into(), SEED).unwrap();
        let mut reg2 = reg.clone();
        let e = reg.require("my-bot").unwrap();
        reg2.insert("my-bot", &e).unwrap();
        assert_eq!(
            String::from_utf8(reg2.encode().unwrap()).unwrap().trim(),
            SEED.trim()
        );

        let text = r#"{"a":{"command":"x","owner":"ops","nested":{"k":[1,2]}}}"#;
        let reg = Registry::parse("r.json".into(), text).unwrap();
        let mut e = reg.require("a").unwrap();
        e.command = "y".into();
        e.cwd = Some("/".into());
        let mut reg2 = reg.clone();
        reg2.insert("a", &e).unwrap();
        let back: Value = serde_json::from_slice(&reg2.encode().unwrap()).unwrap();
        assert_eq!(back["a"]["owner"], "ops");
        assert_eq!(back["a"]["nested"]["k"][1], 2);
        assert_eq!(back["a"]["command"], "y");
        assert_eq!(back["a"]["cwd"], "/");
        // A known field dropped from the entry is dropped from the file.
        e.cwd = None;
        reg2.insert("a", &e).unwrap();
        let back: Value = serde_json::from_slice(&reg2.encode().unwrap()).unwrap();
        assert!(back["a"].get("cwd").is_none());
        assert_eq!(back["a"]["owner"], "ops");
    }

    #[test]
    fn load_one_reads_just_that_entry() {
        let (_dir, ws) = workspace();
        fs::write(
            ws.registry_path(),
            SEED.replace(
                "}\n}",
                "},\n  \"other\": {\"command\": \"x\", \"weird\": [1, {\"a\": null}]}\n}",
            ),
        )
        .unwrap();
        assert_eq!(
            Registry::load_one(&ws, "my-bot").unwrap().duration_min,
            480.0
        );
        assert_eq!(Registry::load_one(&ws, "other").unwrap().command, "x");
        assert!(matches!(
            Registry::load_one(&ws, "nope"),
            Err(Error::NoSuchProcess { .. })
        ));
        fs::write(ws.registry_path(), "{\"a\": ").unwrap();
        assert!(matches!(
            Registry::load_one(&ws, "a"),
            Err(Error::RegistryCorrupt { .. })
        ));
        let located = |text: &str, name: &str| match Registry::load_one(&ws, name) {
            Err(Error::RegistryCorrupt {
                line,
                column,
                reason,
                ..
            }) => (line, column, reason),
            other => {
                fs::write(ws.registry_path(), text).unwrap();
                panic!("{other:?}")
            }
        };
        // A key twice in the entry read: located in the file, not in the entry.
        let text = "{\"b\": {\"command\": \"x\"},\n \"a\": {\"command\": \"x\",\n   \"env\": {\"K\": \"1\", \"K\": \"2\"}}}";
        fs::write(ws.registry_path(), text).unwrap();
        let (line, column, reason) = located(text, "a");
        assert_eq!((line, column), (3, 24), "{reason}");
        assert!(reason.contains("\"K\" appears twice"), "{reason}");
        // In another entry, it is that entry's fault alone.
        assert_eq!(Registry::load_one(&ws, "b").unwrap().command, "x");
        // A name twice, and a bad value in the entry, located too.
        let text = "{\"a\": {\"command\": \"x\"},\n \"a\": {\"command\": \"y\"}}";
        fs::write(ws.registry_path(), text).unwrap();
        assert_eq!(located(text, "b").0, 2);
        let text = "{\"b\": {},\n \"a\": {\"command\": 7}}";
        fs::write(ws.registry_path(), text).unwrap();
        let (line, column, _) = located(text, "a");
        assert_eq!((line, column), (2, 19));
        // Text after the registry's object is refused as before.
        fs::write(ws.registry_path(), "{\"a\": {\"command\": \"x\"}} x").unwrap();
        assert!(Registry::load_one(&ws, "a").is_err());
    }

    #[test]
    fn fractional_duration_is_kept() {
        let mut reg = Registry::parse("r.json".into(), "").unwrap();
        let mut e = Entry::new("sleep 5".into());
        e.duration_min = 0.05;
        reg.insert("f", &e).unwrap();
        let back = Registry::parse(
            "r.json".into(),
            std::str::from_utf8(&reg.encode().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(back.require("f").unwrap().duration_min, 0.05);
    }

    #[test]
    fn corrupt_registry_names_line_and_column() {
        let err =
            Registry::parse("/w/r.json".into(), "{\n  \"a\": {\n    \"command\": ").unwrap_err();
        match err {
            Error::RegistryCorrupt { line, column, .. } => {
                assert_eq!(line, 3);
                assert!(column > 0);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Registry::parse("r".into(), "[1,2]"),
            Err(Error::RegistryCorrupt { .. })
        ));
    }

    #[test]
    fn entry_validation() {
        let ok = Entry::new("sleep 1".into());
        assert!(ok.validate().is_ok());
        let mut e = ok.clone();
        e.command = "  ".into();
        assert!(e.validate().is_err());
        let mut e = ok.clone();
        e.duration_min = -1.0;
        assert!(e.validate().is_err());
        let mut e = ok.clone();
        e.restart_cooldown = f64::NAN;
        assert!(e.validate().is_err());
        let reg = Registry::parse(
            "r".into(),
            r#"{"a": {"command": "x", "stop_signal": "NOPE"}, "b": {"command": "x", "stop_signal": "SIGINT"}}"#,
        )
        .unwrap();
        assert!(reg.get("a").unwrap_err().to_string().contains("NOPE"));
        assert_eq!(reg.require("b").unwrap().stop_signal().to_string(), "INT");
        // A missing cwd is the start's problem (start-failed), not the entry's.
        let mut e = ok.clone();
        e.cwd = Some("/definitely/not/here".into());
        assert!(e.validate().is_ok());
        assert!(parse_env_pair("A=b=c").unwrap() == ("A".into(), "b=c".into()));
        assert!(parse_env_pair("novalue").is_err());
        assert!(parse_env_pair("1A=x").is_err());
    }

    #[test]
    fn changes_name_each_field_that_differs() {
        let a = Entry::new("sleep 301".into());
        let mut b = Entry::new("sleep 402".into());
        assert_eq!(changes(&a, &a), Vec::<String>::new());
        assert_eq!(changes(&a, &b), vec!["command: 'sleep 301' → 'sleep 402'"]);
        b.stop_timeout_s = Some(3.0);
        assert_eq!(
            changes(&a, &b)[1],
            "stop_timeout_s: (none) → 3.0",
            "{:?}",
            changes(&a, &b)
        );
    }

    #[test]
    fn the_known_fields_are_exactly_those_of_entry() {
        // Every field set, so none is skipped when serialized.
        let mut e = Entry::new("x".into());
        e.cwd = Some("/".into());
        e.env.insert("K".into(), "v".into());
        e.stop_signal = Some(StopSignal::default());
        e.stop_timeout_s = Some(1.0);
        e.alert_command = Some("true".into());
        e.log_max_bytes = Some(4096);
        e.log_keep = Some(1);
        e.stale_after_min = Some(1.0);
        e.timestamps = true;
        e.env_file = Some("/x/.env".into());
        e.after = vec!["other".into()];
        e.ready = Some(crate::probe::Ready {
            tcp: Some("127.0.0.1:1".into()),
            ..Default::default()
        });
        e.health = Some(crate::probe::Health {
            tcp: Some("127.0.0.1:1".into()),
            ..Default::default()
        });
        e.max_memory_bytes = Some(1 << 30);
        let Value::Object(map) = serde_json::to_value(&e).unwrap() else {
            panic!("an entry serializes as an object")
        };
        let mut written: Vec<&str> = map.keys().map(String::as_str).collect();
        let mut known = known_fields().to_vec();
        written.sort_unstable();
        known.sort_unstable();
        assert_eq!(written, known);
        assert!(known.contains(&"stop_signal") && known.len() >= 13);
    }

    #[test]
    fn numbers_out_of_range_are_refused_naming_the_flag() {
        let ok = Entry::new("sleep 1".into());
        type Change = Box<dyn Fn(&mut Entry)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|e| e.stop_timeout_s = Some(1e20)),
                "--stop-timeout",
            ),
            (
                Box::new(|e| e.stop_timeout_s = Some(-1.0)),
                "--stop-timeout",
            ),
            (
                Box::new(|e| e.stale_after_min = Some(1e20)),
                "--stale-after",
            ),
            (Box::new(|e| e.stale_after_min = Some(0.0)), "--stale-after"),
            (Box::new(|e| e.log_keep = Some(u32::MAX)), "--log-keep"),
            (Box::new(|e| e.log_max_bytes = Some(0)), "--log-max-bytes"),
            (Box::new(|e| e.log_max_bytes = Some(100)), "--log-max-bytes"),
            (Box::new(|e| e.duration_min = -1.0), "duration_min"),
            (Box::new(|e| e.duration_min = f64::INFINITY), "duration_min"),
            (
                Box::new(|e| e.restart_cooldown = 1e300),
                "--restart-cooldown",
            ),
            (Box::new(|e| e.command = "a\0b".into()), "NUL"),
            (
                Box::new(|e| {
                    e.env.insert("A=B".into(), "x".into());
                }),
                "A=B",
            ),
        ];
        for (change, flag) in cases {
            let mut e = ok.clone();
            change(&mut e);
            let err = e.validate().unwrap_err().to_string();
            assert!(err.contains(flag), "{err} should name {flag}");
        }
        let mut e = ok.clone();
        e.stop_timeout_s = Some(86_400.0);
        e.stale_after_min = Some(525_600.0);
        e.log_keep = Some(100);
        e.log_max_bytes = Some(4096);
        assert!(e.validate().is_ok());
        assert_eq!(e.stop_timeout(), Duration::from_secs(86_400));
    }

    #[test]
    fn an_entry_read_from_the_text_is_the_entry_read_from_the_tree() {
        let text = r#"{
  "plain": {"command": "sleep 1"},
  "numbers": {"command": "x", "duration_min": 2.5e1, "max_restarts": 7, "restart_cooldown": 0},
  "whole": {"command": "x", "duration_min": 5, "restart_cooldown": 30.0},
  "floaty": {"command": "x", "max_restarts": 5.0},
  "huge": {"command": "x", "duration_min": 1e400},
  "wide": {"command": "x", "max_restarts": 4294967296},
  "negative": {"command": "x", "restart_cooldown": -0},
  "typed": {"command": "x", "cwd": 5},
  "nulls": {"command": "x", "cwd": null, "env": null},
  "unknown": {"command": "x", "future": {"a": [1, 2]}, "env": {"K": "v\u00e9"}},
  "nothing": {},
  "list": [1, 2]
}"#;
        let lazy = Registry::parse("r.json".into(), text).unwrap();
        let tree = Registry::parse_map("r.json".into(), text).unwrap();
        assert!(matches!(lazy.body, Body::Text { .. }));
        assert!(matches!(tree.body, Body::Map(_)));
        assert_eq!(
            lazy.names().collect::<Vec<_>>(),
            tree.names().collect::<Vec<_>>()
        );
        for name in tree.names().chain(["absent"]) {
            let (a, b) = (lazy.get(name), tree.get(name));
            match (&a, &b) {
                (Ok(x), Ok(y)) => assert_eq!(x, y, "{name}"),
                (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string(), "{name}"),
                _ => panic!("{name}: {a:?} against {b:?}"),
            }
            assert_eq!(lazy.contains(name), tree.contains(name));
        }
        assert_eq!(lazy.len(), 12);
    }

    #[test]
    fn an_invalid_entry_fails_alone() {
        let text = r#"{"bad": {"command": "sleep 1", "stop_timeout_s": -1}, "good": {"command": "sleep 2"}}"#;
        let reg = Registry::parse("r.json".into(), text).unwrap();
        let err = reg.get("bad").unwrap_err();
        assert!(matches!(err, Error::Invalid(_)));
        assert!(err.to_string().contains("\"bad\""), "{err}");
        assert_eq!(reg.require("good").unwrap().command, "sleep 2");
    }

    #[test]
    fn duplicate_keys_and_bad_utf8_are_located() {
        let err = Registry::parse(
            "r".into(),
            "{\"a\": {\"command\": \"x\"},\n \"a\": {\"command\": \"y\"}}",
        )
        .unwrap_err();
        match err {
            Error::RegistryCorrupt { line, reason, .. } => {
                assert_eq!(line, 2);
                assert!(reason.contains("twice"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let err =
            Registry::parse("r".into(), r#"{"a": {"command": "x", "command": "y"}}"#).unwrap_err();
        assert!(matches!(err, Error::RegistryCorrupt { .. }), "{err}");
        // In a large object too (past the list, in the hash), wherever the repeat is.
        for repeat in ["p0", "p17", "p29"] {
            let mut text: Vec<String> = (0..30)
                .map(|i| format!("\"p{i}\": {{\"command\": \"x\"}}"))
                .collect();
            text.push(format!("\"{repeat}\": {{\"command\": \"y\"}}"));
            let text = format!("{{{}}}", text.join(",\n"));
            match Registry::parse("r".into(), &text).unwrap_err() {
                Error::RegistryCorrupt { line, reason, .. } => {
                    assert_eq!(line, 31);
                    assert!(
                        reason.contains(&format!("{repeat:?} appears twice")),
                        "{reason}"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        let distinct: Vec<String> = (0..30)
            .map(|i| format!("\"p{i}\": {{\"command\": \"x\"}}"))
            .collect();
        assert!(Registry::parse("r".into(), &format!("{{{}}}", distinct.join(","))).is_ok());
        let err =
            Registry::parse_bytes("r".into(), b"{\n  \"a\": {\"command\": \"\xff\"}}").unwrap_err();
        match err {
            Error::RegistryCorrupt {
                line,
                column,
                reason,
                ..
            } => {
                assert_eq!((line, column), (2, 21));
                assert!(reason.contains("UTF-8"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_numbers_are_kept_exactly() {
        let text = r#"{"a":{"command":"x","big":123456789012345678901234567890,"exact":0.10000000000000000000001}}"#;
        let reg = Registry::parse("r.json".into(), text).unwrap();
        let mut reg2 = reg.clone();
        let mut e = reg.require("a").unwrap();
        e.command = "y".into();
        reg2.insert("a", &e).unwrap();
        let out = String::from_utf8(reg2.encode().unwrap()).unwrap();
        assert!(out.contains("123456789012345678901234567890"), "{out}");
        assert!(out.contains("0.10000000000000000000001"), "{out}");
    }

    #[test]
    fn update_writes_and_interrupted_update_keeps_old_registry() {
        let (_dir, ws) = workspace();
        Registry::update(&ws, |r| r.insert("a", &Entry::new("sleep 1".into()))).unwrap();
        let before = fs::read(ws.registry_path()).unwrap();
        let err = Registry::update_with(
            &ws,
            |r| r.insert("b", &Entry::new("sleep 2".into())),
            |_| Err(io::Error::other("disk gone")),
        )
        .unwrap_err();
        assert!(err.to_string().contains("disk gone"));
        assert_eq!(fs::read(ws.registry_path()).unwrap(), before);
        assert!(Registry::load(&ws).unwrap().contains("a"));
    }

    #[test]
    fn corrupt_registry_is_never_rewritten() {
        let (_dir, ws) = workspace();
        fs::write(ws.registry_path(), "{\"a\": {").unwrap();
        let err = Registry::update(&ws, |r| r.insert("b", &Entry::new("x".into()))).unwrap_err();
        assert!(matches!(err, Error::RegistryCorrupt { .. }));
        assert_eq!(fs::read(ws.registry_path()).unwrap(), b"{\"a\": {");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn is_valid_name(s: &str) -> bool {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
            && s.len() <= 64
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever bytes the registry holds, loading it answers Ok or a
        /// located error: it never panics.
        #[test]
        fn any_text_parses_or_is_refused_with_a_location(text in "\\PC{0,200}") {
            match Registry::parse("r.json".into(), &text) {
                Ok(reg) => {
                    // Each listed name is found, as a valid entry or an
                    // error naming it: never missing, never a panic.
                    for name in reg.names().map(str::to_string).collect::<Vec<_>>() {
                        match reg.get(&name) {
                            Ok(found) => prop_assert!(found.is_some(), "{name} listed but not found"),
                            Err(Error::Invalid(msg)) => prop_assert!(
                                msg.contains(&name) || msg.contains(&format!("{name:?}")),
                                "{msg}"
                            ),
                            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
                        }
                    }
                }
                Err(Error::RegistryCorrupt { line, .. }) => prop_assert!(line >= 1),
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }

        /// Truncating a valid registry anywhere never loads as something else silently.
        #[test]
        fn truncations_are_refused(cut in 1usize..120) {
            let text = r#"{"a": {"command": "sleep 1", "duration_min": 0.5, "env": {"K": "v"}}, "b": {"command": "x"}}"#;
            let cut = cut.min(text.len() - 1);
            prop_assert!(Registry::parse("r.json".into(), &text[..cut]).is_err());
        }

        /// The name rule is exactly `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`.
        #[test]
        fn names_follow_the_rule(name in "\\PC{0,70}") {
            prop_assert_eq!(validate_name(&name).is_ok(), is_valid_name(&name));
        }

        /// Entries survive a write and a read unchanged.
        #[test]
        fn entries_round_trip(
            command in "[^\\x00\\s][^\\x00]{0,39}",
            duration in 0.0f64..10_000.0,
            cooldown in 0u32..1000,
            max_restarts in 0u32..100,
            auto_restart: bool,
            env in prop::collection::btree_map("[A-Z_][A-Z0-9_]{0,8}", "[^\\x00]{0,10}", 0..3),
        ) {
            let mut e = Entry::new(command);
            e.duration_min = duration;
            e.restart_cooldown = f64::from(cooldown);
            e.max_restarts = max_restarts;
            e.auto_restart = auto_restart;
            e.env = env;
            let mut reg = Registry::parse("r.json".into(), "").unwrap();
            reg.insert("p", &e).unwrap();
            let back = Registry::parse("r.json".into(), std::str::from_utf8(&reg.encode().unwrap()).unwrap()).unwrap();
            prop_assert_eq!(back.require("p").unwrap(), e);
        }

        /// Whatever numbers a hand-edited entry holds, loading it gives a
        /// valid entry whose durations convert, or an error for that name:
        /// never a panic, and never a value outside its range.
        #[test]
        fn any_numbers_load_or_are_refused(
            values in prop::collection::vec(
                prop_oneof![
                    Just("-1".to_string()),
                    Just("1e20".to_string()),
                    Just("1e400".to_string()),
                    Just("4294967296".to_string()),
                    Just("18446744073709551616".to_string()),
                    Just("-0.0".to_string()),
                    Just("null".to_string()),
                    Just("\"x\"".to_string()),
                    (-1e12f64..1e12).prop_map(|v| v.to_string()),
                    (0u64..200_000).prop_map(|v| v.to_string()),
                ],
                8,
            ),
        ) {
            let fields = ["duration_min", "max_restarts", "restart_cooldown", "stop_timeout_s",
                "log_max_bytes", "log_keep", "stale_after_min", "auto_restart"];
            let body: Vec<String> = fields.iter().zip(&values).map(|(f, v)| format!("\"{f}\": {v}")).collect();
            let text = format!("{{\"p\": {{\"command\": \"sleep 1\", {}}}}}", body.join(", "));
            match Registry::parse("r.json".into(), &text) {
                Ok(reg) => match reg.get("p") {
                    Ok(Some(e)) => {
                        prop_assert!(e.stop_timeout() <= Duration::from_secs(86_400));
                        prop_assert!(e.log_keep() <= MAX_LOG_KEEP);
                        if let Some(d) = e.stale_after() {
                            prop_assert!(d > Duration::ZERO);
                        }
                        prop_assert!(crate::fsutil::secs(e.restart_cooldown).is_some());
                        prop_assert!(crate::fsutil::secs(e.duration_min * 60.0).is_some());
                    }
                    Ok(None) => prop_assert!(false, "the entry vanished"),
                    Err(Error::Invalid(msg)) => prop_assert!(msg.contains("\"p\""), "{msg}"),
                    Err(other) => prop_assert!(false, "unexpected {other:?}"),
                },
                Err(Error::RegistryCorrupt { .. }) => {}
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }
}

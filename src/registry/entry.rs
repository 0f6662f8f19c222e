//! One registered process: its fields with their defaults and ranges, the
//! name rule, and the validation that runs at `register` and on every load.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::signals::StopSignal;

pub const DEFAULT_MAX_RESTARTS: u32 = 5;
pub const DEFAULT_RESTART_COOLDOWN: f64 = 30.0;
pub const DEFAULT_STOP_TIMEOUT_S: f64 = 10.0;
pub const DEFAULT_LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;
pub const DEFAULT_LOG_KEEP: u32 = 3;
const MAX_NAME_LEN: usize = 64;

/// The range of every number an entry holds, checked at `register` and on
/// every load, so that no value from a flag or a hand-edited file can make a
/// duration overflow, a loop run for ever, or a conversion panic.
pub const MAX_STOP_TIMEOUT_S: f64 = 86_400.0;
pub const MAX_RESTART_COOLDOWN_S: f64 = 86_400.0;
/// Ten years.
pub const MAX_DURATION_MIN: f64 = 5_256_000.0;
/// A year.
pub const MAX_STALE_AFTER_MIN: f64 = 525_600.0;
pub const MIN_LOG_MAX_BYTES: u64 = 4096;
/// One TiB.
pub const MAX_LOG_MAX_BYTES: u64 = 1 << 40;
pub const MAX_LOG_KEEP: u32 = 100;
/// The range of `max_memory_bytes`: 1 MiB to 1 TiB.
pub const MIN_MAX_MEMORY: u64 = 1 << 20;
pub const MAX_MAX_MEMORY: u64 = 1 << 40;
const MAX_COMMAND_LEN: usize = 65_536;
/// `logs/healthcheck.log` is the healthcheck's own log, so no process may take its name.
pub const RESERVED_NAMES: &[&str] = &["healthcheck"];

fn yes() -> bool {
    true
}
fn default_max_restarts() -> u32 {
    DEFAULT_MAX_RESTARTS
}
fn default_cooldown() -> f64 {
    DEFAULT_RESTART_COOLDOWN
}

/// One registered process. Known fields are typed; anything else is kept in
/// `extra` and written back as it was.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Entry {
    pub command: String,
    #[serde(default, serialize_with = "whole_if_integral")]
    pub duration_min: f64,
    #[serde(default = "yes")]
    pub auto_restart: bool,
    #[serde(default = "default_max_restarts")]
    pub max_restarts: u32,
    #[serde(default = "default_cooldown", serialize_with = "whole_if_integral")]
    pub restart_cooldown: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<StopSignal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_max_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_keep: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_after_min: Option<f64>,
    /// Each line of output prefixed with its UTC time to the millisecond.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timestamps: bool,
    /// A `.env` file read at each start (relative: to `cwd`); `env` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_file: Option<String>,
    /// Processes started (and revived) before this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// When it is ready: a probe passed after each start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<crate::probe::Ready>,
    /// Whether it is still healthy: a probe run while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::probe::Health>,
    /// Its tree's resident memory above this restarts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_bytes: Option<u64>,
}

/// Every field `Entry` knows, as serde's derive lists them; anything else
/// in an entry is kept as it is. Taken from the derive itself, so a new
/// field is known here the moment it is added to `Entry`.
pub(super) fn known_fields() -> &'static [&'static str] {
    static FIELDS: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
    FIELDS.get_or_init(|| {
        let mut found: &'static [&'static str] = &[];
        let _ = Entry::deserialize(FieldNames(&mut found));
        found
    })
}

/// A deserializer that only records the field names a struct asks for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;
    fn deserialize_any<V: serde::de::Visitor<'de>>(
        self,
        _: V,
    ) -> std::result::Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("only field names are read"))
    }
    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> std::result::Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("only field names are read"))
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// Writes 480.0 as 480, so that a seed registry keeps its look on rewrite.
fn whole_if_integral<S: serde::Serializer>(v: &f64, s: S) -> std::result::Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

impl Entry {
    /// An entry with every default, as a registry line `{"command": …}` reads.
    pub fn new(command: String) -> Entry {
        let mut e: Entry = serde_json::from_value(serde_json::json!({ "command": "" }))
            .unwrap_or_else(|_| unreachable!("an entry with only a command always deserializes"));
        e.command = command;
        e
    }

    pub fn stop_signal(&self) -> StopSignal {
        self.stop_signal.unwrap_or_default()
    }
    pub fn stop_timeout(&self) -> Duration {
        self.stop_timeout_s
            .and_then(fsutil::secs)
            .unwrap_or(Duration::from_secs(DEFAULT_STOP_TIMEOUT_S as u64))
    }
    /// How long the log may stay quiet before the command counts as hung.
    pub fn stale_after(&self) -> Option<Duration> {
        self.stale_after_min.and_then(|m| fsutil::secs(m * 60.0))
    }
    pub fn log_max_bytes(&self) -> u64 {
        self.log_max_bytes.unwrap_or(DEFAULT_LOG_MAX_BYTES)
    }
    pub fn log_keep(&self) -> u32 {
        self.log_keep.unwrap_or(DEFAULT_LOG_KEEP).min(MAX_LOG_KEEP)
    }

    /// Checks every field against its range; the message names the field,
    /// the flag that sets it, the allowed range and the bad value. Runs at
    /// `register` and on every load.
    pub fn validate(&self) -> Result<()> {
        self.validate_text()?;
        self.validate_numbers()
    }

    fn validate_text(&self) -> Result<()> {
        if self.command.trim().is_empty() {
            return Err(Error::Invalid(
                "the command is empty: give the program to run".into(),
            ));
        }
        if self.command.len() > MAX_COMMAND_LEN {
            return Err(Error::Invalid(format!(
                "the command is {} bytes long; at most {MAX_COMMAND_LEN} are allowed",
                self.command.len()
            )));
        }
        no_nul("command", &self.command)?;
        if let Some(cwd) = &self.cwd {
            no_nul("cwd", cwd)?;
        }
        for (key, value) in &self.env {
            validate_env_key(key)?;
            no_nul(key, value)?;
        }
        if let Some(cmd) = &self.alert_command {
            no_nul("alert_command", cmd)?;
        }
        for dep in &self.after {
            validate_name(dep)?;
        }
        if let Some(r) = &self.ready {
            r.validate().map_err(Error::Invalid)?;
        }
        if let Some(h) = &self.health {
            h.validate().map_err(Error::Invalid)?;
        }
        if let Some(m) = self.max_memory_bytes
            && !(MIN_MAX_MEMORY..=MAX_MAX_MEMORY).contains(&m)
        {
            return Err(Error::Invalid(format!(
                "max_memory_bytes (--max-memory) must be from 1M to 1T bytes, not {m}"
            )));
        }
        if let Some(path) = &self.env_file {
            if path.trim().is_empty() {
                return Err(Error::Invalid(
                    "env_file (--env-file) is empty: give the path of a KEY=VALUE file".into(),
                ));
            }
            no_nul("env_file", path)?;
        }
        Ok(())
    }

    /// Each number against its range: (field, flag, value, min, max, unit).
    fn validate_numbers(&self) -> Result<()> {
        let ranges = [
            (
                "duration_min",
                "DURATION_MIN / --duration",
                Some(self.duration_min),
                MAX_DURATION_MIN,
                "minutes",
            ),
            (
                "restart_cooldown",
                "--restart-cooldown",
                Some(self.restart_cooldown),
                MAX_RESTART_COOLDOWN_S,
                "seconds",
            ),
            (
                "stop_timeout_s",
                "--stop-timeout",
                self.stop_timeout_s,
                MAX_STOP_TIMEOUT_S,
                "seconds",
            ),
            (
                "stale_after_min",
                "--stale-after",
                self.stale_after_min,
                MAX_STALE_AFTER_MIN,
                "minutes",
            ),
        ];
        for (field, flag, value, max, unit) in ranges {
            if let Some(v) = value {
                in_range(field, flag, v, 0.0, max, unit)?;
            }
        }
        if self.stale_after_min == Some(0.0) {
            return Err(Error::Invalid(
                "stale_after_min (--stale-after) must be more than 0 minutes".into(),
            ));
        }
        if let Some(n) = self.log_max_bytes
            && !(MIN_LOG_MAX_BYTES..=MAX_LOG_MAX_BYTES).contains(&n)
        {
            return Err(Error::Invalid(format!(
                "log_max_bytes (--log-max-bytes) must be from {MIN_LOG_MAX_BYTES} to {MAX_LOG_MAX_BYTES} bytes, not {n}"
            )));
        }
        if let Some(n) = self.log_keep
            && n > MAX_LOG_KEEP
        {
            return Err(Error::Invalid(format!(
                "log_keep (--log-keep) must be from 0 to {MAX_LOG_KEEP}, not {n}"
            )));
        }
        Ok(())
    }
}

fn in_range(field: &str, flag: &str, v: f64, min: f64, max: f64, unit: &str) -> Result<()> {
    if v.is_finite() && (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{field} ({flag}) must be a number from {min} to {max} {unit}, not {v}"
        )))
    }
}

fn no_nul(field: &str, v: &str) -> Result<()> {
    if v.contains('\0') {
        Err(Error::Invalid(format!("{field} contains a NUL byte")))
    } else {
        Ok(())
    }
}

fn validate_env_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "environment variable name {key:?} is invalid: use letters, digits and _"
        )))
    }
}

/// Parses one `--env K=V` pair.
pub fn parse_env_pair(pair: &str) -> Result<(String, String)> {
    match pair.split_once('=') {
        Some((k, v)) => {
            validate_env_key(k)?;
            Ok((k.to_string(), v.to_string()))
        }
        None => Err(Error::Invalid(format!(
            "--env {pair:?}: expected KEY=VALUE"
        ))),
    }
}

/// Names match `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`, so a name is always a safe
/// file name: checked before any path is built from it.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("a name cannot be empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("a name has at most 64 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("a name starts with a letter or a digit");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return bad("use only letters, digits, '.', '_' and '-'");
    }
    if RESERVED_NAMES.contains(&name) {
        return bad("it is reserved: logs/healthcheck.log is the healthcheck's own log");
    }
    Ok(())
}

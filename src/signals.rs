//! Signals: the one `Signal` type of the program (rustix's), the names users
//! write (`TERM`, `SIGTERM`, `term`, `15`) and the names we print (`KILL`),
//! and `StopSignal`, an entry's stop signal parsed once when it is loaded.

use std::fmt;

pub use rustix::process::Signal;

use crate::error::{Error, Result};

/// Every signal a user may name, with the name we print.
const NAMES: &[(&str, Signal)] = &[
    ("HUP", Signal::HUP),
    ("INT", Signal::INT),
    ("QUIT", Signal::QUIT),
    ("ILL", Signal::ILL),
    ("TRAP", Signal::TRAP),
    ("ABRT", Signal::ABORT),
    ("BUS", Signal::BUS),
    ("FPE", Signal::FPE),
    ("KILL", Signal::KILL),
    ("USR1", Signal::USR1),
    ("SEGV", Signal::SEGV),
    ("USR2", Signal::USR2),
    ("PIPE", Signal::PIPE),
    ("ALRM", Signal::ALARM),
    ("TERM", Signal::TERM),
    ("STKFLT", Signal::STKFLT),
    ("CHLD", Signal::CHILD),
    ("CONT", Signal::CONT),
    ("STOP", Signal::STOP),
    ("TSTP", Signal::TSTP),
    ("TTIN", Signal::TTIN),
    ("TTOU", Signal::TTOU),
    ("URG", Signal::URG),
    ("XCPU", Signal::XCPU),
    ("XFSZ", Signal::XFSZ),
    ("VTALRM", Signal::VTALARM),
    ("PROF", Signal::PROF),
    ("WINCH", Signal::WINCH),
    ("IO", Signal::IO),
    ("PWR", Signal::POWER),
    ("SYS", Signal::SYS),
];

/// Parses a signal name: `TERM`, `SIGTERM`, `term` or a number.
pub fn parse(name: &str) -> Result<Signal> {
    let upper = name.trim().to_ascii_uppercase();
    if let Ok(n) = upper.parse::<i32>() {
        return NAMES
            .iter()
            .map(|(_, s)| *s)
            .find(|s| s.as_raw() == n)
            .ok_or_else(|| Error::Invalid(format!("unknown signal number {n}")));
    }
    let short = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES
        .iter()
        .find(|(n, _)| *n == short)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "unknown signal {name:?}: use a name such as TERM, INT, HUP or KILL"
            ))
        })
}

/// `9` → `KILL`; a number without a name stays a number.
pub fn name(sig: i32) -> String {
    NAMES
        .iter()
        .find(|(_, s)| s.as_raw() == sig)
        .map_or_else(|| sig.to_string(), |(n, _)| (*n).to_string())
}

/// An entry's stop signal, checked when the entry is read: it serializes as
/// its short name (`TERM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopSignal(pub Signal);

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal(Signal::TERM)
    }
}

impl fmt::Display for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&name(self.0.as_raw()))
    }
}

impl serde::Serialize for StopSignal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for StopSignal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text)
            .map(StopSignal)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse() {
        assert_eq!(parse("TERM").unwrap(), Signal::TERM);
        assert_eq!(parse("sigint").unwrap(), Signal::INT);
        assert_eq!(parse("9").unwrap(), Signal::KILL);
        assert!(parse("BOGUS").is_err());
        assert!(parse("").is_err());
        assert!(parse("0").is_err());
        assert!(parse("99999999999").is_err());
        assert_eq!(name(9), "KILL");
        assert_eq!(name(64), "64");
        for (n, s) in NAMES {
            assert_eq!(parse(n).unwrap(), *s);
            assert_eq!(name(s.as_raw()), *n);
        }
    }

    #[test]
    fn stop_signals_read_once_and_print_short() {
        let s: StopSignal = serde_json::from_str("\"SIGINT\"").unwrap();
        assert_eq!(s.0, Signal::INT);
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"INT\"");
        assert!(serde_json::from_str::<StopSignal>("\"NOPE\"").is_err());
    }
}

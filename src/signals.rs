//! Signal names as users write them (`TERM`, `SIGTERM`, `term`, `15`) and
//! as we print them (`KILL`).

use nix::sys::signal::Signal;

use crate::error::{Error, Result};

/// Parses a signal name: `TERM`, `SIGTERM`, `term` or a number.
pub fn parse(name: &str) -> Result<Signal> {
    let upper = name.trim().to_ascii_uppercase();
    if let Ok(n) = upper.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| Error::Invalid(format!("unknown signal number {n}")));
    }
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse::<Signal>().map_err(|_| {
        Error::Invalid(format!(
            "unknown signal {name:?}: use a name such as TERM, INT, HUP or KILL"
        ))
    })
}

/// `SIGKILL` → `KILL`.
pub fn name(sig: i32) -> String {
    match Signal::try_from(sig) {
        Ok(s) => s.as_str().trim_start_matches("SIG").to_string(),
        Err(_) => sig.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse() {
        assert_eq!(parse("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse("sigint").unwrap(), Signal::SIGINT);
        assert_eq!(parse("9").unwrap(), Signal::SIGKILL);
        assert!(parse("BOGUS").is_err());
        assert!(parse("").is_err());
        assert!(parse("99999999999").is_err());
        assert_eq!(name(9), "KILL");
    }
}

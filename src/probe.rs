//! Readiness probes. A supervisor never probes itself (a connect or a
//! read that hangs would stall it, and the code would cost every
//! supervisor memory): it starts this binary as the hidden
//! `probe <kind> <target> --timeout S [--cwd DIR] [--from OFFSET]`, whose
//! exit code is the answer (0 ready, 1 not yet) and whose stderr says why.
//!
//! - `tcp HOST:PORT`: a connection is accepted;
//! - `http URL`: plain HTTP/1.1 GET answers 2xx or 3xx (`https` is refused
//!   at register: `--ready-cmd 'curl -fsS URL'` does it);
//! - `cmd COMMAND`: `sh -c COMMAND` in the command's directory exits 0;
//! - `log REGEX`: a line of the log written since the command started matches.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The `ready` field of an entry: one kind of probe, and how long the
/// command may take to pass it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// Seconds from the start within which it should be ready (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
}

pub const DEFAULT_READY_TIMEOUT_S: f64 = 60.0;
/// How long one probe may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

impl Ready {
    /// The one probe: (kind, target).
    pub fn probe(&self) -> Option<(&'static str, &str)> {
        [
            ("http", &self.http),
            ("tcp", &self.tcp),
            ("cmd", &self.cmd),
            ("log", &self.log),
        ]
        .into_iter()
        .find_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    }

    pub fn timeout(&self) -> Duration {
        crate::fsutil::secs(self.timeout_s.unwrap_or(DEFAULT_READY_TIMEOUT_S))
            .unwrap_or(Duration::from_secs(60))
    }

    /// Exactly one probe, each well formed; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        let given = [&self.http, &self.tcp, &self.cmd, &self.log]
            .iter()
            .filter(|v| v.is_some())
            .count();
        if given != 1 {
            return Err(format!(
                "ready needs exactly one probe (--ready-http, --ready-tcp, --ready-cmd or --ready-log), not {given}"
            ));
        }
        if let Some(t) = self.timeout_s
            && !(t > 0.0 && t <= 86_400.0)
        {
            return Err(format!(
                "ready.timeout_s (--ready-timeout) must be a number of seconds above 0, up to 86400, not {t}"
            ));
        }
        if let Some(url) = &self.http {
            if url.starts_with("https://") {
                return Err(format!(
                    "--ready-http {url}: https is not probed (no TLS in a supervisor); use --ready-cmd 'curl -fsS {url}'"
                ));
            }
            parse_url(url).map_err(|e| format!("--ready-http {url}: {e}"))?;
        }
        if let Some(addr) = &self.tcp {
            split_host_port(addr).map_err(|e| format!("--ready-tcp {addr}: {e}"))?;
        }
        if let Some(re) = &self.log {
            regex_lite::Regex::new(re).map_err(|e| format!("--ready-log {re:?}: {e}"))?;
        }
        for v in [&self.http, &self.tcp, &self.cmd, &self.log]
            .into_iter()
            .flatten()
        {
            if v.contains('\0') || v.trim().is_empty() {
                return Err("a ready probe is empty or holds a NUL byte".into());
            }
        }
        Ok(())
    }
}

/// The `health` field of an entry: a probe run every `interval_s` while it
/// runs (and is ready); `failures` failures in a row restart it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Health {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// Seconds between two probes (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<f64>,
    /// Seconds one probe may take (default 5, or the interval if shorter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
    /// Failed probes in a row that restart it (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u32>,
}

impl Health {
    pub fn probe(&self) -> Option<(&'static str, &str)> {
        [("http", &self.http), ("tcp", &self.tcp), ("cmd", &self.cmd)]
            .into_iter()
            .find_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    }

    pub fn interval(&self) -> Duration {
        crate::fsutil::secs(self.interval_s.unwrap_or(10.0)).unwrap_or(Duration::from_secs(10))
    }

    pub fn timeout(&self) -> Duration {
        let default = self.interval().min(Duration::from_secs(5));
        self.timeout_s
            .and_then(crate::fsutil::secs)
            .unwrap_or(default)
    }

    pub fn failures(&self) -> u32 {
        self.failures.unwrap_or(3)
    }

    pub fn validate(&self) -> Result<(), String> {
        let as_ready = Ready {
            http: self.http.clone(),
            tcp: self.tcp.clone(),
            cmd: self.cmd.clone(),
            log: None,
            timeout_s: None,
        };
        as_ready.validate().map_err(|e| {
            e.replace("--ready-", "--health-")
                .replace("ready needs", "health needs")
        })?;
        for (field, flag, v) in [
            ("interval_s", "--health-interval", self.interval_s),
            ("timeout_s", "--health-timeout", self.timeout_s),
        ] {
            if let Some(v) = v
                && !(0.1..=86_400.0).contains(&v)
            {
                return Err(format!(
                    "health.{field} ({flag}) must be a number of seconds from 0.1 to 86400, not {v}"
                ));
            }
        }
        if let Some(n) = self.failures
            && !(1..=1000).contains(&n)
        {
            return Err(format!(
                "health.failures (--health-failures) must be from 1 to 1000, not {n}"
            ));
        }
        Ok(())
    }
}

pub(crate) fn split_host_port(addr: &str) -> Result<(&str, u16), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or("expected HOST:PORT, such as 127.0.0.1:8000")?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or("the port must be a number from 1 to 65535")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("expected HOST:PORT, such as 127.0.0.1:8000".into());
    }
    Ok((host, port))
}

/// `http://host[:port][/path]` as (host, port, path).
pub(crate) fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("expected http://HOST[:PORT]/PATH")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') || path.contains(['\r', '\n', ' ']) {
        return Err("expected http://HOST[:PORT]/PATH".into());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
            h,
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or("the port must be a number from 1 to 65535")?,
        ),
        _ => (authority, 80),
    };
    Ok((host.to_string(), port, path.to_string()))
}

/// A size as people write it: `200M`, `1.5G`, `512K`, `100MiB`, or bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.trim().parse().ok()?;
    let scale: f64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KB" | "KIB" => 1024.0,
        "M" | "MB" | "MIB" => 1024.0 * 1024.0,
        "G" | "GB" | "GIB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TB" | "TIB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = number * scale;
    (0.0..1.8e19).contains(&bytes).then_some(bytes as u64)
}

/// Entry point of the hidden `probe` subcommand; its exit code is the answer.
pub fn main(args: &[std::ffi::OsString]) -> i32 {
    use std::path::PathBuf;
    let usage = || {
        eprintln!(
            "usage: probe http|tcp|cmd|log TARGET [--timeout S] [--cwd DIR] [--file F --from N]"
        );
        2
    };
    let mut it = args.iter();
    // The kind, the target and the numbers are text; the paths are bytes.
    let (Some(kind), Some(target)) = (
        it.next().and_then(|a| a.to_str()),
        it.next().and_then(|a| a.to_str()),
    ) else {
        return usage();
    };
    let mut timeout = ATTEMPT_TIMEOUT;
    let mut cwd: Option<PathBuf> = None;
    let mut file: Option<PathBuf> = None;
    let mut from = 0u64;
    while let Some(a) = it.next() {
        let Some(v) = it.next() else {
            return usage();
        };
        match a.to_str() {
            Some("--timeout") => {
                timeout = v
                    .to_str()
                    .and_then(|v| v.parse().ok())
                    .and_then(crate::fsutil::secs)
                    .unwrap_or(ATTEMPT_TIMEOUT)
            }
            Some("--cwd") => cwd = Some(PathBuf::from(v)),
            Some("--file") => file = Some(PathBuf::from(v)),
            Some("--from") => from = v.to_str().and_then(|v| v.parse().ok()).unwrap_or(0),
            _ => return usage(),
        }
    }
    let result = match kind {
        "tcp" => tcp(target, timeout),
        "http" => http(target, timeout),
        "cmd" => cmd(target, cwd.as_deref(), timeout),
        "log" => log(target, file.as_deref(), from),
        _ => Err(format!("unknown probe {kind}")),
    };
    match result {
        Ok(()) => 0,
        Err(why) => {
            eprintln!("{why}");
            1
        }
    }
}

fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}:{port}: {e}"))?;
    let mut last = format!("{host}:{port}: no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

fn tcp(target: &str, timeout: Duration) -> Result<(), String> {
    let (host, port) = split_host_port(target)?;
    connect(host, port, timeout).map(|_| ())
}

fn http(url: &str, timeout: Duration) -> Result<(), String> {
    let started = Instant::now();
    let (host, port, path) = parse_url(url)?;
    let mut s = connect(&host, port, timeout)?;
    let left = timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(10));
    let _ = s.set_read_timeout(Some(left));
    let _ = s.set_write_timeout(Some(left));
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: process-guardian\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes())
        .map_err(|e| format!("{url}: {e}"))?;
    let mut head = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        match s.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(format!("{url}: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..got]);
    let status: u16 = line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            format!(
                "{url}: not an HTTP answer: {:?}",
                line.lines().next().unwrap_or("")
            )
        })?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("{url}: HTTP {status}"))
    }
}

fn cmd(command: &str, cwd: Option<&std::path::Path>, timeout: Duration) -> Result<(), String> {
    let mut c = std::process::Command::new("/bin/sh");
    c.args(["-c", command])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if let Some(dir) = cwd {
        c.current_dir(dir);
    }
    let mut child = c.spawn().map_err(|e| format!("sh -c {command:?}: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(format!("{command:?} exited with {st}")),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{command:?} took over {} s", timeout.as_secs_f64()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn log(pattern: &str, file: Option<&std::path::Path>, from: u64) -> Result<(), String> {
    use std::io::{BufRead, Seek, SeekFrom};
    let re = regex_lite::Regex::new(pattern).map_err(|e| e.to_string())?;
    let path = file.ok_or("no log file given")?;
    let mut f =
        crate::fsutil::open_own_read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // A rotation since the start: read the file from its beginning.
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let at = if from > len { 0 } else { from };
    f.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
    let reader = std::io::BufReader::new(f.take(16 << 20));
    for line in reader.split(b'\n').map_while(Result::ok) {
        let line = String::from_utf8_lossy(&line);
        if line.starts_with('[') && line.contains(" process-guardian] ") {
            continue;
        }
        if re.is_match(&line) {
            return Ok(());
        }
    }
    Err(format!("no line matches {pattern:?} yet"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_addresses_parse_or_are_refused() {
        assert_eq!(
            parse_url("http://127.0.0.1:8000/health").unwrap(),
            ("127.0.0.1".into(), 8000, "/health".into())
        );
        assert_eq!(
            parse_url("http://localhost").unwrap(),
            ("localhost".into(), 80, "/".into())
        );
        for bad in [
            "ftp://x",
            "http://",
            "http://h:0/",
            "http://h:99999/",
            "http://u@h/",
            "http://h/a b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        assert_eq!(split_host_port("127.0.0.1:80").unwrap(), ("127.0.0.1", 80));
        assert_eq!(split_host_port("[::1]:80").unwrap(), ("::1", 80));
        for bad in ["noport", ":80", "h:0", "h:x"] {
            assert!(split_host_port(bad).is_err(), "{bad}");
        }
        let r = Ready {
            http: Some("https://x".into()),
            ..Ready::default()
        };
        assert!(r.validate().unwrap_err().contains("curl -fsS https://x"));
        let two = Ready {
            tcp: Some("h:1".into()),
            cmd: Some("true".into()),
            ..Ready::default()
        };
        assert!(two.validate().is_err());
        let bad_re = Ready {
            log: Some("(".into()),
            ..Ready::default()
        };
        assert!(bad_re.validate().is_err());
    }
}

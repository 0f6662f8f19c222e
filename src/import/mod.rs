//! `import`: the processes another tool defines, as registry entries: a
//! `Procfile` (Heroku, foreman, honcho, overmind), a pm2 ecosystem file
//! (JSON or YAML), a supervisord configuration (`[program:x]` sections).
//!
//! Each reader turns its file into `Imported` entries, and says what it did
//! not carry over: keys it does not translate are listed (`ignored`), never
//! dropped in silence, and a translation that changes meaning gets a note.
//! What the file does not say takes process-guardian's defaults; a relative
//! directory is relative to the file's own.

mod pm2;
mod procfile;
mod supervisord;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::ImportFormat;
use crate::error::{Error, Result};
use crate::registry::{Entry, validate_name};

/// A file larger than this is not a process definition.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// One process read from the file.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    pub name: String,
    pub entry: Entry,
    /// What was translated with a difference, in words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The file's keys for this process that have no translation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
}

/// What a file holds: its processes, and what else it has that is not imported.
#[derive(Debug, Default)]
pub struct Parsed {
    pub processes: Vec<Imported>,
    /// Sections or top-level keys that are not processes.
    pub ignored: Vec<String>,
}

pub fn format_name(f: ImportFormat) -> &'static str {
    match f {
        ImportFormat::Procfile => "procfile",
        ImportFormat::Pm2 => "pm2",
        ImportFormat::Supervisord => "supervisord",
    }
}

/// Reads and translates `path`; every entry is valid when this returns.
pub fn read(path: &Path, format: Option<ImportFormat>) -> Result<(ImportFormat, Parsed)> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Invalid(format!("{shown}: no such file to import"))
        } else {
            Error::io("read", path, e)
        }
    })?;
    if !meta.is_file() {
        return Err(Error::Invalid(format!("{shown}: not a file")));
    }
    {
        use std::os::unix::fs::MetadataExt;
        // Anyone could have put a command in a file anyone can write.
        if meta.mode() & 0o002 != 0 {
            return Err(Error::Untrusted {
                path: path.to_path_buf(),
                reason: format!("every user can write it (mode {:o})", meta.mode() & 0o7777),
                risk: "anyone could have put a command in it, to run as you",
                fix: format!("Check its commands, then: chmod o-w {shown}"),
            });
        }
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(Error::Invalid(format!(
            "{shown}: {} bytes is too large for a process definition (at most {MAX_FILE_BYTES})",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let text =
        String::from_utf8(bytes).map_err(|_| Error::Invalid(format!("{shown}: not UTF-8 text")))?;
    let format = match format {
        Some(f) => f,
        None => detect(path, &text)?,
    };
    let base = path
        .canonicalize()
        .map_err(|e| Error::io("resolve", path, e))?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let fail = |e: String| Error::Invalid(format!("{shown}: {e}"));
    let parsed = match format {
        ImportFormat::Procfile => procfile::parse(&text, &base),
        ImportFormat::Pm2 => pm2::parse(&text, is_yaml(path), &base),
        ImportFormat::Supervisord => supervisord::parse(&text, &base),
    }
    .map_err(fail)?;
    let mut seen: Vec<&str> = Vec::new();
    for p in &parsed.processes {
        validate_name(&p.name).map_err(|e| fail(e.to_string()))?;
        if seen.contains(&p.name.as_str()) {
            return Err(fail(format!("the name {:?} is defined twice", p.name)));
        }
        seen.push(&p.name);
        p.entry
            .validate()
            .map_err(|e| fail(format!("{}: {e}", p.name)))?;
    }
    if parsed.processes.is_empty() {
        return Err(fail(format!(
            "no process found in this {} file",
            format_name(format)
        )));
    }
    Ok((format, parsed))
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml")
    )
}

/// The format, from the file's name, else its content.
fn detect(path: &Path, text: &str) -> Result<ImportFormat> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if matches!(ext.as_str(), "js" | "cjs" | "mjs" | "ts") {
        return Err(Error::Invalid(format!(
            "{}: a JavaScript ecosystem file is code, which import does not run; turn it into JSON first: node -e 'console.log(JSON.stringify(require(\"./{}\"), null, 2))' > ecosystem.json",
            path.display(),
            name
        )));
    }
    if name == "procfile" || name.starts_with("procfile.") {
        return Ok(ImportFormat::Procfile);
    }
    match ext.as_str() {
        "json" | "yml" | "yaml" => return Ok(ImportFormat::Pm2),
        "conf" | "ini" => return Ok(ImportFormat::Supervisord),
        _ => {}
    }
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .unwrap_or("");
    if text.contains("[program:") {
        Ok(ImportFormat::Supervisord)
    } else if first.starts_with('{') || first.starts_with('[') || first.starts_with("apps:") {
        Ok(ImportFormat::Pm2)
    } else if procfile::looks_like(text) {
        Ok(ImportFormat::Procfile)
    } else {
        Err(Error::Invalid(format!(
            "{}: cannot tell its format from its name or content; say it with --format procfile|pm2|supervisord",
            path.display()
        )))
    }
}

/// A directory from the file, absolute: relative to the file's own.
fn directory(base: &Path, dir: &str) -> String {
    let p = base.join(dir);
    // `a/../b` spelled as the file meant it, without following links.
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out.display().to_string()
}

/// A note for a directory that does not exist (yet): `start` would fail.
fn check_dir(dir: &str, notes: &mut Vec<String>) {
    if !Path::new(dir).is_dir() {
        notes.push(format!(
            "its directory {dir} does not exist: start fails until it does"
        ));
    }
}

/// A new entry with the file's directory as its working directory.
fn entry(command: String, cwd: &str) -> Entry {
    let mut e = Entry::new(command);
    e.cwd = Some(cwd.to_string());
    e
}

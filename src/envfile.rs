//! `env_file`: `KEY=VALUE` lines as a `.env` file holds them, read when a
//! supervisor prepares its command. Blank lines and `#` comments are
//! skipped, `export KEY=VALUE` is accepted, a value may be single-quoted
//! (taken as it is), double-quoted (`\n`, `\t`, `\"`, `\\` and `\$`
//! unescaped) or bare (an unquoted ` #` starts a comment, spaces around are
//! trimmed). Nothing is expanded: `$OTHER` stays as written.

/// The pairs of `text`, in order; a line that is not one says where.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {n}: expected KEY=VALUE, found {raw:?}"));
        };
        let key = key.trim();
        let valid = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "line {n}: {key:?} is not a variable name (letters, digits and _)"
            ));
        }
        let value = unquote(value.trim()).map_err(|why| format!("line {n}: {why}"))?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn unquote(v: &str) -> Result<String, String> {
    if let Some(rest) = v.strip_prefix('\'') {
        let Some(end) = rest.find('\'') else {
            return Err("a single quote is not closed".into());
        };
        return trailing(&rest[end + 1..]).map(|_| rest[..end].to_string());
    }
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return trailing(&rest[i + 1..]).map(|_| out),
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(c @ ('"' | '\\' | '$' | '`')) => out.push(c),
                    Some(c) => {
                        out.push('\\');
                        out.push(c);
                    }
                    None => out.push('\\'),
                },
                c => out.push(c),
            }
        }
        return Err("a double quote is not closed".into());
    }
    // Bare: a comment starts at " #".
    let v = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    Ok(v.trim_end().to_string())
}

/// After a closing quote: only spaces and a comment.
fn trailing(rest: &str) -> Result<(), String> {
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(())
    } else {
        Err(format!("unexpected {rest:?} after the closing quote"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_lines_parse_as_users_write_them() {
        let text = "\
# a comment
PLAIN=value
SPACED = padded   # a comment after
export EXPORTED=yes
SINGLE='$HOME \\n' # kept as written
DOUBLE=\"line\\nnext \\\"quoted\\\" \\$HOME\"
EMPTY=
HASH=a#b

URL=https://x.example/?a=1&b=2
";
        let got = parse(text).unwrap();
        let want: Vec<(String, String)> = [
            ("PLAIN", "value"),
            ("SPACED", "padded"),
            ("EXPORTED", "yes"),
            ("SINGLE", "$HOME \\n"),
            ("DOUBLE", "line\nnext \"quoted\" $HOME"),
            ("EMPTY", ""),
            ("HASH", "a#b"),
            ("URL", "https://x.example/?a=1&b=2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn bad_lines_are_located() {
        assert_eq!(
            parse("A=1\nNOEQUALS\n").unwrap_err(),
            "line 2: expected KEY=VALUE, found \"NOEQUALS\""
        );
        assert!(parse("1X=y").unwrap_err().contains("line 1"));
        assert!(parse("A=\"open").unwrap_err().contains("not closed"));
        assert!(parse("A='open").unwrap_err().contains("not closed"));
        assert!(
            parse("A=\"x\" y")
                .unwrap_err()
                .contains("after the closing quote")
        );
    }
}

//! Command strings: when to hand them to `sh -c`, how to split them when not,
//! and how `run` quotes an argument vector into one string.

/// Characters that mean the string needs a shell to keep its meaning.
const SHELL_SYNTAX: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', '*', '?', '[', ']', '#', '~',
    '{', '}', '!', '\n',
];

/// Whether `command` uses shell syntax (pipes, quotes, variables, globs,
/// a leading `VAR=value`, …) and so must run under `sh -c`.
pub fn needs_shell(command: &str) -> bool {
    if command.contains(SHELL_SYNTAX) {
        return true;
    }
    // `FOO=bar prog` sets a variable: shell syntax. `prog a=b` does not.
    command
        .split_whitespace()
        .next()
        .is_some_and(|w| w.contains('='))
}

/// How a command string is run: the program and its arguments.
pub fn argv(command: &str) -> Vec<String> {
    if needs_shell(command) {
        vec!["/bin/sh".into(), "-c".into(), command.into()]
    } else {
        command.split_whitespace().map(str::to_string).collect()
    }
}

/// Quotes one argument for `sh`, leaving plain words as they are.
pub fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:,+@%^".contains(c))
        && !arg.contains('=');
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Joins an argument vector into a command string that `sh -c` splits back into the same vector.
pub fn join(args: &[String]) -> String {
    args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_commands_are_execed_directly() {
        assert!(!needs_shell("python3 bot.py --port 8080"));
        assert!(!needs_shell("sleep 1000"));
        assert!(!needs_shell("prog key=value"));
        assert_eq!(argv("sleep  1000"), vec!["sleep", "1000"]);
    }

    #[test]
    fn shell_syntax_goes_to_sh() {
        for c in [
            "a | b",
            "a && b",
            "a; b",
            "echo $HOME",
            "echo 'x y'",
            "ls *.py",
            "FOO=1 prog",
            "(sleep 2 &); exec sleep 1000",
            "a > out",
            "echo ~",
        ] {
            assert!(needs_shell(c), "{c}");
            assert_eq!(argv(c)[..2], ["/bin/sh", "-c"]);
        }
    }

    #[test]
    fn quoting_round_trips_through_sh() {
        let args: Vec<String> = [
            "printf",
            "%s|",
            "a b",
            "it's",
            "",
            "$HOME",
            "x=y",
            "\"q\"",
            "back\\slash",
            "new\nline",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let joined = join(&args);
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&joined)
            .output()
            .unwrap();
        let expected: String = args[2..].iter().map(|a| format!("{a}|")).collect();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    }
}

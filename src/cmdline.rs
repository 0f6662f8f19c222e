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

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// `run` stores `join(argv)`; `sh -c` must split it back into exactly argv.
        #[test]
        fn joined_arguments_survive_the_shell(args in prop::collection::vec("[^\\x00]{0,12}", 1..5)) {
            let mut argv = vec!["printf".to_string(), "%s\\0".to_string()];
            argv.extend(args.iter().cloned());
            let out = std::process::Command::new("/bin/sh").arg("-c").arg(join(&argv)).output().unwrap();
            let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split('\0')
                .map(str::to_string)
                .collect();
            let mut expected = args.clone();
            expected.push(String::new());
            prop_assert_eq!(got, expected);
        }

        /// Words of plain characters never need a shell and split on blanks.
        #[test]
        fn plain_words_are_execed_directly(words in prop::collection::vec("[A-Za-z0-9_./:,+@%^-]{1,10}", 1..6)) {
            let line = words.join(" ");
            prop_assert!(!needs_shell(&line));
            prop_assert_eq!(argv(&line), words);
        }

        /// Any metacharacter sends the string to `sh -c`, whole.
        #[test]
        fn metacharacters_go_to_the_shell(prefix in "[a-z ]{0,8}", meta in "[|&;<>()$`\\\\\"'*?#~{}!\\[\\]]", suffix in "[a-z ]{0,8}") {
            let line = format!("x{prefix}{meta}{suffix}");
            prop_assert!(needs_shell(&line));
            prop_assert_eq!(argv(&line), vec!["/bin/sh".to_string(), "-c".to_string(), line.clone()]);
        }
    }
}

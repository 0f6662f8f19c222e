//! Command strings: when to hand them to `sh -c`, how to split them when not,
//! and how `run` quotes an argument vector into one string.
//!
//! A command that uses the shell only for quoting (`prog 'a b'`) or for
//! `VAR=value` prefixes is split here and exec'd directly: the program is
//! then the process the supervisor watches and signals, not a shell that
//! would exit at once on SIGTERM and leave the program behind.

/// Characters that mean the string needs a shell to keep its meaning.
const SHELL_SYNTAX: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', '*', '?', '[', ']', '#', '~',
    '{', '}', '!', '\n',
];

/// Whether `command` must run under `sh -c`: it uses shell syntax beyond
/// quoting and leading `VAR=value` words.
#[cfg(test)]
pub fn needs_shell(command: &str) -> bool {
    split_simple(command).is_none_or(|p| p.argv.is_empty())
}

/// How a command string is run: the program and its arguments, and the
/// variables its leading `VAR=value` words set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub env: Vec<(String, String)>,
    pub argv: Vec<String>,
}

/// Splits a command into words as `sh` would when it uses nothing but
/// blanks, quotes, backslashes and leading assignments; anything else
/// (pipes, variables, globs, redirections, …) runs under `sh -c`, whole.
pub fn parse(command: &str) -> Parsed {
    match split_simple(command) {
        Some(p) if !p.argv.is_empty() => p,
        _ => Parsed {
            env: Vec::new(),
            argv: vec!["/bin/sh".into(), "-c".into(), command.into()],
        },
    }
}

/// The words of a simple command, or `None` where a shell is needed.
fn split_simple(command: &str) -> Option<Parsed> {
    let mut words: Vec<(String, Option<usize>)> = Vec::new();
    let mut chars = command.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        // The word, and where its first quoted or escaped character stands
        // (an assignment's name must come before it).
        let mut word = String::new();
        let mut quoted_at: Option<usize> = None;
        while let Some(&c) = chars.peek() {
            match c {
                ' ' | '\t' => break,
                '\'' => {
                    chars.next();
                    quoted_at.get_or_insert(word.len());
                    loop {
                        match chars.next()? {
                            '\'' => break,
                            c => word.push(c),
                        }
                    }
                }
                '"' => {
                    chars.next();
                    quoted_at.get_or_insert(word.len());
                    loop {
                        match chars.next()? {
                            '"' => break,
                            '$' | '`' => return None,
                            '\\' => match chars.next()? {
                                c @ ('"' | '\\' | '$' | '`') => word.push(c),
                                '\n' => return None,
                                c => {
                                    word.push('\\');
                                    word.push(c);
                                }
                            },
                            c => word.push(c),
                        }
                    }
                }
                '\\' => {
                    chars.next();
                    quoted_at.get_or_insert(word.len());
                    match chars.next()? {
                        '\n' => return None,
                        c => word.push(c),
                    }
                }
                c if SHELL_SYNTAX.contains(&c) || c.is_control() => return None,
                c => {
                    chars.next();
                    word.push(c);
                }
            }
        }
        words.push((word, quoted_at));
    }
    let mut env = Vec::new();
    let mut argv = Vec::new();
    for (word, quoted_at) in words {
        if argv.is_empty()
            && let Some(eq) = word.find('=')
            && quoted_at.is_none_or(|q| eq < q)
            && is_var_name(&word[..eq])
        {
            env.push((word[..eq].to_string(), word[eq + 1..].to_string()));
            continue;
        }
        argv.push(word);
    }
    Some(Parsed { env, argv })
}

fn is_var_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
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
        assert_eq!(parse("sleep  1000").argv, vec!["sleep", "1000"]);
    }

    #[test]
    fn shell_syntax_goes_to_sh() {
        for c in [
            "a | b",
            "a && b",
            "a; b",
            "echo $HOME",
            "echo \"$HOME\"",
            "ls *.py",
            "(sleep 2 &); exec sleep 1000",
            "a > out",
            "echo ~",
            "echo 'unterminated",
            "FOO=1",
        ] {
            assert!(needs_shell(c), "{c}");
            assert_eq!(parse(c).argv[..2], ["/bin/sh", "-c"], "{c}");
        }
    }

    #[test]
    fn quotes_and_assignments_alone_need_no_shell() {
        let p = parse("FOO=bar B_2='x y' python3 graceful.py 'a b.txt' \"it's\" a\\ b k=v ''");
        assert_eq!(
            p.env,
            vec![
                ("FOO".to_string(), "bar".to_string()),
                ("B_2".to_string(), "x y".to_string())
            ]
        );
        assert_eq!(
            p.argv,
            vec![
                "python3",
                "graceful.py",
                "a b.txt",
                "it's",
                "a b",
                "k=v",
                ""
            ]
        );
        // A quoted name is no assignment: `'A'=1 prog` runs the program `A=1`.
        assert_eq!(parse("'A'=1 prog").argv, vec!["A=1", "prog"]);
        assert_eq!(parse("\"a\\\"b\"").argv, vec!["a\"b"]);
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
            prop_assert_eq!(parse(&line).argv, words);
        }

        /// `run` stores `join(argv)`; splitting it without a shell gives back argv.
        #[test]
        fn joined_arguments_split_back_without_a_shell(args in prop::collection::vec("[^\\x00]{0,12}", 1..5)) {
            let mut argv = vec!["printf".to_string()];
            argv.extend(args.iter().cloned());
            let p = parse(&join(&argv));
            if p.argv[0] != "/bin/sh" {
                prop_assert!(p.env.is_empty());
                prop_assert_eq!(p.argv, argv);
            }
        }

        /// Any metacharacter sends the string to `sh -c`, whole.
        #[test]
        fn metacharacters_go_to_the_shell(prefix in "[a-z ]{0,8}", meta in "[|&;<>()$`*?#~{}!\\[\\]]", suffix in "[a-z ]{0,8}") {
            let line = format!("x{prefix}{meta}{suffix}");
            prop_assert!(needs_shell(&line));
            prop_assert_eq!(parse(&line).argv, vec!["/bin/sh".to_string(), "-c".to_string(), line.clone()]);
        }
    }
}

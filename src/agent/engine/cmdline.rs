//! How an exec `command` becomes a process.
//!
//! The rule: a command runs WITHOUT a shell — split into words, honouring simple '…' and "…"
//! quotes — unless it needs one. It needs one when it contains any of
//! `| & ; < > $ \` ( ) * ? [ ] { } ~ \` or a newline, when its first word is a variable
//! assignment (`A=1 cmd`), or when its first word is a shell builtin or keyword (`cd`,
//! `export`, `if`, …). Then it runs as `/bin/sh -c <command>`.

const SHELL_CHARS: &[char] =
    &['|', '&', ';', '<', '>', '$', '`', '(', ')', '*', '?', '[', ']', '{', '}', '~', '\n', '\\'];
const BUILTINS: &[&str] = &[
    "cd", "export", "source", ".", "exit", "set", "unset", "umask", "alias", "if", "for", "while", "until",
    "case", "exec", "eval", "ulimit", "trap", "wait", "read", "[[", "!",
];

pub(crate) fn needs_shell(command: &str) -> bool {
    if command.contains(SHELL_CHARS) {
        return true;
    }
    let first = command.split_whitespace().next().unwrap_or_default();
    let assignment =
        first.split_once('=').is_some_and(|(n, _)| !n.is_empty() && !n.contains(['/', '\'', '"']));
    assignment || BUILTINS.contains(&first)
}

/// Splits a shell-free command into words. Quotes group words; an unclosed quote is an error.
pub(crate) fn split_words(command: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in command.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("command {command:?} has an unclosed quote"));
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err("the command is empty".into());
    }
    Ok(words)
}

/// The argv to run `command` with, by the rule above.
pub(crate) fn argv(command: &str) -> Result<Vec<String>, String> {
    if needs_shell(command) {
        Ok(vec!["/bin/sh".into(), "-c".into(), command.into()])
    } else {
        split_words(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_only_when_needed_and_quotes_group_words() {
        assert_eq!(argv("grafana-cli admin reset --password-from-stdin").unwrap().len(), 4);
        assert_eq!(argv(r#"printf %s 'a b' "c d""#).unwrap(), ["printf", "%s", "a b", "c d"]);
        assert_eq!(argv("deploy.sh --key-file /tmp/k").unwrap()[0], "deploy.sh");
        for shell in [
            "a | b",
            "a && b",
            "a; b",
            "echo $HOME",
            "ls *.conf",
            "a > f",
            "cd /tmp",
            "A=1 make",
            "echo `id`",
            "a\nb",
            "echo ~",
        ] {
            assert_eq!(argv(shell).unwrap()[..2], ["/bin/sh", "-c"], "{shell}");
        }
        assert!(split_words("echo 'open").is_err());
        assert!(split_words("   ").is_err());
    }
}

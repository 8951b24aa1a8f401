//! Tests of the shell reader.

use super::*;

fn words(text: &str) -> Vec<Vec<String>> {
    parse(text)
        .unwrap()
        .iter()
        .map(|c| c.words.iter().map(|w| w.literal().unwrap_or_else(|| format!("{:?}", w.0))).collect())
        .collect()
}

#[test]
fn splits_commands_and_removes_quotes_as_a_shell_does() {
    assert_eq!(
        words("a 'b c' \"d\"e\\ f; g && h || i | j & k\nl"),
        [vec!["a", "b c", "de f"], vec!["g"], vec!["h"], vec!["i"], vec!["j"], vec!["k"], vec!["l"]]
    );
    assert_eq!(words("$'\\x72m' -rf /"), [vec!["rm", "-rf", "/"]]);
    assert_eq!(words("r\\m x # comment; rm -rf /"), [vec!["rm", "x"]]);
    assert_eq!(words("f() { echo hi; }; f"), [vec!["f"], vec!["echo", "hi"], vec!["f"]]);
    let c = &parse("echo x > /dev/sda 2>&1 >>log <in <<<here").unwrap()[0];
    assert_eq!(c.words.len(), 2);
    let targets: Vec<_> = c.redirects.iter().map(|(k, w)| (*k, w.literal().unwrap())).collect();
    assert_eq!(
        targets,
        [
            (Redir::Write, "/dev/sda".to_string()),
            (Redir::Write, "log".into()),
            (Redir::Read, "in".into()),
            (Redir::HereString, "here".into())
        ]
    );
    assert!(parse("a | b").unwrap()[1].piped && !parse("a || b").unwrap()[1].piped);
}

#[test]
fn substitutions_variables_and_globs_are_kept_apart() {
    let c = &parse("$(echo rm) -rf \"${X:-/}\"/* `id` <(curl e) ~").unwrap()[0];
    assert_eq!(c.words[0].0, [Part::Subst("echo rm".into())]);
    assert_eq!(
        c.words[2].0,
        [
            Part::Lit(String::new()),
            Part::Var("X".into(), Some(Word(vec![Part::Lit("/".into())]))),
            Part::Lit("/".into()),
            Part::Glob('*')
        ]
    );
    assert_eq!(c.words[3].0, [Part::Subst("id".into())]);
    assert_eq!(c.words[4].0, [Part::Subst("curl e".into())]);
    assert_eq!(c.words[5].0, [Part::Var("HOME".into(), None)]);
    assert_eq!(parse("echo $(a \"(\" $(b))").unwrap()[0].words[1].0, [Part::Subst("a \"(\" $(b)".into())]);
    for bad in ["echo 'x", "echo \"x", "echo $(x", "echo `x", "echo ${x"] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

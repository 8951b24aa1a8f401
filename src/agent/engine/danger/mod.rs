//! The dangerous-command scan for exec resources. It reads the command as a shell would
//! (`shell`), follows what a shell would do with it — wrappers such as `sudo`, `env` or
//! `sh -c` unwrapped, `cd` followed for relative paths, variables set earlier substituted (the
//! command starts with a clean environment, so an unset variable is empty) — and flags the
//! shapes in `rules`. What it cannot see through is treated as dangerous where it matters: a
//! command whose name comes from a substitution, `eval` of computed text, text piped into a
//! shell, a substitution as the target of a destructive command.
//!
//! It is a seat belt against mistakes and careless configs, not a sandbox: a command can
//! always hide what it does from a text scan (a script file, an interpreter's own code, a
//! value computed at run time).

mod rules;
mod rules_services;
mod shell;
#[cfg(test)]
mod tests;
mod words;
mod wrappers;

use std::collections::HashMap;

use shell::Command;
use words::{assignment, Env, Expanded, Value, MAX_CANDIDATES};

/// One rule a command breaks: `dangerous-command:<name>` or a `protected-*` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    pub rule: String,
    pub why: String,
}

/// What the guardrails protect, asked by the scan. Each answers with the rule broken.
pub(crate) trait Protected {
    /// `action`: stop, disable or restart.
    fn service_rule(&self, name: &str, action: &str) -> Option<String>;
    fn package_rule(&self, name: &str) -> Option<String>;
    /// A process pattern (`pkill PATTERN`) that would kill a protected service.
    fn kill_rule(&self, pattern: &str) -> Option<String>;
    /// An absolute host path a command writes to or removes.
    fn path_rule(&self, path: &str) -> Option<String>;
}

/// Every rule `text` breaks when run with working directory `cwd` (`/` when not given: the
/// agent's own, under systemd).
pub(crate) fn scan(text: &str, cwd: Option<&str>, protected: &dyn Protected) -> Vec<Hit> {
    let mut s = Scanner { protected, hits: Vec::new(), depth: 0 };
    let mut env = Env { vars: HashMap::new(), cwd: Some(cwd.unwrap_or("/").to_string()) };
    s.script(text, &mut env);
    s.hits
}

const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "yash"];
const INTERPRETERS: &[&str] = &["python", "python2", "python3", "perl", "ruby", "node", "php", "lua"];
const DOWNLOADERS: &[&str] = &["curl", "wget", "fetch", "aria2c"];
/// Nesting of `sh -c`, `eval` and substitutions followed before giving up (and flagging).
const MAX_DEPTH: u8 = 6;

pub(super) fn base(text: &str) -> &str {
    text.rsplit('/').next().unwrap_or(text)
}

struct Scanner<'p> {
    protected: &'p dyn Protected,
    hits: Vec<Hit>,
    depth: u8,
}

/// Where a command's input comes from, as far as running code from it goes.
#[derive(Clone, Default)]
struct Input {
    /// Fed by a pipe.
    piped: bool,
    /// A downloader runs earlier in the same pipeline.
    download_upstream: bool,
    /// `<<< word`: the word is the input.
    here: Option<Expanded>,
}

impl Scanner<'_> {
    fn hit(&mut self, rule: impl Into<String>, why: impl Into<String>) {
        let rule = rule.into();
        if !self.hits.iter().any(|h| h.rule == rule) {
            self.hits.push(Hit { rule, why: why.into() });
        }
    }

    fn danger(&mut self, name: &str, why: &str) {
        self.hit(format!("dangerous-command:{name}"), why);
    }

    fn opaque(&mut self, what: &str) {
        self.danger("opaque-command", &format!("{what}; the scan cannot see what would run"));
    }

    /// Scans shell text in `env` (changed by assignments and `cd`, as a shell's is).
    fn script(&mut self, text: &str, env: &mut Env) {
        if self.depth > MAX_DEPTH {
            return self.opaque("the command nests shells and substitutions too deeply");
        }
        if rules::fork_bomb(text) {
            self.danger("fork-bomb", "a function that pipes into itself in the background");
        }
        let cmds = match shell::parse(text) {
            Ok(c) => c,
            Err(e) => return self.opaque(&format!("the command cannot be read as shell text ({e})")),
        };
        let mut download_upstream = false;
        for cmd in &cmds {
            if !cmd.piped {
                download_upstream = false;
            }
            let input = Input { piped: cmd.piped, download_upstream, here: None };
            download_upstream |= self.command(cmd, env, input);
        }
    }

    /// Scans `text` one level down, in a copy of `env` (a subshell, a substitution).
    fn nested(&mut self, text: &str, env: &Env) {
        self.depth += 1;
        self.script(text, &mut env.clone());
        self.depth -= 1;
    }

    /// One simple command; returns whether it is a downloader (for the rest of its pipeline).
    fn command(&mut self, cmd: &Command, env: &mut Env, mut input: Input) -> bool {
        let mut words: Vec<Expanded> = cmd.words.iter().map(|w| env.expand(w)).collect();
        let mut here = None;
        for (kind, target) in &cmd.redirects {
            let t = env.expand(target);
            match kind {
                shell::Redir::Write => rules::written_path(self, env, &t, "redirect-to-device"),
                shell::Redir::HereString => here = Some(t.clone()),
                shell::Redir::Read => {}
            }
            words.push(t);
        }
        // Whatever a substitution runs, runs: scan it wherever it stands.
        for subst in words.iter().flat_map(|w| w.substs.clone()).collect::<Vec<_>>() {
            self.nested(&subst, env);
        }
        words.truncate(cmd.words.len());
        input.here = here;
        let mut i = 0;
        let mut local = env.clone();
        while let Some((name, value)) = cmd.words.get(i).and_then(assignment) {
            let v = env.expand(&value);
            local.assign(&name, &v);
            i += 1;
        }
        if i == cmd.words.len() {
            env.vars = local.vars; // only assignments: they stay for the rest of the script
            return false;
        }
        self.invoke(&words[i..], &mut local, env, &input)
    }

    /// Runs `words` as a command (after any wrapper): `local` is its environment, `env` the
    /// script's (for `cd` and `export`). Returns whether it downloads.
    fn invoke(&mut self, words: &[Expanded], local: &mut Env, env: &mut Env, input: &Input) -> bool {
        let Some(first) = words.first() else { return false };
        if first.hidden() {
            self.opaque("the command's name is the output of another command");
            return false;
        }
        let mut downloads = false;
        for name_text in first.texts.clone() {
            if name_text.is_empty() {
                // An empty variable vanishes: the next word is the command.
                downloads |= self.invoke(&words[1..], local, env, input);
                continue;
            }
            downloads |= self.dispatch(&name_text, &words[1..], local, env, input);
        }
        downloads
    }

    fn dispatch(
        &mut self,
        path: &str,
        args: &[Expanded],
        local: &mut Env,
        env: &mut Env,
        input: &Input,
    ) -> bool {
        let name = base(path);
        // Keywords that start a compound command run the command after them.
        if matches!(name, "!" | "if" | "then" | "else" | "elif" | "do" | "while" | "until") {
            return self.invoke(args, local, env, input);
        }
        if let Some(rest) = wrappers::unwrap(name, args) {
            return match rest {
                wrappers::Unwrapped::Command(skip, extra) => {
                    for (k, v) in extra {
                        local.assign(&k, &v);
                    }
                    self.invoke(&args[skip..], local, env, input)
                }
                wrappers::Unwrapped::Script(script) => {
                    if script.hidden() {
                        self.hidden_script(&script, "the wrapper's script is the output of another command");
                    } else {
                        for text in &script.texts {
                            self.shell_script(text, local);
                        }
                    }
                    false
                }
                wrappers::Unwrapped::Nothing => false,
            };
        }
        match name {
            "cd" | "pushd" => {
                env.cwd = match args.iter().find(|a| a.single() != Some("-P") && a.single() != Some("-L")) {
                    None => Some("/root".into()),
                    Some(a) => match a.single() {
                        Some("") => env.cwd.clone(),
                        Some("-") => None,
                        Some(dir) => env.absolute(dir),
                        None => None,
                    },
                };
            }
            "popd" => env.cwd = None,
            "export" | "readonly" | "local" | "declare" | "typeset" => {
                for w in args {
                    if let Some((n, v)) = w.single().and_then(|t| t.split_once('=')) {
                        env.vars.insert(n.to_string(), Value::Known(vec![v.to_string()]));
                    } else if w.opaque {
                        // `export X=$(…)`: the name is the literal before `=`.
                        if let Some((n, _)) = w.texts.first().and_then(|t| t.split_once('=')) {
                            env.vars.insert(n.to_string(), Value::Unknown);
                        }
                    }
                }
            }
            "unset" => args.iter().filter_map(Expanded::single).for_each(|n| {
                env.vars.remove(n);
            }),
            "read" | "mapfile" | "readarray" | "getopts" => {
                for n in args.iter().filter_map(Expanded::single).filter(|n| !n.starts_with('-')) {
                    env.vars.insert(n.to_string(), Value::Unknown);
                }
            }
            "for" | "select" => {
                // `for NAME in WORDS`: NAME takes each of them.
                if let (Some(var), Some("in")) =
                    (args.first().and_then(Expanded::single), args.get(1).and_then(Expanded::single))
                {
                    let values = &args[2..];
                    let v = if values.iter().any(|w| w.opaque) {
                        Value::Unknown
                    } else {
                        Value::Known(
                            values.iter().flat_map(|w| w.texts.clone()).take(MAX_CANDIDATES).collect(),
                        )
                    };
                    env.vars.insert(var.to_string(), v);
                }
            }
            "eval" => {
                if args.iter().any(Expanded::hidden) {
                    self.opaque("eval runs text computed when the command runs");
                } else {
                    let text: Vec<&str> =
                        args.iter().filter_map(|a| a.texts.first().map(String::as_str)).collect();
                    self.nested(&text.join(" "), local);
                }
            }
            "source" | "." => {
                if let Some(file) = args.first().filter(|f| f.hidden()) {
                    self.hidden_script(file, "source reads commands from another command's output");
                }
            }
            n if SHELLS.contains(&n) || INTERPRETERS.contains(&n) => self.interpreter(n, args, local, input),
            n => {
                rules::check(self, n, path, args, local);
                return DOWNLOADERS.contains(&n);
            }
        }
        false
    }

    /// A shell or interpreter: scans its `-c` script; flags code it would read from a pipe,
    /// a here-string, or a substitution.
    fn interpreter(&mut self, name: &str, args: &[Expanded], local: &Env, input: &Input) {
        let is_shell = SHELLS.contains(&name);
        match wrappers::code_source(is_shell, args) {
            wrappers::Code::Inline(i) if is_shell => match args.get(i) {
                Some(script) if script.hidden() => {
                    self.hidden_script(script, "the shell's script is the output of another command")
                }
                Some(script) => {
                    for text in script.texts.clone() {
                        self.shell_script(&text, local);
                    }
                }
                None => {}
            },
            // An interpreter's own language is not scanned (see the module comment).
            wrappers::Code::Inline(_) => {}
            wrappers::Code::File(i) => {
                if let Some(file) = args.get(i).filter(|f| f.hidden()) {
                    self.hidden_script(file, "the script is another command's output");
                }
            }
            wrappers::Code::Stdin => {
                if let Some(here) = &input.here {
                    match (is_shell, here.hidden()) {
                        (_, true) => {
                            self.hidden_script(here, "the code it reads is another command's output")
                        }
                        (true, false) => {
                            for text in here.texts.clone() {
                                self.shell_script(&text, local);
                            }
                        }
                        (false, false) => {}
                    }
                } else if input.download_upstream {
                    self.danger(
                        "download-pipe-shell",
                        "downloaded text is piped into a shell or interpreter",
                    );
                } else if input.piped {
                    self.opaque("text (possibly decoded) is piped into a shell or interpreter");
                }
            }
        }
    }

    /// A script given as another command's output: a download if that command downloads.
    fn hidden_script(&mut self, from: &Expanded, what: &str) {
        let downloads = from.substs.iter().any(|s| wrappers::downloads(s, MAX_DEPTH));
        if downloads {
            self.danger("download-pipe-shell", "a downloaded script is run");
        } else {
            self.opaque(what);
        }
    }

    /// A script run by a new shell: it inherits exported variables only; the scan keeps all.
    fn shell_script(&mut self, text: &str, env: &Env) {
        self.nested(text, env);
    }
}

//! The dangerous-command scan for exec resources. It reads shell text roughly as a shell
//! would (quotes removed, commands split at ; & | && || newlines and substitutions) and flags
//! a few well-known host-destroying shapes. It is a seat belt against mistakes, not a sandbox:
//! a determined author can always hide a command from a text scan.

/// One simple command: its words (quotes removed) and where its output goes.
#[derive(Default, Debug)]
struct Simple {
    words: Vec<String>,
    redirects: Vec<String>,
    /// Fed by the previous command through a pipe `|`.
    piped: bool,
    /// Started by `$(`, `<(` or a backquote: substituted into another command.
    substituted: bool,
}

fn split(text: &str) -> Vec<Simple> {
    let mut cmds = vec![Simple::default()];
    let mut word = String::new();
    let mut in_word = false;
    let mut redirect_next = false;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    let finish_word = |cmds: &mut Vec<Simple>, word: &mut String, in_word: &mut bool, redir: &mut bool| {
        if *in_word {
            let cmd = cmds.last_mut().expect("one command");
            if *redir {
                cmd.redirects.push(std::mem::take(word));
                *redir = false;
            } else {
                cmd.words.push(std::mem::take(word));
            }
            *in_word = false;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if c == '\\' && q == '"' && i + 1 < chars.len() {
                i += 1;
                word.push(chars[i]);
            } else {
                word.push(c);
            }
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        match c {
            '\'' | '"' => {
                quote = Some(c);
                in_word = true;
            }
            '\\' => {
                if let Some(n) = next {
                    word.push(n);
                    in_word = true;
                    i += 1;
                }
            }
            ' ' | '\t' => finish_word(&mut cmds, &mut word, &mut in_word, &mut redirect_next),
            '>' => {
                finish_word(&mut cmds, &mut word, &mut in_word, &mut redirect_next);
                if next == Some('>') || next == Some('|') {
                    i += 1;
                }
                if next == Some('&') {
                    i += 1; // `>&2`: a descriptor, not a file
                } else if next == Some('(') {
                    // `>(cmd)` process substitution
                } else {
                    redirect_next = true;
                }
            }
            ';' | '&' | '|' | '\n' | '(' | ')' | '`' | '{' | '}' | '<' => {
                let subst = (c == '(' && (word.ends_with('$') || word.ends_with('<'))) || c == '`';
                let is_input_redirect = c == '<' && next != Some('(');
                if subst && c == '(' {
                    word.pop();
                    in_word = !word.is_empty();
                }
                finish_word(&mut cmds, &mut word, &mut in_word, &mut redirect_next);
                if is_input_redirect {
                    i += 1;
                    continue;
                }
                let piped = c == '|' && next != Some('|');
                if matches!((c, next), ('&', Some('&')) | ('|', Some('|'))) {
                    i += 1;
                }
                if c == '<' {
                    i += 1; // `<(`
                }
                cmds.push(Simple { piped, substituted: subst || c == '<', ..Default::default() });
            }
            '$' if next == Some('(') => {
                word.push('$');
                in_word = true;
            }
            '$' if next == Some('{') => {
                // `${VAR}`: keep it in the word up to the closing brace
                while i < chars.len() {
                    word.push(chars[i]);
                    if chars[i] == '}' {
                        break;
                    }
                    i += 1;
                }
                in_word = true;
            }
            _ => {
                word.push(c);
                in_word = true;
            }
        }
        i += 1;
    }
    finish_word(&mut cmds, &mut word, &mut in_word, &mut redirect_next);
    cmds
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

fn base(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Skips wrappers (`sudo`, `env X=1`, `nice -n 5`, `timeout 10`, ...) to the real command.
fn real_command(words: &[String]) -> &[String] {
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        let b = base(w);
        if is_assignment(w)
            || matches!(w, "!" | "if" | "then" | "do" | "else" | "elif" | "while" | "until" | "time")
        {
            i += 1;
            continue;
        }
        let takes_arg: &[&str] = match b {
            "sudo" | "doas" => &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"],
            "env" | "nohup" | "command" | "exec" | "builtin" | "xargs" | "stdbuf" | "busybox" => &[],
            "nice" | "ionice" => &["-n", "-c"],
            "timeout" => &["-s", "-k"],
            "chroot" => &[],
            _ => return &words[i..],
        };
        i += 1;
        while i < words.len() {
            let w = words[i].as_str();
            if takes_arg.contains(&w) {
                i += 2;
            } else if w.starts_with('-') || (b == "env" && is_assignment(w)) {
                i += 1;
            } else {
                break;
            }
        }
        if matches!(b, "timeout" | "chroot") {
            i += 1; // the duration / the new root
        }
    }
    &[]
}

/// Top-level directories whose recursive removal wrecks a host as surely as `/`'s.
const SYSTEM_DIRS: &[&str] = &[
    "bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "opt", "proc", "root", "sbin", "srv",
    "sys", "usr", "var",
];

/// `/`, `//`, `/*`, `/.`, a top-level system directory (`/etc`, `/usr/`, `//var/*`), and
/// `$VAR/`, `${VAR}/*` (an empty variable makes them `/`).
fn is_root_target(word: &str) -> bool {
    let w = word.trim_end_matches(['*', '.']).trim_end_matches('/');
    if word.starts_with('/') && w.chars().all(|c| c == '/') {
        return true;
    }
    if word.starts_with('/') && SYSTEM_DIRS.contains(&w.trim_start_matches('/')) {
        return true;
    }
    let Some(var) = word.strip_prefix('$') else { return false };
    let var = var.strip_prefix('{').map(|v| v.replacen('}', "", 1)).unwrap_or_else(|| var.to_string());
    let name_len = var.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').count();
    name_len > 0 && {
        let rest = &var[name_len..];
        rest.starts_with('/') && rest.trim_start_matches('/').trim_start_matches('*').is_empty()
    }
}

fn has_recursive_flag(args: &[String]) -> bool {
    args.iter().any(|a| {
        a == "--recursive"
            || (a.starts_with('-') && !a.starts_with("--") && a.chars().any(|c| c == 'r' || c == 'R'))
    })
}

fn is_safe_device(path: &str) -> bool {
    let Some(dev) = path.strip_prefix("/dev/") else { return true };
    matches!(
        dev,
        "null" | "zero" | "full" | "random" | "urandom" | "stdout" | "stderr" | "stdin" | "tty" | "console"
    ) || dev.starts_with("fd/")
        || dev.starts_with("shm/")
        || dev.starts_with("pts/")
}

const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "ash", "mksh"];
const DOWNLOADERS: &[&str] = &["curl", "wget", "fetch"];

fn fork_bomb(text: &str) -> bool {
    let s: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut from = 0;
    while let Some(pos) = s[from..].find("(){") {
        let at = from + pos;
        let name: String = s[..at]
            .chars()
            .rev()
            .take_while(|c| !";&|(){}".contains(*c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let name = name.strip_prefix("function").unwrap_or(&name);
        if !name.is_empty() && s[at..].contains(&format!("{name}|{name}&")) {
            return true;
        }
        from = at + 3;
    }
    false
}

/// The rule a command breaks, if any (names as in guardrails: `dangerous-command:<rule>`).
pub(crate) fn scan(text: &str) -> Option<&'static str> {
    scan_depth(text, 0)
}

fn scan_depth(text: &str, depth: u8) -> Option<&'static str> {
    if fork_bomb(text) {
        return Some("fork-bomb");
    }
    let cmds = split(text);
    let mut download_in_pipeline = false;
    let mut prev_shell = false;
    for cmd in &cmds {
        if cmd.redirects.iter().any(|r| !is_safe_device(r)) {
            return Some("redirect-to-device");
        }
        let words = real_command(&cmd.words);
        let Some(first) = words.first() else { continue };
        let name = base(first);
        let args = &words[1..];
        if !cmd.piped {
            download_in_pipeline = false;
        }
        let is_shell = SHELLS.contains(&name);
        let is_download = DOWNLOADERS.contains(&name);
        if is_shell && cmd.piped && download_in_pipeline {
            return Some("download-pipe-shell");
        }
        if is_download && cmd.substituted && prev_shell {
            return Some("download-pipe-shell");
        }
        download_in_pipeline |= is_download;
        prev_shell = is_shell;
        let recursive_on_root = || has_recursive_flag(args) && args.iter().any(|a| is_root_target(a));
        match name {
            "rm" if args.iter().any(|a| a == "--no-preserve-root") || recursive_on_root() => {
                return Some("rm-rf-root")
            }
            n if n.starts_with("mkfs") || n == "mke2fs" => return Some("mkfs"),
            "dd" if args.iter().any(|a| a.strip_prefix("of=").is_some_and(|p| !is_safe_device(p))) => {
                return Some("dd-to-device")
            }
            "chmod" | "chown" | "chgrp" if recursive_on_root() => return Some("chmod-recursive-root"),
            "find" if args.iter().any(|a| a == "-delete") && args.iter().any(|a| is_root_target(a)) => {
                return Some("rm-rf-root")
            }
            n if SHELLS.contains(&n) && depth < 4 => {
                if let Some(pos) = args.iter().position(|a| a == "-c") {
                    if let Some(script) = args.get(pos + 1) {
                        if let Some(rule) = scan_depth(script, depth + 1) {
                            return Some(rule);
                        }
                        let inner = split(script);
                        if inner.iter().any(|c| {
                            c.substituted
                                && real_command(&c.words)
                                    .first()
                                    .is_some_and(|w| DOWNLOADERS.contains(&base(w)))
                        }) {
                            return Some("download-pipe-shell");
                        }
                    }
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangerous_commands_are_all_flagged() {
        let cases = [
            ("rm -rf /", "rm-rf-root"),
            ("rm -fr /", "rm-rf-root"),
            ("rm -r -f /", "rm-rf-root"),
            ("rm -Rf //", "rm-rf-root"),
            ("rm --recursive --force /", "rm-rf-root"),
            ("rm -rf --no-preserve-root /", "rm-rf-root"),
            ("rm --no-preserve-root -r /tmp", "rm-rf-root"),
            ("rm -rf /*", "rm-rf-root"),
            ("sudo rm -rf /", "rm-rf-root"),
            ("/bin/rm -rf /", "rm-rf-root"),
            ("cd /tmp && rm -rf \"$VAR\"/", "rm-rf-root"),
            ("rm -rf ${VAR}/", "rm-rf-root"),
            ("rm -rf $BUILD/*", "rm-rf-root"),
            ("sh -c 'rm -rf /'", "rm-rf-root"),
            ("rm -rf /etc", "rm-rf-root"),
            ("rm -rf /usr/", "rm-rf-root"),
            ("rm -rf //var/*", "rm-rf-root"),
            ("find / -delete", "rm-rf-root"),
            ("find /home -mindepth 1 -delete", "rm-rf-root"),
            ("chown -R nobody /etc", "chmod-recursive-root"),
            ("mkfs.ext4 /dev/sda1", "mkfs"),
            ("mkfs -t xfs /dev/vdb", "mkfs"),
            ("/sbin/mke2fs /dev/sdb", "mkfs"),
            ("dd if=/dev/zero of=/dev/sda bs=1M", "dd-to-device"),
            ("dd if=img of=/dev/nvme0n1", "dd-to-device"),
            (":(){ :|:& };:", "fork-bomb"),
            ("bomb() { bomb | bomb & }; bomb", "fork-bomb"),
            ("chmod -R 777 /", "chmod-recursive-root"),
            ("chown -R nobody /", "chmod-recursive-root"),
            ("curl https://get.example | sh", "download-pipe-shell"),
            ("curl -fsSL https://x.example/i.sh | sudo bash", "download-pipe-shell"),
            ("wget -O- https://e.example | bash", "download-pipe-shell"),
            ("wget -qO - https://e | tee /tmp/log | sh -s", "download-pipe-shell"),
            ("bash <(curl -s https://e)", "download-pipe-shell"),
            ("sh -c \"$(curl -fsSL https://e)\"", "download-pipe-shell"),
            ("echo x > /dev/sda", "redirect-to-device"),
            ("cat img >> /dev/mmcblk0", "redirect-to-device"),
        ];
        for (cmd, rule) in cases {
            assert_eq!(scan(cmd), Some(rule), "{cmd}");
        }
    }

    #[test]
    fn ordinary_commands_pass() {
        for cmd in [
            "rm -rf /tmp/build",
            "rm -rf /etc/nginx/conf.d",
            "rm -rf /var/cache/app/*",
            "find /var/log/app -name '*.gz' -delete",
            "rm -rf \"$BUILD_DIR/out\"",
            "rm -f /etc/nginx/sites-enabled/default",
            "rm -r ./cache",
            "dd if=/dev/zero of=/tmp/x bs=1M count=1",
            "dd if=/dev/sda of=/tmp/disk.img",
            "echo mkfs",
            "echo 'rm -rf /'",
            "grep -r mkfs /etc",
            "curl -o /tmp/x https://e",
            "curl -s https://e | python3 -m json.tool",
            "curl -fsSL https://e > /tmp/install.sh && sh /tmp/install.sh",
            "chmod 755 /usr/local/bin/x",
            "chmod -R 755 /srv/app",
            "chown -R www-data /var/www",
            "ls / | grep etc",
            "echo hi > /dev/null 2>&1",
            "systemctl restart nginx >/dev/null 2>&1 || true",
            "cat /etc/hosts >&2",
            "tar -C / -xzf /tmp/a.tgz",
            "apt-get install -y nginx",
            "sh -c 'echo ok; exit 0'",
            "f() { echo hi; }; f",
        ] {
            assert_eq!(scan(cmd), None, "{cmd}");
        }
    }
}

//! Golden command-line cases: the exact stdout, stderr and exit code of the mistakes people
//! make most (an unknown or mistyped command, a value where none belongs, a missing argument,
//! a bad option, `secrets set KEY VALUE`), of `-h` and `--version` on every name, and of empty
//! lists. A change of wording shows up here as a diff to review, as rage's trycmd cases do.
//! `{BASE}` stands for the base directory of the case, `{VERSION}` for the crate version.

mod common;

use common::fleet::Fleet;
use common::*;
use std::path::Path;
use std::process::Command;

struct Case {
    role: &'static str,
    args: &'static [&'static str],
    code: i32,
    stdout: &'static str,
    stderr: &'static str,
}

const fn case(
    role: &'static str,
    args: &'static [&'static str],
    code: i32,
    stdout: &'static str,
    stderr: &'static str,
) -> Case {
    Case { role, args, code, stdout, stderr }
}

fn expand(text: &str, base: &Path) -> String {
    text.replace("{BASE}", &base.display().to_string()).replace("{VERSION}", env!("CARGO_PKG_VERSION"))
}

/// Runs `role args` (a role name, or `vigo` for the bare binary) with `VIGO_BASE_DIR=base`.
fn run_case(c: &Case, base: &Path, env: &[(&str, &str)]) -> Vec<String> {
    let exe = if c.role == "vigo" { vigo_exe() } else { role(c.role) };
    let out = Command::new(exe)
        .args(c.args)
        .env("VIGO_BASE_DIR", base)
        .env_remove("VIGO_SERVER")
        .env_remove("VIGO_LOG")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let mut problems = Vec::new();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let label = format!("{} {}", c.role, c.args.join(" "));
    if out.status.code() != Some(c.code) {
        problems.push(format!("{label}: exit {:?}, expected {}", out.status.code(), c.code));
    }
    for (what, got, want) in
        [("stdout", &stdout, expand(c.stdout, base)), ("stderr", &stderr, expand(c.stderr, base))]
    {
        if **got != want {
            problems.push(format!("{label}: {what} differs\n--- expected\n{want}--- got\n{got}---"));
        }
    }
    problems
}

#[track_caller]
fn check(cases: &[Case], base: &Path, env: &[(&str, &str)]) {
    let problems: Vec<String> = cases.iter().flat_map(|c| run_case(c, base, env)).collect();
    assert!(problems.is_empty(), "{} golden case(s) differ:\n\n{}", problems.len(), problems.join("\n\n"));
}

const SET_ADVICE: &str = "\
error: `vigocli secrets set` takes the kind of value first, then the key; the value itself never goes on the command line:
  vigocli secrets set raw KEY                   asks for the value at a hidden prompt
  COMMAND | vigocli secrets set raw KEY         reads it from a pipe
  vigocli secrets set raw KEY --from-file FILE  reads it from a file
  vigocli secrets set password KEY              a password typed twice (12+ characters: upper, lower, digit, special)
Run `vigocli secrets set raw --help` for details.
";

#[rustfmt::skip]
const MISTAKES: &[Case] = &[
    case("vigocli", &["frobnicate"], 2, "", concat!(
        "error: unknown command \"frobnicate\" for `vigocli`\n",
        "commands: audit, secrets, tokens, envoys, fleet, runs, task, api-tokens, config, tls, webusers, sessions, auth, doctor, advisories, release, db, backup\n",
        "Run `vigocli --help` for what each one does.\n")),
    case("vigocli", &["secrets", "lsit"], 2, "", concat!(
        "error: unknown command \"lsit\" for `vigocli secrets`; did you mean `list`?\n",
        "commands: init, generate-certs, unlock, lock, rotate, reset, set, reveal, delete, list, notify\n",
        "Run `vigocli secrets --help` for what each one does.\n")),
    case("vigocli", &["secrets", "unlokc"], 2, "", concat!(
        "error: unknown command \"unlokc\" for `vigocli secrets`; did you mean `unlock`?\n",
        "commands: init, generate-certs, unlock, lock, rotate, reset, set, reveal, delete, list, notify\n",
        "Run `vigocli secrets --help` for what each one does.\n")),
    case("vigocli", &["envoy", "list"], 2, "", concat!(
        "error: unknown command \"envoy\" for `vigocli`; did you mean `envoys`?\n",
        "commands: audit, secrets, tokens, envoys, fleet, runs, task, api-tokens, config, tls, webusers, sessions, auth, doctor, advisories, release, db, backup\n",
        "Run `vigocli --help` for what each one does.\n")),
    case("vigo-agent", &["update"], 2, "", concat!(
        "error: unknown command \"update\" for `vigo-agent`\n",
        "commands: enroll, run, resolve, apply, set-server, doctor, restore, traits, status\n",
        "Run `vigo-agent --help` for what each one does.\n")),
    case("vigo", &["cli", "frobnicate"], 2, "", concat!(
        "error: unknown command \"frobnicate\" for `vigo cli`\n",
        "commands: audit, secrets, tokens, envoys, fleet, runs, task, api-tokens, config, tls, webusers, sessions, auth, doctor, advisories, release, db, backup\n",
        "Run `vigo cli --help` for what each one does.\n")),
    // A word that does not look like a command name may be a value: it is not repeated.
    case("vigocli", &["Hunter2-golden!"], 2, "", concat!(
        "error: unknown command for `vigocli` (not repeated here: it does not look like a command name)\n",
        "commands: audit, secrets, tokens, envoys, fleet, runs, task, api-tokens, config, tls, webusers, sessions, auth, doctor, advisories, release, db, backup\n",
        "Run `vigocli --help` for what each one does.\n")),
    case("vigocli", &["secrets", "set", "raw", "app/key", "Hunter2-golden"], 2, "", concat!(
        "error: one value too many for `vigocli secrets set raw` (not repeated here, in case it is a secret; ",
        "secret values are read from a prompt, a pipe or --from-file, never the command line)\n",
        "Run `vigocli secrets set raw --help` for usage.\n")),
    case("vigocli", &["secrets", "list", "Hunter2-golden"], 2, "", concat!(
        "error: one value too many for `vigocli secrets list` (not repeated here, in case it is a secret; ",
        "secret values are read from a prompt, a pipe or --from-file, never the command line)\n",
        "Run `vigocli secrets list --help` for usage.\n")),
    case("vigocli", &["secrets", "set", "app/key", "Hunter2-golden"], 2, "", SET_ADVICE),
    case("vigocli", &["secrets", "set"], 2, "", SET_ADVICE),
    case("vigocli", &["secrets", "set", "--from-file", "value.txt", "app/key"], 2, "", SET_ADVICE),
    case("vigocli", &[], 2, "", concat!(
        "error: `vigocli` needs a command\n",
        "commands: audit, secrets, tokens, envoys, fleet, runs, task, api-tokens, config, tls, webusers, sessions, auth, doctor, advisories, release, db, backup\n",
        "Run `vigocli --help` for what each one does.\n")),
    case("vigocli", &["secrets"], 2, "", concat!(
        "error: `vigocli secrets` needs a command\n",
        "commands: init, generate-certs, unlock, lock, rotate, reset, set, reveal, delete, list, notify\n",
        "Run `vigocli secrets --help` for what each one does.\n")),
    case("vigocli", &["secrets", "set", "raw"], 2, "",
        "error: missing argument: key\nRun `vigocli secrets set raw --help` for usage.\n"),
    case("vigo-agent", &["enroll"], 2, "",
        "error: missing option: --server, --token-file\nRun `vigo-agent enroll --help` for usage.\n"),
    case("vigocli", &["tokens", "create", "--envoy"], 2, "",
        "error: no value provided for option '--envoy'.\nRun `vigocli tokens create --help` for usage.\n"),
    case("vigocli", &["secrets", "list", "--frce"], 2, "",
        "error: unknown option --frce for `vigocli secrets list`\nRun `vigocli secrets list --help` for usage.\n"),
    case("vigocli", &["secrets", "delete", "app/key", "--frce"], 2, "", concat!(
        "error: unknown option --frce for `vigocli secrets delete`; did you mean --force?\n",
        "Run `vigocli secrets delete --help` for usage.\n")),
    // An unknown option is named without its value.
    case("vigocli", &["secrets", "set", "raw", "app/key", "--value=Hunter2-golden"], 2, "",
        "error: unknown option --value for `vigocli secrets set raw`\nRun `vigocli secrets set raw --help` for usage.\n"),
    case("vigocli", &["runs", "list", "-o", "yaml"], 2, "", concat!(
        "error: error parsing option '-o' with value 'yaml': use table or json\n",
        "Run `vigocli runs list --help` for usage.\n")),
    case("vigosrv", &["--listen"], 2, "",
        "error: no value provided for option '--listen'.\nRun `vigosrv --help` for usage.\n"),
];

const ROLES_HELP: &str = "\
vigo — configuration management that keeps secrets out of configs, wires, disks and logs

Usage: vigo <role> [args...]   (or run it as vigosrv, vigocli or vigo-agent)

Roles:
  server       the Vigo server (also installed as `vigosrv`)
  cli          the operator command line (also installed as `vigocli`)
  agent        the agent on every managed host (also installed as `vigo-agent`)
  quickstart   run a whole demo (vault, server, agent) on 127.0.0.1 in a temp dir

Options:
  --version    print the version
  -h, --help   print this help

Run `vigo <role> --help` for the options of a role.
";

#[test]
fn a_mistyped_role_is_named_with_the_nearest_one() {
    let base = TempDir::new("golden-roles");
    let unknown = format!("error: unknown role \"clii\"; did you mean `cli`?\n\n{ROLES_HELP}");
    let cases = [
        Case { role: "vigo", args: &["clii"], code: 2, stdout: "", stderr: unknown.leak() },
        case("vigo", &["-h"], 0, ROLES_HELP, ""),
    ];
    check(&cases, base.path(), &[]);
}

#[test]
fn common_mistakes_are_named_with_what_to_do() {
    let base = TempDir::new("golden-mistakes");
    check(MISTAKES, base.path(), &[]);
    // The value typed by mistake never shows, whatever the case.
    for c in MISTAKES {
        assert!(!c.stderr.contains("Hunter2") && !c.stdout.contains("Hunter2"), "{:?}", c.args);
    }
}

const SECRETS_LIST_HELP: &str = "\
Usage: vigocli secrets list [-o <output>]

List stored keys, sorted (never values).

Options:
  -o, --output      output format: table (default; one key per line, no header)
                    or json
  -h, --help, help  display usage information
";

#[rustfmt::skip]
const HELP: &[Case] = &[
    case("vigocli", &["secrets", "list", "-h"], 0, SECRETS_LIST_HELP, ""),
    case("vigocli", &["secrets", "list", "--help"], 0, SECRETS_LIST_HELP, ""),
    case("vigocli", &["secrets", "list", "help"], 0, SECRETS_LIST_HELP, ""),
    case("vigocli", &["--version"], 0, "vigo {VERSION}\n", ""),
    case("vigosrv", &["--version"], 0, "vigo {VERSION}\n", ""),
    case("vigo-agent", &["--version"], 0, "vigo {VERSION}\n", ""),
    case("vigo", &["--version"], 0, "vigo {VERSION}\n", ""),
    case("vigo", &["cli", "--version"], 0, "vigo {VERSION}\n", ""),
    case("vigo", &["server", "--version"], 0, "vigo {VERSION}\n", ""),
    case("vigo", &["agent", "--version"], 0, "vigo {VERSION}\n", ""),
    // `--version` belongs to the role, not to its commands (as with git).
    case("vigocli", &["secrets", "--version"], 2, "",
        "error: unknown option --version for `vigocli secrets`\nRun `vigocli secrets --help` for usage.\n"),
];

#[test]
fn dash_h_and_version_work_on_every_name() {
    let base = TempDir::new("golden-help");
    check(HELP, base.path(), &[]);
    // Every role's help starts with its usage, and names the environment it reads.
    for (name, args) in
        [("vigosrv", &["-h"][..]), ("vigocli", &["-h"]), ("vigo-agent", &["-h"]), ("vigo", &["-h"])]
    {
        let exe = if name == "vigo" { vigo_exe() } else { role(name) };
        let out = Command::new(exe).args(args).output().unwrap();
        assert_code(&out, 0);
        let t = String::from_utf8_lossy(&out.stdout);
        assert!(t.starts_with("Usage:") || t.contains("\nUsage:"), "{name} -h:\n{t}");
        if name != "vigo" {
            assert!(t.contains("VIGO_BASE_DIR") && t.contains("VIGO_LOG"), "{name} -h:\n{t}");
        }
    }
}

/// Refusals that used to exit with the wrong code or print twice.
#[test]
fn refusals_and_start_errors_are_printed_once_with_the_right_code() {
    let base = TempDir::new("golden-refusals");
    let b = base.path();
    assert_code(&run_in(b, "vigocli", &["secrets", "generate-certs"], ""), 0);
    let cases = [
        case(
            "vigocli",
            &["secrets", "generate-certs"],
            3,
            "",
            concat!(
                "error: {BASE}/tls/ca already exists; pass --force to replace the certificates ",
                "(agents must then re-enroll)\n"
            ),
        ),
        // No master key: the server names it once (it used to log it and print it again).
        case(
            "vigosrv",
            &["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"],
            1,
            "",
            concat!(
            "error: master key {BASE}/secrets/.master.key does not exist; run `vigocli secrets init` first, ",
            "or point --base-dir at the installation that has one\n"),
        ),
    ];
    check(&cases, b, &[]);
}

#[test]
fn empty_lists_say_so_on_stderr_and_json_is_an_empty_array() {
    let mut f = Fleet::new("golden-empty");
    let cases = [
        case("vigocli", &["secrets", "list"], 0, "", "no secrets in {BASE}/secrets\n"),
        case("vigocli", &["secrets", "list", "-o", "json"], 0, "[]\n", ""),
    ];
    check(&cases, &f.base(), &[]);
    f.start_server();
    let server = format!("https://{}", f.api_addr);
    let cases = [
        case(
            "vigocli",
            &["tokens", "list"],
            0,
            "",
            "no enrollment tokens (`vigocli tokens create` makes one)\n",
        ),
        case("vigocli", &["envoys", "list"], 0, "", "no envoys enrolled\n"),
        case("vigocli", &["runs", "list"], 0, "", "no runs reported\n"),
        case("vigocli", &["runs", "list", "--envoy", "web1"], 0, "", "no runs reported by web1\n"),
        case(
            "vigocli",
            &["api-tokens", "list"],
            0,
            "",
            "no API tokens (`vigocli api-tokens create` makes one)\n",
        ),
        case("vigocli", &["tokens", "list", "-o", "json"], 0, "[]\n", ""),
        case("vigocli", &["envoys", "list", "-o", "json"], 0, "[]\n", ""),
        case("vigocli", &["runs", "list", "-o", "json"], 0, "[]\n", ""),
        case("vigocli", &["api-tokens", "list", "-o", "json"], 0, "[]\n", ""),
    ];
    check(&cases, &f.base(), &[("VIGO_SERVER", server.as_str())]);
    f.stop_server();
}

/// Every `VIGO_*` variable the code reads is in the table of docs/OPERATIONS.md (they used to
/// be described only in source comments).
#[test]
fn every_environment_variable_the_code_reads_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/OPERATIONS.md")).unwrap();
    let section = docs.split("## Environment variables").nth(1).expect("an Environment variables section");
    let section = section.split("\n## ").next().unwrap();
    let mut missing = Vec::new();
    for file in
        files_under(&root.join("src")).into_iter().filter(|p| p.extension().is_some_and(|e| e == "rs"))
    {
        let text = std::fs::read_to_string(&file).unwrap();
        // Test modules name variables of their own (child processes, leak canaries).
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        if file.components().any(|c| c.as_os_str() == "tests") {
            continue;
        }
        for piece in code.split("\"VIGO_").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
            let closed = piece[name.len()..].starts_with('"');
            if closed && !name.starts_with("SECRET__") && !section.contains(&format!("`VIGO_{name}`")) {
                missing.push(format!("VIGO_{name} ({})", file.display()));
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/OPERATIONS.md, Environment variables: {missing:?}");
}

//! `vigo package-docs DIR`: writes the man pages and shell completions the distro packages ship
//! (packaging/build.sh runs it against the binary it packages). Everything comes from the
//! binary's own command tree (argh's `ArgsInfo`, the same text `--help` prints) and, for
//! vigo.vgo(5), from docs/CONFIG.md compiled in, so the pages cannot drift from the code.
//! Hidden: not listed in `vigo --help`; it reads nothing and writes only under DIR.

mod complete;
mod roff;

use std::path::Path;
use std::process::ExitCode;

use argh::{ArgsInfo, CommandInfoWithArgs, FlagInfoKind, Optionality};

use crate::exit::EXIT_USAGE;

/// A role as installed: its page name, section, and the `vigo` words that reach it.
pub(crate) struct Role {
    pub name: &'static str,
    pub section: u8,
    pub words: &'static str,
    pub info: CommandInfoWithArgs,
}

pub(crate) fn roles() -> Vec<Role> {
    vec![
        Role {
            name: "vigosrv",
            section: 8,
            words: "vigo server",
            info: crate::server::ServerArgs::get_args_info(),
        },
        Role { name: "vigocli", section: 1, words: "vigo cli", info: crate::cli::CliArgs::get_args_info() },
        Role {
            name: "vigo-agent",
            section: 8,
            words: "vigo agent",
            info: crate::agent::AgentArgs::get_args_info(),
        },
    ]
}

pub fn main(args: &[&str]) -> ExitCode {
    let [dir] = args else {
        eprintln!("usage: vigo package-docs DIR   (writes DIR/man and DIR/completions)");
        return ExitCode::from(EXIT_USAGE);
    };
    match write_all(Path::new(dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: vigo package-docs: {e}");
            ExitCode::from(crate::exit::EXIT_FAILED)
        }
    }
}

fn write_all(dir: &Path) -> std::io::Result<()> {
    let man = dir.join("man");
    let comp = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    let version = crate::release::version();
    let roles = roles();
    std::fs::write(man.join("vigo.1"), roff::vigo_page(version, &roles))?;
    for r in &roles {
        std::fs::write(man.join(format!("{}.{}", r.name, r.section)), roff::role_page(version, r))?;
    }
    std::fs::write(man.join("vigo.vgo.5"), roff::vgo_page(version))?;
    let tree = complete::tree(&roles);
    std::fs::write(comp.join("vigo.bash"), complete::bash(&tree))?;
    std::fs::write(comp.join("_vigo"), complete::zsh(&tree))?;
    std::fs::write(comp.join("vigo.fish"), complete::fish(&tree))?;
    Ok(())
}

/// `--name VALUE` / `-n, --name VALUE` / `--switch`, as a synopsis shows it.
pub(crate) fn flag_label(f: &argh::FlagInfo) -> String {
    let long = f.long;
    let base = match f.short {
        Some(c) => format!("-{c}, {long}"),
        None => long.to_string(),
    };
    match f.kind {
        FlagInfoKind::Option { arg_name } => format!("{base} {}", arg_name.to_uppercase()),
        FlagInfoKind::Switch => base,
    }
}

pub(crate) fn positional_label(p: &argh::PositionalInfo) -> String {
    let n = p.name.to_uppercase();
    match p.optionality {
        Optionality::Required => n,
        Optionality::Optional => format!("[{n}]"),
        Optionality::Repeating | Optionality::Greedy => format!("[{n}...]"),
    }
}

/// Flags a page or completion lists: not the hidden ones, not `--help` (every command has it).
pub(crate) fn shown_flags(info: &CommandInfoWithArgs) -> impl Iterator<Item = &argh::FlagInfo<'static>> {
    info.flags.iter().filter(|f| !f.hidden && f.long != "--help")
}

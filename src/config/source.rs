//! Reading a config tree from disk, and nothing else: `nodes.vgo` and `modules/*.vgo`, each a
//! regular file inside the tree. Every symlink inside the tree is refused (the tree's own
//! directory may be a link: an operator names it, not the tree's content), so no file outside
//! the tree is ever opened; a FIFO, socket or device is refused before it is opened and again
//! after, so nothing can block a load; sizes and counts are bounded, and so is the time spent.
//!
//! Files are opened relative to a descriptor of their directory with `O_NOFOLLOW|O_NONBLOCK`
//! and checked with `fstat`, so swapping a file for a link between the check and the open does
//! not work either.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};

use super::ConfigError;
use crate::util::text::excerpt;

/// How much a load may read and how long it may take, and how much compiling the loaded tree
/// may produce. `Default` is what the server, the CLI and the agent use; tests shrink it.
#[derive(Debug, Clone)]
pub struct Limits {
    /// One file's size (the YAML reader refuses more anyway).
    pub max_file_bytes: u64,
    /// `.vgo` files in `modules/`.
    pub max_modules: usize,
    /// Entries of any kind in `modules/` that are looked at (editor backups and such included).
    pub max_dir_entries: usize,
    /// All files together.
    pub max_tree_bytes: u64,
    /// Wall-clock time for the whole load, checked between files and between error lookups,
    /// and again for validating the loaded tree (`validate_all`), checked between entries.
    pub max_duration: Duration,
    /// Bytes of YAML re-parsed to find the line and column of errors (see report.rs).
    pub max_locate_bytes: usize,
    /// Attribute text one compiled bundle may hold once templates are rendered.
    pub max_bundle_text: usize,
    /// Validating a tree compiles every `envoys:` entry on its own: the resources compiled and
    /// the text rendered across all of them are bounded too.
    pub max_validate_resources: usize,
    pub max_validate_text: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: super::yaml::MAX_FILE_BYTES as u64,
            max_modules: 1000,
            max_dir_entries: 10_000,
            max_tree_bytes: 16 << 20,
            max_duration: Duration::from_secs(60),
            max_locate_bytes: 16 << 20,
            max_bundle_text: 64 << 20,
            max_validate_resources: 2_000_000,
            max_validate_text: 1 << 30,
        }
    }
}

/// When a load started and when it must give up.
pub struct Clock {
    start: Instant,
    limit: Duration,
}

impl Clock {
    pub fn start(limits: &Limits) -> Clock {
        Clock { start: Instant::now(), limit: limits.max_duration }
    }

    pub fn expired(&self) -> bool {
        self.start.elapsed() > self.limit
    }

    /// The error once the time is up.
    pub fn check(&self, dir: &Path) -> Result<(), ConfigError> {
        if !self.expired() {
            return Ok(());
        }
        Err(ConfigError::whole(
            dir,
            format!(
                "loading the config tree took longer than {} s and was stopped; make the tree smaller \
                 (fewer or smaller files, fewer errors at once)",
                self.limit.as_secs()
            ),
        ))
    }
}

/// One file of the tree: its name inside the tree, its path for messages, what was read.
pub struct RawFile {
    pub rel: String,
    pub path: PathBuf,
    pub content: Content,
}

pub enum Content {
    Read(Vec<u8>),
    /// Why the file could not be read, for the operator.
    Failed(String),
    /// Not read because the tree as a whole is over a limit (reported once, for the tree).
    Skipped,
}

impl From<Result<Vec<u8>, Problem>> for Content {
    fn from(r: Result<Vec<u8>, Problem>) -> Content {
        match r {
            Ok(bytes) => Content::Read(bytes),
            Err(Problem::Missing) => Content::Failed("disappeared while the tree was read; try again".into()),
            Err(Problem::Bad(msg)) => Content::Failed(msg),
        }
    }
}

/// Closes a descriptor when dropped.
struct Fd(RawFd);

impl Drop for Fd {
    fn drop(&mut self) {
        let _ = nix::unistd::close(self.0);
    }
}

/// Reads `dir/nodes.vgo` and `dir/modules/*.vgo` (sorted by name). Problems with one file come
/// with that file; problems with the tree as a whole come beside.
pub fn read_tree(dir: &Path, limits: &Limits, clock: &Clock) -> Read {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let root = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            nix::fcntl::open(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        }
        _ => Err(Errno::ENOTDIR),
    };
    let Ok(root) = root.map(Fd) else {
        errors.push(ConfigError::whole(dir, "no such config directory; check the path or --base-dir"));
        return Read { files, errors, modules_listed: false };
    };
    let mut total = 0u64;
    let nodes = dir.join("nodes.vgo");
    let content = match read_one(&root, "nodes.vgo", limits, &mut total) {
        Err(Problem::Missing) => Content::Failed("missing; a config tree needs nodes.vgo at its top".into()),
        other => other.into(),
    };
    files.push(RawFile { rel: "nodes.vgo".into(), path: nodes, content });
    let mod_dir = dir.join("modules");
    let (listing, problems) = module_names(&root, &mod_dir, limits);
    errors.extend(problems);
    let (modules, names) = match listing {
        Listing::Listed(fd, names) => (fd, names),
        Listing::NoDirectory => return Read { files, errors, modules_listed: true },
        Listing::Refused => return Read { files, errors, modules_listed: false },
    };
    let mut stopped = false;
    for name in names {
        let path = mod_dir.join(&name);
        let rel = format!("modules/{name}");
        if stopped {
            files.push(RawFile { rel, path, content: Content::Skipped });
            continue;
        }
        if let Err(e) = clock.check(dir) {
            errors.push(e);
            stopped = true;
            files.push(RawFile { rel, path, content: Content::Skipped });
            continue;
        }
        let content = read_one(&modules, &name, limits, &mut total).into();
        files.push(RawFile { rel, path, content });
        if total > limits.max_tree_bytes {
            errors.push(ConfigError::whole(
                dir,
                format!(
                    "the config tree is larger than {} bytes in all; reading stopped at modules/{}: \
                     remove unused modules or split the tree",
                    limits.max_tree_bytes,
                    excerpt(&name)
                ),
            ));
            stopped = true;
        }
    }
    Read { files, errors, modules_listed: true }
}

pub enum Problem {
    Missing,
    Bad(String),
}

/// What reading a tree gave.
pub struct Read {
    pub files: Vec<RawFile>,
    /// Problems with the tree as a whole (each file's own are in its `content`).
    pub errors: Vec<ConfigError>,
    /// False when modules/ could not be listed: roles cannot then be told missing.
    pub modules_listed: bool,
}

enum Listing {
    /// No modules/ at all: a tree without modules is valid until a role needs one.
    NoDirectory,
    /// The directory's descriptor and its `.vgo` names, sorted.
    Listed(Fd, Vec<String>),
    /// Not a directory, a link, over a limit or unreadable (the errors say which).
    Refused,
}

/// Lists `modules/`.
fn module_names(root: &Fd, mod_dir: &Path, limits: &Limits) -> (Listing, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let stat = match fstatat(Some(root.0), "modules", AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(s) => s,
        Err(Errno::ENOENT) => return (Listing::NoDirectory, errors),
        Err(e) => {
            errors.push(ConfigError::whole(mod_dir, format!("cannot read: {}", e.desc())));
            return (Listing::Refused, errors);
        }
    };
    if kind(&stat) != SFlag::S_IFDIR {
        let msg = match kind(&stat) {
            SFlag::S_IFLNK => "is a symbolic link; Vigo reads only plain files and directories inside the \
                               config tree: replace the link with a real modules directory"
                .to_string(),
            _ => {
                format!("is {}, not a directory; modules/ must be a directory of .vgo files", describe(&stat))
            }
        };
        errors.push(ConfigError::whole(mod_dir, msg));
        return (Listing::Refused, errors);
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match openat(Some(root.0), "modules", flags, Mode::empty()) {
        Ok(fd) => Fd(fd),
        Err(e) => {
            errors.push(ConfigError::whole(mod_dir, format!("cannot read: {}", e.desc())));
            return (Listing::Refused, errors);
        }
    };
    // Names are listed through the path; contents are only ever read through `fd`. The identity
    // check makes a directory swapped in between show up as an error instead of a mixed listing.
    let same = fstat(fd.0).ok().map(|s| (s.st_dev, s.st_ino)) == Some((stat.st_dev, stat.st_ino));
    let listing = if same { std::fs::read_dir(mod_dir) } else { Err(std::io::ErrorKind::Other.into()) };
    let Ok(listing) = listing else {
        errors.push(ConfigError::whole(
            mod_dir,
            "changed while it was being read, or cannot be listed; try again",
        ));
        return (Listing::Refused, errors);
    };
    let mut names = Vec::new();
    for (seen, entry) in listing.enumerate() {
        if seen == limits.max_dir_entries {
            errors.push(ConfigError::whole(
                mod_dir,
                format!(
                    "holds more than {} entries; only .vgo files belong here: move the rest elsewhere",
                    limits.max_dir_entries
                ),
            ));
            return (Listing::Refused, errors);
        }
        let Ok(entry) = entry else { continue };
        let raw = entry.file_name();
        if !raw.as_encoded_bytes().ends_with(b".vgo") {
            continue;
        }
        match raw.into_string() {
            Ok(name) => names.push(name),
            Err(raw) => errors.push(ConfigError::whole(
                &mod_dir.join(excerpt(&raw.to_string_lossy()).as_ref()),
                "file name is not UTF-8; rename the module to letters, digits, _ and -",
            )),
        }
    }
    if names.len() > limits.max_modules {
        errors.push(ConfigError::whole(
            mod_dir,
            format!(
                "holds {} .vgo files, more than the {} a tree may have; merge small modules",
                names.len(),
                limits.max_modules
            ),
        ));
        return (Listing::Refused, errors);
    }
    names.sort();
    (Listing::Listed(fd, names), errors)
}

/// Reads one regular file `name` in the directory `dir`, adding its size to `total`.
fn read_one(dir: &Fd, name: &str, limits: &Limits, total: &mut u64) -> Result<Vec<u8>, Problem> {
    let before = match fstatat(Some(dir.0), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(s) => s,
        Err(Errno::ENOENT) => return Err(Problem::Missing),
        Err(e) => return Err(Problem::Bad(format!("cannot read: {}", e.desc()))),
    };
    check_kind(&before, name)?;
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let fd = match openat(Some(dir.0), name, flags, Mode::empty()) {
        Ok(fd) => Fd(fd),
        Err(Errno::ELOOP) => return Err(Problem::Bad(symlink_message(name))),
        Err(Errno::ENOENT) => return Err(Problem::Missing),
        Err(e) => return Err(Problem::Bad(format!("cannot read: {}", e.desc()))),
    };
    let stat = fstat(fd.0).map_err(|e| Problem::Bad(format!("cannot read: {}", e.desc())))?;
    check_kind(&stat, name)?;
    if (stat.st_dev, stat.st_ino) != (before.st_dev, before.st_ino) {
        return Err(Problem::Bad("was replaced while the tree was read; try again".into()));
    }
    let too_big = || {
        Problem::Bad(format!(
            "file is larger than {} bytes, the limit for a .vgo file; split it into modules",
            limits.max_file_bytes
        ))
    };
    if stat.st_size as u64 > limits.max_file_bytes {
        *total += stat.st_size as u64;
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(stat.st_size as usize);
    let mut buf = [0u8; 64 * 1024];
    loop {
        match nix::unistd::read(fd.0, &mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Problem::Bad(format!("cannot read: {}", e.desc()))),
        }
        // A file that grows while it is read stops here, not at the end of the disk.
        if bytes.len() as u64 > limits.max_file_bytes {
            *total += bytes.len() as u64;
            return Err(too_big());
        }
    }
    *total += bytes.len() as u64;
    Ok(bytes)
}

fn kind(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT
}

fn describe(stat: &FileStat) -> &'static str {
    match kind(stat) {
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFIFO => "a FIFO (named pipe)",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFCHR | SFlag::S_IFBLK => "a device",
        SFlag::S_IFLNK => "a symbolic link",
        _ => "not a regular file",
    }
}

fn check_kind(stat: &FileStat, name: &str) -> Result<(), Problem> {
    match kind(stat) {
        SFlag::S_IFREG => Ok(()),
        SFlag::S_IFLNK => Err(Problem::Bad(symlink_message(name))),
        _ => Err(Problem::Bad(format!(
            "is {}, not a regular file; {} must be a plain file",
            describe(stat),
            excerpt(name)
        ))),
    }
}

fn symlink_message(name: &str) -> String {
    format!(
        "is a symbolic link; Vigo reads only plain files inside the config tree, never what a link \
         points to: replace {} with a copy of the file",
        excerpt(name)
    )
}

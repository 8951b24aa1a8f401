//! Small shared helpers: atomic files, lock files, time, host lookups without NSS (hosts file,
//! DNS), prompts, stop signals, and text that is safe to print.

pub mod dns;
pub mod fsutil;
pub mod hosts;
pub mod https;
pub mod interrupt;
pub mod lock;
pub mod process;
pub mod prompt;
pub mod reveal;
pub mod text;
pub mod time;
pub mod users;

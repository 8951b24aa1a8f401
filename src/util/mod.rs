//! Small shared helpers: atomic files, lock files, time, host lookups without NSS (hosts file, DNS), prompts,
//! stop signals.

pub mod dns;
pub mod fsutil;
pub mod hosts;
pub mod interrupt;
pub mod lock;
pub mod prompt;
pub mod time;
pub mod users;

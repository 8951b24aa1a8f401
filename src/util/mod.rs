//! Small shared helpers: atomic files, lock files, time, host lookups without NSS, prompts,
//! stop signals.

pub mod fsutil;
pub mod hosts;
pub mod interrupt;
pub mod lock;
pub mod prompt;
pub mod time;
pub mod users;
